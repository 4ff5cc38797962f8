package netlab

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Row is one scenario run by one flavor: what the client saw and where the
// VIP ended up.
type Row struct {
	Scenario string `json:"scenario"`
	Flavor   string `json:"flavor"`
	// OutageMS is the longest stretch without a successful client request.
	OutageMS int64 `json:"outage_ms"`
	// Failed and Sent count the client's requests during the scenario.
	Failed int `json:"failed"`
	Sent   int `json:"sent"`
	// VIPOwner is the node the client's ARP entry for the VIP points to.
	VIPOwner string `json:"vip_owner"`
	// VIPHolders are the nodes with the VIP configured at the end.
	VIPHolders []string `json:"vip_holders"`
	// BoundMS is the bound the scenario asserts, derived from the config
	// (an outage, or when failures must have stopped); 0: the scenario
	// has no bound and asserts behaviour only.
	BoundMS int64 `json:"bound_ms"`
	// BoundHeld says whether the figure the bound applies to stayed
	// within it (SetBound). Unset with a bound, it is OutageMS <= BoundMS.
	BoundHeld *bool `json:"bound_held,omitempty"`
	// ChecksHeld: every assertion of the scenario held (the test passed).
	ChecksHeld bool `json:"checks_held"`
	// Pass: the checks held and the bound, if any, was met. A reference
	// row over its bound is a finding about keepalived or HAProxy,
	// recorded with Pass false and not a failure of the suite.
	Pass bool `json:"pass"`
	// Result says the same in words: one of the Result* constants, or
	// "skipped: <why>".
	Result string `json:"result"`
	// Skipped says why the scenario did not run for this flavor.
	Skipped string   `json:"skipped,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Results of a row (Row.Result).
const (
	// ResultBoundMet: the checks held and the figure stayed within the bound.
	ResultBoundMet = "bound met"
	// ResultRefBoundNotHeld: a reference row whose figure exceeded the
	// bound: a recorded finding, not a failure of the suite.
	ResultRefBoundNotHeld = "reference, bound not held"
	// ResultBoundNotHeld: a halb row over its bound; the scenario fails.
	ResultBoundNotHeld = "FAIL: bound not held"
	// ResultChecksHeld: no bound; the scenario's assertions held.
	ResultChecksHeld = "checks held (no bound)"
	// ResultFail: an assertion of the scenario failed.
	ResultFail = "FAIL"
)

// Notef adds a note to the row.
func (r *Row) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// SetBound records the row's bound and whether the figure it applies to
// stayed within it.
func (r *Row) SetBound(bound time.Duration, held bool) {
	r.BoundMS = bound.Milliseconds()
	r.BoundHeld = &held
}

// Judge sets ChecksHeld, Pass and Result once the scenario ended; failed
// is whether any of its assertions failed. It reports whether the row is
// over its bound on a flavor that must meet it (every flavor but the
// reference): the scenario must then fail, whatever it asserted itself.
func (r *Row) Judge(failed bool) (mustFail bool) {
	if r.Skipped != "" {
		r.Result = "skipped: " + r.Skipped
		return false
	}
	held := r.BoundMS == 0 || (r.BoundHeld == nil && r.OutageMS <= r.BoundMS) || (r.BoundHeld != nil && *r.BoundHeld)
	if r.BoundMS > 0 && r.BoundHeld == nil {
		r.BoundHeld = &held
	}
	r.ChecksHeld = !failed
	r.Pass = !failed && held
	switch {
	case !held && r.Flavor == string(FlavorReference):
		r.Result = ResultRefBoundNotHeld
	case !held:
		r.Result = ResultBoundNotHeld
		return true
	case failed:
		r.Result = ResultFail
	case r.BoundMS == 0:
		r.Result = ResultChecksHeld
	default:
		r.Result = ResultBoundMet
	}
	if failed && r.Result == ResultRefBoundNotHeld {
		r.Result += "; " + ResultFail
	}
	return false
}

// boundText is the bound column of report.md.
func (r *Row) boundText() string {
	if r.BoundMS == 0 {
		return "no bound"
	}
	return fmt.Sprintf("%d ms", r.BoundMS)
}

// Report collects rows from concurrent tests.
type Report struct {
	mu       sync.Mutex
	rows     []*Row
	sections map[string]string
}

// AddSection adds a section of Markdown under title to report.md, after
// the rows and their notes (sections in order of title; a title added
// again replaces the section). Scenarios whose findings do not fit a row,
// such as a side-by-side table of the two flavors, write them here.
func (rep *Report) AddSection(title, markdown string) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if rep.sections == nil {
		rep.sections = map[string]string{}
	}
	rep.sections[title] = markdown
}

// Add records a row.
func (rep *Report) Add(r *Row) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rep.rows = append(rep.rows, r)
}

// Rows returns the rows sorted by scenario, reference before halb.
func (rep *Report) Rows() []*Row {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rows := slices.Clone(rep.rows)
	slices.SortStableFunc(rows, func(a, b *Row) int {
		if c := strings.Compare(a.Scenario, b.Scenario); c != 0 {
			return c
		}
		return strings.Compare(b.Flavor, a.Flavor) // reference, then halb
	})
	return rows
}

// Write writes report.json and report.md into dir.
func (rep *Report) Write(dir string) error {
	rows := rep.Rows()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# netlab report\n\n%s. Outage: the longest time the client (200 requests/s, a new connection each) got no answer.\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Result: %q (the scenario's checks held and its figure stayed within the bound), %q (a finding about keepalived or HAProxy, recorded; not a failure of the suite), %q (the scenario asserts behaviour only), or FAIL.\n\n",
		ResultBoundMet, ResultRefBoundNotHeld, ResultChecksHeld)
	b.WriteString("| scenario | flavor | outage | bound | failed/sent | VIP owner (client ARP) | VIP holders | result |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | | | | | | skipped: %s |\n", r.Scenario, r.Flavor, r.Skipped)
			continue
		}
		res := r.Result
		if res == "" { // a row added without Judge
			res = ResultFail
			if r.Pass {
				res = "pass"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d ms | %s | %d/%d | %s | %s | %s |\n", r.Scenario, r.Flavor, r.OutageMS, r.boundText(),
			r.Failed, r.Sent, r.VIPOwner, strings.Join(r.VIPHolders, ", "), res)
	}
	var notes []string
	for _, r := range rows {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s/%s: %s", r.Scenario, r.Flavor, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	rep.mu.Lock()
	titles := slices.Sorted(maps.Keys(rep.sections))
	for _, title := range titles {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", title, strings.TrimRight(rep.sections[title], "\n"))
	}
	rep.mu.Unlock()
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644)
}
