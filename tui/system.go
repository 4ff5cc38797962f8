package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
)

// systemScreen is the recovery menu an operator needs without a shell, as
// the console menus of pfSense and OPNsense offer: the interfaces with
// their link state (live, to identify a NIC by plugging its cable), the
// last log lines, an earlier config version, reboot, power off and a
// factory reset.
type systemScreen struct {
	sel    int
	page   string // "", "interfaces", "logs", "reset"
	ifaces []api.Interface
	ifErr  error
	logs   []api.LogRecord
	logErr error
	top    int
	dialog *confirm
	reset  *TextField // the node name, typed to confirm a factory reset
	flash  string
}

var systemItems = []string{
	"interfaces and their link state (plug a cable to identify a NIC)",
	"the daemon's last log lines",
	"restore an earlier config version",
	"reboot",
	"power off",
	"factory reset (removes the config and all state, then reboots)",
}

func newSystemScreen() *systemScreen { return &systemScreen{} }

type logsMsg struct {
	recs []api.LogRecord
	err  error
}

func fetchLogs(c *Context) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := client.Logs(ctx, 500)
		return logsMsg{l, err}
	}
}

// systemAction asks, then runs a system action (refused by the daemon
// unless it runs with -system-actions).
func (s *systemScreen) systemAction(c *Context, question, what string, f func(ctx context.Context) error) {
	if why := refuseAction(c); why != "" {
		s.flash = why
		return
	}
	s.dialog = newConfirm(question, act(what, f))
}

func (s *systemScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	if s.dialog != nil {
		switch msg.(type) {
		case tea.KeyMsg, passwordCheckedMsg:
			done, run, cmd := s.dialog.update(c, msg)
			if !done {
				return s, cmd
			}
			s.dialog = nil
			if run == nil {
				s.flash = "cancelled"
			} else {
				s.flash = "asked halbd" + c.Theme.Ellip
			}
			return s, run
		}
	}
	switch m := msg.(type) {
	case statusMsg:
		switch s.page {
		case "interfaces":
			return s, fetchInterfaces(c)
		case "logs":
			return s, fetchLogs(c)
		}
	case interfacesMsg:
		s.ifaces, s.ifErr = m.list, m.err
	case logsMsg:
		s.logs, s.logErr = m.recs, m.err
	case historyMsg:
		if m.err != nil {
			s.flash = "cannot read the config history: " + m.err.Error()
			return s, nil
		}
		return &historyScreen{entries: m.entries}, nil
	case actionDoneMsg:
		if m.err != nil {
			s.flash = m.what + " failed: " + m.err.Error()
		} else {
			s.flash = m.what + ": halbd is doing it"
		}
	case tea.KeyMsg:
		return s.key(c, m)
	}
	return s, nil
}

func (s *systemScreen) key(c *Context, k tea.KeyMsg) (Screen, tea.Cmd) {
	if s.page == "reset" {
		switch k.String() {
		case "esc":
			s.page = ""
			return s, nil
		case "enter":
			name := s.reset.Value()
			want := ""
			if c.Status != nil {
				want = c.Status.Node.Name
			}
			if name != want {
				s.flash = fmt.Sprintf("the name typed is not this node's (%q): nothing done", want)
				s.page = ""
				return s, nil
			}
			s.page = ""
			s.systemAction(c, "Factory reset "+orUnconfigured(want)+": remove the config, its history and all state, then reboot?",
				"factory reset", func(ctx context.Context) error { return c.Client.FactoryReset(ctx, name) })
			return s, nil
		}
		_, cmd := s.reset.Update(k)
		return s, cmd
	}
	if s.page != "" {
		switch k.String() {
		case "esc":
			s.page = ""
		case "up", "k":
			s.top = max(s.top-1, 0)
		case "down", "j":
			s.top++
		case "pgup":
			s.top = max(s.top-10, 0)
		case "pgdown":
			s.top += 10
		}
		return s, nil
	}
	switch k.String() {
	case "esc":
		return NewDashboard(c), nil
	case "up", "k":
		s.sel = max(s.sel-1, 0)
	case "down", "j":
		s.sel = min(s.sel+1, len(systemItems)-1)
	case "enter":
		s.flash = ""
		switch s.sel {
		case 0:
			s.page = "interfaces"
			return s, fetchInterfaces(c)
		case 1:
			s.page, s.top = "logs", 0
			return s, fetchLogs(c)
		case 2:
			return s, loadHistory(c)
		case 3:
			s.systemAction(c, "Reboot this node now?", "reboot", func(ctx context.Context) error { return c.Client.Reboot(ctx) })
		case 4:
			s.systemAction(c, "Power this node off now?", "power off", func(ctx context.Context) error { return c.Client.Poweroff(ctx) })
		case 5:
			s.page = "reset"
			s.reset = NewText("Node name", "", "", "")
			return s, s.reset.Focus()
		}
	}
	return s, nil
}

func orUnconfigured(name string) string {
	if name == "" {
		return "this unconfigured node"
	}
	return name
}

func (s *systemScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" system", w)) + "\n\n")
	if s.dialog != nil {
		b.WriteString(s.dialog.view(t, w) + "\n")
		return b.String()
	}
	switch s.page {
	case "interfaces":
		b.WriteString(t.Bold.Render("Interfaces (link state read every second)") + "\n")
		if s.ifErr != nil {
			b.WriteString(t.Error.Render(s.ifErr.Error()) + "\n")
		}
		for _, in := range s.ifaces {
			b.WriteString(truncate("  "+describeInterface(in), w) + "\n")
		}
		return b.String()
	case "logs":
		b.WriteString(t.Bold.Render("halbd's last log lines, newest last") + "\n")
		if s.logErr != nil {
			b.WriteString(t.Error.Render(s.logErr.Error()) + "\n")
		}
		room := h - 3
		end := len(s.logs) - s.top
		s.top = max(min(s.top, len(s.logs)-room), 0)
		end = len(s.logs) - s.top
		start := max(end-room, 0)
		for _, r := range s.logs[start:end] {
			line := r.Time.Local().Format("15:04:05") + " " + pad(r.Level, 5) + " " + r.Message
			if r.Attrs != "" {
				line += " " + r.Attrs
			}
			b.WriteString(truncate(line, w) + "\n")
		}
		return b.String()
	case "reset":
		name := ""
		if c.Status != nil {
			name = c.Status.Node.Name
		}
		b.WriteString("A factory reset removes halb.yaml, the config history, the console password and\nall of halb's state, then reboots: the node starts unconfigured.\n\n")
		if name == "" {
			b.WriteString("The node is unconfigured: leave the name empty and press enter to go on.\n\n")
		} else {
			b.WriteString(fmt.Sprintf("Type the node's name (%s) and press enter to go on.\n\n", name))
		}
		b.WriteString("Node name: " + s.reset.in.View() + "\n")
		return b.String()
	}
	enabled := c.Status != nil && c.Status.Node.SystemActions
	for i, it := range systemItems {
		if i >= 3 && !enabled {
			it += " (not enabled on this node: halbd -system-actions)"
		}
		line := "  " + it
		if i == s.sel {
			line = t.Selected.Render(pad(t.Cursor+" "+it, w))
		}
		b.WriteString(truncate(line, w) + "\n")
	}
	if c.Opts.Shell != nil {
		b.WriteString("\n" + t.Dim.Render("! gives a root shell (root's password; none while root is locked)") + "\n")
	}
	if s.flash != "" {
		b.WriteString("\n" + s.flash + "\n")
	}
	return b.String()
}

// Typing: the dialog asks for the console password.
func (s *systemScreen) Typing() bool { return s.dialog.typing() }

func (s *systemScreen) Help(c *Context) []Binding {
	switch {
	case s.dialog != nil:
		return s.dialog.help()
	case s.page == "reset":
		return []Binding{{"enter", "go on"}, {"esc", "back"}}
	case s.page != "":
		return []Binding{{"up/down", "scroll"}, {"esc", "back"}}
	}
	return []Binding{{"enter", "choose"}, {"up/down", "move"}, {"esc", "back"}}
}
