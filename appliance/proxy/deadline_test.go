package proxy

import (
	"testing"
	"time"
)

// TestMono checks that a mono keeps a time's monotonic reading: durations
// between times, and deadlines, are the same as with the time.Time.
func TestMono(t *testing.T) {
	now := time.Now()
	later := now.Add(1500 * time.Millisecond)
	m, ml := monoOf(now), monoOf(later)
	if d := time.Duration(ml - m); d != 1500*time.Millisecond {
		t.Errorf("difference of monos %v, want 1.5s", d)
	}
	if d := m.time().Sub(now); d != 0 {
		t.Errorf("mono round trip off by %v", d)
	}
	if d := later.Sub(m.time()); d != 1500*time.Millisecond {
		t.Errorf("later - mono time = %v, want 1.5s", d)
	}
	hour := monoOf(now.Add(time.Hour))
	if u := time.Until(hour.time()); u <= 0 || u > time.Hour {
		t.Errorf("until a mono an hour ahead: %v", u)
	}
}
