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
	at := testTime
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
}

func statsWith(requests int64) proxy.ServiceCounters {
	return proxy.ServiceCounters{Requests: requests}
}
