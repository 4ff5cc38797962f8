package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/netcfg"
	"halb/appliance/timesync"
)

// The management network and time: the wizard's Network and Time steps,
// their lines on the dashboard, and the management network test.

// ConfirmWithin is how long a management change applied from the console
// waits for the operator's "keep": then the previous settings come back.
const ConfirmWithin = 60 * time.Second

// touchesManagement reports whether changes alter the management network
// (the settings the operator may be connected over).
func touchesManagement(changes []config.Change) bool {
	for _, c := range changes {
		if c.Section == "node" && (len(c.Fields) == 0 || slices.Contains(c.Fields, "management") || slices.Contains(c.Fields, "manage_system")) {
			return true
		}
	}
	return false
}

// ---- Network ----

type netStep struct {
	formStep
	iface   *ChoiceField
	mode    *ChoiceField
	address *TextField
	gateway *TextField
	dns     *ListField

	ifaces  []api.Interface
	loadErr error
	loaded  bool
}

func newNetStep() Step {
	s := &netStep{
		iface: NewChoice("Interface", "left/right: the management link (state, MAC, addresses)", ""),
		mode: NewChoice("Address", "left/right: DHCP, a static address, or leave the link as the operating system set it up", "dhcp",
			Option{"dhcp", "DHCP"}, Option{"static", "static"}, Option{"os", "leave to the OS"}),
		address: NewText("Address/prefix", "", "172.16.0.1/16", "the management address with its prefix length"),
		gateway: NewText("Gateway", "", "172.16.0.254", "the default gateway; empty: none"),
		dns:     NewList("DNS servers", "(none)", "name servers, one per line"),
	}
	s.iface.vertical = true
	s.build()
	return s
}

func (s *netStep) build() {
	static := func() bool { return s.mode.Value() == "static" }
	s.form = NewForm(s.iface, s.mode, When(s.address, static), When(s.gateway, static), When(s.dns, static))
}

func (s *netStep) Title() string { return "Network" }

func (s *netStep) Load(c *Context, d *Draft) tea.Cmd {
	if !s.loaded {
		s.loaded = true
		m := d.Cfg.Node.Management
		switch {
		case m.DHCP:
			s.mode.Set("dhcp")
		case m.Address != "":
			s.mode.Set("static")
			s.address.SetValue(m.Address)
			s.gateway.SetValue(m.Gateway)
			s.dns = NewList(s.dns.label, s.dns.placeholder, s.dns.hint, m.DNS...)
		case d.Running != nil || !c.Opts.Appliance:
			// A running node without management settings, or a dev
			// machine: the OS's setup stays unless the operator asks.
			s.mode.Set("os")
		}
		if m.Interface != "" {
			s.iface.Set(m.Interface)
		}
		s.build()
	}
	return tea.Batch(s.form.FocusOn(0), fetchInterfaces(c))
}

func (s *netStep) Update(c *Context, msg tea.Msg) (bool, tea.Cmd) {
	if m, ok := msg.(interfacesMsg); ok {
		s.ifaces, s.loadErr = m.list, m.err
		setInterfaces(s.iface, m.list, func(l []api.Interface) string { return managementGuess(c, l) })
		return false, nil
	}
	return s.formStep.Update(c, msg)
}

// managementGuess is the link the management network most likely is: the
// one a lease is on, else the first with a link and an address.
func managementGuess(c *Context, l []api.Interface) string {
	if n := c.Network; n != nil {
		for _, in := range n.Interfaces {
			if in.Lease != nil && in.Lease.Address != "" {
				return in.Name
			}
		}
	}
	return firstLinkWithAddress(l)
}

func (s *netStep) Save(d *Draft) int {
	m := config.Management{}
	switch s.mode.Value() {
	case "dhcp":
		m = config.Management{Interface: s.iface.Value(), DHCP: true}
	case "static":
		m = config.Management{Interface: s.iface.Value(), Address: s.address.Value(), Gateway: s.gateway.Value(), DNS: s.dns.Values()}
	}
	d.Cfg.Node.Management = m
	return 0
}

func (s *netStep) Place(e *config.Error) bool {
	if !under(e.Path, "node.management") {
		return false
	}
	switch rest := strings.TrimPrefix(e.Path, "node.management"); {
	case rest == ".interface":
		s.iface.SetError(-1, e.Msg)
	case rest == ".address":
		s.address.SetError(-1, e.Msg)
	case rest == ".gateway":
		s.gateway.SetError(-1, e.Msg)
	case strings.HasPrefix(rest, ".dns["):
		i, _, _ := pathIndex(rest, ".dns")
		s.dns.SetError(i, e.Msg)
	default:
		s.mode.SetError(-1, e.Msg)
	}
	return true
}

func (s *netStep) View(c *Context, w, h int) string {
	var b strings.Builder
	if s.loadErr != nil {
		b.WriteString(c.Theme.Error.Render("interfaces: "+s.loadErr.Error()) + "\n")
	}
	b.WriteString(s.form.View(c.Theme, w))
	if lines := netLines(c, s.iface.Value()); len(lines) > 0 {
		b.WriteString("\n" + c.Theme.Section.Render("now") + "\n")
		for _, l := range lines {
			b.WriteString("  " + truncate(l, w-2) + "\n")
		}
	}
	return b.String()
}

// netLines describes the management network now, for one link (all when
// iface is empty): mode, addresses, the lease and the gateway.
func netLines(c *Context, iface string) []string {
	n := c.Network
	if n == nil {
		return nil
	}
	var out []string
	for _, in := range n.Interfaces {
		if iface != "" && in.Name != iface {
			continue
		}
		link := "link up"
		if !in.Carrier {
			link = "NO LINK"
		}
		addrs := "no address"
		if len(in.Addresses) > 0 {
			addrs = strings.Join(in.Addresses, " ")
		}
		out = append(out, fmt.Sprintf("%s %s, %s (%s)", in.Name, link, addrs, n.Mode))
		if l := in.Lease; l != nil {
			out = append(out, leaseLine(l, c.Opts.Now()))
		}
	}
	var extra []string
	if n.Gateway != "" {
		extra = append(extra, "gateway "+n.Gateway)
	}
	if len(n.DNS) > 0 {
		extra = append(extra, "dns "+strings.Join(n.DNS, " "))
	}
	if len(n.NTP) > 0 {
		extra = append(extra, "ntp "+strings.Join(n.NTP, " "))
	}
	if len(extra) > 0 {
		out = append(out, strings.Join(extra, ", "))
	}
	if n.Error != "" {
		out = append(out, "error: "+n.Error)
	}
	return out
}

// leaseLine is a DHCP client's state in one line.
func leaseLine(l *netcfg.Lease, now time.Time) string {
	if l.Address == "" {
		return "dhcp " + l.State + ": no lease yet"
	}
	return fmt.Sprintf("dhcp %s %s from %s, renew in %s, expires in %s", l.State, l.Address, l.Server,
		shortDur(l.T1.Sub(now)), shortDur(l.Expiry.Sub(now)))
}

// shortDur is a duration to the second, "now" when past.
func shortDur(d time.Duration) string {
	if d <= 0 {
		return "now"
	}
	return d.Truncate(time.Second).String()
}

// ---- Time ----

type timeStep struct {
	formStep
	servers *ListField
	testing bool
	results []timesync.ServerStatus
	testErr error
	loaded  bool
}

func newTimeStep() Step {
	s := &timeStep{servers: NewList("Time servers", "(none)",
		"NTP servers, addresses or names, one per line; ctrl+t queries them now (offset, stratum)")}
	s.form = NewForm(s.servers)
	return s
}

func (s *timeStep) Title() string { return "Time" }

func (s *timeStep) Load(c *Context, d *Draft) tea.Cmd {
	if !s.loaded {
		s.loaded = true
		servers := d.Cfg.Time.Servers
		if len(servers) == 0 && c.Network != nil {
			servers = c.Network.NTP // what DHCP offers, as a start
		}
		s.servers = NewList(s.servers.label, s.servers.placeholder, s.servers.hint, servers...)
		s.form = NewForm(s.servers)
	}
	return s.form.FocusOn(0)
}

func (s *timeStep) Save(d *Draft) int {
	d.Cfg.Time.Servers = s.servers.Values()
	return 0
}

func (s *timeStep) Place(e *config.Error) bool {
	if !under(e.Path, "time") {
		return false
	}
	if strings.HasPrefix(e.Path, "time.servers[") {
		i, _, _ := pathIndex(strings.TrimPrefix(e.Path, "time"), ".servers")
		s.servers.SetError(i, e.Msg)
	} else {
		s.servers.SetError(-1, strings.TrimPrefix(e.Path, "time.")+": "+e.Msg)
	}
	return true
}

type timeTestMsg struct {
	servers []timesync.ServerStatus
	err     error
}

func testTime(c *Context, servers []string) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l, err := client.TestTime(ctx, servers)
		return timeTestMsg{l, err}
	}
}

func (s *timeStep) Update(c *Context, msg tea.Msg) (bool, tea.Cmd) {
	switch m := msg.(type) {
	case timeTestMsg:
		s.testing, s.results, s.testErr = false, m.servers, m.err
		return false, nil
	case tea.KeyMsg:
		if m.String() == "ctrl+t" {
			if len(s.servers.Values()) == 0 {
				s.testErr = fmt.Errorf("no server to test: add one")
				return false, nil
			}
			s.testing, s.testErr = true, nil
			return false, testTime(c, s.servers.Values())
		}
	}
	return s.formStep.Update(c, msg)
}

func (s *timeStep) Help(c *Context) []Binding {
	return append([]Binding{{"ctrl+t", "test"}}, s.formStep.Help(c)...)
}

func (s *timeStep) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(s.form.View(t, w))
	switch {
	case s.testing:
		b.WriteString("\n" + t.Bold.Render("querying"+t.Ellip) + "\n")
	case s.testErr != nil:
		b.WriteString("\n" + t.Error.Render("test: "+s.testErr.Error()) + "\n")
	case s.results != nil:
		b.WriteString("\n" + t.Section.Render("test") + "\n")
		for _, r := range s.results {
			b.WriteString("  " + truncate(serverLine(t, r), w-2) + "\n")
		}
	}
	if c.Time != nil {
		b.WriteString("\n" + t.Section.Render("now") + "\n  " + truncate(clockLine(t, c.Time, c.Opts.Now()), w-2) + "\n")
	}
	return b.String()
}

// serverLine is one time server's figures.
func serverLine(t *Theme, r timesync.ServerStatus) string {
	if !r.Reachable {
		why := "no answer"
		if r.Error != "" {
			why = r.Error
		}
		return t.Bad.Render("✗") + " " + r.Name + ": " + why
	}
	s := fmt.Sprintf("%s %s: offset %s, delay %s, stratum %d", t.Good.Render("✓"), r.Name, signedDur(r.Offset),
		r.Delay.Round(time.Microsecond), r.Stratum)
	switch {
	case r.Chosen:
		s += ", chosen"
	case r.Falseticker:
		s += ", " + t.Bad.Render("FALSETICKER")
	}
	return s
}

// clockLine is the clock's state in one line.
func clockLine(t *Theme, st *timesync.Status, now time.Time) string {
	switch {
	case st.Synchronized:
		return fmt.Sprintf("clock %s %s (%s, %s ago)", t.Good.Render("synchronised"), signedDur(st.Offset), st.Server,
			shortDur(now.Sub(st.LastSync)))
	case st.LastSync.IsZero():
		return "clock " + t.Bad.Render("not synchronised") + ": no server answered yet"
	default:
		return fmt.Sprintf("clock %s: offset %s (%s)", t.Bad.Render("not synchronised"), signedDur(st.Offset), st.Server)
	}
}

// signedDur is an offset with its sign, to the microsecond.
func signedDur(d time.Duration) string {
	d = d.Round(time.Microsecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// ---- the management network test (dashboard key n) ----

type netTestScreen struct {
	running bool
	results []api.CheckResult
	err     error
	took    time.Duration
}

type netTestMsg struct {
	results []api.CheckResult
	err     error
	took    time.Duration
}

func newNetTest(c *Context) (*netTestScreen, tea.Cmd) {
	client := c.Client
	return &netTestScreen{running: true}, func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		l, err := client.TestNetwork(ctx)
		return netTestMsg{l, err, time.Since(start)}
	}
}

func (s *netTestScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	switch m := msg.(type) {
	case netTestMsg:
		s.running, s.results, s.err, s.took = false, m.results, m.err, m.took
	case tea.KeyMsg:
		switch m.String() {
		case "esc", "q":
			return NewDashboard(c), nil
		case "enter", "n":
			if !s.running {
				return newNetTest(c)
			}
		}
	}
	return s, nil
}

func (s *netTestScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" test the management network", w)) + "\n\n")
	for _, l := range netLines(c, "") {
		b.WriteString("  " + truncate(l, w-2) + "\n")
	}
	b.WriteString("\n")
	switch {
	case s.running:
		b.WriteString(t.Bold.Render("testing"+t.Ellip) + "\n")
	case s.err != nil:
		b.WriteString(t.Error.Render("test failed: "+s.err.Error()) + "\n")
	default:
		for _, r := range s.results {
			mark := t.Good.Render("✓")
			if !r.OK {
				mark = t.Bad.Render("✗")
			}
			b.WriteString(truncate(fmt.Sprintf("%s %-32s %6.3fs  %s", mark, r.Name, r.Took.Seconds(), r.Detail), w) + "\n")
		}
		b.WriteString(t.Dim.Render(fmt.Sprintf("\n%d check(s) in %.1fs", len(s.results), s.took.Seconds())) + "\n")
	}
	return b.String()
}

func (s *netTestScreen) Help(c *Context) []Binding {
	return []Binding{{"enter", "again"}, {"esc", "back"}}
}
