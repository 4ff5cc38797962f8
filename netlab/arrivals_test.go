package netlab

import (
	"context"
	"net"
	"testing"
	"time"
)

// A probe with StampSent tells a recording backend when each request was
// started; a backend records nothing before RecordArrivals nor after
// RecordArrivals(false).
func TestArrivalsCarryTheProbesSendTime(t *testing.T) {
	b, addr := startBackend(t, "be1")
	c := newClient(false, time.Second)
	get(t, c, "http://"+addr+"/") // not recording yet
	b.RecordArrivals(true)
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	p := StartProbe(context.Background(), ProbeConfig{URL: "http://" + addr + "/", Rate: 50, Dial: dial, StampSent: true})
	waitFor(t, "three answers", func() bool { return p.Snapshot().OK >= 3 })
	res := p.Stop()
	b.RecordArrivals(false)
	get(t, c, "http://"+addr+"/") // no longer recording

	arr := b.Arrivals()
	if len(arr) != res.Sent {
		t.Fatalf("%d arrivals recorded, want the probe's %d requests", len(arr), res.Sent)
	}
	sent := map[int64]bool{}
	for _, s := range res.Samples {
		sent[s.Sent.UnixNano()] = true
	}
	for i, a := range arr {
		if !sent[a.Sent.UnixNano()] {
			t.Errorf("arrival %d: Sent %v is no sample's send time", i, a.Sent)
		}
		if a.At.Before(a.Sent) {
			t.Errorf("arrival %d: arrived at %v, before it was sent at %v", i, a.At, a.Sent)
		}
	}
	// Without StampSent the arrival has no send time.
	b.RecordArrivals(true)
	get(t, c, "http://"+addr+"/")
	if arr := b.Arrivals(); len(arr) != res.Sent+1 || !arr[len(arr)-1].Sent.IsZero() {
		t.Errorf("unstamped request: arrivals %d (want %d), last Sent %v (want zero)", len(arr), res.Sent+1, arr[len(arr)-1].Sent)
	}
}
