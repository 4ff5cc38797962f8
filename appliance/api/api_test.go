package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/appliance/timesync"
)

// fakeDaemon keeps a config in memory, as the real daemon does minus saving.
type fakeDaemon struct {
	mu      sync.Mutex
	cfg     *config.Config
	raw     []byte
	events  *Broker
	maint   bool
	drained []string
	// hist holds every applied config, version i+1 at i.
	hist []HistoryEntry
	raws [][]byte
	// password is the console password; wrong counts wrong ones.
	password string
	wrong    int
	// pending is the confirmation window of the last ApplyConfirmed; 0 when
	// none awaits.
	pending time.Duration
	// system enables the system actions; actions lists those done.
	system  bool
	actions []string
	// code is the active pairing code (peer_test.go).
	code *PairingCode
}

func (f *fakeDaemon) systemAction(action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.system {
		return fmt.Errorf("system actions are not enabled: %w", ErrNotEnabled)
	}
	f.actions = append(f.actions, action)
	return nil
}

func (f *fakeDaemon) Reboot() error   { return f.systemAction("reboot") }
func (f *fakeDaemon) Poweroff() error { return f.systemAction("poweroff") }

func (f *fakeDaemon) FactoryReset(name string) error {
	if name != "lb1" {
		return fmt.Errorf("node_name %q is not this node's name: %w", name, ErrInvalid)
	}
	return f.systemAction("factory-reset")
}

// Logs returns n records, "record 1" the oldest.
func (f *fakeDaemon) Logs(n int) []LogRecord {
	var out []LogRecord
	for i := range min(n, 3) {
		out = append(out, LogRecord{Level: "INFO", Message: fmt.Sprintf("record %d", i+1), Attrs: "k=v"})
	}
	return out
}

func (f *fakeDaemon) ConsoleAuth() ConsoleAuth {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ConsoleAuth{PasswordSet: f.password != "", Required: true}
}

func (f *fakeDaemon) SetConsolePassword(password, old string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(password) < 8 {
		return fmt.Errorf("too short: %w", ErrInvalid)
	}
	if f.password != "" && old != f.password {
		return fmt.Errorf("wrong: %w", ErrUnauthorized)
	}
	f.password = password
	return nil
}

func (f *fakeDaemon) ResetConsolePassword() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.password = ""
	return nil
}

// CheckConsolePassword holds off every check after two wrong ones.
func (f *fakeDaemon) CheckConsolePassword(password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.password == "":
		return fmt.Errorf("none set: %w", ErrNoPassword)
	case f.wrong >= 2:
		return &RetryError{After: 1500 * time.Millisecond, Msg: "2 wrong"}
	case password != f.password:
		f.wrong++
		return fmt.Errorf("wrong console password: %w", ErrUnauthorized)
	}
	return nil
}

func (f *fakeDaemon) DrainServer(server string, drain bool) error {
	if server != "www/web1" {
		return fmt.Errorf("server %q: %w", server, ErrNotFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained = nil
	if drain {
		f.drained = []string{server}
	}
	return nil
}

func (f *fakeDaemon) Drained() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.drained...)
}

func (f *fakeDaemon) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{Config: ConfigStatus{Loaded: f.cfg != nil}}
	if f.cfg != nil {
		st.Node.Name = f.cfg.Node.Name
	}
	return st
}

func (f *fakeDaemon) Running() (*config.Config, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg, f.raw
}

func (f *fakeDaemon) ApplyFrom(source, name string, raw []byte) (ApplyResult, error) {
	cfg, err := config.Parse(name, raw)
	if err != nil {
		return ApplyResult{}, err
	}
	if cfg.Node.Name == "busy" { // as a config whose listen address is in use
		return ApplyResult{}, fmt.Errorf("%w: %w", ErrConflict, config.Errors{{File: name, Line: 1, Msg: "cannot listen"}})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := config.Diff(f.cfg, cfg)
	f.cfg, f.raw = cfg, raw
	f.hist = append(f.hist, HistoryEntry{Version: len(f.hist) + 1, Source: source, Summary: name})
	f.raws = append(f.raws, raw)
	f.events.Publish(Event{Type: "config.applied"})
	return ApplyResult{Changes: ch, Version: len(f.hist)}, nil
}

func (f *fakeDaemon) ApplyConfirmed(source, name string, raw []byte, within time.Duration) (ApplyResult, error) {
	res, err := f.ApplyFrom(source, name, raw)
	if err == nil {
		res.ConfirmBy = time.Unix(0, 0).Add(within)
		f.mu.Lock()
		f.pending = within
		f.mu.Unlock()
	}
	return res, err
}

func (f *fakeDaemon) Confirm() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == 0 {
		return Errorf(ErrNotFound, "no change awaits confirmation")
	}
	f.pending = 0
	return nil
}

func (f *fakeDaemon) RevertNow() error { return f.Confirm() }

func (f *fakeDaemon) TestNetwork(ctx context.Context) ([]CheckResult, error) {
	return []CheckResult{{Name: "ping gateway 10.0.0.1", OK: true, Detail: "echo reply", Took: time.Millisecond},
		{Name: "resolve ntp.example.net", Detail: "no such host"}}, nil
}

func (f *fakeDaemon) TestTime(ctx context.Context, servers []string) ([]timesync.ServerStatus, error) {
	if len(servers) == 0 {
		return nil, Errorf(ErrInvalid, "no time server to test")
	}
	var out []timesync.ServerStatus
	for _, s := range servers {
		out = append(out, timesync.ServerStatus{Name: s, Reachable: true, Stratum: 2, Offset: time.Millisecond})
	}
	return out, nil
}

func (f *fakeDaemon) History() []HistoryEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []HistoryEntry
	for i := len(f.hist) - 1; i >= 0; i-- {
		out = append(out, f.hist[i])
	}
	return out
}

func (f *fakeDaemon) HistoryConfig(v int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v > len(f.hist) {
		return nil, fmt.Errorf("config version %d: %w", v, ErrNotFound)
	}
	return f.raws[v-1], nil
}

func (f *fakeDaemon) Rollback(v int) (ApplyResult, error) {
	raw, err := f.HistoryConfig(v)
	if err != nil {
		return ApplyResult{}, err
	}
	return f.ApplyFrom(SourceRollback, fmt.Sprintf("history/%d.yaml", v), raw)
}

func (f *fakeDaemon) Events() *Broker { return f.events }

func (f *fakeDaemon) Interfaces() ([]Interface, error) {
	return []Interface{{Name: "eth0", Kind: "device", MAC: "52:54:00:00:00:01", MTU: 1500, Up: true, Carrier: true,
		Addresses: []string{"10.0.0.1/24"}, VRRP: []HeardRouter{{VRID: 51, Version: 3, Source: "10.0.0.2", Priority: 100}}}}, nil
}

func (f *fakeDaemon) SetMaintenance(on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maint = on
	return nil
}

func (f *fakeDaemon) Maintenance() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maint
}

func (f *fakeDaemon) Handover(names []string) error {
	for _, n := range names {
		if n != "web-a" {
			return fmt.Errorf("vrrp instance %q: %w", n, ErrNotFound)
		}
	}
	f.events.Publish(Event{Type: "vrrp.handover", Data: names})
	return nil
}

// serve starts a Server on a socket in a temp dir and returns a client.
func serve(t *testing.T) (*fakeDaemon, *Client, string) {
	t.Helper()
	return serveWith(t, Options{})
}

// serveWith is serve for a server that also serves what opts gives.
func serveWith(t *testing.T, opts Options) (*fakeDaemon, *Client, string) {
	t.Helper()
	d := &fakeDaemon{events: NewBroker()}
	sock := filepath.Join(t.TempDir(), "sub", "halb.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServerWith(d, slog.New(slog.DiscardHandler), opts).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := NewClient(sock)
	t.Cleanup(c.Close)
	return d, c, sock
}

const good = "node: {name: lb1}\n"

func TestSocketMode(t *testing.T) {
	_, _, sock := serve(t)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want socket 0660", fi.Mode())
	}
}

func TestListenRefusesLiveSocketReplacesStale(t *testing.T) {
	_, _, sock := serve(t)
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Listen on a live socket: %v", err)
	}

	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody answers: a crashed daemon's socket
	ln2, err := Listen(stale)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	ln2.Close()
}

func TestConfigRoundTrip(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()

	var se *StatusError
	if _, err := c.Config(ctx); !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("Config while unconfigured: %v", err)
	}
	changes, err := c.ApplyConfig(ctx, []byte(good))
	if err != nil || len(changes) != 1 || changes[0].String() != "node changed: name" {
		t.Fatalf("ApplyConfig: %v %v", changes, err)
	}
	raw, err := c.Config(ctx)
	if err != nil || string(raw) != good {
		t.Fatalf("Config = %q, %v", raw, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Node.Name != "lb1" || !st.Config.Loaded {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

func TestInvalidConfigIs422WithEveryError(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	if _, err := c.ApplyConfig(ctx, []byte(good)); err != nil {
		t.Fatal(err)
	}
	bad := "node: {name: lb1, colour: blue}\nvrrp: [{name: a, interface: eth0, vrid: 0, vips: [10.0.0.1/24]}]\n"
	// The errors name the config as the client named it, else "api".
	for file, want := range map[string]string{"": "api", "/srv/new.yaml": "/srv/new.yaml", "a\nb": "api"} {
		for name, call := range map[string]func() error{
			"apply":    func() error { _, err := c.ApplyConfigAs(ctx, file, []byte(bad)); return err },
			"validate": func() error { _, err := c.ValidateConfigAs(ctx, file, []byte(bad)); return err },
		} {
			es := config.AsErrors(call())
			if len(es) != 2 {
				t.Fatalf("%s: errors %v, want 2", name, es)
			}
			if es[0].Line != 1 || es[0].Path != "node.colour" || es[1].Line != 2 || es[1].Path != "vrrp[0].vrid" {
				t.Errorf("%s: errors %q", name, es)
			}
			if es[0].File != want {
				t.Errorf("%s of %q: the errors name the config %q, want %q", name, file, es[0].File, want)
			}
		}
	}
	if raw, _ := c.Config(ctx); string(raw) != good {
		t.Fatalf("running config changed to %q", raw)
	}
}

// TestUntakeableConfigIs409: a valid config the node cannot take (a listen
// address in use) is answered 409 with its errors.
func TestUntakeableConfigIs409(t *testing.T) {
	_, c, _ := serve(t)
	req, _ := http.NewRequest(http.MethodPut, "http://halbd/v1/config?name=busy.yaml", strings.NewReader("node: {name: busy}\n"))
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || resp.StatusCode != http.StatusConflict ||
		len(eb.Errors) != 1 || eb.Errors[0].Error() != "busy.yaml:1: cannot listen" {
		t.Fatalf("%s %+v %v, want 409 and the error", resp.Status, eb, err)
	}
}

func TestValidateListsChangesWithoutApplying(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	c.ApplyConfig(ctx, []byte(good))
	changes, err := c.ValidateConfig(ctx, []byte("node: {name: lb2}\n"))
	if err != nil || len(changes) != 1 || changes[0].String() != "node changed: name" {
		t.Fatalf("ValidateConfig: %v %v", changes, err)
	}
	if raw, _ := c.Config(ctx); string(raw) != good {
		t.Fatalf("validate applied the config")
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	_, c, _ := serve(t)
	big := []byte(good + "#" + strings.Repeat("x", config.MaxSize) + "\n")
	_, err := c.ApplyConfig(context.Background(), big)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 413 {
		t.Fatalf("oversized config: %v, want 413", err)
	}
}

func TestEventStream(t *testing.T) {
	d, c, _ := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Event, 10)
	go c.Events(ctx, func(ev Event) error { got <- ev; return nil })
	if ev := <-got; ev.Type != "events.subscribed" {
		t.Fatalf("first event %q", ev.Type)
	}
	d.events.Publish(Event{Type: "vrrp.state", Message: "web-a MASTER"})
	select {
	case ev := <-got:
		if ev.Type != "vrrp.state" || ev.Message != "web-a MASTER" || ev.Time.IsZero() {
			t.Fatalf("event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
}

func TestBrokerDropsForSlowSubscriberAndSaysSo(t *testing.T) {
	b := NewBroker()
	ch, cancel := b.Subscribe(2)
	defer cancel()
	for i := range 5 {
		b.Publish(Event{Type: "x", Data: i})
	}
	<-ch
	<-ch // buffer drained; 3 were dropped
	b.Publish(Event{Type: "y"})
	ev := <-ch
	if ev.Type != "events.dropped" || ev.Data.(map[string]int)["dropped"] != 3 {
		t.Fatalf("got %+v, want a drop notice of 3", ev)
	}
	if ev := <-ch; ev.Type != "y" {
		t.Fatalf("after the notice got %+v, want the event that followed", ev)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	b.Publish(Event{Type: "after"}) // must not panic on a closed channel
}

func TestHandover(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	if err := c.Handover(ctx, "web-a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Handover(ctx); err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if err := c.Handover(ctx, "nope"); !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("unknown instance: %v, want 404", err)
	}
}

func TestDrain(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	if got, err := c.DrainServer(ctx, "www/web1", true); err != nil || len(got) != 1 || got[0] != "www/web1" {
		t.Fatalf("drain: %v %v", got, err)
	}
	if got, err := c.Drained(ctx); err != nil || len(got) != 1 {
		t.Fatalf("drained: %v %v", got, err)
	}
	if got, err := c.DrainServer(ctx, "www/web1", false); err != nil || len(got) != 0 {
		t.Fatalf("ready: %v %v", got, err)
	}
	_, err := c.DrainServer(ctx, "www/nope", true)
	if err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown server: %v, want not found", err)
	}
}

func TestMaintenance(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	for _, on := range []bool{true, false} {
		if err := c.SetMaintenance(ctx, on); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Maintenance(ctx); err != nil || got != on {
			t.Fatalf("maintenance %v, %v; want %v", got, err, on)
		}
	}
}

func TestInterfaces(t *testing.T) {
	_, c, _ := serve(t)
	l, err := c.Interfaces(context.Background())
	if err != nil || len(l) != 1 || l[0].Name != "eth0" || !l[0].Carrier || len(l[0].VRRP) != 1 || l[0].VRRP[0].VRID != 51 {
		t.Fatalf("interfaces: %+v %v", l, err)
	}
}

// TestHistoryAndRollback: the history, a version's YAML and a rollback go
// through the API; the console's configs are marked as the console's; bad
// versions are 400 and unknown ones 404.
// TestConfirmedApply: confirm_within reaches the daemon as a duration with
// the config's name, the answer carries the deadline, a bad duration is
// 400, and confirming with nothing pending is 404.
func TestConfirmedApply(t *testing.T) {
	d, c, _ := serve(t)
	ctx := context.Background()
	res, err := c.ApplyConfirmed(ctx, "mgmt.yaml", []byte(good), 90*time.Second)
	if err != nil || res.Version != 1 || !res.ConfirmBy.Equal(time.Unix(90, 0)) {
		t.Fatalf("ApplyConfirmed: %+v %v", res, err)
	}
	if h := d.History(); h[0].Summary != "mgmt.yaml" {
		t.Errorf("name lost: %+v", h)
	}
	if err := c.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if err := c.Confirm(ctx); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("second confirm: %v, want 404", err)
	}
	if code, body := rawRequest(t, c, http.MethodPut, "/v1/config?confirm_within=soon", good); code != 400 || !strings.Contains(body, "not a duration") {
		t.Errorf("confirm_within=soon: %d %s, want 400", code, body)
	}
}

// TestManagementTests: the network test's results and the time test's
// servers come back as the daemon gives them; a bad server name is 400
// before the daemon sees it, no server at all is the daemon's 400.
func TestManagementTests(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	l, err := c.TestNetwork(ctx)
	if err != nil || len(l) != 2 || !l[0].OK || l[0].Took != time.Millisecond || l[1].OK || l[1].Detail != "no such host" {
		t.Fatalf("TestNetwork: %+v %v", l, err)
	}
	ts, err := c.TestTime(ctx, []string{"10.0.0.123", "ntp.example.net"})
	if err != nil || len(ts) != 2 || ts[1].Name != "ntp.example.net" || ts[0].Stratum != 2 {
		t.Fatalf("TestTime: %+v %v", ts, err)
	}
	var se *StatusError
	if _, err := c.TestTime(ctx, []string{"bad name"}); !errors.As(err, &se) || se.Code != 400 {
		t.Errorf("bad name: %v, want 400", err)
	}
	if _, err := c.TestTime(ctx, nil); !errors.As(err, &se) || se.Code != 400 {
		t.Errorf("no servers: %v, want 400", err)
	}
}

func TestHistoryAndRollback(t *testing.T) {
	d, c, sock := serve(t)
	ctx := context.Background()
	if l, err := c.History(ctx); err != nil || len(l) != 0 {
		t.Fatalf("empty history: %v %v", l, err)
	}
	if res, err := c.Apply(ctx, "", []byte(good)); err != nil || res.Version != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	console := NewClient(sock)
	defer console.Close()
	console.SetAgent(SourceConsole)
	if _, err := console.ApplyConfig(ctx, []byte("node: {name: lb2}\n")); err != nil {
		t.Fatal(err)
	}
	l, err := c.History(ctx)
	if err != nil || len(l) != 2 || l[0].Version != 2 || l[0].Source != SourceConsole || l[1].Source != SourceAPI {
		t.Fatalf("history %+v %v, want 2 (console) then 1 (api)", l, err)
	}
	if raw, err := c.HistoryConfig(ctx, 1); err != nil || string(raw) != good {
		t.Fatalf("version 1: %q %v", raw, err)
	}
	res, err := c.Rollback(ctx, 1)
	if err != nil || res.Version != 3 || len(res.Changes) != 1 || res.Changes[0].String() != "node changed: name" {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if d.History()[0].Source != SourceRollback {
		t.Errorf("the rollback is recorded as from %q", d.History()[0].Source)
	}
	var se *StatusError
	if _, err := c.Rollback(ctx, 9); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("rollback to an unknown version: %v, want 404", err)
	}
	if _, err := c.HistoryConfig(ctx, 9); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("an unknown version: %v, want 404", err)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/v1/config/history/x", "", `config version \"x\" is not a positive whole number`},
		{"GET", "/v1/config/history/0", "", `config version \"0\" is not a positive whole number`},
		{"POST", "/v1/config/rollback", `{"version": 0}`, "version 0: want the positive version number"},
		{"POST", "/v1/config/rollback", `{"versoin": 2}`, `body: want {\"version\": N}: json: unknown field \"versoin\"`},
		{"POST", "/v1/config/rollback", ``, `body: want {\"version\": N}: EOF`},
	} {
		code, body := rawRequest(t, c, tc.method, tc.path, tc.body)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s, want 400 saying %s", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
}

// rawRequest sends a request through c's connection and returns the
// status code and body.
func rawRequest(t *testing.T, c *Client, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://halbd"+path, strings.NewReader(body))
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsolePasswordAPI: the console password's endpoints answer with
// the status codes the console relies on, which the client turns into
// errors that errors.Is can tell apart.
func TestConsolePasswordAPI(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	if a, err := c.ConsoleAuth(ctx); err != nil || a.PasswordSet || !a.Required {
		t.Fatalf("auth: %+v %v", a, err)
	}
	var se *StatusError
	if err := c.CheckConsolePassword(ctx, "x"); !errors.As(err, &se) || se.Code != 409 || !strings.Contains(se.Msg, "none set") {
		t.Fatalf("check without a password: %v, want 409", err)
	}
	if err := c.SetConsolePassword(ctx, "short", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short password: %v, want ErrInvalid (400)", err)
	}
	if err := c.SetConsolePassword(ctx, "long enough", ""); err != nil {
		t.Fatal(err)
	}
	if a, err := c.ConsoleAuth(ctx); err != nil || !a.PasswordSet {
		t.Fatalf("auth after set: %+v %v", a, err)
	}
	if err := c.SetConsolePassword(ctx, "longer still", "bad"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("change with a wrong old password: %v, want ErrUnauthorized (401)", err)
	}
	if err := c.CheckConsolePassword(ctx, "long enough"); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	for range 2 {
		if err := c.CheckConsolePassword(ctx, "wrong"); !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
			t.Fatalf("a wrong password: %v, want ErrUnauthorized (401)", err)
		}
	}
	err := c.CheckConsolePassword(ctx, "long enough")
	if !errors.As(err, &se) || se.Code != 429 || se.RetryAfter != 2*time.Second || !strings.Contains(se.Msg, "2 wrong: try again in 1.5s") {
		t.Fatalf("a check held off: %#v, want 429 with Retry-After 2", err)
	}
	if err := c.ResetConsolePassword(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := c.ConsoleAuth(ctx); a.PasswordSet {
		t.Fatal("a password is set after a reset")
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/v1/console/auth", `{"pasword": "x"}`, `unknown field \"pasword\"`},
		{"PUT", "/v1/console/password", `"x"`, `body: want {\"password\": \"...\", \"old\": \"...\"}: json: cannot unmarshal string`},
	} {
		if code, body := rawRequest(t, c, tc.method, tc.path, tc.body); code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s, want 400 saying %s", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
}

func TestLogs(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	if l, err := c.Logs(ctx, 0); err != nil || len(l) != 3 || l[0].Message != "record 1" || l[0].Attrs != "k=v" {
		t.Fatalf("logs: %+v %v", l, err)
	}
	if l, err := c.Logs(ctx, 2); err != nil || len(l) != 2 {
		t.Fatalf("logs n=2: %+v %v", l, err)
	}
	for _, q := range []string{"0", "-1", "x", "1e3"} {
		if code, body := rawRequest(t, c, "GET", "/v1/logs?n="+q, ""); code != 400 || !strings.Contains(body, "want a positive number of log records") {
			t.Errorf("n=%s: %d %s, want 400", q, code, body)
		}
	}
}

// TestSystemActions: reboot, poweroff and factory reset answer 403 on a
// daemon that does not enable them, 202 once under way; a factory reset
// with the wrong name or no body is 400.
func TestSystemActions(t *testing.T) {
	d, c, _ := serve(t)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"reboot":        func() error { return c.Reboot(ctx) },
		"poweroff":      func() error { return c.Poweroff(ctx) },
		"factory-reset": func() error { return c.FactoryReset(ctx, "lb1") },
	} {
		var se *StatusError
		if err := call(); !errors.Is(err, ErrNotEnabled) || !errors.As(err, &se) || se.Code != 403 {
			t.Errorf("%s while not enabled: %v, want 403", name, err)
		}
	}
	d.mu.Lock()
	d.system = true
	d.mu.Unlock()
	if err := c.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Poweroff(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.FactoryReset(ctx, "lb2"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `node_name "lb2" is not this node's name`) {
		t.Errorf("factory reset with another name: %v, want 400", err)
	}
	if err := c.FactoryReset(ctx, "lb1"); err != nil {
		t.Fatal(err)
	}
	if code, body := rawRequest(t, c, "POST", "/v1/system/factory-reset", ""); code != 400 || !strings.Contains(body, `want {\"node_name\": \"this node's name\"}`) {
		t.Errorf("factory reset without a body: %d %s", code, body)
	}
	code, body := rawRequest(t, c, "POST", "/v1/system/reboot", "")
	if code != 202 || !strings.Contains(body, `"action": "reboot"`) {
		t.Errorf("reboot: %d %s", code, body)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := []string{"reboot", "poweroff", "factory-reset", "reboot"}; !slices.Equal(d.actions, want) {
		t.Errorf("actions %q, want %q", d.actions, want)
	}
}
