package gobgp

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"halb/appliance/bgp"
)

// freePort returns a TCP port free on addr now.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// listening is the speaker that b of pair is: it listens on port.
type listening struct {
	*Engine
	port int
}

// pair starts two GoBGP speakers on loopback: a (AS 65001, 127.0.0.1)
// dials b (AS 65000, listening on 127.0.0.2), an eBGP session.
func pair(t *testing.T) (a *Engine, b *listening) {
	t.Helper()
	ctx := context.Background()
	port := freePort(t, "127.0.0.2")
	a, b = New(nil), &listening{New(nil), port}
	t.Cleanup(func() {
		a.Stop(ctx)
		b.Stop(ctx)
	})
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	if err := b.Start(ctx, bgp.Global{ASN: 65000, RouterID: lo2, ListenPort: port, ListenAddresses: []netip.Addr{lo2}}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddNeighbor(ctx, bgp.Neighbor{Address: lo1, ASN: 65001, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Passive: true}); err != nil {
		t.Fatal(err)
	}
	startA(t, a, port)
	return a, b
}

// startA starts a, the speaker that dials b on 127.0.0.2:port.
func startA(t *testing.T, a *Engine, port int) {
	t.Helper()
	ctx := context.Background()
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	if err := a.Start(ctx, bgp.Global{ASN: 65001, RouterID: lo1}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddNeighbor(ctx, bgp.Neighbor{Address: lo2, ASN: 65000, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Port: port, LocalAddress: lo1, ConnectRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 50ms until it holds or 30s pass (a bound on
// a broken session, not a speed assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func established(t *testing.T, e bgp.Engine) bool {
	ns, err := e.Neighbors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(ns) == 1 && ns[0].State == "established" && !ns[0].Since.IsZero()
}

func routeTo(t *testing.T, e bgp.Engine, p netip.Prefix) (bgp.Route, bool) {
	rs, err := e.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Prefix == p {
			return r, true
		}
	}
	return bgp.Route{}, false
}

// TestGoBGPAnnounceWithdraw: a session between two real GoBGP speakers
// comes up; a host route announced by one arrives at the other with its
// attributes, changes when they change, and goes when withdrawn.
func TestGoBGPAnnounceWithdraw(t *testing.T) {
	ctx := context.Background()
	a, b := pair(t)
	eventually(t, "the session to come up on both sides", func() bool { return established(t, a) && established(t, b) })

	vip := netip.MustParsePrefix("192.168.10.100/32")
	if err := a.Announce(ctx, vip, bgp.Attrs{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to learn "+vip.String(), func() bool { _, ok := routeTo(t, b, vip); return ok })
	r, _ := routeTo(t, b, vip)
	if want := netip.MustParseAddr("127.0.0.1"); r.NextHop != want || r.From != want || !slices.Equal(r.ASPath, []uint32{65001}) {
		t.Errorf("route at b = %+v, want next hop and from 127.0.0.1, AS path [65001]", r)
	}

	// A standby's path: prepended, with a MED and GRACEFUL_SHUTDOWN.
	attrs := bgp.Attrs{MED: 50, Prepend: 3, Communities: []uint32{bgp.GracefulShutdown}}
	if err := a.Announce(ctx, vip, attrs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the changed attributes at b", func() bool { r, _ := routeTo(t, b, vip); return r.MED == 50 })
	r, _ = routeTo(t, b, vip)
	if !slices.Equal(r.ASPath, []uint32{65001, 65001, 65001, 65001}) || !slices.Equal(r.Communities, []uint32{bgp.GracefulShutdown}) {
		t.Errorf("route at b = %+v, want AS path 65001 x4 and community 65535:0", r)
	}
	eventually(t, "a to count 1 prefix sent, b 1 received", func() bool {
		na, _ := a.Neighbors(ctx)
		nb, _ := b.Neighbors(ctx)
		return len(na) == 1 && na[0].Sent == 1 && len(nb) == 1 && nb[0].Received == 1
	})

	if err := a.Withdraw(ctx, vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to drop "+vip.String(), func() bool { _, ok := routeTo(t, b, vip); return !ok })

	// IPv6 over the same session.
	vip6 := netip.MustParsePrefix("2001:db8::100/128")
	if err := a.Announce(ctx, vip6, bgp.Attrs{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to learn "+vip6.String(), func() bool { _, ok := routeTo(t, b, vip6); return ok })

	// Deleting the neighbor closes the session: b loses the routes.
	if err := a.DeleteNeighbor(ctx, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to drop the routes of a closed session", func() bool { _, ok := routeTo(t, b, vip6); return !ok })
}

// TestGoBGPRestart: a stopped engine starts again (halb restarts its one
// engine when the global settings change) and its session comes back.
func TestGoBGPRestart(t *testing.T) {
	ctx := context.Background()
	a, b := pair(t)
	eventually(t, "the session to come up", func() bool { return established(t, a) && established(t, b) })
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see the session go", func() bool { return !established(t, b) })
	startA(t, a, b.port)
	vip := netip.MustParsePrefix("192.168.10.100/32")
	if err := a.Announce(ctx, vip, bgp.Attrs{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to learn the route of the restarted a", func() bool { _, ok := routeTo(t, b, vip); return ok })
}

// TestGoBGPWatchSessions: b's watch reports its session going down when
// a stops, with the reason GoBGP gives (a's Cease), and coming back.
func TestGoBGPWatchSessions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := pair(t)
	eventually(t, "the session to come up", func() bool { return established(t, a) && established(t, b) })
	var mu sync.Mutex
	var got []bgp.SessionChange
	if err := b.WatchSessions(ctx, func(ch bgp.SessionChange) { mu.Lock(); got = append(got, ch); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	has := func(to string) (bgp.SessionChange, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range got {
			if ch.To == to || (to == "down" && ch.From == "established") {
				return ch, true
			}
		}
		return bgp.SessionChange{}, false
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's watch to report the session down", func() bool { _, ok := has("down"); return ok })
	down, _ := has("down")
	if down.Address != netip.MustParseAddr("127.0.0.1") || down.ASN != 65001 || !strings.Contains(down.Reason, "cease") {
		t.Errorf("down = %+v, want 127.0.0.1 AS 65001 with a's Cease as the reason", down)
	}
	t.Logf("down: %+v", down)
	startA(t, a, b.port)
	eventually(t, "b's watch to report the session established", func() bool { _, ok := has("established"); return ok })
}
