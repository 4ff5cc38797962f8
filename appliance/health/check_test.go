package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// runCheck runs one check of kind with a timeout, as a monitor does.
func runCheck(t *testing.T, kind string, timeout time.Duration, tg Target) error {
	t.Helper()
	c, err := NewChecker(kind)
	if err != nil {
		t.Fatal(err)
	}
	tg.Timeout = timeout
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return c.Check(ctx, tg)
}

// listenTCP is a listener on 127.0.0.1 that accepts and closes connections.
func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln := testutil.Listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln
}

// rawServer serves each connection with handle, on a goroutine it waits
// for at cleanup.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln := testutil.Listen(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// reply is a rawServer that reads the request head and writes resp.
func reply(t *testing.T, resp string) string {
	return rawServer(t, func(c net.Conn) {
		readHead(c)
		c.Write([]byte(resp))
	})
}

// readHead reads a request head up to its blank line.
func readHead(c net.Conn) (string, error) {
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil || line == "\r\n" {
			return head.String(), err
		}
	}
}

// hangServer accepts connections and never answers. It starts no
// goroutine per connection, so goroutine counts show only the client's.
func hangServer(t *testing.T) string {
	t.Helper()
	ln := testutil.Listen(t)
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestCheckNewChecker(t *testing.T) {
	for _, kind := range []string{"tcp", "http", "https", "icmp", "none"} {
		if _, err := NewChecker(kind); err != nil {
			t.Errorf("NewChecker(%q): %v", kind, err)
		}
	}
	for _, kind := range []string{"", "TCP", "smtp"} {
		if _, err := NewChecker(kind); err == nil {
			t.Errorf("NewChecker(%q) = nil error, want one", kind)
		}
	}
	// none passes even against nothing.
	if err := runCheck(t, "none", time.Second, Target{Addr: testutil.ReservedAddr(t)}); err != nil {
		t.Errorf("none: %v", err)
	}
}

func TestTCPPass(t *testing.T) {
	ln := listenTCP(t)
	if err := runCheck(t, "tcp", time.Second, Target{Addr: ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
}

func TestTCPRefused(t *testing.T) {
	addr := testutil.ReservedAddr(t)
	err := runCheck(t, "tcp", time.Second, Target{Addr: addr})
	if want := "connect " + addr + ": connection refused"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestTCPPortOverride(t *testing.T) {
	ln := listenTCP(t)
	open := ln.Addr().(*net.TCPAddr).Port
	closed := testutil.ReservedAddr(t)
	_, closedStr, _ := net.SplitHostPort(closed)
	closedNum, _ := strconv.Atoi(closedStr)

	// Addr's port is closed, Port is open: passes.
	if err := runCheck(t, "tcp", time.Second, Target{Addr: closed, Port: open}); err != nil {
		t.Errorf("Port %d over closed Addr %s: %v", open, closed, err)
	}
	// Addr's port is open, Port is closed: fails, naming Port.
	err := runCheck(t, "tcp", time.Second, Target{Addr: ln.Addr().String(), Port: closedNum})
	if err == nil || !strings.Contains(err.Error(), closed) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Port %d over open Addr: err = %v, want refused at %s", closedNum, err, closed)
	}
	// Addr without a port takes Port.
	if err := runCheck(t, "tcp", time.Second, Target{Addr: "127.0.0.1", Port: open}); err != nil {
		t.Errorf("Addr without port, Port %d: %v", open, err)
	}
	// ... and without Port it is an error, not a dial to port 0.
	if err := runCheck(t, "tcp", time.Second, Target{Addr: "127.0.0.1"}); err == nil {
		t.Errorf("Addr without port or Port: passed")
	}
}

func TestTCPCancelled(t *testing.T) {
	ln := listenTCP(t)
	c, _ := NewChecker("tcp")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := c.Check(ctx, Target{Addr: ln.Addr().String()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// statusServer answers each request with the status in its path
// (/204 -> 204) and records the last request's path and Host.
type statusServer struct {
	*httptest.Server
	mu         sync.Mutex
	path, host string
}

func newStatusServer(t *testing.T, tls bool) *statusServer {
	s := &statusServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.path, s.host = r.URL.RequestURI(), r.Host
		s.mu.Unlock()
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			code = 200
		}
		w.WriteHeader(code)
		fmt.Fprintln(w, "a body the check does not read")
	})
	if tls {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) addr() string { return s.Listener.Addr().String() }

func TestHTTPStatus(t *testing.T) {
	for _, kind := range []string{"http", "https"} {
		s := newStatusServer(t, kind == "https")
		for _, tc := range []struct {
			path    string
			expect  string
			wantErr string
		}{
			{"", "", ""},
			{"/200", "", ""},
			{"/503", "", "http status 503 (want 200)"},
			{"/204", "204", ""},
			{"/204", "", "http status 204 (want 200)"},
			{"/200", "204", "http status 200 (want 204)"},
			{"/301", "301", ""},
			{"/404", "", "http status 404 (want 200)"},
			{"/301", "200-399", ""},
			{"/204", "200-299", ""},
			{"/404", "200-399", "http status 404 (want 200-399)"},
			{"/404", "200,404", ""},
			{"/503", "200,204,300-399", "http status 503 (want 200,204,300-399)"},
		} {
			var want config.StatusCodes
			if tc.expect != "" {
				if err := want.UnmarshalText([]byte(tc.expect)); err != nil {
					t.Fatal(err)
				}
			}
			err := runCheck(t, kind, time.Second, Target{Addr: s.addr(), Path: tc.path, ExpectStatus: want})
			if got := fmt.Sprint(err); (err == nil) != (tc.wantErr == "") || err != nil && got != tc.wantErr {
				t.Errorf("%s %s expect %q: err = %v, want %q", kind, tc.path, tc.expect, err, tc.wantErr)
			}
		}
	}
}

func TestHTTPRequest(t *testing.T) {
	s := newStatusServer(t, false)
	port := s.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		tg             Target
		path, wantHost string
	}{
		{Target{Addr: s.addr()}, "/", "127.0.0.1"},
		{Target{Addr: s.addr(), Path: "/healthz?deep=1", Host: "app.example"}, "/healthz?deep=1", "app.example"},
		{Target{Addr: s.addr(), Host: "app.example:8080"}, "/", "app.example:8080"},
		{Target{Addr: "127.0.0.1:1", Port: port}, "/", "127.0.0.1"},
	} {
		if err := runCheck(t, "http", time.Second, tc.tg); err != nil {
			t.Errorf("%+v: %v", tc.tg, err)
			continue
		}
		s.mu.Lock()
		if s.path != tc.path || s.host != tc.wantHost {
			t.Errorf("%+v: server saw path %q host %q, want %q %q", tc.tg, s.path, s.host, tc.path, tc.wantHost)
		}
		s.mu.Unlock()
	}
}

// TestHTTPRequestBytes pins the request byte for byte.
func TestHTTPRequestBytes(t *testing.T) {
	got := make(chan string, 1)
	addr := rawServer(t, func(c net.Conn) {
		head, _ := readHead(c)
		got <- head
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	})
	if err := runCheck(t, "http", time.Second, Target{Addr: addr, Path: "/ping"}); err != nil {
		t.Fatal(err)
	}
	want := "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: halb-health\r\n" +
		"Connection: close\r\nAccept: */*\r\n\r\n"
	if g := <-got; g != want {
		t.Errorf("request:\n%q\nwant\n%q", g, want)
	}
}

func TestHTTPIPv6Host(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	got := make(chan string, 1)
	ln, err = net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Host })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if err := runCheck(t, "http", time.Second, Target{Addr: ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != "[::1]" {
		t.Errorf("Host %q, want [::1]", h)
	}
}

func TestHTTPBadResponse(t *testing.T) {
	for _, tc := range []struct{ name, resp, want string }{
		{"garbage", "hello there\r\n\r\n", `bad response: status line "hello there"`},
		{"binary", "\x15\x03\x01\x00\x02\x02\x46\n\n", `bad response: status line "\x15\x03\x01\x00\x02\x02F"`},
		{"http2", "HTTP/2 200\r\n\r\n", `bad response: status line "HTTP/2 200"`},
		{"long code", "HTTP/1.1 2000 OK\r\n\r\n", `bad response: status line "HTTP/1.1 2000 OK"`},
		{"no code", "HTTP/1.1\r\n\r\n", `bad response: status line "HTTP/1.1"`},
		{"empty", "", "bad response: connection closed before the status line"},
		{"no end of head", "HTTP/1.1 200 OK\r\nServer: x\r\n", "bad response: connection closed after 28 bytes of head"},
		{"huge head", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", "bad response: head longer than 16384 bytes"},
	} {
		addr := reply(t, tc.resp)
		err := runCheck(t, "http", time.Second, Target{Addr: addr})
		if !errors.Is(err, errBadResponse) || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestHTTPGoodResponses(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\n\r\n"},
		{"bare LF", "HTTP/1.1 200 OK\nServer: x\n\n"},
		{"no reason", "HTTP/1.1 200\r\n\r\n"},
		{"interim 103 first", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"},
		{"body follows", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
	} {
		if err := runCheck(t, "http", time.Second, Target{Addr: reply(t, tc.resp)}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestHTTPTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	addr := hangServer(t)
	for _, tc := range []struct{ kind, want string }{
		{"http", "read response from " + addr + ": timeout after 200ms"},
		{"https", "tls handshake with " + addr + ": timeout after 200ms"},
	} {
		start := time.Now()
		err := runCheck(t, tc.kind, timeout, Target{Addr: addr})
		took := time.Since(start)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.kind, err, tc.want)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v is not context.DeadlineExceeded", tc.kind, err)
		}
		// At the timeout, not at the server's pleasure (it never answers);
		// a second's slack for a loaded machine.
		if took > timeout+time.Second {
			t.Errorf("%s: returned after %v, want within %v", tc.kind, took, timeout+time.Second)
		}
	}
}

// TestTimeoutNamesTheTimeout: a check's timeout error names the configured
// timeout, not what was left of it when the check started (a loaded
// machine took 190 of the 200 ms here before the check began).
func TestTimeoutNamesTheTimeout(t *testing.T) {
	addr := hangServer(t)
	for _, kind := range []string{"http", "https"} {
		c, _ := NewChecker(kind)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		err := c.Check(ctx, Target{Addr: addr, Timeout: 200 * time.Millisecond})
		cancel()
		if err == nil || !strings.HasSuffix(err.Error(), ": timeout after 200ms") || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want a timeout after 200ms", kind, err)
		}
	}
}

// TestHTTPTimeoutAfterHead: a server that answers the status line and then
// stalls is a timeout, not a pass.
func TestHTTPTimeoutAfterHead(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := rawServer(t, func(c net.Conn) {
		readHead(c)
		c.Write([]byte("HTTP/1.1 200 OK\r\n"))
		<-release
	})
	err := runCheck(t, "http", 100*time.Millisecond, Target{Addr: addr})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestHTTPCancelled(t *testing.T) {
	addr := hangServer(t)
	c, _ := NewChecker("http")
	ctx, cancel := context.WithCancel(t.Context())
	// 300ms: the check has sent its request by then (it waits for the
	// response), with room for a loaded machine.
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	err := c.Check(ctx, Target{Addr: addr})
	if !errors.Is(err, context.Canceled) || err.Error() != "read response from "+addr+": context canceled" {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 1300*time.Millisecond {
		t.Errorf("returned %v after the start, want about 300ms", took)
	}
}

func TestHTTPSAgainstPlain(t *testing.T) {
	s := newStatusServer(t, false)
	err := runCheck(t, "https", time.Second, Target{Addr: s.addr()})
	if err == nil || !strings.HasPrefix(err.Error(), "tls handshake with "+s.addr()+": ") {
		t.Fatalf("err = %v, want a tls handshake error", err)
	}
}

func TestHTTPBadTarget(t *testing.T) {
	s := newStatusServer(t, false)
	for _, tg := range []Target{
		{Addr: s.addr(), Path: "/a b"},
		{Addr: s.addr(), Path: "/\r\nX-Injected: 1"},
		{Addr: s.addr(), Host: "a.example\r\nX: 1"},
	} {
		if err := runCheck(t, "http", time.Second, tg); err == nil {
			t.Errorf("%+v: passed", tg)
		}
	}
}

// TestHTTPNoLeaks: checks that time out leave no goroutine behind.
func TestHTTPNoLeaks(t *testing.T) {
	addr := hangServer(t)
	base := runtime.NumGoroutine()
	for _, kind := range []string{"http", "https"} {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 20)
		for range 100 {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := runCheck(t, kind, 50*time.Millisecond, Target{Addr: addr}); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: err = %v, want a timeout", kind, err)
				}
			})
		}
		wg.Wait()
	}
	const slack = 2
	var n int
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= base+slack {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Errorf("%d goroutines after 200 checks, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
}

// TestHTTPMethodBodyVerify: method, a body substring, and certificate
// verification (httptest's certificate is not trusted by the system).
func TestHTTPMethodBodyVerify(t *testing.T) {
	var method atomic.Value
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method.Store(r.Method)
		fmt.Fprintln(w, "status: green")
	}))
	t.Cleanup(s.Close)
	addr := s.Listener.Addr().String()
	if err := runCheck(t, "http", time.Second, Target{Addr: addr, Method: "HEAD"}); err != nil || method.Load() != "HEAD" {
		t.Fatalf("HEAD: %v, server saw %v", err, method.Load())
	}
	if err := runCheck(t, "http", time.Second, Target{Addr: addr, ExpectBody: "status: green"}); err != nil {
		t.Fatalf("body found: %v", err)
	}
	err := runCheck(t, "http", time.Second, Target{Addr: addr, ExpectBody: "status: red"})
	if err == nil || !strings.Contains(err.Error(), `"status: red" not in its first`) {
		t.Fatalf("body missing: %v", err)
	}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ts.Close)
	if err := runCheck(t, "https", time.Second, Target{Addr: ts.Listener.Addr().String()}); err != nil {
		t.Fatalf("https without verify: %v", err)
	}
	if err := runCheck(t, "https", time.Second, Target{Addr: ts.Listener.Addr().String(), Verify: true}); err == nil || !strings.Contains(err.Error(), "tls handshake") {
		t.Fatalf("https verify against an untrusted certificate: %v", err)
	}
}

// TestTCPSendExpect: a simple protocol exchange (e.g. redis PING/PONG).
func TestTCPSendExpect(t *testing.T) {
	ln := testutil.Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				if string(buf[:n]) == "PING\r\n" {
					io.WriteString(c, "+PO")
					time.Sleep(20 * time.Millisecond)
					io.WriteString(c, "NG\r\n") // split across reads
					return
				}
				io.WriteString(c, "-ERR\r\n")
			}()
		}
	}()
	addr := ln.Addr().String()
	if err := runCheck(t, "tcp", time.Second, Target{Addr: addr, Send: "PING\r\n", Expect: "+PONG"}); err != nil {
		t.Fatalf("PING/PONG: %v", err)
	}
	err := runCheck(t, "tcp", time.Second, Target{Addr: addr, Send: "HELLO\r\n", Expect: "+PONG"})
	if err == nil || !strings.Contains(err.Error(), `"+PONG" not in its first 6 bytes`) {
		t.Fatalf("wrong reply: %v", err)
	}
}

// TestTCPCheckNotAccepted: a plain connect check ends before the server
// completes the handshake (no quick ACK, then a reset), as HAProxy's do:
// the server's application never accepts a check connection.
func TestTCPCheckNotAccepted(t *testing.T) {
	ln := testutil.Listen(t)
	const n = 20
	for range n {
		if err := runCheck(t, "tcp", time.Second, Target{Addr: ln.Addr().String()}); err != nil {
			t.Fatal(err)
		}
	}
	accepted := 0
	for {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
		c, err := ln.Accept()
		if err != nil {
			break
		}
		c.Close()
		accepted++
	}
	// A reset that loses the race with the delayed-ACK timer (40ms) on a
	// loaded machine lets one through now and then.
	if accepted > 2 {
		t.Errorf("the server accepted %d of %d check connections; want none", accepted, n)
	}
}
