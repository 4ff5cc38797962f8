// Package vrrp is halb's keepalived half: RFC 5798 VRRPv3 (and RFC 3768
// VRRPv2 for interoperability) floating addresses. Each configured instance
// is a pure state machine (fsm.go, tested transition by transition without
// sleeping) driven by a loop that owns the timers and its share of the raw
// IP protocol 112 socket of its interface (one per interface and family,
// read by one goroutine that hands each packet to the instances of its
// VRID: mux.go); VIPs, gratuitous ARP and unsolicited
// neighbor advertisements go through one door to the kernel (Netif).
//
// Around the instances: tracking of interfaces, services and scripts with
// weights (track.go), notify programs (notify.go), sync groups whose
// members change state together, and maintenance, in which the node holds
// no VIPs (this file).
//
// Unit tests run anywhere (`go test ./appliance/vrrp/`); the tests of the
// kernel door (netif_test.go) need root and skip without it.
package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"time"

	"halb/appliance/config"
)

// Component runs every VRRP instance of the config.
type Component struct {
	log     *slog.Logger
	netif   Netif
	publish func(typ, msg string, data any)
	// open and runProg are the socket and program doors of the
	// instances (open shares one socket per link among them, mux.go);
	// tests replace them before Run.
	open    openFunc
	runProg programRunner

	latest    config.Latest
	mu        sync.Mutex
	running   map[string]*running
	instances []*instance // for status, in config order
	maint     bool
	services  map[string]bool // health pushed by SetServiceHealth

	sync *syncer
	// heard follows other nodes' routers; listenHeard starts it in Run
	// (tests turn it off).
	heard       *heard
	listenHeard bool
	// watchPoll is how often pollLinks looks when the Netif tells of
	// changes (tests make it long, to see that a change alone is seen).
	watchPoll time.Duration
}

type running struct {
	in     *instance
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the VRRP component. publish receives state changes for the
// event stream; netif is the kernel door (NewNetlinkNetif in the daemon).
func New(netif Netif, log *slog.Logger, publish func(typ, msg string, data any)) *Component {
	if publish == nil {
		publish = func(string, string, any) {}
	}
	h := newHeard(time.Now)
	socks := newSockets(openRawLink)
	socks.heard = h // the links' sockets feed heard
	return &Component{log: log, netif: netif, publish: publish, open: socks.conn, runProg: execProgram,
		running: map[string]*running{}, services: map[string]bool{}, sync: newSyncer(log),
		heard: h, listenHeard: true, watchPoll: primaryPoll}
}

// Heard lists the VRRP routers of other nodes heard recently on each link.
func (c *Component) Heard() []HeardRouter { return c.heard.list() }

// Name is the component's key in status.
func (c *Component) Name() string { return "vrrp" }

// Apply hands the component a new config: instances that are new start,
// removed ones step down (priority-0 advert, VIPs removed), changed ones
// restart, unchanged ones keep running untouched. Sync groups change
// without restarting their members.
func (c *Component) Apply(cfg *config.Config) error {
	c.latest.Set(cfg)
	return nil
}

// Run works until ctx ends, then steps every instance down and returns.
func (c *Component) Run(ctx context.Context) error {
	defer c.netif.Close()
	defer c.stopAll()
	if c.listenHeard {
		hctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { c.heard.listen(hctx, c.log); close(done) }()
		defer func() { stop(); <-done }()
	}
	pctx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { c.pollLinks(pctx); close(polled) }()
	defer func() { stopPoll(); <-polled }()
	c.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.latest.Changed():
			c.reconcile(ctx)
		}
	}
}

func (c *Component) reconcile(ctx context.Context) {
	var want []config.VRRPInstance
	var groups []config.VRRPSyncGroup
	if cfg := c.latest.Get(); cfg != nil {
		want, groups = cfg.VRRP, cfg.VRRPSyncGroups
	}
	groupOf := map[string]string{}
	for _, g := range groups {
		for _, n := range g.Instances {
			groupOf[n] = g.Name
		}
	}
	// Groups first, so that instances registered below join theirs.
	c.sync.configure(groups)
	keep := map[string]bool{}
	var order []*instance
	for _, ic := range want {
		keep[ic.Name] = true
		if r, ok := c.running[ic.Name]; ok {
			if reflect.DeepEqual(r.in.cfg, ic) {
				order = append(order, r.in)
				continue
			}
			c.stop(ic.Name)
		}
		in, err := newInstance(ic, c.netif, c.log, c.publish)
		if err != nil {
			c.log.Error("vrrp instance not started", "err", err)
			continue
		}
		in.open, in.runProg = c.open, c.runProg
		in.report = func(in *instance, v memberView, t *Transition, byGroup bool) {
			c.sync.update(in.cfg.Name, in, v, t, byGroup)
		}
		// What the instance must know before it starts: maintenance,
		// service health, its group.
		c.mu.Lock()
		in.inputs = inputs{maintenance: c.maint, services: maps.Clone(c.services), syncGroup: groupOf[ic.Name]}
		c.mu.Unlock()
		c.sync.register(ic.Name, in)
		ictx, cancel := context.WithCancel(ctx)
		r := &running{in: in, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			in.run(ictx)
		}()
		c.running[ic.Name] = r
		order = append(order, in)
	}
	for name := range c.running {
		if !keep[name] {
			c.stop(name)
		}
	}
	c.mu.Lock()
	c.instances = order
	// Again for every instance, in case SetMaintenance or
	// SetServiceHealth ran while the list was being rebuilt.
	for _, in := range order {
		maint, services := c.maint, maps.Clone(c.services)
		in.setInputs(func(i *inputs) { i.maintenance, i.services = maint, services })
	}
	c.mu.Unlock()
}

// pollLinks looks at every instance's own and tracked interfaces, and
// their primary addresses, until ctx ends, and wakes the instances whose
// links or address changed to apply it. One loop for all: a ticker in
// each instance's loop was as many wakeups as the instances' adverts at
// 50 ms.
//
// With a Netif that tells of changes (linkWatcher: the kernel's
// notifications, as keepalived follows its interfaces), it looks after
// each (at most every linkSettle), and every watchPoll besides (notices
// the kernel could not queue are told as a change, but a look costs
// little). Otherwise, or once the notifications fail, it looks at the
// links every linkPoll and the addresses every primaryPoll.
func (c *Component) pollLinks(ctx context.Context) {
	var events <-chan struct{}
	every := linkPoll
	w, watch := c.netif.(linkWatcher)
	if watch {
		ch, err := w.WatchLinks(ctx)
		switch {
		case err == nil:
			events, every = ch, c.watchPoll
		case !errors.Is(err, errors.ErrUnsupported):
			c.log.Warn("link notifications unavailable: polling links every "+linkPoll.String(), "err", err)
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastLook time.Time // the last look after a notification
	for tick := 1; ; tick++ {
		// The primary addresses too, less often when polling; back to
		// back, so that the instances of a link share one look
		// (PrimaryAddr's pollShare).
		primary := events != nil || tick%int(primaryPoll/linkPoll) == 0
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return
				}
				c.log.Warn("link notifications ended: polling links every " + linkPoll.String())
				events = nil
				t.Reset(linkPoll)
			}
			// The first change is looked at at once; in a burst (100
			// VIPs added in a takeover) the looks are linkSettle apart,
			// each covering what came before it.
			if wait := time.Until(lastLook.Add(linkSettle)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				select {
				case <-events:
				default:
				}
			}
			lastLook = time.Now()
			w.Forget()
			primary = true
		}
		c.mu.Lock()
		ins := append([]*instance(nil), c.instances...)
		c.mu.Unlock()
		for _, in := range ins {
			changed := in.pollLinks()
			if primary && in.pollPrimary() {
				changed = true
			}
			if changed {
				in.wake()
			}
		}
	}
}

func (c *Component) stop(name string) {
	r := c.running[name]
	r.cancel()
	<-r.done
	delete(c.running, name)
	c.sync.unregister(name, r.in)
}

func (c *Component) stopAll() {
	for name := range c.running {
		c.stop(name)
	}
}

// Status lists every instance in config order.
func (c *Component) Status() any {
	c.mu.Lock()
	ins := append([]*instance(nil), c.instances...)
	c.mu.Unlock()
	out := make([]InstanceStatus, 0, len(ins))
	for _, in := range ins {
		out = append(out, in.snapshot())
	}
	return out
}

// ErrNoInstance is returned by Handover for an unknown instance name.
var ErrNoInstance = errors.New("no such VRRP instance")

// Handover makes the named instances (all when none are named) give up
// MASTER now: a priority-0 advert, then BACKUP until the peer took over.
func (c *Component) Handover(names ...string) error {
	c.mu.Lock()
	ins := append([]*instance(nil), c.instances...)
	c.mu.Unlock()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := 0
	for _, in := range ins {
		if len(names) > 0 && !want[in.cfg.Name] {
			continue
		}
		found++
		// Wait for the peer for a few Master_Down_Intervals at most.
		wait := 3 * (4 * in.cfg.AdvertInterval.D())
		in.post(func(m *machine, now time.Time) Actions { return m.Handover(now, wait) })
	}
	if found < len(want) {
		return ErrNoInstance
	}
	return nil
}

// PeerLinkAdvertInterval is the Max Advert Interval of an advert that
// comes over the peer link: the link exchanges state every second.
const PeerLinkAdvertInterval = time.Second

// PeerAdvert feeds instance name an advertisement that came over the peer
// link instead of the network: the paired node src says it is MASTER with
// priority prio. It counts only while the instance hears no adverts on its
// link (none for three of its advert intervals, counted from its start):
// when multicast between the nodes is blocked, both would be MASTER (split
// brain); the peer link then carries the adverts, and RFC 5798's rules
// settle the roles by priority (then address) as they would on the wire. Master_Down_Interval
// follows the link's one-second interval while it does. An unknown name
// is ignored.
func (c *Component) PeerAdvert(name string, src netip.Addr, prio int) {
	c.mu.Lock()
	ins := append([]*instance(nil), c.instances...)
	c.mu.Unlock()
	for _, in := range ins {
		if in.cfg.Name != name || prio < 1 || prio > 255 {
			continue
		}
		at := time.Now()
		in.post(func(m *machine, now time.Time) Actions {
			// step runs this with in.mu held.
			if at.Sub(in.lastReal) < 3*in.cfg.AdvertInterval.D() {
				in.status.ViaPeerLink = false
				return Actions{}
			}
			if !in.status.ViaPeerLink {
				in.status.ViaPeerLink = true
				in.log.Warn("no VRRP adverts on the link; the peer link carries them (multicast blocked between the nodes?)", "peer", src, "peer_priority", prio)
				go in.publish("vrrp.peer_link", fmt.Sprintf("%s: no adverts heard on %s; roles settled over the peer link (peer %s priority %d)", in.cfg.Name, in.cfg.Interface, src, prio),
					map[string]any{"instance": in.cfg.Name, "peer": src.String(), "priority": prio})
			}
			in.status.Counters.PeerLinkAdverts++
			return m.Advert(at, src, prio, PeerLinkAdvertInterval)
		})
	}
}

// SetMaintenance turns maintenance on or off. On: every instance leaves
// MASTER (a priority-0 advert, so the peer takes over at once), removes its
// VIPs and stays in FAULT with the reason "maintenance" until it is turned
// off; instances started meanwhile start in FAULT. Each instance's change
// goes to the event stream (vrrp.state, reason "maintenance"). The daemon
// keeps the flag across restarts and calls this before Run.
func (c *Component) SetMaintenance(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maint = on
	for _, in := range c.instances {
		in.setInputs(func(i *inputs) { i.maintenance = on })
	}
}

// Maintenance reports whether maintenance is on.
func (c *Component) Maintenance() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maint
}

// SetServiceHealth tells the instances that track the service whether it
// has a healthy backend (the health component calls it on every change). A
// service never reported counts as healthy.
func (c *Component) SetServiceHealth(service string, healthy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.services[service]; ok && h == healthy {
		return
	}
	c.services[service] = healthy
	for _, in := range c.instances {
		services := maps.Clone(c.services)
		in.setInputs(func(i *inputs) { i.services = services })
	}
}

// syncTarget is a sync group member as the group sees it (an instance).
type syncTarget interface {
	// syncFault sets (reason non-empty) or clears the fault the group
	// holds the member in.
	syncFault(reason string)
	// syncJoin tells the member its group ("" for none).
	syncJoin(group string)
	// syncOrder orders a BACKUP to become MASTER or a MASTER to step
	// down to BACKUP; other states ignore it.
	syncOrder(to State, reason string)
}

// syncer runs the sync groups (keepalived's vrrp_sync_group): it follows
// every member's view and orders the others along.
//
//   - A member with a fault of its own puts every other member in FAULT.
//   - A member in a group does not become MASTER when its Master_Down_Timer
//     expires; it wants MASTER, and when every member wants MASTER (or is
//     MASTER already), the group orders all of them to MASTER together.
//   - A member that becomes MASTER by itself (an address owner) takes the
//     others to MASTER; one that steps down from MASTER to BACKUP (a higher
//     priority master, a handover) takes the others to BACKUP.
//
// Its methods never block on an instance: the orders are queued.
type syncer struct {
	log *slog.Logger

	mu      sync.Mutex
	groupOf map[string]string     // instance → group
	members map[string][]string   // group → instances, in config order
	targets map[string]syncTarget // live instances
	views   map[string]memberView
	faults  map[string]string // the sync fault last set per instance
	joined  map[string]string // the group last told per instance
}

func newSyncer(log *slog.Logger) *syncer {
	return &syncer{log: log, groupOf: map[string]string{}, members: map[string][]string{},
		targets: map[string]syncTarget{}, views: map[string]memberView{}, faults: map[string]string{}, joined: map[string]string{}}
}

// configure sets the groups and brings every member in line.
func (s *syncer) configure(groups []config.VRRPSyncGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupOf, s.members = map[string]string{}, map[string][]string{}
	for _, g := range groups {
		s.members[g.Name] = append([]string(nil), g.Instances...)
		for _, n := range g.Instances {
			s.groupOf[n] = g.Name
		}
	}
	for name := range s.targets {
		s.join(name)
		if s.groupOf[name] == "" {
			s.setFault(name, "")
		}
	}
	for g := range s.members {
		s.refresh(g)
	}
}

// register adds a live instance (before it starts).
func (s *syncer) register(name string, t syncTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets[name] = t
	delete(s.views, name)
	s.faults[name], s.joined[name] = "", ""
	s.join(name)
	if g := s.groupOf[name]; g != "" {
		s.refresh(g)
	}
}

// unregister removes a stopped instance; its faults no longer hold the
// group.
func (s *syncer) unregister(name string, t syncTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.targets[name] != t {
		return
	}
	delete(s.targets, name)
	delete(s.views, name)
	delete(s.faults, name)
	delete(s.joined, name)
	if g := s.groupOf[name]; g != "" {
		s.refresh(g)
	}
}

func (s *syncer) join(name string) {
	g := s.groupOf[name]
	if s.joined[name] != g {
		s.joined[name] = g
		s.targets[name].syncJoin(g)
	}
}

func (s *syncer) setFault(name, reason string) {
	if s.faults[name] != reason {
		s.faults[name] = reason
		s.targets[name].syncFault(reason)
	}
}

// update takes member name's view after a step (t: the transition, if
// any; byGroup: the group ordered it). from is the member reporting.
func (s *syncer) update(name string, from syncTarget, v memberView, t *Transition, byGroup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.targets[name] != from {
		return // a stopped instance's last words
	}
	s.views[name] = v
	g := s.groupOf[name]
	if g == "" {
		return
	}
	s.refresh(g)
	if t != nil && !byGroup {
		switch {
		case t.To == StateMaster:
			s.order(g, name, StateMaster, fmt.Sprintf("sync group %s: %s became MASTER", g, name))
		case t.From == StateMaster && t.To == StateBackup:
			s.order(g, name, StateBackup, fmt.Sprintf("sync group %s: %s became BACKUP", g, name))
		}
	}
	s.maybeMaster(g)
}

// refresh sets each member's sync fault from the others' own faults.
func (s *syncer) refresh(g string) {
	for _, m := range s.members[g] {
		if s.targets[m] == nil {
			continue
		}
		var rs []string
		for _, o := range s.members[g] {
			if v, ok := s.views[o]; ok && o != m && v.Fault != "" && s.targets[o] != nil {
				rs = append(rs, fmt.Sprintf("sync group %s: %s in FAULT (%s)", g, o, v.Fault))
			}
		}
		s.setFault(m, strings.Join(rs, "; "))
	}
}

// order sends the order to every member of g but except.
func (s *syncer) order(g, except string, to State, reason string) {
	for _, m := range s.members[g] {
		if t := s.targets[m]; t != nil && m != except {
			t.syncOrder(to, reason)
		}
	}
}

// maybeMaster orders the members that want MASTER to take it once every
// member wants it or holds it already.
func (s *syncer) maybeMaster(g string) {
	wanting := 0
	for _, m := range s.members[g] {
		v, ok := s.views[m]
		if !ok || s.targets[m] == nil || v.Fault != "" || !(v.Want || v.State == StateMaster) {
			return
		}
		if v.Want {
			wanting++
		}
	}
	if wanting == 0 {
		return
	}
	s.log.Info("sync group becomes MASTER", "group", g)
	for _, m := range s.members[g] {
		if s.views[m].Want {
			s.targets[m].syncOrder(StateMaster, fmt.Sprintf("sync group %s: every member wants MASTER", g))
		}
	}
}
