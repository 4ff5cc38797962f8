package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// keysScreen lists every key of the dashboard.
type keysScreen struct{ back Screen }

var dashboardKeys = []Binding{
	{"up/down", "select a row (services) or scroll (events)"},
	{"tab", "switch between the services and the events"},
	{"h", "hand the VIPs over to the peer (make before break)"},
	{"m", "maintenance on/off: keep no VIPs on this node"},
	{"d", "drain the selected server, or make it ready"},
	{"e", "edit VIPs, a service, a backend or a health check"},
	{"t", "test failover: to the peer and back, with the times"},
	{"n", "test the management network: gateway, names, time servers, peers"},
	{"y / n", "keep / revert a management change that awaits confirmation"},
	{"r", "config history: roll back to an earlier version"},
	{"x", "system: interfaces, logs, reboot, power off, factory reset"},
	{"w", "run the setup wizard again"},
	{"p", "set or change the console password"},
	{"P", "pair: show a code for another node to join this one"},
	{"J", "join a node that shows a pairing code"},
	{"U", "unpair a peer"},
	{"C", "resolve a config conflict with the peer: keep mine / take theirs"},
	{"!", "root shell (asks root's password; none while root is locked)"},
}

func (s *keysScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	if _, ok := msg.(tea.KeyMsg); ok {
		return s.back, nil
	}
	return s, nil
}

func (s *keysScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" keys", w)) + "\n\n")
	for _, k := range dashboardKeys {
		b.WriteString("  " + t.Key.Render(pad(k.Key, 9)) + k.Help + "\n")
	}
	return b.String()
}

func (s *keysScreen) Help(c *Context) []Binding { return []Binding{{"any key", "back"}} }
