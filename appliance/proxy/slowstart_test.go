package proxy

import (
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestSlowStartWeight(t *testing.T) {
	const d = 10 * time.Second
	for _, tc := range []struct {
		full    int64
		elapsed time.Duration
		want    int64
	}{
		{16, 0, 1}, // never below 1: some traffic from the start
		{16, -time.Second, 1},
		{16, time.Second, 2}, // 1.6 rounds up
		{16, 5 * time.Second, 8},
		{16, 9 * time.Second, 15},
		{16, d, 16},
		{16, time.Hour, 16},
		{256 * 16, 2500 * time.Millisecond, 1024},
		{0, time.Second, 0}, // weight 0 stays 0
	} {
		if got := slowStartWeight(tc.full, tc.elapsed, d); got != tc.want {
			t.Errorf("slowStartWeight(%d, %s, %s) = %d, want %d", tc.full, tc.elapsed, d, got, tc.want)
		}
	}
	if got := slowStartWeight(16, time.Second, 0); got != 16 {
		t.Errorf("no slow start: %d, want 16", got)
	}
}

// fakeClock is the proxy's clock in slow-start tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// TestSlowStart: a server back from down (or from drain) gets a share of
// new requests that grows with the time since it came back, on the
// proxy's clock; a reload that rebuilds its backend keeps the ramp; a
// static algorithm has none.
func TestSlowStart(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	c := New(slog.New(slog.DiscardHandler))
	c.now = clock.Now
	cfg := httpConfig(listen, "", "    slowstart: 10s\n"+servers(a.addr(), b.addr()))
	runComponent(t, c, mustConfig(t, cfg))
	waitListening(t, listen)
	client := &http.Client{}
	share := func(n int) int {
		t.Helper()
		got := 0
		for range n {
			resp, body := get(t, client, "http://"+listen+"/")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if field(body, "server") == "a" {
				got++
			}
		}
		return got
	}
	pct := func() int64 { return c.Status().([]ServiceStatus)[0].Backends[0].Servers[0].SlowStartPct }

	if got := share(20); got != 10 {
		t.Fatalf("before any comeback: a got %d of 20, want 10 (no slow start at start)", got)
	}
	c.SetServerUp("b0", "s0", false)
	c.SetServerUp("b0", "s0", true)
	c.ramp(clock.Now()) // as the ramp ticker does
	if got := share(34); got > 3 {
		t.Errorf("just back: a got %d of 34 requests, want about 2 (weight 1/16 against 16/16)", got)
	}
	if p := pct(); p != 6 {
		t.Errorf("status slow start = %d%%, want 6", p)
	}
	clock.advance(5 * time.Second)
	c.ramp(clock.Now())
	if got := share(48); got < 12 || got > 20 {
		t.Errorf("half way: a got %d of 48, want about 16 (weight 8/16 against 16/16)", got)
	}
	// A reload that rebuilds the backend (a third server) keeps the ramp.
	o := newOrigin(t, "c")
	apply(t, c, mustConfig(t, httpConfig(listen, "", "    slowstart: 10s\n"+servers(a.addr(), b.addr(), o.addr()))))
	if p := pct(); p != 50 {
		t.Fatalf("after a reload: slow start %d%%, want 50", p)
	}
	clock.advance(5 * time.Second)
	c.ramp(clock.Now())
	if p := pct(); p != 0 {
		t.Errorf("ramp over: status slow start = %d%%, want 0", p)
	}
	if got := share(30); got < 8 || got > 12 {
		t.Errorf("ramp over: a got %d of 30 among three equal servers, want 10", got)
	}

	// Leaving drain ramps too; going down mid-ramp ends it.
	c.SetServerDrained("b0", "s0", true)
	c.SetServerDrained("b0", "s0", false)
	if p := pct(); p != 6 {
		t.Errorf("ready after drain: slow start %d%%, want 6", p)
	}
	c.SetServerUp("b0", "s0", false)
	if p := pct(); p != 0 {
		t.Errorf("down mid-ramp: slow start %d%%, want 0", p)
	}

	// source is static: no ramp.
	apply(t, c, mustConfig(t, httpConfig(listen, "", "    balance: source\n    slowstart: 10s\n"+servers(a.addr(), b.addr()))))
	c.SetServerUp("b0", "s0", true)
	if p := pct(); p != 0 {
		t.Errorf("balance source: slow start %d%%, want none", p)
	}
}
