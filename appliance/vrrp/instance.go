package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"halb/appliance/config"
)

// linkPoll is how often the instances' own interfaces and their tracked
// interfaces are looked at (by the Component, for all of them at once:
// Component.pollLinks) when the kernel does not tell of their changes.
const linkPoll = 100 * time.Millisecond

// primaryPoll is how often the instances' interfaces' primary addresses
// are looked at (by the Component, for all of them at once, so that the
// instances of a link share one look: Component.pollLinks), and their
// links too when the kernel tells of their changes.
const primaryPoll = time.Second

// linkSettle is how far apart pollLinks's looks after link notifications
// are, at least: a burst of them is a few looks, not one each.
const linkSettle = 10 * time.Millisecond

// InstanceStatus is the status of one VRRP instance.
type InstanceStatus struct {
	Name              string          `json:"name"`
	Interface         string          `json:"interface"`
	VMAC              string          `json:"vmac,omitempty"` // the virtual MAC interface (use_vmac)
	VRID              int             `json:"vrid"`
	Version           int             `json:"version"`
	State             State           `json:"state"`
	Priority          int             `json:"priority"`           // configured
	EffectivePriority int             `json:"effective_priority"` // after tracking
	Master            string          `json:"master,omitempty"`   // current master's address
	VIPs              []string        `json:"vips"`
	HeldVIPs          []string        `json:"held_vips"`
	LastTransition    *Transition     `json:"last_transition,omitempty"`
	Counters          Counters        `json:"counters"`
	Error             string          `json:"error,omitempty"`
	Drops             map[string]uint `json:"drops,omitempty"`
	// FaultReasons lists why the instance is in FAULT ("maintenance",
	// "eth1 link down", "tracked script chk: exit status 1", a sync group
	// member's fault, ...), in the order they arose; empty when not.
	FaultReasons []string `json:"fault_reasons,omitempty"`
	// Tracked lists the tracked objects (interfaces, services, scripts)
	// with their state.
	Tracked []TrackedStatus `json:"tracked,omitempty"`
	// SyncGroup is the name of the instance's sync group, if any.
	SyncGroup string `json:"sync_group,omitempty"`
	// ViaPeerLink: no adverts arrive on the link and the peer link carries
	// them (multicast blocked between the nodes).
	ViaPeerLink bool `json:"via_peer_link,omitempty"`
}

// Counters count what an instance did.
type Counters struct {
	AdvertsSent     uint64 `json:"adverts_sent"`
	AdvertsReceived uint64 `json:"adverts_received"`
	Dropped         uint64 `json:"dropped"`
	Transitions     uint64 `json:"transitions"`
	// PeerLinkAdverts counts adverts that came over the peer link while
	// none arrived on the network (Component.PeerAdvert).
	PeerLinkAdverts uint64 `json:"peer_link_adverts,omitempty"`
}

// memberView is what a sync group knows of a member.
type memberView struct {
	State State
	Fault string // the member's own faults, joined ("" when none)
	Want  bool   // BACKUP whose Master_Down_Timer expired: wants MASTER
}

// inputs are what the instance is told from outside its loop; the loop
// brings the machine in line with them (applyInputs).
type inputs struct {
	maintenance bool
	syncGroup   string // "" when in none
	syncFault   string // why the group holds this instance in FAULT
	services    map[string]bool
}

// openFunc opens the VRRP socket of an instance (the Component's shared
// sockets, mux.go; a fake in tests). It receives the packets of VRID vrid
// only.
type openFunc func(ifname string, v6 bool, src netip.Addr, vrid int) (packetConn, error)

// parsedConn is a packetConn whose packets come parsed on a channel (the
// shared link sockets, mux.go): the instance's loop takes them from it,
// with no reader goroutine of its own in between (one wakeup per advert,
// not two). dead is closed when the socket failed; failure says why.
type parsedConn interface {
	packetConn
	packets() (in <-chan muxPacket, dead <-chan struct{})
	failure() error
	// catchUp is closed once the packets the socket holds now are on in.
	catchUp() <-chan struct{}
}

// openRaw opens a socket of the instance's own (an instance outside a
// Component).
func openRaw(ifname string, v6 bool, src netip.Addr, vrid int) (packetConn, error) {
	return newSockets(openRawLink).conn(ifname, v6, src, vrid)
}

// instance runs one VRRP instance: it owns the socket and the timers and
// feeds the pure machine.
type instance struct {
	cfg     config.VRRPInstance
	vips    []netip.Prefix
	v6      bool
	peers   []netip.Addr // unicast peers; empty: multicast
	vif     string       // where the VIPs live: the interface, or its virtual MAC macvlan
	sendIf  string       // where adverts leave and are received
	netif   Netif
	log     *slog.Logger
	publish func(typ, msg string, data any)
	open    openFunc
	runProg programRunner // runs tracked scripts and the notify program
	// report tells the component (sync groups) of the instance's view
	// after a step that changed it; nil outside a component.
	report func(in *instance, v memberView, t *Transition, byGroup bool)

	mu       sync.Mutex
	m        *machine
	status   InstanceStatus
	drops    map[string]uint
	lastLog  map[string]time.Time
	track    *tracker
	inputs   inputs
	ownLink  string // why the own interface fails ("" when up)
	lastView memberView
	reported bool
	master   netip.Addr // status.Master, parsed
	// primary is the interface's primary address as last polled
	// (pollPrimary), or as the loop started with.
	primary netip.Addr

	qmu   sync.Mutex
	queue []func(m *machine, now time.Time) Actions // one-shot commands
	// lastReal is when the loop last took an advert from the link, or
	// started listening on it: a peer-link advert counts only after three
	// advert intervals without one (PeerAdvert), and one that just started
	// has heard none because none was due yet.
	lastReal time.Time
	kick     chan struct{}

	scripts  chan scriptResult
	notifier *notifier
	adverts  adverts
}

func newInstance(cfg config.VRRPInstance, netif Netif, log *slog.Logger, publish func(string, string, any)) (*instance, error) {
	in := &instance{cfg: cfg, netif: netif, log: log.With("vrrp", cfg.Name), publish: publish,
		open: openRaw, runProg: execProgram, drops: map[string]uint{}, lastLog: map[string]time.Time{},
		track: newTracker(cfg), kick: make(chan struct{}, 1), scripts: make(chan scriptResult, 1)}
	if in.publish == nil {
		in.publish = func(string, string, any) {}
	}
	for _, s := range cfg.VIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("vrrp %q: VIP %q: %w", cfg.Name, s, err)
		}
		in.vips = append(in.vips, p)
		in.v6 = p.Addr().Is6()
	}
	for _, s := range cfg.UnicastPeers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("vrrp %q: unicast peer %q: %w", cfg.Name, s, err)
		}
		in.peers = append(in.peers, a)
	}
	// With use_vmac the VIPs and the multicast adverts use the macvlan:
	// everything this node says as (would-be) MASTER comes from the
	// virtual MAC. Unicast adverts stay on the interface (as keepalived's
	// vmac_xmit_base): both nodes' macvlans share one MAC, so unicast to
	// the peer's own address must not be resolved to it.
	in.vif, in.sendIf = cfg.Interface, cfg.Interface
	if cfg.UseVMAC {
		in.vif = config.VMACName(cfg.VRID, in.v6)
		if len(in.peers) == 0 {
			in.sendIf = in.vif
		}
	}
	in.status = InstanceStatus{Name: cfg.Name, Interface: cfg.Interface, VRID: cfg.VRID, Version: cfg.Version,
		State: StateInit, Priority: cfg.Priority, EffectivePriority: cfg.Priority, VIPs: cfg.VIPs, HeldVIPs: []string{}}
	if cfg.UseVMAC {
		in.status.VMAC = in.vif
	}
	return in, nil
}

func (in *instance) params() params {
	garpInterval := in.cfg.GARP.Interval.D()
	if garpInterval <= 0 {
		garpInterval = config.DefaultGARPInterval
	}
	return params{
		Version:        in.cfg.Version,
		Priority:       in.cfg.Priority,
		AdvertInterval: in.cfg.AdvertInterval.D(),
		Preempt:        in.cfg.PreemptOn(),
		PreemptDelay:   in.cfg.PreemptDelay.D(),
		GARPRepeat:     max(in.cfg.GARP.Repeats(), 0),
		GARPInterval:   garpInterval,
	}
}

// setInputs changes the inputs and wakes the loop to apply them. It never
// blocks on the loop.
func (in *instance) setInputs(f func(*inputs)) {
	in.mu.Lock()
	f(&in.inputs)
	in.mu.Unlock()
	in.wake()
}

// post queues a one-shot command for the loop. It never blocks; commands
// still queued when the loop (re)starts are dropped.
func (in *instance) post(f func(m *machine, now time.Time) Actions) {
	in.qmu.Lock()
	in.queue = append(in.queue, f)
	in.qmu.Unlock()
	in.wake()
}

func (in *instance) wake() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

func (in *instance) takeQueue() []func(*machine, time.Time) Actions {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	q := in.queue
	in.queue = nil
	return q
}

// setViaPeer records whether the peer link carries the adverts; it
// reports whether that changed.
func (in *instance) setViaPeer(on bool) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	changed := in.status.ViaPeerLink != on
	in.status.ViaPeerLink = on
	return changed
}

// syncTarget: the sync group talks to its members through these.

func (in *instance) syncFault(reason string) {
	in.setInputs(func(i *inputs) { i.syncFault = reason })
}

func (in *instance) syncJoin(group string) {
	in.setInputs(func(i *inputs) { i.syncGroup = group })
}

func (in *instance) syncOrder(to State, reason string) {
	in.post(func(m *machine, now time.Time) Actions {
		if to == StateMaster {
			return m.SyncMaster(now, reason)
		}
		return m.SyncBackup(now, reason)
	})
}

type received struct {
	pkt      *Packet
	src, dst netip.Addr
	ttl      int
	err      error
	at       time.Time
}

// run works until ctx ends; then it steps down (priority-0 advert, VIPs
// removed) and returns. Start-up failures (no interface yet, say) are
// retried: the instance stays in INIT, reports the error in status (and to
// its sync group, as a fault), and tries again every second. Tracked
// scripts and the notify program run in goroutines that run waits for.
func (in *instance) run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if in.cfg.Notify != "" {
		in.notifier = newNotifier(in.cfg.Name, in.cfg.Notify, config.NotifyTimeout, in.runProg, in.log)
		wg.Go(in.notifier.loop)
		defer in.notifier.close()
	}
	if in.cfg.UseVMAC {
		// Kept in every state and across retries; gone with the instance.
		defer func() {
			if err := in.netif.RemoveVMAC(in.vif); err != nil {
				in.log.Error("remove virtual MAC interface", "err", err)
			}
		}()
	}
	sctx, stopScripts := context.WithCancel(ctx)
	defer stopScripts()
	for _, s := range in.cfg.Track.Scripts {
		wg.Go(func() { runScript(sctx, s, in.runProg, in.scripts) })
	}
	for {
		err := in.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		in.setError(err)
		in.log.Error("instance failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// setError records a start-up failure (nil: none) in status and, as the
// instance's own fault, in its sync group's view.
func (in *instance) setError(err error) {
	in.mu.Lock()
	in.status.Error = ""
	var v memberView
	if err != nil {
		in.status.Error = err.Error()
		v = memberView{State: StateInit, Fault: err.Error()}
	}
	report := err != nil && (!in.reported || v != in.lastView)
	if report {
		in.lastView, in.reported = v, true
	}
	in.mu.Unlock()
	if report && in.report != nil {
		in.report(in, v, nil, false)
	}
}

func (in *instance) runOnce(ctx context.Context) error {
	if in.cfg.UseVMAC {
		if _, err := in.netif.EnsureVMAC(in.cfg.Interface, in.cfg.VRID, in.v6); err != nil {
			return err
		}
	}
	local, err := in.netif.PrimaryAddr(in.cfg.Interface, in.v6, in.vips)
	if err != nil {
		return err
	}
	for _, ifname := range uniq(in.cfg.Interface, in.vif) {
		if removed, err := in.netif.RemoveLeftovers(ifname, in.vips); err != nil {
			return err
		} else if len(removed) > 0 {
			in.log.Warn("removed VIPs left by an earlier run", "interface", ifname, "vips", fmt.Sprint(removed))
		}
	}
	conn, err := in.open(in.sendIf, in.v6, local, in.cfg.VRID)
	if err != nil {
		return fmt.Errorf("vrrp %q: %w", in.cfg.Name, err)
	}
	defer conn.Close()
	in.setError(nil)

	in.mu.Lock()
	in.m = newMachine(in.params(), local)
	in.primary = local
	in.mu.Unlock()
	in.takeQueue() // stale orders from before this start

	recv := make(chan received, 16)
	var parsed <-chan muxPacket
	var dead <-chan struct{}
	pc, direct := conn.(parsedConn)
	if direct {
		parsed, dead = pc.packets()
	} else {
		go in.readLoop(conn, recv)
	}

	// Everything known before Start: the links, the inputs.
	in.pollLinks()
	in.applyInputs(conn, local)
	now := time.Now()
	in.lastReal = now
	in.step(conn, local, func(m *machine) Actions { return m.Start(now) })

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		in.mu.Lock()
		next := in.m.NextDeadline()
		in.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			in.step(conn, local, func(m *machine) Actions { return m.Shutdown(time.Now()) })
			return nil
		case r := <-recv:
			if r.err != nil {
				// Step down before retrying: without a socket we
				// cannot defend the VIPs.
				in.step(conn, local, func(m *machine) Actions { return m.Shutdown(time.Now()) })
				return fmt.Errorf("vrrp %q: receive: %w", in.cfg.Name, r.err)
			}
			in.handle(conn, local, r)
		case p := <-parsed:
			in.handleMux(conn, local, p)
		case <-dead:
			in.step(conn, local, func(m *machine) Actions { return m.Shutdown(time.Now()) })
			return fmt.Errorf("vrrp %q: receive: %w", in.cfg.Name, pc.failure())
		case <-timer.C:
			if direct && in.masterDownDue() {
				// Before taking over, the adverts that came while this
				// node was stalled (they wait in the socket, or on
				// parsed, when the runtime ran this timer first): the
				// master may have been there all along.
				select {
				case <-pc.catchUp():
				case <-dead:
					continue // the next round steps down
				case <-ctx.Done():
					continue
				}
				in.handleParsed(conn, local, parsed)
				if !in.masterDownDue() {
					in.log.Info("Master_Down_Timer expired with the master's adverts waiting in the socket (this node stalled?): stays BACKUP")
				}
			}
			in.step(conn, local, func(m *machine) Actions { return m.Tick(time.Now()) })
		case r := <-in.scripts:
			in.mu.Lock()
			changed := in.track.set(TrackScript, r.name, r.ok, r.detail)
			in.mu.Unlock()
			if changed {
				in.trackChanged(TrackScript, r.name, r.ok, r.detail)
				in.applyInputs(conn, local)
			}
		case <-in.kick:
			// Commands, new inputs, links or the primary address
			// changed (pollLinks, pollPrimary).
			//
			// The interface's address may change under a running
			// instance (a DHCP lease replaced, static ↔ DHCP): adverts
			// from the old one would fail (or name an address the link
			// no longer has). Follow it without leaving the state.
			in.mu.Lock()
			if now := in.primary; now.IsValid() && now != local {
				in.log.Info("primary address changed: adverts now from it", "from", local, "to", now)
				local = now
				conn.SetSource(now)
				in.m.setLocal(now)
			}
			in.mu.Unlock()
			for _, cmd := range in.takeQueue() {
				in.step(conn, local, func(m *machine) Actions { return cmd(m, time.Now()) })
			}
			in.applyInputs(conn, local)
		}
	}
}

// handleMux handles a packet of the shared socket.
func (in *instance) handleMux(conn packetConn, local netip.Addr, p muxPacket) {
	if p.perr != nil {
		in.drop(DropReason(p.perr), p.src, p.perr)
		return
	}
	in.handle(conn, local, received{pkt: p.pkt, src: p.src, dst: p.dst, ttl: p.ttl, at: p.at})
}

// handleParsed handles the packets waiting on parsed, without waiting.
func (in *instance) handleParsed(conn packetConn, local netip.Addr, parsed <-chan muxPacket) {
	for {
		select {
		case p := <-parsed:
			in.handleMux(conn, local, p)
		default:
			return
		}
	}
}

// masterDownDue reports whether the BACKUP's Master_Down_Timer expired.
func (in *instance) masterDownDue() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.m.MasterDownDue(time.Now())
}

// pollLinks looks at the instance's own interface and the tracked ones; it
// reports whether anything changed. A tracked interface that cannot be
// read (gone, say) fails; the own one keeps its last state.
func (in *instance) pollLinks() bool {
	own, ownErr := in.netif.LinkUp(in.cfg.Interface)
	type result struct {
		name, detail string
		ok           bool
	}
	var rs []result
	in.mu.Lock()
	names := in.track.interfaces()
	in.mu.Unlock()
	for _, n := range names {
		up, err := in.netif.LinkUp(n)
		r := result{name: n, ok: err == nil && up, detail: "link down"}
		if err != nil {
			r.detail = err.Error()
		}
		rs = append(rs, r)
	}
	changed := false
	var flipped []result
	in.mu.Lock()
	if ownErr == nil {
		why := ""
		if !own {
			why = in.cfg.Interface + " link down"
		}
		changed = why != in.ownLink
		in.ownLink = why
	}
	for _, r := range rs {
		if in.track.set(TrackInterface, r.name, r.ok, r.detail) {
			changed = true
			flipped = append(flipped, r)
		}
	}
	in.mu.Unlock()
	for _, r := range flipped {
		in.trackChanged(TrackInterface, r.name, r.ok, r.detail)
	}
	return changed
}

// pollPrimary looks at the interface's primary address; it reports
// whether it changed (the loop follows it when woken).
func (in *instance) pollPrimary() bool {
	a, err := in.netif.PrimaryAddr(in.cfg.Interface, in.v6, in.vips)
	if err != nil {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	changed := in.primary.IsValid() && a != in.primary
	in.primary = a
	return changed
}

// trackChanged logs a tracked object passing or failing and puts it on the
// event stream.
func (in *instance) trackChanged(kind, name string, ok bool, detail string) {
	o := TrackedStatus{Kind: kind, Name: name, OK: ok, Detail: detail}
	state := "fails"
	if ok {
		state = "passes"
		in.log.Info("tracked object passes", "kind", kind, "name", name)
	} else {
		in.log.Warn("tracked object fails", "kind", kind, "name", name, "detail", detail)
	}
	in.publish("vrrp.track", fmt.Sprintf("%s: %s %s", in.cfg.Name, o.describe(), state),
		map[string]any{"instance": in.cfg.Name, "kind": kind, "name": name, "ok": ok, "detail": detail})
}

// applyInputs brings the machine in line with everything known from
// outside the packet path: sync group membership, tracked objects (the
// priority and the weight-0 faults), the own link, maintenance and the
// group's fault. Faults are set before others clear, so that a change of
// reason never passes through BACKUP. Each change is its own step.
func (in *instance) applyInputs(conn packetConn, local netip.Addr) {
	in.mu.Lock()
	var flipped []string
	for _, s := range in.track.services() {
		healthy, known := in.inputs.services[s]
		if in.track.set(TrackService, s, !known || healthy, "no healthy backend") {
			flipped = append(flipped, s)
		}
	}
	synced := in.inputs.syncGroup != ""
	prio := effectivePriority(in.cfg.Priority, in.track.failingWeights())
	faults := append([]fault{{source: faultLink, reason: in.ownLink}}, in.track.faults()...)
	maint := ""
	if in.inputs.maintenance {
		maint = "maintenance"
	}
	faults = append(faults, fault{faultMaintenance, maint}, fault{faultSync, in.inputs.syncFault})
	services := in.inputs.services
	in.mu.Unlock()
	for _, s := range flipped {
		healthy, known := services[s]
		in.trackChanged(TrackService, s, !known || healthy, "no healthy backend")
	}

	in.step(conn, local, func(m *machine) Actions { return m.SetSynced(time.Now(), synced) })
	in.step(conn, local, func(m *machine) Actions { return m.SetPriority(time.Now(), prio) })
	for _, set := range []bool{true, false} {
		for _, f := range faults {
			if (f.reason != "") == set {
				in.step(conn, local, func(m *machine) Actions { return m.SetFault(time.Now(), f.source, f.reason) })
			}
		}
	}
}

// readLoop delivers received packets until the socket closes.
func (in *instance) readLoop(conn packetConn, out chan<- received) {
	buf := make([]byte, 1500)
	for {
		n, src, dst, ttl, err := conn.Recv(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				out <- received{err: err}
			}
			return
		}
		pkt, perr := Parse(buf[:n], src, dst)
		if perr != nil {
			in.drop(DropReason(perr), src, perr)
			continue
		}
		out <- received{pkt: pkt, src: src, dst: dst, ttl: ttl, at: time.Now()}
	}
}

// handle applies the receive checks of RFC 5798 §7.1 and feeds the machine.
func (in *instance) handle(conn packetConn, local netip.Addr, r received) {
	switch {
	case r.src == local:
		return // our own advert looped back
	case int(r.pkt.VRID) != in.cfg.VRID:
		// Another virtual router on the same LAN: not ours, not an error
		// (and not counted against ours, whatever is wrong with it).
		return
	case r.ttl != 255:
		in.drop("ttl", r.src, fmt.Errorf("TTL/hop limit %d, want 255", r.ttl))
		return
	case r.pkt.Version != in.cfg.Version:
		in.drop("version", r.src, fmt.Errorf("version %d, ours %d", r.pkt.Version, in.cfg.Version))
		return
	case len(in.peers) > 0 && !containsAddr(in.peers, r.src):
		in.drop("unknown_peer", r.src, fmt.Errorf("unicast mode: %s is not a configured peer", r.src))
		return
	case in.cfg.Version == 2 && r.pkt.MaxAdvertInterval != in.cfg.AdvertInterval.D():
		in.drop("interval", r.src, fmt.Errorf("advert interval %s, ours %s (VRRPv2 requires equal)", r.pkt.MaxAdvertInterval, in.cfg.AdvertInterval))
		return
	case r.pkt.Priority == 255 && in.cfg.AddressOwner:
		// Two owners of one address: a misconfiguration to shout about,
		// but RFC processing continues.
		in.logLimited("owner", "another node claims to own the VIPs", "from", r.src)
	}
	in.mu.Lock()
	in.status.Counters.AdvertsReceived++
	in.mu.Unlock()
	in.lastReal = r.at
	if in.setViaPeer(false) {
		in.log.Info("VRRP adverts heard on the link again", "from", r.src)
	}
	in.step(conn, local, func(m *machine) Actions {
		return m.Advert(r.at, r.src, int(r.pkt.Priority), r.pkt.MaxAdvertInterval)
	})
}

// uniq returns a and b, or a alone when they are equal.
func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// drop counts a rejected packet by reason and logs it, at most once per
// reason every 10 s.
func (in *instance) drop(reason string, src netip.Addr, err error) {
	in.mu.Lock()
	in.drops[reason]++
	in.status.Counters.Dropped++
	in.mu.Unlock()
	in.logLimited(reason, "dropped VRRP packet", "reason", reason, "from", src, "err", err)
}

func (in *instance) logLimited(key, msg string, args ...any) {
	in.mu.Lock()
	last := in.lastLog[key]
	now := time.Now()
	ok := now.Sub(last) >= 10*time.Second
	if ok {
		in.lastLog[key] = now
	}
	in.mu.Unlock()
	if ok {
		in.log.Warn(msg, args...)
	}
}

// step runs one machine step and carries out its actions.
func (in *instance) step(conn packetConn, local netip.Addr, f func(*machine) Actions) {
	in.mu.Lock()
	a := f(in.m)
	prio := in.m.priority
	in.mu.Unlock()
	in.exec(conn, local, a, prio)
}

func (in *instance) exec(conn packetConn, local netip.Addr, a Actions, prio int) {
	// Status first: it reflects the machine at once, before the
	// actions (announcements can take a while) have run.
	in.mu.Lock()
	in.status.EffectivePriority = prio
	if t := a.Transition; t != nil {
		in.status.Counters.Transitions++
		tt := *t
		in.status.LastTransition = &tt
		in.status.State = t.To
	}
	if in.m != nil && in.m.masterAddr.IsValid() && in.m.masterAddr != in.master {
		in.master = in.m.masterAddr
		in.status.Master = in.master.String()
	}
	in.status.FaultReasons = nil
	var v memberView
	if in.m != nil {
		if rs := in.m.FaultReasons(); len(rs) > 0 {
			in.status.FaultReasons = rs
		}
		v = memberView{State: in.m.state, Fault: in.m.ownFault(), Want: in.m.want}
	}
	report := a.Transition != nil || !in.reported || v != in.lastView
	in.lastView, in.reported = v, true
	in.mu.Unlock()
	if a.DelVIPs {
		for _, v := range in.vips {
			if err := in.netif.DelVIP(in.vif, v); err != nil {
				in.log.Error("remove VIP", "vip", v, "err", err)
			}
		}
	}
	if a.AddVIPs {
		for _, v := range in.vips {
			if err := in.netif.AddVIP(in.vif, v); err != nil {
				in.log.Error("add VIP", "vip", v, "err", err)
			}
		}
		// The instances of a node take over together (their masters'
		// adverts came together: nextAdvert): let the others add their
		// VIPs before this one advertises, announces and logs, so that
		// the last VIP is not added after every other instance's whole
		// takeover. The VIPs serve from the moment they are added.
		runtime.Gosched()
	}
	if a.Send {
		in.send(conn, local, a.Priority)
	}
	if a.Announce {
		addrs := make([]netip.Addr, len(in.vips))
		for i, v := range in.vips {
			addrs[i] = v.Addr()
		}
		if err := in.netif.Announce(in.vif, addrs); err != nil {
			in.logLimited("announce", "announce VIPs", "err", err)
		}
	}
	if t := a.Transition; t != nil {
		in.log.Info("state change", "from", t.From, "to", t.To, "reason", t.Reason, "priority", prio)
		in.publish("vrrp.state", fmt.Sprintf("%s: %s → %s (%s)", in.cfg.Name, t.From, t.To, t.Reason),
			map[string]any{"instance": in.cfg.Name, "from": t.From, "to": t.To, "reason": t.Reason, "priority": prio})
		if in.notifier != nil {
			in.notifier.notify(t.To, prio)
		}
	}
	if report && in.report != nil {
		in.report(in, v, a.Transition, a.ByGroup)
	}
}

// send sends an advert at priority prio from local to every destination.
// The packets are built once and again only when the priority or the
// source changed (the checksum covers both).
func (in *instance) send(conn packetConn, local netip.Addr, prio uint8) {
	a := &in.adverts
	if a.bufs == nil || a.prio != prio || a.local != local {
		in.buildAdverts(local, prio)
	}
	for i, dst := range a.dsts {
		err := a.errs[i]
		if err == nil {
			err = conn.Send(a.bufs[i], dst)
		}
		if err != nil {
			in.logLimited("send", "send advert", "to", dst, "err", err)
			continue
		}
		in.mu.Lock()
		in.status.Counters.AdvertsSent++
		in.mu.Unlock()
	}
}

// adverts are an instance's advert packets as last built, one per
// destination; only the instance's loop uses them.
type adverts struct {
	prio  uint8
	local netip.Addr
	dsts  []netip.Addr
	bufs  [][]byte
	errs  []error // Marshal's, per destination
}

func (in *instance) buildAdverts(local netip.Addr, prio uint8) {
	pkt := &Packet{Version: in.cfg.Version, VRID: uint8(in.cfg.VRID), Priority: prio,
		MaxAdvertInterval: in.cfg.AdvertInterval.D()}
	for _, v := range in.vips {
		pkt.Addrs = append(pkt.Addrs, v.Addr())
	}
	dsts := in.peers
	if len(dsts) == 0 {
		dsts = []netip.Addr{MulticastIPv4}
		if in.v6 {
			dsts = []netip.Addr{MulticastIPv6}
		}
	}
	a := adverts{prio: prio, local: local, dsts: dsts, bufs: make([][]byte, len(dsts)), errs: make([]error, len(dsts))}
	for i, dst := range dsts {
		a.bufs[i], a.errs[i] = pkt.Marshal(local, dst)
	}
	in.adverts = a
}

// snapshot returns the instance's status, with the VIPs actually held.
func (in *instance) snapshot() InstanceStatus {
	in.mu.Lock()
	st := in.status
	st.Drops = make(map[string]uint, len(in.drops))
	for k, v := range in.drops {
		st.Drops[k] = v
	}
	st.Tracked = in.track.snapshot()
	st.SyncGroup = in.inputs.syncGroup
	in.mu.Unlock()
	st.HeldVIPs = []string{}
	for _, v := range in.vips {
		if ok, _ := in.netif.HasVIP(in.vif, v.Addr()); ok {
			st.HeldVIPs = append(st.HeldVIPs, v.String())
		}
	}
	return st
}
