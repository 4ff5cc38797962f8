package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// Field is one input of a Form.
type Field interface {
	Label() string
	// Update takes a key while the field has the focus; it reports
	// whether the field used it (else the form does: move, submit).
	Update(k tea.KeyMsg) (bool, tea.Cmd)
	// Lines draws the field (without its label) at width w.
	Lines(t *Theme, focused bool, w int) []string
	Focus() tea.Cmd
	Blur()
	// SetError puts a message under the field; "" clears it. index is the
	// list entry it is about (-1: the field as a whole).
	SetError(index int, msg string)
	ClearErrors()
	Errors() []string
	// Hint is a line of help shown while the field has the focus.
	Hint() string
}

// Form is a column of fields with a focus: tab, down and enter move to the
// next field, shift+tab and up to the previous; enter on the last field
// submits.
type Form struct {
	Fields []Field
	focus  int
}

// NewForm returns a form with the focus on its first field.
func NewForm(fields ...Field) *Form {
	f := &Form{Fields: fields}
	if len(fields) > 0 {
		fields[0].Focus()
	}
	return f
}

// Focused is the index of the focused field.
func (f *Form) Focused() int { return f.focus }

// FocusOn moves the focus to field i.
func (f *Form) FocusOn(i int) tea.Cmd {
	if i < 0 || i >= len(f.Fields) {
		return nil
	}
	f.Fields[f.focus].Blur()
	f.focus = i
	return f.Fields[i].Focus()
}

// Update handles a key; submit is true when enter left the last field.
func (f *Form) Update(msg tea.Msg) (submit bool, cmd tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok || len(f.Fields) == 0 {
		return false, nil
	}
	if !visible(f.Fields[f.focus]) {
		f.FocusOn(f.step(f.focus, 1))
	}
	if used, cmd := f.Fields[f.focus].Update(k); used {
		return false, cmd
	}
	switch k.String() {
	case "tab", "down":
		return false, f.FocusOn(f.step(f.focus, 1))
	case "shift+tab", "up":
		return false, f.FocusOn(f.step(f.focus, -1))
	case "enter":
		next := f.step(f.focus, 1)
		if next == f.focus {
			return true, nil
		}
		return false, f.FocusOn(next)
	}
	return false, nil
}

// step returns the next visible field from i in direction d (i itself at
// either end).
func (f *Form) step(i, d int) int {
	for j := i + d; j >= 0 && j < len(f.Fields); j += d {
		if visible(f.Fields[j]) {
			return j
		}
	}
	return i
}

// When makes a field shown (and focusable) only while cond holds.
func When(f Field, cond func() bool) Field { return &conditional{Field: f, cond: cond} }

type conditional struct {
	Field
	cond func() bool
}

func visible(f Field) bool {
	c, ok := f.(*conditional)
	return !ok || c.cond()
}

// View draws the fields, each as "label  value" with its errors below.
func (f *Form) View(t *Theme, w int) string {
	labelW := 0
	for _, fl := range f.Fields {
		labelW = max(labelW, len(fl.Label()))
	}
	labelW += 2
	var b strings.Builder
	for i, fl := range f.Fields {
		if !visible(fl) {
			continue
		}
		focused := i == f.focus
		mark := "  "
		if focused {
			mark = t.Cursor + " "
		}
		lines := fl.Lines(t, focused, max(w-labelW-2, 10))
		for j, l := range lines {
			label := ""
			if j == 0 {
				label = fl.Label()
			}
			lead := mark
			if j > 0 {
				lead = "  "
			}
			b.WriteString(lead + pad(label, labelW) + l + "\n")
		}
		for _, e := range fl.Errors() {
			for _, l := range strings.Split(ansi.Wordwrap("! "+e, max(w-labelW-2, 20), " "), "\n") {
				b.WriteString(strings.Repeat(" ", labelW+2) + t.Error.Render(l) + "\n")
			}
		}
	}
	if h := f.Fields[f.focus].Hint(); h != "" && len(f.Fields) > 0 {
		b.WriteString("\n")
		for _, l := range strings.Split(ansi.Wordwrap(h, w, " "), "\n") {
			b.WriteString(t.Dim.Render(l) + "\n")
		}
	}
	return b.String()
}

// errs holds a field's messages.
type errs struct{ msgs []string }

func (e *errs) SetError(_ int, msg string) {
	if msg != "" {
		e.msgs = append(e.msgs, msg)
	}
}
func (e *errs) ClearErrors()     { e.msgs = nil }
func (e *errs) Errors() []string { return e.msgs }

// TextField is a one-line text input.
type TextField struct {
	errs
	label, hint string
	in          textinput.Model
}

// NewText returns a text field with a value and a placeholder.
func NewText(label, value, placeholder, hint string) *TextField {
	in := textinput.New()
	in.Prompt = ""
	in.Placeholder = example(placeholder)
	in.SetValue(value)
	in.CharLimit = 256
	return &TextField{label: label, hint: hint, in: in}
}

// example is how a placeholder shows: plainly not a value, on terminals
// that show no faint text too.
func example(p string) string {
	if p == "" || strings.HasPrefix(p, "(") {
		return p
	}
	return "(e.g. " + p + ")"
}

// Password makes the field hide what is typed.
func (f *TextField) Password() *TextField {
	f.in.EchoMode = textinput.EchoPassword
	f.in.EchoCharacter = '*'
	return f
}

func (f *TextField) Label() string { return f.label }
func (f *TextField) Hint() string  { return f.hint }

// Value is the text, spaces around it removed.
func (f *TextField) Value() string { return strings.TrimSpace(f.in.Value()) }

// SetValue replaces the text.
func (f *TextField) SetValue(v string) { f.in.SetValue(v); f.in.CursorEnd() }

func (f *TextField) Focus() tea.Cmd { return f.in.Focus() }
func (f *TextField) Blur()          { f.in.Blur() }

func (f *TextField) Update(k tea.KeyMsg) (bool, tea.Cmd) {
	switch k.String() {
	case "tab", "shift+tab", "up", "down", "enter", "esc", "pgup", "pgdown":
		return false, nil
	}
	var cmd tea.Cmd
	f.in, cmd = f.in.Update(k)
	return true, cmd
}

func (f *TextField) Lines(t *Theme, focused bool, w int) []string {
	f.in.Width = w - 1
	if !focused {
		v := f.in.View()
		if f.in.Value() == "" {
			v = t.Dim.Render(f.in.Placeholder)
		}
		return []string{v}
	}
	return []string{f.in.View()}
}

// Option is one choice of a ChoiceField.
type Option struct{ Value, Label string }

// ChoiceField picks one of a few options with left/right or space.
type ChoiceField struct {
	errs
	label, hint string
	opts        []Option
	i           int
	focused     bool
	// vertical shows one option a line (long labels, such as interfaces)
	vertical bool
	// onChange runs when the choice changes (a form that shows fields
	// only for some choices rebuilds itself).
	onChange func()
}

// NewChoice returns a choice field on the option with value cur.
func NewChoice(label, hint, cur string, opts ...Option) *ChoiceField {
	f := &ChoiceField{label: label, hint: hint, opts: opts}
	for i, o := range opts {
		if o.Value == cur {
			f.i = i
		}
	}
	return f
}

func (f *ChoiceField) Label() string { return f.label }
func (f *ChoiceField) Hint() string {
	if f.hint != "" {
		return f.hint
	}
	return "left/right or space: choose"
}

// Value is the chosen option's value.
func (f *ChoiceField) Value() string {
	if len(f.opts) == 0 {
		return ""
	}
	return f.opts[f.i].Value
}

// Set chooses the option with value v, if there is one.
func (f *ChoiceField) Set(v string) {
	for i, o := range f.opts {
		if o.Value == v {
			f.i = i
		}
	}
}

func (f *ChoiceField) Focus() tea.Cmd { f.focused = true; return nil }
func (f *ChoiceField) Blur()          { f.focused = false }

func (f *ChoiceField) Update(k tea.KeyMsg) (bool, tea.Cmd) {
	n := len(f.opts)
	if n == 0 {
		return false, nil
	}
	old := f.i
	switch k.String() {
	case "left":
		f.i = (f.i + n - 1) % n
	case "right", " ":
		f.i = (f.i + 1) % n
	default:
		// The first letter of an option picks it.
		if r := k.Runes; len(r) == 1 {
			for i := range n {
				j := (f.i + 1 + i) % n
				if strings.HasPrefix(strings.ToLower(f.opts[j].Label), strings.ToLower(string(r))) {
					f.i = j
					break
				}
			}
			if f.i != old && f.onChange != nil {
				f.onChange()
			}
			return true, nil
		}
		return false, nil
	}
	if f.i != old && f.onChange != nil {
		f.onChange()
	}
	return true, nil
}

func (f *ChoiceField) Lines(t *Theme, focused bool, w int) []string {
	if f.vertical {
		if len(f.opts) == 0 {
			return []string{t.Dim.Render("(none)")}
		}
		var lines []string
		for i, o := range f.opts {
			s := "( ) " + o.Label
			if i == f.i {
				s = "(x) " + o.Label
				if focused {
					s = t.Selected.Render(truncate(s, w))
				} else {
					s = t.Bold.Render(truncate(s, w))
				}
			}
			lines = append(lines, truncate(s, w))
		}
		return lines
	}
	var parts []string
	for i, o := range f.opts {
		if i == f.i {
			s := "[x] " + o.Label
			if focused {
				s = t.Selected.Render(s)
			} else {
				s = t.Bold.Render(s)
			}
			parts = append(parts, s)
		} else {
			parts = append(parts, "[ ] "+o.Label)
		}
	}
	// Wrap the options over as many lines as they need.
	var lines []string
	line := ""
	for _, p := range parts {
		if line != "" && len(stripped(line))+2+len(stripped(p)) > w {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += "  "
		}
		line += p
	}
	return append(lines, line)
}

// stripped is text without styling, for measuring.
func stripped(s string) string { return ansi.Strip(s) }

// ListField is a list of one-line entries: enter on the last, filled entry
// adds one; enter on an empty last entry leaves the list; ctrl+d removes
// the entry with the focus.
type ListField struct {
	label, hint, placeholder string
	entries                  []textinput.Model
	i                        int
	focused                  bool
	errs                     map[int][]string
	whole                    []string
}

// NewList returns a list field holding values (one empty entry when none).
func NewList(label, placeholder, hint string, values ...string) *ListField {
	f := &ListField{label: label, hint: hint, placeholder: placeholder}
	for _, v := range values {
		f.add(v)
	}
	if len(f.entries) == 0 {
		f.add("")
	}
	return f
}

func (f *ListField) add(v string) {
	in := textinput.New()
	in.Prompt = ""
	in.Placeholder = example(f.placeholder)
	in.CharLimit = 256
	in.SetValue(v)
	f.entries = append(f.entries, in)
}

func (f *ListField) Label() string { return f.label }
func (f *ListField) Hint() string {
	return strings.TrimSpace(f.hint + "; enter on the last entry adds one, ctrl+d removes one")
}

// Values are the filled entries, in order.
func (f *ListField) Values() []string {
	var out []string
	for _, e := range f.entries {
		if v := strings.TrimSpace(e.Value()); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// entryOf maps an index of Values to its entry.
func (f *ListField) entryOf(i int) int {
	n := -1
	for j, e := range f.entries {
		if strings.TrimSpace(e.Value()) != "" {
			n++
			if n == i {
				return j
			}
		}
	}
	return -1
}

func (f *ListField) Focus() tea.Cmd {
	f.focused = true
	return f.entries[f.i].Focus()
}

func (f *ListField) Blur() {
	f.focused = false
	f.entries[f.i].Blur()
}

func (f *ListField) move(j int) tea.Cmd {
	f.entries[f.i].Blur()
	f.i = j
	return f.entries[j].Focus()
}

func (f *ListField) Update(k tea.KeyMsg) (bool, tea.Cmd) {
	last := f.i == len(f.entries)-1
	cur := strings.TrimSpace(f.entries[f.i].Value())
	switch k.String() {
	case "enter":
		switch {
		case cur != "" && last:
			f.add("")
			return true, f.move(len(f.entries) - 1)
		case cur != "":
			return true, f.move(f.i + 1)
		case last && len(f.entries) > 1:
			// Leave the list; the empty entry goes.
			f.entries = f.entries[:f.i]
			f.i--
			return false, nil
		}
		return false, nil
	case "down":
		if !last {
			return true, f.move(f.i + 1)
		}
		return false, nil
	case "up":
		if f.i > 0 {
			return true, f.move(f.i - 1)
		}
		return false, nil
	case "ctrl+d":
		if len(f.entries) == 1 {
			f.entries[0].SetValue("")
			return true, nil
		}
		f.entries[f.i].Blur()
		f.entries = append(f.entries[:f.i], f.entries[f.i+1:]...)
		f.i = min(f.i, len(f.entries)-1)
		return true, f.entries[f.i].Focus()
	case "tab", "shift+tab", "esc", "pgup", "pgdown":
		return false, nil
	}
	var cmd tea.Cmd
	f.entries[f.i], cmd = f.entries[f.i].Update(k)
	return true, cmd
}

func (f *ListField) Lines(t *Theme, focused bool, w int) []string {
	var out []string
	for j := range f.entries {
		e := &f.entries[j]
		e.Width = w - 5
		mark := fmt.Sprintf("%d. ", j+1)
		v := e.View()
		if !e.Focused() && e.Value() == "" {
			v = t.Dim.Render(e.Placeholder)
		}
		out = append(out, mark+v)
		for _, m := range f.errs[j] {
			for _, l := range strings.Split(ansi.Wordwrap("! "+m, max(w-3, 20), " "), "\n") {
				out = append(out, "   "+t.Error.Render(l))
			}
		}
	}
	return out
}

// SetError puts msg on entry index of Values (-1: on the list).
func (f *ListField) SetError(index int, msg string) {
	if msg == "" {
		return
	}
	if j := f.entryOf(index); index >= 0 && j >= 0 {
		if f.errs == nil {
			f.errs = map[int][]string{}
		}
		f.errs[j] = append(f.errs[j], msg)
		return
	}
	f.whole = append(f.whole, msg)
}

func (f *ListField) ClearErrors() { f.errs, f.whole = nil, nil }

// Errors are the messages about the whole list (entries show their own).
func (f *ListField) Errors() []string { return f.whole }
