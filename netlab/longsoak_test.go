package netlab

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLongSoak (make soak only): everything at once for NETLAB_SOAK_FOR
// (default 10m): the mixed load (100 requests/s on keep-alive connections,
// 100/s on new ones), a config change every 15s (halb: halbctl config apply
// and SIGHUP in turn; HAProxy: SIGUSR2), 500 slow connections renewed as the
// head timeout (5s) closes them, and every 30s a burst of 2000
// connect-and-close, 200 random-byte and 20 1-MiB-header-line connections.
// Asserted for halb: no failed request, no request to a server after its
// removal was applied, memory after the run no higher than a third of the
// way through it (with the whole mix running since the start: the heap the
// runtime keeps from the mix's peak is not a leak, growth over the last two
// thirds is), and open file descriptors back to their baseline.
// Reported for both: the same figures.
func TestLongSoak(t *testing.T) {
	if !soakLong() {
		t.Skip("the long soak runs under make soak (NETLAB_SOAK=1)")
	}
	dur := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("NETLAB_SOAK_FOR")); err == nil {
		dur = d
	}
	headTimeout := 5 * time.Second
	cfgA := slowBase(headTimeout)
	cfgA.Backends[0].Servers = []SoloServer{{Name: "s1"}, {Name: "s2"}, {Name: "s3"}}
	cfgB := cfgA.Clone()
	cfgB.Backends[0].Servers = []SoloServer{{Name: "s2"}, {Name: "s3"}, {Name: "s4"}}
	soloScenario(t, "long-soak", 4, cfgA, func(t *testing.T, s *Solo, row *Row) {
		if err := loadGenerator(s.Client); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("%s:80", SoloAddr)
		ka := s.Probe(context.Background(), 80, 100, true, 2*time.Second)
		nc := s.Probe(context.Background(), 80, 100, false, 2*time.Second)
		// A burst of garbage before the baseline: the memory the runtime
		// keeps after its first spike is not a leak.
		garbage := Outcomes{}
		burst := func() {
			for k, v := range ConnectClose(s.Client, addr, 2000, 8) {
				garbage["connect-and-close: "+k] += v
			}
			for k, v := range RandomBytes(s.Client, addr, 200, 8, 64<<10, headTimeout+3*time.Second) {
				garbage["random bytes: "+k] += v
			}
			for k, v := range BigHeaderLines(s.Client, addr, 20, 4, 1<<20, headTimeout+3*time.Second) {
				garbage["1 MiB header line: "+k] += v
			}
		}
		burst()
		baseline := settledMem(s)
		fdsBefore := s.ProxyFDs()
		t0 := time.Now()
		end := t0.Add(dur)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var problems []string
		problem := func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			problems = append(problems, fmt.Sprintf(format, args...))
		}
		// Slow connections, renewed as they are closed.
		slowRounds := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sh, err := StartSlowHeads(s.Client, addr, 500, 2*time.Second, false)
				if err != nil {
					problem("slow connections: %v", err)
					return
				}
				WaitFor(headTimeout+10*time.Second, func() bool {
					select {
					case <-stop:
						return true
					default:
						return sh.Open() == 0
					}
				})
				sh.Stop()
				slowRounds++
			}
		}()
		// Bursts of garbage.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(30 * time.Second)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				burst()
			}
		}()
		// Config changes, in this goroutine.
		cfgs := []SoloConfig{cfgA}
		var reloads []Reload
		var peak, third int64
		for time.Now().Before(end) {
			time.Sleep(15 * time.Second)
			peak = max(peak, s.ProxyAnonRSS())
			if third == 0 && time.Since(t0) >= dur/3 {
				third = medianMem(s.ProxyAnonRSS, 5, 200*time.Millisecond)
			}
			next := cfgA
			if len(reloads)%2 == 0 {
				next = cfgB
			}
			r, err := s.Apply(next, len(reloads)%2 == 1)
			if err != nil {
				problem("change %d: %v", len(reloads)+1, err)
				break
			}
			reloads = append(reloads, r)
			cfgs = append(cfgs, next)
		}
		close(stop)
		wg.Wait()
		rk, rn := ka.Stop(), nc.Stop()
		wk, wn := rk.Window(t0, time.Now()), rn.Window(t0, time.Now())
		row.Sent, row.Failed = wk.Sent+wn.Sent, wk.Failed+wn.Failed

		ref := max(baseline, third)
		tol := memTolerance(ref)
		after := settledMem(s)
		fdsAfter := s.ProxyFDs()
		late := reloadViolations(s, cfgs, reloads)

		row.Notef("%s: %d config changes, %d rounds of 500 slow connections, garbage: %s", dur, len(reloads), slowRounds, garbage)
		row.Notef("keep-alive client %d/%d failed, new-connection client %d/%d failed%s", wk.Failed, wk.Sent, wn.Failed, wn.Sent,
			map[bool]string{true: ": " + joinNonEmpty(errorKinds(wk), errorKinds(wn)), false: ""}[row.Failed > 0])
		row.Notef("normal client p50 %s, p99 %s (keep-alive), p50 %s, p99 %s (new connections)",
			ms(latencyPercentile(wk, 50)), ms(latencyPercentile(wk, 99)), ms(latencyPercentile(wn, 50)), ms(latencyPercentile(wn, 99)))
		row.Notef("%d requests reached a server after its removal was applied%s", len(late), firstOf(late))
		row.Notef("proxy anonymous RSS: %s before the mix (after a first burst of garbage), %s a third of the way, highest sampled %s, %s %s after the run (tolerance %s); open fds %d before, %d after",
			mib(baseline), mib(third), mib(peak), mib(after), memSettle, mib(tol), fdsBefore, fdsAfter)
		for _, p := range problems {
			t.Error(p)
		}
		if s.Flavor != FlavorHalb {
			return
		}
		if row.Failed > 0 {
			t.Errorf("%d of %d requests failed: %s", row.Failed, row.Sent, joinNonEmpty(errorKinds(wk), errorKinds(wn)))
		}
		if len(late) > 0 {
			t.Errorf("%d requests reached a server after its removal was applied: %s", len(late), strings.Join(late[:min(5, len(late))], "; "))
		}
		if after > ref+tol {
			t.Errorf("halbd's anonymous RSS %s %s after the run is more than %s above the %s it had a third of the way (before the mix: %s)", mib(after), memSettle, mib(tol), mib(ref), mib(baseline))
		}
		if fdsAfter > fdsBefore+fdSlack {
			t.Errorf("halbd has %d open fds after the run, %d before", fdsAfter, fdsBefore)
		}
	})
}
