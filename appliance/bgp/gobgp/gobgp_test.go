package gobgp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bfd"

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
// dials b (AS 65000, listening on 127.0.0.2), an eBGP session; a runs
// BFD to 127.0.0.2 as bfd says.
func pair(t *testing.T, bfd bgp.BFD) (a *Engine, b *listening) {
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
	startA(t, a, port, bfd)
	return a, b
}

// startA starts a, the speaker that dials b on 127.0.0.2:port, with BFD
// to 127.0.0.2 as bfd says.
func startA(t *testing.T, a *Engine, port int, bfd bgp.BFD) {
	t.Helper()
	ctx := context.Background()
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	if err := a.Start(ctx, bgp.Global{ASN: 65001, RouterID: lo1}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddNeighbor(ctx, bgp.Neighbor{Address: lo2, ASN: 65000, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Port: port, LocalAddress: lo1, ConnectRetry: time.Second, BFD: bfd}); err != nil {
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
	a, b := pair(t, bgp.BFD{})
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
	a, b := pair(t, bgp.BFD{})
	eventually(t, "the session to come up", func() bool { return established(t, a) && established(t, b) })
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see the session go", func() bool { return !established(t, b) })
	startA(t, a, b.port, bgp.BFD{})
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
	a, b := pair(t, bgp.BFD{})
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
	startA(t, a, b.port, bgp.BFD{})
	eventually(t, "b's watch to report the session established", func() bool { _, ok := has("established"); return ok })
}

// bfdPeer answers a's BFD packets on 127.0.0.2:3784 (RFC 5880's state
// machine, the part a session between two live ends needs) until freeze.
// GoBGP's BFD listens on *:3784, so a second in-process GoBGP speaker
// with BFD would share that socket with a; the test's socket, bound to
// 127.0.0.2 only, gets the packets sent to 127.0.0.2 (SO_REUSEADDR on
// both), and those to 127.0.0.1 go to a.
type bfdPeer struct {
	conn   *net.UDPConn
	frozen atomic.Bool
	mu     sync.Mutex
	state  bfd.StateType
	yours  uint32 // a's discriminator
}

const bfdMine = 0x48414c42 // the test peer's discriminator

func newBFDPeer(t *testing.T) *bfdPeer {
	t.Helper()
	// One such test at a time on the machine (another worktree's run
	// would share port 3784).
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "halb-gobgp-bfd-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // unlocks, last
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
		return errors.Join(err, serr)
	}}
	l, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.2:3784")
	if err != nil {
		t.Fatal(err)
	}
	p := &bfdPeer{conn: l.(*net.UDPConn), state: bfd.StateDown}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); p.conn.Close(); <-done })
	go p.receive()
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if !p.frozen.Load() {
					p.send()
				}
			}
		}
	}()
	return p
}

func (p *bfdPeer) receive() {
	buf := make([]byte, 512)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		var h bfd.BFDHeader
		if h.UnmarshalBinary(buf[:n]) != nil || p.frozen.Load() {
			continue
		}
		p.mu.Lock()
		p.yours = h.MyDiscriminator
		switch {
		case h.State == bfd.StateDown && p.state == bfd.StateDown:
			p.state = bfd.StateInit
		case (h.State == bfd.StateInit || h.State == bfd.StateUp) && p.state != bfd.StateUp:
			p.state = bfd.StateUp
		case h.State == bfd.StateDown && p.state == bfd.StateUp:
			p.state = bfd.StateDown
		}
		p.mu.Unlock()
	}
}

func (p *bfdPeer) send() error {
	p.mu.Lock()
	h := bfd.BFDHeader{Version: 1, State: p.state, DetectTimeMultiplier: 3, MyDiscriminator: bfdMine, YourDiscriminator: p.yours,
		DesiredMinTxInterval: 100_000, RequiredMinRxInterval: 100_000}
	p.mu.Unlock()
	b, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = p.conn.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3784})
	return err
}

func bfdOf(t *testing.T, e bgp.Engine) string {
	ns, err := e.Neighbors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 {
		return "no neighbor"
	}
	return ns[0].BFD
}

// TestGoBGPBFD: a runs BFD beside its session to b; the BFD session
// comes up with a peer that answers; when the peer stops answering, a's
// BFD goes down and takes the BGP session down with it, the reason
// saying so (b, whose BGP
// session is healthy, would keep it for its hold time). A BFD config
// GoBGP cannot carry is refused.
func TestGoBGPBFD(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peer := newBFDPeer(t)
	a, b := pair(t, bgp.BFD{Enabled: true}) // 300ms, 300ms, 3
	for _, bad := range []bgp.BFD{{Enabled: true, Multiplier: 256}, {Enabled: true, Multiplier: -1}, {Enabled: true, MinRx: -time.Second}} {
		if err := a.AddNeighbor(ctx, bgp.Neighbor{Address: netip.MustParseAddr("127.0.0.3"), ASN: 65003, BFD: bad}); err == nil {
			t.Errorf("BFD %+v accepted", bad)
		}
	}
	eventually(t, "the session and BFD to come up", func() bool {
		return established(t, a) && established(t, b) && bfdOf(t, a) == "up"
	})
	if got := bfdOf(t, b); got != "" {
		t.Errorf("b's BFD state = %q, want \"\" (off)", got)
	}

	var mu sync.Mutex
	var downs []bgp.SessionChange
	if err := a.WatchSessions(ctx, func(ch bgp.SessionChange) {
		if ch.From == "established" {
			mu.Lock()
			downs = append(downs, ch)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	peer.frozen.Store(true)
	// BFD goes down, BGP is reset, and BFD stops until BGP is back.
	eventually(t, "a's BFD to go down", func() bool { return bfdOf(t, a) != "up" })
	eventually(t, "a's session to go down", func() bool { mu.Lock(); defer mu.Unlock(); return len(downs) > 0 })
	mu.Lock()
	down := downs[0]
	mu.Unlock()
	if down.Address != netip.MustParseAddr("127.0.0.2") || !strings.HasPrefix(down.Reason, "bfd-down (detection time expired)") {
		t.Errorf("down = %+v, want 127.0.0.2 down with BFD's expiry as the reason", down)
	}
	t.Logf("down: %+v", down)
}

// TestLogHandler: GoBGP's records reach halb's log prefixed, from info
// up, and its BFD failures are noted even when halb's log drops them.
func TestLogHandler(t *testing.T) {
	var noted []string
	note := func(peer, why string) { noted = append(noted, peer+" "+why) }
	var buf bytes.Buffer
	l := slog.New(handler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), note}).With("Topic", "bfd")
	l.Debug("noise")
	l.Info("Peer Up")
	l.Warn("Expired", "Peer", "192.0.2.1")
	slog.New(handler{slog.DiscardHandler, note}).Warn("Remote peer signaled BFD down", "Peer", "192.0.2.2")
	out := buf.String()
	if strings.Contains(out, "noise") || !strings.Contains(out, `msg="gobgp: Peer Up"`) || !strings.Contains(out, `msg="gobgp: Expired"`) {
		t.Errorf("log = %q, want the info and warn records prefixed, not the debug one", out)
	}
	want := []string{"192.0.2.1 bfd-down (detection time expired)", "192.0.2.2 bfd-down (neighbor signalled down)"}
	if !slices.Equal(noted, want) {
		t.Errorf("noted %q, want %q", noted, want)
	}
}
