package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
)

// fakeEngine records the calls made to it, one line each.
type fakeEngine struct {
	calls *[]string
	id    int
	watch func(SessionChange)
}

func (f *fakeEngine) rec(format string, args ...any) {
	*f.calls = append(*f.calls, fmt.Sprintf("e%d ", f.id)+fmt.Sprintf(format, args...))
}

func (f *fakeEngine) Start(_ context.Context, g Global) error {
	f.rec("start AS%d %s port %d", g.ASN, g.RouterID, g.ListenPort)
	return nil
}
func (f *fakeEngine) Stop(context.Context) error { f.rec("stop"); return nil }
func (f *fakeEngine) AddNeighbor(_ context.Context, n Neighbor) error {
	f.rec("add %s AS%d hold %s ka %s ttl %d", n.Address, n.ASN, n.HoldTime, n.Keepalive, n.Multihop)
	return nil
}
func (f *fakeEngine) DeleteNeighbor(_ context.Context, a string) error {
	f.rec("delete %s", a)
	return nil
}
func (f *fakeEngine) Announce(_ context.Context, p netip.Prefix, a Attrs) error {
	f.rec("announce %s med %d prepend %d communities %x", p, a.MED, a.Prepend, a.Communities)
	return nil
}
func (f *fakeEngine) Withdraw(_ context.Context, p netip.Prefix) error {
	f.rec("withdraw %s", p)
	return nil
}
func (f *fakeEngine) Neighbors(context.Context) ([]NeighborState, error) {
	return []NeighborState{{Address: netip.MustParseAddr("10.0.0.254"), State: "established", Received: 0, Sent: 1}}, nil
}
func (f *fakeEngine) Routes(context.Context) ([]Route, error) { return nil, nil }
func (f *fakeEngine) WatchSessions(_ context.Context, fn func(SessionChange)) error {
	f.watch = fn
	return nil
}

// fakeLo records loopback changes.
type fakeLo struct{ calls *[]string }

func (l fakeLo) AddVIP(ifname string, p netip.Prefix) error {
	*l.calls = append(*l.calls, "lo add "+ifname+" "+p.String())
	return nil
}
func (l fakeLo) DelVIP(ifname string, p netip.Prefix) error {
	*l.calls = append(*l.calls, "lo del "+ifname+" "+p.String())
	return nil
}

func parse(t *testing.T, bgp string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("halb.yaml", []byte(`
node: {name: lb1}
services:
  - {name: web, listen: ["192.168.10.100:80"], default_backend: www}
backends:
  - {name: www, servers: [{name: s1, address: "10.0.0.11:80"}]}
`+bgp))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const oneVIP = `bgp:
  asn: 65001
  router_id: 10.0.0.1
  neighbors: [{address: 10.0.0.254, asn: 65000}]
  announce: [{vip: 192.168.10.100/32}]
`

// step reconciles and returns the calls it made.
func step(t *testing.T, c *Component, calls *[]string) []string {
	t.Helper()
	*calls = nil
	if _, err := c.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(*calls)
}

func expect(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: calls\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestComponentReconcile walks a node through its life with a fake engine:
// start unhealthy, health comes, goes, maintenance drains then withdraws,
// a neighbor changes, the router id changes, bgp goes away.
func TestComponentReconcile(t *testing.T) {
	var calls []string
	engines := 0
	now := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	c := New(slog.New(slog.DiscardHandler), fakeLo{&calls}, func() Engine {
		engines++
		return &fakeEngine{calls: &calls, id: engines}
	}, nil)
	c.now = func() time.Time { return now }
	c.Apply(parse(t, oneVIP))

	expect(t, "start, web not healthy yet", step(t, c, &calls),
		"e1 start AS65001 10.0.0.1 port 0",
		"e1 add 10.0.0.254 AS65000 hold 9s ka 3s ttl 1",
		"lo add lo 192.168.10.100/32")
	expect(t, "nothing changed", step(t, c, &calls))

	c.SetServiceHealth("web", true)
	expect(t, "web healthy", step(t, c, &calls), "e1 announce 192.168.10.100/32 med 0 prepend 0 communities []")
	if st := c.status(); len(st.VIPs) != 1 || !st.VIPs[0].Announced || st.VIPs[0].Reason != "healthy: web" || len(st.Sessions) != 1 || st.Sessions[0].ASN != 65000 {
		t.Errorf("status = %+v", st)
	}

	c.SetServiceHealth("web", false)
	expect(t, "web unhealthy", step(t, c, &calls), "e1 withdraw 192.168.10.100/32")
	c.SetServiceHealth("web", true)
	step(t, c, &calls)

	c.SetMaintenance(true, true)
	*(&calls) = nil
	next, err := c.reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "maintenance: drain first", calls, "e1 announce 192.168.10.100/32 med 0 prepend 0 communities [ffff0000]")
	if want := now.Add(DefaultDrain); !next.Equal(want) {
		t.Errorf("next = %v, want the drain's end %v", next, want)
	}
	now = now.Add(DefaultDrain)
	expect(t, "maintenance: withdraw after the drain", step(t, c, &calls), "e1 withdraw 192.168.10.100/32")
	c.SetMaintenance(false, true)
	expect(t, "maintenance off, web healthy", step(t, c, &calls), "e1 announce 192.168.10.100/32 med 0 prepend 0 communities []")

	c.Apply(parse(t, strings.Replace(oneVIP, "asn: 65000}", "asn: 65000, hold_time: 30s}", 1)))
	expect(t, "neighbor changed", step(t, c, &calls),
		"e1 delete 10.0.0.254",
		"e1 add 10.0.0.254 AS65000 hold 30s ka 10s ttl 1")

	c.Apply(parse(t, strings.Replace(oneVIP, "10.0.0.1", "10.0.0.2", 1)))
	expect(t, "router id changed: the speaker restarts", step(t, c, &calls),
		"e1 stop",
		"e1 start AS65001 10.0.0.2 port 0",
		"e1 add 10.0.0.254 AS65000 hold 9s ka 3s ttl 1",
		"e1 announce 192.168.10.100/32 med 0 prepend 0 communities []")

	replaced := strings.Replace(oneVIP, "announce: [{vip: 192.168.10.100/32}]", "announce: [{vip: 192.168.10.200/32, when: always}]", 1)
	c.Apply(parse(t, strings.Replace(replaced, "10.0.0.1", "10.0.0.2", 1)))
	expect(t, "VIP replaced", step(t, c, &calls),
		"lo add lo 192.168.10.200/32",
		"e1 withdraw 192.168.10.100/32",
		"e1 announce 192.168.10.200/32 med 0 prepend 0 communities []",
		"lo del lo 192.168.10.100/32")

	c.Apply(parse(t, ""))
	expect(t, "bgp removed", step(t, c, &calls), "e1 stop", "lo del lo 192.168.10.200/32")
	if st := c.Status(); st != nil {
		t.Errorf("Status with bgp off = %+v, want nil", st)
	}
	c.Apply(parse(t, oneVIP))
	if step(t, c, &calls); engines != 1 {
		t.Errorf("%d engines made, want 1 (restarted, not replaced)", engines)
	}
}

// TestComponentRun: Run reconciles on its own and stops the engine when
// its context ends.
func TestComponentRun(t *testing.T) {
	var calls []string
	c := New(slog.New(slog.DiscardHandler), nil, func() Engine { return &fakeEngine{calls: &calls, id: 1} }, nil)
	cfg := parse(t, strings.Replace(oneVIP, "{vip: 192.168.10.100/32}", "{vip: 192.168.10.100/32, when: always}", 1))
	c.Apply(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st := c.status(); st != nil && len(st.VIPs) == 1 && st.VIPs[0].Announced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not announce")
		}
	}
	cancel()
	<-done
	c.mu.Lock()
	defer c.mu.Unlock()
	if last := calls[len(calls)-1]; last != "e1 stop" {
		t.Errorf("last call %q, want the engine stopped", last)
	}
}

// TestRouterIDDefault: without router_id the router id is the local
// address of the route to the first IPv4 neighbor (loopback here).
func TestRouterIDDefault(t *testing.T) {
	b := &config.BGP{ASN: 65001, Neighbors: []config.BGPNeighbor{{Address: "::1", ASN: 65000}, {Address: "127.0.0.1", ASN: 65000}}}
	if g := globalOf(b); g.RouterID != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("router id %v, want 127.0.0.1 (the source toward the IPv4 neighbor)", g.RouterID)
	}
	b.RouterID = "10.9.9.9"
	if g := globalOf(b); g.RouterID != netip.MustParseAddr("10.9.9.9") {
		t.Errorf("router id %v, want the configured 10.9.9.9", g.RouterID)
	}
}

// event is one published event, as the daemon's stream gets it.
type event struct {
	typ, msg string
	data     map[string]any
}

// TestEvents: a session established and down (with the engine's
// reason), and a VIP announced, drained with GRACEFUL_SHUTDOWN,
// withdrawn by maintenance, by health, and by the config, each once.
func TestEvents(t *testing.T) {
	var calls []string
	var evs []event
	var eng *fakeEngine
	now := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	c := New(slog.New(slog.DiscardHandler), nil, func() Engine { eng = &fakeEngine{calls: &calls, id: 1}; return eng },
		func(typ, msg string, data any) { evs = append(evs, event{typ, msg, data.(map[string]any)}) })
	c.now = func() time.Time { return now }
	took := func(what string, want ...string) {
		t.Helper()
		var got []string
		for _, e := range evs {
			got = append(got, e.typ+": "+e.msg)
		}
		expect(t, what, got, want...)
		evs = nil
	}
	c.Apply(parse(t, oneVIP))
	step(t, c, &calls)
	took("web not healthy at the start: nothing withdrawn")

	nb := netip.MustParseAddr("10.0.0.254")
	eng.watch(SessionChange{Address: nb, ASN: 65000, From: "idle", To: "active"})
	eng.watch(SessionChange{Address: nb, ASN: 65000, From: "openconfirm", To: "established"})
	took("session up", "bgp.session_established: bgp: session with 10.0.0.254 (AS 65000) established")

	c.SetServiceHealth("web", true)
	step(t, c, &calls)
	took("healthy", "bgp.vip_announced: bgp: VIP 192.168.10.100/32 announced (healthy: web)")
	step(t, c, &calls)
	took("nothing changed")

	c.SetMaintenance(true, true)
	step(t, c, &calls)
	took("drain", "bgp.vip_graceful_shutdown: bgp: VIP 192.168.10.100/32 announced with GRACEFUL_SHUTDOWN (healthy: web; maintenance: draining with GRACEFUL_SHUTDOWN (65535:0) until 22:00:30)")
	if st := c.status(); st.VIPs[0].State != VIPGracefulShutdown || st.VIPs[0].Mode != "active_active" {
		t.Errorf("draining VIP status %+v", st.VIPs[0])
	}
	now = now.Add(DefaultDrain)
	step(t, c, &calls)
	took("drained", "bgp.vip_withdrawn: bgp: VIP 192.168.10.100/32 withdrawn (maintenance: withdrawn after the drain)")
	c.SetMaintenance(false, true)
	step(t, c, &calls)
	took("back", "bgp.vip_announced: bgp: VIP 192.168.10.100/32 announced (healthy: web)")

	c.SetServiceHealth("web", false)
	step(t, c, &calls)
	took("unhealthy", "bgp.vip_withdrawn: bgp: VIP 192.168.10.100/32 withdrawn (not healthy: web (fewer than min_healthy servers up))")
	c.SetServiceHealth("web", true)
	step(t, c, &calls)
	evs = nil

	eng.watch(SessionChange{Address: nb, ASN: 65000, From: "established", To: "idle", Reason: "hold-timer-expired"})
	took("session down", "bgp.session_down: bgp: session with 10.0.0.254 (AS 65000) down: hold-timer-expired")
	if st := c.status(); st.Sessions[0].DownReason != "hold-timer-expired" || !st.Sessions[0].LastDown.Equal(now) {
		t.Errorf("session status %+v, want the down reason and time", st.Sessions[0])
	}

	c.Apply(parse(t, strings.Replace(oneVIP, "192.168.10.100/32}", "192.168.10.200/32, when: always, mode: active_standby}", 1)))
	step(t, c, &calls)
	took("VIP replaced",
		"bgp.vip_announced: bgp: VIP 192.168.10.200/32 announced (when: always; standby: AS path prepended 3 times)",
		"bgp.vip_withdrawn: bgp: VIP 192.168.10.100/32 withdrawn (no longer in bgp.announce)")
	c.Apply(parse(t, ""))
	step(t, c, &calls)
	took("bgp removed", "bgp.vip_withdrawn: bgp: VIP 192.168.10.200/32 withdrawn (bgp removed from the config)")
	c.Apply(parse(t, oneVIP))
	step(t, c, &calls)
	c.SetServiceHealth("web", true)
	step(t, c, &calls)
	evs = nil
	c.stop()
	took("halbd stops", "bgp.vip_withdrawn: bgp: VIP 192.168.10.100/32 withdrawn (halbd stopping)")
}

// TestWithdraw: halbd stopping withdraws first (the speaker stops) but
// keeps the VIP on the loopback until the end; nothing is announced again.
func TestWithdraw(t *testing.T) {
	var calls []string
	c := New(slog.New(slog.DiscardHandler), fakeLo{&calls}, func() Engine { return &fakeEngine{calls: &calls, id: 1} }, nil)
	if c.Withdraw() {
		t.Error("Withdraw with nothing announced said it withdrew")
	}
	c = New(slog.New(slog.DiscardHandler), fakeLo{&calls}, func() Engine { return &fakeEngine{calls: &calls, id: 1} }, nil)
	c.Apply(parse(t, oneVIP))
	c.SetServiceHealth("web", true)
	step(t, c, &calls)
	calls = nil
	if !c.Withdraw() {
		t.Error("Withdraw of an announced VIP said it withdrew nothing")
	}
	expect(t, "withdraw", calls, "e1 stop")
	expect(t, "no reconcile after", step(t, c, &calls))
	calls = nil
	c.stop()
	expect(t, "stop", calls, "lo del lo 192.168.10.100/32")

	// With drain_to: new connections go on until none of this node's
	// own is open, then the speaker stops.
	c = New(slog.New(slog.DiscardHandler), fakeLo{&calls}, func() Engine { return &fakeEngine{calls: &calls, id: 1} }, nil)
	c.SetHandoff(fakeHandoff{&calls})
	open := 2
	c.openConns = func([]netip.Prefix) (int, error) {
		calls = append(calls, fmt.Sprintf("count %d", open))
		open--
		return open + 1, nil
	}
	c.Apply(parse(t, oneVIP+"  drain_to: [10.1.0.2]\n"))
	c.SetServiceHealth("web", true)
	step(t, c, &calls)
	calls = nil
	if !c.Withdraw() {
		t.Error("Withdraw of an announced VIP said it withdrew nothing")
	}
	expect(t, "withdraw with drain_to", calls, "handoff drain [192.168.10.100/32] [10.1.0.2]", "count 2", "count 1", "count 0", "e1 stop")
}
