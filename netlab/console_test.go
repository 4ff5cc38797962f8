package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/vrrp"
)

// The console, end to end: halb-console in tmux (as a person uses it:
// send-keys types, capture-pane reads the screen) against real halbd
// processes in the lab.

// consolePath is halb-console, built once for the tests that need it.
var consolePath string

func buildConsole(t *testing.T) string {
	t.Helper()
	if consolePath != "" {
		return consolePath
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/deps.sh installs it)")
	}
	// Beside the halbd TestMain builds (and removes).
	p := filepath.Join(filepath.Dir(HalbdPath), "halb-console")
	if out, err := exec.Command("go", "build", "-o", p, "../cmd/halb-console").CombinedOutput(); err != nil {
		t.Fatalf("build halb-console: %v\n%s", err, out)
	}
	consolePath = p
	return p
}

// tmuxConsole is a halb-console in a detached 80x24 tmux session.
type tmuxConsole struct {
	t       *testing.T
	session string
	keys    int // keystrokes sent, as an operator types them
}

func startTmuxConsole(t *testing.T, socket, term string) *tmuxConsole {
	t.Helper()
	bin := buildConsole(t)
	s := &tmuxConsole{t: t, session: fmt.Sprintf("halbcons%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	cmd := fmt.Sprintf("TERM=%s LANG=C.UTF-8 %s -socket %s", term, bin, socket)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", s.session, "-x", "80", "-y", "24", cmd).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", s.session).Run() })
	return s
}

// send types keys: tmux key names (Enter, Down, C-u) or text (-l).
func (s *tmuxConsole) send(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		if out, err := exec.Command("tmux", "send-keys", "-t", s.session, k).CombinedOutput(); err != nil {
			s.t.Fatalf("send-keys %q: %v\n%s", k, err, out)
		}
		s.keys++
	}
}

func (s *tmuxConsole) typeText(text string) {
	s.t.Helper()
	if out, err := exec.Command("tmux", "send-keys", "-t", s.session, "-l", text).CombinedOutput(); err != nil {
		s.t.Fatalf("send-keys -l %q: %v\n%s", text, err, out)
	}
	s.keys += len(text)
}

func (s *tmuxConsole) screen() string {
	out, err := exec.Command("tmux", "capture-pane", "-p", "-t", s.session).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// reportDir is where tests put what the README shows: out/netlab (or
// $NETLAB_REPORT_DIR).
func reportDir() string {
	if dir := os.Getenv("NETLAB_REPORT_DIR"); dir != "" {
		return dir
	}
	return filepath.Join("..", "out", "netlab")
}

// save writes the screen as the README shows it: out/netlab/console/NAME.txt
// (or $NETLAB_REPORT_DIR/console).
func (s *tmuxConsole) save(name string) {
	dir := filepath.Join(reportDir(), "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Logf("save %s: %v", name, err)
		return
	}
	lines := strings.Split(strings.TrimRight(s.screen(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	os.WriteFile(filepath.Join(dir, name+".txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// waitFor waits until the screen shows text and returns the screen.
func (s *tmuxConsole) waitFor(text string, timeout time.Duration) string {
	s.t.Helper()
	var scr string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if scr = s.screen(); strings.Contains(scr, text) {
			return scr
		}
	}
	s.t.Fatalf("the console never showed %q; it shows:\n%s", text, scr)
	return ""
}

// TestConsoleSetsUpANode: a node whose halbd runs unconfigured is set up
// from the console alone, the wizard's keystrokes sent by tmux, and then
// a client reaches a backend through the VIP and service the wizard made.
// An invalid VIP is refused on its field first. A restarted halbd shows
// "reconnecting", then live data again.
// frontAndBack adds the classic topology's two LANs and its client (at
// 192.168.10.10 on the front LAN).
func frontAndBack(t *testing.T, l *Lab) (front, back *LAN, client *Host) {
	t.Helper()
	front, err := l.AddLAN("front")
	if err != nil {
		t.Fatal(err)
	}
	if back, err = l.AddLAN("back"); err != nil {
		t.Fatal(err)
	}
	if client, err = l.AddHost("client"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Connect(front, "eth0", "192.168.10.10/24"); err != nil {
		t.Fatal(err)
	}
	return front, back, client
}

func TestConsoleSetsUpANode(t *testing.T) {
	SkipUnlessRoot(t)
	l := New(t)
	front, back, client := frontAndBack(t, l)
	for i, name := range []string{"be1", "be2"} {
		h, err := l.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Connect(back, "eth0", fmt.Sprintf("10.0.0.%d/24", 11+i)); err != nil {
			t.Fatal(err)
		}
		ln, err := h.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		b := NewBackend(name)
		go b.Serve(ln)
		t.Cleanup(func() { b.Close() })
	}
	lb1, err := l.AddHost("lb1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb1.Connect(front, "eth0", "192.168.10.1/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := lb1.Connect(back, "eth1", "10.0.0.1/24"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "halb.sock")
	startHalbd := func() *Process {
		p, err := lb1.Start("halbd", HalbdPath, "-config", filepath.Join(dir, "halb.yaml"), "-socket", socket,
			"-state-dir", filepath.Join(dir, "state"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	halbd := startHalbd()

	c := startTmuxConsole(t, socket, "xterm-256color")
	c.waitFor("Node name", 10*time.Second)
	c.typeText("lb1")
	c.send("Enter")
	c.waitFor("2/8  Network", 5*time.Second)
	c.waitFor("(x) eth0", 5*time.Second)
	c.save("wizard-network")
	c.send("Enter", "Enter") // eth0, left to the OS (a lab node, not the appliance)
	c.waitFor("Time servers", 5*time.Second)
	c.send("Enter") // none
	c.waitFor("Single node (pair later", 5*time.Second)
	c.send("Enter") // a single node
	c.waitFor("VRID", 5*time.Second)
	c.waitFor("(x) eth0", 5*time.Second)
	c.send("Enter")
	c.typeText("192.168.10.300/24") // a typo
	c.send("Enter", "Enter", "Enter", "Enter", "Enter", "Enter")
	c.waitFor(`! "192.168.10.300/24" is not an address in CIDR form`, 5*time.Second)
	c.save("wizard-vrrp-refused")
	c.send("Up", "Up", "Up", "Up", "C-u") // back to the VIP, cleared
	c.typeText("192.168.10.100/24")
	c.send("Enter", "Enter", "Enter", "Enter", "Enter", "Enter")
	c.waitFor("Service name", 5*time.Second)
	c.send("Enter", "Enter", "Enter") // web, port 80, http
	c.typeText("10.0.0.11:80")
	c.send("Enter")
	c.typeText("10.0.0.12:80")
	c.save("wizard-service")
	c.send("Enter", "Enter", "Enter", "Enter", "Enter")
	c.waitFor("Console password", 5*time.Second)
	c.typeText("lab-password")
	c.send("Enter")
	c.typeText("lab-password")
	c.send("Enter")
	c.waitFor("A first config for lb1", 5*time.Second)
	c.save("wizard-review")
	c.send("Enter")
	c.waitFor("config applied", 10*time.Second)
	c.waitFor("vip-a MASTER", 10*time.Second)
	t.Logf("keystrokes, typo and its fix included: %d", c.keys)

	// halbd runs the config: halbctl status, and a client through the VIP.
	st, err := api.NewClient(socket).Status(context.Background())
	if err != nil || !st.Config.Loaded || st.Node.Name != "lb1" {
		t.Fatalf("halbd status: %+v %v", st, err)
	}
	seen := map[string]bool{}
	if !WaitFor(10*time.Second, func() bool {
		if name, err := getFrom(client, "http://192.168.10.100/"); err == nil {
			seen[name] = true
		}
		return seen["be1"] && seen["be2"]
	}) {
		t.Fatalf("the client did not reach both backends through the VIP: %v", seen)
	}
	// Some traffic, so that the dashboard shows counters and a rate.
	for range 40 {
		getFrom(client, "http://192.168.10.100/")
		time.Sleep(25 * time.Millisecond)
	}
	if !WaitFor(10*time.Second, func() bool {
		return regexp.MustCompile(`web2 10\.0\.0\.12:80 +UP .* [1-9][0-9]* req`).MatchString(c.screen())
	}) {
		t.Fatalf("the dashboard does not show the requests:\n%s", c.screen())
	}
	c.save("dashboard")

	// The daemon restarts: "reconnecting", then live data.
	halbd.Terminate(5 * time.Second)
	c.waitFor("reconnecting to halbd", 10*time.Second)
	startHalbd()
	if !WaitFor(15*time.Second, func() bool {
		s := c.screen()
		return !strings.Contains(s, "reconnecting") && strings.Contains(s, "vip-a MASTER")
	}) {
		t.Fatalf("the console did not come back:\n%s", c.screen())
	}
}

// getFrom GETs url from host h and returns the backend that answered
// (its X-Backend header).
func getFrom(h *Host, url string) (string, error) {
	tr := &http.Transport{DialContext: h.Dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return resp.Header.Get("X-Backend"), nil
}

// TestConsoleShowsTransition: in the classic topology, the console on lb1
// shows a VRRP transition within 1 s of halbd recording it.
func TestConsoleShowsTransition(t *testing.T) {
	SkipUnlessRoot(t)
	l := New(t)
	c, err := NewClassic(l, ClassicOptions{Flavor: FlavorHalb, AdvertInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitConverged(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(c.LB[0].Dir, "halb.sock")
	con := startTmuxConsole(t, socket, "vt100")
	con.waitFor("MASTER", 10*time.Second)
	if err := c.LB[0].Handover(); err != nil {
		t.Fatal(err)
	}
	con.waitFor(" BACKUP ", 10*time.Second)
	shown := time.Now()
	st, err := c.LB[0].API().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ins []vrrp.InstanceStatus
	if err := json.Unmarshal(st.VRRP, &ins); err != nil || len(ins) == 0 || ins[0].LastTransition == nil {
		t.Fatalf("vrrp status %s: %v", st.VRRP, err)
	}
	lag := shown.Sub(ins[0].LastTransition.At)
	t.Logf("transition at %s, on the console %v later", ins[0].LastTransition.At.Format("15:04:05.000"), lag.Round(time.Millisecond))
	if lag > time.Second {
		t.Errorf("the console showed the transition %v after it happened, want within 1s", lag)
	}
}
