package tui

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
	"halb/appliance/vrrp"
)

// Dashboard is the configured node's screen: the VRRP state and alarms in
// the header, services with their servers, the event stream, and the
// actions.
type Dashboard struct {
	// focus is the panel the arrows move in: 0 services, 1 events.
	focus int
	// sel is the selected row of the services panel; top the first row
	// shown of each panel.
	sel      int
	top      [2]int
	dialog   *confirm
	flash    string
	flashErr bool
	busy     string // an action in flight
}

// NewDashboard returns the dashboard.
func NewDashboard(c *Context) *Dashboard { return &Dashboard{} }

// startFailoverMsg opens the failover test after its confirmation.
type startFailoverMsg struct{}

// actionDoneMsg reports an action's result.
type actionDoneMsg struct {
	what string
	err  error
}

// act runs an API call as a command and reports it.
func act(what string, f func(ctx context.Context) error) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return actionDoneMsg{what, f(ctx)}
	}
}

// row is one line of the services panel.
type row struct {
	service, backend, server string // server "" for a service row
	drained                  bool
}

func (d *Dashboard) rows(c *Context) []row {
	var out []row
	for _, s := range c.Services {
		out = append(out, row{service: s.Name})
		for _, be := range s.Backends {
			for _, sv := range be.Servers {
				out = append(out, row{service: s.Name, backend: be.Name, server: sv.Name, drained: sv.Drained})
			}
		}
	}
	return out
}

func (d *Dashboard) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	switch m := msg.(type) {
	case actionDoneMsg:
		d.busy = ""
		if m.err != nil {
			d.flash, d.flashErr = m.what+" failed: "+m.err.Error(), true
		} else {
			d.flash, d.flashErr = m.what+": done", false
		}
		return d, nil
	case wizardConfigMsg:
		if m.err != nil {
			d.flash, d.flashErr = "cannot read the running config: "+m.err.Error(), true
			return d, nil
		}
		w := NewWizard(c, m.draft)
		return w, w.Init(c)
	case showPairingMsg:
		d.busy = ""
		s := newPairingScreen(c, false)
		return s, s.Init(c)
	case startFailoverMsg:
		d.busy = ""
		f, cmd := newFailoverTest(c)
		return f, cmd
	case historyMsg:
		if m.err != nil {
			d.flash, d.flashErr = "cannot read the config history: "+m.err.Error(), true
			return d, nil
		}
		return &historyScreen{entries: m.entries}, nil
	case editConfigMsg:
		if m.err != nil {
			d.flash, d.flashErr = "cannot read the running config: "+m.err.Error(), true
			return d, nil
		}
		return newEditMenu(m.draft), nil
	}
	if d.dialog != nil {
		switch msg.(type) {
		case tea.KeyMsg, passwordCheckedMsg:
			done, run, cmd := d.dialog.update(c, msg)
			if !done {
				return d, cmd
			}
			if run == nil {
				d.flash, d.flashErr = "cancelled", false
			} else {
				d.busy = d.dialog.busy
			}
			d.dialog = nil
			return d, run
		}
		return d, nil
	}
	if k, ok := msg.(tea.KeyMsg); ok {
		return d.key(c, k)
	}
	return d, nil
}

// ask puts a question (and the console password, when required) before an
// action.
func (d *Dashboard) ask(c *Context, question string, action tea.Cmd) {
	if why := refuseAction(c); why != "" {
		d.flash, d.flashErr = why, true
		return
	}
	d.dialog = newConfirm(question, action)
}

func (d *Dashboard) key(c *Context, k tea.KeyMsg) (Screen, tea.Cmd) {
	rows := d.rows(c)
	if pendingChange(c) != nil {
		switch k.String() {
		case "y":
			return d, act("keep the new settings", func(ctx context.Context) error { return c.Client.Confirm(ctx) })
		case "n":
			return d, act("revert", func(ctx context.Context) error { return c.Client.RevertNow(ctx) })
		}
	}
	switch k.String() {
	case "tab":
		d.focus = 1 - d.focus
	case "down", "j":
		if d.focus == 0 {
			d.sel = min(d.sel+1, max(len(rows)-1, 0))
		} else {
			d.top[1] = min(d.top[1]+1, max(len(c.Events)-1, 0))
		}
	case "up", "k":
		if d.focus == 0 {
			d.sel = max(d.sel-1, 0)
		} else {
			d.top[1] = max(d.top[1]-1, 0)
		}
	case "pgdown":
		d.top[1] = min(d.top[1]+10, max(len(c.Events)-1, 0))
	case "pgup":
		d.top[1] = max(d.top[1]-10, 0)
	case "h":
		if len(c.VRRP) == 0 {
			d.flash, d.flashErr = "no VRRP instance to hand over", true
			return d, nil
		}
		d.ask(c, "Hand the VIPs over to the peer now?",
			act("hand over", func(ctx context.Context) error { return c.Client.Handover(ctx) }))
	case "m":
		on := c.Status == nil || !c.Status.Node.Maintenance
		q := "Turn maintenance ON (this node gives up its VIPs and keeps none)?"
		if !on {
			q = "Turn maintenance OFF (this node takes part in VRRP again)?"
		}
		d.ask(c, q, act(fmt.Sprintf("maintenance %s", onOff(on)),
			func(ctx context.Context) error { return c.Client.SetMaintenance(ctx, on) }))
	case "d":
		if d.sel >= len(rows) || rows[d.sel].server == "" {
			d.flash, d.flashErr = "select a server (up/down) to drain or make ready", true
			return d, nil
		}
		r := rows[d.sel]
		key := r.backend + "/" + r.server
		drain := !r.drained
		verb := "Drain"
		if !drain {
			verb = "Make ready"
		}
		d.ask(c, fmt.Sprintf("%s %s?", verb, key), act(strings.ToLower(verb)+" "+key,
			func(ctx context.Context) error { _, err := c.Client.DrainServer(ctx, key, drain); return err }))
	case "w":
		return d, loadForWizard(c)
	case "e":
		return d, loadForEdit(c)
	case "t":
		if len(c.VRRP) == 0 {
			d.flash, d.flashErr = "no VRRP instance: nothing to fail over", true
			return d, nil
		}
		d.ask(c, "Test failover: hand the VIPs to the peer and take them back?",
			func() tea.Msg { return startFailoverMsg{} })
	case "r":
		return d, loadHistory(c)
	case "p":
		s := newPasswordScreen(c)
		return s, s.Init(c)
	case "n":
		s, cmd := newNetTest(c)
		return s, cmd
	case "?":
		return &keysScreen{back: d}, nil
	case "x":
		return newSystemScreen(), nil
	case "P":
		d.pairKey(c)
	case "J":
		if c.Peer == nil {
			d.flash, d.flashErr = "this halbd runs no peer component", true
			return d, nil
		}
		s := newJoinScreen(c, PeerPlan{}, false)
		return s, s.Init(c)
	case "U":
		d.unpairKey(c)
	case "C":
		d.conflictKey(c)
	}
	return d, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// wizardConfigMsg carries the running config for the wizard.
type wizardConfigMsg struct {
	draft *Draft
	err   error
}

func loadForWizard(c *Context) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, err := client.Config(ctx)
		if err != nil {
			return wizardConfigMsg{err: err}
		}
		d, err := DraftOf(raw)
		return wizardConfigMsg{draft: d, err: err}
	}
}

// Typing: a dialog asks for the console password.
func (d *Dashboard) Typing() bool { return d.dialog.typing() }

func (d *Dashboard) Help(c *Context) []Binding {
	if d.dialog != nil {
		return d.dialog.help()
	}
	if pendingChange(c) != nil {
		return []Binding{{"y", "keep settings"}, {"n", "revert now"}, {"?", "keys"}}
	}
	return []Binding{{"h", "handover"}, {"m", "maint"}, {"d", "drain"}, {"e", "edit"}, {"t", "failover"},
		{"r", "rollback"}, {"x", "system"}, {"?", "keys"}}
}

func (d *Dashboard) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	// Header: node, VRRP instances, alarms.
	name := "(unconfigured)"
	if c.Status != nil && c.Status.Node.Name != "" {
		name = c.Status.Node.Name
	}
	clock := ""
	if !c.StatusAt.IsZero() {
		clock = c.StatusAt.Format("15:04:05")
	}
	left := " halb " + name
	b.WriteString(t.Title.Render(left+strings.Repeat(" ", max(w-len(left)-len(clock)-1, 1))+clock+" ") + "\n")
	for _, line := range d.vrrpLines(c, w) {
		b.WriteString(line + "\n")
	}
	if line := mgmtLine(c); line != "" {
		b.WriteString(truncate(line, w) + "\n")
	}
	if line := statsLine(c); line != "" {
		b.WriteString(truncate(line, w) + "\n")
	}
	for _, line := range peerLines(c, w) {
		b.WriteString(line + "\n")
	}
	for _, line := range bgpLines(c, w) {
		b.WriteString(line + "\n")
	}
	for _, line := range d.alarmLines(c, w) {
		b.WriteString(line + "\n")
	}
	if p := pendingChange(c); p != nil {
		left := p.Deadline.Sub(c.Opts.Now())
		b.WriteString("\n" + t.Bad.Render(truncate(fmt.Sprintf(" Keep the new settings? Config version %d reverts to version %d in %s.",
			p.Version, p.RevertTo, shortDur(left)), w)) + "\n")
		b.WriteString(t.Bold.Render("  y keep them   n revert now") + "\n")
	}

	if d.dialog != nil {
		b.WriteString("\n" + d.dialog.view(t, w) + "\n")
		return b.String()
	}
	used := strings.Count(b.String(), "\n")
	flash := ""
	switch {
	case d.busy != "":
		flash = d.busy + " " + t.Ellip
	case d.flash != "":
		flash = d.flash
		if d.flashErr {
			flash = t.Error.Render(flash)
		}
	}
	rest := h - used - 1 // the flash line
	svcH := max(rest/2+rest%2, 4)
	evH := max(rest-svcH, 2)
	b.WriteString(d.servicesPanel(c, w, svcH))
	b.WriteString(d.eventsPanel(c, w, evH))
	b.WriteString(flash)
	return b.String()
}

// stateLabel is a VRRP state in text, coloured.
func stateLabel(t *Theme, s vrrp.State) string {
	txt := s.String()
	switch s {
	case vrrp.StateMaster:
		return t.Good.Render(txt)
	case vrrp.StateFault:
		return t.Bad.Render(txt)
	}
	return t.Bold.Render(txt)
}

func (d *Dashboard) vrrpLines(c *Context, w int) []string {
	t := c.Theme
	if len(c.VRRP) == 0 {
		return []string{t.Dim.Render("VRRP: no instance (the services listen without a VIP)")}
	}
	var lines []string
	for _, in := range c.VRRP {
		prio := fmt.Sprintf("prio %d", in.EffectivePriority)
		if in.EffectivePriority != in.Priority {
			prio = fmt.Sprintf("prio %d (of %d)", in.EffectivePriority, in.Priority)
		}
		line := fmt.Sprintf("%s %s %s VRID %d on %s  VIPs %s", in.Name, stateLabel(t, in.State), prio, in.VRID,
			in.Interface, strings.Join(in.VIPs, " "))
		if in.State == vrrp.StateBackup && in.Master != "" {
			line += "  master " + in.Master
		}
		lines = append(lines, truncate(line, w))
	}
	return lines
}

// alarms lists what needs an operator: FAULT, services without healthy
// servers, a rejected config, maintenance.
func alarms(c *Context) []string {
	var out []string
	if c.Status != nil {
		if c.Status.Node.Maintenance {
			out = append(out, "MAINTENANCE on")
		}
		if le := c.Status.Config.LastError; le != nil {
			out = append(out, fmt.Sprintf("config rejected (%d problem(s))", len(le.Errors)))
		}
		if p := c.Status.Config.Pending; p != nil {
			out = append(out, fmt.Sprintf("config version %d awaits confirmation", p.Version))
		}
	}
	if n := c.Network; n != nil {
		if n.Error != "" {
			out = append(out, "network: "+n.Error)
		}
		for _, in := range n.Interfaces {
			if n.Mode != "first-boot" && !in.Carrier {
				out = append(out, "management link "+in.Name+" down")
			}
			if in.Lease != nil && in.Lease.Address == "" && n.Mode != "first-boot" {
				out = append(out, "no DHCP lease on "+in.Name)
			}
		}
	}
	if c.Time != nil && c.Time.Alarm != "" {
		out = append(out, "clock: "+c.Time.Alarm)
	}
	if c.Peer != nil {
		out = append(out, c.Peer.Alarms...)
	}
	out = append(out, bgpAlarms(c)...)
	for _, in := range c.VRRP {
		if in.State == vrrp.StateFault {
			why := strings.Join(in.FaultReasons, ", ")
			if why == "" {
				why = in.Error
			}
			out = append(out, fmt.Sprintf("%s FAULT (%s)", in.Name, why))
		}
	}
	for _, s := range c.Services {
		if s.Error != "" {
			out = append(out, fmt.Sprintf("%s: %s", s.Name, s.Error))
		}
		up, n := 0, 0
		for _, be := range s.Backends {
			for _, sv := range be.Servers {
				n++
				if sv.Up && !sv.Drained {
					up++
				}
			}
		}
		if up == 0 {
			out = append(out, fmt.Sprintf("%s: no healthy server", s.Name))
		}
	}
	return out
}

// alarmLines are the alarms: the node's on one line, then one line for
// each TLS certificate that needs renewing or did not load (at most
// maxTLSAlarmLines, then how many more).
func (d *Dashboard) alarmLines(c *Context, w int) []string {
	a, ta := alarms(c), tlsAlarms(c)
	if len(a) == 0 && len(ta) == 0 {
		return []string{c.Theme.Dim.Render("alarms: none")}
	}
	var lines []string
	if len(a) > 0 {
		lines = append(lines, "ALARM: "+strings.Join(a, "; "))
	}
	for i, x := range ta {
		if i == maxTLSAlarmLines && len(ta) > i+1 {
			lines = append(lines, fmt.Sprintf("ALARM: tls: %d more certificates expire soon or are not loaded (halbctl status)", len(ta)-i))
			break
		}
		lines = append(lines, "ALARM: "+x)
	}
	for i, l := range lines {
		lines[i] = c.Theme.Bad.Render(truncate(l, w))
	}
	return lines
}

// maxTLSAlarmLines is how many certificates get a line of their own.
const maxTLSAlarmLines = 3

// tlsAlarms are the TLS certificates that expire within 14 days (or have
// expired) or could not be loaded, as the proxy reports them:
// "tls: certificate www of service web expires 2026-12-12 (in 7 days)".
func tlsAlarms(c *Context) []string {
	var out []string
	now := c.Opts.Now()
	for _, s := range c.Services {
		if s.TLS == nil {
			continue
		}
		for _, cert := range s.TLS.Certificates {
			what := fmt.Sprintf("tls: certificate %s of service %s ", cert.Name, s.Name)
			days := int(cert.NotAfter.Sub(now).Hours() / 24)
			date := cert.NotAfter.UTC().Format(time.DateOnly)
			switch {
			case cert.Error != "":
				out = append(out, what+"NOT LOADED: "+cert.Error)
			case !cert.NotAfter.After(now):
				out = append(out, what+fmt.Sprintf("EXPIRED %s (%d days ago)", date, -days))
			case cert.ExpiresSoon:
				out = append(out, what+fmt.Sprintf("expires %s (in %d days)", date, days))
			}
		}
	}
	return out
}

// modeLabel is a service's mode as the console lists it: "https" or
// "tls" for a service that terminates TLS, "sni" for a tcp service that
// routes by server name, else its mode.
func modeLabel(s ServiceStatus) string {
	switch {
	case s.TLS != nil && s.Mode == "http":
		return "https"
	case s.TLS != nil:
		return "tls"
	case s.Stats.SNI != nil:
		return "sni"
	}
	return s.Mode
}

// backendTLSMark marks the servers of a backend whose TLS does not
// verify them ("noverify") or could not be set up ("tls-error"); "" for
// plain TCP and verify full.
func backendTLSMark(t *Theme, tls string) string {
	switch {
	case strings.HasPrefix(tls, "verify NONE"):
		return t.Warn.Render("noverify") + " "
	case strings.HasPrefix(tls, "ERROR"):
		return t.Bad.Render("tls-error") + " "
	}
	return ""
}

// serverHealth finds a server's check state.
func serverHealth(c *Context, backend, server string) (ServerHealth, bool) {
	for _, b := range c.Health {
		if b.Name != backend {
			continue
		}
		for _, s := range b.Servers {
			if s.Name == server {
				return s, true
			}
		}
	}
	return ServerHealth{}, false
}

func (d *Dashboard) servicesPanel(c *Context, w, h int) string {
	t := c.Theme
	widths := []int{30, 7, 14, 6, 7}
	head := columns(widths, "SERVICE / SERVER", "STATE", "CHECK", "CONN", "REQ/S", "LAST MINUTE")
	marker := " "
	if d.focus == 0 {
		marker = t.Cursor
	}
	lines := []string{marker + t.Section.Render(truncate(head, w-1))}
	rows := d.rows(c)
	if len(rows) == 0 {
		lines = append(lines, t.Dim.Render(" no services"))
	}
	d.sel = min(d.sel, max(len(rows)-1, 0))
	room := h - 1
	if d.sel < d.top[0] {
		d.top[0] = d.sel
	}
	if d.sel >= d.top[0]+room {
		d.top[0] = d.sel - room + 1
	}
	sparkW := max(w-1-sum(widths), 5)
	for i := d.top[0]; i < len(rows) && i < d.top[0]+room; i++ {
		r := rows[i]
		var line string
		if r.server == "" {
			line = d.serviceRow(c, r.service, widths, sparkW)
		} else {
			line = d.serverRow(c, r, widths)
		}
		lead := " "
		if i == d.sel && d.focus == 0 {
			// The mark tells the selection where reverse video does not
			// show (a vt100).
			lead = t.Cursor
			line = t.Selected.Render(pad(line, w-1))
		}
		lines = append(lines, lead+line)
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n") + "\n"
}

// resample fits a minute of samples (oldest first) into n cells: each
// cell the mean of the samples it covers; fewer samples than cells are
// shown as they are.
func resample(xs []float64, n int) []float64 {
	if len(xs) <= n {
		return xs
	}
	out := make([]float64, n)
	for i := range n {
		lo, hi := i*len(xs)/n, (i+1)*len(xs)/n
		s := 0.0
		for _, x := range xs[lo:hi] {
			s += x
		}
		out[i] = s / float64(hi-lo)
	}
	return out
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func (d *Dashboard) serviceRow(c *Context, name string, widths []int, sparkW int) string {
	t := c.Theme
	for _, s := range c.Services {
		if s.Name != name {
			continue
		}
		listen := strings.Join(s.Listen, ",")
		state := "OK"
		up := 0
		for _, be := range s.Backends {
			for _, sv := range be.Servers {
				if sv.Up && !sv.Drained {
					up++
				}
			}
		}
		switch {
		case s.Error != "":
			state = t.Bad.Render("ERROR")
		case up == 0:
			state = t.Bad.Render("DOWN")
		default:
			state = t.Good.Render("OK")
		}
		errs := s.Stats.BadRequests + s.Stats.ServerErrors + s.Stats.Timeouts + s.Stats.NoServer
		return columns(widths, s.Name+" "+modeLabel(s)+" "+listen, state, fmt.Sprintf("%d up, %d err", up, errs),
			fmt.Sprint(s.Stats.ActiveConnections), fmt.Sprintf("%.1f", c.Rates.Now(name)),
			t.spark(resample(c.Rates.Series(name), sparkW)))
	}
	return name
}

func (d *Dashboard) serverRow(c *Context, r row, widths []int) string {
	t := c.Theme
	for _, s := range c.Services {
		for _, be := range s.Backends {
			if be.Name != r.backend {
				continue
			}
			for _, sv := range be.Servers {
				if sv.Name != r.server {
					continue
				}
				state := t.Good.Render("UP")
				switch {
				case sv.Disabled:
					state = t.Dim.Render("MAINT")
				case sv.Drained:
					state = t.Warn.Render("DRAIN")
				case !sv.Up:
					state = t.Bad.Render("DOWN")
				}
				check := "-"
				if h, ok := serverHealth(c, r.backend, r.server); ok {
					switch {
					case h.State == "unchecked", h.State == "disabled":
						check = h.State
					case h.LastError != "":
						check = h.LastError
					case h.Checks > 0:
						check = fmt.Sprintf("%.1fms", h.LatencyMS)
					}
				}
				if sv.SlowStartPct > 0 {
					check += fmt.Sprintf(" slow %d%%", sv.SlowStartPct)
				}
				name := "  " + r.server + " "
				if sv.Backup {
					name += t.Dim.Render("backup") + " "
				}
				return columns(widths, name+backendTLSMark(t, be.TLS)+sv.Address, state, check,
					fmt.Sprint(sv.Active), "", fmt.Sprintf("%d req, %d err", sv.Total, sv.ConnectErrors))
			}
		}
	}
	return r.server
}

func (d *Dashboard) eventsPanel(c *Context, w, h int) string {
	t := c.Theme
	marker := " "
	if d.focus == 1 {
		marker = t.Cursor
	}
	lines := []string{marker + t.Section.Render("EVENTS, newest first")}
	if len(c.Events) == 0 {
		lines = append(lines, t.Dim.Render(" none yet"))
	}
	d.top[1] = min(d.top[1], max(len(c.Events)-1, 0))
	for i := d.top[1]; i < len(c.Events) && len(lines) < h; i++ {
		ev := c.Events[i]
		lines = append(lines, truncate(" "+ev.Time.Local().Format("15:04:05")+" "+ev.Message, w))
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n") + "\n"
}

// pendingChange is the change that awaits the operator's confirmation.
func pendingChange(c *Context) *api.PendingChange {
	if c.Status == nil {
		return nil
	}
	return c.Status.Config.Pending
}

// statsLine is where a browser finds this node's stats page and Prometheus
// its metrics: "stats http://10.0.0.5:8404/stats  metrics /metrics", with
// the management address when the listener is on every address; "" when
// off.
func statsLine(c *Context) string {
	o := c.Observe
	if o == nil || o.Listen == "" {
		return ""
	}
	if o.Listening == "" {
		return "stats: not listening on " + o.Listen + ": " + o.Error
	}
	host, port, err := net.SplitHostPort(o.Listening)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = ""
		if n := c.Network; n != nil {
			for _, in := range n.Interfaces {
				addrs := in.Managed
				if in.Lease != nil && in.Lease.Address != "" {
					addrs = []string{in.Lease.Address}
				}
				if len(addrs) > 0 {
					host, _, _ = strings.Cut(addrs[0], "/")
					break
				}
			}
		}
		if host == "" {
			return "stats on port " + port + " of every address but the VIPs: /stats, /metrics"
		}
	}
	return "stats http://" + net.JoinHostPort(host, port) + "/stats  metrics /metrics"
}

// mgmtLine is the dashboard's line for the management network and the
// clock: "mgmt eth0 10.0.0.5/24 dhcp, renew 29m0s  gw 10.0.0.1  clock
// +1.2ms" (the server is on the Time screens: the line must fit 80
// columns).
func mgmtLine(c *Context) string {
	var parts []string
	if n := c.Network; n != nil && n.Mode != "unmanaged" {
		for _, in := range n.Interfaces {
			p := "mgmt " + in.Name + " "
			switch {
			case in.Lease != nil && in.Lease.Address != "":
				p += in.Lease.Address + " dhcp, renew " + shortDur(in.Lease.T1.Sub(c.Opts.Now()))
			case in.Lease != nil:
				p += "dhcp " + in.Lease.State
			case len(in.Managed) > 0:
				p += strings.Join(in.Managed, " ") + " static"
			default:
				p += "no address"
			}
			parts = append(parts, p)
		}
		if n.Gateway != "" {
			parts = append(parts, "gw "+n.Gateway)
		}
	}
	if t := c.Time; t != nil {
		switch {
		case t.Synchronized:
			parts = append(parts, "clock "+signedDur(t.Offset))
		case len(t.Servers) == 0:
			parts = append(parts, "clock: no time server")
		default:
			parts = append(parts, "clock not synchronised")
		}
	}
	return strings.Join(parts, "  ")
}
