package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// loopResult is one result a probe delivered.
type loopResult struct {
	err     error
	latency time.Duration
}

// startLoop runs an l4 loop until the test ends (or stop is called);
// stop returns once the loop has closed everything.
func startLoop(t *testing.T) (l *l4Loop, stop func()) {
	t.Helper()
	l, err := newL4Loop()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("loop: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return l, stop
}

// loopProbe adds a probe of addr to l: checked at once, then every interval;
// its results arrive on the channel (a full channel drops them).
func loopProbe(t *testing.T, l *l4Loop, addr string, timeout, interval time.Duration) (*l4Probe, chan loopResult) {
	t.Helper()
	results := make(chan loopResult, 16)
	p := newL4Probe(Target{Addr: addr}, timeout, func() time.Duration { return interval }, func(err error, latency time.Duration) {
		select {
		case results <- loopResult{err, latency}:
		default:
		}
	})
	if p == nil {
		t.Fatalf("%s: no probe", addr)
	}
	l.add(p)
	return p, results
}

func next(t *testing.T, results chan loopResult) loopResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(testutil.WaitTimeout):
		t.Fatal("no check result")
		return loopResult{}
	}
}

// fullListener is a listener on loopback whose accept queue is full: the
// kernel drops the SYNs of new connections (they are retried after 1s,
// 3s...). drain accepts what is queued and keeps accepting, so a
// retried SYN gets its answer.
func fullListener(t *testing.T) (addr string, drain func()) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "full")
	ln, err := net.FileListener(f) // a dup of fd
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	// Connections that complete the handshake fill the queue (of one,
	// with backlog 0): dial until a dial times out.
	var held []net.Conn
	var accepting sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		accepting.Wait()
		for _, c := range held {
			c.Close()
		}
	})
	for {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			break
		}
		held = append(held, c)
		if len(held) > 16 {
			t.Fatal("the accept queue of a backlog-0 listener does not fill")
		}
	}
	drain = func() {
		accepting.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		})
	}
	return addr, drain
}

func TestL4Pass(t *testing.T) {
	ln := testutil.Listen(t)
	l, _ := startLoop(t)
	_, results := loopProbe(t, l, ln.Addr().String(), time.Second, time.Hour)
	if r := next(t, results); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestL4IPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	l, _ := startLoop(t)
	_, results := loopProbe(t, l, ln.Addr().String(), time.Second, time.Hour)
	if r := next(t, results); r.err != nil {
		t.Fatal(r.err)
	}
	// And a zone names the interface.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, results = loopProbe(t, l, "[::1%lo]:"+port, time.Second, time.Hour)
	if r := next(t, results); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestL4Refused(t *testing.T) {
	addr := testutil.ReservedAddr(t)
	l, _ := startLoop(t)
	_, results := loopProbe(t, l, addr, time.Second, 10*time.Millisecond)
	for range 3 { // the error is kept while it repeats: the same text each time
		r := next(t, results)
		if want := "connect " + addr + ": connection refused"; r.err == nil || r.err.Error() != want {
			t.Fatalf("err = %v, want %q", r.err, want)
		}
		if !errors.Is(r.err, unix.ECONNREFUSED) {
			t.Fatalf("%v is not ECONNREFUSED", r.err)
		}
	}
}

// TestL4Timeout: a server that never answers the SYN fails after the
// timeout, with the error tcpChecker gives.
func TestL4Timeout(t *testing.T) {
	addr, _ := fullListener(t)
	l, _ := startLoop(t)
	_, results := loopProbe(t, l, addr, 200*time.Millisecond, time.Hour)
	r := next(t, results)
	if want := "connect " + addr + ": timeout after 200ms"; r.err == nil || r.err.Error() != want {
		t.Fatalf("err = %v, want %q", r.err, want)
	}
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("%v is not context.DeadlineExceeded", r.err)
	}
	if r.latency < 200*time.Millisecond {
		t.Fatalf("timed out after %v, before the timeout", r.latency)
	}
	// tcpChecker says the same.
	if err := runCheck(t, "tcp", 200*time.Millisecond, Target{Addr: addr}); err == nil || err.Error() != r.err.Error() {
		t.Fatalf("tcpChecker: %v, loop: %v", err, r.err)
	}
}

// TestL4AcceptsLate: a server that answers a retried SYN within the
// timeout passes.
func TestL4AcceptsLate(t *testing.T) {
	addr, drain := fullListener(t)
	l, _ := startLoop(t)
	began := time.Now()
	_, results := loopProbe(t, l, addr, 10*time.Second, time.Hour)
	time.Sleep(50 * time.Millisecond) // the first SYN is dropped
	drain()
	waited := time.Since(began)
	r := next(t, results)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.latency < waited {
		t.Fatalf("passed after %v, before the server took connections (%v)", r.latency, waited)
	}
}

// TestL4NoFiles: a check that gets no socket fails, naming why, and the
// loop carries on once sockets are there again.
func TestL4NoFiles(t *testing.T) {
	ln := testutil.Listen(t)
	l, _ := startLoop(t)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// No file descriptor above the highest open now (ReadDir's own is
	// closed again, but it is among them).
	low := lim
	low.Cur = uint64(len(fds))
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	// Fill any holes below the limit.
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	for {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			break
		}
		held = append(held, fd)
	}
	_, results := loopProbe(t, l, ln.Addr().String(), time.Second, 10*time.Millisecond)
	r := next(t, results)
	restore()
	if want := "connect " + ln.Addr().String() + ": too many open files"; r.err == nil || r.err.Error() != want {
		t.Fatalf("err = %v, want %q", r.err, want)
	}
	for r.err != nil {
		r = next(t, results)
		if r.err != nil && !errors.Is(r.err, unix.EMFILE) {
			t.Fatalf("after files came back: %v", r.err)
		}
	}
}

// TestL4Many: a thousand servers at once, half of them refusing, each get
// their own results, again and again.
func TestL4Many(t *testing.T) {
	ln := listenTCP(t)
	refusing := testutil.ReservedAddr(t)
	l, _ := startLoop(t)
	const n = 1000
	var passed, refused [n]atomic.Int64
	var other atomic.Value
	for i := range n {
		addr := ln.Addr().String()
		if i%2 == 1 {
			addr = refusing
		}
		l.add(newL4Probe(Target{Addr: addr}, 2*time.Second, func() time.Duration { return 50 * time.Millisecond },
			func(err error, _ time.Duration) {
				switch {
				case err == nil && i%2 == 0:
					passed[i].Add(1)
				case errors.Is(err, unix.ECONNREFUSED) && i%2 == 1:
					refused[i].Add(1)
				default:
					other.Store(fmt.Sprintf("server %d: %v", i, err))
				}
			}))
	}
	defer func() {
		if t.Failed() {
			lo := [2]int64{1 << 40, 1 << 40}
			short := [2]int{}
			for i := range n {
				c := passed[i].Load() + refused[i].Load()
				lo[i%2] = min(lo[i%2], c)
				if c < 3 {
					short[i%2]++
				}
			}
			t.Logf("fewest results: %d of a passing server, %d of a refusing one; %d and %d short; last other result: %v", lo[0], lo[1], short[0], short[1], other.Load())
		}
	}()
	testutil.WaitFor(t, "three results of every server", func() bool {
		for i := range n {
			if passed[i].Load()+refused[i].Load() < 3 {
				return false
			}
		}
		return true
	})
	if o := other.Load(); o != nil {
		t.Fatal(o)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestL4Remove: a removed probe's check in flight is closed and it gets
// no more results; the loop's end closes every socket it had and its
// goroutine returns.
func TestL4Remove(t *testing.T) {
	addr, _ := fullListener(t)
	ln := testutil.Listen(t)
	base, goroutines := openFDs(t), runtime.NumGoroutine()
	l, stop := startLoop(t)
	hanging, hangResults := loopProbe(t, l, addr, time.Hour, time.Hour)
	var counts [20]atomic.Int64
	for i := range counts {
		l.add(newL4Probe(Target{Addr: ln.Addr().String()}, time.Second, func() time.Duration { return 5 * time.Millisecond },
			func(error, time.Duration) { counts[i].Add(1) }))
	}
	for range 20 { // in flight until the end
		loopProbe(t, l, addr, time.Hour, time.Hour)
	}
	// epoll, eventfd, and 21 sockets in flight (and one of the 20 maybe).
	testutil.WaitFor(t, "the checks in flight", func() bool { return openFDs(t) >= base+2+21 })
	l.remove(hanging)
	testutil.WaitFor(t, "the removed check's socket closed", func() bool {
		n := openFDs(t)
		return n >= base+2+20 && n <= base+2+20+1
	})
	select {
	case r := <-hangResults:
		t.Fatalf("a removed probe got %v", r)
	default:
	}
	testutil.WaitFor(t, "checks repeating", func() bool { return counts[19].Load() >= 3 })
	stop()
	if n := openFDs(t); n != base {
		t.Fatalf("%d files open after the loop ended, %d before it", n, base)
	}
	testutil.WaitFor(t, "no goroutine left", func() bool { return runtime.NumGoroutine() <= goroutines })
	// Posting to an ended loop is harmless.
	l.remove(hanging)
	l.add(hanging)
}

// TestL4ProbeOf: the loop takes plain connect checks of addresses; DNS
// names, service names and send/expect checks stay with tcpChecker.
func TestL4ProbeOf(t *testing.T) {
	none := func() time.Duration { return 0 }
	for _, tc := range []struct {
		t    Target
		want string // the probe's addr, "" for none
	}{
		{Target{Addr: "127.0.0.1:80"}, "127.0.0.1:80"},
		{Target{Addr: "127.0.0.1:80", Port: 81}, "127.0.0.1:81"},
		{Target{Addr: "10.0.0.1", Port: 81}, "10.0.0.1:81"},
		{Target{Addr: "[2001:db8::1]:80"}, "[2001:db8::1]:80"},
		{Target{Addr: "[::ffff:10.0.0.1]:80"}, "[::ffff:10.0.0.1]:80"},
		{Target{Addr: "db1.example:80"}, ""},
		{Target{Addr: "127.0.0.1:http"}, ""},
		{Target{Addr: "127.0.0.1"}, ""},
		{Target{Addr: "127.0.0.1:0"}, ""},
		{Target{Addr: "127.0.0.1:80", Send: "PING\r\n"}, ""},
		{Target{Addr: "127.0.0.1:80", Expect: "+PONG"}, ""},
		{Target{Addr: "[fe80::1%no-such-if]:80"}, ""},
	} {
		p := newL4Probe(tc.t, time.Second, none, func(error, time.Duration) {})
		switch {
		case tc.want == "" && p != nil:
			t.Errorf("%+v: probe of %s, want none", tc.t, p.addr)
		case tc.want != "" && p == nil:
			t.Errorf("%+v: no probe, want %s", tc.t, tc.want)
		case p != nil && p.addr != tc.want:
			t.Errorf("%+v: probe of %s, want %s", tc.t, p.addr, tc.want)
		}
	}
}

// TestComponentTCPInLoop: the component runs a plain tcp check in its loop
// (no goroutine of the server's own) and one with send/expect or a DNS
// name with tcpChecker; a server that starts refusing goes down; a reload
// that removes the servers leaves no socket or goroutine.
func TestComponentTCPInLoop(t *testing.T) {
	ln := listenTCP(t)
	before := runtime.NumGoroutine()
	rec := &recorder{ch: make(chan Change, 1024)}
	c := New(slog.New(slog.DiscardHandler), rec.record)
	refusing := testutil.ReservedAddr(t)
	var servers strings.Builder
	for i := range 50 {
		fmt.Fprintf(&servers, "      - {name: s%d, address: \"%s\"}\n", i, ln.Addr().String())
	}
	start(t, c, fmt.Sprintf(`node: {name: lb1}
backends:
  - name: many
    health: {check: tcp, interval: 50ms, timeout: 2s, rise: 1, fall: 1}
    servers:
%s      - {name: gone, address: "%s"}
  - name: kv
    health: {check: tcp, interval: 10ms, timeout: 1s, send: "PING\r\n", expect: "+PONG"}
    servers: [{name: kv1, address: "%s"}]
`, servers.String(), refusing, refusing))
	ch := rec.wait(t, testutil.WaitTimeout)
	if ch.Up || ch.Server != "gone" || ch.Reason != "connect "+refusing+": connection refused, 1/1 failure" {
		t.Fatalf("change %+v", ch)
	}
	c.mu.Lock()
	inLoop := 0
	for _, m := range c.monitors {
		if m.probe != nil {
			inLoop++
		}
	}
	c.mu.Unlock()
	if inLoop != 51 {
		t.Fatalf("%d servers checked in the loop, want 51 (not kv1)", inLoop)
	}
	// Only kv1 has a goroutine: the loop is one, Run another.
	if n := runtime.NumGoroutine(); n > before+3+2 {
		t.Errorf("%d goroutines, %d before", n, before)
	}
	testutil.WaitFor(t, "every server checked", func() bool {
		for _, s := range c.Status().([]BackendHealth)[0].Servers {
			if s.Checks < 2 {
				return false
			}
		}
		return true
	})
	fds := openFDs(t)
	cfg, _ := config.Parse("halb.yaml", []byte("node: {name: lb1}\nbackends:\n  - name: many\n"))
	c.Apply(cfg)
	testutil.WaitFor(t, "the removed servers' checks to stop", func() bool { return len(c.Status().([]BackendHealth)) == 0 })
	testutil.WaitFor(t, "no check socket open", func() bool { return openFDs(t) <= fds })
}

// TestHTTPInLoop: a plain http check in the loop gets the result
// httpChecker gets, error text included, from servers that answer, fail,
// send an interim response, trickle their head, send garbage, close early,
// send too long a head, hang, or are not there; and the request is the same
// bytes.
func TestHTTPInLoop(t *testing.T) {
	answer := func(parts ...string) func(net.Conn) {
		return func(c net.Conn) {
			for i, p := range parts {
				if i > 0 {
					time.Sleep(20 * time.Millisecond)
				}
				c.Write([]byte(p))
			}
		}
	}
	cases := []struct {
		name   string
		want   config.StatusCodes
		answer func(net.Conn) // nil: nothing listens
		pass   bool
		// timeout of both sides' checks: 2s leaves a loaded machine
		// room for the answers; 0 means that.
		timeout time.Duration
	}{
		{"200", nil, answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), true, 0},
		{"500", nil, answer("HTTP/1.1 500 Internal Server Error\r\n\r\n"), false, 0},
		{"302 in range", config.StatusCodes{{Lo: 200, Hi: 399}}, answer("HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n"), true, 0},
		{"interim then 200", nil, answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), true, 0},
		{"trickled head", nil, answer("HTTP/1.1 2", "00 OK\r\nA: b\r", "\n\r\n"), true, 0},
		{"garbage", nil, answer("hello there\r\n\r\n"), false, 0},
		{"closed before the status", nil, answer(), false, 0},
		{"closed in the head", nil, answer("HTTP/1.1 200 OK\r\nX: y"), false, 0},
		{"head too long", nil, answer("HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Long: "+strings.Repeat("y", 100)+"\r\n", 200)), false, 0},
		{"hangs", nil, func(c net.Conn) { time.Sleep(time.Second) }, false, 300 * time.Millisecond},
		{"refused", nil, nil, false, 0},
	}
	l, _ := startLoop(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			reqs := make(chan string, 4)
			if tc.answer == nil {
				addr = testutil.ReservedAddr(t)
			} else {
				addr = testutil.Serve(t, func(c net.Conn) {
					defer c.Close()
					buf := make([]byte, 4096)
					var got []byte
					for !strings.Contains(string(got), "\r\n\r\n") {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						got = append(got, buf[:n]...)
					}
					reqs <- string(got)
					tc.answer(c)
				})
			}
			// Each side's own exchange must end the same way.
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			target := Target{Addr: addr, Path: "/health", ExpectStatus: tc.want, Timeout: timeout}
			ctx, cancel := context.WithTimeout(context.Background(), target.Timeout)
			defer cancel()
			want := httpChecker{}.Check(ctx, target)
			results := make(chan loopResult, 1)
			p := newHTTPProbe(target, target.Timeout, func() time.Duration { return time.Hour }, func(err error, latency time.Duration) {
				results <- loopResult{err, latency}
			})
			if p == nil {
				t.Fatal("no probe")
			}
			l.add(p)
			defer l.remove(p)
			got := next(t, results).err
			if (want == nil) != tc.pass || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("loop: %v\nhttpChecker: %v (want pass %v)", got, want, tc.pass)
			}
			t.Logf("%v", got)
			if tc.answer != nil {
				if r1, r2 := <-reqs, <-reqs; r1 != r2 || !strings.HasPrefix(r1, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n") {
					t.Fatalf("requests differ:\n%q\n%q", r1, r2)
				}
			}
		})
	}
}

// An http check with a body to look for, or over TLS, is not the loop's.
func TestHTTPProbeOf(t *testing.T) {
	next := func() time.Duration { return time.Second }
	done := func(error, time.Duration) {}
	if newHTTPProbe(Target{Addr: "127.0.0.1:80", ExpectBody: "ok"}, time.Second, next, done) != nil {
		t.Error("a probe for a body check")
	}
	if newHTTPProbe(Target{Addr: "db.example:80"}, time.Second, next, done) != nil {
		t.Error("a probe for a name")
	}
	if newHTTPProbe(Target{Addr: "127.0.0.1:80", Path: "/a b"}, time.Second, next, done) != nil {
		t.Error("a probe for a bad path")
	}
	if p := newHTTPProbe(Target{Addr: "127.0.0.1:80"}, time.Second, next, done); p == nil || p.req == nil {
		t.Error("no probe for a plain check")
	}
}
