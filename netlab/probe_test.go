package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingDial dials on the host (loopback) and counts connections.
func countingDial(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return d.DialContext(ctx, network, addr)
	}
}

// waitOK waits until the probe has n more successes than it had.
func waitOK(t *testing.T, p *Probe, n int) {
	t.Helper()
	base := p.Snapshot().OK
	waitFor(t, "probe successes", func() bool { return p.Snapshot().OK >= base+n })
}

func checkCounts(t *testing.T, r *ProbeResult) {
	t.Helper()
	if r.Sent != len(r.Samples) || r.OK+r.Failed != r.Sent {
		t.Errorf("counts: sent=%d ok=%d failed=%d samples=%d", r.Sent, r.OK, r.Failed, len(r.Samples))
	}
	for i := 1; i < len(r.Samples); i++ {
		if r.Samples[i].Sent.Before(r.Samples[i-1].Sent) {
			t.Fatalf("samples not sorted by Sent at %d", i)
		}
	}
	for _, s := range r.Samples {
		if s.OK != (s.Err == "") {
			t.Errorf("sample OK=%v with Err=%q", s.OK, s.Err)
		}
	}
}

func TestProbeAllOK(t *testing.T) {
	for _, keepAlive := range []bool{false, true} {
		name := map[bool]string{false: "close", true: "keepalive"}[keepAlive]
		t.Run(name, func(t *testing.T) {
			b, addr := startBackend(t, "web1")
			var dials atomic.Int64
			p := StartProbe(t.Context(), ProbeConfig{
				URL:       "http://" + addr + "/",
				Rate:      100,
				KeepAlive: keepAlive,
				Dial:      countingDial(&dials),
			})
			waitOK(t, p, 30)
			snap := p.Snapshot()
			if snap.LastBackend != "web1" || snap.Sent < 30 || snap.OK < 30 {
				t.Errorf("snapshot %+v", snap)
			}
			r := p.Stop()
			checkCounts(t, r)
			if r.Failed != 0 || r.OK < 30 {
				t.Fatalf("result %v; want all OK", r)
			}
			if r.Backends["web1"] != r.OK || len(r.Backends) != 1 {
				t.Errorf("Backends = %v, want web1:%d", r.Backends, r.OK)
			}
			if len(r.Nodes) != 0 {
				t.Errorf("Nodes = %v, want none (the backend sets no X-LB-Node)", r.Nodes)
			}
			if r.Period != 10*time.Millisecond {
				t.Errorf("Period = %v, want 10ms", r.Period)
			}
			if got := b.Requests(); got < int64(r.OK) {
				t.Errorf("backend answered %d, probe saw %d OK", got, r.OK)
			}
			for _, s := range r.Samples {
				if s.Status != 200 || s.Backend != "web1" || s.Latency <= 0 {
					t.Fatalf("sample %+v", s)
				}
			}
			// The Sent times follow the ticker, not the answers: the span
			// of n samples is about n-1 periods (never less).
			if span := r.Samples[len(r.Samples)-1].Sent.Sub(r.Samples[0].Sent); span < time.Duration(r.Sent-2)*r.Period {
				t.Errorf("%d samples sent within %v at rate 100", r.Sent, span)
			}
			n := dials.Load()
			if keepAlive {
				if n >= int64(r.Sent) {
					t.Errorf("keep-alive: %d dials for %d requests", n, r.Sent)
				}
			} else if n < int64(r.OK) {
				t.Errorf("no keep-alive: %d dials for %d successful requests", n, r.OK)
			}
			if again := p.Stop(); again != r {
				t.Error("second Stop returned a different result")
			}
		})
	}
}

func TestProbeNodeHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node := []string{"lb1", "lb2"}[n.Add(1)%2]
		w.Header().Set("X-LB-Node", node)
		w.Header().Set("X-Backend", "web1")
		io.WriteString(w, "web1\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	p := StartProbe(t.Context(), ProbeConfig{URL: "http://" + ln.Addr().String() + "/", Rate: 100, KeepAlive: true, Dial: (&net.Dialer{}).DialContext})
	waitOK(t, p, 10)
	if s := p.Snapshot(); s.LastNode != "lb1" && s.LastNode != "lb2" {
		t.Errorf("LastNode %q", s.LastNode)
	}
	r := p.Stop()
	checkCounts(t, r)
	if r.Nodes["lb1"] == 0 || r.Nodes["lb2"] == 0 || r.Nodes["lb1"]+r.Nodes["lb2"] != r.OK {
		t.Errorf("Nodes = %v with %d OK", r.Nodes, r.OK)
	}
	if !strings.Contains(r.String(), "nodes=lb1:") {
		t.Errorf("String() = %q", r.String())
	}
}

// outageTest runs outageRun until one attempt is not disturbed by the
// machine (see outageRun); a loaded machine costs retries, not a failure.
func outageTest(t *testing.T, mode BackendMode, keepAlive bool) {
	const attempts = 4
	for i := range attempts {
		var disturbed string
		ok := t.Run(fmt.Sprintf("attempt%d", i+1), func(t *testing.T) {
			disturbed = outageRun(t, mode, keepAlive)
		})
		if !ok || disturbed == "" {
			return
		}
		t.Logf("attempt %d disturbed by the machine, not the probe: %s", i+1, disturbed)
	}
	t.Skipf("every attempt was disturbed: the machine is too loaded to time a %v stretch", mode)
}

// outageRun probes a backend, puts it into mode for about stretch, restores
// ModeOK and checks the outage the probe measured. When the process was
// stalled (the ticker could not send for a quarter of the stretch: a gap no
// probe or backend behaviour explains) it checks nothing and says why.
func outageRun(t *testing.T, mode BackendMode, keepAlive bool) (disturbed string) {
	b, addr := startBackend(t, "web1")
	p := StartProbe(t.Context(), ProbeConfig{
		URL:       "http://" + addr + "/",
		Rate:      100,
		KeepAlive: keepAlive,
		Timeout:   2 * time.Second,
		Dial:      (&net.Dialer{}).DialContext,
	})
	waitOK(t, p, 20)
	const stretch = 500 * time.Millisecond
	t0 := time.Now()
	b.SetMode(mode)
	time.Sleep(stretch)
	b.SetMode(ModeOK)
	actual := time.Since(t0) // at least stretch, more on a stalled machine
	waitOK(t, p, 20)
	r := p.Stop()
	checkCounts(t, r)
	t.Logf("%v stretch %v: %v, outage from %v after the stretch began", mode, actual, r, r.OutageStart.Sub(t0))
	for i := 1; i < len(r.Samples); i++ {
		if gap := r.Samples[i].Sent.Sub(r.Samples[i-1].Sent); gap > stretch/4 {
			return fmt.Sprintf("nothing sent for %v, %v after the stretch began", gap, r.Samples[i-1].Sent.Sub(t0))
		}
	}
	if r.Failed == 0 {
		t.Fatal("no failures during the stretch")
	}
	if r.LongestOutage <= actual/2 || r.LongestOutage >= 3*actual {
		t.Errorf("LongestOutage %v for a stretch of %v", r.LongestOutage, actual)
	}
	// The outage found is the stretch: it starts at the last success
	// before the stretch (a request just sent may fail too).
	if r.OutageStart.After(t0) || r.OutageStart.Before(t0.Add(-time.Second)) {
		t.Errorf("OutageStart %v from the stretch start", r.OutageStart.Sub(t0))
	}
	for _, s := range r.Samples {
		if s.OK {
			continue
		}
		if s.Sent.Before(t0.Add(-time.Second)) || s.Sent.After(t0.Add(actual)) {
			t.Errorf("failure outside the stretch: %+v", s)
		}
		if mode == ModeFail && s.Status != 500 {
			t.Errorf("failure in ModeFail without a 500: %+v", s)
		}
	}
	// Window over the stretch shows it; the window after it is clean.
	in := r.Window(t0, t0.Add(actual))
	checkCounts(t, in)
	if in.Failed == 0 || in.Sent == 0 {
		t.Errorf("window over the stretch: %v", in)
	}
	after := r.Window(t0.Add(actual+100*time.Millisecond), time.Now().Add(time.Hour))
	checkCounts(t, after)
	// (Its LongestOutage is ticker jitter, not asserted: it depends on load.)
	if after.Failed != 0 || after.OK == 0 {
		t.Errorf("window after the stretch: %v", after)
	}
	if r.Backends["web1"] != r.OK {
		t.Errorf("Backends %v with %d OK", r.Backends, r.OK)
	}
	return ""
}

func TestProbeOutageFail(t *testing.T) {
	t.Run("keepalive", func(t *testing.T) { outageTest(t, ModeFail, true) })
	t.Run("close", func(t *testing.T) { outageTest(t, ModeFail, false) })
}

func TestProbeOutageRefuse(t *testing.T) {
	t.Run("close", func(t *testing.T) { outageTest(t, ModeRefuse, false) })
	t.Run("keepalive", func(t *testing.T) { outageTest(t, ModeRefuse, true) })
}

func TestProbeClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := StartProbe(t.Context(), ProbeConfig{URL: "http://" + addr + "/", Rate: 100, Dial: (&net.Dialer{}).DialContext})
	waitFor(t, "20 failures", func() bool { return p.Snapshot().Failed >= 20 })
	if s := p.Snapshot(); !strings.Contains(s.LastErr, "refused") || s.OK != 0 {
		t.Errorf("snapshot %+v", s)
	}
	r := p.Stop()
	checkCounts(t, r)
	if r.OK != 0 || r.Failed != r.Sent || r.Sent < 20 {
		t.Fatalf("result %v; want all failed", r)
	}
	first, last := r.Samples[0], r.Samples[len(r.Samples)-1]
	if want := last.Sent.Sub(first.Sent) + r.Period; r.LongestOutage != want || !r.OutageStart.Equal(first.Sent) {
		t.Errorf("outage %v from %v, want %v from the first sample", r.LongestOutage, r.OutageStart, want)
	}
	for _, s := range r.Samples {
		if !strings.Contains(s.Err, "connection refused") || s.Status != 0 {
			t.Fatalf("sample %+v", s)
		}
	}
}

// TestProbeHungRequests: requests that hang do not delay the schedule, time
// out per Timeout, and Stop waits for them.
func TestProbeHungRequests(t *testing.T) {
	b, addr := startBackend(t, "web1")
	b.SetMode(ModeHang)
	const timeout = 300 * time.Millisecond
	p := StartProbe(t.Context(), ProbeConfig{URL: "http://" + addr + "/", Rate: 100, Timeout: timeout, KeepAlive: true, Dial: (&net.Dialer{}).DialContext})
	// Several requests hang at once: the ticker kept sending.
	waitFor(t, "hung requests to pile up", func() bool { return b.inflight.Load() >= 5 })
	waitFor(t, "timeouts", func() bool { return p.Snapshot().Failed >= 5 })
	if s := p.Snapshot(); s.LastErr != "timeout" || s.InFlight == 0 {
		t.Errorf("snapshot %+v", s)
	}
	r := p.Stop()
	checkCounts(t, r)
	if r.OK != 0 || r.Failed != r.Sent {
		t.Fatalf("result %v", r)
	}
	for _, s := range r.Samples {
		if s.Err != "timeout" || s.Latency < timeout {
			t.Fatalf("sample %+v; want a timeout after at least %v", s, timeout)
		}
	}
	if s := p.Snapshot(); s.InFlight != 0 || s.Sent != r.Sent {
		t.Errorf("after Stop: %+v", s)
	}
}

// TestProbeContextEnds: when ctx ends, sending stops; Stop still returns what
// was recorded, with no failures caused by the cancellation.
func TestProbeContextEnds(t *testing.T) {
	_, addr := startBackend(t, "web1")
	ctx, cancel := context.WithCancel(t.Context())
	p := StartProbe(ctx, ProbeConfig{URL: "http://" + addr + "/", Rate: 100, Dial: (&net.Dialer{}).DialContext})
	waitOK(t, p, 5)
	cancel()
	<-p.senderDone
	sent := p.Snapshot().Sent
	r := p.Stop()
	checkCounts(t, r)
	if r.Sent != sent || r.Failed != 0 {
		t.Errorf("result %v, %d sent when ctx ended", r, sent)
	}
}

func TestProbeRequiresDial(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("StartProbe without Dial did not panic")
		}
	}()
	StartProbe(t.Context(), ProbeConfig{URL: "http://127.0.0.1:1/"})
}

func TestProbeWindow(t *testing.T) {
	const p = 10 * time.Millisecond
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * p) }
	// 0-4 OK on a, 5-9 fail, 10-14 OK on b (node lb2), 15 fail, 16-19 OK on b.
	var samples []Sample
	for i := range 20 {
		s := Sample{Sent: at(i), OK: true, Status: 200, Backend: "a", Node: "lb1"}
		switch {
		case i >= 5 && i < 10 || i == 15:
			s = Sample{Sent: at(i), Status: 500, Err: "HTTP 500", Backend: "a", Node: "lb1"}
		case i >= 10:
			s.Backend, s.Node = "b", "lb2"
		}
		samples = append(samples, s)
	}
	all := summarize(samples, p)
	if all.Sent != 20 || all.OK != 14 || all.Failed != 6 || all.LongestOutage != 5*p || !all.OutageStart.Equal(at(4)) {
		t.Fatalf("all: %v from %v", all, all.OutageStart)
	}
	if all.Backends["a"] != 5 || all.Backends["b"] != 9 || all.Nodes["lb1"] != 5 || all.Nodes["lb2"] != 9 {
		t.Fatalf("all: %v", all)
	}

	cases := []struct {
		name                string
		from, to            time.Time
		sent, ok, failed    int
		outage              time.Duration
		start               time.Time
		backendA, backendsB int
	}{
		{"everything", t0.Add(-time.Hour), at(20), 20, 14, 6, 5 * p, at(4), 5, 9},
		{"to is exclusive", t0, at(5), 5, 5, 0, 0, time.Time{}, 5, 0},
		{"from is inclusive", at(5), at(10), 5, 0, 5, 5 * p, at(5), 0, 0},
		{"leading failures", at(7), at(12), 5, 2, 3, 3 * p, at(7), 0, 2},
		{"trailing failures", at(3), at(8), 5, 2, 3, 3 * p, at(4), 2, 0},
		{"second outage only", at(12), at(20), 8, 7, 1, p, at(14), 0, 7},
		{"empty", at(30), at(40), 0, 0, 0, 0, time.Time{}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := all.Window(c.from, c.to)
			checkCounts(t, w)
			if w.Sent != c.sent || w.OK != c.ok || w.Failed != c.failed ||
				w.LongestOutage != c.outage || !w.OutageStart.Equal(c.start) ||
				w.Backends["a"] != c.backendA || w.Backends["b"] != c.backendsB || w.Period != p {
				t.Errorf("got %v from %v, want sent=%d ok=%d failed=%d outage=%v from %v a=%d b=%d",
					w, w.OutageStart, c.sent, c.ok, c.failed, c.outage, c.start, c.backendA, c.backendsB)
			}
		})
	}
	// Window does not disturb the original.
	if len(all.Samples) != 20 || all.Failed != 6 {
		t.Error("Window changed the result it was taken from")
	}
}

func TestLongestOutage(t *testing.T) {
	const p = 10 * time.Millisecond
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// seq builds samples one period apart from a pattern: '+' OK, '-' failed.
	seq := func(pattern string) []Sample {
		var s []Sample
		for i, c := range pattern {
			s = append(s, Sample{Sent: at(time.Duration(i) * p), OK: c == '+'})
		}
		return s
	}
	cases := []struct {
		name    string
		samples []Sample
		outage  time.Duration
		start   time.Time
	}{
		{"no samples", nil, 0, time.Time{}},
		{"one success", seq("+"), 0, time.Time{}},
		{"one failure", seq("-"), p, at(0)},
		{"all OK", seq("++++++"), 0, time.Time{}},
		{"all failed", seq("-----"), 5 * p, at(0)},
		{"gap in the middle", seq("+---+"), 3 * p, at(0)},
		{"leading failures", seq("--++"), 2 * p, at(0)},
		{"trailing failures: never recovers", seq("++---"), 3 * p, at(p)},
		{"longest of several", seq("+-+---+--+"), 3 * p, at(2 * p)},
		{"tie: the earlier wins", seq("+--+--+"), 2 * p, at(0)},
		{"leading longer than middle", seq("---+-+"), 3 * p, at(0)},
		{"trailing longer than middle", seq("+-+----"), 4 * p, at(2 * p)},
		{"successes alternate", seq("+-+-+-+"), p, at(0)},
		{"a silent gap counts", []Sample{{Sent: at(0), OK: true}, {Sent: at(5 * p), OK: true}}, 4 * p, at(0)},
		{"jitter under a period is no outage", []Sample{{Sent: at(0), OK: true}, {Sent: at(p / 2), OK: true}, {Sent: at(p + p/2), OK: true}}, 0, time.Time{}},
		{"jitter over a period", []Sample{{Sent: at(0), OK: true}, {Sent: at(p + 3*time.Millisecond), OK: true}}, 3 * time.Millisecond, at(0)},
		{"unsorted input", []Sample{{Sent: at(4 * p), OK: true}, {Sent: at(p)}, {Sent: at(0), OK: true}, {Sent: at(3 * p)}, {Sent: at(2 * p)}}, 3 * p, at(0)},
		{"all failed, uneven", []Sample{{Sent: at(0)}, {Sent: at(35 * time.Millisecond)}}, 35*time.Millisecond + p, at(0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outage, start := longestOutage(c.samples, p)
			if outage != c.outage || !start.Equal(c.start) {
				t.Errorf("longestOutage = %v from %v, want %v from %v", outage, start.Sub(t0), c.outage, c.start.Sub(t0))
			}
		})
	}
	// The unsorted input was not reordered in place.
	in := []Sample{{Sent: at(p)}, {Sent: at(0), OK: true}}
	longestOutage(in, p)
	if !in[0].Sent.Equal(at(p)) {
		t.Error("longestOutage sorted its argument in place")
	}
}
