package netlab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fdSlack is how many more open file descriptors the proxy may hold after
// an abuse than before it: pooled server connections come and go.
const fdSlack = 64

// memSettle is how long the normal load runs after an abuse before the
// proxy's memory is taken: a few garbage collections at 200 requests/s.
const memSettle = 10 * time.Second

// memTolerance is how much the proxy's anonymous memory may grow from one
// round of abuse to the last: an eighth of it or 2 MiB, whichever is more.
// A leak of 64 bytes per hostile connection (33300 a round) exceeds it
// from the second round on.
func memTolerance(first int64) int64 { return max(first/8, 2<<20) }

// settledMem is the proxy's anonymous memory after memSettle: the median
// of 5 samples 200 ms apart.
func settledMem(s *Solo) int64 {
	time.Sleep(memSettle)
	return medianMem(s.ProxyAnonRSS, 5, 200*time.Millisecond)
}

// TestChurnAndGarbage: while the normal client sends 200 requests/s, the
// proxy takes rounds (2; make soak: 6) of 30000 connections opened and
// closed at once, 3000 that send up to 64 KiB of random bytes, and 300
// whose request head carries a 1 MiB header line. Asserted: the normal
// client gets every answer throughout; halbd's anonymous memory after the
// last round is within memTolerance of what it was after the first (a
// leak grows with the connections; the runtime keeping its heap after the
// first spike does not), and its open fds are back. Reported for both
// proxies: the memory before the abuse, its peak and after each round, and
// how each hostile connection ended.
func TestChurnAndGarbage(t *testing.T) {
	rounds := pick(2, 6)
	const connects, randoms, bigs = 30000, 3000, 300
	headTimeout := 5 * time.Second
	soloScenario(t, "churn-and-garbage", 2, slowBase(headTimeout), func(t *testing.T, s *Solo, row *Row) {
		if err := loadGenerator(s.Client); err != nil {
			t.Fatal(err)
		}
		p := s.Probe(context.Background(), 80, 200, false, 2*time.Second)
		time.Sleep(3 * time.Second) // warm: pools and buffers of the normal load
		baseline := medianMem(s.ProxyAnonRSS, 5, 200*time.Millisecond)
		rssBefore := s.ProxyRSS()
		fdsBefore := s.ProxyFDs()

		// Sample the memory during the abuse for its peak.
		stopSampling := make(chan struct{})
		var peak atomic.Int64
		var sampling sync.WaitGroup
		sampling.Add(1)
		go func() {
			defer sampling.Done()
			tk := time.NewTicker(100 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tk.C:
					if m := s.ProxyAnonRSS(); m > peak.Load() {
						peak.Store(m)
					}
				}
			}
		}()
		t0 := time.Now()
		addr := fmt.Sprintf("%s:80", SoloAddr)
		churn, random, big := Outcomes{}, Outcomes{}, Outcomes{}
		var afters []int64
		var took []string
		for range rounds {
			tr := time.Now()
			var wg sync.WaitGroup
			var c, r, b Outcomes
			wg.Add(3)
			go func() { defer wg.Done(); c = ConnectClose(s.Client, addr, connects, 8) }()
			go func() {
				defer wg.Done()
				r = RandomBytes(s.Client, addr, randoms, 16, 64<<10, headTimeout+3*time.Second)
			}()
			go func() {
				defer wg.Done()
				b = BigHeaderLines(s.Client, addr, bigs, 8, 1<<20, headTimeout+3*time.Second)
			}()
			wg.Wait()
			took = append(took, time.Since(tr).Round(100*time.Millisecond).String())
			churn.Add(c)
			random.Add(r)
			big.Add(b)
			afters = append(afters, settledMem(s))
		}
		close(stopSampling)
		sampling.Wait()
		res := p.Stop()
		fdsAfter := s.ProxyFDs()
		w := res.Window(t0, time.Now())
		row.Sent, row.Failed = w.Sent, w.Failed

		row.Notef("%d rounds of %d connect-and-close, %d random-byte and %d 1-MiB-header-line connections, each taking %s",
			rounds, connects, randoms, bigs, strings.Join(took, ", "))
		row.Notef("random bytes: %s", random)
		row.Notef("1 MiB header lines: %s", big)
		if n := churn.Total() - churn["closed"]; n > 0 {
			row.Notef("connect-and-close: %s", churn)
		}
		var as []string
		for _, a := range afters {
			as = append(as, mib(a))
		}
		tol := memTolerance(afters[0])
		grew := afters[len(afters)-1] - afters[0]
		row.Notef("proxy anonymous RSS: %s before the abuse, peak %s, %s after each round (%s later; growth from the first round %s, tolerance %s); RSS with file pages %s before, %s after; open fds %d before, %d after",
			mib(baseline), mib(peak.Load()), strings.Join(as, ", "), memSettle, mib(grew), mib(tol), mib(rssBefore), mib(s.ProxyRSS()), fdsBefore, fdsAfter)
		if w.Failed > 0 {
			t.Errorf("%d of %d normal requests failed during the abuse: %s", w.Failed, w.Sent, errorKinds(w))
		}
		if churn["closed"] != rounds*connects {
			t.Errorf("connect-and-close: %s", churn)
		}
		if s.Flavor != FlavorHalb {
			return
		}
		if grew > tol {
			t.Errorf("halbd's anonymous RSS grew by %s from the first round of abuse to the last (%s): over %s", mib(grew), strings.Join(as, ", "), mib(tol))
		}
		if fdsAfter > fdsBefore+fdSlack {
			t.Errorf("halbd has %d open fds after the abuse, %d before", fdsAfter, fdsBefore)
		}
	})
}

// medianMem is the median of n samples of a memory figure, every gap.
func medianMem(sample func() int64, n int, gap time.Duration) int64 {
	var rs []int64
	for i := range n {
		if i > 0 {
			time.Sleep(gap)
		}
		rs = append(rs, sample())
	}
	slices.Sort(rs)
	return rs[n/2]
}

// loadGenerator lets h open connections as fast as a load generator does:
// the whole port range, and ports in TIME_WAIT reused for new connections
// (RFC 6191 timestamps). Without it the client that closes tens of
// thousands of connections first runs out of ports, and its connects slow
// down and fail before the proxy is tried at all.
func loadGenerator(h *Host) error {
	if err := h.Sysctl("net/ipv4/ip_local_port_range", "1024 65535"); err != nil {
		return err
	}
	return h.Sysctl("net/ipv4/tcp_tw_reuse", "1")
}
