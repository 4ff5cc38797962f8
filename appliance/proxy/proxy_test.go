package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// namer answers every connection with its name and then echoes.
func namer(t *testing.T, name string) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		defer c.Close()
		fmt.Fprintf(c, "%s\n", name)
		io.Copy(c, c)
	})
}

// serveConns serves every connection to a new loopback listener with
// handle (which must close it) until the test ends; it returns the address.
func serveConns(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln := testutil.Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// freePort returns a loopback address reserved for the test, where
// nothing listens until the proxy does: a port bound and closed could be
// taken meanwhile by any listener or outgoing connection on the host.
func freePort(t *testing.T) string {
	t.Helper()
	return testutil.ReservedAddr(t)
}

func mustConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("halb.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func tcpConfig(listen string, servers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: lb1}\nservices:\n  - {name: t, listen: [\"%s\"], mode: tcp, default_backend: b}\nbackends:\n  - name: b\n    servers:\n", listen)
	for i, s := range servers {
		addr, w, _ := strings.Cut(s, "@")
		if w == "" {
			w = "1"
		}
		fmt.Fprintf(&b, "      - {name: s%d, address: \"%s\", weight: %s}\n", i, addr, w)
	}
	return b.String()
}

func run(t *testing.T, cfg *config.Config) *Component {
	t.Helper()
	return runComponent(t, New(slog.New(slog.DiscardHandler)), cfg)
}

// runComponent runs c (made by New, then adjusted by the test) on cfg.
func runComponent(t *testing.T, c *Component, cfg *config.Config) *Component {
	t.Helper()
	c.Apply(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Running: an Apply from now on returns once its config is in force.
	// (The listening sockets accept before that: Apply binds them.)
	select {
	case <-c.ready:
	case <-time.After(testutil.WaitTimeout):
		t.Fatal("the proxy's Run did not start")
	}
	return c
}

// apply hands c a config and waits until its services and backends run it:
// Apply only queues the config for the component's loop.
func apply(t *testing.T, c *Component, cfg *config.Config) {
	t.Helper()
	c.Apply(cfg)
	testutil.WaitFor(t, "the proxy to run the config applied", func() bool { return c.runs(cfg) })
}

// runs reports whether c's services and backends are those of cfg, and
// the services use those backends (a reload swaps a service's state after
// it has built the backends).
func (c *Component) runs(cfg *config.Config) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.services) != len(cfg.Services) || len(c.backends) != len(cfg.Backends) {
		return false
	}
	for _, bc := range cfg.Backends {
		if be := c.backends[bc.Name]; be == nil || !be.sameConfig(bc) {
			return false
		}
	}
	for _, sc := range cfg.Services {
		s := c.services[sc.Name]
		if s == nil {
			return false
		}
		st := s.state.Load()
		if !reflect.DeepEqual(st.cfg, sc) {
			return false
		}
		for _, be := range st.backendList() {
			if c.backends[be.cfg.Name] != be {
				return false
			}
		}
	}
	return true
}

// dialName connects through the proxy and returns the name the server sent.
func dialName(t *testing.T, addr string) (string, net.Conn) {
	t.Helper()
	var c net.Conn
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read name: %v", err)
	}
	return strings.TrimSpace(line), c
}

func TestForwardsBothWaysWithHalfClose(t *testing.T) {
	listen := freePort(t)
	run(t, mustConfig(t, tcpConfig(listen, namer(t, "a"))))
	c, err := net.Dial("tcp", listen)
	for i := 0; err != nil && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		c, err = net.Dial("tcp", listen)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := strings.Repeat("halb ", 100000) // larger than socket buffers
	go func() {
		io.WriteString(c, payload)
		c.(*net.TCPConn).CloseWrite() // the server must see EOF and finish
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + payload; string(got) != want {
		t.Fatalf("got %d bytes, want %d (name line + echo)", len(got), len(want))
	}
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	listen := freePort(t)
	run(t, mustConfig(t, tcpConfig(listen, namer(t, "a")+"@1", namer(t, "b")+"@2", namer(t, "c")+"@0")))
	counts := map[string]int{}
	var seq []string
	for range 30 {
		name, c := dialName(t, listen)
		c.Close()
		counts[name]++
		seq = append(seq, name)
	}
	if counts["a"] != 10 || counts["b"] != 20 || counts["c"] != 0 {
		t.Fatalf("counts %v, want a:10 b:20 c:0 (weight 0 drains)", counts)
	}
	if strings.Contains(strings.Join(seq, ""), "bbb") {
		t.Errorf("bursts in %v: smooth round robin spreads b", seq)
	}
}

func TestRedispatchOnRefusedConnect(t *testing.T) {
	listen := freePort(t)
	dead := freePort(t)
	c := run(t, mustConfig(t, tcpConfig(listen, dead, namer(t, "alive"))))
	for range 20 {
		name, conn := dialName(t, listen)
		conn.Close()
		if name != "alive" {
			t.Fatalf("answered by %q", name)
		}
	}
	st := c.Status().([]ServiceStatus)
	if st[0].Backends[0].Servers[0].ConnectErrors == 0 || st[0].Stats.Retries == 0 || st[0].Stats.NoServer != 0 {
		t.Fatalf("status %+v: want connect errors on the dead server, retries, no failures", st[0])
	}
}

func TestNoServerClosesTheClient(t *testing.T) {
	listen := freePort(t)
	c := run(t, mustConfig(t, tcpConfig(listen, freePort(t))))
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("tcp", listen); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: want the connection closed", n, err)
	}
	if st := c.Status().([]ServiceStatus); st[0].Stats.NoServer != 1 {
		t.Fatalf("no_server %d, want 1", st[0].Stats.NoServer)
	}
}

func TestReloadSwapsBackendKeepsOpenConnections(t *testing.T) {
	listen := freePort(t)
	c := run(t, mustConfig(t, tcpConfig(listen, namer(t, "old"))))
	name, open := dialName(t, listen)
	defer open.Close()
	if name != "old" {
		t.Fatalf("answered by %q", name)
	}
	c.Apply(mustConfig(t, tcpConfig(listen, namer(t, "new"))))
	deadline := time.Now().Add(5 * time.Second)
	for {
		name, conn := dialName(t, listen)
		conn.Close()
		if name == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new backend never took new connections")
		}
	}
	// The connection opened before the reload still works, on the old server.
	io.WriteString(open, "ping\n")
	line, err := bufio.NewReader(open).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("open connection after reload: %q %v", line, err)
	}
}

func TestRemovedServiceStopsListening(t *testing.T) {
	listen := freePort(t)
	c := run(t, mustConfig(t, tcpConfig(listen, namer(t, "a"))))
	_, conn := dialName(t, listen)
	conn.Close()
	c.Apply(mustConfig(t, "node: {name: lb1}\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", listen)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening after the service was removed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFreebind: a service binds an address this host does not have (a VIP
// held by the peer), as IP_FREEBIND allows.
func TestFreebind(t *testing.T) {
	ln, err := listenFreebind("192.0.2.123:0") // TEST-NET-1: on no interface here
	if err != nil {
		t.Fatalf("freebind listen: %v", err)
	}
	ln.Close()
	ln, err = listenFreebind("[2001:db8::123]:0")
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	ln.Close()
}

// TestTCPIdleTimeouts: a tcp-mode connection idle both ways for the
// client/server timeout is closed; one busy in a single direction is not.
func TestTCPIdleTimeouts(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "stream\n" {
			io.Copy(io.Discard, c) // silent
			return
		}
		for range 10 { // 1s of output, the client stays silent
			if _, err := io.WriteString(c, "tick\n"); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	listen := freePort(t)
	cfg := tcpConfig(listen, addr)
	cfg = strings.Replace(cfg, "mode: tcp,", "mode: tcp, timeouts: {client: 300ms, server: 300ms},", 1)
	run(t, mustConfig(t, cfg))
	waitListening(t, listen)

	idle, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from an idle connection")
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("idle connection closed after %v, want about 300ms", el)
	}

	busy, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(busy, "stream\n")
	br := bufio.NewReader(busy)
	for i := range 10 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("tick %d: %v (a side busy one way was timed out)", i, err)
		}
	}
}
