package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"halb/netlab"
)

// connFamilies are a's addresses in a nifLab and the VRRP groups, per
// family.
var connFamilies = []struct {
	v6       bool
	src, dst netip.Addr
}{
	{false, netip.MustParseAddr("10.9.0.1"), MulticastIPv4},
	{true, netip.MustParseAddr("fd00:9::1"), MulticastIPv6},
}

// TestConnReceivesItsVRID: an instance's socket receives the adverts of
// its VRID and none of another VRID on the same link, over IPv4 and IPv6.
// b's instances of VRIDs 1 and 2 share a socket (one sockets); a sends
// adverts of VRIDs 3 (no instance), 2, then 1: each instance's first
// packet is its own, and the socket filter kept VRID 3 out.
func TestConnReceivesItsVRID(t *testing.T) {
	x := newNifLab(t)
	for _, fam := range connFamilies {
		t.Run(fmt.Sprintf("v6=%v", fam.v6), func(t *testing.T) {
			socks := newSockets(openRawLink)
			var recv [3]packetConn // by VRID 1, 2
			for vrid := 1; vrid <= 2; vrid++ {
				if err := x.b.Do(func() (err error) {
					recv[vrid], err = socks.conn("eth0", fam.v6, netip.Addr{}, vrid)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				defer recv[vrid].Close()
			}
			l := socks.links[linkKey{"eth0", fam.v6}]
			if len(socks.links) != 1 || l == nil {
				t.Fatalf("%d sockets for two instances on one link, want 1", len(socks.links))
			}
			// The bare socket with the same filter.
			var filtered *rawConn
			if err := x.b.Do(func() (err error) {
				if filtered, err = openConn("eth0", fam.v6); err == nil {
					err = filtered.SetVRIDs([]int{1, 2})
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer filtered.Close()
			send := openSender(t, x.a, fam.v6)
			for _, vrid := range []int{3, 2, 1} {
				sendAdvert(t, send, fam.src, fam.dst, vrid)
			}
			l.sock.(*rawConn).c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for vrid := 1; vrid <= 2; vrid++ {
				buf := make([]byte, 1500)
				n, src, dst, _, err := recv[vrid].Recv(buf)
				if err != nil {
					t.Fatalf("socket of VRID %d: %v", vrid, err)
				}
				p, err := Parse(buf[:n], src, dst)
				if err != nil {
					t.Fatalf("socket of VRID %d: %v", vrid, err)
				}
				if int(p.VRID) != vrid {
					t.Errorf("socket of VRID %d received first an advert of VRID %d", vrid, p.VRID)
				}
			}
			filtered.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for _, vrid := range []int{2, 1} {
				buf := make([]byte, 1500)
				n, _, _, _, err := filtered.Recv(buf)
				if err != nil {
					t.Fatalf("socket filtered for VRIDs 1 and 2: %v", err)
				}
				if n < 2 || int(buf[1]) != vrid {
					t.Errorf("socket filtered for VRIDs 1 and 2 received %x, want VRID %d next", buf[:n], vrid)
				}
			}
		})
	}
}

// TestHeardListens: the listener of other nodes' routers (batch reads of
// a socket on every interface) hears a's adverts of VRIDs 5 and 6 on b's
// eth0, over IPv4 (whose batch reads keep the IP header) and IPv6.
func TestHeardListens(t *testing.T) {
	x := newNifLab(t)
	for _, fam := range connFamilies {
		t.Run(fmt.Sprintf("v6=%v", fam.v6), func(t *testing.T) {
			h := newHeard(time.Now)
			defer listenIn(t, x.b, h, fam.v6)()
			send := openSender(t, x.a, fam.v6)
			heardBoth := func() bool {
				got := map[int]bool{}
				for _, r := range h.list() {
					if r.Interface == "eth0" && r.Source == fam.src && r.Priority == 100 {
						got[r.VRID] = true
					}
				}
				return got[5] && got[6]
			}
			deadline := time.Now().Add(5 * time.Second)
			for !heardBoth() {
				if time.Now().After(deadline) {
					t.Fatalf("heard %+v, want VRIDs 5 and 6 from %s on eth0", h.list(), fam.src)
				}
				for _, vrid := range []int{5, 6} {
					sendAdvert(t, send, fam.src, fam.dst, vrid)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// openSender opens a link socket on h's eth0, closed when the test ends.
func openSender(t *testing.T, h *netlab.Host, v6 bool) *rawConn {
	t.Helper()
	var c *rawConn
	if err := h.Do(func() (err error) {
		c, err = openConn("eth0", v6)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendAdvert sends a v3 advert of vrid at priority 100 from src to dst.
func sendAdvert(t *testing.T, c *rawConn, src, dst netip.Addr, vrid int) {
	t.Helper()
	p := Packet{Version: 3, VRID: uint8(vrid), Priority: 100, MaxAdvertInterval: time.Second, Addrs: []netip.Addr{src}}
	b, err := p.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(b, src, dst); err != nil {
		t.Fatal(err)
	}
}

// TestHeardFedByLinkSockets: on a link where an instance of b runs, the
// link's shared socket feeds heard (adverts of every VRID, the
// instance's and others'); a listener told the link is covered skips it
// (its socket filter), and hears it again once it is not.
func TestHeardFedByLinkSockets(t *testing.T) {
	x := newNifLab(t)
	for _, fam := range connFamilies {
		t.Run(fmt.Sprintf("v6=%v", fam.v6), func(t *testing.T) {
			h := newHeard(time.Now)
			socks := newSockets(openRawLink)
			socks.heard = h
			var inst packetConn
			if err := x.b.Do(func() (err error) {
				inst, err = socks.conn("eth0", fam.v6, netip.Addr{}, 5)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			// What the listener records, apart from the shared socket.
			listened := newHeard(time.Now)
			listened.cover("eth0", fam.v6, true)
			defer listenIn(t, x.b, listened, fam.v6)()
			send := openSender(t, x.a, fam.v6)
			vrids := func(h *heard) map[int]bool {
				got := map[int]bool{}
				for _, r := range h.list() {
					if r.Interface == "eth0" && r.Source == fam.src {
						got[r.VRID] = true
					}
				}
				return got
			}
			deadline := time.Now().Add(5 * time.Second)
			for got := vrids(h); !got[5] || !got[6]; got = vrids(h) {
				if time.Now().After(deadline) {
					t.Fatalf("heard %+v, want VRIDs 5 and 6 from %s on eth0", h.list(), fam.src)
				}
				for _, vrid := range []int{5, 6} {
					sendAdvert(t, send, fam.src, fam.dst, vrid)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if v, err := recvOne(inst, pollBound); v != 5 || err != nil {
				t.Errorf("the instance of VRID 5 received VRID %d (%v), want 5", v, err)
			}
			if got := vrids(listened); len(got) > 0 {
				t.Errorf("the listener heard %v on eth0, which the shared socket reads", got)
			}
			inst.Close()
			listened.cover("eth0", fam.v6, false)
			deadline = time.Now().Add(5 * time.Second)
			for !vrids(listened)[6] {
				if time.Now().After(deadline) {
					t.Fatalf("the listener heard %+v after the instance left, want VRID 6 on eth0", listened.list())
				}
				sendAdvert(t, send, fam.src, fam.dst, 6)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// listenIn runs h's listener of the family in host's namespace; the
// function returned stops it.
func listenIn(t *testing.T, host *netlab.Host, h *heard, v6 bool) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- host.Do(func() error { return h.listenFamily(ctx, v6) }) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen: %v", err)
		}
	}
}

// TestConnCatchUp: the primitives of a link reader's catching up, on a
// real socket: with adverts waiting in it, Interrupt makes Recv return
// os.ErrDeadlineExceeded at once; after Resume, RecvNow takes every
// waiting advert in order without waiting, then says errNoPacket; Recv
// waits again, for the next advert.
func TestConnCatchUp(t *testing.T) {
	x := newNifLab(t)
	for _, fam := range connFamilies {
		t.Run(fmt.Sprintf("v6=%v", fam.v6), func(t *testing.T) {
			var c *rawConn
			if err := x.b.Do(func() (err error) {
				if c, err = openConn("eth0", fam.v6); err == nil {
					err = c.SetVRIDs([]int{1, 2, 3})
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			send := openSender(t, x.a, fam.v6)
			defer send.Close()
			for _, vrid := range []int{1, 2, 3} {
				sendAdvert(t, send, fam.src, fam.dst, vrid)
			}
			buf := make([]byte, 1500)
			if err := c.Interrupt(); err != nil {
				t.Fatal(err)
			}
			if _, _, _, _, err := c.Recv(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Recv after Interrupt: %v, want os.ErrDeadlineExceeded", err)
			}
			if err := c.Resume(); err != nil {
				t.Fatal(err)
			}
			// The adverts left a's socket at once; b's kernel has them
			// within this bound.
			var got []int
			for end := time.Now().Add(pollBound); len(got) < 3 && time.Now().Before(end); {
				n, src, dst, ttl, err := c.RecvNow(buf)
				if errors.Is(err, errNoPacket) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil || n < 2 || src != fam.src || dst != fam.dst || ttl != 255 {
					t.Fatalf("RecvNow: %d bytes from %v to %v, TTL %d, %v; want an advert from %v to %v, TTL 255",
						n, src, dst, ttl, err, fam.src, fam.dst)
				}
				got = append(got, int(buf[1]))
			}
			if !slices.Equal(got, []int{1, 2, 3}) {
				t.Fatalf("RecvNow took VRIDs %v, want [1 2 3]", got)
			}
			if _, _, _, _, err := c.RecvNow(buf); !errors.Is(err, errNoPacket) {
				t.Fatalf("RecvNow on an empty socket: %v, want errNoPacket", err)
			}
			done := make(chan error, 1)
			go func() {
				_, _, _, _, err := c.Recv(buf)
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("Recv after Resume returned %v on an empty socket, want it to wait", err)
			case <-time.After(50 * time.Millisecond):
			}
			sendAdvert(t, send, fam.src, fam.dst, 2)
			select {
			case err := <-done:
				if err != nil || buf[1] != 2 {
					t.Fatalf("Recv: VRID %d, %v; want the advert of VRID 2", buf[1], err)
				}
			case <-time.After(pollBound):
				t.Fatal("Recv did not return the next advert")
			}
		})
	}
}

// TestCatchUpManyAtOnce: instances of one link ask the reader to catch up
// all at once, again and again, while adverts arrive (on a real socket, so
// a request lands while the reader is taking packets without waiting):
// every request is served and the link's socket never fails.
func TestCatchUpManyAtOnce(t *testing.T) {
	x := newNifLab(t)
	fam := connFamilies[0]
	socks := newSockets(openRawLink)
	var subs []*subConn
	for vrid := 1; vrid <= 20; vrid++ {
		var c packetConn
		if err := x.b.Do(func() (err error) {
			c, err = socks.conn("eth0", false, netip.Addr{}, vrid)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		subs = append(subs, c.(*subConn))
	}
	send := openSender(t, x.a, false)
	defer send.Close()
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		n := 0
		defer func() { sent <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for vrid := 1; vrid <= 20; vrid++ {
				sendAdvert(t, send, fam.src, fam.dst, vrid)
				n++
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for round := 0; round < 200; round++ {
		var wg sync.WaitGroup
		for _, c := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-c.catchUp():
				case <-time.After(pollBound):
					t.Errorf("round %d: a catch-up request not served within %s", round, pollBound)
				}
			}()
		}
		wg.Wait()
		for _, c := range subs { // drain: the queues stay open for the next round
			for len(c.in) > 0 {
				<-c.in
			}
		}
		select {
		case <-subs[0].l.dead:
			t.Fatalf("round %d: the link's socket failed: %v", round, subs[0].l.err)
		default:
		}
		if t.Failed() {
			break
		}
	}
	close(stop)
	if n := <-sent; n == 0 {
		t.Error("control: no advert sent")
	}
}
