package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"halb/appliance/config"
)

// --- the sync group logic alone, with fake members --------------------------

// fakeMember records what the sync group tells it.
type fakeMember struct {
	name   string
	fault  string
	group  string
	orders []string // "MASTER: reason" / "BACKUP: reason"
}

func (f *fakeMember) syncFault(reason string) { f.fault = reason }
func (f *fakeMember) syncJoin(group string)   { f.group = group }
func (f *fakeMember) syncOrder(to State, reason string) {
	f.orders = append(f.orders, to.String()+": "+reason)
}

func (f *fakeMember) takeOrders() []string {
	o := f.orders
	f.orders = nil
	return o
}

type syncFixture struct {
	s *syncer
	m map[string]*fakeMember
}

// newSyncFixture registers members a, b, c; a and b form group g.
func newSyncFixture(t *testing.T) *syncFixture {
	t.Helper()
	x := &syncFixture{s: newSyncer(slog.New(slog.DiscardHandler)), m: map[string]*fakeMember{}}
	x.s.configure([]config.VRRPSyncGroup{{Name: "g", Instances: []string{"a", "b"}}})
	for _, n := range []string{"a", "b", "c"} {
		x.m[n] = &fakeMember{name: n}
		x.s.register(n, x.m[n])
	}
	return x
}

// update reports n's view to the group.
func (x *syncFixture) update(n string, v memberView, t *Transition, byGroup bool) {
	x.s.update(n, x.m[n], v, t, byGroup)
}

func TestSyncerJoins(t *testing.T) {
	x := newSyncFixture(t)
	if x.m["a"].group != "g" || x.m["b"].group != "g" || x.m["c"].group != "" {
		t.Fatalf("groups a=%q b=%q c=%q", x.m["a"].group, x.m["b"].group, x.m["c"].group)
	}
	// Regrouped: b leaves, c joins.
	x.s.configure([]config.VRRPSyncGroup{{Name: "h", Instances: []string{"a", "c"}}})
	if x.m["a"].group != "h" || x.m["b"].group != "" || x.m["c"].group != "h" {
		t.Fatalf("after regrouping a=%q b=%q c=%q", x.m["a"].group, x.m["b"].group, x.m["c"].group)
	}
}

func TestSyncerFaultPutsGroupInFault(t *testing.T) {
	x := newSyncFixture(t)
	x.update("a", memberView{State: StateBackup}, nil, false)
	x.update("b", memberView{State: StateBackup}, nil, false)
	x.update("c", memberView{State: StateBackup}, nil, false)

	x.update("b", memberView{State: StateFault, Fault: "eth1 link down"},
		&Transition{From: StateBackup, To: StateFault}, false)
	if want := "sync group g: b in FAULT (eth1 link down)"; x.m["a"].fault != want {
		t.Fatalf("a's sync fault %q, want %q", x.m["a"].fault, want)
	}
	if x.m["b"].fault != "" || x.m["c"].fault != "" {
		t.Fatalf("b (the faulty one) or c (no group) got a sync fault: %q, %q", x.m["b"].fault, x.m["c"].fault)
	}
	// a's resulting FAULT is not its own: it does not hold b.
	x.update("a", memberView{State: StateFault}, &Transition{From: StateBackup, To: StateFault}, false)
	if x.m["b"].fault != "" {
		t.Fatalf("b held in FAULT by a's group fault: %q", x.m["b"].fault)
	}
	// Both faulty: each holds the other.
	x.update("a", memberView{State: StateFault, Fault: "maintenance"}, nil, false)
	if x.m["b"].fault != "sync group g: a in FAULT (maintenance)" {
		t.Fatalf("b's sync fault %q", x.m["b"].fault)
	}
	x.update("a", memberView{State: StateFault}, nil, false)
	x.update("b", memberView{State: StateFault}, nil, false)
	if x.m["a"].fault != "" || x.m["b"].fault != "" {
		t.Fatalf("faults cleared but sync faults remain: a %q, b %q", x.m["a"].fault, x.m["b"].fault)
	}
	for _, n := range []string{"a", "b", "c"} {
		if o := x.m[n].takeOrders(); len(o) > 0 {
			t.Errorf("%s got orders %q from faults alone", n, o)
		}
	}
}

// TestSyncerStoppedMemberReleasesGroup: a member that stops (or restarts)
// no longer holds the group in FAULT.
func TestSyncerStoppedMemberReleasesGroup(t *testing.T) {
	x := newSyncFixture(t)
	x.update("b", memberView{State: StateInit, Fault: "no IPv4 address on eth1"}, nil, false)
	if x.m["a"].fault == "" {
		t.Fatal("precondition: a not held by b's fault")
	}
	x.s.unregister("b", x.m["b"])
	if x.m["a"].fault != "" {
		t.Fatalf("a still held after b stopped: %q", x.m["a"].fault)
	}
	// A report from the stopped b is ignored.
	x.update("b", memberView{State: StateInit, Fault: "late"}, nil, false)
	if x.m["a"].fault != "" {
		t.Fatalf("a held by a stopped member's late report: %q", x.m["a"].fault)
	}
}

func TestSyncerMasterOnlyTogether(t *testing.T) {
	x := newSyncFixture(t)
	x.update("a", memberView{State: StateBackup, Want: true}, nil, false)
	if o := x.m["a"].takeOrders(); len(o) > 0 {
		t.Fatalf("a ordered %q while b has not reported", o)
	}
	x.update("b", memberView{State: StateBackup}, nil, false)
	if o := x.m["a"].takeOrders(); len(o) > 0 {
		t.Fatalf("a ordered %q while b hears a master", o)
	}
	x.update("b", memberView{State: StateBackup, Want: true}, nil, false)
	want := []string{"MASTER: sync group g: every member wants MASTER"}
	for _, n := range []string{"a", "b"} {
		if o := x.m[n].takeOrders(); !slices.Equal(o, want) {
			t.Errorf("%s orders %q, want %q", n, o, want)
		}
	}
	if o := x.m["c"].takeOrders(); len(o) > 0 {
		t.Errorf("c (not in the group) ordered %q", o)
	}
	// The orders are obeyed: MASTER by the group's order is not passed
	// on. (Until b reports, it still wants: it may get the order again,
	// which a MASTER ignores.)
	x.update("a", memberView{State: StateMaster}, &Transition{From: StateBackup, To: StateMaster}, true)
	x.update("b", memberView{State: StateMaster}, &Transition{From: StateBackup, To: StateMaster}, true)
	if o := x.m["a"].takeOrders(); len(o) > 0 {
		t.Errorf("a ordered %q after the group's own order", o)
	}
	for _, o := range x.m["b"].takeOrders() {
		if o != want[0] {
			t.Errorf("b ordered %q after the group's own order", o)
		}
	}
	x.update("a", memberView{State: StateMaster}, nil, false)
	for _, n := range []string{"a", "b"} {
		if o := x.m[n].takeOrders(); len(o) > 0 {
			t.Errorf("%s ordered %q with every member MASTER", n, o)
		}
	}
	// A member that restarted and wants MASTER while the other holds it.
	x.update("b", memberView{State: StateBackup, Want: true}, nil, false)
	if o := x.m["b"].takeOrders(); !slices.Equal(o, want) {
		t.Errorf("b (a wants, b is MASTER) orders %q, want %q", o, want)
	}
}

func TestSyncerFollowsTransitions(t *testing.T) {
	x := newSyncFixture(t)
	// An address owner becomes MASTER by itself: the others follow.
	x.update("a", memberView{State: StateMaster}, &Transition{From: StateInit, To: StateMaster}, false)
	if o, want := x.m["b"].takeOrders(), []string{"MASTER: sync group g: a became MASTER"}; !slices.Equal(o, want) {
		t.Fatalf("b orders %q, want %q", o, want)
	}
	if o := x.m["a"].takeOrders(); len(o) > 0 {
		t.Fatalf("a ordered %q by its own transition", o)
	}
	// a yields to a higher-priority master: the others step down too.
	x.update("a", memberView{State: StateBackup}, &Transition{From: StateMaster, To: StateBackup}, false)
	if o, want := x.m["b"].takeOrders(), []string{"BACKUP: sync group g: a became BACKUP"}; !slices.Equal(o, want) {
		t.Fatalf("b orders %q, want %q", o, want)
	}
	// b stepping down by the group's order is not passed back.
	x.update("b", memberView{State: StateBackup}, &Transition{From: StateMaster, To: StateBackup}, true)
	if o := x.m["a"].takeOrders(); len(o) > 0 {
		t.Fatalf("a ordered %q by b's ordered transition", o)
	}
	// Out of a group, nothing is ordered.
	x.update("c", memberView{State: StateMaster}, &Transition{From: StateBackup, To: StateMaster}, false)
	for _, n := range []string{"a", "b", "c"} {
		if o := x.m[n].takeOrders(); len(o) > 0 {
			t.Errorf("%s ordered %q by c (no group)", n, o)
		}
	}
}

// --- fakes of the kernel and the socket --------------------------------------

// fakeNetif is an in-memory Netif: links up unless set down, an address
// 10.0.<n>.2 on each interface ethN, and VIPs in a map.
type fakeNetif struct {
	mu    sync.Mutex
	down  map[string]bool
	gone  map[string]bool
	vips  map[string]map[netip.Prefix]bool
	added int             // AddVIP calls
	vmacs map[string]bool // virtual MAC interfaces that exist
	// primary overrides an interface's primary address (default
	// 10.0.N.2 on ethN).
	primary map[string]netip.Addr
}

func (f *fakeNetif) setPrimary(ifname string, a netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.primary == nil {
		f.primary = map[string]netip.Addr{}
	}
	f.primary[ifname] = a
}

func newFakeNetif() *fakeNetif {
	return &fakeNetif{down: map[string]bool{}, gone: map[string]bool{}, vips: map[string]map[netip.Prefix]bool{}}
}

func (f *fakeNetif) setLink(ifname string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[ifname] = !up
}

func (f *fakeNetif) AddVIP(ifname string, vip netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vips[ifname] == nil {
		f.vips[ifname] = map[netip.Prefix]bool{}
	}
	f.vips[ifname][vip] = true
	f.added++
	return nil
}

func (f *fakeNetif) DelVIP(ifname string, vip netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vips[ifname], vip)
	return nil
}

func (f *fakeNetif) HasVIP(ifname string, vip netip.Addr) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := range f.vips[ifname] {
		if p.Addr() == vip {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeNetif) addCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added
}

func (f *fakeNetif) Announce(string, []netip.Addr) error { return nil }

func (f *fakeNetif) LinkUp(ifname string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[ifname] {
		return false, fmt.Errorf("vrrp: state of link %s: Link not found", ifname)
	}
	return !f.down[ifname], nil
}

func (f *fakeNetif) PrimaryAddr(ifname string, v6 bool, _ []netip.Prefix) (netip.Addr, error) {
	f.mu.Lock()
	a, ok := f.primary[ifname]
	f.mu.Unlock()
	if ok {
		return a, nil
	}
	var n int
	if _, err := fmt.Sscanf(ifname, "eth%d", &n); err != nil {
		return netip.Addr{}, fmt.Errorf("no address on %s", ifname)
	}
	return netip.AddrFrom4([4]byte{10, 0, byte(n), 2}), nil
}

func (f *fakeNetif) RemoveLeftovers(string, []netip.Prefix) ([]netip.Prefix, error) { return nil, nil }
func (f *fakeNetif) Close() error                                                   { return nil }
func (f *fakeNetif) EnsureVMAC(_ string, vrid int, v6 bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := config.VMACName(vrid, v6)
	if f.vmacs == nil {
		f.vmacs = map[string]bool{}
	}
	f.vmacs[name] = true
	return name, nil
}

func (f *fakeNetif) RemoveVMAC(ifname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vmacs, ifname)
	delete(f.vips, ifname)
	return nil
}

func (f *fakeNetif) hasVMAC(ifname string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vmacs[ifname]
}

// fakeConn is a VRRP socket that records what is sent and delivers what a
// test injects.
type fakeConn struct {
	ifname string
	netif  *fakeNetif // the kernel: a source not on the link is refused
	src    netip.Addr
	in     chan []byte
	peer   chan netip.Addr
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	sent []*Packet
}

func (c *fakeConn) SetSource(src netip.Addr) { c.src = src }

func (c *fakeConn) Send(b []byte, dst netip.Addr) error {
	if c.netif != nil {
		if now, err := c.netif.PrimaryAddr(c.ifname, false, nil); err == nil && now != c.src {
			return fmt.Errorf("sendmsg from %v: network is unreachable", c.src)
		}
	}
	p, err := Parse(b, c.src, dst)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sent = append(c.sent, p)
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) Recv(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	select {
	case p := <-c.in:
		return copy(b, p), <-c.peer, MulticastIPv4, 255, nil
	case <-c.closed:
		return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
	}
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// inject delivers an advert from src.
func (c *fakeConn) inject(t *testing.T, src netip.Addr, p *Packet) {
	t.Helper()
	b, err := p.Marshal(src, MulticastIPv4)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		select {
		case c.in <- b:
			c.peer <- src
		case <-c.closed:
		}
	}()
}

// sentPriorities lists the priorities of the adverts sent so far.
func (c *fakeConn) sentPriorities() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := make([]int, len(c.sent))
	for i, p := range c.sent {
		ps[i] = int(p.Priority)
	}
	return ps
}

// --- a component on the fakes -------------------------------------------------

type fixture struct {
	t     *testing.T
	c     *Component
	netif *fakeNetif

	mu     sync.Mutex
	conns  map[string]*fakeConn // latest by interface
	events []string             // "type: message"
	runs   [][]string           // programs run (notify, scripts)
	script map[string]error     // result of each script (by argv[0])

	cancel context.CancelFunc
	done   chan error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	x := &fixture{t: t, netif: newFakeNetif(), conns: map[string]*fakeConn{}, script: map[string]error{}}
	x.c = New(x.netif, slog.New(slog.DiscardHandler), func(typ, msg string, _ any) {
		x.mu.Lock()
		x.events = append(x.events, typ+": "+msg)
		x.mu.Unlock()
	})
	x.c.open = func(ifname string, v6 bool, src netip.Addr, vrid int) (packetConn, error) {
		c := &fakeConn{ifname: ifname, src: src, in: make(chan []byte), peer: make(chan netip.Addr, 1), closed: make(chan struct{})}
		if !v6 {
			c.netif = x.netif
		}
		x.mu.Lock()
		x.conns[ifname] = c
		x.mu.Unlock()
		return c, nil
	}
	x.c.runProg = func(ctx context.Context, argv []string) error {
		x.mu.Lock()
		x.runs = append(x.runs, argv)
		err := x.script[argv[0]]
		x.mu.Unlock()
		return err
	}
	return x
}

// start applies cfg and runs the component until the test ends.
func (x *fixture) start(cfg *config.Config) {
	x.t.Helper()
	if err := x.c.Apply(cfg); err != nil {
		x.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel, x.done = cancel, make(chan error, 1)
	go func() { x.done <- x.c.Run(ctx) }()
	x.t.Cleanup(x.stop)
	x.eventually("every instance in status", func() (bool, string) {
		n := len(x.c.Status().([]InstanceStatus))
		return n == len(cfg.VRRP), fmt.Sprint(n, " instances")
	})
}

// stop ends Run and waits for it.
func (x *fixture) stop() {
	if x.cancel == nil {
		return
	}
	x.cancel()
	if err := <-x.done; err != nil {
		x.t.Errorf("Run: %v", err)
	}
	x.cancel = nil
}

func (x *fixture) setScript(program string, err error) {
	x.mu.Lock()
	x.script[program] = err
	x.mu.Unlock()
}

func (x *fixture) conn(ifname string) *fakeConn {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.conns[ifname]
}

func (x *fixture) status(name string) InstanceStatus {
	for _, s := range x.c.Status().([]InstanceStatus) {
		if s.Name == name {
			return s
		}
	}
	x.t.Fatalf("no instance %q in status", name)
	return InstanceStatus{}
}

func (x *fixture) hasEvent(sub string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range x.events {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

// pollBound is how long a state the loops reach on their own may take.
const pollBound = 5 * time.Second

// eventually polls cond until it holds or pollBound passes.
func (x *fixture) eventually(what string, cond func() (bool, string)) {
	x.t.Helper()
	deadline := time.Now().Add(pollBound)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("%s: not within %v; last saw %s", what, pollBound, saw)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitState waits until the instance is in state s.
func (x *fixture) waitState(name string, s State) InstanceStatus {
	x.t.Helper()
	var st InstanceStatus
	x.eventually(name+" in "+s.String(), func() (bool, string) {
		st = x.status(name)
		return st.State == s, fmt.Sprintf("%s %v priority %d", st.State, st.FaultReasons, st.EffectivePriority)
	})
	return st
}

func (x *fixture) waitPriority(name string, prio int) InstanceStatus {
	x.t.Helper()
	var st InstanceStatus
	x.eventually(fmt.Sprintf("%s at priority %d", name, prio), func() (bool, string) {
		st = x.status(name)
		return st.EffectivePriority == prio, fmt.Sprintf("%s priority %d tracked %+v", st.State, st.EffectivePriority, st.Tracked)
	})
	return st
}

// instanceCfg is a fast instance (10ms adverts) on ethN holding 10.0.N.100.
func instanceCfg(name string, n int) config.VRRPInstance {
	on := true
	return config.VRRPInstance{Name: name, Interface: fmt.Sprintf("eth%d", n), VRID: 10 + n, Version: 3, Priority: 100,
		AdvertInterval: config.Duration(10 * time.Millisecond), Preempt: &on,
		VIPs: []string{fmt.Sprintf("10.0.%d.100/24", n)},
		GARP: config.GARP{Repeat: new(1), Interval: config.Duration(10 * time.Millisecond)}}
}

func vip(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(n), 100}) }

func (x *fixture) holds(n int) bool {
	ok, _ := x.netif.HasVIP(fmt.Sprintf("eth%d", n), vip(n))
	return ok
}

func TestComponentMaintenance(t *testing.T) {
	x := newFixture(t)
	x.start(&config.Config{VRRP: []config.VRRPInstance{instanceCfg("a", 0)}})
	x.waitState("a", StateMaster)
	if !x.holds(0) {
		t.Fatal("precondition: MASTER without its VIP")
	}
	if x.c.Maintenance() {
		t.Fatal("maintenance on by default")
	}

	x.c.SetMaintenance(true)
	st := x.waitState("a", StateFault)
	if !slices.Equal(st.FaultReasons, []string{"maintenance"}) || st.LastTransition.Reason != "maintenance" {
		t.Errorf("fault reasons %q, transition %q; want maintenance", st.FaultReasons, st.LastTransition.Reason)
	}
	// No peer takes over: the VIP goes after one Master_Down_Interval.
	x.eventually("VIP released", func() (bool, string) { return !x.holds(0), "held" })
	if ps := x.conn("eth0").sentPriorities(); ps[len(ps)-1] != 0 {
		t.Errorf("last advert at priority %d, want 0 (the peer takes over at once)", ps[len(ps)-1])
	}
	if !x.c.Maintenance() || !x.hasEvent("vrrp.state: a: MASTER → FAULT (maintenance)") {
		t.Error("Maintenance() false or no event")
	}
	// It stays there: nothing sent, nothing taken, for many intervals.
	sent := len(x.conn("eth0").sentPriorities())
	x.c.SetMaintenance(true) // again: no change
	x.c.Handover()
	for range 3 {
		x.c.SetServiceHealth("other", false) // wakes the loop
	}
	if st := x.status("a"); st.State != StateFault || len(x.conn("eth0").sentPriorities()) != sent {
		t.Fatalf("in maintenance: %s, %d adverts sent since", st.State, len(x.conn("eth0").sentPriorities())-sent)
	}

	x.c.SetMaintenance(false)
	st = x.waitState("a", StateMaster)
	if len(st.FaultReasons) != 0 || !x.holds(0) {
		t.Errorf("after maintenance: reasons %q, VIP held %v", st.FaultReasons, x.holds(0))
	}
}

// TestComponentPrimaryAddressChanges: the interface's address changes under
// a MASTER (a DHCP lease replaced, static ↔ DHCP): it stays MASTER, keeps
// its VIP and goes on advertising from the new address.
func TestComponentPrimaryAddressChanges(t *testing.T) {
	x := newFixture(t)
	x.start(&config.Config{VRRP: []config.VRRPInstance{instanceCfg("a", 0)}})
	x.waitState("a", StateMaster)
	x.netif.setPrimary("eth0", netip.MustParseAddr("10.0.0.7"))
	sent := x.status("a").Counters.AdvertsSent
	x.eventually("adverts sent from the new address", func() (bool, string) {
		n := x.status("a").Counters.AdvertsSent
		return n >= sent+5, fmt.Sprint(n-sent, " sent since")
	})
	if st := x.status("a"); st.State != StateMaster || !x.holds(0) {
		t.Fatalf("after the address change: %s, VIP held %v", st.State, x.holds(0))
	}
}

// TestComponentVMAC: with use_vmac the macvlan exists from start to stop,
// the VIPs and the multicast adverts use it; unicast adverts stay on the
// interface.
func TestComponentVMAC(t *testing.T) {
	x := newFixture(t)
	a := instanceCfg("a", 0) // VRID 10
	a.UseVMAC = true
	b := instanceCfg("b", 1) // VRID 11, unicast
	b.UseVMAC = true
	b.UnicastPeers = []string{"10.0.1.3"}
	x.start(&config.Config{VRRP: []config.VRRPInstance{a, b}})
	x.waitState("a", StateMaster)
	x.waitState("b", StateMaster)
	for _, c := range []struct{ vmac, parent, sendIf string }{{"vrrp.10", "eth0", "vrrp.10"}, {"vrrp.11", "eth1", "eth1"}} {
		if !x.netif.hasVMAC(c.vmac) {
			t.Errorf("no %s", c.vmac)
		}
		if x.conn(c.sendIf) == nil {
			t.Errorf("adverts not sent on %s", c.sendIf)
		}
	}
	if ok, _ := x.netif.HasVIP("vrrp.10", vip(0)); !ok {
		t.Error("VIP not on vrrp.10")
	}
	if x.holds(0) {
		t.Error("VIP on eth0 too")
	}
	if st := x.status("a"); st.VMAC != "vrrp.10" || len(st.HeldVIPs) != 1 {
		t.Errorf("status: vmac %q, held %v", st.VMAC, st.HeldVIPs)
	}
	// Removed from the config: its macvlan goes; the other's stays.
	if err := x.c.Apply(&config.Config{VRRP: []config.VRRPInstance{b}}); err != nil {
		t.Fatal(err)
	}
	x.eventually("vrrp.10 removed", func() (bool, string) { return !x.netif.hasVMAC("vrrp.10"), "still there" })
	if !x.netif.hasVMAC("vrrp.11") {
		t.Error("vrrp.11 removed with a")
	}
	x.stop()
	if x.netif.hasVMAC("vrrp.11") {
		t.Error("vrrp.11 still there after stop")
	}
}

// TestComponentMaintenanceAtStart: set before Run (as the daemon does with
// the persisted flag), no instance ever takes its VIPs.
func TestComponentMaintenanceAtStart(t *testing.T) {
	x := newFixture(t)
	x.c.SetMaintenance(true)
	owner := instanceCfg("owner", 1)
	owner.AddressOwner, owner.Priority = true, 255
	x.start(&config.Config{VRRP: []config.VRRPInstance{instanceCfg("a", 0), owner}})
	x.waitState("a", StateFault)
	x.waitState("owner", StateFault)
	// Control: off again, both take their VIPs, so the fixture would have
	// seen a VIP taken.
	if n := x.netif.addCount(); n != 0 {
		t.Fatalf("%d VIPs added during maintenance", n)
	}
	x.c.SetMaintenance(false)
	x.waitState("owner", StateMaster)
	x.waitState("a", StateMaster)
	if !x.holds(0) || !x.holds(1) {
		t.Fatal("VIPs not taken after maintenance")
	}
}

func TestComponentTracking(t *testing.T) {
	x := newFixture(t)
	a := instanceCfg("a", 0)
	zero := 0
	a.Track = config.Track{Interfaces: []string{"eth9"}, Services: []string{"web"}, Weight: -30,
		Scripts: []config.TrackScript{{Name: "chk", Command: []string{"/chk"}, Interval: config.Duration(10 * time.Millisecond),
			Timeout: config.Duration(time.Second), Rise: 1, Fall: 1, Weight: &zero}}}
	x.start(&config.Config{VRRP: []config.VRRPInstance{a}})
	st := x.waitState("a", StateMaster)
	want := []TrackedStatus{
		{Kind: "interface", Name: "eth9", OK: true, Weight: -30},
		{Kind: "service", Name: "web", OK: true, Weight: -30},
		{Kind: "script", Name: "chk", OK: true, Weight: 0},
	}
	if !slices.Equal(st.Tracked, want) || st.EffectivePriority != 100 {
		t.Fatalf("tracked %+v priority %d, want %+v at 100", st.Tracked, st.EffectivePriority, want)
	}

	x.netif.setLink("eth9", false)
	st = x.waitPriority("a", 70)
	if st.Tracked[0].OK || st.Tracked[0].Detail != "link down" || st.State != StateMaster {
		t.Errorf("eth9 down: %+v in %s", st.Tracked[0], st.State)
	}
	x.c.SetServiceHealth("web", false)
	st = x.waitPriority("a", 40)
	if st.Tracked[1].OK || st.Tracked[1].Detail != "no healthy backend" {
		t.Errorf("web unhealthy: %+v", st.Tracked[1])
	}
	if ps := x.conn("eth0").sentPriorities(); !slices.Contains(ps, 40) {
		t.Errorf("no advert at 40 (sent %v): a backup could not preempt", ps)
	}
	x.c.SetServiceHealth("web", true)
	x.netif.setLink("eth9", true)
	x.waitPriority("a", 100)

	// A script of weight 0 forces FAULT.
	x.setScript("/chk", errors.New("exit status 1"))
	st = x.waitState("a", StateFault)
	if want := []string{"tracked script chk: exit status 1"}; !slices.Equal(st.FaultReasons, want) {
		t.Errorf("fault reasons %q, want %q", st.FaultReasons, want)
	}
	if x.holds(0) {
		t.Error("VIP held in FAULT")
	}
	if !x.hasEvent("vrrp.track: a: tracked script chk: exit status 1 fails") {
		t.Error("no vrrp.track event")
	}
	x.setScript("/chk", nil)
	x.waitState("a", StateMaster)

	// A tracked interface that disappears fails too.
	x.netif.mu.Lock()
	x.netif.gone["eth9"] = true
	x.netif.mu.Unlock()
	st = x.waitPriority("a", 70)
	if !strings.Contains(st.Tracked[0].Detail, "not found") {
		t.Errorf("gone eth9: %+v", st.Tracked[0])
	}
}

// watchingNetif is a fakeNetif that tells of changes (linkWatcher) when
// the test sends on events.
type watchingNetif struct {
	*fakeNetif
	events chan struct{}
	forgot atomic.Int32
}

func (w *watchingNetif) WatchLinks(context.Context) (<-chan struct{}, error) { return w.events, nil }
func (w *watchingNetif) Forget()                                             { w.forgot.Add(1) }

// TestComponentWatchesLinks: with a Netif that tells of changes, a tracked
// link going down is seen when it tells (the poll is an hour away here),
// after the answers from before were forgotten; once its notifications
// end, the links are polled every linkPoll again.
func TestComponentWatchesLinks(t *testing.T) {
	x := newFixture(t)
	w := &watchingNetif{fakeNetif: x.netif, events: make(chan struct{}, 1)}
	x.c.netif, x.c.watchPoll = w, time.Hour
	a := instanceCfg("a", 0)
	a.Track = config.Track{Interfaces: []string{"eth9"}, Weight: -30}
	x.start(&config.Config{VRRP: []config.VRRPInstance{a}})
	x.waitState("a", StateMaster)

	x.netif.setLink("eth9", false)
	time.Sleep(3 * linkPoll)
	if st := x.status("a"); st.EffectivePriority != 100 {
		t.Fatalf("eth9's change seen at priority %d with nothing told: still polled every %v?", st.EffectivePriority, linkPoll)
	}
	w.events <- struct{}{}
	x.waitPriority("a", 70)
	if w.forgot.Load() == 0 {
		t.Error("the look after the notification did not forget the answers from before it")
	}

	close(w.events)
	x.netif.setLink("eth9", true)
	x.waitPriority("a", 100)
}

// TestComponentTrackedOwnInterface: the own link down is a FAULT whatever
// the weights; its reason joins the others.
func TestComponentOwnLinkAndMaintenanceTogether(t *testing.T) {
	x := newFixture(t)
	x.start(&config.Config{VRRP: []config.VRRPInstance{instanceCfg("a", 0)}})
	x.waitState("a", StateMaster)
	x.netif.setLink("eth0", false)
	x.waitState("a", StateFault)
	x.c.SetMaintenance(true)
	x.eventually("both reasons", func() (bool, string) {
		r := x.status("a").FaultReasons
		return slices.Equal(r, []string{"eth0 link down", "maintenance"}), fmt.Sprint(r)
	})
	x.netif.setLink("eth0", true)
	x.eventually("maintenance alone", func() (bool, string) {
		st := x.status("a")
		return slices.Equal(st.FaultReasons, []string{"maintenance"}) && st.State == StateFault, fmt.Sprint(st.State, st.FaultReasons)
	})
	x.c.SetMaintenance(false)
	x.waitState("a", StateMaster)
}

func TestComponentSyncGroup(t *testing.T) {
	x := newFixture(t)
	cfg := &config.Config{
		VRRP:           []config.VRRPInstance{instanceCfg("a", 0), instanceCfg("b", 1), instanceCfg("c", 2)},
		VRRPSyncGroups: []config.VRRPSyncGroup{{Name: "g", Instances: []string{"a", "b"}}},
	}
	x.start(cfg)
	for _, n := range []string{"a", "b"} {
		st := x.waitState(n, StateMaster)
		if st.SyncGroup != "g" || st.LastTransition.Reason != "sync group g: every member wants MASTER" {
			t.Errorf("%s: group %q, became MASTER because %q", n, st.SyncGroup, st.LastTransition.Reason)
		}
	}
	x.waitState("c", StateMaster)

	// b's link fails: a follows into FAULT; c (no group) does not.
	x.netif.setLink("eth1", false)
	x.waitState("b", StateFault)
	st := x.waitState("a", StateFault)
	if want := []string{"sync group g: b in FAULT (eth1 link down)"}; !slices.Equal(st.FaultReasons, want) {
		t.Errorf("a's fault reasons %q, want %q", st.FaultReasons, want)
	}
	if x.holds(0) || x.holds(1) {
		t.Error("a group member in FAULT holds its VIP")
	}
	if st := x.status("c"); st.State != StateMaster {
		t.Errorf("c (not in the group) is %s", st.State)
	}
	x.netif.setLink("eth1", true)
	x.waitState("a", StateMaster)
	x.waitState("b", StateMaster)

	// A higher-priority master for a: a steps down, b with it (priority-0
	// advert, so b's peer takes over at once).
	peerA := netip.MustParseAddr("10.0.0.1")
	sentB := len(x.conn("eth1").sentPriorities())
	x.conn("eth0").inject(t, peerA, &Packet{Version: 3, VRID: 10, Priority: 200, MaxAdvertInterval: 10 * time.Millisecond, Addrs: []netip.Addr{vip(0)}})
	x.eventually("b stepped down with a", func() (bool, string) {
		return x.hasEvent("b: MASTER → BACKUP (sync group g: a became BACKUP)"), "no such event"
	})
	if ps := x.conn("eth1").sentPriorities()[sentB:]; !slices.Contains(ps, 0) {
		t.Errorf("b sent %v after stepping down, want a priority-0 advert", ps)
	}
	// The peer sent one advert only: both take MASTER back, together.
	x.waitState("a", StateMaster)
	x.waitState("b", StateMaster)

	// Regrouped without a restart: b out of the group, its fault no
	// longer reaches a.
	cfg2 := *cfg
	cfg2.VRRPSyncGroups = []config.VRRPSyncGroup{{Name: "h", Instances: []string{"a", "c"}}}
	if err := x.c.Apply(&cfg2); err != nil {
		t.Fatal(err)
	}
	x.eventually("regrouped", func() (bool, string) {
		a, b := x.status("a"), x.status("b")
		return a.SyncGroup == "h" && b.SyncGroup == "", a.SyncGroup + "/" + b.SyncGroup
	})
	x.netif.setLink("eth1", false)
	x.waitState("b", StateFault)
	x.netif.setLink("eth2", false)
	x.waitState("a", StateFault)
	if st := x.status("a"); !slices.Equal(st.FaultReasons, []string{"sync group h: c in FAULT (eth2 link down)"}) {
		t.Errorf("a's reasons %q", st.FaultReasons)
	}
}

func TestComponentNotify(t *testing.T) {
	x := newFixture(t)
	a := instanceCfg("a", 0)
	a.Notify = "/etc/halb/notify"
	x.start(&config.Config{VRRP: []config.VRRPInstance{a}})
	x.waitState("a", StateMaster)
	x.c.SetMaintenance(true)
	x.waitState("a", StateFault)
	x.stop()
	x.mu.Lock()
	defer x.mu.Unlock()
	var got []string
	for _, r := range x.runs {
		got = append(got, strings.Join(r, " "))
	}
	want := []string{
		"/etc/halb/notify a BACKUP 100",
		"/etc/halb/notify a MASTER 100",
		"/etc/halb/notify a FAULT 100",
		"/etc/halb/notify a STOP 100",
	}
	if !slices.Equal(got, want) {
		t.Errorf("notify runs:\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestComponentServiceHealthBeforeStart: health pushed before the
// instance exists applies from its start.
func TestComponentServiceHealthBeforeStart(t *testing.T) {
	x := newFixture(t)
	x.c.SetServiceHealth("web", false)
	a := instanceCfg("a", 0)
	a.Track = config.Track{Services: []string{"web"}, Weight: 0}
	x.start(&config.Config{VRRP: []config.VRRPInstance{a}})
	st := x.waitState("a", StateFault)
	if want := []string{"tracked service web: no healthy backend"}; !slices.Equal(st.FaultReasons, want) {
		t.Errorf("reasons %q, want %q", st.FaultReasons, want)
	}
	if n := x.netif.addCount(); n != 0 {
		t.Errorf("%d VIPs added while the tracked service was down", n)
	}
	x.c.SetServiceHealth("web", true)
	x.waitState("a", StateMaster)
}

// TestComponentPeerAdvertAtStart: an instance that has just started has
// heard no advert because none was due yet; a peer-link advert then (the
// peer link's first exchange after a join, or after halbd restarts on a
// paired node) does not mean the link carries none. Before, it set "via
// the peer link" (the multicast-blocked warning, event and alarm) on every
// join, until the first advert on the wire cleared it a moment later.
func TestComponentPeerAdvertAtStart(t *testing.T) {
	x := newFixture(t)
	a := instanceCfg("a", 0)
	a.AdvertInterval = config.Duration(2 * time.Second)
	x.start(&config.Config{VRRP: []config.VRRPInstance{a}})
	x.waitState("a", StateBackup)
	x.c.PeerAdvert("a", netip.MustParseAddr("10.0.0.9"), 150)
	// The loop runs queued orders in turn: once this one ran, so did the
	// peer-link advert.
	x.c.mu.Lock()
	in := x.c.instances[0]
	x.c.mu.Unlock()
	done := make(chan struct{})
	in.post(func(*machine, time.Time) Actions { close(done); return Actions{} })
	<-done
	if st := x.status("a"); st.ViaPeerLink || st.Counters.PeerLinkAdverts != 0 {
		t.Errorf("a peer-link advert 0s after the start (advert interval 2s): via peer link %v, %d counted; want neither",
			st.ViaPeerLink, st.Counters.PeerLinkAdverts)
	}
}

// TestComponentPeerAdvert: with no adverts on the link (multicast blocked
// between the nodes) both nodes would be MASTER; adverts that come over the
// peer link settle it as adverts on the wire would: a higher-priority peer
// makes this node BACKUP and keeps it there while they keep coming, and
// when they stop the node takes over after Master_Down_Interval at the
// link's one-second interval. While adverts arrive on the link, those over
// the peer link change nothing.
func TestComponentPeerAdvert(t *testing.T) {
	x := newFixture(t)
	// 200ms adverts: "adverts on the wire" means one in the last 600ms,
	// which the injected ones (every 20ms) keep true on a loaded machine.
	a := instanceCfg("a", 0)
	a.AdvertInterval = config.Duration(200 * time.Millisecond)
	x.start(&config.Config{VRRP: []config.VRRPInstance{a}})
	x.waitState("a", StateMaster)
	peer := netip.MustParseAddr("10.0.0.9")
	x.c.PeerAdvert("a", peer, 150)
	st := x.waitState("a", StateBackup)
	if !st.ViaPeerLink || st.Counters.PeerLinkAdverts != 1 {
		t.Errorf("after a peer-link advert: via peer link %v, %d counted", st.ViaPeerLink, st.Counters.PeerLinkAdverts)
	}
	x.eventually("VIP released", func() (bool, string) { return !x.holds(0), "held" })
	x.eventually("event", func() (bool, string) { return x.hasEvent("vrrp.peer_link"), "no vrrp.peer_link event" })
	// Kept BACKUP by adverts every 500ms (200ms adverts on the wire would
	// have timed out after 600ms and some).
	for range 6 {
		time.Sleep(500 * time.Millisecond)
		x.c.PeerAdvert("a", peer, 150)
		if s := x.status("a").State; s != StateBackup {
			t.Fatalf("with peer-link adverts coming: %s, want BACKUP", s)
		}
	}
	// They stop (the peer died): MASTER again.
	x.waitState("a", StateMaster)

	// Adverts on the wire from a lower peer: the peer link's claim of a
	// higher one changes nothing (the wire is the authority while it works).
	c := x.conn("eth0")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				c.inject(t, peer, &Packet{Version: 3, VRID: 10, Priority: 50, MaxAdvertInterval: 200 * time.Millisecond, Addrs: []netip.Addr{vip(0)}})
			}
		}
	}()
	x.eventually("adverts from the wire", func() (bool, string) {
		n := x.status("a").Counters.AdvertsReceived
		return n > 5, fmt.Sprint(n)
	})
	for range 5 {
		x.c.PeerAdvert("a", peer, 200)
		time.Sleep(100 * time.Millisecond)
		if st := x.status("a"); st.State != StateMaster || st.ViaPeerLink {
			t.Fatalf("peer-link advert while the wire works: %s, via peer link %v", st.State, st.ViaPeerLink)
		}
	}
}
