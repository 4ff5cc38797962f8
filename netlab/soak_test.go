package netlab

// The reload and overload scenarios (issue 12, "Reload and overload, proven
// beside HAProxy"), on the solo topology (solo.go): each runs once per
// flavor, halb beside HAProxy 2.6, and adds a row per flavor to the lab
// report. They assert behaviour (no failed request where halb promises
// none, checksums, closes at the timeout, memory back to its baseline) and
// report the numbers (latencies, peak memory, the reference's failures).
//
// NETLAB_SOAK=1 (make soak) runs the long variants: more changes, more
// connections, longer runs.

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// soakLong reports whether the long variants run (make soak).
func soakLong() bool { return os.Getenv("NETLAB_SOAK") != "" }

// pick returns short in the normal lab run, long under make soak.
func pick[T any](short, long T) T {
	if soakLong() {
		return long
	}
	return short
}

// soloScenario runs fn once per flavor on a fresh solo topology with
// servers s1..sN and cfg in force, every service of cfg answering, and
// records a report row per flavor.
func soloScenario(t *testing.T, name string, servers int, cfg SoloConfig, fn func(t *testing.T, s *Solo, row *Row)) {
	soloScenarioWith(t, name, servers, cfg, nil, fn)
}

// soloScenarioWith is soloScenario with a setup run on the topology before
// its services must answer (a scenario's own servers).
func soloScenarioWith(t *testing.T, name string, servers int, cfg SoloConfig, setup func(s *Solo) error, fn func(t *testing.T, s *Solo, row *Row)) {
	for _, fl := range Flavors {
		t.Run(string(fl), func(t *testing.T) {
			SkipUnlessRoot(t)
			row := reportRow(t, name, string(fl))
			l := New(t)
			s, err := NewSolo(l, fl, servers, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			if setup != nil {
				if err := setup(s); err != nil {
					t.Fatal(err)
				}
			}
			for _, svc := range cfg.Services {
				if err := s.WaitServing(svc.Port, 15*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			fn(t, s, row)
		})
	}
}

// latencyPercentile is the p-th percentile (0..100) of the latencies of
// the successful samples, or 0 without any.
func latencyPercentile(r *ProbeResult, p float64) time.Duration {
	var ls []time.Duration
	for _, s := range r.Samples {
		if s.OK {
			ls = append(ls, s.Latency)
		}
	}
	if len(ls) == 0 {
		return 0
	}
	slices.Sort(ls)
	i := int(p / 100 * float64(len(ls)))
	return ls[min(i, len(ls)-1)]
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// errorKinds counts the failures of r by error text, most frequent first.
func errorKinds(r *ProbeResult) string {
	counts := map[string]int{}
	for _, s := range r.Samples {
		if !s.OK {
			counts[s.Err]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d x %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}
