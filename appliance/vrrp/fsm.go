package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// State is a VRRP instance's state (RFC 5798 §6.4, plus FAULT as keepalived
// users know it: the instance cannot work, holds no VIPs and sends nothing).
type State int

const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText writes the state's name (status JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// params are the settings of one instance that the state machine needs.
type params struct {
	Version        int
	Priority       int // configured, 1..255
	AdvertInterval time.Duration
	Preempt        bool
	PreemptDelay   time.Duration
	// GARPRepeat is how many announcements follow the first one on
	// becoming MASTER, GARPInterval apart.
	GARPRepeat   int
	GARPInterval time.Duration
}

// Actions is what one step asks the loop to do, in this order: remove the
// VIPs, add them, send an advertisement with SendPriority, announce the VIPs
// (gratuitous ARP / unsolicited NA).
type Actions struct {
	DelVIPs  bool
	AddVIPs  bool
	Send     bool
	Priority uint8 // of the advertisement to send
	Announce bool
	// Transition is set when the state changed.
	Transition *Transition
	// ByGroup marks a transition ordered by the instance's sync group,
	// which the group must not propagate again.
	ByGroup bool
}

// Transition records a state change and why it happened.
type Transition struct {
	From, To State
	Reason   string
	At       time.Time
}

func (a *Actions) merge(b Actions) {
	a.DelVIPs = a.DelVIPs || b.DelVIPs
	a.AddVIPs = a.AddVIPs || b.AddVIPs
	if b.Send {
		a.Send, a.Priority = true, b.Priority
	}
	a.Announce = a.Announce || b.Announce
	if b.Transition != nil {
		a.Transition = b.Transition
	}
	a.ByGroup = a.ByGroup || b.ByGroup
}

// Fault sources. An instance is in FAULT while any source has a reason;
// tracked objects use faultTrack + kind + "/" + name.
const (
	faultLink        = "link"        // the instance's own interface
	faultMaintenance = "maintenance" // the node is in maintenance
	faultSync        = "sync"        // another member of the sync group
	faultTrack       = "track/"      // a tracked object with weight 0
)

// fault is one reason for FAULT and where it comes from.
type fault struct{ source, reason string }

// effectivePriority is the configured priority plus the weights of the
// failing tracked objects, clamped to 1..254: 255 is kept only by an
// address owner with nothing failing (as keepalived does).
func effectivePriority(configured int, failing []int) int {
	if len(failing) == 0 {
		return configured
	}
	p := configured
	for _, w := range failing {
		p += w
	}
	return max(1, min(p, 254))
}

// machine is the pure core of a VRRP instance: events in, actions out, time
// passed in by the caller. Nothing here touches a socket, the kernel or the
// wall clock, so every transition is unit-tested without sleeping.
type machine struct {
	p     params
	local netip.Addr // this node's primary address, for the tie-break

	state    State
	priority int // effective: configured, adjusted by tracking

	masterAdverInterval time.Duration
	masterAddr          netip.Addr

	masterDownAt time.Time // Backup: when to take over (zero: unarmed)
	adverAt      time.Time // Master: when to send the next advert
	garpAt       time.Time // Master: next repeated announcement
	garpLeft     int

	started       time.Time
	preemptFrom   time.Time // no preemption before this
	handover      bool      // gave MASTER away: stay BACKUP until another master is heard
	handoverUntil time.Time // give up waiting and resume normal operation
	faults        []fault   // why in FAULT (none: not), in the order they arose
	last          Transition

	// gated: the instance is in a sync group, so an expired
	// Master_Down_Timer does not make it MASTER by itself; it sets want and
	// the group orders MASTER once every member wants it (SyncMaster).
	gated bool
	want  bool

	// holding: a planned step-down (handover, maintenance, the sync
	// group's order) keeps the VIPs until the new master is heard, so no
	// client meets a node without them (make before break); at releaseAt
	// at the latest they go.
	holding   bool
	releaseAt time.Time
}

// setLocal changes this node's primary address (the tie-break, and the
// master's address while this node is master).
func (m *machine) setLocal(a netip.Addr) {
	if m.masterAddr == m.local {
		m.masterAddr = a
	}
	m.local = a
}

func newMachine(p params, local netip.Addr) *machine {
	return &machine{p: p, local: local, priority: p.Priority, masterAdverInterval: p.AdvertInterval}
}

// skew is RFC 5798's Skew_Time: ((256 - priority) * Master_Adver_Interval) / 256.
// For VRRPv2 (RFC 3768) it is (256 - priority) / 256 seconds.
func (m *machine) skew() time.Duration {
	if m.p.Version == 2 {
		return time.Duration(256-m.priority) * time.Second / 256
	}
	return time.Duration(256-m.priority) * m.masterAdverInterval / 256
}

// masterDownInterval is 3 x Master_Adver_Interval + Skew_Time.
func (m *machine) masterDownInterval() time.Duration {
	return 3*m.masterAdverInterval + m.skew()
}

func (m *machine) to(now time.Time, s State, reason string) *Transition {
	t := &Transition{From: m.state, To: s, Reason: reason, At: now}
	m.state = s
	m.last = *t
	m.want = false
	return t
}

// nextAdvert is when a MASTER that advertised at now advertises next: at
// the next multiple of the advert interval on the clock, at most one
// interval away (the first gap after a transition or an advert out of turn
// is shorter, never longer). So the instances of a node with one interval
// advertise together: the node wakes once per interval for all of them,
// not once for each (100 instances at 50 ms: 20 wakeups a second, not
// 2000), and their peers receive the adverts in one burst.
func (m *machine) nextAdvert(now time.Time) time.Time {
	iv := m.p.AdvertInterval
	if iv <= 0 {
		return now
	}
	return now.Add(iv - time.Duration(now.UnixNano()%int64(iv)))
}

// becomeMaster: add the VIPs, advertise at once, announce, and arm the
// repeated announcements.
func (m *machine) becomeMaster(now time.Time, reason string) Actions {
	m.holding, m.releaseAt = false, time.Time{}
	m.masterDownAt = time.Time{}
	m.adverAt = m.nextAdvert(now)
	m.masterAddr = m.local
	m.garpLeft = m.p.GARPRepeat
	m.garpAt = time.Time{}
	if m.garpLeft > 0 {
		m.garpAt = now.Add(m.p.GARPInterval)
	}
	return Actions{AddVIPs: true, Send: true, Priority: uint8(m.priority), Announce: true, Transition: m.to(now, StateMaster, reason)}
}

// becomeBackup arms the Master_Down_Timer (after the given delay).
func (m *machine) becomeBackup(now time.Time, down time.Duration, reason string) Actions {
	m.adverAt, m.garpAt, m.garpLeft = time.Time{}, time.Time{}, 0
	m.masterDownAt = now.Add(down)
	a := Actions{Transition: m.to(now, StateBackup, reason)}
	if a.Transition.From == StateMaster {
		a.DelVIPs = true
	}
	return a
}

// hold turns the VIP removal of a planned step-down into holding: the VIPs
// stay until another master is heard, at most one Master_Down_Interval.
func (m *machine) hold(now time.Time, a Actions) Actions {
	if a.DelVIPs {
		a.DelVIPs = false
		m.holding, m.releaseAt = true, now.Add(m.masterDownInterval())
	}
	return a
}

// release ends holding: the VIPs go now.
func (m *machine) release(a *Actions) {
	if m.holding {
		m.holding, m.releaseAt = false, time.Time{}
		a.DelVIPs = true
	}
}

// Start leaves Initialize (RFC 5798 §6.4.1): an address owner becomes
// MASTER at once, anyone else BACKUP with the Master_Down_Timer running.
func (m *machine) Start(now time.Time) Actions {
	m.started = now
	m.preemptFrom = now.Add(m.p.PreemptDelay)
	if len(m.faults) > 0 {
		return Actions{Transition: m.to(now, StateFault, m.faultReason())}
	}
	if m.priority == 255 {
		return m.becomeMaster(now, "address owner (priority 255)")
	}
	m.masterAdverInterval = m.p.AdvertInterval
	return m.becomeBackup(now, m.masterDownInterval(), "start")
}

// Shutdown returns to Initialize: a MASTER sends a priority-0 advert so a
// backup takes over after Skew_Time instead of Master_Down_Interval.
func (m *machine) Shutdown(now time.Time) Actions {
	var a Actions
	if m.state == StateMaster {
		a = Actions{DelVIPs: true, Send: true, Priority: 0}
	}
	m.release(&a)
	m.masterDownAt, m.adverAt, m.garpAt = time.Time{}, time.Time{}, time.Time{}
	a.Transition = m.to(now, StateInit, "shutdown")
	return a
}

// NextDeadline is when Tick must next be called (zero: no timer armed).
func (m *machine) NextDeadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{m.masterDownAt, m.adverAt, m.garpAt, m.handoverUntil, m.releaseAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// MasterDownDue reports whether Tick at now would act on an expired
// Master_Down_Timer (a BACKUP that takes over, or waits for its group).
func (m *machine) MasterDownDue(now time.Time) bool {
	return m.state == StateBackup && !m.masterDownAt.IsZero() && !now.Before(m.masterDownAt)
}

// Tick fires the timers that are due at now.
func (m *machine) Tick(now time.Time) Actions {
	var a Actions
	if !m.handoverUntil.IsZero() && !now.Before(m.handoverUntil) {
		m.handover, m.handoverUntil = false, time.Time{}
	}
	if m.holding && !now.Before(m.releaseAt) {
		m.release(&a) // no new master heard: the VIPs go anyway
	}
	switch m.state {
	case StateBackup:
		if !m.masterDownAt.IsZero() && !now.Before(m.masterDownAt) {
			if m.handover {
				// Handed over: let the peer take MASTER; wait again.
				m.masterDownAt = now.Add(m.masterDownInterval())
				return a
			}
			if m.gated {
				// In a sync group: wait for the group's order.
				m.masterDownAt = time.Time{}
				m.want = true
				return a
			}
			return m.becomeMaster(now, "master down: no advert within "+m.masterDownInterval().String())
		}
	case StateMaster:
		if !m.adverAt.IsZero() && !now.Before(m.adverAt) {
			a.Send, a.Priority = true, uint8(m.priority)
			m.adverAt = m.nextAdvert(now)
		}
		if !m.garpAt.IsZero() && !now.Before(m.garpAt) {
			a.Announce = true
			m.garpLeft--
			m.garpAt = time.Time{}
			if m.garpLeft > 0 {
				m.garpAt = now.Add(m.p.GARPInterval)
			}
		}
	}
	return a
}

// Advert handles a received, already validated advertisement for this
// VRID from src (RFC 5798 §6.4.2, §6.4.3). A master heard after a planned
// step-down has taken over: the VIPs held meanwhile go.
func (m *machine) Advert(now time.Time, src netip.Addr, prio int, maxAdvert time.Duration) Actions {
	var a Actions
	if prio > 0 {
		m.release(&a)
	}
	a.merge(m.advert(now, src, prio, maxAdvert))
	return a
}

func (m *machine) advert(now time.Time, src netip.Addr, prio int, maxAdvert time.Duration) Actions {
	switch m.state {
	case StateBackup:
		if m.handover && prio > 0 {
			// Another node advertises as MASTER: the handover is done.
			m.handover, m.handoverUntil = false, time.Time{}
		}
		if prio == 0 {
			// The master is leaving: take over after Skew_Time.
			m.masterDownAt = now.Add(m.skew())
			return Actions{}
		}
		preemptNow := m.p.Preempt && !now.Before(m.preemptFrom)
		if !preemptNow || prio >= m.priority {
			m.want = false
			m.masterAddr = src
			if m.p.Version == 3 && maxAdvert > 0 {
				m.masterAdverInterval = maxAdvert
			}
			m.masterDownAt = now.Add(m.masterDownInterval())
			return Actions{}
		}
		// A lower-priority master and we may preempt: discard, so the
		// Master_Down_Timer expires and we take over.
		return Actions{}
	case StateMaster:
		if prio == 0 {
			// A master left (or stepped down): re-assert at once and
			// announce, so every client points at us.
			m.adverAt = m.nextAdvert(now)
			return Actions{Send: true, Priority: uint8(m.priority), Announce: true}
		}
		if prio > m.priority || (prio == m.priority && addrGreater(src, m.local)) {
			if m.p.Version == 3 && maxAdvert > 0 {
				m.masterAdverInterval = maxAdvert
			}
			m.masterAddr = src
			a := m.becomeBackup(now, m.masterDownInterval(),
				fmt.Sprintf("higher priority master %s (%d, ours %d)", src, prio, m.priority))
			// Tell the winner we stepped down (priority 0): it then
			// announces the VIPs, so a client that followed our
			// gratuitous ARPs during a split brain moves back at once.
			a.Send, a.Priority = true, 0
			return a
		}
		// A lower-priority master (split brain healing): assert ourselves
		// now rather than at the next interval, and announce.
		m.adverAt = m.nextAdvert(now)
		return Actions{Send: true, Priority: uint8(m.priority), Announce: true}
	}
	return Actions{}
}

// addrGreater compares primary addresses as unsigned integers (RFC 5798
// tie-break: the higher primary IP address wins).
func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }

// SetPriority changes the effective priority (tracking). A MASTER whose
// priority drops keeps advertising the new value, so a preempting backup can
// take over; a BACKUP re-evaluates on the next advert.
func (m *machine) SetPriority(now time.Time, prio int) Actions {
	prio = max(1, min(prio, 255))
	if prio == m.priority {
		return Actions{}
	}
	m.priority = prio
	if m.state == StateMaster {
		m.adverAt = m.nextAdvert(now)
		return Actions{Send: true, Priority: uint8(prio)}
	}
	return Actions{}
}

// SetFault sets (reason non-empty) or clears (reason empty) the fault of
// one source. The instance is in FAULT while any source has a fault. It
// enters FAULT on the first: a MASTER sends a priority-0 advert, so a
// backup takes over at once, and removes its VIPs (for maintenance, a
// planned step-down, only once the new master is heard). It leaves FAULT
// when the last one clears: an address owner becomes MASTER again at once,
// anyone else BACKUP with the Master_Down_Timer running. Before Start the
// faults are only recorded; Start then enters FAULT.
func (m *machine) SetFault(now time.Time, source, reason string) Actions {
	was := m.faultReason()
	i := slices.IndexFunc(m.faults, func(f fault) bool { return f.source == source })
	switch {
	case reason == "" && i >= 0:
		m.faults = slices.Delete(m.faults, i, i+1)
	case reason != "" && i >= 0:
		m.faults[i].reason = reason
	case reason != "":
		m.faults = append(m.faults, fault{source, reason})
	}
	switch {
	case len(m.faults) > 0 && m.state != StateFault && m.state != StateInit:
		var a Actions
		if m.state == StateMaster {
			a = Actions{DelVIPs: true, Send: true, Priority: 0}
			if source == faultMaintenance {
				a = m.hold(now, a) // planned: make before break
			}
		}
		if source != faultMaintenance {
			m.release(&a)
		}
		m.masterDownAt, m.adverAt, m.garpAt = time.Time{}, time.Time{}, time.Time{}
		m.handover, m.handoverUntil = false, time.Time{}
		a.Transition = m.to(now, StateFault, m.faultReason())
		return a
	case reason != "" && source != faultMaintenance && m.holding:
		// A real fault while the VIPs are held after a planned
		// step-down: they go now.
		var a Actions
		m.release(&a)
		return a
	case len(m.faults) == 0 && was != "" && m.state == StateFault:
		m.masterAdverInterval = m.p.AdvertInterval
		if m.priority == 255 {
			return m.becomeMaster(now, "fault cleared: "+was+"; address owner (priority 255)")
		}
		return m.becomeBackup(now, m.masterDownInterval(), "fault cleared: "+was)
	}
	return Actions{}
}

// faultReason joins the reasons of every fault ("" when none).
func (m *machine) faultReason() string { return strings.Join(m.FaultReasons(), "; ") }

// FaultReasons lists the reasons of the faults, in the order they arose.
func (m *machine) FaultReasons() []string {
	rs := make([]string, len(m.faults))
	for i, f := range m.faults {
		rs[i] = f.reason
	}
	return rs
}

// ownFault joins the reasons of the faults that are the instance's own,
// not its sync group's ("" when none): what the group passes on.
func (m *machine) ownFault() string {
	var rs []string
	for _, f := range m.faults {
		if f.source != faultSync {
			rs = append(rs, f.reason)
		}
	}
	return strings.Join(rs, "; ")
}

// SetSynced puts the instance in a sync group (on) or takes it out. Out of
// the group, a BACKUP that was waiting for the group's order takes over.
func (m *machine) SetSynced(now time.Time, on bool) Actions {
	m.gated = on
	if on || !m.want {
		return Actions{}
	}
	m.want = false
	if m.state == StateBackup {
		return m.becomeMaster(now, "left the sync group while waiting to become MASTER")
	}
	return Actions{}
}

// SyncMaster is the sync group's order to become MASTER (every member
// wants to, or another member became MASTER). Only a BACKUP obeys.
func (m *machine) SyncMaster(now time.Time, reason string) Actions {
	if m.state != StateBackup {
		return Actions{}
	}
	m.handover, m.handoverUntil = false, time.Time{}
	a := m.becomeMaster(now, reason)
	a.ByGroup = true
	return a
}

// SyncBackup is the sync group's order to step down because another
// member did: a MASTER sends a priority-0 advert so the peer takes over at
// once, and waits as BACKUP, holding its VIPs until the new master is
// heard.
func (m *machine) SyncBackup(now time.Time, reason string) Actions {
	m.want = false
	if m.state != StateMaster {
		return Actions{}
	}
	m.masterAdverInterval = m.p.AdvertInterval
	a := m.hold(now, m.becomeBackup(now, m.masterDownInterval(), reason))
	a.Send, a.Priority = true, 0
	a.ByGroup = true
	return a
}

// Handover gives up MASTER now: a priority-0 advert makes the peer take
// over after its Skew_Time, and this node stays BACKUP until it hears the
// new master (or, with no peer answering, for wait). The VIPs stay until
// the new master is heard (make before break).
func (m *machine) Handover(now time.Time, wait time.Duration) Actions {
	if m.state != StateMaster {
		return Actions{}
	}
	m.handover = true
	m.handoverUntil = now.Add(wait)
	a := m.hold(now, m.becomeBackup(now, m.masterDownInterval(), "handover"))
	a.Send, a.Priority = true, 0
	return a
}
