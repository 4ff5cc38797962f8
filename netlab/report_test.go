package netlab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRowJudge(t *testing.T) {
	const bound = 4610 * time.Millisecond
	cases := []struct {
		name     string
		row      Row
		bound    time.Duration // 0: none
		failed   bool
		want     string
		pass     bool
		mustFail bool
	}{
		{"bound met", Row{Flavor: "halb", OutageMS: 3600}, bound, false, ResultBoundMet, true, false},
		{"reference over its bound", Row{Flavor: "reference", OutageMS: 31000}, bound, false, ResultRefBoundNotHeld, false, false},
		{"halb over its bound", Row{Flavor: "halb", OutageMS: 31000}, bound, false, ResultBoundNotHeld, false, true},
		{"no bound", Row{Flavor: "halb"}, 0, false, ResultChecksHeld, true, false},
		{"failed within the bound", Row{Flavor: "halb", OutageMS: 100}, bound, true, ResultFail, false, false},
		{"failed without a bound", Row{Flavor: "reference"}, 0, true, ResultFail, false, false},
		{"reference over and failed", Row{Flavor: "reference", OutageMS: 31000}, bound, true, ResultRefBoundNotHeld + "; " + ResultFail, false, false},
		{"skipped", Row{Flavor: "halb", Skipped: "needs X"}, 0, false, "skipped: needs X", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.row
			if c.bound > 0 {
				r.SetBound(c.bound, r.OutageMS <= c.bound.Milliseconds())
			}
			mustFail := r.Judge(c.failed)
			if r.Result != c.want || r.Pass != c.pass || mustFail != c.mustFail {
				t.Errorf("Judge: result %q pass %v mustFail %v, want %q %v %v", r.Result, r.Pass, mustFail, c.want, c.pass, c.mustFail)
			}
			if r.Skipped == "" && r.ChecksHeld == c.failed {
				t.Errorf("ChecksHeld %v with failed %v", r.ChecksHeld, c.failed)
			}
		})
	}
}

// A row that sets BoundMS itself (without SetBound) is judged by its
// outage against the bound.
func TestRowJudgeBoundWithoutVerdict(t *testing.T) {
	for _, c := range []struct {
		outage int64
		want   string
	}{{4000, ResultBoundMet}, {5000, ResultRefBoundNotHeld}} {
		r := Row{Flavor: "reference", BoundMS: 4610, OutageMS: c.outage}
		r.Judge(false)
		if r.Result != c.want || r.BoundHeld == nil || *r.BoundHeld != (c.want == ResultBoundMet) {
			t.Errorf("outage %d: result %q held %v, want %q", c.outage, r.Result, r.BoundHeld, c.want)
		}
	}
}

func TestReportWrite(t *testing.T) {
	var rep Report
	met := &Row{Scenario: "master-killed", Flavor: "halb", OutageMS: 3600, Failed: 720, Sent: 2000}
	met.SetBound(4610*time.Millisecond, true)
	over := &Row{Scenario: "partition-heal", Flavor: "reference", OutageMS: 31900}
	over.SetBound(4610*time.Millisecond, false)
	none := &Row{Scenario: "maintenance", Flavor: "halb"}
	for _, r := range []*Row{met, over, none} {
		r.Judge(false)
		rep.Add(r)
	}
	rep.AddSection("TLS audit", "| | a |\n|---|---|\n| x | y |\n")
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| master-killed | halb | 3600 ms | 4610 ms | 720/2000 |  |  | bound met |",
		"| partition-heal | reference | 31900 ms | 4610 ms | 0/0 |  |  | reference, bound not held |",
		"| maintenance | halb | 0 ms | no bound | 0/0 |  |  | checks held (no bound) |",
		"\n## TLS audit\n\n| | a |\n|---|---|\n| x | y |\n",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	var rows []map[string]any
	js, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]any{}
	for _, r := range rows {
		got[r["scenario"].(string)] = [2]any{r["result"], r["pass"]}
	}
	want := map[string][2]any{
		"master-killed":  {ResultBoundMet, true},
		"partition-heal": {ResultRefBoundNotHeld, false},
		"maintenance":    {ResultChecksHeld, true},
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("report.json %s: result, pass = %v, want %v", k, got[k], v)
		}
	}
}
