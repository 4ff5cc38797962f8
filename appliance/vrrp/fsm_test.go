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

func TestMasterAdvertisesEveryInterval(t *testing.T) {
	m := masterAt(t, testParams())
	start := m.last.At
	a := m.Tick(start.Add(time.Second))
	if !a.Send || a.Priority != 100 {
		t.Fatalf("no advert after one interval: %+v", a)
	}
	if !m.adverAt.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("next advert at %s", m.adverAt.Sub(start))
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
	a := m.SetFault(at(20*time.Second), "eth0 down")
	wantTransition(t, a, StateMaster, StateFault)
	if !a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("%+v", a)
	}
	if m.Tick(at(60*time.Second)).Transition != nil {
		t.Fatal("timers run in FAULT")
	}
	a = m.SetFault(at(61*time.Second), "")
	wantTransition(t, a, StateFault, StateBackup)

	// A fault known before start: start in FAULT.
	m2 := newMachine(testParams(), local)
	m2.SetFault(t0, "eth0 down")
	wantTransition(t, m2.Start(t0), StateInit, StateFault)
}

func TestHandover(t *testing.T) {
	m := masterAt(t, testParams())
	a := m.Handover(at(20*time.Second), 30*time.Second)
	wantTransition(t, a, StateMaster, StateBackup)
	if !a.DelVIPs || !a.Send || a.Priority != 0 {
		t.Fatalf("%+v", a)
	}
	// No one takes over yet: the down timer fires but we stay BACKUP.
	if a := m.Tick(m.NextDeadline()); a.Transition != nil {
		t.Fatal("took MASTER back during a handover")
	}
	// The peer advertises (lower priority than ours, preempt on): the
	// handover is complete and normal preemption applies again.
	m.Advert(at(25*time.Second), peer, 50, time.Second)
	if m.handover {
		t.Fatal("handover not cleared by the new master's advert")
	}
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
