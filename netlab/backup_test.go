package netlab

import (
	"context"
	"testing"
	"time"
)

// TestBackupServers: the http backend has be1 and be2, the backups bk1
// and bk2 and a disabled server off (ClassicOptions.Backups). With the
// primaries up the backups and off get nothing; with both primaries
// stopped (refusing), once the checks take them out, the first backup bk1
// answers every request; be1 listening again, once its checks pass, it
// answers every request again. bk2 and off never get anything. HAProxy
// (backup, disabled, no option allbackups) and halb alike.
func TestBackupServers(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "backup-servers", []string{NeedProxy, NeedHealth}, ClassicOptions{Backups: true}, func(t *testing.T, c *Classic, row *Row) {
		p := c.StartProbe(context.Background(), false)
		time.Sleep(2 * time.Second)
		t0 := time.Now()
		c.Backends[0].SetMode(ModeRefuse)
		c.Backends[1].SetMode(ModeRefuse)
		bound := backendBound(c.Opts.Flavor, false)
		time.Sleep(bound + 2*time.Second)
		t1 := time.Now()
		c.Backends[0].SetMode(ModeOK)
		back := ClassicCheckRise*ClassicCheckInterval + ClassicCheckInterval/2 + time.Second
		time.Sleep(back + 2*time.Second)
		all := p.Stop()

		// Requests in flight when the primaries stopped may fail.
		before := all.Window(time.Time{}, t0.Add(-time.Second))
		if before.Failed > 0 || before.Sent == 0 || before.Backends["be1"]+before.Backends["be2"] != before.OK {
			t.Errorf("primaries up: %d of %d failed, answered by %v; want all by be1 and be2", before.Failed, before.Sent, before.Backends)
		}
		late := all.Window(t0.Add(bound), t1)
		row.SetBound(bound, late.Failed == 0 && late.Sent > 0 && late.Backends["bk1"] == late.OK)
		if late.Failed > 0 || late.Sent == 0 || late.Backends["bk1"] != late.OK {
			t.Errorf("primaries stopped, after %s: %d of %d failed, answered by %v; want all by the first backup bk1", bound, late.Failed, late.Sent, late.Backends)
		}
		again := all.Window(t1.Add(back), time.Now())
		if again.Failed > 0 || again.Sent == 0 || again.Backends["be1"] != again.OK {
			t.Errorf("be1 back, after %s: %d of %d failed, answered by %v; want all by be1", back, again.Failed, again.Sent, again.Backends)
		}
		if n := all.Backends["bk2"] + all.Backends["off"]; n > 0 {
			t.Errorf("the second backup and the disabled server answered %d requests (%v), want none", n, all.Backends)
		}
		w := all.Window(t0, t1)
		row.Failed, row.Sent = w.Failed, w.Sent
		row.OutageMS = w.LongestOutage.Milliseconds()
		row.Notef("primaries up: %v; both stopped, after %s: %v (%d requests failed before the checks took them out); be1 back, after %s: %v",
			before.Backends, bound, late.Backends, w.Failed, back, again.Backends)
	})
}
