package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/netlab"
)

// screen is a tmux session on a server of its own that runs one command in
// a terminal of a fixed size: the test types with send-keys and reads what
// a person would see with capture-pane.
type screen struct {
	t      *testing.T
	socket string
}

func newScreen(t *testing.T, width, height int, command string) *screen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/deps.sh installs it as root)")
	}
	s := &screen{t: t, socket: fmt.Sprintf("halbdemo%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))}
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	s.tmux("new-session", "-d", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), command)
	return s
}

// childPid is the pid of the process named comm whose parent is the pane's
// shell, or 0.
func (s *screen) childPid(comm string) int {
	shell := strings.TrimSpace(s.tmux("list-panes", "-F", "#{pane_pid}"))
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		st := string(b)
		open, end := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(st[end+1:])
		if len(f) > 1 && st[open+1:end] == comm && f[1] == shell {
			return pid
		}
	}
	return 0
}

func (s *screen) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// visible is what the terminal shows now.
func (s *screen) visible() string { return s.tmux("capture-pane", "-p") }

// all is everything printed so far, scrolled-away lines included.
func (s *screen) all() string { return s.tmux("capture-pane", "-p", "-S", "-", "-E", "-") }

// keys types keys, one at a time as a person would.
func (s *screen) keys(keys ...string) {
	for _, k := range keys {
		s.tmux("send-keys", "-l", k)
	}
}

// waitFor waits until the whole output matches re and returns the match.
func (s *screen) waitFor(what string, timeout time.Duration, re *regexp.Regexp) []string {
	s.t.Helper()
	var m []string
	if !netlab.WaitFor(timeout, func() bool {
		m = re.FindStringSubmatch(s.all())
		return m != nil
	}) {
		s.t.Fatalf("waited %s for %s (%s); the screen shows:\n%s", timeout, what, re, s.all())
	}
	return m
}

// after returns the output following the first line that contains marker.
func after(out, marker string) string {
	_, rest, _ := strings.Cut(out, marker)
	return rest
}

var statusLines = regexp.MustCompile(`(?m)^VIP on .*\| checks .*$`)

// TestDemoOnATerminal runs `netlab demo` in a terminal (tmux) the way a
// person does: keys typed while the lab is being built do nothing, the
// legend of the keys stays on the screen, a SIGKILLed node's VIP is marked
// stale, the backends' check state per node is shown, q tears it all down
// and removes the log directory. Both flavors: halb nodes (checks from
// halbd's status) and keepalived + HAProxy (checks from HAProxy's stats).
func TestDemoOnATerminal(t *testing.T) {
	netlab.SkipUnlessRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "halb/cmd/netlab", "halb/cmd/halbd", "halb/cmd/halb-console")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, f := range netlab.Flavors {
		t.Run(string(f), func(t *testing.T) {
			if f == netlab.FlavorReference {
				for _, b := range []string{"keepalived", "haproxy"} {
					if _, err := exec.LookPath(b); err != nil {
						t.Skipf("%s is not installed (scripts/deps.sh installs it as root)", b)
					}
				}
			}
			testDemo(t, bin, f)
		})
	}
}

func testDemo(t *testing.T, bin string, flavor netlab.Flavor) {
	tmp := t.TempDir() // the demo's TMPDIR: where its log directory goes
	status := filepath.Join(t.TempDir(), "status")
	// The shell waits for the demo and writes its exit status (tmux may
	// not reap a pane's process), then stays, so the screen can be read.
	s := newScreen(t, 160, 24, fmt.Sprintf(`TMPDIR=%[1]s %[2]s/netlab demo -flavor %[3]s -halbd %[2]s/halbd -console %[2]s/halb-console; echo $? >%[4]s.tmp; mv %[4]s.tmp %[4]s; exec sleep 86400`,
		tmp, bin, flavor, status))
	exited := func() bool { _, err := os.Stat(status); return err == nil }
	// The demo's pid names the lab's namespaces.
	pid := 0
	netlab.WaitFor(10*time.Second, func() bool { pid = s.childPid("netlab"); return pid > 0 })
	if pid == 0 {
		t.Fatalf("the demo did not start:\n%s", s.all())
	}
	t.Cleanup(func() {
		// Whatever happened, no lab of this demo is left behind.
		if !exited() {
			syscall.Kill(pid, syscall.SIGTERM)
			netlab.WaitFor(30*time.Second, exited)
		}
		netlab.Down(false)
	})

	s.waitFor("the demo to start building", 30*time.Second, regexp.MustCompile(`building the classic topology`))
	// Typed during start-up: must neither be echoed nor fire later.
	s.keys("m", "b", "p")
	typedEarly := !strings.Contains(s.all(), "up. The client")

	s.waitFor("the lab to be up", 60*time.Second, regexp.MustCompile(`up\. The client sends`))
	s.waitFor("three status lines", 30*time.Second, regexp.MustCompile(`(?s)up\. The client.*(\nVIP .*){3}`))
	if typedEarly {
		out := after(s.all(), "building the classic topology")
		if strings.Contains(out, ">>>") {
			t.Fatalf("keys typed during start-up fired:\n%s", out)
		}
		if early, _, _ := strings.Cut(out, "up. The client"); strings.Contains(early, "mbp") {
			t.Errorf("keys typed during start-up were echoed:\n%s", out)
		}
	} else {
		t.Log("the lab was up before the keys were typed: start-up input not exercised this run")
	}
	line := statusLines.FindAllString(s.all(), -1)
	if got := line[len(line)-1]; !strings.HasPrefix(got, "VIP on lb1  ARP→lb1") || !strings.Contains(got, "checks lb1 be1 up be2 up, lb2 be1 up be2 up") {
		t.Fatalf("status line before any fault: %q, want VIP on lb1, ARP to lb1, both nodes seeing be1 and be2 up", got)
	}

	// c opens lb1's console (halb's nodes); ctrl+c comes back to the lines.
	s.keys("c")
	if flavor == netlab.FlavorHalb {
		if !netlab.WaitFor(30*time.Second, func() bool {
			v := s.visible()
			return regexp.MustCompile(`(?m)^ halb lb1 `).MatchString(v) && regexp.MustCompile(`(?m)MASTER .*VIPs `+regexp.QuoteMeta(netlab.ClassicVIP)).MatchString(v) &&
				regexp.MustCompile(`(?m)UP `).MatchString(v)
		}) {
			t.Fatalf("c did not show lb1's console with its MASTER instance and servers up:\n%s", s.visible())
		}
		s.tmux("send-keys", "C-c")
		s.waitFor("the demo's lines after the console", 30*time.Second, regexp.MustCompile(`>>> back from lb1's console\n(.*\n)*VIP on `))
	} else {
		s.waitFor("the reference's answer to c", 10*time.Second, regexp.MustCompile(`>>> the console is halb's`))
	}

	// SIGKILL lb1: lb2 takes over, lb1's address is marked stale.
	s.keys("m")
	s.waitFor("the kill", 10*time.Second, regexp.MustCompile(`>>> killed lb1's daemons`))
	m := s.waitFor("lb2 to hold the VIP with lb1's copy marked stale", 30*time.Second,
		regexp.MustCompile(`(?m)^VIP on lb2 \(lb1: stale, daemons dead\)  ARP→lb2 .*\| checks lb1 -, lb2 be1 up be2 up$`))
	t.Logf("after SIGKILL: %s", m[0])

	// be1 refuses connections: lb2's checks mark it down.
	s.keys("b")
	s.waitFor("be1 to refuse", 10*time.Second, regexp.MustCompile(`>>> be1 refuses connections`))
	s.waitFor("lb2's checks to mark be1 down", 30*time.Second,
		regexp.MustCompile(`(?m)^VIP on lb2 .*\| checks lb1 -, lb2 be1 DOWN be2 up$`))

	// lb1 back: it takes the VIP over again (preempt), its stale copy is gone.
	s.keys("b", "s")
	s.waitFor("lb1 to be MASTER again", 30*time.Second, regexp.MustCompile(`(?m)^VIP on lb1  ARP→lb1 .*\| checks lb1 be1 up be2 up, lb2 be1 up be2 up$`))

	// The legend stays on the screen however much has scrolled by.
	if n := len(statusLines.FindAllString(s.all(), -1)); n < 2*legendEvery {
		s.waitFor(fmt.Sprintf("%d status lines", 2*legendEvery), 60*time.Second,
			regexp.MustCompile(fmt.Sprintf(`(?s)up\. The client.*(VIP on .*\n(keys: .*\n)?){%d}`, 2*legendEvery)))
	}
	if !strings.Contains(s.visible(), legend) {
		t.Errorf("the key legend is not on the screen:\n%s", s.visible())
	}

	s.keys("q")
	if !netlab.WaitFor(60*time.Second, exited) {
		t.Fatalf("the demo did not exit after q:\n%s", s.all())
	}
	if b, _ := os.ReadFile(status); strings.TrimSpace(string(b)) != "0" {
		t.Errorf("netlab demo exited with status %q, want 0:\n%s", b, s.all())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "netlab-*")); len(left) > 0 {
		t.Errorf("the demo left its log directory behind: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(netlab.NetnsDir, fmt.Sprintf("hl%dx*", pid))); len(left) > 0 {
		t.Errorf("the demo left namespaces behind: %v", left)
	}
}
