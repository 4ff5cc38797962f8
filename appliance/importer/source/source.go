// Package source holds what the keepalived and HAProxy importers share:
// positions in the files they read, the report of what did not map exactly,
// and the Builder both fill in, which records where each part of the
// resulting halb config came from.
package source

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"halb/appliance/config"
)

// Pos is a place in a source file; Line and Col count from 1.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Error is a parse error at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errorf returns an *Error at pos.
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Kind says how a directive fared.
type Kind int

const (
	// Dropped: halb has no equivalent; the directive is not in the result.
	Dropped Kind = iota
	// Changed: mapped onto something that behaves differently in a way an
	// operator must know (Why says how).
	Changed
	// Note: mapped; the report says onto what because it is not obvious
	// (a vrrp_script checking HAProxy becoming service tracking). Notes do
	// not make an import partial.
	Note
)

func (k Kind) String() string {
	switch k {
	case Dropped:
		return "dropped"
	case Changed:
		return "changed"
	default:
		return "note"
	}
}

// Finding is one directive the report speaks of.
type Finding struct {
	Pos       Pos
	Kind      Kind
	Directive string // as written, shortened to one line
	Why       string // why it does not map (Dropped, Changed) or what it became (Note)
	Instead   string // what halb does instead, where there is something
}

// Report lists the findings of one import.
type Report struct {
	Findings []Finding
}

// Partial reports whether any directive was dropped or changed.
func (r *Report) Partial() bool {
	for _, f := range r.Findings {
		if f.Kind != Note {
			return true
		}
	}
	return false
}

// Count returns the number of findings of kind k.
func (r *Report) Count(k Kind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// Sort orders the findings by file, line and column (stable) and removes
// repeats of a finding (a directive that one mapping step met for each of
// several services, say).
func (r *Report) Sort() {
	defer func() {
		seen := map[Finding]bool{}
		r.Findings = slices.DeleteFunc(r.Findings, func(f Finding) bool {
			dup := seen[f]
			seen[f] = true
			return dup
		})
	}()
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i].Pos, r.Findings[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// String renders the report as text, a finding per paragraph:
//
//	haproxy.cfg:12:5: dropped: option httplog
//	    why: ...
//	    instead: ...
func (r *Report) String() string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s: %s: %s\n", f.Pos, f.Kind, f.Directive)
		if f.Why != "" {
			fmt.Fprintf(&b, "    why: %s\n", f.Why)
		}
		if f.Instead != "" {
			fmt.Fprintf(&b, "    instead: %s\n", f.Instead)
		}
	}
	fmt.Fprintf(&b, "%d dropped, %d changed, %d notes\n", r.Count(Dropped), r.Count(Changed), r.Count(Note))
	return b.String()
}

// Builder is the config under construction, the report, and the origin of
// each part.
type Builder struct {
	Config *config.Config
	Report *Report
	// Origins maps a config path ("services[0]", "backends[1].servers[2]",
	// "vrrp[0]") to a comment saying where it came from.
	Origins map[string]string
}

// NewBuilder returns a Builder with an empty config and report.
func NewBuilder() *Builder {
	return &Builder{Config: &config.Config{}, Report: &Report{}, Origins: map[string]string{}}
}

// From records that the config part at path came from what at pos
// ("frontend web", "vrrp_instance VI_1").
func (b *Builder) From(path string, pos Pos, what string) {
	b.Origins[path] = fmt.Sprintf("from %s %s", pos, what)
}

func (b *Builder) add(pos Pos, k Kind, directive, why, instead string) {
	b.Report.Findings = append(b.Report.Findings, Finding{Pos: pos, Kind: k, Directive: oneLine(directive), Why: why, Instead: instead})
}

// Drop reports a directive with no halb equivalent.
func (b *Builder) Drop(pos Pos, directive, why, instead string) {
	b.add(pos, Dropped, directive, why, instead)
}

// Change reports a directive mapped onto something that behaves
// differently; why says how.
func (b *Builder) Change(pos Pos, directive, why, instead string) {
	b.add(pos, Changed, directive, why, instead)
}

// Note reports a directive mapped onto something not obvious.
func (b *Builder) Note(pos Pos, directive, became string) {
	b.add(pos, Note, directive, became, "")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// HostName makes a host name of s (a keepalived router_id such as
// LB1_PROD): lower case, every run of characters other than letters and
// digits one '-', none at either end.
func HostName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}
