package netlab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// twoHosts builds a LAN with hosts a (.1, ::1) and b (.2, ::2).
func twoHosts(t *testing.T) (*Lab, *Host, *Host) {
	t.Helper()
	l := New(t)
	lan, err := l.AddLAN("lan")
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddHost("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddHost("b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(lan, "eth0", "10.9.0.1/24", "fd00:9::1/64"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(lan, "eth0", "10.9.0.2/24", "fd00:9::2/64"); err != nil {
		t.Fatal(err)
	}
	return l, a, b
}

// echoOn serves one-line echoes on host h at addr until the test ends.
func echoOn(t *testing.T, h *Host, addr string) {
	t.Helper()
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

// reach reports whether from can open a TCP connection to addr and echo a byte.
func reach(from *Host, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := from.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	buf := make([]byte, 1)
	_, err = io.ReadFull(c, buf)
	return err
}

func TestHostsTalkOverIPv4AndIPv6(t *testing.T) {
	_, a, b := twoHosts(t)
	echoOn(t, b, ":7")
	for _, addr := range []string{"10.9.0.2:7", "[fd00:9::2]:7"} {
		if err := reach(a, addr); err != nil {
			t.Errorf("a → %s: %v", addr, err)
		}
	}
	// Control: the root namespace cannot reach the lab's addresses.
	if err := reach(&Host{Name: "root", ns: mustRootNS(t)}, "10.9.0.2:7"); err == nil {
		t.Errorf("the root namespace reached 10.9.0.2: the lab is not isolated")
	}
}

func mustRootNS(t *testing.T) netns.NsHandle {
	t.Helper()
	h, err := netns.Get() // this thread was never moved: the test's own namespace
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestProcessRunsInsideHost(t *testing.T) {
	_, a, _ := twoHosts(t)
	p, err := a.Start("ls", "sh", "-c", "cat /proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	log := p.Log()
	if !strings.Contains(log, "eth0:") || strings.Contains(log, "br0:") {
		t.Fatalf("the process does not see host a's interfaces:\n%s", log)
	}
}

func TestSignalsReachTheProcess(t *testing.T) {
	_, a, _ := twoHosts(t)
	p, err := a.Start("sleep", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.Cmd.Process.Pid, "T")
	if err := p.Cont(); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("still running after Kill")
	}
}

// procState is the state letter of /proc/PID/stat ("" when gone).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
}

// waitState waits until the process is in state (signals land asynchronously).
func waitState(t *testing.T, pid int, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for procState(pid) != state {
		if time.Now().After(deadline) {
			t.Fatalf("process %d in state %q, want %q", pid, procState(pid), state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFaults(t *testing.T) {
	_, a, b := twoHosts(t)
	echoOn(t, b, ":7")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reach(a, "10.9.0.2:7")) // control

	heal, err := Partition(a, b)
	must(err)
	for _, addr := range []string{"10.9.0.2:7", "[fd00:9::2]:7"} {
		if reach(a, addr) == nil {
			t.Errorf("partitioned, yet a reached %s", addr)
		}
	}
	must(heal())
	must(reach(a, "10.9.0.2:7"))

	restore, err := b.Loss(100)
	must(err)
	if reach(a, "10.9.0.2:7") == nil {
		t.Errorf("100%% loss, yet a reached b")
	}
	must(restore())
	must(reach(a, "10.9.0.2:7"))

	must(b.SetLink("eth0", false))
	if reach(a, "10.9.0.2:7") == nil {
		t.Errorf("b's link is down, yet a reached b")
	}
	must(b.SetLink("eth0", true))
	deadline := time.Now().Add(5 * time.Second)
	for reach(a, "10.9.0.2:7") != nil {
		if time.Now().After(deadline) {
			t.Fatal("b unreachable after link up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	mac, _, err := a.Neighbor("eth0", netip.MustParseAddr("10.9.0.2"))
	must(err)
	if mac.String() != b.Iface("eth0").MAC.String() {
		t.Errorf("a's ARP entry for b is %s, want %s", mac, b.Iface("eth0").MAC)
	}

	must(b.Remove())
	if reach(a, "10.9.0.2:7") == nil {
		t.Errorf("b removed, yet a reached it")
	}
	if _, err := os.Stat(b.NamespacePath()); !os.IsNotExist(err) {
		t.Errorf("b's namespace is still there: %v", err)
	}
}

// TestTeardownLeavesNothing: after Close, no namespace of the run and no
// process it started remains.
func TestTeardownLeavesNothing(t *testing.T) {
	SkipUnlessRoot(t)
	l, err := NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	lan, _ := l.AddLAN("lan")
	h, err := l.AddHost("h")
	if err != nil {
		t.Fatal(err)
	}
	h.Connect(lan, "eth0", "10.9.0.1/24")
	// A daemon that forks and leaves its parent: it must still be found.
	p, err := h.Start("forker", "sh", "-c", "sleep 300 & sleep 300")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	WaitFor(5*time.Second, func() bool { pids = namespacePIDs(h.NamespacePath()); return len(pids) >= 2 })
	if len(pids) < 2 {
		t.Fatalf("expected the shell and its children in the namespace, got %v", pids)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := l.LeftoverNamespaces(); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, pid := range pids {
		if st := procState(pid); st != "" && st != "Z" {
			t.Errorf("process %d still alive (state %s)", pid, st)
		}
	}
	if p.Running() {
		t.Errorf("started process still running")
	}
}

// TestDownRemovesLeftoversOfDeadRuns: a namespace named for a run whose
// process is gone is removed; one of a live run is kept.
func TestDownRemovesLeftoversOfDeadRuns(t *testing.T) {
	SkipUnlessRoot(t)
	dead := 1 << 22 // above pid_max's usual ceiling: no such process
	for syscall.Kill(dead, 0) == nil {
		dead--
	}
	mk := func(name string) {
		if err := onNewThread(func() error { h, err := netns.NewNamed(name); h.Close(); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netns.DeleteNamed(name) })
	}
	stale := fmt.Sprintf("hl%dxdead-h", dead)
	live := fmt.Sprintf("hl%dxbeef-h", os.Getppid())
	mk(stale)
	mk(live)
	removed, err := Down(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(NetnsDir, stale)); !os.IsNotExist(err) {
		t.Errorf("stale namespace kept (removed %v)", removed)
	}
	if _, err := os.Stat(filepath.Join(NetnsDir, live)); err != nil {
		t.Errorf("live run's namespace removed: %v", err)
	}
}
