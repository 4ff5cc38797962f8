package daemon

import (
	"errors"
	"slices"
	"testing"
	"time"

	"halb/appliance/api"
)

// The windows below are a second: the steps before each deadline (an
// fsync among them) must not outlast it on a loaded machine.

// TestConfirmedApplyReverts: a change applied with a confirmation window
// and not confirmed goes back to the config before it, recorded in the
// history as a revert; other changes are refused meanwhile.
func TestConfirmedApplyReverts(t *testing.T) {
	dir := t.TempDir()
	td := startDaemon(t, dir, nodeConfig(0))
	res, err := td.ApplyConfirmed(api.SourceConsole, "", []byte(nodeConfig(1)), time.Second)
	if err != nil || res.Version != 2 || res.ConfirmBy.IsZero() {
		t.Fatalf("ApplyConfirmed = %+v, %v", res, err)
	}
	if td.running() != nodeConfig(1) {
		t.Fatalf("the change is not in force")
	}
	p := td.Status().Config.Pending
	if p == nil || p.Version != 2 || p.RevertTo != 1 {
		t.Fatalf("status pending = %+v", p)
	}
	// Nothing else is taken while the change awaits confirmation.
	if _, err := td.ApplyFrom(api.SourceAPI, "", []byte(nodeConfig(2))); !errors.Is(err, api.ErrConflict) {
		t.Errorf("apply while pending: %v, want a conflict", err)
	}
	if _, err := td.Rollback(1); !errors.Is(err, api.ErrConflict) {
		t.Errorf("rollback while pending: %v, want a conflict", err)
	}
	td.waitEvent("config.reverted")
	if td.running() != nodeConfig(0) || td.onDisk() != nodeConfig(0) {
		t.Fatalf("after the deadline: running %q, on disk %q, want version 1's", td.running(), td.onDisk())
	}
	h := td.History()
	if len(h) != 3 || h[0].Source != api.SourceRevert || h[0].Version != 3 || !h[0].Running {
		t.Fatalf("history after the revert: %+v", h)
	}
	if td.Status().Config.Pending != nil {
		t.Errorf("still pending after the revert")
	}
	if err := td.Confirm(); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Confirm with nothing pending: %v, want not found", err)
	}
}

// TestConfirmedApplyKept: a confirmed change stays, and changes are taken
// again after it.
func TestConfirmedApplyKept(t *testing.T) {
	dir := t.TempDir()
	td := startDaemon(t, dir, nodeConfig(0))
	if _, err := td.ApplyConfirmed(api.SourceConsole, "", []byte(nodeConfig(1)), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := td.Confirm(); err != nil {
		t.Fatal(err)
	}
	td.waitEvent("config.confirmed")
	// Past the deadline, nothing reverts.
	time.Sleep(1200 * time.Millisecond)
	if td.running() != nodeConfig(1) || len(td.History()) != 2 {
		t.Fatalf("a confirmed change reverted: running %q, history %+v", td.running(), td.History())
	}
	if _, err := td.ApplyFrom(api.SourceAPI, "", []byte(nodeConfig(2))); err != nil {
		t.Errorf("apply after the confirmation: %v", err)
	}
}

// TestRevertNow: the operator puts the previous config back before the
// deadline.
func TestRevertNow(t *testing.T) {
	td := startDaemon(t, t.TempDir(), nodeConfig(0))
	if _, err := td.ApplyConfirmed(api.SourceConsole, "", []byte(nodeConfig(1)), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := td.RevertNow(); err != nil {
		t.Fatal(err)
	}
	if td.running() != nodeConfig(0) || td.Status().Config.Pending != nil {
		t.Fatalf("after RevertNow: running %q, pending %+v", td.running(), td.Status().Config.Pending)
	}
	if h := td.History(); h[0].Source != api.SourceRevert || h[0].Summary != "reverted by the operator, back to 1: no changes" {
		t.Errorf("history: %+v", h[0])
	}
	if err := td.RevertNow(); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second RevertNow: %v", err)
	}
}

// TestConfirmedApplySurvivesRestart: a daemon stopped while a change
// awaits confirmation reverts it when it starts after the deadline.
func TestConfirmedApplySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	td := startDaemon(t, dir, nodeConfig(0))
	if _, err := td.ApplyConfirmed(api.SourceConsole, "", []byte(nodeConfig(1)), time.Second); err != nil {
		t.Fatal(err)
	}
	td.stop()
	time.Sleep(1200 * time.Millisecond) // the deadline passes while no daemon runs
	td = startDaemon(t, dir, "")
	if !slices.ContainsFunc(td.early, func(ev api.Event) bool { return ev.Type == "config.reverted" }) {
		td.waitEvent("config.reverted")
	}
	if td.running() != nodeConfig(0) {
		t.Fatalf("after restart: running %q, want version 1's", td.running())
	}
}

// TestConfirmedApplyNeedsARunningConfig: an unconfigured node has nothing
// to go back to.
func TestConfirmedApplyNeedsARunningConfig(t *testing.T) {
	td := startDaemon(t, t.TempDir(), "")
	if _, err := td.ApplyConfirmed(api.SourceConsole, "", []byte(nodeConfig(1)), time.Minute); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("ApplyConfirmed unconfigured: %v, want a conflict", err)
	}
	if _, err := td.ApplyConfirmed(api.SourceConsole, "", []byte(nodeConfig(1)), 2*time.Hour); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("ApplyConfirmed for 2h: %v, want invalid", err)
	}
}
