package health

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"halb/appliance/certs/certstest"
	"halb/appliance/config"
	"halb/internal/testutil"
)

// backendOf serves HTTP on loopback with the status in code (settable).
type backendOf struct {
	addr string
	code atomic.Int64
	ln   net.Listener
	srv  *http.Server
}

func newHTTPServer(t *testing.T) *backendOf {
	t.Helper()
	ln := testutil.Listen(t)
	b := &backendOf{addr: ln.Addr().String(), ln: ln}
	b.code.Store(200)
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(b.code.Load()))
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

type recorder struct {
	mu      sync.Mutex
	changes []Change
	ch      chan Change
}

func (r *recorder) record(c Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
	r.ch <- c
}

func (r *recorder) wait(t *testing.T, within time.Duration) Change {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(within):
		t.Fatalf("no server state change within %v", within)
		return Change{}
	}
}

func runComponent(t *testing.T, yaml string) (*Component, *recorder) {
	t.Helper()
	rec := &recorder{ch: make(chan Change, 16)}
	c := New(slog.New(slog.DiscardHandler), rec.record)
	start(t, c, yaml)
	return c, rec
}

// start runs c on the config yaml until the test ends.
func start(t *testing.T, c *Component, yaml string) {
	t.Helper()
	cfg, err := config.Parse("halb.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	c.Apply(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestComponentHTTPDownAndBack: an http check takes a server answering
// 503 down after fall checks, with the reason, and brings it back after
// rise passes; status tells the story.
func TestComponentHTTPDownAndBack(t *testing.T) {
	b := newHTTPServer(t)
	c, rec := runComponent(t, fmt.Sprintf(`node: {name: lb1}
backends:
  - name: web
    health: {check: http, path: /healthz, interval: 30ms, timeout: 500ms, rise: 2, fall: 3}
    servers: [{name: web1, address: "%s"}]
`, b.addr))
	testutil.WaitFor(t, "two checks passed", func() bool {
		st := c.Status().([]BackendHealth)
		return len(st) == 1 && st[0].Servers[0].Checks >= 2
	})
	if !c.Up("web", "web1") {
		t.Fatal("a passing server is down")
	}
	rec.none(t, "two checks passed")
	b.code.Store(503)
	ch := rec.wait(t, 3*time.Second)
	if ch.Up || ch.Backend != "web" || ch.Server != "web1" || ch.Reason != "http status 503 (want 200), 3/3 failures" {
		t.Fatalf("change %+v", ch)
	}
	if c.Up("web", "web1") {
		t.Fatal("Up says up after the change")
	}
	b.code.Store(200)
	if ch := rec.wait(t, 3*time.Second); !ch.Up || ch.Reason != "2/2 checks passed" {
		t.Fatalf("change %+v", ch)
	}
	st := c.Status().([]BackendHealth)
	if len(st) != 1 || st[0].Servers[0].State != "up" || st[0].Servers[0].Ups != 1 || st[0].Servers[0].Downs != 1 || st[0].Servers[0].Checks < 5 {
		t.Fatalf("status %+v", st)
	}
}

// TestComponentTCPRefused: a tcp check takes a server whose port refuses
// down; a reload that removes the server stops its checks.
func TestComponentTCPRefused(t *testing.T) {
	addr := testutil.ReservedAddr(t) // refuses
	c, rec := runComponent(t, fmt.Sprintf(`node: {name: lb1}
backends:
  - name: db
    health: {check: tcp, interval: 20ms, timeout: 200ms, rise: 1, fall: 2}
    servers: [{name: db1, address: "%s"}]
`, addr))
	ch := rec.wait(t, 3*time.Second)
	if ch.Up || ch.Address != addr {
		t.Fatalf("change %+v", ch)
	}
	cfg, _ := config.Parse("halb.yaml", []byte("node: {name: lb1}\nbackends:\n  - name: db\n"))
	c.Apply(cfg)
	testutil.WaitFor(t, "the removed server's checks to stop", func() bool { return len(c.Status().([]BackendHealth)) == 0 })
}

// TestComponentInitialDown: with initial: down a server gets no traffic
// until rise checks passed. A server that starts up never reports coming
// up: this change proves it started down.
func TestComponentInitialDown(t *testing.T) {
	b := newHTTPServer(t)
	_, rec := runComponent(t, fmt.Sprintf(`node: {name: lb1}
backends:
  - name: web
    health: {check: http, interval: 30ms, timeout: 500ms, rise: 2, fall: 3, initial: down}
    servers: [{name: web1, address: "%s"}]
`, b.addr))
	if ch := rec.wait(t, 3*time.Second); ch.Up || ch.Reason != "initial: down until 2/2 checks passed" {
		t.Fatalf("first change %+v, want down at the start", ch)
	}
	if ch := rec.wait(t, 3*time.Second); !ch.Up || ch.Reason != "2/2 checks passed" {
		t.Fatalf("change %+v, want up after 2 passes", ch)
	}
}

// TestComponentForgetsDownOnChange: a down server whose check changes, or
// that leaves the config, is reported up again, so the proxy does not
// keep a verdict no monitor will ever lift.
func TestComponentForgetsDownOnChange(t *testing.T) {
	addr := testutil.ReservedAddr(t) // refuses
	conf := func(interval string) *config.Config {
		cfg, err := config.Parse("halb.yaml", []byte(fmt.Sprintf(`node: {name: lb1}
backends:
  - name: db
    health: {check: tcp, interval: %s, timeout: 200ms, rise: 1, fall: 1}
    servers: [{name: db1, address: "%s"}]
`, interval, addr)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	c, rec := runComponent(t, "node: {name: lb1}\n")
	c.Apply(conf("20ms"))
	if ch := rec.wait(t, 3*time.Second); ch.Up {
		t.Fatalf("change %+v, want down (refused)", ch)
	}
	c.Apply(conf("30s")) // a new check: up until its first result
	if ch := rec.wait(t, 3*time.Second); !ch.Up || ch.Reason != "check changed: up until its first results" {
		t.Fatalf("change %+v", ch)
	}
	if ch := rec.wait(t, 3*time.Second); ch.Up {
		t.Fatalf("change %+v, want down again after the first check", ch)
	}
	c.Apply(mustParse(t, "node: {name: lb1}\nbackends:\n  - name: db\n"))
	if ch := rec.wait(t, 3*time.Second); !ch.Up || !ch.Unchecked || ch.Reason != "removed from the config" {
		t.Fatalf("change %+v", ch)
	}
}

func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("halb.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestComponentBackendTLS: the http checks of a backend with tls talk TLS
// with its settings: its CA passes the server, another CA's does not and
// the reason says why.
func TestComponentBackendTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.pem"), filepath.Join(dir, "bad.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644)
	other := certstest.Root(t, "other")
	os.WriteFile(bad, other.PEM, 0o644)
	yaml := func(ca string) string {
		return fmt.Sprintf(`node: {name: lb1}
backends:
  - name: web
    tls: {ca: %s}
    health: {check: http, interval: 30ms, timeout: 500ms, rise: 1, fall: 1, initial: down}
    servers: [{name: web1, address: "%s"}]
`, ca, ts.Listener.Addr().String())
	}
	c, rec := runComponent(t, yaml(good))
	if ch := rec.wait(t, 3*time.Second); ch.Up || !strings.HasPrefix(ch.Reason, "initial: down") {
		t.Fatalf("first: %+v", ch)
	}
	if ch := rec.wait(t, 3*time.Second); !ch.Up {
		t.Fatalf("with its CA: %+v", ch)
	}
	cfg, _ := config.Parse("halb.yaml", []byte(yaml(bad)))
	c.Apply(cfg)
	var last string
	testutil.WaitFor(t, "the check with another CA to fail", func() bool {
		st := c.Status().([]BackendHealth)
		last = st[0].Servers[0].LastError
		return st[0].Servers[0].State == "down" && last != ""
	})
	if !strings.Contains(last, "tls handshake with "+ts.Listener.Addr().String()) || !strings.Contains(last, "certificate signed by unknown authority") {
		t.Fatalf("with another CA: %q", last)
	}
}

// TestComponentDisabledNotChecked: a disabled server (maintenance) is not
// checked: a refusing address never goes down, status says disabled and
// Up says no; disabling a server that was down reports it forgotten.
func TestComponentDisabledNotChecked(t *testing.T) {
	refusing := testutil.ReservedAddr(t)
	b := newHTTPServer(t)
	conf := func(disabled bool) *config.Config {
		return mustParse(t, fmt.Sprintf(`node: {name: lb1}
backends:
  - name: db
    health: {check: tcp, interval: 20ms, timeout: 200ms, rise: 1, fall: 1}
    servers:
      - {name: off, address: "%s", disabled: %v}
      - {name: on, address: "%s"}
`, refusing, disabled, b.addr))
	}
	c, rec := runComponent(t, "node: {name: lb1}\n")
	c.Apply(conf(false))
	if ch := rec.wait(t, 3*time.Second); ch.Up || ch.Server != "off" {
		t.Fatalf("change %+v, want off down (refused)", ch)
	}
	c.Apply(conf(true))
	if ch := rec.wait(t, 3*time.Second); !ch.Up || !ch.Unchecked || ch.Server != "off" || ch.Reason != "disabled" {
		t.Fatalf("change %+v, want off forgotten as disabled", ch)
	}
	testutil.WaitFor(t, "on checked a few times", func() bool {
		st := c.Status().([]BackendHealth)
		return len(st) == 1 && len(st[0].Servers) == 2 && st[0].Servers[1].Checks >= 3
	})
	rec.none(t, "disabled")
	st := c.Status().([]BackendHealth)
	if s := st[0].Servers[0]; s.Name != "off" || s.State != "disabled" || s.Checks != 0 || st[0].Check != "tcp" {
		t.Fatalf("status %+v, want off disabled and unchecked first", st)
	}
	if c.Up("db", "off") || !c.Up("db", "on") {
		t.Fatal("Up: want off not up, on up")
	}
}
