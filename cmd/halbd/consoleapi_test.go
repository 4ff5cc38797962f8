package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"halb/appliance/sockettest"
)

// TestConfigHistoryByHalbctl: halbctl lists the configs the daemon
// applied, shows one, rolls back to one (the daemon serves it, saves it
// and records the rollback), and a rollback the node cannot take or to a
// version it does not keep fails with exit 1 saying why, changing nothing.
func TestConfigHistoryByHalbctl(t *testing.T) {
	x, y := sockettest.LoopbackAddr(t), sockettest.LoopbackAddr(t)
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
		!regexp.MustCompile(`^  1 +\S+ \S+ +file +[0-9a-f]{12} +4 change\(s\): node changed: name; time changed: max_offset; services "echo" added; backends "be" added$`).MatchString(lines[2]) {
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
