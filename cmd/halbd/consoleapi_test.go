package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/internal/testutil"
)

// TestConfigHistoryByHalbctl: halbctl lists the configs the daemon
// applied, shows one, rolls back to one (the daemon serves it, saves it
// and records the rollback), and a rollback the node cannot take or to a
// version it does not keep fails with exit 1 saying why, changing nothing.
func TestConfigHistoryByHalbctl(t *testing.T) {
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	one, two := namer(t, "one"), namer(t, "two")
	v1 := tcpService("echo", x+","+y, one)
	v2 := tcpService("echo", x, two)
	h := startHalbd(t, v1)
	waitName(t, y, "one")
	file := filepath.Join(t.TempDir(), "v2.yaml")
	os.WriteFile(file, []byte(v2), 0o644)
	if code, out, errOut := h.halbctl("config", "apply", file); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	waitName(t, x, "two")

	code, out, errOut := h.halbctl("config", "history")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 ||
		!regexp.MustCompile(`^\* 2 +\S+ \S+ +api +[0-9a-f]{12} +2 change\(s\): services "echo" changed: listen; backends "be" changed: servers$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^  1 +\S+ \S+ +file +[0-9a-f]{12} +3 change\(s\): node changed: name; services "echo" added; backends "be" added$`).MatchString(lines[2]) {
		t.Fatalf("halbctl config history: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := h.halbctl("config", "show", "1"); code != 0 || out != v1 {
		t.Fatalf("halbctl config show 1: exit %d\n%s", code, out)
	}

	code, out, errOut = h.halbctl("config", "rollback", "1")
	if want := "rolled back to version 1 (now version 3): 2 change(s)\n  services \"echo\" changed: listen\n  backends \"be\" changed: servers\n"; code != 0 || out != want {
		t.Fatalf("halbctl config rollback 1: exit %d\nstdout: %s\nstderr: %s\nwant: %s", code, out, errOut, want)
	}
	waitName(t, y, "one")
	if h.servedConfig() != v1 {
		t.Fatalf("after the rollback the daemon serves:\n%s", h.servedConfig())
	}
	if onDisk, _ := os.ReadFile(h.config); string(onDisk) != v1 {
		t.Fatalf("after the rollback the file holds:\n%s", onDisk)
	}
	if _, out, _ := h.halbctl("config", "history"); !strings.Contains(out, "* 3 ") || !strings.Contains(out, "rollback  ") ||
		!strings.Contains(out, "rollback to 1: 2 change(s)") {
		t.Fatalf("history after the rollback:\n%s", out)
	}

	// Back to 2, which drops y; then another program takes y, and a
	// rollback to 1, which needs it, is refused.
	if code, _, _ := h.halbctl("config", "rollback", "2"); code != 0 {
		t.Fatal("rollback to 2 failed")
	}
	held := holdWhenFree(t, y)
	defer held.Close()
	code, out, errOut = h.halbctl("config", "rollback", "1")
	why := fmt.Sprintf(`services[0].listen[1]: service "echo" cannot listen on %s: bind: address already in use`, y)
	if code != 1 || out != "" || !strings.Contains(errOut, "version 1 rejected; the running config stays in force:") ||
		!strings.Contains(errOut, "history/1.yaml:4: "+why) {
		t.Fatalf("a rollback this node cannot take: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if h.servedConfig() != v2 {
		t.Fatalf("a refused rollback changed the running config")
	}
	code, _, errOut = h.halbctl("config", "rollback", "99")
	if code != 1 || !strings.Contains(errOut, "config version 99 is not in the history (it keeps versions 1 to 4)") {
		t.Fatalf("a rollback to an unknown version: exit %d\n%s", code, errOut)
	}
	st, err := h.client.Status(context.Background())
	if err != nil || st.Config.Version != 4 {
		t.Fatalf("status: version %d %v, want 4", st.Config.Version, err)
	}
}

// holdWhenFree listens on addr as soon as no other socket holds it (a
// listener the daemon closes after a reload).
func holdWhenFree(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stays held: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConsolePasswordByHalbctl: halbctl sets the console password (asked
// twice), changes it (with the current one), refuses two that differ or
// one too short, and removes it; the daemon checks what it set, and the
// hash is a 0600 file in the state directory.
func TestConsolePasswordByHalbctl(t *testing.T) {
	h := startHalbd(t, configA)
	ctx := context.Background()
	check := func(code int, out, errOut string, wantCode int, want string) {
		t.Helper()
		if code != wantCode || !strings.Contains(out+errOut, want) {
			t.Fatalf("exit %d, want %d saying %q\nstdout: %s\nstderr: %s", code, wantCode, want, out, errOut)
		}
	}
	code, out, errOut := h.halbctl("console")
	check(code, out, errOut, 0, "console password not set; required: the console asks for one to be set")
	code, out, errOut = h.halbctlIn("first password\nfirst pasword\n", "console", "password")
	check(code, out, errOut, 1, "the two passwords differ; nothing changed")
	code, out, errOut = h.halbctlIn("seven77\nseven77\n", "console", "password")
	check(code, out, errOut, 1, "the console password must have at least 8 characters")
	code, out, errOut = h.halbctlIn("first password\nfirst password\n", "console", "password")
	check(code, out, errOut, 0, "console password set")
	h.waitEvent("console.password_set")
	if err := h.client.CheckConsolePassword(ctx, "first password"); err != nil {
		t.Fatalf("the password halbctl set: %v", err)
	}
	file := filepath.Join(filepath.Dir(h.config), "state", "console-password")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", file, fi, err)
	}
	code, out, errOut = h.halbctl("console")
	check(code, out, errOut, 0, "console password set; console actions that change state ask for it")

	// A change asks for the current password first.
	code, out, errOut = h.halbctlIn("first password\nsecond password\nsecond password\n", "console", "password")
	check(code, out, errOut, 0, "console password set")
	if err := h.client.CheckConsolePassword(ctx, "second password"); err != nil {
		t.Fatalf("the changed password: %v", err)
	}
	// A wrong password holds off the next check, even of the right one.
	if err := h.client.CheckConsolePassword(ctx, "first password"); !errors.Is(err, api.ErrUnauthorized) {
		t.Fatalf("the old password: %v, want ErrUnauthorized", err)
	}
	var se *api.StatusError
	if err := h.client.CheckConsolePassword(ctx, "second password"); !errors.As(err, &se) || se.Code != 429 || se.RetryAfter != time.Second {
		t.Fatalf("a check right after a wrong password: %v, want 429 with Retry-After 1", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.client.CheckConsolePassword(ctx, "second password") != nil {
		if time.Now().After(deadline) {
			t.Fatal("the right password is still refused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, out, errOut = h.halbctl("console", "password", "--reset")
	check(code, out, errOut, 0, "console password removed")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the password file is still there: %v", err)
	}
	code, out, errOut = h.halbctl("console", "pasword")
	check(code, out, errOut, 2, "console takes nothing, password or password --reset")
}

// TestLogsByHalbctl: halbctl prints the daemon's last log records, oldest
// first, as many as asked.
func TestLogsByHalbctl(t *testing.T) {
	h := startHalbd(t, configA)
	var code, started, applied int
	var out, errOut string
	// "halbd started" is logged just after the daemon answers.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, out, errOut = h.halbctl("logs", "-n", "500")
		started = strings.Index(out, " INFO  halbd started config="+h.config+" socket="+h.socket+"\n")
		if started >= 0 || code != 0 || time.Now().After(deadline) {
			break
		}
	}
	applied = strings.Index(out, " INFO  config applied: 3 change(s) (version 1) changes=3 sha256=")
	if code != 0 || started < 0 || applied < 0 || applied > started {
		t.Fatalf("halbctl logs: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := h.halbctl("logs", "-n", "1"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("halbctl logs -n 1: exit %d\n%s", code, out)
	}
}

// TestSystemActionsRefusedWithoutFlag: a halbd started without
// -system-actions (a development machine, netlab) refuses to reboot,
// power off or factory-reset, and keeps its config.
func TestSystemActionsRefusedWithoutFlag(t *testing.T) {
	h := startHalbd(t, configA)
	for _, args := range [][]string{{"system", "reboot"}, {"system", "poweroff"}, {"system", "factory-reset", "lb1"}} {
		code, out, errOut := h.halbctl(args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "system actions are not enabled on this node (halbd -system-actions) (403)") {
			t.Errorf("halbctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	if h.servedConfig() != configA {
		t.Fatal("the config changed")
	}
}

// TestFactoryResetByHalbctl: on a halbd with -system-actions (and a fake
// systemctl), a factory reset confirmed with another name is refused; with
// the node's name it empties the state directory, removes the config,
// closes the listeners, says so on the event stream, and runs systemctl
// reboot; the daemon, and a daemon started again, are unconfigured.
func TestFactoryResetByHalbctl(t *testing.T) {
	dir := t.TempDir()
	calls, prog := filepath.Join(dir, "calls"), filepath.Join(dir, "systemctl")
	os.WriteFile(prog, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755)
	x := testutil.ReservedAddr(t)
	cfg := tcpService("echo", x, namer(t, "one"))
	h := startHalbd(t, cfg, "-system-actions", "-systemctl", prog)
	waitName(t, x, "one")
	ctx := context.Background()
	if _, err := h.client.DrainServer(ctx, "be/s1", true); err != nil {
		t.Fatal(err)
	}
	if err := h.client.SetMaintenance(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := h.client.SetConsolePassword(ctx, "a password", ""); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(filepath.Dir(h.config), "state")
	if ents, _ := os.ReadDir(state); len(ents) != 5 { // history, drained, maintenance, console-password, peer (identity)
		t.Fatalf("state before: %v", ents)
	}

	code, out, errOut := h.halbctl("system", "factory-reset", "lb2")
	if code != 1 || !strings.Contains(errOut, `node_name "lb2" is not this node's name`) {
		t.Fatalf("factory reset with another name: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = h.halbctl("system", "factory-reset", "lb1")
	if code != 0 || out != "factory reset: config and state removed; rebooting\n" {
		t.Fatalf("factory reset: exit %d\n%s%s", code, out, errOut)
	}
	h.waitEvent("system.factory_reset")
	h.waitEvent("system.reboot")
	if b, _ := os.ReadFile(calls); string(b) != "reboot\n" {
		t.Fatalf("systemctl ran with %q", b)
	}
	if ents, err := os.ReadDir(state); err != nil || len(ents) != 0 {
		t.Fatalf("state after: %v %v", ents, err)
	}
	if _, err := os.Stat(h.config); !os.IsNotExist(err) {
		t.Fatalf("%s is still there: %v", h.config, err)
	}
	st, err := h.client.Status(ctx)
	if err != nil || st.Config.Loaded || st.Node.Name != "" || st.Node.Maintenance || !st.Node.SystemActions {
		t.Fatalf("status after the reset: %+v %v", st, err)
	}
	holdWhenFree(t, x).Close() // the listener is gone
	if a, _ := h.client.ConsoleAuth(ctx); a.PasswordSet {
		t.Error("a console password is set after the reset")
	}

	_, c, st := restartHalbd(t, h)
	if st.Config.Loaded || st.Node.Maintenance {
		t.Fatalf("a restart after the reset: %+v", st)
	}
	if l, err := c.History(ctx); err != nil || len(l) != 0 {
		t.Fatalf("history after the reset: %v %v", l, err)
	}
}
