package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/config"
)

// reviewStep shows what the wizard will apply, as the changes to the
// running config and the whole file, and applies it through the API.
type reviewStep struct {
	raw      []byte
	changes  []config.Change
	problem  error // the draft does not even marshal or parse
	applying bool
	applyErr error
	msgs     []string // refusals no field owns
	offset   int
	first    string // the node name, when this is the node's first config
	password string // the console password to set first
	// confirm: the change touches the running node's management network:
	// it is applied with ConfirmWithin and reverts unless kept.
	confirm bool
	// peer is the wizard's peer plan, carried out once the config is
	// applied.
	peer PeerPlan
	// dialog asks before a change of the running config is applied, and
	// for the console password, as every action that changes the node
	// does. A node's first config is not asked for: its password is set
	// in the same wizard.
	dialog *confirm
}

func newReviewStep() Step { return &reviewStep{} }

func (s *reviewStep) Title() string { return "Review" }

func (s *reviewStep) Load(c *Context, d *Draft) tea.Cmd {
	s.applyErr, s.applying, s.offset, s.dialog = nil, false, 0, nil
	s.password = d.ConsolePassword
	s.peer = d.Peer
	s.raw, s.problem = d.YAML()
	if s.problem != nil {
		return nil
	}
	cfg, err := config.Parse("console", s.raw)
	if err != nil {
		s.problem = err
		return nil
	}
	base := d.Running
	if base == nil {
		// A first config: compare with an empty one that has the same
		// defaults, so that only what the wizard made is listed.
		base, _ = config.Parse("empty", []byte("node: {name: "+cfg.Node.Name+"}\n"))
		s.first = cfg.Node.Name
	}
	s.changes = config.Diff(base, cfg)
	s.confirm = d.Running != nil && touchesManagement(s.changes)
	return nil
}

func (s *reviewStep) Save(d *Draft) int { return 0 }

func (s *reviewStep) ClearErrors() { s.msgs = nil }

// Place takes the refusals without a field path.
func (s *reviewStep) Place(e *config.Error) bool {
	if e.Path != "" {
		return false
	}
	s.msgs = append(s.msgs, e.Error())
	return true
}

type applyDoneMsg struct {
	changes []config.Change
	err     error
	pending bool // applied with a confirmation window
}

func (s *reviewStep) apply(c *Context) tea.Cmd {
	client, raw, pw, confirm := c.Client, s.raw, s.password, s.confirm
	return func() tea.Msg {
		if pw != "" {
			ctx, cancel := context.WithTimeout(context.Background(), passwordTimeout)
			err := client.SetConsolePassword(ctx, pw, "")
			cancel()
			if err != nil {
				return applyDoneMsg{err: fmt.Errorf("console password: %w", err)}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if confirm {
			res, err := client.ApplyConfirmed(ctx, "console", raw, ConfirmWithin)
			return applyDoneMsg{res.Changes, err, err == nil}
		}
		ch, err := client.ApplyConfig(ctx, raw)
		return applyDoneMsg{ch, err, false}
	}
}

// reviewApplyMsg applies the config once the dialog has been answered.
type reviewApplyMsg struct{}

func (s *reviewStep) Update(c *Context, msg tea.Msg) (bool, tea.Cmd) {
	if s.dialog != nil {
		switch msg.(type) {
		case tea.KeyMsg, passwordCheckedMsg:
			done, run, cmd := s.dialog.update(c, msg)
			if done {
				s.dialog = nil
				cmd = run
			}
			return false, cmd
		}
	}
	switch m := msg.(type) {
	case reviewApplyMsg:
		s.applying, s.applyErr = true, nil
		return false, s.apply(c)
	case applyDoneMsg:
		s.applying = false
		if m.err == nil {
			d := NewDashboard(c)
			d.flash = fmt.Sprintf("config applied: %d change(s)", len(m.changes))
			if m.pending {
				d.flash += "; management network changed: keep it (y) or it reverts"
				if s.peer.Mode == "join" || s.peer.Mode == "first" {
					d.flash += "; then pair (P or J)"
				}
				return false, func() tea.Msg { return ShowMsg{Screen: d} }
			}
			// The first config's password was set a moment ago by the
			// person at the console: it is not asked again.
			next := afterApply(c, d, s.peer, s.first != "")
			return false, func() tea.Msg { return ShowMsg{Screen: next} }
		}
		if es := config.AsErrors(m.err); es != nil {
			return false, func() tea.Msg { return applyFailedMsg{es} }
		}
		s.applyErr = m.err
	case tea.KeyMsg:
		switch m.String() {
		case "enter":
			if s.problem != nil || s.applying {
				break
			}
			if s.first != "" {
				s.applying, s.applyErr = true, nil
				return false, s.apply(c)
			}
			if why := refuseAction(c); why != "" {
				s.applyErr = errors.New(why)
				break
			}
			s.dialog = newConfirm("Apply these changes to the running config?", func() tea.Msg { return reviewApplyMsg{} })
		case "down", "j":
			s.offset++
		case "up", "k":
			s.offset = max(s.offset-1, 0)
		case "pgdown", " ":
			s.offset += 10
		case "pgup":
			s.offset = max(s.offset-10, 0)
		}
	}
	return false, nil
}

func (s *reviewStep) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	if s.problem != nil {
		b.WriteString(t.Error.Render("the draft is not a config: "+s.problem.Error()) + "\n")
		return b.String()
	}
	if s.first != "" {
		b.WriteString(t.Section.Render("A first config for "+s.first+" (nothing runs yet)") + "\n")
	} else {
		b.WriteString(t.Section.Render("Changes to the running config") + "\n")
	}
	if len(s.changes) == 0 {
		b.WriteString("  none\n")
	}
	for _, ch := range s.changes {
		sign := "~"
		switch ch.Kind {
		case "added":
			sign = "+"
		case "removed":
			sign = "-"
		}
		b.WriteString("  " + sign + " " + ch.String() + "\n")
	}
	switch s.peer.Mode {
	case "join":
		b.WriteString(t.Bold.Render(fmt.Sprintf("Then this node joins %s with the code %s:", s.peer.target(), s.peer.Code)) + "\n" +
			t.Bold.Render(fmt.Sprintf("services, backends and VIPs come from %s when paired.", s.peer.Address)) + "\n")
	case "first":
		b.WriteString(t.Bold.Render("Then this node shows a pairing code for the other node to type.") + "\n")
	}
	for _, m := range s.msgs {
		b.WriteString(t.Error.Render("! "+m) + "\n")
	}
	if s.dialog != nil {
		b.WriteString("\n" + s.dialog.view(t, w) + "\n")
		return b.String()
	}
	switch {
	case s.applying:
		b.WriteString(t.Bold.Render("applying"+t.Ellip) + "\n")
	case s.applyErr != nil:
		b.WriteString(t.Error.Render("not applied: "+s.applyErr.Error()) + "\n")
	case s.confirm:
		b.WriteString(t.Bold.Render(fmt.Sprintf("The management network changes: keep them within %s after applying,", ConfirmWithin)) + "\n" +
			t.Bold.Render("or the previous settings come back.") + "\n")
	}
	b.WriteString("\n" + t.Section.Render("halb.yaml") + "\n")
	lines := strings.Split(strings.TrimRight(string(s.raw), "\n"), "\n")
	room := h - strings.Count(b.String(), "\n")
	s.offset = min(s.offset, max(len(lines)-room, 0))
	end := min(len(lines), s.offset+max(room, 1))
	for _, l := range lines[s.offset:end] {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

func (s *reviewStep) Help(c *Context) []Binding {
	if s.dialog != nil {
		return s.dialog.help()
	}
	return []Binding{{"enter", "apply"}, {"up/down", "scroll"}}
}

// Typing: the dialog asks for the console password.
func (s *reviewStep) Typing() bool { return s.dialog.typing() }

// modal: the dialog takes esc (it cancels the dialog, not the step).
func (s *reviewStep) modal() bool { return s.dialog != nil }
