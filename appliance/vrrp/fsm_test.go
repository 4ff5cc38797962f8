package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	local = netip.MustParseAddr("192.168.10.2")
	peer  = netip.MustParseAddr("192.168.10.1")
	high  = netip.MustParseAddr("192.168.10.3")
)

func testParams() params {
	return params{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: true, GARPRepeat: 2, GARPInterval: 500 * time.Millisecond}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func wantState(t *testing.T, m *machine, s State) {
	t.Helper()
	if m.state != s {
		t.Fatalf("state %s, want %s", m.state, s)
	}
}

func wantTransition(t *testing.T, a Actions, from, to State) {
	t.Helper()
	if a.Transition == nil || a.Transition.From != from || a.Transition.To != to {
		t.Fatalf("transition %+v, want %s→%s", a.Transition, from, to)
	}
}

func TestStartIsBackupWithMasterDownTimer(t *testing.T) {
	m := newMachine(testParams(), local)
	a := m.Start(t0)
	wantTransition(t, a, StateInit, StateBackup)
	if a.AddVIPs || a.Send || a.DelVIPs {
		t.Fatalf("backup at start acts: %+v", a)
	}
	// Master_Down_Interval = 3 x 1s + (256-100)/256 s = 3.609375s
	want := at(3*time.Second + 609375*time.Microsecond)
	if got := m.NextDeadline(); !got.Equal(want) {
		t.Fatalf("deadline %s, want %s", got.Sub(t0), want.Sub(t0))
	}
	if a := m.Tick(want.Add(-time.Nanosecond)); a.Transition != nil {
		t.Fatal("took over before Master_Down_Interval")
	}
	a = m.Tick(want)
	wantTransition(t, a, StateBackup, StateMaster)
	if !a.AddVIPs || !a.Send || a.Priority != 100 || !a.Announce {
		t.Fatalf("becoming master: %+v, want add VIPs, advert 100, announce", a)
	}
}

func TestAddressOwnerStartsMaster(t *testing.T) {
	p := testParams()
	p.Priority = 255
	m := newMachine(p, local)
	a := m.Start(t0)
	wantTransition(t, a, StateInit, StateMaster)
	if !a.Send || a.Priority != 255 || !a.AddVIPs {
		t.Fatalf("%+v", a)
	}
}

func TestBackupFollowsMasterAndLearnsItsInterval(t *testing.T) {
	m := newMachine(testParams(), local)
	m.Start(t0)
	m.Advert(at(time.Second), peer, 150, 200*time.Millisecond)
	// Master_Down = 3 x 200ms + (156 x 200ms)/256 = 600ms + 121.875ms
	want := at(time.Second + 721875*time.Microsecond)
	if got := m.NextDeadline(); !got.Equal(want) {
		t.Fatalf("deadline %s, want %s (learned interval)", got.Sub(t0), want.Sub(t0))
	}
	if m.masterAddr != peer {
		t.Errorf("master %s", m.masterAddr)
	}
	wantState(t, m, StateBackup)
}

func TestPriorityZeroMeansTakeOverAfterSkew(t *testing.T) {
	m := newMachine(testParams(), local)
	m.Start(t0)
	m.Advert(at(time.Second), peer, 150, time.Second)
	m.Advert(at(2*time.Second), peer, 0, time.Second)
	want := at(2*time.Second + 609375*time.Microsecond) // skew = 156/256 s
	if got := m.NextDeadline(); !got.Equal(want) {
		t.Fatalf("deadline %s, want %s", got.Sub(t0), want.Sub(t0))
	}
	wantTransition(t, m.Tick(want), StateBackup, StateMaster)
}

func TestPreemptDiscardsLowerPriorityMaster(t *testing.T) {
	m := newMachine(testParams(), local)
	m.Start(t0)
	down := m.NextDeadline()
	m.Advert(at(time.Second), peer, 50, time.Second) // lower: discarded
	if !m.NextDeadline().Equal(down) {
		t.Fatal("a lower-priority advert reset the timer with preempt on")
	}
	wantTransition(t, m.Tick(down), StateBackup, StateMaster)
}

func TestNoPreemptAcceptsLowerPriorityMaster(t *testing.T) {
	p := testParams()
	p.Preempt = false
	m := newMachine(p, local)
	m.Start(t0)
	down := m.NextDeadline()
	m.Advert(at(time.Second), peer, 50, time.Second)
	if !m.NextDeadline().After(down) {
		t.Fatal("with preempt off a lower-priority master must be followed")
	}
}

func TestPreemptDelay(t *testing.T) {
	p := testParams()
	p.PreemptDelay = 10 * time.Second
	m := newMachine(p, local)
	m.Start(t0)
	m.Advert(at(time.Second), peer, 50, time.Second)
	if m.Tick(at(4*time.Second)).Transition != nil {
		t.Fatal("preempted inside preempt_delay")
	}
	// Adverts keep coming; after the delay they are discarded and we take over.
	for s := 2; s <= 10; s++ {
		m.Advert(at(time.Duration(s)*time.Second), peer, 50, time.Second)
	}
	m.Advert(at(11*time.Second), peer, 50, time.Second) // discarded now
	wantTransition(t, m.Tick(m.NextDeadline()), StateBackup, StateMaster)
	if got := m.last.At.Sub(t0); got > 14*time.Second {
		t.Errorf("took over at %s", got)
	}
}

func masterAt(t *testing.T, p params) *machine {
	t.Helper()
	m := newMachine(p, local)
	m.Start(t0)
	m.Tick(m.NextDeadline())
	wantState(t, m, StateMaster)
	return m
}

// TestMasterAdvertisesEveryInterval: a MASTER advertises on the clock's
// multiples of its interval (so that a node's instances advertise
// together): the first advert after the transition's is due at the next
// one, then one every interval.
func TestMasterAdvertisesEveryInterval(t *testing.T) {
	m := masterAt(t, testParams())
	start := m.last.At
	first := start.Truncate(time.Second).Add(time.Second)
	if !m.adverAt.Equal(first) {
		t.Fatalf("first advert after the transition at %s, want %s (the next whole second)", m.adverAt.Sub(start), first.Sub(start))
	}
	if a := m.Tick(first.Add(-time.Millisecond)); a.Send {
		t.Fatalf("advert before it was due: %+v", a)
	}
	for i := range 3 {
		now := first.Add(time.Duration(i) * time.Second)
		if a := m.Tick(now); !a.Send || a.Priority != 100 {
			t.Fatalf("no advert at %s: %+v", now.Sub(start), a)
		}
		if want := now.Add(time.Second); !m.adverAt.Equal(want) {
			t.Fatalf("advert at %s: next at %s, want %s", now.Sub(start), m.adverAt.Sub(start), want.Sub(start))
		}
	}
	// Late (a loaded node): the next one is back on the grid, sooner
	// than an interval.
	late := first.Add(3*time.Second + 300*time.Millisecond)
	m.Tick(late)
	if want := first.Add(4 * time.Second); !m.adverAt.Equal(want) {
		t.Fatalf("advert late at %s: next at %s, want %s", late.Sub(start), m.adverAt.Sub(start), want.Sub(start))
	}
}

func TestMasterRepeatsAnnouncements(t *testing.T) {
	m := masterAt(t, testParams())
	start := m.last.At
	n := 0
	for d := 100 * time.Millisecond; d <= 5*time.Second; d += 100 * time.Millisecond {
		if m.Tick(start.Add(d)).Announce {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d repeated announcements, want 2 (GARPRepeat)", n)
	}
}

func TestMasterYieldsToHigherPriority(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.Advert(at(10*time.Second), peer, 150, time.Second)
	wantTransition(t, a, StateMaster, StateBackup)
	if !a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("stepping down: %+v, want VIPs removed and a priority-0 advert", a)
	}
}

func TestTieBreakByPrimaryAddress(t *testing.T) {
	m := masterAt(t, testParams())
	if a := m.Advert(at(10*time.Second), peer, 100, time.Second); a.Transition != nil {
		t.Fatal("yielded to an equal priority with a lower address")
	}
	a := m.Advert(at(11*time.Second), high, 100, time.Second)
	wantTransition(t, a, StateMaster, StateBackup)
}

func TestMasterAssertsAgainstLowerPriority(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.Advert(at(10*time.Second), peer, 50, time.Second)
	if a.Transition != nil || !a.Send || a.Priority != 100 || !a.Announce {
		t.Fatalf("%+v, want an immediate advert and announcement", a)
	}
	a = m.Advert(at(11*time.Second), peer, 0, time.Second)
	if !a.Send || !a.Announce {
		t.Fatalf("priority 0 from another master: %+v", a)
	}
}

func TestShutdownSendsPriorityZero(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.Shutdown(at(20 * time.Second))
	wantTransition(t, a, StateMaster, StateInit)
	if !a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("%+v", a)
	}
	if !m.NextDeadline().IsZero() {
		t.Fatal("timers armed after shutdown")
	}
}

func TestFault(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.SetFault(at(20*time.Second), faultLink, "eth0 down")
	wantTransition(t, a, StateMaster, StateFault)
	if !a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("%+v", a)
	}
	if m.Tick(at(60*time.Second)).Transition != nil {
		t.Fatal("timers run in FAULT")
	}
	a = m.SetFault(at(61*time.Second), faultLink, "")
	wantTransition(t, a, StateFault, StateBackup)

	// A fault known before start: start in FAULT.
	m2 := newMachine(testParams(), local)
	m2.SetFault(t0, faultLink, "eth0 down")
	wantTransition(t, m2.Start(t0), StateInit, StateFault)
}

func TestHandover(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.Handover(at(20*time.Second), 30*time.Second)
	wantTransition(t, a, StateMaster, StateBackup)
	if a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("%+v, want a priority-0 advert and the VIPs kept until the peer is heard", a)
	}
	// The peer advertises (lower priority than ours, preempt on): it took
	// over, so the VIPs go; the handover is complete and normal preemption
	// applies again.
	a = m.Advert(at(21*time.Second), peer, 50, time.Second)
	if !a.DelVIPs || a.Transition != nil {
		t.Fatalf("the new master heard: %+v, want the VIPs removed", a)
	}
	if m.handover {
		t.Fatal("handover not cleared by the new master's advert")
	}
}

// TestHandoverWithoutPeer: no one takes over; the VIPs go after one
// Master_Down_Interval, and the node stays BACKUP for the handover's wait.
func TestHandoverWithoutPeer(t *testing.T) {
	m := masterAt(t, testParams())
	m.Handover(at(20*time.Second), 30*time.Second)
	release := at(20*time.Second + 3*time.Second + 609375*time.Microsecond)
	if got := m.NextDeadline(); !got.Equal(release) {
		t.Fatalf("next deadline %s, want the release at %s", got.Sub(t0), release.Sub(t0))
	}
	if a := m.Tick(release.Add(-time.Nanosecond)); a.DelVIPs {
		t.Fatal("VIPs removed before the release deadline")
	}
	a := m.Tick(release)
	if !a.DelVIPs || a.Transition != nil {
		t.Fatalf("at the release deadline: %+v, want the VIPs removed", a)
	}
	// The down timer fires but we stay BACKUP.
	for m.NextDeadline().Before(at(50 * time.Second)) {
		if a := m.Tick(m.NextDeadline()); a.Transition != nil {
			t.Fatalf("took MASTER back during a handover at %s", m.NextDeadline().Sub(t0))
		}
	}
	// After the wait, normal operation: MASTER again.
	for range 3 {
		m.Tick(m.NextDeadline())
	}
	wantState(t, m, StateMaster)
}

func TestSetPriorityAsMasterAdvertisesAtOnce(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.SetPriority(at(20*time.Second), 40)
	if !a.Send || a.Priority != 40 {
		t.Fatalf("%+v", a)
	}
	// A backup of priority 100 preempts the master at 40.
	a = m.Advert(at(21*time.Second), peer, 100, time.Second)
	wantTransition(t, a, StateMaster, StateBackup)
}

func TestVersion2Skew(t *testing.T) {
	p := testParams()
	p.Version = 2
	m := newMachine(p, local)
	m.Start(t0)
	// v2: Master_Down = 3 x Advertisement_Interval + (256-100)/256 s;
	// adverts do not change the interval.
	m.Advert(at(time.Second), peer, 150, 5*time.Second)
	want := at(time.Second + 3*time.Second + 609375*time.Microsecond)
	if got := m.NextDeadline(); !got.Equal(want) {
		t.Fatalf("deadline %s, want %s", got.Sub(t0), want.Sub(t0))
	}
}

func wantReasons(t *testing.T, m *machine, want ...string) {
	t.Helper()
	got := m.FaultReasons()
	if len(got) != len(want) {
		t.Fatalf("fault reasons %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("fault reasons %q, want %q", got, want)
		}
	}
}

// TestFaultFromSeveralSources: FAULT lasts while any source has a fault;
// the reasons are kept per source and joined.
func TestFaultFromSeveralSources(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.SetFault(at(20*time.Second), faultMaintenance, "maintenance")
	wantTransition(t, a, StateMaster, StateFault)
	if a.DelVIPs || !a.Send || a.Priority != 0 || a.AddVIPs {
		t.Fatalf("MASTER entering maintenance: %+v, want a priority-0 advert, VIPs kept until the peer is heard", a)
	}
	if a.Transition.Reason != "maintenance" {
		t.Errorf("reason %q", a.Transition.Reason)
	}
	// A real fault while the VIPs are still held: they go at once.
	a = m.SetFault(at(21*time.Second), faultLink, "eth0 link down")
	if a.Transition != nil || a.Send || !a.DelVIPs {
		t.Fatalf("link down while holding: %+v, want the VIPs removed", a)
	}
	if a := m.SetFault(at(21*time.Second), faultTrack+"script/chk", "tracked script chk: exit status 1"); a.Transition != nil || a.Send || a.DelVIPs {
		t.Fatalf("a third fault acts: %+v", a)
	}
	wantReasons(t, m, "maintenance", "eth0 link down", "tracked script chk: exit status 1")
	// Setting a source again replaces its reason in place.
	m.SetFault(at(22*time.Second), faultLink, "eth0 gone")
	wantReasons(t, m, "maintenance", "eth0 gone", "tracked script chk: exit status 1")
	if got, want := m.ownFault(), "maintenance; eth0 gone; tracked script chk: exit status 1"; got != want {
		t.Errorf("ownFault %q, want %q", got, want)
	}

	// Clearing all but one keeps FAULT; clearing an unset source is a no-op.
	for _, src := range []string{faultMaintenance, faultLink, faultSync} {
		if a := m.SetFault(at(23*time.Second), src, ""); a.Transition != nil {
			t.Fatalf("left FAULT with a fault left (cleared %s)", src)
		}
	}
	wantState(t, m, StateFault)
	a = m.SetFault(at(24*time.Second), faultTrack+"script/chk", "")
	wantTransition(t, a, StateFault, StateBackup)
	if a.Transition.Reason != "fault cleared: tracked script chk: exit status 1" || a.AddVIPs || a.Send {
		t.Fatalf("leaving FAULT: %+v (%+v)", a, a.Transition)
	}
	wantReasons(t, m)
	// BACKUP again with the Master_Down_Timer running.
	if d := m.NextDeadline(); !d.Equal(at(24*time.Second + 3*time.Second + 609375*time.Microsecond)) {
		t.Fatalf("deadline %s after leaving FAULT", d.Sub(t0))
	}
}

// TestFaultReasonsJoinedAtStart: faults known before Start give FAULT with
// every reason.
func TestFaultReasonsJoinedAtStart(t *testing.T) {
	m := newMachine(testParams(), local)
	m.SetFault(t0, faultLink, "eth0 link down")
	m.SetFault(t0, faultSync, `sync group g: b in FAULT (eth1 link down)`)
	a := m.Start(t0)
	wantTransition(t, a, StateInit, StateFault)
	if want := `eth0 link down; sync group g: b in FAULT (eth1 link down)`; a.Transition.Reason != want {
		t.Fatalf("reason %q, want %q", a.Transition.Reason, want)
	}
	if got := m.ownFault(); got != "eth0 link down" {
		t.Errorf("ownFault %q: the group's fault is not the instance's own", got)
	}
}

func TestFaultClearedAddressOwnerIsMasterAtOnce(t *testing.T) {
	p := testParams()
	p.Priority = 255
	m := newMachine(p, local)
	m.Start(t0)
	wantState(t, m, StateMaster)
	wantTransition(t, m.SetFault(at(time.Second), faultLink, "eth0 link down"), StateMaster, StateFault)
	a := m.SetFault(at(2*time.Second), faultLink, "")
	wantTransition(t, a, StateFault, StateMaster)
	if !a.AddVIPs || !a.Send || a.Priority != 255 || !a.Announce {
		t.Fatalf("%+v", a)
	}
}

// TestFaultEndsHandover: a fault during a handover wait cancels it, so
// leaving FAULT is a normal BACKUP.
func TestFaultEndsHandover(t *testing.T) {
	m := masterAt(t, testParams())
	m.Handover(at(20*time.Second), time.Minute)
	m.SetFault(at(21*time.Second), faultMaintenance, "maintenance")
	m.SetFault(at(22*time.Second), faultMaintenance, "")
	wantState(t, m, StateBackup)
	if a := m.Tick(m.NextDeadline()); !a.DelVIPs {
		t.Fatalf("%+v, want the held VIPs released first", a)
	}
	wantTransition(t, m.Tick(m.NextDeadline()), StateBackup, StateMaster)
}

func TestEffectivePriority(t *testing.T) {
	for _, tc := range []struct {
		configured int
		failing    []int
		want       int
	}{
		{100, nil, 100},
		{100, []int{-60}, 40},
		{100, []int{-60, -60}, 1}, // clamped: 0 would mean "leaving"
		{200, []int{100}, 254},    // clamped: 255 is the owner's
		{100, []int{10, -10}, 100},
		{1, []int{-5}, 1},
		{255, nil, 255}, // an owner with nothing failing
		{255, []int{-10}, 245},
		{255, []int{10}, 254},
		{255, []int{10, -10}, 254}, // something fails: no longer 255
	} {
		if got := effectivePriority(tc.configured, tc.failing); got != tc.want {
			t.Errorf("effectivePriority(%d, %v) = %d, want %d", tc.configured, tc.failing, got, tc.want)
		}
	}
}

// TestTrackingWeightMakesPeerPreempt: the MASTER's priority drops below
// the backup's; it advertises the new value at once and yields to the
// preempting peer; when the object recovers it preempts back.
func TestTrackingWeightMakesPeerPreempt(t *testing.T) {
	p := testParams()
	p.Priority = 150
	m := masterAt(t, p)
	a := m.SetPriority(at(20*time.Second), effectivePriority(150, []int{-60}))
	if !a.Send || a.Priority != 90 || a.Transition != nil {
		t.Fatalf("%+v, want an advert at 90", a)
	}
	wantTransition(t, m.Advert(at(21*time.Second), peer, 100, time.Second), StateMaster, StateBackup)
	m.SetPriority(at(30*time.Second), effectivePriority(150, nil))
	// The peer's adverts (100 < 150) are now discarded: we take over.
	m.Advert(at(31*time.Second), peer, 100, time.Second)
	wantTransition(t, m.Tick(m.NextDeadline()), StateBackup, StateMaster)
}

func gatedBackup(t *testing.T) *machine {
	t.Helper()
	m := newMachine(testParams(), local)
	m.SetSynced(t0, true)
	wantTransition(t, m.Start(t0), StateInit, StateBackup)
	return m
}

// TestSyncGroupMemberWaitsForOrder: in a sync group an expired
// Master_Down_Timer only sets want; the group's order makes it MASTER.
func TestSyncGroupMemberWaitsForOrder(t *testing.T) {
	m := gatedBackup(t)
	a := m.Tick(m.NextDeadline())
	if a.Transition != nil || !m.want {
		t.Fatalf("gated member: %+v want=%v; want no transition and want set", a, m.want)
	}
	if !m.NextDeadline().IsZero() {
		t.Fatalf("timer still armed at %s while waiting for the group", m.NextDeadline().Sub(t0))
	}
	a = m.SyncMaster(at(5*time.Second), "sync group g: every member wants MASTER")
	wantTransition(t, a, StateBackup, StateMaster)
	if !a.ByGroup || !a.AddVIPs || !a.Send || !a.Announce || m.want {
		t.Fatalf("%+v want=%v", a, m.want)
	}
	if a := m.SyncMaster(at(6*time.Second), "again"); a.Transition != nil {
		t.Fatal("SyncMaster acted on a MASTER")
	}
}

// TestSyncGroupWantClearedByMaster: a master heard again (an advert we
// accept) means the member no longer wants MASTER.
func TestSyncGroupWantClearedByMaster(t *testing.T) {
	m := gatedBackup(t)
	m.Tick(m.NextDeadline())
	m.Advert(at(5*time.Second), peer, 150, time.Second)
	if m.want {
		t.Fatal("want still set after a higher-priority master's advert")
	}
	// A lower-priority master's advert, preempt on: discarded, want stays.
	m.Tick(m.NextDeadline())
	m.Advert(at(10*time.Second), peer, 50, time.Second)
	if !m.want {
		t.Fatal("want cleared by a discarded advert")
	}
	// Priority 0 from the master: take over after Skew_Time, i.e. want.
	m2 := gatedBackup(t)
	m2.Advert(at(time.Second), peer, 150, time.Second)
	m2.Advert(at(2*time.Second), peer, 0, time.Second)
	if a := m2.Tick(m2.NextDeadline()); a.Transition != nil || !m2.want {
		t.Fatalf("after priority 0: %+v want=%v", a, m2.want)
	}
}

func TestSyncBackup(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.SyncBackup(at(20*time.Second), "sync group g: b became BACKUP")
	wantTransition(t, a, StateMaster, StateBackup)
	if !a.ByGroup || a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("%+v, want a priority-0 advert by the group, VIPs kept until the peer is heard", a)
	}
	if a := m.Advert(at(20500*time.Millisecond), peer, 90, time.Second); !a.DelVIPs {
		t.Fatalf("new master heard: %+v, want the VIPs removed", a)
	}
	if a := m.SyncBackup(at(21*time.Second), "again"); a.Transition != nil || a.Send {
		t.Fatalf("SyncBackup acted on a BACKUP: %+v", a)
	}
	// In FAULT the group's orders change nothing.
	m.SetFault(at(22*time.Second), faultLink, "eth0 link down")
	if a := m.SyncMaster(at(23*time.Second), "x"); a.Transition != nil {
		t.Fatal("SyncMaster acted in FAULT")
	}
}

func TestLeavingSyncGroupWhileWaitingTakesOver(t *testing.T) {
	m := gatedBackup(t)
	m.Tick(m.NextDeadline())
	wantTransition(t, m.SetSynced(at(5*time.Second), false), StateBackup, StateMaster)
	// Not waiting: leaving the group changes nothing.
	m2 := gatedBackup(t)
	if a := m2.SetSynced(at(time.Second), false); a.Transition != nil {
		t.Fatalf("%+v", a)
	}
	wantTransition(t, m2.Tick(m2.NextDeadline()), StateBackup, StateMaster)
}

// TestMaintenanceMakeBeforeBreak: entering maintenance the MASTER keeps
// its VIPs until the peer's first advert as the new master, then drops
// them; a priority-0 advert (another node leaving) does not count.
func TestMaintenanceMakeBeforeBreak(t *testing.T) {
	m := masterAt(t, testParams())
	m.SetFault(at(20*time.Second), faultMaintenance, "maintenance")
	if a := m.Advert(at(20100*time.Millisecond), peer, 0, time.Second); a.DelVIPs {
		t.Fatal("released on a priority-0 advert")
	}
	if a := m.Tick(at(21 * time.Second)); a.DelVIPs || a.Send {
		t.Fatalf("%+v before the peer took over", a)
	}
	a := m.Advert(at(20609*time.Millisecond), peer, 90, time.Second)
	if !a.DelVIPs || a.Transition != nil || a.Send {
		t.Fatalf("peer took over: %+v, want only the VIPs removed", a)
	}
	if !m.NextDeadline().IsZero() {
		t.Fatalf("a timer armed in FAULT after the release: %s", m.NextDeadline().Sub(t0))
	}
	// Shutting down while holding removes them too.
	m2 := masterAt(t, testParams())
	m2.SetFault(at(20*time.Second), faultMaintenance, "maintenance")
	if a := m2.Shutdown(at(20100 * time.Millisecond)); !a.DelVIPs || a.Send {
		t.Fatalf("shutdown while holding: %+v, want the VIPs removed, nothing sent", a)
	}
}
