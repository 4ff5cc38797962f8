package tui

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/vrrp"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // event times in golden files
	os.Exit(m.Run())
}

// console runs the console on a fake API in an 80x24 terminal.
type console struct {
	t  *testing.T
	tm *teatest.TestModel
	f  *fakeClient
	// keys counts the keystrokes sent, as an operator would type them.
	keys int
}

func startConsole(t *testing.T, f *fakeClient, profile int, opts ...func(*Options)) *console {
	t.Helper()
	term := terms[profile]
	o := Options{Socket: "/run/halb/halb.sock", Version: "test", Now: f.Now, Poll: 50 * time.Millisecond}
	for _, set := range opts {
		set(&o)
	}
	app := New(f, themeFor(term.profile, term.ascii), o)
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(80, 24))
	t.Cleanup(func() { tm.Quit() })
	return &console{t: t, tm: tm, f: f}
}

// waitFor waits until the screen shows text (escape sequences removed).
func (c *console) waitFor(text string) {
	c.t.Helper()
	var s string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s = ansi.Strip(c.screen()); strings.Contains(s, text) {
			return
		}
	}
	c.t.Fatalf("the screen never showed %q; it shows:\n%s", text, s)
}

// ready waits until the dashboard shows and the console knows whether
// actions need the password.
func (c *console) ready() {
	c.t.Helper()
	c.waitFor("vip-a MASTER")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c.tm.Send(authRequest{})
		if <-authKnown {
			return
		}
	}
	c.t.Fatal("the console never read its settings")
}

// shellConsole is the dashboard of a configured node whose console
// password is password, with a root shell that counts its runs.
func shellConsole(t *testing.T, password string) (*console, *fakeClient, *atomic.Int32) {
	t.Helper()
	f := newFake(t)
	f.configured()
	f.password = password
	shells := new(atomic.Int32)
	c := startConsole(t, f, 2, func(o *Options) {
		o.Shell = func() tea.Cmd { shells.Add(1); return nil }
	})
	c.ready()
	return c, f, shells
}

// confirmApply answers the review's question before a change of the
// running config and gives the console password.
func (c *console) confirmApply(password string) {
	c.t.Helper()
	c.waitFor("Apply these changes to the running config?")
	c.runes("y")
	c.waitFor("Console password:")
	c.typeText(password)
	c.press(tea.KeyEnter)
}

// typeText types s, one key a character.
func (c *console) typeText(s string) {
	c.tm.Type(s)
	c.keys += len(s)
}

func (c *console) press(keys ...tea.KeyType) {
	for _, k := range keys {
		c.tm.Send(tea.KeyMsg{Type: k})
		c.keys++
	}
}

func (c *console) runes(s string) {
	for _, r := range s {
		c.tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		c.keys++
	}
}

// screen is the current view (the program's model, drawn now).
func (c *console) screen() string {
	c.t.Helper()
	c.tm.Send(screenRequest{})
	select {
	case s := <-screens:
		return s
	case <-time.After(5 * time.Second):
		c.t.Fatal("no screen")
		return ""
	}
}

// screenRequest asks the App (through testHook) for its view.
type screenRequest struct{}

var screens = make(chan string, 1)

// authRequest asks the App whether it read the console settings.
type authRequest struct{}

var authKnown = make(chan bool, 1)

func init() {
	testHook = func(a *App, msg tea.Msg) bool {
		switch msg.(type) {
		case screenRequest:
			screens <- a.View()
			return true
		case authRequest:
			authKnown <- a.c.AuthKnown
			return true
		}
		return false
	}
}

// golden compares the screen, as the terminal shows it (styles kept), with
// testdata/<test>.golden; `go test -update` rewrites them.
func (c *console) golden() {
	c.t.Helper()
	golden.RequireEqual(c.t, []byte(c.screen()))
}

// completeWizard fills the wizard as a keyboard-only operator would: node
// lb1, VIP 10.0.0.100/24 on the preselected eth0, the suggested VRID, a
// web service on port 80 with two servers.
func (c *console) completeWizard(stopAt string) {
	c.waitFor("Node name")
	c.typeText("lb1")
	c.press(tea.KeyEnter)
	c.waitFor("2/8  Network")
	c.waitFor("(x) eth0")
	if stopAt == "network" {
		return
	}
	c.press(tea.KeyEnter, tea.KeyEnter) // eth0, as the OS set it up (not the appliance)
	c.waitFor("Time servers")
	if stopAt == "time" {
		return
	}
	c.press(tea.KeyEnter) // no time server
	c.waitFor("Single node (pair later")
	if stopAt == "peer" {
		return
	}
	c.press(tea.KeyEnter) // a single node
	c.waitFor("VRID")
	c.waitFor("(x) eth0")
	if stopAt == "vrrp" {
		return
	}
	c.press(tea.KeyEnter) // eth0
	c.typeText("10.0.0.100/24")
	c.press(tea.KeyEnter, tea.KeyEnter) // the VIP, then leave the list
	c.press(tea.KeyEnter)               // VRID as suggested
	c.press(tea.KeyEnter)               // primary
	c.press(tea.KeyEnter)               // advert interval: default
	c.press(tea.KeyEnter)               // no dual-master: next step
	c.waitFor("Service name")
	if stopAt == "service" {
		return
	}
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter) // web, 80, http
	c.typeText("10.0.1.11:80")
	c.press(tea.KeyEnter)
	c.typeText("10.0.1.12:80")
	c.press(tea.KeyEnter, tea.KeyEnter) // leave the list
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.waitFor("Console password")
	if stopAt == "password" {
		return
	}
	c.typeText("s3cret-pw")
	c.press(tea.KeyEnter)
	c.typeText("s3cret-pw")
	c.press(tea.KeyEnter)
	c.waitFor("A first config for lb1")
}

func TestWizardGolden(t *testing.T) {
	for i, term := range terms {
		for _, step := range []string{"node", "network", "time", "peer", "vrrp", "service", "password", "review"} {
			t.Run(term.name+"/"+step, func(t *testing.T) {
				f := newFake(t)
				if step == "peer" {
					f.peered()
				}
				c := startConsole(t, f, i)
				if step == "node" {
					c.waitFor("Node name")
				} else {
					c.completeWizard(step)
				}
				c.golden()
			})
		}
	}
}

// TestWizardApplies: the wizard's config reaches the daemon whole, parses
// there, and is what the operator chose; the dashboard follows.
func TestWizardApplies(t *testing.T) {
	f := newFake(t)
	c := startConsole(t, f, 2)
	c.completeWizard("")
	c.press(tea.KeyEnter) // apply
	c.waitFor("config applied")
	f.mu.Lock()
	raw := f.applied[len(f.applied)-1]
	pw := f.password
	f.mu.Unlock()
	if pw != "s3cret-pw" {
		t.Errorf("console password %q, want the wizard's", pw)
	}
	f.slowHashes(t, 1)
	cfg, err := config.Parse("applied", raw)
	if err != nil {
		t.Fatalf("the console sent a config the daemon refuses: %v\n%s", err, raw)
	}
	v := cfg.VRRP[0]
	if cfg.Node.Name != "lb1" || v.Interface != "eth0" || v.VRID != 52 || v.Priority != 150 || v.VIPs[0] != "10.0.0.100/24" {
		t.Errorf("vrrp %+v", v)
	}
	s, b := cfg.Services[0], cfg.Backends[0]
	if s.Name != "web" || s.Listen[0] != "10.0.0.100:80" || s.Mode != "http" || len(b.Servers) != 2 || b.Servers[1].Address != "10.0.1.12:80" {
		t.Errorf("service %+v backend %+v", s, b)
	}
	// The file round-trips: parsed and written again, it is the same.
	again, err := marshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reparsed, err := config.Parse("again", again)
	if err != nil || len(config.Diff(cfg, reparsed)) != 0 {
		t.Errorf("round trip: %v %v", err, config.Diff(cfg, reparsed))
	}
	t.Logf("keystrokes for node, VIP and a service with two servers: %d", c.keys)
}

// TestWizardValidation: each message is the daemon's, on its field, and
// the wizard stays on the step until it is right.
func TestWizardValidation(t *testing.T) {
	for _, tt := range []struct {
		name  string
		drive func(c *console)
		want  string
	}{
		{"empty node name", func(c *console) {
			c.waitFor("Node name")
			c.press(tea.KeyEnter)
		}, "! is required"},
		{"bad node name", func(c *console) {
			c.waitFor("Node name")
			c.typeText("lb_1")
			c.press(tea.KeyEnter)
		}, `! "lb_1" is not a valid host name`},
		{"static address without prefix", func(c *console) {
			c.completeWizard("network")
			c.press(tea.KeyEnter, tea.KeyLeft) // eth0; leave to the OS → static
			c.waitFor("Address/prefix")
			c.press(tea.KeyEnter)
			c.typeText("10.0.0.11")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, `! "10.0.0.11" is not an address in CIDR form (e.g.`},
		{"time server not a host", func(c *console) {
			c.completeWizard("time")
			c.typeText("ntp example")
			c.press(tea.KeyEnter, tea.KeyEnter)
		}, `! "ntp example" is not an IP address or host name`},
		{"VIP without prefix", func(c *console) {
			c.completeWizard("vrrp")
			c.press(tea.KeyEnter)
			c.typeText("10.0.0.300")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, `! "10.0.0.300" is not an address in CIDR form`},
		{"VRID heard on the link", func(c *console) {
			c.completeWizard("vrrp")
			c.press(tea.KeyEnter)
			c.typeText("10.0.0.100/24")
			c.press(tea.KeyEnter, tea.KeyEnter)
			c.press(tea.KeyBackspace, tea.KeyBackspace)
			c.typeText("51")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, "! VRID 51 is in use on eth0 by 10.0.0.5 (priority"},
		{"VRID not a number", func(c *console) {
			c.completeWizard("vrrp")
			c.press(tea.KeyEnter)
			c.typeText("10.0.0.100/24")
			c.press(tea.KeyEnter, tea.KeyEnter)
			c.press(tea.KeyBackspace, tea.KeyBackspace)
			c.typeText("x1")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, `! want a whole number, got "x1"`},
		{"VRID out of range", func(c *console) {
			c.completeWizard("vrrp")
			c.press(tea.KeyEnter)
			c.typeText("10.0.0.100/24")
			c.press(tea.KeyEnter, tea.KeyEnter)
			c.press(tea.KeyBackspace, tea.KeyBackspace)
			c.typeText("300")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, "! 300 is out of range 1..255"},
		{"advert interval not a duration", func(c *console) {
			c.completeWizard("vrrp")
			c.press(tea.KeyEnter)
			c.typeText("10.0.0.100/24")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
			c.typeText("5")
			c.press(tea.KeyEnter, tea.KeyEnter)
		}, `! "5" is not a duration (e.g. 200ms, 2s)`},
		{"server without port", func(c *console) {
			c.completeWizard("service")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
			c.typeText("10.0.1.11")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, `! "10.0.1.11" is not host:port`},
		{"no servers", func(c *console) {
			c.completeWizard("service")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, "Console password"}, // a backend without servers is valid (503 until some are added)
		{"short password", func(c *console) {
			c.completeWizard("password")
			c.typeText("short")
			c.press(tea.KeyEnter, tea.KeyEnter)
		}, "! at least 8 characters"},
		{"passwords differ", func(c *console) {
			c.completeWizard("password")
			c.typeText("long-enough")
			c.press(tea.KeyEnter)
			c.typeText("long-enougH")
			c.press(tea.KeyEnter)
		}, "! the two passwords differ"},
		{"bad port", func(c *console) {
			c.completeWizard("service")
			c.press(tea.KeyEnter)
			c.press(tea.KeyBackspace, tea.KeyBackspace)
			c.typeText("http")
			c.press(tea.KeyEnter, tea.KeyEnter)
			c.typeText("10.0.1.11:80")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, `! "10.0.0.100:http": port "http" is not a number in 1..65535`},
		{"bad expected status", func(c *console) {
			c.completeWizard("service")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
			c.typeText("10.0.1.11:80")
			c.press(tea.KeyEnter, tea.KeyEnter)
			c.runes("h") // check: http
			c.press(tea.KeyEnter, tea.KeyEnter)
			c.press(tea.KeyCtrlU)
			c.typeText("700")
			c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
		}, "! 700 is out of range 100..599"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startConsole(t, newFake(t), 2)
			tt.drive(c)
			c.waitFor(tt.want)
		})
	}
}

// TestApplyRefusedPlacesErrors: a 422 from the daemon puts each error on
// the field its path names and goes back to that step.
func TestApplyRefusedPlacesErrors(t *testing.T) {
	f := newFake(t)
	f.applyErr = config.Errors{{File: "halb.yaml", Line: 9, Path: "services[0].listen[0]", Msg: "address 10.0.0.100:80 is in use by another process"}}
	c := startConsole(t, f, 2)
	c.completeWizard("")
	c.press(tea.KeyEnter)
	c.waitFor("halbd refused the config: 1 problem(s), shown on their fields")
	if s := ansi.Strip(c.screen()); !strings.Contains(s, "Listen port") || !strings.Contains(s, "! address 10.0.0.100:80 is in use") {
		t.Fatalf("the error is not on the port field:\n%s", s)
	}
}

func TestDashboardGolden(t *testing.T) {
	dashboardGolden(t, (*fakeClient).configured, func(c *console, f *fakeClient) {
		c.waitFor("vip-a MASTER")
		f.events <- api.Event{Time: testNow, Type: "vrrp.transition", Message: "vip-a: BACKUP → MASTER (master down)"}
		f.events <- api.Event{Time: testNow.Add(time.Second), Type: "backends.server_down", Message: "server web/web2 down: connect: connection refused"}
		c.waitFor("web2 down")
	})
}

// TestEventDuringPollShows: a state change whose event comes while a
// status read is under way, one that read the status before the change,
// shows at once: another read follows that one (the next poll is an hour
// away here).
func TestEventDuringPollShows(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2, func(o *Options) { o.Poll = time.Hour })
	c.waitFor("vip-a MASTER")
	read, release := make(chan struct{}), make(chan struct{})
	f.mu.Lock()
	f.statusRead = func() {
		close(read)
		<-release
	}
	f.mu.Unlock()
	// An event starts a read, which takes the status while vip-a is
	// still MASTER and waits.
	f.events <- api.Event{Time: testNow, Type: "backends.server_down", Message: "server web/web2 down: connect: connection refused"}
	<-read
	f.setStatus(func(st *api.Status) {
		var ins []vrrp.InstanceStatus
		json.Unmarshal(st.VRRP, &ins)
		ins[0].State, ins[0].Master = vrrp.StateBackup, "10.0.0.12"
		st.VRRP = mustJSON(ins)
	})
	f.events <- api.Event{Time: testNow.Add(time.Second), Type: "vrrp.transition", Message: "vip-a: MASTER → BACKUP (higher priority seen)"}
	c.waitFor("higher priority seen")
	close(release)
	c.waitFor("vip-a BACKUP")
}

// dashboardGolden compares the dashboard of a fake set up by setup with
// the golden file of each terminal, once show saw it ready.
func dashboardGolden(t *testing.T, setup func(*fakeClient), show func(*console, *fakeClient)) {
	for i, term := range terms {
		t.Run(term.name, func(t *testing.T) {
			f := newFake(t)
			setup(f)
			c := startConsole(t, f, i)
			show(c, f)
			c.golden()
		})
	}
}

// TestDashboardTLSGolden: a TLS service is listed as https, the servers of
// a backend with verify none are marked, and each certificate that expires
// within 14 days or did not load has an alarm line.
func TestDashboardTLSGolden(t *testing.T) {
	dashboardGolden(t, (*fakeClient).configuredTLS, func(c *console, f *fakeClient) {
		c.waitFor("web https 10.0.0.100:443")
		c.waitFor("tls: certificate old of service web expires 2026-12-11 (in 7 days)")
		c.waitFor("tls: certificate broken of service web NOT LOADED: open /var/lib") // cut at 80 columns
		c.waitFor("web1 noverify 10.0.1.11:443")
	})
}

// TestEditMenuMarksTLS: the edit menu lists a TLS service as https and a
// backend with verify none as such.
func TestEditMenuMarksTLS(t *testing.T) {
	f := newFake(t)
	f.configuredTLS()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("e")
	c.waitFor("service web (https): listen 10.0.0.100:443")
	c.waitFor("backend web (tls verify NONE): 2 server(s)")
}

// TestDashboardActions: each action asks first, and only yes calls the API.
func TestDashboardActions(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("h")
	c.waitFor("Hand the VIPs over to the peer now?")
	c.runes("n")
	c.waitFor("cancelled")
	c.runes("h")
	c.runes("y")
	c.waitFor("Console password:")
	c.typeText("wrong-one")
	c.press(tea.KeyEnter)
	c.waitFor("wrong password")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("hand over: done")
	c.runes("m")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("maintenance on: done")
	c.press(tea.KeyDown, tea.KeyDown) // web2
	c.runes("d")
	c.waitFor("Drain web/web2?")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("drain web/web2: done")
	f.mu.Lock()
	got := strings.Join(f.calls, ", ")
	f.mu.Unlock()
	if got != "handover, maintenance on, drain web/web2 on" {
		t.Fatalf("API calls %q", got)
	}
}

// TestReconnects: a daemon that stops answering shows "reconnecting", and
// the console resumes by itself when it answers again.
func TestReconnects(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.waitFor("vip-a MASTER")
	f.mu.Lock()
	f.statusErr = fmt.Errorf("dial unix /run/halb/halb.sock: connect: no such file or directory")
	f.mu.Unlock()
	c.waitFor("reconnecting to halbd (/run/halb/halb.sock)")
	f.mu.Lock()
	f.statusErr = nil
	f.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s := ansi.Strip(c.screen())
		if !strings.Contains(s, "reconnecting") && strings.Contains(s, "vip-a MASTER") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not reconnected:\n%s", s)
		}
	}
}

// TestEditBackend: the edit menu changes one backend's servers; the file
// sent keeps what was not edited, and the review lists the change.
func TestEditBackend(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("e")
	c.waitFor("backend web: 2 server(s)")
	c.press(tea.KeyDown, tea.KeyDown) // VIPs, service web, backend web
	c.press(tea.KeyEnter)
	c.waitFor("Servers")
	c.press(tea.KeyDown)  // the second server
	c.press(tea.KeyCtrlD) // removed
	c.press(tea.KeyUp)    // the first
	c.typeText(" w=10")   // weight 10
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.waitFor(`~ backends "web" changed: servers`)
	c.press(tea.KeyEnter)
	c.confirmApply("secret123")
	c.waitFor("config applied")
	f.mu.Lock()
	raw := string(f.applied[len(f.applied)-1])
	f.mu.Unlock()
	cfg, err := config.Parse("sent", []byte(raw))
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	s := cfg.Backends[0].Servers
	if len(s) != 1 || s[0].Name != "web1" || s[0].EffectiveWeight() != 10 {
		t.Fatalf("servers %+v\n%s", s, raw)
	}
	if !strings.Contains(raw, "- {name: vip-a, interface: eth0, vrid: 52, priority: 150, vips: [10.0.0.100/24]}") {
		t.Errorf("the VRRP section was rewritten:\n%s", raw)
	}
}

// TestEditNeedsPassword: an edit of the running config is asked for, and
// for the console password, before it is applied (it was applied with
// none); esc leaves the question on the review, a wrong password applies
// nothing, and `!` is a character of the password there.
func TestEditNeedsPassword(t *testing.T) {
	c, f, shells := shellConsole(t, "pw!edit99")
	c.runes("e")
	c.waitFor("backend web: 2 server(s)")
	c.press(tea.KeyDown, tea.KeyDown, tea.KeyEnter)
	c.waitFor("Servers")
	c.press(tea.KeyDown, tea.KeyCtrlD, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.waitFor(`~ backends "web" changed: servers`)
	c.press(tea.KeyEnter)
	c.waitFor("Apply these changes to the running config?")
	c.press(tea.KeyEsc) // the question goes, the review stays
	c.waitFor("enter apply")
	c.waitFor(`~ backends "web" changed: servers`)
	c.press(tea.KeyEnter)
	c.confirmApply("pw!wrong9")
	c.waitFor("wrong password")
	f.mu.Lock()
	applied := len(f.applied)
	f.mu.Unlock()
	if applied != 0 {
		t.Fatalf("%d config(s) applied before the right password", applied)
	}
	c.typeText("pw!edit99")
	c.press(tea.KeyEnter)
	c.waitFor("config applied")
	if n := shells.Load(); n != 0 {
		t.Errorf("the shell ran %d time(s) while the password was typed", n)
	}
}

// TestEditVIPFollowsServices: a VIP replaced in place moves the services
// that listened on it.
func TestEditVIPFollowsServices(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("e")
	c.waitFor("VIPs of vip-a")
	c.press(tea.KeyEnter)
	c.waitFor("VIPs of vip-a")
	c.press(tea.KeyCtrlU)
	c.typeText("10.0.0.200/24")
	c.press(tea.KeyEnter, tea.KeyEnter)
	c.waitFor(`~ services "web" changed: listen`)
	c.press(tea.KeyEnter)
	c.confirmApply("secret123")
	c.waitFor("config applied")
	f.mu.Lock()
	raw := string(f.applied[len(f.applied)-1])
	f.mu.Unlock()
	cfg, err := config.Parse("sent", []byte(raw))
	if err != nil || cfg.VRRP[0].VIPs[0] != "10.0.0.200/24" || cfg.Services[0].Listen[0] != "10.0.0.200:80" {
		t.Fatalf("%v\n%s", err, raw)
	}
}

// TestEditManagementConfirms: a change of the management network from the
// console is applied with a confirmation window; the dashboard asks to
// keep it, and y confirms.
func TestEditManagementConfirms(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("e")
	c.waitFor("management network: left to the OS")
	c.press(tea.KeyDown, tea.KeyDown, tea.KeyDown, tea.KeyDown) // VIPs, service, backend, health, management
	c.press(tea.KeyEnter)
	c.waitFor("Address")
	c.press(tea.KeyEnter, tea.KeyLeft) // eth0; leave to the OS → static
	c.waitFor("Address/prefix")
	c.press(tea.KeyEnter)
	c.typeText("10.0.0.11/24")
	c.press(tea.KeyEnter)
	c.typeText("10.0.0.1")
	c.press(tea.KeyEnter, tea.KeyEnter)
	c.waitFor("management network changes: keep them within 1m0s after applying")
	c.press(tea.KeyEnter)
	c.confirmApply("secret123")
	c.waitFor("Keep the new settings? Config version 1 reverts to version 0 in 1m0s.")
	c.runes("y")
	c.waitFor("keep the new settings: done")
	f.mu.Lock()
	calls := strings.Join(f.calls, "; ")
	raw := string(f.applied[len(f.applied)-1])
	f.mu.Unlock()
	if !strings.Contains(calls, "apply confirmed within 1m0s") || !strings.Contains(calls, "confirm") {
		t.Errorf("calls: %s", calls)
	}
	cfg, err := config.Parse("sent", []byte(raw))
	if err != nil || cfg.Node.Management.Address != "10.0.0.11/24" || cfg.Node.Management.Gateway != "10.0.0.1" || cfg.Node.ManageSystem {
		t.Fatalf("%v\n%s", err, raw)
	}
}

// TestTimeStepTest: ctrl+t queries the servers typed so far and shows each
// one's offset and stratum, or why it did not answer.
func TestTimeStepTest(t *testing.T) {
	f := newFake(t)
	c := startConsole(t, f, 2)
	c.completeWizard("time")
	c.typeText("10.0.0.123")
	c.press(tea.KeyEnter)
	c.typeText("ntp.example.net")
	c.press(tea.KeyCtrlT)
	c.waitFor("10.0.0.123: offset +1.2ms, delay 300µs, stratum 2")
	c.waitFor("ntp.example.net: read udp: i/o timeout")
}

// TestNetworkTestScreen: n on the dashboard runs the management network
// test and shows one line per check.
func TestNetworkTestScreen(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("n")
	c.waitFor("ping gateway 10.0.0.1")
	c.waitFor("resolve ntp.example.net")
	c.waitFor("lookup ntp.example.net: no such host")
	c.waitFor("3 check(s) in")
	c.press(tea.KeyEsc)
	c.waitFor("vip-a MASTER")
}

// TestFailoverTest: the failover test hands over and shows the transition
// times both ways as halbd recorded them.
func TestFailoverTest(t *testing.T) {
	f := newFake(t)
	f.configured()
	f.onHandover = func() {
		set := func(state vrrp.State, at time.Duration, master string) {
			f.setStatus(func(st *api.Status) {
				var ins []vrrp.InstanceStatus
				json.Unmarshal(st.VRRP, &ins)
				from := ins[0].State
				ins[0].State, ins[0].Master = state, master
				ins[0].LastTransition = &vrrp.Transition{From: from, To: state, Reason: "test", At: testNow.Add(at)}
				st.VRRP = mustJSON(ins)
			})
		}
		set(vrrp.StateBackup, 620*time.Millisecond, "10.0.0.2")
		// MASTER again once the console has read BACKUP (a fixed pause
		// could pass between two of its reads on a loaded machine).
		f.mu.Lock()
		f.statusRead = func() { set(vrrp.StateMaster, 2620*time.Millisecond, "") }
		f.mu.Unlock()
	}
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("t")
	c.waitFor("Test failover: hand the VIPs to the peer and take them back?")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("to 10.0.0.2: this node was BACKUP 0.62 s after the request")
	c.waitFor("back: MASTER again 2.00 s after the handover (preempt)")
	c.waitFor("done")
}

// TestRollback: the history lists the applied configs; choosing one shows
// what rolling back changes; the rollback asks for the password.
func TestRollback(t *testing.T) {
	f := newFake(t)
	f.configured()
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("r")
	c.waitFor("*   8  2026")
	c.press(tea.KeyDown, tea.KeyEnter)
	c.waitFor(`Rolling back to version 7 changes:`)
	c.waitFor(`services "web" removed`)
	c.press(tea.KeyEnter)
	c.waitFor("Roll back to version 7?")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("rolled back to version 7: now version 9")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.calls, "rollback 7") {
		t.Fatalf("calls %v", f.calls)
	}
}

// TestEditsNeedPassword: on a node that requires a console password but
// has none, actions are refused until one is set (p).
func TestActionsNeedAPasswordFirst(t *testing.T) {
	f := newFake(t)
	f.configured()
	f.password = ""
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("h")
	c.waitFor("set a console password first: p")
	c.runes("p")
	c.waitFor("New password")
	c.typeText("new-password")
	c.press(tea.KeyEnter)
	c.typeText("new-password")
	c.press(tea.KeyEnter)
	c.waitFor("console password set")
	c.runes("h")
	c.runes("y")
	c.waitFor("Console password:")
}

// TestPasswordsTakeTheShellKey: `!` (the root shell outside a text
// field) is a character of the console password in the dialogs that ask
// for it and on the password screen; elsewhere it still gives the shell.
// Before, it ran the shell in the middle of the password.
func TestPasswordsTakeTheShellKey(t *testing.T) {
	c, f, shells := shellConsole(t, "pw!shell9")
	c.runes("h")
	c.waitFor("Hand the VIPs over to the peer now?")
	c.runes("y")
	c.waitFor("Console password:")
	c.typeText("pw!shell9")
	c.press(tea.KeyEnter)
	c.waitFor("hand over: done")
	c.runes("p")
	c.waitFor("Current password")
	c.typeText("pw!shell9")
	c.press(tea.KeyEnter)
	c.typeText("new!pass99")
	c.press(tea.KeyEnter)
	c.typeText("new!pass99")
	c.press(tea.KeyEnter)
	c.waitFor("console password set")
	if n := shells.Load(); n != 0 {
		t.Fatalf("the shell ran %d time(s) while passwords were typed", n)
	}
	f.mu.Lock()
	pw := f.password
	f.mu.Unlock()
	if pw != "new!pass99" {
		t.Fatalf("password %q, want new!pass99", pw)
	}
	f.slowHashes(t, 2)
	c.runes("!")
	for deadline := time.Now().Add(5 * time.Second); shells.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("! on the dashboard did not run the shell")
		}
	}
}

// TestSystemMenu: interfaces, logs, and the system actions behind their
// confirmations; a factory reset needs the node's name typed.
func TestSystemMenu(t *testing.T) {
	f := newFake(t)
	f.configured()
	f.setStatus(func(st *api.Status) { st.Node.SystemActions = true })
	c := startConsole(t, f, 2)
	c.ready()
	c.runes("x")
	c.waitFor("interfaces and their link state")
	c.press(tea.KeyEnter)
	c.waitFor("eth1     no link")
	c.press(tea.KeyEsc, tea.KeyDown, tea.KeyEnter)
	c.waitFor(`server web/web2 down reason="connection refused"`)
	c.press(tea.KeyEsc, tea.KeyDown, tea.KeyDown, tea.KeyEnter) // reboot
	c.waitFor("Reboot this node now?")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("reboot: halbd is doing it")
	c.press(tea.KeyDown, tea.KeyDown, tea.KeyEnter) // factory reset
	c.waitFor("Type the node's name (lb1)")
	c.typeText("lb2")
	c.press(tea.KeyEnter)
	c.waitFor(`the name typed is not this node's ("lb1"): nothing done`)
	c.press(tea.KeyEnter)
	c.typeText("lb1")
	c.press(tea.KeyEnter)
	c.waitFor("Factory reset lb1")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("factory reset: halbd is doing it")
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.calls, ", "); got != "reboot, factory-reset lb1" {
		t.Fatalf("calls %q", got)
	}
}
