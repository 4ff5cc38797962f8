package tui

import (
	"fmt"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/config"
)

// Step is one page of the setup wizard. Steps fill the draft from their
// fields (Save), show the daemon's errors on the fields their paths name
// (Place), and are checked before the wizard moves on.
type Step interface {
	Title() string
	// Load fills the fields from the draft when the step is entered.
	Load(c *Context, d *Draft) tea.Cmd
	// Save writes the fields into the draft; it returns how many problems
	// it found itself (a number that is no number), shown on the fields.
	Save(d *Draft) int
	// Place shows e on the field its path names and reports whether the
	// path is this step's.
	Place(e *config.Error) bool
	// ClearErrors removes the messages Place put.
	ClearErrors()
	// Update takes messages while the step is shown; submit moves on.
	Update(c *Context, msg tea.Msg) (submit bool, cmd tea.Cmd)
	View(c *Context, w, h int) string
	Help(c *Context) []Binding
}

// wizardSteps are the setup wizard's steps in order. A later feature adds
// a step here.
var wizardSteps = []func() Step{
	newNodeStep,
	newNetStep,
	newTimeStep,
	newPeerStep,
	newImportStep,
	newVRRPStep,
	newServiceStep,
	newPasswordStep,
	newReviewStep,
}

// Wizard sets a node up: each step is checked (the daemon's own
// validation, messages on the fields) before the next; nothing is applied
// before the review step.
type Wizard struct {
	title string
	draft *Draft
	steps []Step
	i     int
	// note is a line under the step title (e.g. why the wizard went back).
	note string
}

// ApplianceObserveListen is observe.listen in the appliance's first
// config: /metrics and /stats on every address but the VIPs.
const ApplianceObserveListen = ":8404"

// NewWizard starts the setup wizard on a draft of the running config
// (NewDraft when unconfigured).
func NewWizard(c *Context, d *Draft) *Wizard {
	if d == nil {
		d = NewDraft()
	}
	if c.Opts.Appliance && d.Running == nil {
		// The appliance's first config: halbd owns the host name, its
		// files and the clock (a dev machine's are not halbd's), and
		// serves metrics and the stats page on the management address.
		d.Cfg.Node.ManageSystem = true
		d.Cfg.Time.SetClock = true
		d.Cfg.Observe.Listen = ApplianceObserveListen
	}

	var steps []Step
	for _, mk := range wizardSteps {
		steps = append(steps, mk())
	}
	return NewFlow("halb setup", d, steps...)
}

// NewFlow is a sequence of steps on a draft, checked step by step, that
// ends in a review (the last step) which applies it: the setup wizard, and
// the editors of one section.
func NewFlow(title string, d *Draft, steps ...Step) *Wizard {
	if d == nil {
		d = NewDraft()
	}
	return &Wizard{title: title, draft: d, steps: steps}
}

// Init loads the first step; an unconfigured node's wizard asks halbd for
// an import to offer (files a seed disk brought).
func (w *Wizard) Init(c *Context) tea.Cmd {
	load := w.steps[0].Load(c, w.draft)
	if w.draft.Running != nil || !slices.ContainsFunc(w.steps, func(s Step) bool { _, ok := s.(*importStep); return ok }) {
		return load
	}
	return tea.Batch(load, fetchImport(c))
}

func (w *Wizard) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	switch m := msg.(type) {
	case importOfferMsg:
		if m.err == nil {
			w.draft.ImportOffer = &m.res
		}
		return w, nil
	case applyFailedMsg:
		// The daemon refused the config: put each error on its field and
		// go to the first step that has one.
		first := -1
		for i, s := range w.steps {
			s.ClearErrors()
			for _, e := range m.errs {
				if s.Place(e) && first < 0 {
					first = i
				}
			}
		}
		if first >= 0 && first != w.i {
			w.i = first
			w.note = fmt.Sprintf("halbd refused the config: %d problem(s), shown on their fields", len(m.errs))
			return w, nil
		}
	case tea.KeyMsg:
		if m.String() == "esc" && !modal(w.steps[w.i]) {
			if w.i == 0 {
				if w.draft.Running != nil {
					return NewDashboard(c), nil // leave the wizard: nothing applied
				}
				return w, nil
			}
			w.steps[w.i].Save(w.draft)
			w.i = w.step(w.i, -1)
			w.note = ""
			return w, w.steps[w.i].Load(c, w.draft)
		}
	}
	submit, cmd := w.steps[w.i].Update(c, msg)
	if !submit {
		return w, cmd
	}
	return w, tea.Batch(cmd, w.next(c))
}

// next checks the current step and moves on when its fields are right.
func (w *Wizard) next(c *Context) tea.Cmd {
	s := w.steps[w.i]
	s.ClearErrors()
	bad := s.Save(w.draft)
	for _, e := range w.draft.Check() {
		if s.Place(e) {
			bad++
		}
	}
	j := w.step(w.i, 1)
	if bad > 0 || j == w.i {
		return nil
	}
	w.i = j
	w.note = ""
	return w.steps[w.i].Load(c, w.draft)
}

// skipper is a step that the choices made before it leave out (the VRRP
// and Service steps of a node that joins a peer).
type skipper interface{ skipped(d *Draft) bool }

func (w *Wizard) skipped(i int) bool {
	s, ok := w.steps[i].(skipper)
	return ok && s.skipped(w.draft)
}

// step is the next step from i in direction d that is not skipped (i
// itself at either end).
func (w *Wizard) step(i, d int) int {
	for j := i + d; j >= 0 && j < len(w.steps); j += d {
		if !w.skipped(j) {
			return j
		}
	}
	return i
}

func (w *Wizard) View(c *Context, width, height int) string {
	t := c.Theme
	var b strings.Builder
	// The steps that are not skipped, the current one marked.
	var names []string
	n, cur := 0, 0
	for i, s := range w.steps {
		if i != w.i && w.skipped(i) {
			continue
		}
		n++
		name := s.Title()
		if i == w.i {
			cur = n
			name = t.Bold.Render("[" + name + "]")
		}
		names = append(names, name)
	}
	title := fmt.Sprintf(" %s  %d/%d  %s", w.title, cur, n, w.steps[w.i].Title())
	b.WriteString(t.Title.Render(pad(title, width)) + "\n")
	b.WriteString(truncate(strings.Join(names, " > "), width) + "\n")
	if w.note != "" {
		b.WriteString(t.Error.Render(w.note) + "\n")
	}
	b.WriteString("\n")
	used := strings.Count(b.String(), "\n")
	b.WriteString(w.steps[w.i].View(c, width, height-used))
	return b.String()
}

func (w *Wizard) Help(c *Context) []Binding {
	keys := w.steps[w.i].Help(c)
	back := "back"
	if w.i == 0 {
		if w.draft.Running == nil {
			return keys
		}
		back = "leave (nothing applied)"
	}
	return append(keys, Binding{"esc", back})
}

// modal reports whether step s has a dialog open, which takes esc.
func modal(s Step) bool {
	m, ok := s.(interface{ modal() bool })
	return ok && m.modal()
}

// Typing reports whether the focused field (or a step's dialog) takes
// text.
func (w *Wizard) Typing() bool {
	if t, ok := w.steps[w.i].(interface{ Typing() bool }); ok {
		return t.Typing()
	}
	fs, ok := w.steps[w.i].(interface{ focusedField() Field })
	if !ok {
		return false
	}
	switch fs.focusedField().(type) {
	case *ChoiceField:
		return false
	}
	return true
}

// formHelp is the help line of a step that is a form.
func formHelp(last bool) []Binding {
	enter := "next field"
	if last {
		enter = "next step"
	}
	return []Binding{{"enter", enter}, {"tab/shift+tab", "move"}}
}

// applyFailedMsg carries the daemon's refusal of a config.
type applyFailedMsg struct{ errs config.Errors }
