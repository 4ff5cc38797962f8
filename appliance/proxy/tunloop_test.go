package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"halb/internal/testutil"
)

// The tunnel loops' own mechanisms: a direction held back by a full
// destination (the loop keeps the bytes and stops reading its source)
// while the other goes on, the loops used and emptied, and a shutdown that
// lets open tunnels finish.

// TestTunLoopBackPressureOneWay: the server reads nothing for a while, so
// the client's 8 MiB fill the sockets and the loop holds back that
// direction; meanwhile the server's lines still reach the client; when the
// server reads, every byte arrives, and the record counts them.
func TestTunLoopBackPressureOneWay(t *testing.T) {
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
	listen, comp, rec := tunnelService(t, addr)
	c := dialTunnel(t, listen)
	var wg sync.WaitGroup
	wg.Go(func() {
		c.Write(up)
		c.CloseWrite()
	})
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "line 0\n" {
		t.Fatalf("read %q, %v while the upload is held back", line, err)
	}
	// The upload is stuck: the server has not read.
	time.Sleep(200 * time.Millisecond)
	if ls := comp.tunLoops(); ls == nil || ls.Len() == 0 {
		t.Fatal("the tunnel is not in a loop")
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
}

// TestTunLoopSlotsReused: tunnels one after another reuse the loops'
// slots, and the loops hold none once they have ended.
func TestTunLoopSlotsReused(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
	})
	listen, comp, _ := tunnelService(t, addr)
	for i := range 100 {
		c := dialTunnel(t, listen)
		io.WriteString(c, "x")
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
		c.Close()
	}
	ls := comp.tunLoops()
	testutil.WaitFor(t, "no tunnel in the loops", func() bool { return ls.Len() == 0 })
	for i, l := range ls.loops {
		l.mu.Lock()
		slots, free := len(l.slots), len(l.free)
		l.mu.Unlock()
		// waitListening's connection and the last tunnel may overlap
		// their predecessors' ends; never 100 at once.
		if slots > 4 || free != slots {
			t.Errorf("loop %d: %d slots, %d free after 100 tunnels one after another", i, slots, free)
		}
	}
}

// TestTunLoopShutdownLetsTunnelsFinish: a tunnel open when the component
// stops goes on until its peers close; then the loops end and their
// descriptors are closed.
func TestTunLoopShutdownLetsTunnelsFinish(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
	})
	listen := freePort(t)
	fd0 := openFDs(t)
	comp := New(slog.New(slog.DiscardHandler))
	comp.Apply(mustConfig(t, tcpConfig(listen, addr)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { comp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitListening(t, listen)
	c := dialTunnel(t, listen)
	echo := func(msg string) {
		t.Helper()
		io.WriteString(c, msg)
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, b, err)
		}
	}
	echo("before")
	ls := comp.tunLoops()
	cancel()
	<-done
	echo("after the shutdown")
	for _, l := range ls.loops {
		select {
		case <-l.done:
			if l.Len() > 0 {
				t.Fatal("a loop ended with its tunnel open")
			}
		default:
		}
	}
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("after the client's FIN: %q, %v; want EOF", b, err)
	}
	c.Close()
	for i, l := range ls.loops {
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("loop %d still running after its last tunnel ended", i)
		}
	}
	testutil.WaitFor(t, "the fds back to where they were", func() bool { return openFDs(t) <= fd0 })
}

// TestTunLoopConnectFails: a connect made in a loop that is refused or
// times out ends as the Go dialer's did: SC or sC, the client closed, the
// connect time counted.
func TestTunLoopConnectFails(t *testing.T) {
	for _, tc := range []struct {
		name, term string
		server     func(t *testing.T) string
		min        time.Duration
	}{
		{"refused", "SC", freePort, 0},
		{"timeout", "sC", fullBacklog, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comp, listen, rec := accessProxy(t, "    mode: tcp\n    timeouts: {connect: 200ms}\n", "    servers: [{name: s0, address: \""+tc.server(t)+"\"}]\n")
			c := dialTunnel(t, listen)
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				t.Fatalf("read %q, %v; want EOF", b, err)
			}
			r := rec.waitClient(t, c.LocalAddr())
			if string(r.Termination[:]) != tc.term || r.Connect < tc.min || r.Server != "s0" {
				t.Fatalf("record: termination %s, connect %v, server %q; want %s, at least %v, s0", r.Termination[:], r.Connect, r.Server, tc.term, tc.min)
			}
			if ls := comp.tunLoops(); ls == nil {
				t.Fatal("no tunnel loops")
			} else {
				testutil.WaitFor(t, "no tunnel in the loops", func() bool { return ls.Len() == 0 })
			}
		})
	}
}
