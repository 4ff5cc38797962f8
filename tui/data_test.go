package tui

import (
	"slices"
	"testing"
	"time"

	"halb/appliance/proxy"
)

func TestResample(t *testing.T) {
	if got := resample([]float64{1, 2, 3}, 5); !slices.Equal(got, []float64{1, 2, 3}) {
		t.Errorf("short series: %v", got)
	}
	if got := resample([]float64{1, 3, 5, 7, 0, 0}, 3); !slices.Equal(got, []float64{2, 6, 0}) {
		t.Errorf("6 into 3: %v", got)
	}
}

// TestRates: requests per second from counter differences; a counter
// that goes back (a restarted daemon) starts a new series.
func TestRates(t *testing.T) {
	r := newRates(60)
	at := testNow
	add := func(n int64) {
		r.add(at, []ServiceStatus{{Name: "web", Mode: "http", Stats: statsWith(n)}})
		at = at.Add(2 * time.Second)
	}
	add(100)
	add(120)
	add(160)
	if got := r.Series("web"); !slices.Equal(got, []float64{10, 20}) {
		t.Fatalf("series %v, want [10 20]", got)
	}
	add(5) // restarted
	add(15)
	if got := r.Series("web"); !slices.Equal(got, []float64{10, 20, 5}) || r.Now("web") != 5 {
		t.Fatalf("after a restart: %v", got)
	}
	// A read 250ms after the last one (an event asked for it) makes no
	// rate of its own: one request there is not 4 per second.
	at = at.Add(-2*time.Second + 250*time.Millisecond)
	r.add(at, []ServiceStatus{{Name: "web", Mode: "http", Stats: statsWith(16)}})
	if got := r.Series("web"); !slices.Equal(got, []float64{10, 20, 5}) {
		t.Fatalf("a read 250ms after the last: %v", got)
	}
	r.add(at.Add(1750*time.Millisecond), []ServiceStatus{{Name: "web", Mode: "http", Stats: statsWith(19)}})
	if got := r.Series("web"); !slices.Equal(got, []float64{10, 20, 5, 2}) {
		t.Fatalf("the next read, 2s after the last sample: %v", got)
	}
}

func statsWith(requests int64) proxy.ServiceCounters {
	return proxy.ServiceCounters{Requests: requests}
}
