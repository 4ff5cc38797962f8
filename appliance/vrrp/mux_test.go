package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"halb/appliance/config"
)

// fakeLink is a link's socket: what a test injects is received, what is
// sent is recorded with its source.
type fakeLink struct {
	key    linkKey
	in     chan muxPacket
	fail   chan error
	closed chan struct{}
	once   sync.Once
	intr   chan struct{} // Interrupt's wake of Recv (one pending at most)

	mu    sync.Mutex
	vrids []int
	sent  []muxPacket // b, src (as src) and dst
	// held are packets in the socket whose arrival the reader was not
	// woken for (a stall): only RecvNow finds them. now counts them.
	held []muxPacket
	now  int
}

// hold puts p in the socket without waking the reader.
func (f *fakeLink) hold(p muxPacket) {
	f.mu.Lock()
	f.held = append(f.held, p)
	f.mu.Unlock()
}

func (f *fakeLink) Interrupt() error {
	select {
	case f.intr <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeLink) Resume() error { return nil }

func (f *fakeLink) RecvNow(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.held) > 0 {
		p := f.held[0]
		f.held = f.held[1:]
		f.now++
		return copy(b, p.b), p.src, p.dst, p.ttl, nil
	}
	select {
	case p := <-f.in:
		return copy(b, p.b), p.src, p.dst, p.ttl, nil
	default:
		return 0, netip.Addr{}, netip.Addr{}, 0, errNoPacket
	}
}

func (f *fakeLink) Send(b []byte, src, dst netip.Addr) error {
	f.mu.Lock()
	f.sent = append(f.sent, muxPacket{b: slices.Clone(b), src: src, dst: dst})
	f.mu.Unlock()
	return nil
}

func (f *fakeLink) Recv(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	select {
	case p := <-f.in:
		return copy(b, p.b), p.src, p.dst, p.ttl, nil
	case err := <-f.fail:
		return 0, netip.Addr{}, netip.Addr{}, 0, err
	case <-f.intr:
		return 0, netip.Addr{}, netip.Addr{}, 0, os.ErrDeadlineExceeded
	case <-f.closed:
		return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
	}
}

func (f *fakeLink) SetVRIDs(vrids []int) error {
	f.mu.Lock()
	f.vrids = slices.Clone(vrids)
	f.mu.Unlock()
	return nil
}

func (f *fakeLink) filter() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vrids
}

func (f *fakeLink) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeLink) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// linkFixture is a sockets on fake links; opened lists every link opened.
type linkFixture struct {
	t      *testing.T
	s      *sockets
	mu     sync.Mutex
	opened []*fakeLink
}

func newLinkFixture(t *testing.T) *linkFixture {
	x := &linkFixture{t: t}
	x.s = newSockets(func(ifname string, v6 bool) (linkSocket, error) {
		f := &fakeLink{key: linkKey{ifname, v6}, in: make(chan muxPacket), fail: make(chan error, 1), closed: make(chan struct{}),
			intr: make(chan struct{}, 1)}
		x.mu.Lock()
		x.opened = append(x.opened, f)
		x.mu.Unlock()
		return f, nil
	})
	return x
}

func (x *linkFixture) links() []*fakeLink {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.opened)
}

func (x *linkFixture) conn(ifname string, vrid int) packetConn {
	x.t.Helper()
	c, err := x.s.conn(ifname, false, netip.MustParseAddr("10.0.0.1"), vrid)
	if err != nil {
		x.t.Fatal(err)
	}
	return c
}

// advert is a valid v3 advert of vrid from 10.0.0.3 (eth0 of the fake netif is 10.0.0.2).
func advert(t *testing.T, vrid int) muxPacket {
	t.Helper()
	src := netip.MustParseAddr("10.0.0.3")
	p := Packet{Version: 3, VRID: uint8(vrid), Priority: 100, MaxAdvertInterval: time.Second, Addrs: []netip.Addr{vip(0)}}
	b, err := p.Marshal(src, MulticastIPv4)
	if err != nil {
		t.Fatal(err)
	}
	return muxPacket{b: b, src: src, dst: MulticastIPv4, ttl: 255}
}

// advertFrom is a valid v3 advert of vrid from 10.0.0.3 at prio, every iv.
func advertFrom(t *testing.T, vrid, prio int, iv time.Duration) muxPacket {
	t.Helper()
	p := advert(t, vrid)
	pkt, err := Parse(p.b, p.src, p.dst)
	if err != nil {
		t.Fatal(err)
	}
	pkt.Priority, pkt.MaxAdvertInterval = uint8(prio), iv
	if p.b, err = pkt.Marshal(p.src, p.dst); err != nil {
		t.Fatal(err)
	}
	return p
}

// recvOne returns c's next packet's VRID, or -1 when none comes within d.
func recvOne(c packetConn, d time.Duration) (int, error) {
	type res struct {
		vrid int
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		b := make([]byte, 1500)
		n, _, _, _, err := c.Recv(b)
		v := -1
		if n >= 2 {
			v = int(b[1])
		}
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		return r.vrid, r.err
	case <-time.After(d):
		return -1, nil
	}
}

// TestSocketsShareOneSocketPerLink: the instances of a link and family
// share one socket whose filter lists their VRIDs; each packet reaches
// the instances of its VRID only; packets of other VRIDs and too short to
// name one reach none; the socket closes with the last instance.
func TestSocketsShareOneSocketPerLink(t *testing.T) {
	x := newLinkFixture(t)
	c1, c2 := x.conn("eth0", 1), x.conn("eth0", 2)
	c2b := x.conn("eth0", 2) // a v2 and a v3 instance of one VRID
	other := x.conn("eth1", 1)
	v6, err := x.s.conn("eth0", true, netip.MustParseAddr("fe80::1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	ls := x.links()
	if len(ls) != 3 {
		t.Fatalf("%d sockets opened, want 3 (eth0 IPv4, eth1 IPv4, eth0 IPv6)", len(ls))
	}
	eth0 := ls[0]
	if got := eth0.filter(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("eth0's filter %v, want [1 2]", got)
	}

	for _, p := range []muxPacket{advert(t, 3), {b: []byte{0x31}, src: netip.MustParseAddr("10.0.0.2"), dst: MulticastIPv4, ttl: 255}, advert(t, 2)} {
		eth0.in <- p
	}
	for _, c := range []packetConn{c2, c2b} {
		if v, err := recvOne(c, pollBound); v != 2 || err != nil {
			t.Errorf("instance of VRID 2 received VRID %d (%v) first, want 2", v, err)
		}
	}
	for name, c := range map[string]packetConn{"VRID 1 on eth0": c1, "eth1": other, "IPv6": v6} {
		if v, err := recvOne(c, 50*time.Millisecond); v != -1 || err != nil {
			t.Errorf("%s received VRID %d (%v), want nothing", name, v, err)
		}
	}

	// What is sent leaves through the shared socket from each
	// instance's source.
	c1.SetSource(netip.MustParseAddr("10.0.0.9"))
	c1.Send([]byte{1, 2}, MulticastIPv4)
	c2.Send([]byte{3, 4}, MulticastIPv4)
	eth0.mu.Lock()
	srcs := []string{eth0.sent[0].src.String(), eth0.sent[1].src.String()}
	eth0.mu.Unlock()
	if !slices.Equal(srcs, []string{"10.0.0.9", "10.0.0.1"}) {
		t.Errorf("sent from %v, want [10.0.0.9 10.0.0.1]", srcs)
	}

	// Leaving: the filter follows; the last one closes the socket.
	c1.Close()
	if got := eth0.filter(); !slices.Equal(got, []int{2}) {
		t.Errorf("filter %v after VRID 1 left, want [2]", got)
	}
	c2.Close()
	if eth0.isClosed() || !slices.Equal(eth0.filter(), []int{2}) {
		t.Error("socket closed or filter changed while an instance of VRID 2 is on it")
	}
	if _, _, _, _, err := c1.Recv(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Recv after Close: %v, want net.ErrClosed", err)
	}
	c2b.Close()
	if !eth0.isClosed() {
		t.Error("socket open after its last instance left")
	}
	c2b.Close() // again: nothing
	// The next instance opens a new one.
	c3 := x.conn("eth0", 3)
	defer c3.Close()
	if ls := x.links(); len(ls) != 4 || !slices.Equal(ls[3].filter(), []int{3}) {
		t.Errorf("after the socket closed, a new instance: %d sockets opened, want 4 with filter [3]", len(ls))
	}
	other.Close()
	v6.Close()
	for _, l := range x.links()[:3] {
		if !l.isClosed() {
			t.Errorf("socket %v open after its instances left", l.key)
		}
	}
}

// TestSocketsReceiveError: a receive error reaches every instance on the
// socket, and the next one to join opens a new socket.
func TestSocketsReceiveError(t *testing.T) {
	x := newLinkFixture(t)
	c1, c2 := x.conn("eth0", 1), x.conn("eth0", 2)
	boom := errors.New("boom")
	x.links()[0].fail <- boom
	for _, c := range []packetConn{c1, c2} {
		if _, err := recvOne(c, pollBound); !errors.Is(err, boom) {
			t.Errorf("Recv: %v, want the socket's error", err)
		}
	}
	c3 := x.conn("eth0", 3)
	if len(x.links()) != 2 {
		t.Fatalf("%d sockets opened, want a new one after the error", len(x.links()))
	}
	c1.Close()
	c2.Close()
	if !x.links()[0].isClosed() || x.links()[1].isClosed() {
		t.Error("the failed socket open after its instances left, or the new one closed")
	}
	c3.Close()
}

// TestComponentSharesLinkSocket: a component's instances on one link
// share a socket: instances added by a reload join it, removed ones
// leave it, and it closes when the last goes. A malformed advert counts
// as a drop of its VRID's instance only; one of a VRID no instance runs
// is counted nowhere.
func TestComponentSharesLinkSocket(t *testing.T) {
	x := newFixture(t)
	lx := newLinkFixture(t)
	x.c.open = lx.s.conn
	on := true
	inst := func(vrid int) config.VRRPInstance {
		return config.VRRPInstance{Name: fmt.Sprint("v", vrid), Interface: "eth0", VRID: vrid, Version: 3, Priority: 100,
			AdvertInterval: config.Duration(10 * time.Millisecond), Preempt: &on,
			VIPs: []string{fmt.Sprintf("10.0.%d.100/24", vrid)}}
	}
	x.start(&config.Config{VRRP: []config.VRRPInstance{inst(1), inst(2)}})
	x.waitState("v1", StateMaster)
	x.waitState("v2", StateMaster)
	ls := lx.links()
	if len(ls) != 1 || !slices.Equal(ls[0].filter(), []int{1, 2}) {
		t.Fatalf("%d sockets for two instances on eth0 (filter %v), want 1 with [1 2]", len(ls), ls[0].filter())
	}
	eth0 := ls[0]

	bad := advert(t, 1)
	bad.b[7] ^= 0xff // checksum
	eth0.in <- bad
	eth0.in <- advert(t, 7)
	x.eventually("v1 counts the bad checksum", func() (bool, string) {
		st := x.status("v1")
		return st.Drops["checksum"] == 1, fmt.Sprint(st.Drops)
	})
	if st := x.status("v1"); st.Counters.Dropped != 1 || len(st.Drops) != 1 {
		t.Errorf("v1 drops %v (%d), want only the checksum", st.Drops, st.Counters.Dropped)
	}
	if st := x.status("v2"); st.Counters.Dropped != 0 || len(st.Drops) != 0 {
		t.Errorf("v2 drops %v (%d), want none", st.Drops, st.Counters.Dropped)
	}

	// A higher priority master of VRID 2 makes v2 BACKUP, not v1.
	hi := advert(t, 2)
	p, _ := Parse(hi.b, hi.src, hi.dst)
	p.Priority = 200
	hi.b, _ = p.Marshal(hi.src, hi.dst)
	eth0.in <- hi
	x.waitState("v2", StateBackup)
	if st := x.status("v1"); st.State != StateMaster {
		t.Errorf("v1 %s after an advert of VRID 2, want MASTER", st.State)
	}

	// Reload: v2 goes, v3 comes; both on the same socket.
	if err := x.c.Apply(&config.Config{VRRP: []config.VRRPInstance{inst(1), inst(3)}}); err != nil {
		t.Fatal(err)
	}
	x.eventually("v3 MASTER", func() (bool, string) {
		for _, st := range x.c.Status().([]InstanceStatus) {
			if st.Name == "v3" {
				return st.State == StateMaster, st.State.String()
			}
		}
		return false, "not started"
	})
	x.eventually("filter [1 3]", func() (bool, string) {
		return slices.Equal(eth0.filter(), []int{1, 3}), fmt.Sprint(eth0.filter())
	})
	if len(lx.links()) != 1 || eth0.isClosed() {
		t.Errorf("%d sockets opened (closed %v) across the reload, want the one kept open", len(lx.links()), eth0.isClosed())
	}
	// (The status shows MASTER before the takeover's advert is sent.)
	x.eventually("adverts of VRIDs 1 and 3 sent through the shared socket", func() (bool, string) {
		eth0.mu.Lock()
		defer eth0.mu.Unlock()
		sentBy := map[int]bool{}
		for _, s := range eth0.sent {
			sentBy[int(s.b[1])] = true
		}
		return sentBy[1] && sentBy[3], fmt.Sprint("sent by ", sentBy)
	})

	// The last instance leaves: the socket closes.
	if err := x.c.Apply(&config.Config{}); err != nil {
		t.Fatal(err)
	}
	x.eventually("socket closed", func() (bool, string) { return eth0.isClosed(), "open" })
}

// TestBackupCatchesUpBeforeTakeover: a BACKUP whose Master_Down_Timer
// expires first reads what its socket holds. Here the master's adverts
// keep coming but reach the socket without waking the link's reader (as
// after a stall of the node: the runtime runs the instance's timer before
// the poller's wake-up): the instance must find them there and stay
// BACKUP, through many Master_Down_Intervals, never advertising.
func TestBackupCatchesUpBeforeTakeover(t *testing.T) {
	x := newFixture(t)
	lx := newLinkFixture(t)
	x.c.open = lx.s.conn
	on := true
	// Master_Down_Interval 180 ms at priority 100: the loop below holds
	// an advert every interval, so a stall of the test's goroutine of
	// more than ~130 ms (not rare under -race on 2 CPUs) would let the
	// socket run dry and the takeover would be right.
	const iv = 50 * time.Millisecond
	x.start(&config.Config{VRRP: []config.VRRPInstance{{Name: "v1", Interface: "eth0", VRID: 1, Version: 3, Priority: 100,
		AdvertInterval: config.Duration(iv), Preempt: &on, VIPs: []string{"10.0.1.100/24"}}}})
	x.eventually("the link's socket open", func() (bool, string) { return len(lx.links()) == 1, "" })
	eth0 := lx.links()[0]
	master := advertFrom(t, 1, 200, iv)
	eth0.in <- master
	x.waitState("v1", StateBackup)

	stop := time.Now().Add(12 * 180 * time.Millisecond)
	for time.Now().Before(stop) {
		eth0.hold(master)
		time.Sleep(iv)
		if st := x.status("v1"); st.State != StateBackup {
			t.Fatalf("v1 %s while the master's adverts waited in its socket, want BACKUP", st.State)
		}
	}
	eth0.mu.Lock()
	taken, sent := eth0.now, len(eth0.sent)
	eth0.mu.Unlock()
	if taken == 0 || sent != 0 {
		t.Errorf("%d held adverts read on catching up, %d adverts sent: want some read, none sent", taken, sent)
	}

	// The master goes quiet: the BACKUP takes over.
	x.waitState("v1", StateMaster)
}
