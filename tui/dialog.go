package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"halb/appliance/api"
)

// confirm asks yes or no (or one of a few choices) before an action that
// changes state, then the console password when the node requires one
// (console.require_password).
type confirm struct {
	question string
	choices  []choice
	action   tea.Cmd // the choice made, while the password is asked
	// busy is what the dashboard shows while the action runs.
	busy     string
	asking   bool // the password is being asked
	pw       *TextField
	checking bool
	err      string
}

// choice is one answer of a confirm: its key, what it does (shown as
// "key = label"), and the action (nil: cancel).
type choice struct {
	key, label string
	action     tea.Cmd
	busy       string
}

func newConfirm(question string, action tea.Cmd) *confirm {
	return newChoices(question, choice{"y", "yes", action, question}, choice{"n", "no", nil, ""})
}

// newChoices asks question with answers other than yes and no (esc
// always cancels).
func newChoices(question string, choices ...choice) *confirm {
	return &confirm{question: question, choices: choices, pw: NewText("Console password", "", "", "").Password()}
}

// passwordTimeout bounds a check or change of the console password: halbd
// hashes it with PBKDF2 (600 000 rounds; appliance/daemon/password.go),
// about 0.2 s of a core with SHA instructions, but a hundred times that on
// an emulated machine (the image under QEMU TCG), where a few seconds of
// margin failed a right password.
const passwordTimeout = time.Minute

// typing reports whether the dialog takes text (the console password),
// so that every printable key is the password's: `!` too.
func (d *confirm) typing() bool { return d != nil && d.asking }

// passwordCheckedMsg is the daemon's answer to a password.
type passwordCheckedMsg struct{ err error }

// needsPassword reports whether actions must give the console password.
func needsPassword(c *Context) bool { return c.Auth.Required && c.Auth.PasswordSet }

// noPasswordYet is why actions are refused on a node that requires a
// console password but has none.
func noPasswordYet(c *Context) bool { return c.Auth.Required && !c.Auth.PasswordSet }

// refuseAction says why an action cannot be asked for now ("" when it
// can): the console's settings are not read yet, or a password is
// required and none is set.
func refuseAction(c *Context) string {
	switch {
	case !c.AuthKnown:
		return "one moment: reading this node's console settings"
	case noPasswordYet(c):
		return "set a console password first: p (actions need one on this node)"
	}
	return ""
}

// update handles the dialog's messages; done is set when the dialog ends
// (run is then the action, or nil when cancelled).
func (d *confirm) update(c *Context, msg tea.Msg) (done bool, run tea.Cmd, cmd tea.Cmd) {
	switch m := msg.(type) {
	case passwordCheckedMsg:
		d.checking = false
		switch {
		case m.err == nil:
			return true, d.action, nil
		case errors.Is(m.err, api.ErrUnauthorized):
			d.err = "wrong password"
		default:
			var se *api.StatusError
			if errors.As(m.err, &se) && se.Code == http.StatusTooManyRequests {
				d.err = fmt.Sprintf("too many wrong passwords: try again in %s", se.RetryAfter.Round(time.Second))
			} else {
				d.err = m.err.Error()
			}
		}
		d.pw.SetValue("")
		return false, nil, nil
	case tea.KeyMsg:
		if d.checking {
			return false, nil, nil
		}
		if !d.asking {
			if m.String() == "esc" {
				return true, nil, nil
			}
			for _, ch := range d.choices {
				if !strings.EqualFold(m.String(), ch.key) {
					continue
				}
				if ch.action == nil {
					return true, nil, nil
				}
				d.action, d.busy = ch.action, ch.busy
				if !needsPassword(c) {
					return true, d.action, nil
				}
				d.asking = true
				return false, nil, d.pw.Focus()
			}
			return false, nil, nil
		}
		switch m.String() {
		case "esc":
			return true, nil, nil
		case "enter":
			d.checking, d.err = true, ""
			client, pw := c.Client, d.pw.Value()
			return false, nil, func() tea.Msg {
				ctx, cancel := context.WithTimeout(context.Background(), passwordTimeout)
				defer cancel()
				return passwordCheckedMsg{client.CheckConsolePassword(ctx, pw)}
			}
		}
		_, cmd := d.pw.Update(m)
		return false, nil, cmd
	}
	return false, nil, nil
}

func (d *confirm) view(t *Theme, w int) string {
	var b strings.Builder
	b.WriteString(ansi.Wordwrap(d.question, max(w-4, 20), " ") + "\n\n")
	switch {
	case !d.asking:
		var answers []string
		for _, ch := range d.choices {
			answers = append(answers, ch.key+" = "+ch.label)
		}
		sep := ", "
		if len(d.choices) > 2 {
			sep = "\n"
		}
		if !d.cancels() {
			answers = append(answers, "esc = cancel")
		}
		b.WriteString(strings.Join(answers, sep))
	default:
		b.WriteString("Console password: " + d.pw.in.View() + "\n")
		if d.checking {
			b.WriteString("checking" + t.Ellip)
		} else if d.err != "" {
			b.WriteString(t.Error.Render(d.err))
		} else {
			b.WriteString(t.Dim.Render("enter = go on, esc = cancel"))
		}
	}
	return t.Dialog.Render(b.String())
}

func (d *confirm) help() []Binding {
	if d.asking {
		return []Binding{{"enter", "check the password"}, {"esc", "cancel"}}
	}
	var keys []Binding
	for _, ch := range d.choices {
		keys = append(keys, Binding{ch.key, ch.label})
	}
	if !d.cancels() {
		keys = append(keys, Binding{"esc", "cancel"})
	}
	return keys
}

// cancels reports whether one of the choices is "no".
func (d *confirm) cancels() bool {
	return slices.ContainsFunc(d.choices, func(ch choice) bool { return ch.action == nil })
}
