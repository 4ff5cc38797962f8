package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/proxy"
	"halb/appliance/vrrp"
	"halb/internal/testutil"
)

// fakeVRRP stands in for the VRRP component, which needs raw sockets and
// netlink: it records what the daemon tells it, in order.
type fakeVRRP struct {
	mu      sync.Mutex
	calls   []string        // "run", "apply", "maintenance on", ...
	health  map[string]bool // by service, as last set
	applied []*config.Config
	// onApply, when set, runs inside Apply: what holds at the moment VRRP
	// takes a config.
	onApply func(cfg *config.Config)
}

func newFakeVRRP() *fakeVRRP { return &fakeVRRP{health: map[string]bool{}} }

func (f *fakeVRRP) Name() string { return "vrrp" }

func (f *fakeVRRP) Heard() []vrrp.HeardRouter { return nil }

func (f *fakeVRRP) PeerAdvert(name string, src netip.Addr, prio int) {}

func (f *fakeVRRP) Run(ctx context.Context) error {
	f.record("run")
	<-ctx.Done()
	return nil
}

func (f *fakeVRRP) Apply(cfg *config.Config) error {
	if f.onApply != nil {
		f.onApply(cfg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "apply")
	f.applied = append(f.applied, cfg)
	return nil
}

func (f *fakeVRRP) Status() any { return []any{} }

func (f *fakeVRRP) SetServiceHealth(service string, healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health[service] = healthy
}

func (f *fakeVRRP) SetMaintenance(on bool) {
	f.record(map[bool]string{true: "maintenance on", false: "maintenance off"}[on])
}

func (f *fakeVRRP) Handover(names ...string) error {
	f.record("handover " + strings.Join(names, ","))
	return nil
}

func (f *fakeVRRP) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeVRRP) healthOf(service string) (healthy, set bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	healthy, set = f.health[service]
	return healthy, set
}

func (f *fakeVRRP) appliedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

func (f *fakeVRRP) lastApplied() *config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied[len(f.applied)-1]
}

func (f *fakeVRRP) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// testDaemon is a Daemon running in the test, with a fake VRRP.
type testDaemon struct {
	*Daemon
	t      testing.TB
	dir    string
	vrrp   *fakeVRRP
	logs   string // the log file
	events <-chan api.Event
	// early are the events before daemon.started, which startDaemon
	// passed over (a pending change past its deadline is reverted at
	// start, before or after the components are ready).
	early []api.Event
	stop  func() // stops Run and waits for it
}

// startDaemon runs a daemon on dir (its halb.yaml, socket and state
// directory; cfg, when not empty, is written as halb.yaml first) and
// returns once it has started.
func startDaemon(t testing.TB, dir, cfg string) *testDaemon {
	t.Helper()
	return startDaemonWith(t, dir, cfg, nil)
}

// startDaemonWith is startDaemon with options changed by edit.
func startDaemonWith(t testing.TB, dir, cfg string, edit func(*Options)) *testDaemon {
	t.Helper()
	if cfg != "" {
		if err := os.WriteFile(filepath.Join(dir, "halb.yaml"), []byte(cfg), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// The log goes to a file (one write per record), shown if the test fails.
	logs, err := os.CreateTemp(dir, "log-")
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{t: t, dir: dir, vrrp: newFakeVRRP(), logs: logs.Name()}
	opts := Options{
		ConfigPath: filepath.Join(dir, "halb.yaml"),
		SocketPath: filepath.Join(dir, "halb.sock"),
		StateDir:   filepath.Join(dir, "state"),
		Version:    "test",
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
	}
	if edit != nil {
		edit(&opts)
	}
	td.Daemon = newDaemon(opts, func(*Daemon) (vrrpPart, error) { return td.vrrp, nil })
	events, cancelEvents := td.Events().Subscribe(256)
	td.events = events
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- td.Run(ctx) }()
	var once sync.Once
	td.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			cancelEvents()
		})
	}
	t.Cleanup(func() {
		td.stop()
		if t.Failed() {
			b, _ := os.ReadFile(td.logs)
			t.Logf("daemon log:\n%s", b)
		}
		logs.Close()
	})
	for ev := td.waitEvent(""); ev.Type != "daemon.started"; ev = td.waitEvent("") {
		td.early = append(td.early, ev)
	}
	// The components' Run goroutines are started by then, not
	// necessarily running: tests that read the fake VRRP's calls in order
	// want its "run" first.
	eventually(t, "VRRP runs", func() bool { return slices.Contains(td.vrrp.callList(), "run") })
	return td
}

// waitEvent returns the next event of type typ ("": of any type).
func (td *testDaemon) waitEvent(typ string) api.Event {
	td.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-td.events:
			if ev.Type == typ || typ == "" {
				return ev
			}
		case <-timeout:
			td.t.Fatalf("no %s event (\"\": any)", typ)
		}
	}
}

// running returns the running config's bytes.
func (td *testDaemon) running() string {
	_, raw := td.Running()
	return string(raw)
}

// onDisk returns halb.yaml's bytes.
func (td *testDaemon) onDisk() string {
	b, _ := os.ReadFile(td.opts.ConfigPath)
	return string(b)
}

// namer serves connections on a loopback port until the test ends: each
// is sent name and a newline, then closed. It returns the address.
func namer(t *testing.T, name string) string {
	return testutil.Serve(t, func(c net.Conn) {
		fmt.Fprintf(c, "%s\n", name)
		c.Close()
	})
}

// nameAt connects to addr and returns the name its server sends.
func nameAt(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// waitName waits until addr is answered by name.
func waitName(t *testing.T, addr, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := nameAt(addr)
		if got == name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %q (%v), want %q", addr, got, err, name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// service is the YAML of one tcp service in front of backend be.
func service(name, listen, be string, minHealthy int) string {
	return fmt.Sprintf("  - {name: %s, listen: [\"%s\"], mode: tcp, default_backend: %s, min_healthy: %d}\n",
		name, strings.ReplaceAll(listen, ",", `", "`), be, minHealthy)
}

// backend is the YAML of a backend with tcp checks every 50ms that take
// a server down or up at the first result; servers are "name=address".
func backend(name string, servers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    health: {check: tcp, interval: 50ms, rise: 1, fall: 1}\n    servers:\n", name)
	for _, s := range servers {
		n, a, _ := strings.Cut(s, "=")
		fmt.Fprintf(&b, "      - {name: %s, address: \"%s\"}\n", n, a)
	}
	return b.String()
}

func configOf(services, backends string) string {
	return "node: {name: lb1}\nservices:\n" + services + "backends:\n" + backends
}

// waitHealth waits until VRRP has been told that service is healthy (or
// not).
func (td *testDaemon) waitHealth(service string, healthy bool) {
	td.t.Helper()
	eventually(td.t, fmt.Sprintf("VRRP is told service %s healthy=%v", service, healthy), func() bool {
		h, set := td.vrrp.healthOf(service)
		return set && h == healthy
	})
}

// assertHealth asserts what VRRP was last told about service, at once:
// for changes the daemon makes synchronously (drain, apply).
func (td *testDaemon) assertHealth(service string, healthy bool, when string) {
	td.t.Helper()
	if h, set := td.vrrp.healthOf(service); !set || h != healthy {
		td.t.Fatalf("%s: VRRP told %s healthy=%v (told: %v), want %v", when, service, h, set, healthy)
	}
}

// TestMinHealthy: VRRP tracking is told a service is healthy while at
// least min_healthy servers of its backends are up and not drained, as
// health checks, drains and reloads change that.
func TestMinHealthy(t *testing.T) {
	s1, s2 := namer(t, "s1"), namer(t, "s2")
	// s3 is a server that goes away: a listener of its own, on a port
	// reserved for the whole test so that nothing else (a parallel
	// package's port-0 bind or outgoing connection) can take it once the
	// listener is closed and answer s3's checks.
	s3 := testutil.ReservedAddr(t)
	ln3, err := net.Listen("tcp", s3)
	if err != nil {
		t.Fatal(err)
	}
	defer ln3.Close()
	go func() {
		for {
			c, err := ln3.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	listen := testutil.ReservedAddr(t)
	servers := []string{"s1=" + s1, "s2=" + s2, "s3=" + s3}
	cfg := func(minHealthy int) string {
		return configOf(service("web", listen, "b", minHealthy), backend("b", servers...))
	}
	td := startDaemon(t, t.TempDir(), cfg(2))
	td.waitHealth("web", true) // 3 up

	if err := td.DrainServer("b/s1", true); err != nil {
		t.Fatal(err)
	}
	td.assertHealth("web", true, "s1 drained, 2 left")

	ln3.Close() // s3's checks now fail: 1 left
	td.waitHealth("web", false)

	if err := td.DrainServer("b/s1", false); err != nil {
		t.Fatal(err)
	}
	td.assertHealth("web", true, "s1 ready again, 2 up")

	if _, err := td.Apply("min3.yaml", []byte(cfg(3))); err != nil {
		t.Fatal(err)
	}
	td.assertHealth("web", false, "min_healthy raised to 3 with 2 up")
	if _, err := td.Apply("min1.yaml", []byte(cfg(1))); err != nil {
		t.Fatal(err)
	}
	td.assertHealth("web", true, "min_healthy lowered to 1")
}

// TestReloadOrder: a reload hands VRRP its part last, when the new
// config's listeners accept connections and VRRP tracking already knows the
// new services' health; a config the proxy cannot take reaches no
// component.
func TestReloadOrder(t *testing.T) {
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	srv := namer(t, "srv")
	first := configOf(service("web", x, "b", 1), backend("b", "s1="+srv))
	td := startDaemon(t, t.TempDir(), first)
	if n := td.vrrp.appliedCount(); n != 1 {
		t.Fatalf("VRRP got %d configs at start, want 1", n)
	}

	var checked []string
	var mu sync.Mutex
	td.vrrp.onApply = func(cfg *config.Config) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range cfg.Services {
			for _, a := range s.Listen {
				name, err := nameAt(a)
				checked = append(checked, fmt.Sprintf("%s:%s:%v", a, name, err))
			}
			h, set := td.vrrp.healthOf(s.Name)
			checked = append(checked, fmt.Sprintf("%s healthy=%v told=%v", s.Name, h, set))
		}
	}
	// A new service db on y whose min_healthy its one server cannot meet.
	second := configOf(service("web", x, "b", 1)+service("db", y, "b", 2), backend("b", "s1="+srv))
	if _, err := td.Apply("second.yaml", []byte(second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := []string{x + ":srv:<nil>", "web healthy=true told=true", y + ":srv:<nil>", "db healthy=false told=true"}
	if !slices.Equal(checked, want) {
		t.Errorf("when VRRP took the config:\n%q\nwant:\n%q", checked, want)
	}
	mu.Unlock()

	// A config with an address another socket holds reaches no component.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	td.vrrp.onApply = nil
	third := configOf(service("web", x, "b", 1)+service("db", held.Addr().String(), "b2", 1), backend("b", "s1="+srv)+backend("b2", "s2="+srv))
	if _, err := td.Apply("third.yaml", []byte(third)); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("Apply with a held address: %v, want ErrConflict", err)
	}
	if n := td.vrrp.appliedCount(); n != 2 {
		t.Errorf("VRRP got %d configs, want 2 (the refused one reached it)", n)
	}
	if td.running() != second || td.onDisk() != second {
		t.Errorf("the refused config is running or saved")
	}
	waitName(t, y, "srv") // the running db still serves
}

// servers returns the proxy's view of backend be's servers, by name.
func (td *testDaemon) servers(be string) map[string]proxy.ServerStatus {
	td.t.Helper()
	out := map[string]proxy.ServerStatus{}
	for _, s := range td.proxy.Status().([]proxy.ServiceStatus) {
		for _, b := range s.Backends {
			if b.Name == be {
				for _, sv := range b.Servers {
					out[sv.Name] = sv
				}
			}
		}
	}
	return out
}

// TestStateKeptAcrossRestart: drained servers and maintenance live in the
// state directory: a restarted daemon has them from the start (VRRP is in
// maintenance before it runs, the proxy has the server drained), and a
// drained server that a reload removes is drained again when it comes back.
func TestStateKeptAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv := namer(t, "srv")
	withS2 := configOf(service("web", testutil.ReservedAddr(t), "b", 1), backend("b", "s1="+srv, "s2="+srv))
	td := startDaemon(t, dir, withS2)
	if err := td.DrainServer("b/s2", true); err != nil {
		t.Fatal(err)
	}
	if err := td.SetMaintenance(true); err != nil {
		t.Fatal(err)
	}
	td.stop()

	td = startDaemon(t, dir, "")
	eventually(t, "VRRP runs", func() bool { return slices.Contains(td.vrrp.callList(), "run") })
	if calls := td.vrrp.callList(); slices.Index(calls, "maintenance on") < 0 || slices.Index(calls, "maintenance on") > slices.Index(calls, "run") {
		t.Errorf("VRRP calls after a restart %q: want maintenance on before run", calls)
	}
	if !td.Maintenance() || !td.Status().Node.Maintenance {
		t.Errorf("maintenance lost across a restart")
	}
	eventually(t, "the proxy runs b", func() bool { return len(td.servers("b")) == 2 })
	if sv := td.servers("b"); !sv["s2"].Drained || sv["s1"].Drained {
		t.Fatalf("after a restart the proxy has %+v, want s2 drained", sv)
	}
	if got := td.Drained(); !slices.Equal(got, []string{"b/s2"}) {
		t.Fatalf("drained list %q", got)
	}

	// A reload without s2, then with it again.
	withoutS2 := strings.Replace(withS2, "      - {name: s2, address: \""+srv+"\"}\n", "", 1)
	if _, err := td.Apply("", []byte(withoutS2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the proxy drops s2", func() bool { _, ok := td.servers("b")["s2"]; return !ok })
	if got := td.Drained(); !slices.Equal(got, []string{"b/s2"}) {
		t.Fatalf("a reload without s2 dropped it from the drained list: %q", got)
	}
	if _, err := td.Apply("", []byte(withS2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the proxy runs s2 again", func() bool { _, ok := td.servers("b")["s2"]; return ok })
	if sv := td.servers("b"); !sv["s2"].Drained {
		t.Fatalf("s2 back in the config is not drained: %+v", sv)
	}
}

// eventually waits until cond holds; what says what it waits for.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRejectionKeepsRunningConfig: an invalid config, one whose listen
// address another socket holds (by Apply, by Reload, at start) and one that
// cannot be saved change nothing: the running config, its listeners, the
// file and VRRP stay; status says why, naming the file by its path or as
// the client named it; what the refused config bound is released.
func TestRejectionKeepsRunningConfig(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	srv := namer(t, "srv")
	good := configOf(service("web", x, "b", 1), backend("b", "s1="+srv))
	dir := t.TempDir()
	td := startDaemon(t, dir, good)
	waitName(t, x, "srv")
	ino := testutil.ListenInode(t, x)
	path := td.opts.ConfigPath

	unchanged := func(when string, applied int) {
		t.Helper()
		if td.running() != good || td.onDisk() != good {
			t.Fatalf("%s: the running config or the file changed", when)
		}
		if n := td.vrrp.appliedCount(); n != applied {
			t.Fatalf("%s: VRRP got %d configs, want %d", when, n, applied)
		}
		waitName(t, x, "srv")
		if testutil.ListenInode(t, x) != ino {
			t.Fatalf("%s: the listener of %s was replaced", when, x)
		}
	}
	lastError := func(when, source, want string) {
		t.Helper()
		r := td.Status().Config.LastError
		if r == nil || r.Source != source || len(r.Errors) != 1 || r.Errors[0].Error() != want {
			t.Fatalf("%s: last error %+v, want %q from %s", when, r, want, source)
		}
	}

	// Invalid.
	bad := strings.Replace(good, "min_healthy: 1", "min_healthy: -1", 1)
	_, err = td.Apply("/srv/bad.yaml", []byte(bad))
	if es := config.AsErrors(err); len(es) != 1 || errors.Is(err, api.ErrConflict) {
		t.Fatalf("invalid config: %v", err)
	}
	unchanged("invalid config", 1)
	lastError("invalid config", "api", config.AsErrors(err)[0].Error())
	if !strings.HasPrefix(config.AsErrors(err)[0].Error(), "/srv/bad.yaml:3: services[0].min_healthy: ") {
		t.Errorf("the error does not name the file as sent: %v", err)
	}

	// A certificate that cannot be loaded, at its field and line.
	noCert := strings.Replace(good, "min_healthy: 1}", "min_healthy: 1, tls: {certificates: [{name: a, cert: /nonexistent.crt, key: /nonexistent.key}]}}", 1)
	_, err = td.Apply("tls.yaml", []byte(noCert))
	if !errors.Is(err, api.ErrConflict) {
		t.Fatalf("Apply with a missing certificate: %v, want ErrConflict", err)
	}
	unchanged("missing certificate", 1)
	lastError("missing certificate", "api", "tls.yaml:3: services[0].tls.certificates[0]: open /nonexistent.crt: no such file or directory")

	// A held address beside a free one (y), by Apply and by Reload.
	busy := configOf(service("web", x+","+y+","+held.Addr().String(), "b", 1), backend("b", "s1="+srv))
	why := fmt.Sprintf(`:3: services[0].listen[2]: service "web" cannot listen on %s: bind: address already in use`, held.Addr())
	_, err = td.Apply("busy.yaml", []byte(busy))
	if !errors.Is(err, api.ErrConflict) || len(config.AsErrors(err)) != 1 {
		t.Fatalf("Apply with a held address: %v, want ErrConflict and one config error", err)
	}
	unchanged("held address by Apply", 1)
	lastError("held address by Apply", "api", "busy.yaml"+why)
	testutil.Free(t, y)

	if err := os.WriteFile(path, []byte(busy), 0o640); err != nil {
		t.Fatal(err)
	}
	td.Reload()
	lastError("held address by Reload", "file", path+why)
	os.WriteFile(path, []byte(good), 0o640)
	unchanged("held address by Reload", 1)
	testutil.Free(t, y)

	// A config that cannot be saved: halb.yaml.prev is a directory.
	if err := os.Mkdir(path+".prev", 0o750); err != nil {
		t.Fatal(err)
	}
	withY := configOf(service("web", x+","+y, "b", 1), backend("b", "s1="+srv))
	if _, err := td.Apply("", []byte(withY)); err == nil || !strings.Contains(err.Error(), "save "+path) {
		t.Fatalf("Apply that cannot save: %v", err)
	}
	unchanged("unsaved config", 1)
	testutil.Free(t, y) // bound by Prepare, released by Abort
	os.Remove(path + ".prev")

	// The next good config applies.
	if _, err := td.Apply("", []byte(withY)); err != nil {
		t.Fatal(err)
	}
	waitName(t, y, "srv")
	if td.Status().Config.LastError != nil {
		t.Errorf("a good config left the last error in status")
	}
}

// TestStartWithHeldAddress: at start, a config whose listen address is
// held is not applied at all: no component gets it, status says why.
func TestStartWithHeldAddress(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	x := testutil.ReservedAddr(t)
	cfg := configOf(service("web", x+","+held.Addr().String(), "b", 1), backend("b", "s1="+namer(t, "srv")))
	td := startDaemon(t, t.TempDir(), cfg)
	if c, _ := td.Running(); c != nil {
		t.Fatalf("a config with a held address is running")
	}
	if n := td.vrrp.appliedCount(); n != 0 {
		t.Fatalf("VRRP got %d configs", n)
	}
	st := td.Status()
	want := fmt.Sprintf(`%s:3: services[0].listen[1]: service "web" cannot listen on %s: bind: address already in use`, td.opts.ConfigPath, held.Addr())
	if st.Config.Loaded || st.Config.LastError == nil || st.Config.LastError.Errors[0].Error() != want {
		t.Fatalf("status %+v, want the error %q", st.Config, want)
	}
	testutil.Free(t, x)
}

// TestHandoverNames: a handover names the instances it does not know, and
// with none configured says so, before VRRP is asked.
func TestHandoverNames(t *testing.T) {
	td := startDaemon(t, t.TempDir(), "node: {name: lb1}\n")
	if err := td.Handover(nil); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "no VRRP instance is configured") {
		t.Errorf("handover with no instance: %v", err)
	}
	cfg := "node: {name: lb1}\nvrrp:\n  - {name: web-a, interface: lo, vrid: 51, vips: [192.0.2.1/24]}\n  - {name: web-b, interface: lo, vrid: 52, vips: [192.0.2.2/24]}\n"
	if _, err := td.Apply("", []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	err := td.Handover([]string{"web-a", "foo"})
	if !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), `no VRRP instance "foo" (the instances are web-a, web-b)`) {
		t.Errorf("handover of foo: %v", err)
	}
	if err := td.Handover([]string{"web-b"}); err != nil {
		t.Fatal(err)
	}
	if calls := td.vrrp.callList(); slices.Contains(calls, "handover web-a,foo") || !slices.Contains(calls, "handover web-b") {
		t.Errorf("VRRP calls %q", calls)
	}
}

// TestSeededConfig: a config the seed import left (with its marker) that
// halbd rejects is moved aside to halb.yaml.rejected; a good one stays.
// The marker goes either way.
func TestSeededConfig(t *testing.T) {
	x := testutil.ReservedAddr(t)
	good := configOf(service("web", x, "b", 1), backend("b", "s1="+namer(t, "srv")))
	for _, tc := range []struct {
		name, cfg string
		loaded    bool
	}{
		{"rejected", "services: [{name: web}]\n", false},
		{"good", good, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "halb.yaml")
			if err := os.WriteFile(path+SeedSuffix, nil, 0o640); err != nil {
				t.Fatal(err)
			}
			td := startDaemon(t, dir, tc.cfg)
			if loaded := td.Status().Config.Loaded; loaded != tc.loaded {
				t.Fatalf("loaded %v, want %v", loaded, tc.loaded)
			}
			_, errCfg := os.Stat(path)
			_, errRej := os.Stat(path + ".rejected")
			if tc.loaded && (errCfg != nil || errRej == nil) {
				t.Errorf("a good seeded config: halb.yaml %v, halb.yaml.rejected %v; want it kept", errCfg, errRej)
			}
			if !tc.loaded && (errCfg == nil || errRej != nil) {
				t.Errorf("a rejected seeded config: halb.yaml %v, halb.yaml.rejected %v; want it moved aside", errCfg, errRej)
			}
			if _, err := os.Stat(path + SeedSuffix); err == nil {
				t.Errorf("the seed marker is still there")
			}
			td.stop()
		})
	}
	testutil.Free(t, x)
}
