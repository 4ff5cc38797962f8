package proxy

import (
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCountersSurviveReload: a reload that changes a backend (a server
// added, a weight changed, a server removed) builds new backend and server
// objects; their counters carry on from the old ones', a server removed
// and configured again keeps its numbers, and so does a service whose
// mode changed. Counters never go backwards (Prometheus' rule, HAProxy's
// reset on reload being the complaint).
func TestCountersSurviveReload(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	cfg := func(mode, srvs string) string {
		return fmt.Sprintf("node: {name: lb1}\nservices:\n  - {name: web, listen: [\"%s\"], mode: %s, default_backend: b0}\nbackends:\n  - name: b0\n    servers: [%s]\n",
			listen, mode, srvs)
	}
	s0 := fmt.Sprintf("{name: s0, address: %q}", a.addr())
	s1 := fmt.Sprintf("{name: s1, address: %q}", b.addr())
	first := cfg("http", s0+", "+s1)
	c := run(t, mustConfig(t, first))
	waitListening(t, listen)
	client := &http.Client{}
	for range 6 {
		get(t, client, "http://"+listen+"/")
	}
	client.CloseIdleConnections()
	waitActive(t, c, 0)
	before := c.Status().([]ServiceStatus)[0]
	if before.Backends[0].Total != 6 || before.Backends[0].Servers[1].Total == 0 {
		t.Fatalf("status %+v: want 6 sessions, some on s1", before.Backends[0])
	}

	// s0's weight changes, s1 goes, s2 comes.
	apply(t, c, mustConfig(t, cfg("http", fmt.Sprintf("{name: s0, address: %q, weight: 2}, {name: s2, address: %q}", a.addr(), b.addr()))))
	after := c.Status().([]ServiceStatus)[0]
	sameCounters(t, "service", before.Stats, after.Stats)
	sameCounters(t, "backend", before.Backends[0], after.Backends[0])
	sameCounters(t, "s0", before.Backends[0].Servers[0], after.Backends[0].Servers[0])
	if s2 := after.Backends[0].Servers[1]; s2.Name != "s2" || s2.Total != 0 {
		t.Fatalf("new server %+v", s2)
	}

	// s1 comes back: its numbers are where they were.
	apply(t, c, mustConfig(t, first))
	back := c.Status().([]ServiceStatus)[0]
	sameCounters(t, "s1 configured again", before.Backends[0].Servers[1], back.Backends[0].Servers[1])

	// The service turns tcp: a new service object, the same counters.
	apply(t, c, mustConfig(t, cfg("tcp", s0+", "+s1)))
	tcp := c.Status().([]ServiceStatus)[0]
	if tcp.Mode != "tcp" {
		t.Fatalf("mode %q", tcp.Mode)
	}
	sameCounters(t, "service after a change of mode", before.Stats, tcp.Stats)
}

// sameCounters fails unless the cumulative fields of two status values
// (counters, histograms, maxima, last session) are equal: everything but
// names, addresses, weights, states and gauges.
func sameCounters(t *testing.T, what string, a, b any) {
	t.Helper()
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		switch f.Name {
		case "Name", "Address", "Up", "Drained", "Weight", "SlowStartPct", "MaxConn", "Active", "ActiveConnections", "Idle",
			"Queued", "Servers", "StickEntries", "Balance", "Persistence":
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			t.Errorf("%s: %s went from %v to %v across the reload", what, f.Name, va.Field(i).Interface(), vb.Field(i).Interface())
		}
	}
}

// TestHistogram: an observation falls in the first bucket whose bound it
// does not exceed (bounds are inclusive, as Prometheus' le), past the last
// bound in the extra bucket; the sum is in seconds.
func TestHistogram(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{-time.Second, 0, 500 * time.Microsecond, 501 * time.Microsecond, time.Second, 10 * time.Second, time.Minute} {
		h.observe(d)
	}
	s := h.snapshot()
	want := make([]uint64, len(timeBounds)+1)
	want[0] = 3  // -1s (as 0), 0, 500µs
	want[1] = 1  // 501µs
	want[10] = 1 // 1s
	want[13] = 1 // 10s
	want[14] = 1 // 1m
	if !reflect.DeepEqual(s.Counts, want) || len(s.Bounds) != len(timeBounds) || s.Bounds[0] != 0.0005 || s.Bounds[13] != 10 {
		t.Fatalf("histogram %+v, want counts %v", s, want)
	}
	if wantSum := (71*time.Second + time.Millisecond + time.Microsecond).Seconds(); math.Abs(s.Sum-wantSum) > 1e-9 {
		t.Fatalf("sum %v, want %v", s.Sum, wantSum)
	}
}

// TestRaiseMax: concurrent raises leave the largest value.
func TestRaiseMax(t *testing.T) {
	var m atomic.Int64
	var wg sync.WaitGroup
	for i := range int64(64) {
		wg.Go(func() { raiseMax(&m, i) })
	}
	wg.Wait()
	raiseMax(&m, 3)
	if m.Load() != 63 {
		t.Fatalf("max %d, want 63", m.Load())
	}
}
