package tui

import (
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"halb/appliance/api"
	"halb/appliance/config"
)

// callList is what the console asked of the fake so far.
func (f *fakeClient) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// wantCalls fails t unless the console asked exactly want, in order.
func (f *fakeClient) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if got := f.callList(); !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

// peerDashboard starts the console on a configured node whose status.peer
// set fills (nil: no peer yet), on terminal profile, and waits until it
// can ask for actions.
func peerDashboard(t *testing.T, profile int, set func(p *api.PeerStatus)) (*console, *fakeClient) {
	t.Helper()
	f := newFake(t)
	f.configured()
	f.peered()
	if set != nil {
		f.setPeer(set)
	}
	c := startConsole(t, f, profile)
	c.ready()
	return c, f
}

// toPeerStep fills the wizard up to its Peer step: node lb1, the network
// as the OS set it up, no time server.
func (c *console) toPeerStep() {
	c.t.Helper()
	c.completeWizard("peer")
	c.waitFor("4/8  Peer")
}

// joinStep chooses "join" on the Peer step and types the node and code.
func (c *console) joinStep(address, code, port string) {
	c.t.Helper()
	c.toPeerStep()
	c.runes("j") // the option that starts with J
	c.waitFor("(x) Join a node that shows a code")
	c.press(tea.KeyEnter)
	c.typeText(address)
	c.press(tea.KeyEnter)
	c.typeText(code)
	c.press(tea.KeyEnter)
	c.typeText(port)
	c.press(tea.KeyEnter)
}

// wizardAgainToPeer runs the wizard again from the dashboard (w) up to
// its Peer step, keeping what the running config sets.
func (c *console) wizardAgainToPeer() {
	c.t.Helper()
	c.runes("w")
	c.waitFor("Node name")
	c.press(tea.KeyEnter)
	c.waitFor("2/8  Network")
	c.press(tea.KeyEnter, tea.KeyEnter) // eth0, left to the OS
	c.waitFor("Time servers")
	c.press(tea.KeyEnter, tea.KeyEnter) // DHCP's server kept; a new entry, left empty
	c.waitFor("4/8  Peer")
}

// finishAfterPeer types the password and reaches the review of a wizard
// whose Peer step skipped VRRP and Service.
func (c *console) finishAfterPeer() {
	c.t.Helper()
	c.waitFor("Console password")
	c.typeText("s3cret-pw")
	c.press(tea.KeyEnter)
	c.typeText("s3cret-pw")
	c.press(tea.KeyEnter)
	c.waitFor("A first config for lb1")
}

func TestWizardPeerGolden(t *testing.T) {
	for i, term := range terms {
		for _, view := range []string{"first", "join", "join-review"} {
			t.Run(term.name+"/"+view, func(t *testing.T) {
				f := newFake(t)
				f.peered()
				c := startConsole(t, f, i)
				switch view {
				case "first":
					c.toPeerStep()
					c.runes("f")
					c.waitFor("(x) First node of a pair")
				case "join":
					c.toPeerStep()
					c.runes("j")
					c.press(tea.KeyEnter)
					c.typeText("10.0.0.12")
					c.press(tea.KeyEnter)
					c.typeText("K7QM-4XRT-9C")
					c.waitFor("K7QM-4XRT-9C")
				case "join-review":
					c.joinStep("10.0.0.12", "K7QM-4XRT-9C", "")
					c.finishAfterPeer()
				}
				c.golden()
			})
		}
	}
}

// TestWizardPeerValidation: the join fields are checked on the step, with
// messages in the daemon's words.
func TestWizardPeerValidation(t *testing.T) {
	for _, tt := range []struct {
		name                string
		address, code, port string
		want                string
	}{
		{"no address", "", "K7QM-4XRT-9C", "", "! is required"},
		{"address not an IP", "10.0.0.300", "K7QM-4XRT-9C", "", `! "10.0.0.300" is not an IP address`},
		{"no code", "10.0.0.12", "", "", "! is required"},
		{"port not a number", "10.0.0.12", "K7QM-4XRT-9C", "x1", `! want a whole number, got "x1"`},
		{"port out of range", "10.0.0.12", "K7QM-4XRT-9C", "70000", "! 70000 is out of range 1..65535"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.peered()
			c := startConsole(t, f, 2)
			c.joinStep(tt.address, tt.code, tt.port)
			c.waitFor(tt.want)
			if s := ansi.Strip(c.screen()); !strings.Contains(s, "[Peer]") {
				t.Fatalf("the wizard left the Peer step:\n%s", s)
			}
		})
	}
}

// TestWizardSingleNode: the default choice asks nothing of the peer
// component and ends on the dashboard as before.
func TestWizardSingleNode(t *testing.T) {
	f := newFake(t)
	f.peered()
	c := startConsole(t, f, 2)
	c.completeWizard("")
	c.press(tea.KeyEnter)
	c.waitFor("config applied")
	for _, call := range f.callList() {
		if strings.Contains(call, "pair") || strings.Contains(call, "join") {
			t.Fatalf("a single node asked %q", call)
		}
	}
}

// TestWizardJoin: "join" skips the VRRP and Service steps, the review says
// where they come from, the config is applied without them, and a wrong
// code is corrected and tried again on the join screen without redoing
// the wizard.
func TestWizardJoin(t *testing.T) {
	f := newFake(t)
	f.peered()
	c := startConsole(t, f, 1)
	c.joinStep("10.0.0.12", "K7QM-4XRT-9X", "") // a typo in the code
	c.waitFor("5/6  Password")
	if s := ansi.Strip(c.screen()); strings.Contains(s, "VRRP") || strings.Contains(s, "Service") {
		t.Fatalf("the steps of a joining node list VRRP or Service:\n%s", s)
	}
	c.finishAfterPeer()
	c.waitFor("services, backends and VIPs come from 10.0.0.12 when paired.")
	// esc from the review goes back over the skipped steps to the Peer step.
	c.press(tea.KeyEsc)
	c.waitFor("5/6  Password")
	c.press(tea.KeyEsc)
	c.waitFor("4/6  Peer")
	c.waitFor("(x) Join a node")
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.waitFor("5/6  Password")
	c.press(tea.KeyEnter, tea.KeyEnter) // the password typed before is kept
	c.waitFor("A first config for lb1")
	c.press(tea.KeyEnter) // apply
	c.waitFor("! pairing with 10.0.0.12 refused: wrong code (4 tries left)")
	c.golden()
	c.press(tea.KeyBackspace)
	c.typeText("C")
	c.press(tea.KeyEnter, tea.KeyEnter) // the code, then the port: join
	c.waitFor("Paired with lb2.")
	c.waitFor("config taken        lb2:7 (history version 2)")
	c.waitFor("sha256 9c2e 4b6a 8d0f 1e3c 5a7b 9d1f 3e5c 7a9b")
	c.press(tea.KeyEnter)
	c.waitFor("paired with lb2: took its config lb2:7")

	f.mu.Lock()
	applied := slices.Clone(f.applied)
	pw := f.password
	f.mu.Unlock()
	if len(applied) != 1 {
		t.Fatalf("the config was applied %d times, want once", len(applied))
	}
	cfg, err := config.Parse("applied", applied[0])
	if err != nil || cfg.Node.Name != "lb1" || len(cfg.VRRP) != 0 || len(cfg.Services) != 0 || len(cfg.Backends) != 0 {
		t.Fatalf("a joining node's first config: %v\n%s", err, applied[0])
	}
	if pw != "s3cret-pw" {
		t.Errorf("console password %q", pw)
	}
	want := []string{"password", "join 10.0.0.12 0 K7QM-4XRT-9X", "join 10.0.0.12 0 K7QM-4XRT-9C"}
	f.wantCalls(t, want...)
}

// TestWizardFirstNode: "first node" applies the config, then shows a
// pairing code with its expiry counting down and the tries left, and
// closes when a new peer is paired.
func TestWizardFirstNode(t *testing.T) {
	f := newFake(t)
	f.peered()
	c := startConsole(t, f, 1)
	c.toPeerStep()
	c.runes("f")
	c.press(tea.KeyEnter)
	c.waitFor("VRID")
	c.press(tea.KeyEnter)
	c.typeText("10.0.0.100/24")
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.waitFor("Service name")
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.typeText("10.0.1.11:80")
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
	c.finishAfterPeer()
	c.waitFor("Then this node shows a pairing code for the other node to type.")
	c.press(tea.KeyEnter)
	c.waitFor("code K7QM-4XRT-9C   expires in 10m0s   5 tries left")
	c.golden()

	f.advance(90 * time.Second)
	c.waitFor("expires in 8m30s")
	// A wrong try on the other node: status says so.
	f.setPeer(func(p *api.PeerStatus) { p.Pairing.TriesLeft = 4 })
	c.waitFor("expires in 8m30s   4 tries left")
	f.advance(time.Second)
	c.waitFor("expires in 8m29s   4 tries left")
	// Paired.
	f.setPeer(func(p *api.PeerStatus) {
		p.Pairing = nil
		p.Peers = append(p.Peers, api.PeerState{Name: "lb2", Address: "10.0.0.12", Port: 7900, Paired: true,
			Reachable: true, LastSeen: testNow, ConfigVersion: "lb1:1", InSync: true})
	})
	c.waitFor("paired with lb2")
	c.waitFor("peer lb2 reachable  config lb1:1 in sync")
	f.wantCalls(t, "password", "start pairing")
}

// TestPairingScreenCodeEnds: a code that expires, or that the tries used
// up, is said so; enter makes a new one; esc cancels an active code.
func TestPairingScreenCodeEnds(t *testing.T) {
	c, f := peerDashboard(t, 2, nil)
	c.runes("P")
	c.waitFor("Make a pairing code for another node to join this one?")
	c.runes("y")
	c.typeText("secret123")
	c.press(tea.KeyEnter)
	c.waitFor("expires in 10m0s   5 tries left")
	c.waitFor("waiting for the other node")
	f.advance(10 * time.Minute)
	c.waitFor("EXPIRED")
	c.waitFor("enter makes a new code")
	c.press(tea.KeyEnter)
	c.waitFor("expires in 10m0s   5 tries left")
	// Five wrong tries on the other node: the daemon drops the code.
	f.setPeer(func(p *api.PeerStatus) { p.Pairing = nil })
	c.waitFor("NO LONGER VALID")
	c.press(tea.KeyEnter)
	c.waitFor("expires in 10m0s   5 tries left")
	c.press(tea.KeyEsc)
	c.waitFor("cancel the pairing code: done")
	want := []string{"start pairing", "start pairing", "start pairing", "cancel pairing"}
	f.wantCalls(t, want...)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code != nil || f.peer.Pairing != nil {
		t.Fatalf("the code is still active after esc")
	}
}

// TestPairingRefused: a daemon without the peer component refuses the code;
// the screen says what halbd said.
func TestPairingRefused(t *testing.T) {
	f := newFake(t)
	f.peered()
	f.pairingErr = &api.StatusError{Code: 403, Msg: "peer: not enabled on this node"}
	c := startConsole(t, f, 2)
	c.toPeerStep()
	c.runes("f")
	c.press(tea.KeyEnter)
	c.waitFor("VRID")
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter) // no VIP
	c.waitFor("Service name")
	c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter) // no server
	c.finishAfterPeer()
	c.press(tea.KeyEnter)
	c.waitFor("! cannot make a pairing code: peer: not enabled on this node")
	c.press(tea.KeyEsc)
	c.waitFor("h handover")
}

// peerStates are the dashboard's peer panel in the states it tells apart.
var peerStates = []struct {
	name string
	set  func(p *api.PeerStatus)
	want []string
}{
	{"reachable", func(p *api.PeerStatus) {
		p.Peers = []api.PeerState{{Name: "lb2", Address: "10.0.0.12", Port: 7900, Paired: true, Reachable: true,
			LastSeen: testNow.Add(-time.Second), ConfigVersion: "lb1:5 lb2:3", InSync: true, ClockSkew: 1234 * time.Microsecond,
			Sync: &api.SyncState{Version: "lb1:5 lb2:3", State: "applied", At: testNow.Add(-time.Minute)}}}
	}, []string{"peer lb2 reachable  config lb1:5 lb2:3 in sync  skew +1.2ms", "lb1:5 lb2:3 applied on lb2", "alarms: none"}},
	{"unreachable", func(p *api.PeerStatus) {
		p.Peers = []api.PeerState{{Name: "lb2", Address: "10.0.0.12", Port: 7900, Paired: true, Reachable: false,
			LastSeen: testNow.Add(-42 * time.Second), Error: "dial tcp 10.0.0.12:7900: connect: connection refused",
			ConfigVersion: "lb1:4 lb2:3", ClockSkew: -300 * time.Microsecond,
			Sync: &api.SyncState{Version: "lb1:5 lb2:3", State: "sending", At: testNow.Add(-40 * time.Second)}}}
		p.Alarms = []string{"peer lb2 unreachable for 42s"}
	}, []string{"peer lb2 UNREACHABLE (seen 42s ago)  config lb1:4 lb2:3 NOT in sync  skew -300", "last error: dial tcp 10.0.0.12:7900",
		"sending lb1:5 lb2:3 to lb2", "ALARM: peer lb2 unreachable for 42s"}},
	{"rejected", func(p *api.PeerStatus) {
		p.Peers = []api.PeerState{{Name: "lb2", Address: "10.0.0.12", Port: 7900, Paired: true, Reachable: true,
			LastSeen: testNow, ConfigVersion: "lb1:5 lb2:3", ClockSkew: 800 * time.Microsecond,
			Sync: &api.SyncState{Version: "lb1:6 lb2:3", State: "rejected", At: testNow.Add(-5 * time.Second),
				Error: "services[0].listen[0]: address 10.0.0.100:80 is in use"}}}
		p.Alarms = []string{"lb2 rejected config lb1:6 lb2:3"}
	}, []string{"config lb1:5 lb2:3 NOT in sync", "lb1:6 lb2:3 REJECTED by lb2: services[0].listen[0]: address",
		"  in use", "ALARM: lb2 rejected config lb1:6"}},
	{"conflict", func(p *api.PeerStatus) {
		p.Peers = []api.PeerState{{Name: "lb2", Address: "10.0.0.12", Port: 7900, Paired: true, Reachable: true,
			LastSeen: testNow, ConfigVersion: "lb1:6 lb2:3", InSync: true}}
		p.Conflict = &api.Conflict{At: testNow.Add(-2 * time.Minute), Winner: "lb1:6 lb2:3", Loser: "lb1:5 lb2:4",
			Message: `backends "web" changed on both`, LoserHistory: 12, Mine: false}
		p.Alarms = []string{"config conflict with lb2: lb1:5 lb2:4 lost"}
	}, []string{"CONFLICT: lb1:6 lb2:3 won over lb1:5 lb2:4; C resolves", `  backends "web" changed on both`,
		"ALARM: config conflict with lb2"}},
	{"skew-alarm", func(p *api.PeerStatus) {
		p.Peers = []api.PeerState{{Name: "lb2", Address: "10.0.0.12", Port: 7900, Paired: true, Reachable: true,
			LastSeen: testNow, ConfigVersion: "lb1:5 lb2:3", InSync: true, ClockSkew: 812 * time.Millisecond, SkewAlarm: true,
			SplitBrain: []string{"vip-a"}}}
		p.Alarms = []string{"clock skew with lb2 +812ms beyond time.max_offset 500ms", "split brain: vip-a MASTER on both"}
	}, []string{"skew +812ms TOO LARGE", "SPLIT BRAIN: both MASTER of vip-a", "ALARM: clock skew with lb2 +812ms"}},
	{"none", func(p *api.PeerStatus) {}, []string{"peer: none paired (P shows a code for a node to join, J joins a node)"}},
	{"code-active", func(p *api.PeerStatus) {
		p.Listen = ":7900"
		p.Pairing = &api.PairingState{Expires: testNow.Add(8*time.Minute + 12*time.Second), TriesLeft: 3}
	}, []string{"peer: none paired; a pairing code is active, expires in 8m12s, 3 tries left"}},
}

// TestDashboardPeerGolden: each state of the peer panel, in text (vt100:
// no colour, ASCII), and the first on every terminal.
func TestDashboardPeerGolden(t *testing.T) {
	for _, st := range peerStates {
		for i, term := range terms {
			if term.name != "vt100" && st.name != "reachable" && st.name != "skew-alarm" {
				continue
			}
			t.Run(st.name+"/"+term.name, func(t *testing.T) {
				c, _ := peerDashboard(t, i, st.set)
				for _, w := range st.want {
					c.waitFor(w)
				}
				c.golden()
			})
		}
	}
}

// TestPeerActions: pair, join, unpair and resolve ask first and for the
// console password, as every action does; only then they call halbd.
func TestPeerActions(t *testing.T) {
	t.Run("pair", func(t *testing.T) {
		c, f := peerDashboard(t, 2, nil)
		c.runes("P")
		c.runes("n")
		c.waitFor("cancelled")
		c.runes("P")
		c.runes("y")
		c.typeText("wrong-one")
		c.press(tea.KeyEnter)
		c.waitFor("wrong password")
		c.typeText("secret123")
		c.press(tea.KeyEnter)
		c.waitFor("code K7QM-4XRT-9C")
		c.waitFor("this node    10.0.0.11  fd00::11  port 7900")
		c.waitFor("fingerprint  sha256 3f9a 1c0b 7e52 d4a8 c6e1 f0b9 a7d3 c2e5")
		f.wantCalls(t, "start pairing")
	})
	t.Run("join", func(t *testing.T) {
		c, f := peerDashboard(t, 2, nil)
		c.runes("J")
		c.waitFor("Its address")
		c.typeText("10.0.0.12")
		c.press(tea.KeyEnter)
		c.typeText("wrong")
		c.press(tea.KeyEnter)
		c.typeText("7901")
		c.press(tea.KeyEnter)
		c.waitFor("Join 10.0.0.12:7901? This node takes its services, backends and VIPs")
		c.runes("y")
		c.typeText("secret123")
		c.press(tea.KeyEnter)
		c.waitFor("! pairing with 10.0.0.12 refused: wrong code (4 tries left)")
		// Tried again at once: the password was given on this screen.
		c.press(tea.KeyCtrlU)
		c.typeText("K7QM-4XRT-9C")
		c.press(tea.KeyEnter, tea.KeyEnter)
		c.waitFor("Paired with lb2.")
		c.press(tea.KeyEnter)
		c.waitFor("peer lb2 reachable")
		want := []string{"join 10.0.0.12 7901 wrong", "join 10.0.0.12 7901 K7QM-4XRT-9C"}
		f.wantCalls(t, want...)
	})
	t.Run("unpair", func(t *testing.T) {
		c, f := peerDashboard(t, 2, peerStates[0].set)
		c.waitFor("peer lb2 reachable")
		c.runes("U")
		c.waitFor("Unpair lb2? The two nodes stop syncing")
		c.runes("y")
		c.typeText("secret123")
		c.press(tea.KeyEnter)
		c.waitFor("unpair lb2: done")
		c.waitFor("peer: none paired")
		f.wantCalls(t, "unpair lb2")
	})
	for _, keep := range []string{"mine", "theirs"} {
		t.Run("conflict "+keep, func(t *testing.T) {
			c, f := peerDashboard(t, 1, peerStates[3].set)
			c.runes("C")
			c.waitFor("Conflict found 2m0s ago")
			c.waitFor("winner lb1:6 lb2:3 (runs on both)")
			c.waitFor("loser  lb1:5 lb2:4 (kept in the history as version 12)")
			c.waitFor("keep mine: lb1:6 lb2:3 (this node's, running) stays")
			c.waitFor("take theirs: lb1:5 lb2:4 (lb2's) is applied again")
			c.waitFor("m = keep mine, t = take theirs, esc = cancel")
			if keep == "mine" {
				c.golden()
			}
			c.runes(keep[:1])
			c.waitFor("Console password:")
			c.typeText("secret123")
			c.press(tea.KeyEnter)
			c.waitFor("resolve the conflict: keep " + keep + ": done")
			c.waitFor("alarms: none") // the panel follows status
			f.wantCalls(t, "resolve "+keep)
		})
	}
	t.Run("nothing to do", func(t *testing.T) {
		c, f := peerDashboard(t, 2, nil)
		c.runes("U")
		c.waitFor("no peer is paired")
		c.runes("C")
		c.waitFor("no conflict to resolve")
		f.wantCalls(t)
	})
}

// TestPeerStepNotes: the Peer step says when halbd cannot pair (no peer
// component) and when the node is paired already (the wizard run again);
// the VRRP step says the priority is this node's own.
func TestPeerStepNotes(t *testing.T) {
	t.Run("no peer component", func(t *testing.T) {
		c := startConsole(t, newFake(t), 2)
		c.toPeerStep()
		c.waitFor("This halbd runs no peer component: pairing is refused until it does.")
	})
	t.Run("paired", func(t *testing.T) {
		c, _ := peerDashboard(t, 2, peerStates[0].set)
		c.wizardAgainToPeer()
		c.waitFor("This node is paired with lb2: the pairing stays (U on the dashboard unpairs).")
		c.press(tea.KeyEnter)
		c.waitFor("VRID")
		c.press(tea.KeyDown, tea.KeyDown, tea.KeyDown) // VIPs, VRID, role
		c.waitFor("is this node's own: it is never copied to a peer")
	})
}

// TestWizardAgainAsks: the wizard run again on a node with a console
// password asks for it before it joins or shows a code, as the
// dashboard's J and P do; the wizard's first config does not (its
// password was set a moment before).
func TestWizardAgainAsks(t *testing.T) {
	for _, mode := range []string{"join", "first"} {
		t.Run(mode, func(t *testing.T) {
			c, f := peerDashboard(t, 2, nil)
			c.wizardAgainToPeer()
			c.runes(mode[:1])
			if mode == "join" {
				c.press(tea.KeyEnter)
				c.typeText("10.0.0.12")
				c.press(tea.KeyEnter)
				c.typeText("K7QM-4XRT-9C")
				c.press(tea.KeyEnter, tea.KeyEnter)
				c.waitFor("5/6  Password")
			} else {
				c.press(tea.KeyEnter)
				c.waitFor("5/8  VRRP")
				c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter, tea.KeyEnter)
				c.waitFor("6/8  Service")
				c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter) // web, 80, http
				c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter) // the two servers; a new entry, left empty
				c.press(tea.KeyEnter, tea.KeyEnter, tea.KeyEnter) // check, balance, persistence
			}
			c.waitFor("A console password is set")
			c.press(tea.KeyEnter)
			c.waitFor("Changes to the running config")
			c.press(tea.KeyEnter)
			c.confirmApply("secret123")
			if mode == "join" {
				c.waitFor("Join 10.0.0.12? This node takes its services")
			} else {
				c.waitFor("Make a pairing code for another node to join this one?")
			}
			f.wantCalls(t)
			c.runes("y")
			c.typeText("secret123")
			c.press(tea.KeyEnter)
			if mode == "join" {
				c.waitFor("Paired with lb2.")
				f.wantCalls(t, "join 10.0.0.12 0 K7QM-4XRT-9C")
			} else {
				c.waitFor("code K7QM-4XRT-9C")
				f.wantCalls(t, "start pairing")
			}
		})
	}
}
