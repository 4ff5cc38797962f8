package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/timesync"
	"halb/internal/testutil"
)

// fakeSystemctl writes a program that appends its arguments to a file,
// and exits with status code; it returns the program and the file.
func fakeSystemctl(t *testing.T, code int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	prog := filepath.Join(dir, "systemctl")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\necho 'Failed to talk to init daemon' >&2\nexit %d\n", calls, code)
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, calls
}

func callsOf(file string) string {
	b, _ := os.ReadFile(file)
	return string(b)
}

// startSystemDaemon is startDaemon with system actions enabled and
// systemctl the given program.
func startSystemDaemon(t *testing.T, dir, cfg, systemctl string) *testDaemon {
	t.Helper()
	return startDaemonWith(t, dir, cfg, func(o *Options) { o.SystemActions, o.Systemctl = true, systemctl })
}

// TestSystemActionsNeedTheFlag: without SystemActions, reboot, poweroff
// and factory reset are refused and run nothing, remove nothing.
func TestSystemActionsNeedTheFlag(t *testing.T) {
	prog, calls := fakeSystemctl(t, 0)
	td := startDaemonWith(t, t.TempDir(), "node: {name: lb1}\n", func(o *Options) { o.Systemctl = prog })
	for name, call := range map[string]func() error{"reboot": td.Reboot, "poweroff": td.Poweroff,
		"factory reset": func() error { return td.FactoryReset("lb1") }} {
		err := call()
		if !errors.Is(err, api.ErrNotEnabled) || err.Error() != "system actions are not enabled on this node (halbd -system-actions)" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if c := callsOf(calls); c != "" {
		t.Fatalf("systemctl ran: %q", c)
	}
	if td.running() == "" || td.onDisk() == "" || td.Status().Node.SystemActions {
		t.Fatal("a refused factory reset removed the config, or status says system actions are on")
	}
}

// TestRebootAndPoweroff: each is published and logged, then runs
// systemctl; a failing systemctl is an error with its output.
func TestRebootAndPoweroff(t *testing.T) {
	prog, calls := fakeSystemctl(t, 0)
	td := startSystemDaemon(t, t.TempDir(), "node: {name: lb1}\n", prog)
	if !td.Status().Node.SystemActions {
		t.Error("status does not say system actions are on")
	}
	if err := td.Reboot(); err != nil {
		t.Fatal(err)
	}
	if ev := td.waitEvent("system.reboot"); ev.Message != "reboot: requested through the control API" {
		t.Errorf("event %q", ev.Message)
	}
	if err := td.Poweroff(); err != nil {
		t.Fatal(err)
	}
	td.waitEvent("system.poweroff")
	if c := callsOf(calls); c != "reboot\npoweroff\n" {
		t.Fatalf("systemctl ran with %q", c)
	}

	bad, _ := fakeSystemctl(t, 1)
	td.opts.Systemctl = bad
	err := td.Reboot()
	if err == nil || !strings.Contains(err.Error(), bad+" reboot: exit status 1: Failed to talk to init daemon") {
		t.Fatalf("a failing systemctl: %v", err)
	}
	td.waitEvent("system.reboot_failed")
}

// TestFactoryReset: a factory reset confirmed with the node's name empties
// the state directory and removes the config file, leaves the daemon
// unconfigured (the components let go of their listeners, VRRP of its
// instances and of maintenance), says so before it acts, and reboots; one
// with another name changes nothing; numbering of the history starts
// again.
func TestFactoryReset(t *testing.T) {
	dir := t.TempDir()
	prog, calls := fakeSystemctl(t, 0)
	x := testutil.ReservedAddr(t)
	cfg := configOf(service("web", x, "b", 1), backend("b", "s1="+namer(t, "srv")))
	td := startSystemDaemon(t, dir, cfg, prog)
	td.pw.iter = 1000
	waitName(t, x, "srv")
	if _, err := td.Apply("", []byte(strings.Replace(cfg, "node: {name: lb1}", "node: {name: lb1}\n# v2", 1))); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{td.DrainServer("b/s1", true), td.SetMaintenance(true), td.SetConsolePassword("a password", "")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, ".halb.yaml.tmp-42"), []byte("x"), 0o640) // a crash's leftover
	state := filepath.Join(dir, "state")
	if ents, _ := os.ReadDir(state); len(ents) < 4 {
		t.Fatalf("state directory before: %v", ents)
	}

	err := td.FactoryReset("lb2")
	if !errors.Is(err, api.ErrInvalid) || err.Error() != `node_name "lb2" is not this node's name: confirm with the node's name` {
		t.Fatalf("factory reset with another name: %v", err)
	}
	if td.running() == "" || !td.Maintenance() || callsOf(calls) != "" {
		t.Fatal("a factory reset with another name changed something")
	}

	if err := td.FactoryReset("lb1"); err != nil {
		t.Fatal(err)
	}
	if ev := td.waitEvent("system.factory_reset"); !strings.Contains(ev.Message, "removing the config and every state file, then rebooting") {
		t.Errorf("event %q", ev.Message)
	}
	td.waitEvent("system.reboot")
	if c := callsOf(calls); c != "reboot\n" {
		t.Fatalf("systemctl ran with %q", c)
	}
	if ents, err := os.ReadDir(state); err != nil || len(ents) != 0 {
		t.Fatalf("state directory after: %v %v", ents, err)
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "halb.yaml") || strings.HasPrefix(e.Name(), ".halb.yaml") {
			t.Errorf("%s is left", e.Name())
		}
	}
	st := td.Status()
	if st.Config.Loaded || st.Node.Name != "" || st.Config.Version != 0 || st.Node.Maintenance || td.ConsoleAuth().PasswordSet ||
		len(td.History()) != 0 || len(td.Drained()) != 0 {
		t.Fatalf("status after the reset: %+v %+v", st.Node, st.Config)
	}
	testutil.Free(t, x) // the proxy closed the listener
	if calls := td.vrrp.callList(); calls[len(calls)-1] != "maintenance off" {
		t.Errorf("VRRP calls %q: want maintenance off last", calls)
	}
	if last := td.vrrp.lastApplied(); len(last.VRRP) != 0 || len(last.Services) != 0 {
		t.Errorf("VRRP's last config: %+v", last)
	}
	if !slices.ContainsFunc(td.Logs(LogRingSize), func(r api.LogRecord) bool { return r.Message == "factory reset done: unconfigured" }) {
		t.Error("the reset is not logged")
	}

	// Unconfigured, a reset is confirmed with "", and the history starts
	// at 1 again.
	if err := td.FactoryReset("lb1"); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), `this node is unconfigured, confirm with node_name ""`) {
		t.Fatalf("factory reset of an unconfigured node by name: %v", err)
	}
	if res, err := td.ApplyFrom(api.SourceConsole, "", []byte("node: {name: lb9}\n")); err != nil || res.Version != 1 {
		t.Fatalf("apply after the reset: %+v %v", res, err)
	}
	if err := td.FactoryReset("lb9"); err != nil {
		t.Fatal(err)
	}
	if err := td.FactoryReset(""); err != nil {
		t.Fatalf("factory reset of an unconfigured node: %v", err)
	}
}

// TestClockPartUnconfigured: the time part takes the empty config of an
// unconfigured node (after a factory reset) with the defaults, so a Run
// that starts after that Apply can make its manager (a CI run stopped
// halbd here: "timesync: time.max_offset: 0s must be positive").
func TestClockPartUnconfigured(t *testing.T) {
	c := &clockPart{}
	if err := c.Apply(&config.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := timesync.New(c.cfg, timesync.Options{}); err != nil {
		t.Fatalf("the time part's config after an empty one: %v", err)
	}
}
