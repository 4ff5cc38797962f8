package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"halb/appliance/api"
	"halb/appliance/config"
)

// The peer: the wizard's Peer step, the join screen, the pairing screen,
// and the dashboard's peer lines and actions. The console only asks halbd
// (appliance/api/peer.go); pairing itself is the daemon's.

// PeerPlan is what the wizard's Peer step chose; the console carries it
// out once the config is applied.
type PeerPlan struct {
	// Mode is "single" (or ""), "first" (show a pairing code) or "join".
	Mode string
	// Address, Port (0: the default) and Code of the node to join.
	Address string
	Port    int
	Code    string
}

// joins reports whether the plan is to join a node.
func (p PeerPlan) joins() bool { return p.Mode == "join" }

// target is the node to join as "address" or "address:port".
func (p PeerPlan) target() string {
	if p.Port == 0 {
		return p.Address
	}
	return net.JoinHostPort(p.Address, strconv.Itoa(p.Port))
}

// joinFields are the three fields that name a node to join: its address,
// the code it shows and its peer port.
type joinFields struct {
	address, code, port *TextField
}

func newJoinFields() joinFields {
	return joinFields{
		address: NewText("Its address", "", "10.0.0.11", "the management address of the node that shows the code (its pairing screen lists them)"),
		code:    NewText("Code", "", "K7QM-4XRT-9C", "the code the other node's pairing screen shows"),
		port:    NewText("Its peer port", "", "(default 7900)", "the port its pairing screen shows; empty: 7900"),
	}
}

func (f joinFields) clearErrors() {
	f.address.ClearErrors()
	f.code.ClearErrors()
	f.port.ClearErrors()
}

// read checks the fields as the daemon's config does its own (messages on
// the fields) and returns the plan, and how many fields are wrong.
func (f joinFields) read() (PeerPlan, int) {
	p := PeerPlan{Mode: "join", Address: f.address.Value(), Code: f.code.Value()}
	bad := 0
	switch a, err := netip.ParseAddr(p.Address); {
	case p.Address == "":
		f.address.SetError(-1, "is required")
		bad++
	case err != nil || a.Zone() != "":
		f.address.SetError(-1, fmt.Sprintf("%q is not an IP address", p.Address))
		bad++
	}
	if p.Code == "" {
		f.code.SetError(-1, "is required")
		bad++
	}
	if v := f.port.Value(); v != "" {
		n, err := wholeNumber(v)
		switch {
		case err != nil:
			f.port.SetError(-1, err.Error())
			bad++
		case n < 1 || n > 65535:
			f.port.SetError(-1, fmt.Sprintf("%d is out of range 1..65535", n))
			bad++
		default:
			p.Port = n
		}
	}
	return p, bad
}

// set fills the fields from a plan.
func (f joinFields) set(p PeerPlan) {
	f.address.SetValue(p.Address)
	f.code.SetValue(p.Code)
	if p.Port != 0 {
		f.port.SetValue(strconv.Itoa(p.Port))
	}
}

// ---- the wizard's step ----

type peerStep struct {
	formStep
	mode *ChoiceField
	joinFields
	loaded bool
}

func newPeerStep() Step {
	s := &peerStep{
		mode: NewChoice("Peer", "left/right or the first letter: choose. A node that joins takes the other node's services, "+
			"backends and VIPs: the VRRP and Service steps are skipped", "single",
			Option{"single", "Single node (pair later from the dashboard)"},
			Option{"first", "First node of a pair (show a pairing code when set up)"},
			Option{"join", "Join a node that shows a code"}),
		joinFields: newJoinFields(),
	}
	s.mode.vertical = true
	join := func() bool { return s.mode.Value() == "join" }
	s.form = NewForm(s.mode, When(s.address, join), When(s.code, join), When(s.port, join))
	return s
}

func (s *peerStep) Title() string { return "Peer" }

func (s *peerStep) Load(c *Context, d *Draft) tea.Cmd {
	if !s.loaded {
		s.loaded = true
		if d.Peer.Mode != "" {
			s.mode.Set(d.Peer.Mode)
			s.set(d.Peer)
		}
	}
	return s.form.FocusOn(0)
}

func (s *peerStep) Save(d *Draft) int {
	if s.mode.Value() != "join" {
		d.Peer = PeerPlan{Mode: s.mode.Value()}
		return 0
	}
	p, bad := s.read()
	d.Peer = p
	return bad
}

// Place takes none of the daemon's errors: nothing of the step is in the
// config.
func (s *peerStep) Place(e *config.Error) bool { return false }

func (s *peerStep) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	if names := pairedNames(c); len(names) > 0 {
		b.WriteString(t.Bold.Render("This node is paired with "+strings.Join(names, ", ")+": the pairing stays (U on the dashboard unpairs).") + "\n\n")
	}
	if c.Status != nil && c.Peer == nil {
		b.WriteString(t.Dim.Render("This halbd runs no peer component: pairing is refused until it does.") + "\n\n")
	}
	b.WriteString(s.form.View(t, w))
	return b.String()
}

// The steps a node that joins a peer skips: the peer's VIPs and services
// are what it runs.
// So does a node whose Import step imported an operator's files: the
// import set them.
func (s *vrrpStep) skipped(d *Draft) bool    { return d.Peer.joins() || d.Imported }
func (s *serviceStep) skipped(d *Draft) bool { return d.Peer.joins() || d.Imported }

// pairedNames are the peers this node is paired with.
func pairedNames(c *Context) []string {
	var out []string
	if c.Peer != nil {
		for _, p := range c.Peer.Peers {
			if p.Paired {
				out = append(out, p.Name)
			}
		}
	}
	return out
}

// afterApply is the screen that carries out the wizard's peer plan once
// the config is applied: the join screen, the pairing screen, or d (a
// single node). authorized: the console password need not be asked (the
// first config of a node, applied by the person who just set it); else
// the join screen asks before it joins, and the dashboard d before it
// shows a code, as P does.
func afterApply(c *Context, d *Dashboard, p PeerPlan, authorized bool) Screen {
	switch {
	case p.Mode == "join":
		return newJoinScreen(c, p, authorized)
	case p.Mode == "first" && authorized:
		return newPairingScreen(c, true)
	case p.Mode == "first":
		d.pairKey(c)
	}
	return d
}

// apiMessage is what halbd said, without the client's wrapping.
func apiMessage(err error) string {
	var se *api.StatusError
	if errors.As(err, &se) && se.Msg != "" {
		return se.Msg
	}
	return err.Error()
}

// fingerprintLines shows a "sha256:HEX" fingerprint in groups of four, in
// two lines of eight groups, for a person to compare with another screen.
func fingerprintLines(fp string) []string {
	hex, ok := strings.CutPrefix(fp, "sha256:")
	if !ok || len(hex) != 64 {
		return []string{fp}
	}
	var groups []string
	for i := 0; i < len(hex); i += 4 {
		groups = append(groups, hex[i:i+4])
	}
	return []string{"sha256 " + strings.Join(groups[:8], " "), "       " + strings.Join(groups[8:], " ")}
}

// ---- join a node that shows a code ----

// joinScreen pairs this node with a node that shows a code: the address
// and code (filled by the wizard, or typed here), then halbd's answer. A
// refused code can be corrected and tried again at once.
type joinScreen struct {
	form *Form
	joinFields
	// authorized: the console password was given on this screen (or
	// need not be: the wizard's first config).
	authorized bool
	dialog     *confirm
	joining    bool
	plan       PeerPlan
	result     *api.JoinResult
	err        error
}

func newJoinScreen(c *Context, p PeerPlan, authorized bool) *joinScreen {
	s := &joinScreen{joinFields: newJoinFields(), authorized: authorized, plan: p}
	s.set(p)
	s.form = NewForm(s.address, s.code, s.port)
	return s
}

// joinDoneMsg is halbd's answer to a join.
type joinDoneMsg struct {
	res api.JoinResult
	err error
}

// Init joins at once when the wizard gave the node and the code (asking
// first, unless authorized).
func (s *joinScreen) Init(c *Context) tea.Cmd {
	if s.plan.Address != "" && s.plan.Code != "" {
		return s.start(c)
	}
	return s.form.FocusOn(0)
}

// start joins the plan's node, or asks first (and for the console
// password) when the screen is not authorized yet.
func (s *joinScreen) start(c *Context) tea.Cmd {
	s.err = nil
	if s.authorized {
		return s.join(c)
	}
	if why := refuseAction(c); why != "" {
		s.err = errors.New(why)
		return s.form.FocusOn(0)
	}
	s.dialog = newConfirm(fmt.Sprintf("Join %s? This node takes its services, backends and VIPs in place of its own "+
		"(kept in the config history); its name, management network and priorities stay.", s.plan.target()),
		func() tea.Msg { return joinStartMsg{} })
	return nil
}

func (s *joinScreen) join(c *Context) tea.Cmd {
	s.joining, s.err = true, nil
	client, p := c.Client, s.plan
	return func() tea.Msg {
		// Pairing is a key exchange, a TLS connection and the peer's
		// config: allow it more than a plain request.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := client.JoinPeer(ctx, p.Address, p.Port, p.Code)
		return joinDoneMsg{res, err}
	}
}

func (s *joinScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	if s.dialog != nil {
		switch msg.(type) {
		case tea.KeyMsg, passwordCheckedMsg:
			done, run, cmd := s.dialog.update(c, msg)
			if !done {
				return s, cmd
			}
			s.dialog = nil
			if run == nil {
				return s, s.form.FocusOn(0)
			}
			s.authorized = true
			return s, run
		}
	}
	switch m := msg.(type) {
	case joinDoneMsg:
		s.joining = false
		if m.err != nil {
			s.err = m.err
			// A refused code (401) is corrected in place; anything else
			// is more likely the address.
			if errors.Is(m.err, api.ErrUnauthorized) {
				return s, s.form.FocusOn(1)
			}
			return s, s.form.FocusOn(0)
		}
		s.result = &m.res
		return s, nil
	case tea.KeyMsg:
		if s.result != nil {
			if m.String() == "enter" || m.String() == "esc" {
				d := NewDashboard(c)
				d.flash = fmt.Sprintf("paired with %s: took its config %s", s.result.Peer, s.result.ConfigVersion)
				return d, nil
			}
			return s, nil
		}
		if s.joining {
			return s, nil
		}
		if m.String() == "esc" {
			d := NewDashboard(c)
			d.flash = "not paired: J on the dashboard joins a node"
			return d, nil
		}
		submit, cmd := s.form.Update(m)
		if !submit {
			return s, cmd
		}
		s.clearErrors()
		p, bad := s.read()
		if bad > 0 {
			return s, nil
		}
		s.plan = p
		return s, s.start(c)
	case joinStartMsg:
		return s, s.join(c)
	}
	return s, nil
}

// joinStartMsg starts the join once the dialog has been answered.
type joinStartMsg struct{}

func (s *joinScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" join a node that shows a pairing code", w)) + "\n\n")
	if s.dialog != nil {
		b.WriteString(s.dialog.view(t, w) + "\n")
		return b.String()
	}
	if r := s.result; r != nil {
		b.WriteString(t.Good.Render("Paired with "+r.Peer+".") + "\n\n")
		for i, l := range fingerprintLines(r.Fingerprint) {
			label := ""
			if i == 0 {
				label = r.Peer + "'s fingerprint"
			}
			b.WriteString("  " + pad(label, 20) + l + "\n")
		}
		b.WriteString("  " + pad("", 20) + t.Dim.Render("the same as on "+r.Peer+"'s pairing screen?") + "\n")
		b.WriteString("  " + pad("config taken", 20) + fmt.Sprintf("%s (history version %d)", r.ConfigVersion, r.Version) + "\n")
		if r.Message != "" {
			b.WriteString("  " + truncate(r.Message, w-2) + "\n")
		}
		return b.String()
	}
	b.WriteString("The address and the code the other node's pairing screen shows. This node\n" +
		"takes that node's services, backends and VIPs; its name, management network\n" +
		"and VRRP priorities stay its own.\n\n")
	b.WriteString(s.form.View(t, w))
	switch {
	case s.joining:
		b.WriteString("\n" + t.Bold.Render("pairing with "+s.plan.target()+t.Ellip) + "\n")
	case s.err != nil:
		b.WriteString("\n" + t.Error.Render(truncate("! "+apiMessage(s.err), w)) + "\n")
		b.WriteString("  correct the code (or the address) and press enter to try again\n")
	}
	return b.String()
}

func (s *joinScreen) Help(c *Context) []Binding {
	switch {
	case s.dialog != nil:
		return s.dialog.help()
	case s.result != nil:
		return []Binding{{"enter", "dashboard"}}
	case s.joining:
		return nil
	}
	return []Binding{{"enter", "next field / join"}, {"tab/shift+tab", "move"}, {"esc", "leave (not paired)"}}
}

// Typing: the fields, or the dialog's console password, take every
// printable key.
func (s *joinScreen) Typing() bool { return s.result == nil && (s.dialog == nil || s.dialog.typing()) }

// ---- show a pairing code ----

// pairingScreen shows a pairing code for another node to type, with its
// expiry counting down and the tries it has left, and waits: it closes
// when a peer that was not paired before is; esc cancels the code.
type pairingScreen struct {
	code     *api.PairingCode
	err      error
	starting bool
	// before are the peers paired when the screen opened.
	before []string
	// missing counts the status answers in a row without this code
	// (status.peer.pairing absent, or another code's); gone: two of them
	// (one may have been asked before the code was made): the tries are
	// used up, or the code was cancelled or replaced elsewhere.
	missing int
	gone    bool
	// fromWizard: the screen follows the setup wizard.
	fromWizard bool
}

func newPairingScreen(c *Context, fromWizard bool) *pairingScreen {
	return &pairingScreen{before: pairedNames(c), fromWizard: fromWizard}
}

// pairingMsg is halbd's answer to StartPairing.
type pairingMsg struct {
	code api.PairingCode
	err  error
}

// Init makes the code.
func (s *pairingScreen) Init(c *Context) tea.Cmd { return s.start(c) }

func (s *pairingScreen) start(c *Context) tea.Cmd {
	s.starting, s.err, s.code, s.missing, s.gone = true, nil, nil, 0, false
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := client.StartPairing(ctx)
		return pairingMsg{p, err}
	}
}

// cancelPairing ends the code; none active (404) is as good.
func cancelPairing(c *Context) tea.Cmd {
	client := c.Client
	return act("cancel the pairing code", func(ctx context.Context) error {
		if err := client.CancelPairing(ctx); err != nil && !errors.Is(err, api.ErrNotFound) {
			return err
		}
		return nil
	})
}

// expired reports whether the code's time is up.
func (s *pairingScreen) expired(c *Context) bool {
	return s.code != nil && !c.Opts.Now().Before(s.code.Expires)
}

func (s *pairingScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	switch m := msg.(type) {
	case pairingMsg:
		s.starting = false
		if m.err != nil {
			s.err = m.err
			return s, nil
		}
		s.code = &m.code
	case statusMsg:
		if name := s.newPeer(c); name != "" {
			d := NewDashboard(c)
			d.flash = "paired with " + name
			return d, nil
		}
		if s.code != nil && c.Peer != nil {
			if p := c.Peer.Pairing; p != nil && p.Expires.Equal(s.code.Expires) {
				s.missing = 0
				s.code.TriesLeft = p.TriesLeft
			} else if s.missing++; s.missing >= 2 {
				s.gone = true
			}
		}
	case tea.KeyMsg:
		switch m.String() {
		case "esc":
			d := NewDashboard(c)
			if s.code == nil || s.expired(c) || s.gone {
				return d, nil
			}
			d.busy = "cancel the pairing code"
			return d, cancelPairing(c)
		case "enter":
			if !s.starting && (s.err != nil || s.expired(c) || s.gone) {
				return s, s.start(c)
			}
		}
	}
	return s, nil
}

// newPeer is a peer paired now that was not when the screen opened.
func (s *pairingScreen) newPeer(c *Context) string {
	for _, name := range pairedNames(c) {
		if !slices.Contains(s.before, name) {
			return name
		}
	}
	return ""
}

func (s *pairingScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" pair: another node joins this one", w)) + "\n\n")
	if s.fromWizard {
		b.WriteString("The config is applied.\n")
	}
	switch {
	case s.starting:
		b.WriteString("Making a pairing code" + t.Ellip + "\n")
		return b.String()
	case s.err != nil:
		b.WriteString("\n" + t.Error.Render(truncate("! cannot make a pairing code: "+apiMessage(s.err), w)) + "\n")
		b.WriteString("  enter tries again; esc goes to the dashboard (P there makes a code later)\n")
		return b.String()
	case s.code == nil:
		return b.String()
	}
	p := s.code
	b.WriteString("On the other node, choose \"Join a node that shows a code\" in the setup wizard\n" +
		"(or press J on its dashboard) and type this code:\n\n")
	if big := bigText(t, p.Code, w-2); big != nil {
		for _, l := range big {
			b.WriteString("  " + l + "\n")
		}
		b.WriteString("\n")
	}
	left := p.Expires.Sub(c.Opts.Now())
	state := fmt.Sprintf("expires in %s", shortDur(left))
	tries := fmt.Sprintf("%d tries left", p.TriesLeft)
	if p.TriesLeft == 1 {
		tries = "1 try left"
	}
	switch {
	case left <= 0:
		state, tries = t.Bad.Render("EXPIRED"), ""
	case s.gone:
		state, tries = t.Bad.Render("NO LONGER VALID"), "(too many wrong tries, or cancelled)"
	}
	b.WriteString("  code " + t.Bold.Render(p.Code) + "   " + state + "   " + tries + "\n\n")
	addrs := strings.Join(p.Addresses, "  ")
	if addrs == "" {
		addrs = "(no management address)"
	}
	b.WriteString(truncate(fmt.Sprintf("  %-13s%s  port %d", "this node", addrs, p.Port), w) + "\n")
	for i, l := range fingerprintLines(p.Fingerprint) {
		label := ""
		if i == 0 {
			label = "fingerprint"
		}
		b.WriteString(fmt.Sprintf("  %-13s%s", label, l) + "\n")
	}
	b.WriteString("\n")
	if left <= 0 || s.gone {
		b.WriteString("enter makes a new code; esc goes to the dashboard\n")
	} else {
		b.WriteString("waiting for the other node" + t.Ellip + "\n")
	}
	return b.String()
}

func (s *pairingScreen) Help(c *Context) []Binding {
	if s.err != nil || s.expired(c) || s.gone {
		return []Binding{{"enter", "new code"}, {"esc", "dashboard"}}
	}
	return []Binding{{"esc", "cancel the code"}}
}

// ---- the dashboard's peer lines ----

// peerLines are the dashboard's lines for the peers: each one's state,
// config version and clock skew, then the last change sent to it, split
// brain, and the conflict to resolve. None when halbd runs no peer
// component.
func peerLines(c *Context, w int) []string {
	ps := c.Peer
	if ps == nil {
		return nil
	}
	t := c.Theme
	now := c.Opts.Now()
	var lines []string
	if len(ps.Peers) == 0 {
		l := "peer: none paired (P shows a code for a node to join, J joins a node)"
		if p := ps.Pairing; p != nil {
			l = fmt.Sprintf("peer: none paired; a pairing code is active, expires in %s, %d tries left", shortDur(p.Expires.Sub(now)), p.TriesLeft)
		}
		lines = append(lines, t.Dim.Render(truncate(l, w)))
	}
	for _, p := range ps.Peers {
		lines = append(lines, truncate(peerLine(t, p, now), w))
		var more []string
		if !p.Reachable && p.Error != "" {
			more = append(more, "last error: "+p.Error)
		}
		if s := p.Sync; s != nil {
			switch s.State {
			case "applied":
				more = append(more, s.Version+" applied on "+p.Name)
			case "rejected":
				// The daemon's reason, whole: it says what to fix.
				why := strings.Split(ansi.Wordwrap(s.Version+" REJECTED by "+p.Name+": "+s.Error, max(w-4, 20), " "), "\n")
				why[0] = strings.Replace(why[0], "REJECTED", t.Bad.Render("REJECTED"), 1)
				more = append(more, strings.Join(why, "\n  "))
			case "sending":
				more = append(more, "sending "+s.Version+" to "+p.Name+t.Ellip)
			default:
				more = append(more, s.Version+" "+s.State)
			}
		}
		if len(p.SplitBrain) > 0 {
			more = append(more, t.Bad.Render("SPLIT BRAIN")+": both MASTER of "+strings.Join(p.SplitBrain, ", "))
		}
		for _, l := range more {
			for _, part := range strings.Split("  "+l, "\n") {
				lines = append(lines, truncate(part, w))
			}
		}
	}
	if cf := ps.Conflict; cf != nil {
		lines = append(lines, truncate(t.Bad.Render("CONFLICT")+fmt.Sprintf(": %s won over %s; C resolves", cf.Winner, cf.Loser), w))
		if cf.Message != "" {
			lines = append(lines, truncate("  "+cf.Message, w))
		}
	}
	return lines
}

// peerLine is one peer's state: reachable, config version, clock skew.
func peerLine(t *Theme, p api.PeerState, now time.Time) string {
	if !p.Paired {
		return fmt.Sprintf("peer %s %s: %s", p.Name, p.Address, t.Warn.Render("NOT PAIRED"))
	}
	var reach string
	switch {
	case p.Reachable:
		reach = t.Good.Render("reachable")
	case p.LastSeen.IsZero():
		reach = t.Bad.Render("UNREACHABLE") + " (never seen)"
	default:
		reach = t.Bad.Render("UNREACHABLE") + " (seen " + shortDur(now.Sub(p.LastSeen)) + " ago)"
	}
	cfg := p.ConfigVersion
	if cfg == "" {
		cfg = "?"
	}
	sync := "in sync"
	if !p.InSync {
		sync = t.Warn.Render("NOT in sync")
	}
	line := fmt.Sprintf("peer %s %s  config %s %s", p.Name, reach, cfg, sync)
	if !p.LastSeen.IsZero() {
		skew := "skew " + signedDur(p.ClockSkew.Round(100*time.Microsecond))
		if p.SkewAlarm {
			skew = t.Bad.Render(skew + " TOO LARGE")
		}
		line += "  " + skew
	}
	return line
}

// ---- the dashboard's peer actions ----

// pairKey (P) asks, then shows the pairing screen, which makes the code.
func (d *Dashboard) pairKey(c *Context) {
	if c.Peer == nil {
		d.flash, d.flashErr = "this halbd runs no peer component", true
		return
	}
	d.ask(c, "Make a pairing code for another node to join this one? (valid 10 minutes; it replaces any code made before)",
		func() tea.Msg { return showPairingMsg{} })
}

// showPairingMsg opens the pairing screen once P was answered. The screen
// is made in Update, which alone reads the Context (a command runs on a
// goroutine of its own).
type showPairingMsg struct{}

// unpairKey (U) asks which peer (when there are several) and unpairs it.
func (d *Dashboard) unpairKey(c *Context) {
	names := pairedNames(c)
	if len(names) == 0 {
		d.flash, d.flashErr = "no peer is paired", true
		return
	}
	if why := refuseAction(c); why != "" {
		d.flash, d.flashErr = why, true
		return
	}
	unpair := func(name string) tea.Cmd {
		return act("unpair "+name, func(ctx context.Context) error { return c.Client.Unpair(ctx, name) })
	}
	if len(names) == 1 {
		d.dialog = newConfirm(fmt.Sprintf("Unpair %s? The two nodes stop syncing; each keeps its config as it is, and %s is told when it can be reached.",
			names[0], names[0]), unpair(names[0]))
		return
	}
	var chs []choice
	for i, n := range names {
		chs = append(chs, choice{strconv.Itoa(i + 1), "unpair " + n, unpair(n), "unpair " + n})
	}
	d.dialog = newChoices("Unpair which peer? The two nodes stop syncing; each keeps its config as it is.", chs...)
}

// conflictKey (C) shows the conflict and settles it: keep mine or take
// theirs.
func (d *Dashboard) conflictKey(c *Context) {
	if c.Peer == nil || c.Peer.Conflict == nil {
		d.flash, d.flashErr = "no conflict to resolve", true
		return
	}
	if why := refuseAction(c); why != "" {
		d.flash, d.flashErr = why, true
		return
	}
	cf := c.Peer.Conflict
	peer := "the peer"
	if names := pairedNames(c); len(names) == 1 {
		peer = names[0]
	}
	// Which change each answer runs on both nodes.
	mine, theirs := cf.Winner+" (this node's, running) stays", cf.Loser+" ("+peer+"'s) is applied again"
	if cf.Mine {
		mine, theirs = cf.Loser+" (this node's) is applied again", cf.Winner+" ("+peer+"'s, running) stays"
	}
	q := fmt.Sprintf("Conflict found %s: changes were made on both nodes while they could not talk.\n"+
		"  winner %s (runs on both)\n  loser  %s (kept in the history as version %d)\n  %s\n\n"+
		"keep mine: %s\ntake theirs: %s",
		c.Opts.Now().Sub(cf.At).Truncate(time.Second).String()+" ago", cf.Winner, cf.Loser, cf.LoserHistory, cf.Message, mine, theirs)
	resolve := func(keep string) tea.Cmd {
		return act("resolve the conflict: keep "+keep, func(ctx context.Context) error {
			_, err := c.Client.ResolveConflict(ctx, keep)
			return err
		})
	}
	d.dialog = newChoices(q,
		choice{"m", "keep mine", resolve("mine"), "keep mine"},
		choice{"t", "take theirs", resolve("theirs"), "take theirs"})
}
