package netlab

import (
	"encoding/json"
	"fmt"
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
	// BoundMS is the outage bound the scenario asserts, from the config.
	BoundMS int64 `json:"bound_ms"`
	Pass    bool  `json:"pass"`
	// Skipped says why the scenario did not run for this flavor.
	Skipped string   `json:"skipped,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Notef adds a note to the row.
func (r *Row) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Report collects rows from concurrent tests.
type Report struct {
	mu   sync.Mutex
	rows []*Row
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
	fmt.Fprintf(&b, "# netlab report\n\n%s. Outage: the longest time the client (200 requests/s, a new connection each) got no answer.\n\n", time.Now().UTC().Format(time.RFC3339))
	b.WriteString("| scenario | flavor | outage | bound | failed/sent | VIP owner (client ARP) | VIP holders | result |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | | | | | | skipped: %s |\n", r.Scenario, r.Flavor, r.Skipped)
			continue
		}
		res := "pass"
		if !r.Pass {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %d ms | %d ms | %d/%d | %s | %s | %s |\n", r.Scenario, r.Flavor, r.OutageMS, r.BoundMS,
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
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644)
}
