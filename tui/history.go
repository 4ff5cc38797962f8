package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
	"halb/appliance/config"
)

// historyScreen lists the configs halbd applied (the last 20): choosing
// one shows what rolling back to it changes, then rolls back after a
// confirmation.
type historyScreen struct {
	entries []api.HistoryEntry
	sel     int
	// the chosen version, its changes against the running config
	version  int
	changes  []config.Change
	loadErr  error
	dialog   *confirm
	busy     bool
	result   string
	problems config.Errors
}

type historyMsg struct {
	entries []api.HistoryEntry
	err     error
}

func loadHistory(c *Context) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := client.History(ctx)
		return historyMsg{l, err}
	}
}

type versionMsg struct {
	version int
	changes []config.Change
	err     error
}

type rolledBackMsg struct {
	version int
	res     api.ApplyResult
	err     error
}

func (s *historyScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	if s.dialog != nil {
		if _, ok := msg.(tea.KeyMsg); ok || isPasswordChecked(msg) {
			done, run, cmd := s.dialog.update(c, msg)
			if done {
				s.dialog = nil
				s.busy = run != nil
				return s, run
			}
			return s, cmd
		}
	}
	switch m := msg.(type) {
	case historyMsg:
		if m.err == nil {
			s.entries = m.entries
		}
	case versionMsg:
		s.version, s.changes, s.loadErr = m.version, m.changes, m.err
	case rolledBackMsg:
		s.busy = false
		if es := config.AsErrors(m.err); es != nil {
			s.problems = es
			return s, nil
		}
		if m.err != nil {
			s.result = "rollback failed: " + m.err.Error()
			return s, nil
		}
		d := NewDashboard(c)
		d.flash = fmt.Sprintf("rolled back to version %d: now version %d, %d change(s)", m.version, m.res.Version, len(m.res.Changes))
		return d, nil
	case tea.KeyMsg:
		switch m.String() {
		case "esc":
			if s.version != 0 {
				s.version, s.changes, s.problems, s.result = 0, nil, nil, ""
				return s, nil
			}
			return NewDashboard(c), nil
		case "down", "j":
			s.sel = min(s.sel+1, max(len(s.entries)-1, 0))
		case "up", "k":
			s.sel = max(s.sel-1, 0)
		case "enter":
			if len(s.entries) == 0 || s.busy {
				return s, nil
			}
			e := s.entries[s.sel]
			if s.version == 0 {
				return s, s.loadVersion(c, e.Version)
			}
			if why := refuseAction(c); why != "" {
				s.result = why
				return s, nil
			}
			v := s.version
			client := c.Client
			s.dialog = newConfirm(fmt.Sprintf("Roll back to version %d?", v), func() tea.Msg {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				res, err := client.Rollback(ctx, v)
				return rolledBackMsg{v, res, err}
			})
		}
	}
	return s, nil
}

func isPasswordChecked(msg tea.Msg) bool {
	_, ok := msg.(passwordCheckedMsg)
	return ok
}

// loadVersion reads a version's YAML and compares it with the running
// config.
func (s *historyScreen) loadVersion(c *Context, v int) tea.Cmd {
	client, running := c.Client, c.Running
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, err := client.HistoryConfig(ctx, v)
		if err != nil {
			return versionMsg{version: v, err: err}
		}
		cfg, err := config.Parse(fmt.Sprintf("version %d", v), raw)
		if err != nil {
			return versionMsg{version: v, err: err}
		}
		return versionMsg{version: v, changes: config.Diff(running, cfg)}
	}
}

func (s *historyScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" config history: the configs halbd applied, newest first", w)) + "\n\n")
	if s.dialog != nil {
		b.WriteString(s.dialog.view(t, w) + "\n")
		return b.String()
	}
	if s.version != 0 {
		b.WriteString(t.Bold.Render(fmt.Sprintf("Rolling back to version %d changes:", s.version)) + "\n")
		switch {
		case s.loadErr != nil:
			b.WriteString(t.Error.Render(s.loadErr.Error()) + "\n")
		case len(s.changes) == 0:
			b.WriteString("  nothing: it is the running config\n")
		}
		for _, ch := range s.changes {
			b.WriteString("  " + ch.String() + "\n")
		}
		for _, p := range s.problems {
			b.WriteString(t.Error.Render("! "+p.Error()) + "\n")
		}
		if s.busy {
			b.WriteString("rolling back" + t.Ellip + "\n")
		}
		if s.result != "" {
			b.WriteString(t.Error.Render(s.result) + "\n")
		}
		return b.String()
	}
	if len(s.entries) == 0 {
		b.WriteString("no config applied yet\n")
	}
	for i, e := range s.entries {
		mark := " "
		if e.Running {
			mark = "*"
		}
		cur := " "
		if i == s.sel {
			cur = t.Cursor
		}
		line := fmt.Sprintf("%s%s %3d  %s  %-8s %s", cur, mark, e.Version, e.Time.Local().Format("2006-01-02 15:04:05"), e.Source, e.Summary)
		if i == s.sel {
			line = t.Selected.Render(pad(line, w))
		}
		b.WriteString(truncate(line, w) + "\n")
	}
	b.WriteString("\n" + t.Dim.Render("* the running config") + "\n")
	return b.String()
}

// Typing: the dialog asks for the console password.
func (s *historyScreen) Typing() bool { return s.dialog.typing() }

func (s *historyScreen) Help(c *Context) []Binding {
	switch {
	case s.dialog != nil:
		return s.dialog.help()
	case s.version != 0:
		return []Binding{{"enter", "roll back"}, {"esc", "back to the list"}}
	}
	return []Binding{{"enter", "show the changes"}, {"up/down", "choose"}, {"esc", "back"}}
}
