package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/proxy"
	"halb/internal/testutil"
)

// halbdBin and halbctlBin are the binaries under test, built by TestMain.
var halbdBin, halbctlBin string

func TestMain(m *testing.M) {
	// The service's listener and its server: loopback ports reserved for
	// this run, not fixed ones another program or test run may hold.
	listen, releaseListen, err := testutil.ReserveAddr()
	if err != nil {
		panic(err)
	}
	server, releaseServer, err := testutil.ReserveAddr()
	if err != nil {
		panic(err)
	}
	r := strings.NewReplacer("127.0.0.1:7000", listen, "127.0.0.1:7001", server)
	configA, configB, configBad = r.Replace(configA), r.Replace(configB), r.Replace(configBad)
	dir, err := os.MkdirTemp("", "halbd-test-")
	if err != nil {
		panic(err)
	}
	halbdBin, halbctlBin = filepath.Join(dir, "halbd"), filepath.Join(dir, "halbctl")
	for bin, pkg := range map[string]string{halbdBin: ".", halbctlBin: "../halbctl"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			panic("build " + pkg + ": " + err.Error() + "\n" + string(out))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	releaseListen()
	releaseServer()
	os.Exit(code)
}

// The configs of the tests; TestMain puts reserved ports in place of 7000
// (the service) and 7001 (its server).
var configA = `node:
  name: lb1
services:
  - {name: echo, listen: ["127.0.0.1:7000"], mode: tcp, default_backend: echo}
backends:
  - name: echo
    servers: [{name: e1, address: "127.0.0.1:7001"}]
`

// configB differs from configA in one server's weight.
var configB = `node:
  name: lb1
services:
  - {name: echo, listen: ["127.0.0.1:7000"], mode: tcp, default_backend: echo}
backends:
  - name: echo
    servers: [{name: e1, address: "127.0.0.1:7001", weight: 5}]
`

var configBad = `node:
  name: lb1
services:
  - {name: echo, listen: ["127.0.0.1:7000"], mode: tcp, default_backend: nope}
backends:
  - name: echo
    servers: [{name: e1, address: "127.0.0.1:7001", weight: 999}]
`

type halbd struct {
	t      *testing.T
	cmd    *exec.Cmd
	config string
	socket string
	client *api.Client
	logs   *testutil.SyncBuffer
	events chan api.Event
}

// startHalbd runs the real binary on a temporary config, socket and state
// directory, with args added, and follows its event stream.
func startHalbd(t *testing.T, cfg string, args ...string) *halbd {
	t.Helper()
	dir := t.TempDir()
	h := &halbd{
		t:      t,
		config: filepath.Join(dir, "halb.yaml"),
		socket: filepath.Join(dir, "run", "halb.sock"),
		logs:   &testutil.SyncBuffer{},
		events: make(chan api.Event, 100),
	}
	if cfg != "" {
		touchesHost(t, cfg)
		if err := os.WriteFile(h.config, []byte(cfg), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	h.cmd = exec.Command(halbdBin, append([]string{"-config", h.config, "-socket", h.socket, "-state-dir", filepath.Join(dir, "state")}, args...)...)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("halbd log:\n%s", h.logs)
		}
	})
	h.client = api.NewClient(h.socket)
	t.Cleanup(h.client.Close)

	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.client.Status(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("halbd did not answer on %s", h.socket)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	go func() {
		first := true
		h.client.Events(ctx, func(ev api.Event) error {
			if first {
				close(ready)
				first = false
			}
			h.events <- ev
			return nil
		})
		if first {
			close(ready)
		}
	}()
	t.Cleanup(cancel)
	// The stream is open once its first line (events.subscribed) arrives.
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no event stream")
	}
	h.drain()
	return h
}

func (h *halbd) sighup() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		h.t.Fatal(err)
	}
}

// drain forgets the events received so far, waiting briefly for stragglers.
func (h *halbd) drain() {
	for {
		select {
		case <-h.events:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// waitEvent returns the next event of the given type.
func (h *halbd) waitEvent(typ string) api.Event {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			h.t.Fatalf("no %s event", typ)
		}
	}
}

func (h *halbd) servedConfig() string {
	h.t.Helper()
	raw, err := h.client.Config(context.Background())
	if err != nil {
		h.t.Fatalf("GET /v1/config: %v", err)
	}
	return string(raw)
}

func (h *halbd) write(cfg string) {
	h.t.Helper()
	if err := os.WriteFile(h.config, []byte(cfg), 0o640); err != nil {
		h.t.Fatal(err)
	}
}

func TestReloadBySIGHUP(t *testing.T) {
	h := startHalbd(t, configA)
	if got := h.servedConfig(); got != configA {
		t.Fatalf("served config at start:\n%s\nwant:\n%s", got, configA)
	}

	h.write(configB)
	h.sighup()
	ev := h.waitEvent("config.applied")
	if !strings.Contains(ev.Message, "1 change") {
		t.Errorf("applied event %q, want 1 change", ev.Message)
	}
	if got := h.servedConfig(); got != configB {
		t.Fatalf("served config after valid reload:\n%s\nwant:\n%s", got, configB)
	}

	h.write(configBad)
	h.sighup()
	ev = h.waitEvent("config.rejected")
	if !strings.Contains(ev.Message, "2 problem") {
		t.Errorf("rejected event %q, want 2 problems", ev.Message)
	}
	if got := h.servedConfig(); got != configB {
		t.Fatalf("invalid reload replaced the running config:\n%s", got)
	}
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Config.Loaded || st.Config.LastError == nil || len(st.Config.LastError.Errors) != 2 {
		t.Fatalf("status after rejected reload: %+v", st.Config)
	}
	// The file is named by its path, as the daemon was told it.
	want := []string{
		h.config + ":4: services[0].default_backend: backend \"nope\" is not defined",
		h.config + ":7: backends[0].servers[0].weight: 999 is out of range 0..256",
	}
	for i, e := range st.Config.LastError.Errors {
		if e.Error() != want[i] {
			t.Errorf("error %d = %q, want %q", i, e, want[i])
		}
	}
	if !strings.Contains(h.logs.String(), "999 is out of range") {
		t.Errorf("the rejection was not logged")
	}
}

func TestApplyByAPI(t *testing.T) {
	h := startHalbd(t, configA)
	ctx := context.Background()

	changes, err := h.client.ApplyConfig(ctx, []byte(configB))
	if err != nil {
		t.Fatalf("apply valid config: %v", err)
	}
	if len(changes) != 1 || changes[0].String() != `backends "echo" changed: servers` {
		t.Errorf("changes = %v", changes)
	}
	h.waitEvent("config.applied")
	if got := h.servedConfig(); got != configB {
		t.Fatalf("served config after apply:\n%s", got)
	}
	onDisk, _ := os.ReadFile(h.config)
	prev, _ := os.ReadFile(h.config + ".prev")
	if string(onDisk) != configB || string(prev) != configA {
		t.Fatalf("file on disk:\n%s\nprev:\n%s", onDisk, prev)
	}

	_, err = h.client.ApplyConfigAs(ctx, "/srv/new.yaml", []byte(configBad))
	es := config.AsErrors(err)
	if len(es) != 2 || es[0].Line != 4 || es[1].Path != "backends[0].servers[0].weight" {
		t.Fatalf("apply invalid config: err = %v, want 2 field errors", err)
	}
	h.waitEvent("config.rejected")
	// The rejection names the config as the client did, not as halb.yaml.
	if st, err := h.client.Status(ctx); err != nil || st.Config.LastError == nil || st.Config.LastError.Source != "api" ||
		st.Config.LastError.Errors[0].File != "/srv/new.yaml" || es[0].File != "/srv/new.yaml" {
		t.Fatalf("rejection of /srv/new.yaml: %v, status %+v %v", es, st.Config.LastError, err)
	}
	if got := h.servedConfig(); got != configB {
		t.Fatalf("invalid apply replaced the running config:\n%s", got)
	}
	if onDisk, _ := os.ReadFile(h.config); string(onDisk) != configB {
		t.Fatalf("invalid apply touched the file:\n%s", onDisk)
	}

	// Validation alone reports what would change and changes nothing.
	changes, err = h.client.ValidateConfig(ctx, []byte(configA))
	if err != nil || len(changes) != 1 {
		t.Fatalf("validate: %v %v", changes, err)
	}
	if got := h.servedConfig(); got != configB {
		t.Fatalf("validate changed the running config")
	}
}

// TestHalbctlAgainstDaemon: halbctl's answers that need the daemon: a
// handover with no VRRP instance, or of an unknown one, fails and says
// which; version prints both sides.
func TestHalbctlAgainstDaemon(t *testing.T) {
	h := startHalbd(t, configA)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"handover"}, "no VRRP instance is configured"},
		{[]string{"handover", "foo"}, `no VRRP instance "foo" (none is configured)`},
	} {
		code, out, errOut := h.halbctl(c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("halbctl %v: exit %d, want 1 saying %q\nstdout: %s\nstderr: %s", c.args, code, c.want, out, errOut)
		}
	}
	code, out, errOut := h.halbctl("version")
	if want := fmt.Sprintf("halbctl dev\nhalbd dev (pid %d, socket %s)\n", h.cmd.Process.Pid, h.socket); code != 0 || out != want {
		t.Errorf("halbctl version: exit %d\n%s%s\nwant:\n%s", code, out, errOut, want)
	}
}

// TestUnconfiguredStart: with no config file the daemon runs, says so, and
// takes a config through the API.
func TestUnconfiguredStart(t *testing.T) {
	h := startHalbd(t, "")
	ctx := context.Background()
	var se *api.StatusError
	if _, err := h.client.Config(ctx); !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("GET /v1/config unconfigured: %v, want 404", err)
	}
	st, err := h.client.Status(ctx)
	if err != nil || st.Config.Loaded {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := h.client.ApplyConfig(ctx, []byte(configA)); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.client.Status(ctx); !st.Config.Loaded || st.Node.Name != "lb1" {
		t.Fatalf("status after apply: %+v", st)
	}
}

func TestShutdownOnSIGTERM(t *testing.T) {
	h := startHalbd(t, configA)
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("halbd exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("halbd did not stop on SIGTERM")
	}
	if _, err := os.Stat(h.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(h.logs.String(), "halbd stopping") {
		t.Errorf("no orderly shutdown in the log")
	}
}

// TestSecondDaemonRefused: a second halbd on the same socket must not steal it.
func TestSecondDaemonRefused(t *testing.T) {
	h := startHalbd(t, configA)
	out, err := exec.Command(halbdBin, "-config", h.config, "-socket", h.socket, "-state-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another daemon") {
		t.Fatalf("second halbd: err=%v\n%s", err, out)
	}
	if _, err := h.client.Status(context.Background()); err != nil {
		t.Fatalf("first halbd lost its socket: %v", err)
	}
}

// TestMaintenanceSurvivesRestart: maintenance is kept in the state
// directory, so a restarted daemon comes back in maintenance.
// restartHalbd stops h with SIGTERM and starts halbd again with the same
// config, socket and state directory; it returns the new one, a client
// and its first status.
func restartHalbd(t *testing.T, h *halbd) (*halbd, *api.Client, *api.Status) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	h2 := &halbd{t: t, config: h.config, socket: h.socket, logs: &testutil.SyncBuffer{}, events: make(chan api.Event, 100)}
	h2.cmd = exec.Command(halbdBin, "-config", h.config, "-socket", h.socket, "-state-dir", filepath.Join(filepath.Dir(h.config), "state"))
	h2.cmd.Stdout, h2.cmd.Stderr = h2.logs, h2.logs
	if err := h2.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h2.cmd.Process.Kill()
		h2.cmd.Wait()
		if t.Failed() {
			t.Logf("restarted halbd's log:\n%s", h2.logs)
		}
	})
	c := api.NewClient(h.socket)
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil {
			return h2, c, st
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted halbd does not answer: %v\n%s", err, h2.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDrainSurvivesRestart: a drained server stays drained across a
// restart (the state directory), shows in status, and an unknown server
// is refused.
func TestDrainSurvivesRestart(t *testing.T) {
	h := startHalbd(t, configA)
	ctx := context.Background()
	if _, err := h.client.DrainServer(ctx, "echo/nope", true); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("draining an unknown server: %v", err)
	}
	if list, err := h.client.DrainServer(ctx, "echo/e1", true); err != nil || len(list) != 1 {
		t.Fatalf("drain: %v %v", list, err)
	}
	h.waitEvent("server.drained")
	_, c, st := restartHalbd(t, h)
	var svcs []proxy.ServiceStatus
	if err := json.Unmarshal(st.Services, &svcs); err != nil || len(svcs) != 1 || !svcs[0].Backends[0].Servers[0].Drained {
		t.Fatalf("after a restart: %s (%v)", st.Services, err)
	}
	if list, err := c.DrainServer(ctx, "echo/e1", false); err != nil || len(list) != 0 {
		t.Fatalf("ready: %v %v", list, err)
	}
}

// TestDrainConcurrent: drains of different servers at the same time all
// land in the list (it is one file, rewritten under a lock).
func TestDrainConcurrent(t *testing.T) {
	var b strings.Builder
	b.WriteString("node: {name: lb1}\nbackends:\n  - name: many\n    health: {check: none}\n    servers:\n")
	const n = 16
	for i := range n {
		fmt.Fprintf(&b, "      - {name: s%d, address: \"127.0.0.1:%d\"}\n", i, 7100+i)
	}
	h := startHalbd(t, b.String())
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := h.client.DrainServer(ctx, fmt.Sprintf("many/s%d", i), true); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := h.client.Drained(ctx)
	if err != nil || len(list) != n {
		t.Fatalf("after %d concurrent drains the list has %d: %v %v", n, len(list), list, err)
	}
}

func TestMaintenanceSurvivesRestart(t *testing.T) {
	h := startHalbd(t, configA)
	ctx := context.Background()
	if err := h.client.SetMaintenance(ctx, true); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("daemon.maintenance")
	h2, c, st := restartHalbd(t, h)
	if !st.Node.Maintenance {
		t.Fatal("maintenance lost across a restart")
	}
	if !strings.Contains(h2.logs.String(), "maintenance is on") {
		t.Errorf("the restart did not log maintenance:\n%s", h2.logs)
	}
	if err := c.SetMaintenance(ctx, false); err != nil {
		t.Fatal(err)
	}
	if on, err := c.Maintenance(ctx); err != nil || on {
		t.Fatalf("maintenance off: %v %v", on, err)
	}
}

// touchesHost fails the test when cfg would make a halbd run here, in the
// machine's own network namespace, configure the machine's links or send
// NTP queries off the machine: node.management, time.servers,
// manage_system, set_clock. (A test of those runs halbd in a namespace of
// its own: appliance/daemon's TestManageSystem, the netlab tests.)
func touchesHost(t *testing.T, cfg string) {
	t.Helper()
	c, err := config.Parse("test", []byte(cfg))
	if err != nil {
		return // an invalid config: halbd refuses it, nothing runs
	}
	if m := c.Node.Management; m.Interface != "" || m.DHCP || m.Address != "" || len(c.Time.Servers) > 0 || c.Node.ManageSystem || c.Time.SetClock {
		t.Fatalf("a test config for halbd in the machine's own namespace sets node.management, time.servers, manage_system or set_clock: halbd would configure this machine's network or clock")
	}
}
