package tui

import (
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Theme is every style and glyph of the console, in one place. States are
// always told by their text (MASTER, DOWN, ...); colour only helps.
type Theme struct {
	// ASCII draws with ASCII only: for terminals or locales that cannot
	// show line-drawing characters (vt100, vt220, a C locale).
	ASCII bool

	Title    lipgloss.Style // the header bar
	Section  lipgloss.Style // a panel's heading
	Dim      lipgloss.Style // secondary text
	Bold     lipgloss.Style
	Key      lipgloss.Style // a key in the help line
	Selected lipgloss.Style // the selected row or field
	Error    lipgloss.Style // an error message
	Good     lipgloss.Style // MASTER, UP
	Warn     lipgloss.Style // BACKUP in maintenance, DRAIN, slow start
	Bad      lipgloss.Style // FAULT, DOWN, alarms
	Dialog   lipgloss.Style // a modal box

	// Rule is the character of horizontal rules; Spark the levels of a
	// sparkline, lowest first; Cursor marks the focused field or row.
	Rule   string
	Spark  []rune
	Cursor string
	Ellip  string
}

// NewTheme makes the theme for a terminal. r decides the colour profile
// (a renderer on the real output, or one with a fixed profile in tests).
func NewTheme(r *lipgloss.Renderer, ascii bool) *Theme {
	t := &Theme{ASCII: ascii}
	border := lipgloss.NormalBorder()
	if ascii {
		border = asciiBorder
		t.Rule = "-"
		t.Spark = []rune(" .:-=+*#")
		t.Cursor = ">"
		t.Ellip = "..."
	} else {
		t.Rule = "─"
		t.Spark = []rune(" ▁▂▃▄▅▆▇█")
		t.Cursor = "▸"
		t.Ellip = "…"
	}
	t.Title = r.NewStyle().Bold(true).Reverse(true)
	t.Section = r.NewStyle().Bold(true)
	t.Dim = r.NewStyle().Faint(true)
	t.Bold = r.NewStyle().Bold(true)
	t.Key = r.NewStyle().Bold(true)
	t.Selected = r.NewStyle().Reverse(true)
	t.Error = r.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)
	t.Good = r.NewStyle().Foreground(lipgloss.Color("10")).Bold(true)
	t.Warn = r.NewStyle().Foreground(lipgloss.Color("11")).Bold(true)
	t.Bad = r.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)
	t.Dialog = r.NewStyle().Border(border).Padding(0, 1)
	return t
}

// asciiBorder draws boxes with + - |.
var asciiBorder = lipgloss.Border{
	Top: "-", Bottom: "-", Left: "|", Right: "|",
	TopLeft: "+", TopRight: "+", BottomLeft: "+", BottomRight: "+",
	MiddleLeft: "+", MiddleRight: "+", Middle: "+", MiddleTop: "+", MiddleBottom: "+",
}

// NeedsASCII reports whether a terminal should be drawn in ASCII: a vt100
// or vt220 (serial terminals), a dumb terminal, or a locale that is not
// UTF-8 (the appliance's consoles run in the C locale unless told).
func NeedsASCII(getenv func(string) string) bool {
	term := getenv("TERM")
	switch {
	case term == "" || term == "dumb",
		strings.HasPrefix(term, "vt1"), strings.HasPrefix(term, "vt2"):
		return true
	}
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			v = strings.ToLower(v)
			return !strings.Contains(v, "utf-8") && !strings.Contains(v, "utf8")
		}
	}
	return true
}

// ProfileFor is the colour profile of a TERM: none for dumb terminals and
// vt100/vt220, 8 colours for the Linux console, else what termenv reports
// for the output.
func ProfileFor(term string, out io.Writer) termenv.Profile {
	switch {
	case term == "" || term == "dumb", strings.HasPrefix(term, "vt1"), strings.HasPrefix(term, "vt2"):
		return termenv.Ascii
	case term == "linux":
		return termenv.ANSI
	}
	return termenv.NewOutput(out).EnvColorProfile()
}

// asciiReplacements are the non-ASCII characters the daemon's messages
// use, as ASCII.
var asciiReplacements = strings.NewReplacer("→", "->", "←", "<-", "…", "...", "—", "-", "–", "-", "×", "x", "µ", "u", "“", `"`, "”", `"`, "‘", "'", "’", "'", "✓", "OK", "✗", "NO")

// asciiOnly makes text safe for an ASCII terminal: known characters are
// replaced, any other non-ASCII one becomes '?'.
func asciiOnly(s string) string {
	s = asciiReplacements.Replace(s)
	for _, r := range s {
		if r > 0x7e && r != 0x1b {
			return strings.Map(func(r rune) rune {
				if r > 0x7e {
					return '?'
				}
				return r
			}, s)
		}
	}
	return s
}

// rule is a horizontal rule of width w.
func (t *Theme) rule(w int) string {
	if w <= 0 {
		return ""
	}
	return t.Dim.Render(strings.Repeat(t.Rule, w))
}

// spark draws values (non-negative) as a sparkline, scaled to the largest.
func (t *Theme) spark(values []float64) string {
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if top > 0 && v > 0 {
			i = 1 + int(v/top*float64(len(t.Spark)-2)+0.5)
			i = min(i, len(t.Spark)-1)
		}
		b.WriteRune(t.Spark[i])
	}
	return b.String()
}
