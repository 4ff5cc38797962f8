package tui

import (
	"context"
	"errors"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
	"halb/appliance/config"
)

// passwordScreen sets or changes the console admin password.
type passwordScreen struct {
	form           *Form
	old, pw, again *TextField
	busy           bool
	err            string
}

func newPasswordScreen(c *Context) *passwordScreen {
	s := &passwordScreen{
		old:   NewText("Current password", "", "", "the console password set now").Password(),
		pw:    NewText("New password", "", "", "at least 8 characters").Password(),
		again: NewText("Repeat it", "", "", "the same again").Password(),
	}
	if c.Auth.PasswordSet {
		s.form = NewForm(s.old, s.pw, s.again)
	} else {
		s.form = NewForm(s.pw, s.again)
	}
	return s
}

// Init focuses the first field.
func (s *passwordScreen) Init(c *Context) tea.Cmd { return s.form.FocusOn(0) }

type passwordSetMsg struct{ err error }

func setPassword(c *Context, pw, old string) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), passwordTimeout)
		defer cancel()
		return passwordSetMsg{client.SetConsolePassword(ctx, pw, old)}
	}
}

func (s *passwordScreen) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	switch m := msg.(type) {
	case passwordSetMsg:
		s.busy = false
		switch {
		case m.err == nil:
			c.Auth.PasswordSet = true
			d := NewDashboard(c)
			d.flash = "console password set"
			return d, nil
		case errors.Is(m.err, api.ErrUnauthorized):
			s.err = "the current password is wrong"
		default:
			s.err = m.err.Error()
		}
		return s, nil
	case tea.KeyMsg:
		if m.String() == "esc" {
			return NewDashboard(c), nil
		}
		if s.busy {
			return s, nil
		}
		submit, cmd := s.form.Update(m)
		if !submit {
			return s, cmd
		}
		s.err = ""
		if s.pw.in.Value() != s.again.in.Value() {
			s.err = "the two new passwords differ"
			return s, nil
		}
		s.busy = true
		return s, setPassword(c, s.pw.in.Value(), s.old.in.Value())
	}
	return s, nil
}

func (s *passwordScreen) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" console password", w)) + "\n\n")
	b.WriteString("Actions that change this node (handover, maintenance, drain, edits, rollback,\nreboot) ask for it.\n\n")
	b.WriteString(s.form.View(t, w))
	if s.busy {
		b.WriteString("\nsetting" + t.Ellip + "\n")
	}
	if s.err != "" {
		b.WriteString("\n" + t.Error.Render(s.err) + "\n")
	}
	return b.String()
}

// Typing: every field is a password.
func (s *passwordScreen) Typing() bool { return true }

func (s *passwordScreen) Help(c *Context) []Binding {
	return []Binding{{"enter", "next / set"}, {"esc", "cancel"}}
}

// ---- the wizard's step ----

// passwordStep has the setup wizard set the console password (skipped
// when one is set already). The review sets it before it applies the
// config.
type passwordStep struct {
	formStep
	pw, again *TextField
	set       bool // a password is set already
	required  bool
}

func newPasswordStep() Step {
	s := &passwordStep{
		pw:    NewText("Console password", "", "", "asked before every action that changes this node; at least 8 characters").Password(),
		again: NewText("Repeat it", "", "", "the same again").Password(),
	}
	s.form = NewForm(s.pw, s.again)
	return s
}

func (s *passwordStep) Title() string { return "Password" }

func (s *passwordStep) Load(c *Context, d *Draft) tea.Cmd {
	s.set, s.required = c.Auth.PasswordSet, c.Auth.Required
	if s.set {
		return nil
	}
	return s.form.FocusOn(0)
}

// minPassword is the daemon's minimum password length.
const minPassword = 8

func (s *passwordStep) Save(d *Draft) int {
	d.ConsolePassword = ""
	if s.set {
		return 0
	}
	pw := s.pw.in.Value()
	switch {
	case pw == "" && !s.required:
		return 0
	case len(pw) < minPassword:
		s.pw.SetError(-1, "at least 8 characters")
		return 1
	case pw != s.again.in.Value():
		s.again.SetError(-1, "the two passwords differ")
		return 1
	}
	d.ConsolePassword = pw
	return 0
}

func (s *passwordStep) Place(e *config.Error) bool { return false }

func (s *passwordStep) Update(c *Context, msg tea.Msg) (bool, tea.Cmd) {
	if s.set {
		if k, ok := msg.(tea.KeyMsg); ok && k.String() == "enter" {
			return true, nil
		}
		return false, nil
	}
	return s.formStep.Update(c, msg)
}

func (s *passwordStep) View(c *Context, w, h int) string {
	if s.set {
		return "A console password is set; p on the dashboard changes it.\n"
	}
	var b strings.Builder
	if !s.required {
		b.WriteString(c.Theme.Dim.Render("console.require_password is off: a password is optional") + "\n\n")
	}
	b.WriteString(s.form.View(c.Theme, w))
	return b.String()
}
