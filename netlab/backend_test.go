package netlab

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond until it holds; the bound is only a hang guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startBackend serves a new backend on a loopback port; cleanup closes it and
// checks that Serve returned nil.
func startBackend(t *testing.T, name string) (*Backend, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBackend(name)
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	addr := ln.Addr().String()
	waitFor(t, "backend to serve", func() bool { return b.Addr() == addr })
	t.Cleanup(func() {
		b.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after Close, want nil", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return b, addr
}

func newClient(keepAlive bool, timeout time.Duration) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header.Get("X-Backend")
}

// rawRequest opens a keep-alive connection and sends one request on it.
func rawRequest(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// expectClosedByPeer reads until the peer closes the connection. The deadline
// only guards against a hang: a read that times out means the server did not
// close it.
func expectClosedByPeer(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open: the server did not close it")
	}
}

func TestBackendModeOK(t *testing.T) {
	b, addr := startBackend(t, "web1")
	c := newClient(true, 10*time.Second)
	for _, path := range []string{"/", "/healthz", "/some/where?x=1"} {
		status, body, hdr := get(t, c, "http://"+addr+path)
		if status != 200 || body != "web1\n" || hdr != "web1" {
			t.Errorf("%s: got %d %q X-Backend=%q, want 200 \"web1\\n\" web1", path, status, body, hdr)
		}
	}
	if n := b.Requests(); n != 3 {
		t.Errorf("Requests() = %d, want 3", n)
	}
	if b.Name() != "web1" || b.Mode() != ModeOK {
		t.Errorf("Name/Mode = %q/%v", b.Name(), b.Mode())
	}
}

func TestBackendModeFail(t *testing.T) {
	b, addr := startBackend(t, "web2")
	c := newClient(true, 10*time.Second)
	b.SetMode(ModeFail)
	for _, path := range []string{"/", "/healthz"} {
		status, body, hdr := get(t, c, "http://"+addr+path)
		if status != 500 || body != "web2\n" || hdr != "web2" {
			t.Errorf("%s: got %d %q X-Backend=%q, want 500 naming web2", path, status, body, hdr)
		}
	}
	b.SetMode(ModeOK)
	if status, _, _ := get(t, c, "http://"+addr+"/healthz"); status != 200 {
		t.Errorf("back in ModeOK: status %d", status)
	}
	if n := b.Requests(); n != 3 {
		t.Errorf("Requests() = %d, want 3", n)
	}
}

func TestBackendModeHang(t *testing.T) {
	b, addr := startBackend(t, "web3")
	b.SetMode(ModeHang)

	// A client with a short timeout gives up.
	_, err := newClient(false, 200*time.Millisecond).Get("http://" + addr + "/")
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("GET on a hanging backend: err = %v, want a timeout", err)
	}

	// A patient client is answered once the mode changes.
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := newClient(false, 20*time.Second).Get("http://" + addr + "/")
		if err != nil {
			done <- result{0, err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, nil}
	}()
	waitFor(t, "the request to hang in the backend", func() bool { return b.inflight.Load() >= 1 })
	select {
	case r := <-done:
		t.Fatalf("answered while hanging: %+v", r)
	default:
	}
	b.SetMode(ModeOK)
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Fatalf("after ModeOK: %+v, want 200", r)
	}
}

func TestBackendDelay(t *testing.T) {
	b, addr := startBackend(t, "web4")
	const delay = 100 * time.Millisecond
	b.SetDelay(delay)
	start := time.Now()
	status, _, _ := get(t, newClient(false, 20*time.Second), "http://"+addr+"/")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("answered after %v, want at least the delay %v", took, delay)
	}
	b.SetDelay(0)
	if status, _, _ := get(t, newClient(false, 20*time.Second), "http://"+addr+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
}

func TestBackendModeRefuse(t *testing.T) {
	b, addr := startBackend(t, "web5")
	var relistens atomic.Int32
	b.SetRelisten(func(a string) (net.Listener, error) {
		relistens.Add(1)
		return net.Listen("tcp", a)
	})

	// An open keep-alive connection, idle after one answer, and one with a
	// request hanging: refusing cuts both, like a stopped service.
	idle, idleR := rawRequest(t, addr)
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b.SetMode(ModeHang)
	hung, hungR := rawRequest(t, addr)
	waitFor(t, "the request to hang", func() bool { return b.inflight.Load() >= 1 })

	b.SetMode(ModeRefuse)
	expectClosedByPeer(t, idle, idleR)
	expectClosedByPeer(t, hung, hungR)
	_, err = net.DialTimeout("tcp", addr, 10*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: err = %v, want connection refused", err)
	}
	b.SetMode(ModeOK)
	if n := relistens.Load(); n != 1 {
		t.Errorf("relisten called %d times, want 1", n)
	}
	if err := b.RelistenErr(); err != nil {
		t.Fatal(err)
	}
	if b.Addr() != addr {
		t.Errorf("Addr() = %q after relisten, want %q", b.Addr(), addr)
	}
	status, body, _ := get(t, newClient(true, 10*time.Second), "http://"+addr+"/")
	if status != 200 || body != "web5\n" {
		t.Fatalf("after ModeOK: %d %q", status, body)
	}

	// Refuse → Fail goes straight to answering 500 on the same address.
	b.SetMode(ModeRefuse)
	if _, err := net.DialTimeout("tcp", addr, 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("second refuse: err = %v", err)
	}
	b.SetMode(ModeFail)
	if status, _, _ := get(t, newClient(false, 10*time.Second), "http://"+addr+"/"); status != 500 {
		t.Fatalf("Refuse → Fail: status %d, want 500", status)
	}
}

func TestBackendRefuseBeforeServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	b := NewBackend("web6")
	b.SetMode(ModeRefuse)
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	waitFor(t, "backend to serve", func() bool { return b.Addr() == addr })
	if _, err := net.DialTimeout("tcp", addr, 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: err = %v, want connection refused", err)
	}
	b.SetMode(ModeOK)
	if status, _, _ := get(t, newClient(false, 10*time.Second), "http://"+addr+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
	b.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestBackendCloseKillsConnections(t *testing.T) {
	b, addr := startBackend(t, "web7")
	idle, idleR := rawRequest(t, addr)
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Close {
		t.Fatal("response closes the connection: keep-alive is off")
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b.SetMode(ModeHang)
	hung, hungR := rawRequest(t, addr)
	waitFor(t, "the request to hang", func() bool { return b.inflight.Load() >= 1 })

	b.Close()
	expectClosedByPeer(t, idle, idleR)
	expectClosedByPeer(t, hung, hungR)
	if _, err := net.DialTimeout("tcp", addr, 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Close: err = %v, want connection refused", err)
	}
	b.SetMode(ModeOK) // must not listen again after Close
	if _, err := net.DialTimeout("tcp", addr, 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Close and ModeOK: err = %v, want connection refused", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBackendServeAfterClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBackend("web8")
	b.Close()
	if err := b.Serve(ln); err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("listener left open: %v", err)
	}
}

// TestBackendKnobsConcurrent flips the knobs while clients run; -race checks
// the locking, and every answer must be one a mode allows.
func TestBackendKnobsConcurrent(t *testing.T) {
	b, addr := startBackend(t, "web9")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(i%2 == 0, 300*time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://" + addr + "/")
				if err != nil {
					continue // hang, refuse or a cut connection
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					continue // cut mid-body
				}
				if resp.StatusCode != 200 && resp.StatusCode != 500 || string(body) != "web9\n" {
					t.Errorf("unexpected answer %d %q", resp.StatusCode, body)
				}
			}
		}()
	}
	modes := []BackendMode{ModeFail, ModeHang, ModeRefuse, ModeOK, ModeRefuse, ModeHang, ModeOK}
	for i := range 3 * len(modes) {
		b.SetMode(modes[i%len(modes)])
		b.SetDelay(time.Duration(i%3) * time.Millisecond)
		_ = b.Requests()
		time.Sleep(10 * time.Millisecond)
	}
	b.SetMode(ModeOK)
	close(stop)
	wg.Wait()
	if status, _, _ := get(t, newClient(false, 10*time.Second), "http://"+addr+"/"); status != 200 {
		t.Fatalf("final status %d", status)
	}
}

func TestEchoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEchoServer("echo1")
	served := make(chan error, 1)
	go func() { served <- e.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	for _, msg := range []string{"hello\n", "second message", strings.Repeat("x", 100000)} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echoed %d bytes differ from what was sent", len(msg))
		}
	}

	// Half-close: the server finishes echoing, then closes its side.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c2, "bye")
	c2.(*net.TCPConn).CloseWrite()
	all, err := io.ReadAll(c2)
	if err != nil || string(all) != "bye" {
		t.Fatalf("after half-close: %q, %v; want \"bye\" then EOF", all, err)
	}

	// Close cuts the open connection and Serve returns nil.
	e.Close()
	expectClosedByPeer(t, c, bufio.NewReader(c))
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v after Close, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Close: err = %v, want connection refused", err)
	}
	if e.Close() != nil || e.Name() != "echo1" {
		t.Fatal("second Close or Name")
	}
}

// TestBackendBytes: /bytes?n=N answers N bytes with that Content-Length
// (more than one 64 KiB chunk too); a bad n is a 400.
func TestBackendBytes(t *testing.T) {
	_, addr := startBackend(t, "be1")
	c := newClient(true, 5*time.Second)
	for _, n := range []int64{0, 16 << 10, 1<<20 + 3} {
		resp, err := c.Get("http://" + addr + BytesPath + "?n=" + strconv.FormatInt(n, 10))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != n || int64(len(body)) != n {
			t.Errorf("n=%d: status %d, Content-Length %d, %d bytes (%v)", n, resp.StatusCode, resp.ContentLength, len(body), err)
		}
		if n > 0 && (body[0] != 'a' || body[n-1] != 'a'+byte((n-1)%(64<<10)%26)) {
			t.Errorf("n=%d: body starts %q, ends %q", n, body[0], body[n-1])
		}
	}
	for _, q := range []string{"", "?n=-1", "?n=x", "?n=2000000000"} {
		resp, err := c.Get("http://" + addr + BytesPath + q)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s%s: status %d, want 400", BytesPath, q, resp.StatusCode)
		}
	}
}
