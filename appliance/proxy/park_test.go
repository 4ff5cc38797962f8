package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// parkResult is what an owner's unpark got.
type parkResult struct {
	c        *net.TCPConn
	timedOut bool
	at       time.Time
}

type testOwner chan parkResult

func (o testOwner) unpark(c *net.TCPConn, timedOut bool) {
	o <- parkResult{c: c, timedOut: timedOut, at: time.Now()}
}

// parkPair returns a client connection and the server side of it.
func parkPair(t testing.TB) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, s.(*net.TCPConn)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

func newTestParker(t *testing.T) *parker {
	t.Helper()
	p, err := newParker()
	if err != nil {
		t.Skip("no epoll:", err)
	}
	return p
}

func recv(t *testing.T, o testOwner, within time.Duration) parkResult {
	t.Helper()
	select {
	case r := <-o:
		return r
	case <-time.After(within):
		t.Fatalf("no unpark within %v", within)
		return parkResult{}
	}
}

// TestParkResumesOnBytes: a parked connection's socket stays open (the
// client sees no EOF), and when the client writes, the owner gets a
// working connection to the same client with the bytes unread: a new one
// when parked detached, the same one otherwise.
func TestParkResumesOnBytes(t *testing.T) {
	for _, detach := range []bool{true, false} {
		t.Run(map[bool]string{true: "detached", false: "attached"}[detach], func(t *testing.T) {
			p := newTestParker(t)
			defer p.close()
			client, server := parkPair(t)
			o := make(testOwner, 1)
			if err := p.park(server, time.Minute, o, detach); err != nil {
				t.Fatal(err)
			}
			if p.Len() != 1 {
				t.Fatalf("Len %d, want 1", p.Len())
			}
			client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := client.Read(make([]byte, 1)); !os.IsTimeout(err) {
				t.Fatalf("client read while parked: %v, want a timeout (the socket open)", err)
			}
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			r := recv(t, o, 5*time.Second)
			if r.timedOut || r.c == nil {
				t.Fatalf("unpark(%v, timedOut %v), want a connection with bytes", r.c, r.timedOut)
			}
			defer r.c.Close()
			if (r.c == server) == detach {
				t.Fatalf("unparked the same net.TCPConn: %v, want %v", r.c == server, !detach)
			}
			if p.Len() != 0 {
				t.Fatalf("Len %d after unpark, want 0", p.Len())
			}
			if r.c.RemoteAddr().String() != client.LocalAddr().String() {
				t.Fatalf("unparked connection is to %v, want the client %v", r.c.RemoteAddr(), client.LocalAddr())
			}
			b := make([]byte, 4)
			if _, err := io.ReadFull(r.c, b); err != nil || string(b) != "ping" {
				t.Fatalf("read %q, %v; want ping", b, err)
			}
			if _, err := r.c.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(client, b); err != nil || string(b) != "pong" {
				t.Fatalf("client read %q, %v; want pong", b, err)
			}
		})
	}
}

// TestParkDeadlines: deadlines pass in their order, whatever the order of
// parking; a connection parked with an earlier deadline than the one the
// loop sleeps until wakes it (it is not held until the later one).
func TestParkDeadlines(t *testing.T) {
	p := newTestParker(t)
	defer p.close()
	o := make(testOwner, 3)
	start := time.Now()
	_, late := parkPair(t)
	if err := p.park(late, 30*time.Second, o, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the loop sleeps until the late one's deadline
	_, mid := parkPair(t)
	_, early := parkPair(t)
	if err := p.park(mid, 400*time.Millisecond, o, false); err != nil {
		t.Fatal(err)
	}
	if err := p.park(early, 200*time.Millisecond, o, true); err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for range 2 {
		r := recv(t, o, 10*time.Second)
		if !r.timedOut || r.c == nil {
			t.Fatalf("unpark(%v, timedOut %v), want a timed-out connection", r.c, r.timedOut)
		}
		r.c.Close()
		got = append(got, r.at.Sub(start))
	}
	if got[0] < 200*time.Millisecond || got[1] < 400*time.Millisecond || got[0] > got[1] {
		t.Fatalf("deadlines passed at %v, want ≥200ms then ≥400ms", got)
	}
	if got[1] > 10*time.Second {
		t.Fatalf("the 400ms deadline passed at %v: held until the 30s one", got[1])
	}
	if p.Len() != 1 {
		t.Fatalf("Len %d, want the 30s one", p.Len())
	}
}

// TestParkNoLeak: park/unpark cycles and a close leave no descriptor or
// slot behind, and close ends the parked connections (the client sees EOF).
func TestParkNoLeak(t *testing.T) {
	p := newTestParker(t)
	client, server := parkPair(t)
	o := make(testOwner, 1)
	before := openFDs(t)
	c := server
	for i := range 50 {
		if err := p.park(c, time.Minute, o, true); err != nil {
			t.Fatal(err)
		}
		client.Write([]byte{byte(i)})
		r := recv(t, o, 5*time.Second)
		if r.c == nil || r.timedOut {
			t.Fatalf("cycle %d: unpark(%v, %v)", i, r.c, r.timedOut)
		}
		c = r.c
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// More descriptors than before is a leak; fewer is not (the GC may
	// close an earlier test's unreferenced connections meanwhile, as
	// TestTunnelsManyAtOnceLeaveNothing's check allows too).
	if n := openFDs(t); n > before {
		t.Fatalf("%d descriptors open after 50 cycles, %d before", n, before)
	}
	if len(p.slots) != 1 {
		t.Fatalf("%d slots after 50 cycles of one connection, want 1", len(p.slots))
	}
	if err := p.park(c, time.Minute, o, true); err != nil {
		t.Fatal(err)
	}
	p.close()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read %d, %v after the parker closed, want EOF", n, err)
	}
	_, other := parkPair(t)
	defer other.Close()
	if err := p.park(other, time.Minute, o, true); err != errParkerClosed {
		t.Fatalf("park after close: %v, want %v", err, errParkerClosed)
	}
}

// TestParkRacesClose: connections parked while the parker closes all end
// (each client sees EOF once the caller has closed those park refused),
// and no descriptor is left open.
func TestParkRacesClose(t *testing.T) {
	p := newTestParker(t)
	const n = 50
	clients := make([]net.Conn, n)
	servers := make([]*net.TCPConn, n)
	for i := range n {
		clients[i], servers[i] = parkPair(t)
	}
	before := openFDs(t)
	o := make(testOwner, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = p.park(servers[i], time.Minute, o, i%2 == 0) })
	}
	p.close()
	wg.Wait()
	parked := 0
	for i, err := range errs {
		if err != nil {
			servers[i].Close() // not parked: the caller keeps it
		} else {
			parked++
		}
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if k, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("client %d (park: %v): read %d, %v, want EOF", i, errs[i], k, err)
		}
	}
	if got := openFDs(t); got > before {
		t.Fatalf("%d descriptors open after the race, %d before", got, before)
	}
	t.Logf("%d of %d parks took the connection", parked, n)
}
