package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"halb/internal/testutil"
)

// These tests pin down what a tcp-mode tunnel does, whatever carries its
// bytes (today a goroutine a direction, reading first and then, once a
// side has sent twice, through a pump inside one poller wait): half-close each
// way, byte-exact large transfers with the byte counts in the access
// record, many tunnels at once, and nothing left behind when they end.

// tunnelService runs a tcp service (access records on) in front of the
// server at addr and returns its address, the component and the records.
func tunnelService(t *testing.T, addr string) (string, *Component, *captureLog) {
	t.Helper()
	c, listen, rec := accessProxy(t, "    mode: tcp\n", "    servers: [{name: s0, address: \""+addr+"\"}]\n")
	return listen, c, rec
}

// dialTunnel connects to listen, with a deadline long enough for a
// large transfer under -race.
func dialTunnel(t *testing.T, listen string) *net.TCPConn {
	t.Helper()
	c, _ := dialProxy(t, listen)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// TestTunnelHalfCloseEachWay: the side that finishes sending first (its
// FIN passed on) still receives, and the other side still sends, in both
// orders; the tunnel then ends normally with both byte counts.
func TestTunnelHalfCloseEachWay(t *testing.T) {
	t.Run("client first", func(t *testing.T) {
		// The server answers only after the client's EOF.
		addr := serveConns(t, func(c net.Conn) {
			defer c.Close()
			b, _ := io.ReadAll(c)
			io.WriteString(c, "got "+string(b))
		})
		listen, _, rec := tunnelService(t, addr)
		c := dialTunnel(t, listen)
		io.WriteString(c, "question")
		c.CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "got question" {
			t.Fatalf("read %q, %v: want the answer sent after the client's FIN", got, err)
		}
		r := rec.waitClient(t, c.LocalAddr())
		if string(r.Termination[:]) != "--" || r.BytesIn != 8 || r.BytesOut != 12 {
			t.Fatalf("record: termination %s, in %d, out %d; want --, 8, 12", r.Termination[:], r.BytesIn, r.BytesOut)
		}
	})
	t.Run("server first", func(t *testing.T) {
		// The server says hello and closes its sending side at once,
		// then reads the client's bytes until EOF and acknowledges
		// them by closing.
		got := make(chan string, 1)
		addr := serveConns(t, func(c net.Conn) {
			defer c.Close()
			io.WriteString(c, "hello")
			c.(*net.TCPConn).CloseWrite()
			// The proxy closes its side after the client's FIN (both
			// ways ended): a FIN still, not a reset.
			b, err := io.ReadAll(c)
			if err != nil {
				got <- fmt.Sprintf("%q then %v", b, err)
				return
			}
			got <- string(b)
		})
		listen, _, rec := tunnelService(t, addr)
		c := dialTunnel(t, listen)
		b, err := io.ReadAll(c) // the server's FIN arrives first
		if err != nil || string(b) != "hello" {
			t.Fatalf("read %q, %v: want hello then EOF", b, err)
		}
		io.WriteString(c, "after your FIN")
		c.CloseWrite()
		// (waitListening's connection got a hello too, and sent nothing)
		for s := ""; s == ""; {
			select {
			case s = <-got:
				if s != "" && s != "after your FIN" {
					t.Fatalf("server got %q", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the client's bytes sent after the server's FIN never arrived")
			}
		}
		r := rec.waitClient(t, c.LocalAddr())
		if string(r.Termination[:]) != "--" || r.BytesIn != 14 || r.BytesOut != 5 {
			t.Fatalf("record: termination %s, in %d, out %d; want --, 14, 5", r.Termination[:], r.BytesIn, r.BytesOut)
		}
	})
}

// TestTunnelLargeBothWaysByteExact: 8 MiB each way at once (far beyond the
// socket buffers and the copy buffer) arrive byte for byte, and the access
// record counts them.
func TestTunnelLargeBothWaysByteExact(t *testing.T) {
	const size = 8 << 20
	fill := func(seed uint64) []byte {
		b := make([]byte, size)
		r := rand.New(rand.NewPCG(seed, seed))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	up, down := fill(1), fill(2)
	serverGot := make(chan [32]byte, 2)
	addr := serveConns(t, func(c net.Conn) {
		var wg sync.WaitGroup
		defer c.Close()
		defer wg.Wait() // the close waits for the sending
		wg.Go(func() {
			c.Write(down)
			c.(*net.TCPConn).CloseWrite()
		})
		hashAll(c, serverGot)
	})
	listen, _, rec := tunnelService(t, addr)
	spliced := splicedBytes.Load()
	c := dialTunnel(t, listen)
	wg := sendAll(c, up)
	got, err := io.ReadAll(c)
	wg.Wait()
	if err != nil || !bytes.Equal(got, down) {
		t.Fatalf("client got %d bytes (%v), not the server's %d", len(got), err, size)
	}
	waitHash(t, serverGot, up)
	r := rec.waitClient(t, c.LocalAddr())
	if string(r.Termination[:]) != "--" || r.BytesIn != size || r.BytesOut != size {
		t.Fatalf("record: termination %s, in %d, out %d; want --, %d each way", r.Termination[:], r.BytesIn, r.BytesOut, size)
	}
	checkSpliced(t, spliced, size)
}

// checkSpliced fails unless the pumps spliced at least half of a
// transfer's size bytes since splicedBytes read before, and gave back every
// pipe once the tunnels ended.
func checkSpliced(t *testing.T, before int64, size int) {
	t.Helper()
	if got := splicedBytes.Load() - before; got < int64(size)/2 {
		t.Errorf("%d of the transfer's %d bytes spliced; want most of them (a burst splices)", got, size)
	}
	checkPipesBack(t)
}

// checkPipesBack fails unless every open pipe was given back.
func checkPipesBack(t *testing.T) {
	t.Helper()
	if open, free := pipesOpen(); open != free {
		t.Errorf("%d pipes open, %d of them given back; want all given back", open, free)
	}
}

// TestTunnelBackPressureOneWay: the server reads nothing for a while, so
// the client's 8 MiB fill the sockets and that direction is held
// back; meanwhile the server's lines still reach the client; when the
// server reads, every byte arrives, and the record counts them.
func TestTunnelBackPressureOneWay(t *testing.T) {
	const size = 8 << 20
	up := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	serverGot := make(chan [32]byte, 2)
	release := make(chan struct{})
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		if _, err := io.WriteString(c, "line 0\n"); err != nil {
			return
		}
		select {
		case <-release:
		case <-time.After(20 * time.Second):
			return
		}
		hashAll(c, serverGot)
	})
	listen, _, rec := tunnelService(t, addr)
	spliced := splicedBytes.Load()
	c := dialTunnel(t, listen)
	wg := sendAll(c, up)
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "line 0\n" {
		t.Fatalf("read %q, %v while the upload is held back", line, err)
	}
	close(release)
	wg.Wait()
	waitHash(t, serverGot, up)
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the server closed: %q, %v; want EOF", rest, err)
	}
	r := rec.waitClient(t, c.LocalAddr())
	if string(r.Termination[:]) != "--" || r.BytesIn != size || r.BytesOut != 7 {
		t.Fatalf("record: termination %s, in %d, out %d; want --, %d, 7", r.Termination[:], r.BytesIn, r.BytesOut, size)
	}
	checkSpliced(t, spliced, size)
}

// TestTCPConnectFails: a tcp-mode connect that is refused or times out
// ends in SC or sC, the client closed, the connect time counted.
func TestTCPConnectFails(t *testing.T) {
	for _, tc := range []struct {
		name, term string
		server     func(t *testing.T) string
		min        time.Duration
	}{
		{"refused", "SC", freePort, 0},
		{"timeout", "sC", fullBacklog, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, listen, rec := accessProxy(t, "    mode: tcp\n    timeouts: {connect: 200ms}\n", "    servers: [{name: s0, address: \""+tc.server(t)+"\"}]\n")
			c := dialTunnel(t, listen)
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				t.Fatalf("read %q, %v; want EOF", b, err)
			}
			r := rec.waitClient(t, c.LocalAddr())
			if string(r.Termination[:]) != tc.term || r.Connect < tc.min || r.Server != "s0" {
				t.Fatalf("record: termination %s, connect %v, server %q; want %s, at least %v, s0", r.Termination[:], r.Connect, r.Server, tc.term, tc.min)
			}
		})
	}
}

// TestTunnelsManyAtOnceLeaveNothing: 200 tunnels open at once, each with
// 20 round trips, all answered right; when they have ended, the service
// counts none active, no goroutine is left in a tunnel and the process
// holds no more file descriptors than before them.
func TestTunnelsManyAtOnceLeaveNothing(t *testing.T) {
	const n, trips = 200, 20
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		// Plain reads and writes: io.Copy between two TCPConns would
		// splice through pipes that only the GC closes, fds the
		// check below would count.
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
	})
	listen, comp, rec := tunnelService(t, addr)
	fd0 := openFDs(t)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", listen)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			<-start
			buf := make([]byte, 64)
			for j := range trips {
				msg := fmt.Sprintf("tunnel %d trip %d", i, j)
				if _, err := io.WriteString(c, msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil || string(buf[:len(msg)]) != msg {
					errs <- fmt.Errorf("tunnel %d trip %d: got %q, %v", i, j, buf[:len(msg)], err)
					return
				}
			}
			c.(*net.TCPConn).CloseWrite()
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				errs <- fmt.Errorf("tunnel %d: after the last trip %q, %v; want EOF", i, b, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	rec.wait(t, n+1) // +1: waitListening's connection
	testutil.WaitFor(t, "no active connection", func() bool {
		return comp.Status().([]ServiceStatus)[0].Stats.ActiveConnections == 0
	})
	var g, fd int
	testutil.WaitFor(t, "no goroutine in a tunnel and the fds back to where they were", func() bool {
		g, fd = tunnelGoroutines(), openFDs(t)
		return g == 0 && fd <= fd0
	})
	t.Logf("%d goroutines in tunnels, %d fds (%d before the tunnels)", g, fd, fd0)
	st := comp.Status().([]ServiceStatus)[0].Stats
	if want := int64(n * trips * len("tunnel 000 trip 00")); st.BytesIn < want*8/10 || st.BytesIn != st.BytesOut {
		t.Fatalf("bytes in %d, out %d: want equal (an echo), about %d", st.BytesIn, st.BytesOut, want)
	}
}

// tunnelGoroutines is the number of goroutines serving a tcp-mode
// connection.
func tunnelGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("proxy.(*service).forwardTCP")) || bytes.Contains(g, []byte("proxy.tunnel(")) || bytes.Contains(g, []byte("proxy.pipe(")) {
			n++
		}
	}
	return n
}

// sendAll writes b to c and half-closes it, on a goroutine the returned
// group waits for.
func sendAll(c *net.TCPConn, b []byte) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		c.Write(b)
		c.CloseWrite()
	})
	return &wg
}

// hashAll sends the SHA-256 of what c sends until EOF to got, unless c
// sent nothing (waitListening's connection).
func hashAll(c net.Conn, got chan<- [32]byte) {
	h := sha256.New()
	if n, _ := io.Copy(h, c); n > 0 {
		got <- [32]byte(h.Sum(nil))
	}
}

// waitHash waits for hashAll's hash of want on got.
func waitHash(t *testing.T, got <-chan [32]byte, want []byte) {
	t.Helper()
	select {
	case h := <-got:
		if h != sha256.Sum256(want) {
			t.Fatal("the server got other bytes than the client sent")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server never saw the client's EOF")
	}
}

// openFDs is the number of file descriptors this process holds.

// pumpService is tunnelService with minute-long idle timeouts, so that a
// tunnel end the proxy missed shows as a client left waiting.
func pumpService(t *testing.T, addr string) (string, *captureLog) {
	t.Helper()
	_, listen, rec := accessProxy(t, "    mode: tcp\n    timeouts: {client: 1m, server: 1m}\n",
		"    servers: [{name: s0, address: \""+addr+"\"}]\n")
	return listen, rec
}

// TestTunnelPumpEnds: once a tunnel's server has sent twice a pump carries
// that direction, and waits for the poller after a read that drained the
// socket. An end that came right behind the server's last bytes, merged
// into the same wake-up, must still end the tunnel: a FIN (told by the
// TCP_INQ hint) and a reset (told by the tunnel watch), each in many
// rounds, with the client answered and then closed well within the
// minute-long idle timeouts; and a tunnel that pauses longer than the
// watch's tick goes on carrying bytes.
func TestTunnelPumpEnds(t *testing.T) {
	// The server answers three requests ("a", "b", "c"), the third with
	// big bytes after its letter (a burst the pump splices); after the
	// third answer it closes (a FIN), or resets (linger 0).
	server := func(reset bool, big []byte) func(c net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 16)
			for i := range 3 {
				if _, err := io.ReadFull(c, buf[:1]); err != nil {
					return
				}
				if i == 2 && reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Write([]byte{'A' + buf[0] - 'a'})
				if i == 2 && len(big) > 0 {
					c.Write(big)
				}
			}
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tc := range []struct {
		name   string
		reset  bool
		big    []byte
		rounds int
	}{
		{"FIN", false, nil, 40},
		{"reset", true, nil, 40},
		{"FIN after a burst", false, big, 10},
		{"reset after a burst", true, big, 10},
	} {
		reset, rounds := tc.reset, tc.rounds
		t.Run(tc.name, func(t *testing.T) {
			started, kicks := pumpsStarted.Load(), watchKicks.Load()
			spliced := splicedBytes.Load()
			listen, rec := pumpService(t, serveConns(t, server(reset, tc.big)))
			for range rounds {
				c := dialTunnel(t, listen)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 1)
				for _, q := range "abc" {
					io.WriteString(c, string(q))
					if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(q)-'a'+'A' {
						t.Fatalf("answer to %q: %q, %v", q, buf, err)
					}
				}
				start := time.Now()
				b, err := io.ReadAll(c)
				switch {
				case reset && len(b) <= len(tc.big) && bytes.Equal(b, tc.big[:len(b)]):
					// A reset may overtake bytes still on their way.
				case !reset && err == nil && bytes.Equal(b, tc.big):
				default:
					t.Fatalf("after the last answer: %d bytes, %v; want the end (after %d bytes)", len(b), err, len(tc.big))
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("the server's end reached the client after %v", d)
				}
				c.Close() // a FIN ended one direction: the client ends the other
				r := rec.waitClient(t, c.LocalAddr())
				want := "--"
				if reset {
					want = "SD"
				}
				if got := string(r.Termination[:]); got != want {
					t.Fatalf("termination %s, want %s", got, want)
				}
			}
			if pumpsStarted.Load() == started {
				t.Fatal("no pump started: the test did not test it")
			}
			// A FIN is told by the hint, not the watch (which a pump slow
			// to wake under load may still meet now and then: a missed
			// hint would leave every round to the watch).
			if k := watchKicks.Load() - kicks; !reset && k > int64(rounds/2) {
				t.Fatalf("the watch ended %d waits of %d rounds: the FIN was not seen by the TCP_INQ hint", k, rounds)
			}
			if tc.big != nil && !reset {
				checkSpliced(t, spliced, rounds*len(tc.big))
			}
			checkPipesBack(t)
		})
	}
	t.Run("pauses", func(t *testing.T) {
		addr := serveConns(t, func(c net.Conn) {
			defer c.Close()
			io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		})
		listen, _ := pumpService(t, addr)
		c := dialTunnel(t, listen)
		buf := make([]byte, 8)
		for i := range 8 {
			msg := fmt.Sprintf("trip %d", i)
			io.WriteString(c, msg)
			if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil || string(buf[:len(msg)]) != msg {
				t.Fatalf("trip %d: %q, %v", i, buf[:len(msg)], err)
			}
			time.Sleep(3 * watchEvery)
		}
		c.Close()
	})
}
