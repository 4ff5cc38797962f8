package timesync

import (
	"slices"
	"testing"
	"time"

	"halb/appliance/config"
)

const ms = time.Millisecond

func TestSelectTruechimers(t *testing.T) {
	c := func(name string, off, dist time.Duration) candidate { return candidate{name, off, dist, 2} }
	for _, tc := range []struct {
		name string
		in   []candidate
		keep []int
	}{
		{"one server is its own majority", []candidate{c("a", 40*ms, ms)}, []int{0}},
		{"two that agree", []candidate{c("a", 0, ms), c("b", ms/2, ms)}, []int{0, 1}},
		{"two that disagree: no majority", []candidate{c("a", 0, ms), c("b", 3*time.Second, ms)}, nil},
		{"three, one lies by +3s", []candidate{c("a", 0, ms), c("liar", 3*time.Second, ms), c("b", ms/2, ms)}, []int{0, 2}},
		{"touching intervals agree", []candidate{c("a", 0, ms), c("b", 2*ms, ms), c("liar", time.Second, ms)}, []int{0, 1}},
		{"five, two liars agreeing with each other", []candidate{
			c("a", 0, ms), c("l1", 3*time.Second, ms), c("b", ms/2, ms), c("l2", 3*time.Second+ms/2, ms), c("c", -ms/2, ms)},
			[]int{0, 2, 4}},
		{"four split two and two: no majority", []candidate{
			c("a", 0, ms), c("b", 0, ms), c("l1", time.Second, ms), c("l2", time.Second, ms)}, nil},
		{"a wide interval covering the majority's region is kept", []candidate{
			c("a", 0, ms), c("b", ms, ms), c("wide", 50*ms, 60*ms), c("liar", time.Second, ms)}, []int{0, 1, 2}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectTruechimers(tc.in); !slices.Equal(got, tc.keep) {
				t.Errorf("selectTruechimers = %v, want %v", got, tc.keep)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	c := []candidate{{"a", 0, 5 * ms, 3}, {"b", 0, 2 * ms, 3}, {"c", 0, 2 * ms, 2}, {"liar", 3 * time.Second, ms, 1}}
	keep := []int{0, 1, 2}
	if got := choose(c, keep, ""); got != 2 {
		t.Errorf("choose = %d, want 2 (lowest distance, then lowest stratum; the liar is not kept)", got)
	}
	if got := choose(c, keep, "b"); got != 1 {
		t.Errorf("choose with b current = %d, want 1 (b stays: its distance is within twice the best)", got)
	}
	if got := choose(c, keep, "a"); got != 2 {
		t.Errorf("choose with a current = %d, want 2 (a is more than twice the best)", got)
	}
	if got := choose(c, keep, "liar"); got != 2 {
		t.Errorf("choose with the liar current = %d, want 2 (a falseticker never stays)", got)
	}
	if got := choose(c, nil, "a"); got != -1 {
		t.Errorf("choose with no truechimer = %d, want -1", got)
	}
}

func TestJitter(t *testing.T) {
	if got := jitter([]time.Duration{5 * ms}); got != 0 {
		t.Errorf("jitter of one offset = %v, want 0", got)
	}
	// Differences from the newest: 3ms, -3ms, 0 -> sqrt(18/3) ms.
	got := jitter([]time.Duration{10 * ms, 13 * ms, 7 * ms, 10 * ms})
	if want := time.Duration(2449490); (got - want).Abs() > time.Microsecond {
		t.Errorf("jitter = %v, want %v", got, want)
	}
}

func TestDecide(t *testing.T) {
	on := config.Time{SetClock: true, StepThreshold: config.Duration(128 * ms)}
	off := on
	off.SetClock = false
	for _, tc := range []struct {
		cfg    config.Time
		offset time.Duration
		want   action
	}{
		{off, 3 * time.Second, actNone},
		{off, 10 * ms, actNone},
		{on, 3 * time.Second, actStep},
		{on, -3 * time.Second, actStep},
		{on, 129 * ms, actStep},
		{on, 128 * ms, actSlew},
		{on, -10 * ms, actSlew},
		{on, 0, actNone},
	} {
		if got := decide(tc.cfg, tc.offset); got != tc.want {
			t.Errorf("decide(set_clock %v, %v) = %v, want %v", tc.cfg.SetClock, tc.offset, got, tc.want)
		}
	}
}

func TestSampleValidate(t *testing.T) {
	good := Sample{Offset: ms, Delay: 2 * ms, Stratum: 2, RootDelay: ms, RootDispersion: ms}
	if err := good.Validate(); err != nil {
		t.Fatalf("good sample: %v", err)
	}
	for name, mod := range map[string]func(*Sample){
		"kiss-o'-death (stratum 0)": func(s *Sample) { s.Stratum = 0 },
		"stratum 16":                func(s *Sample) { s.Stratum = 16 },
		"leap 3 (unsynchronised)":   func(s *Sample) { s.Leap = 3 },
		"negative delay":            func(s *Sample) { s.Delay = -ms },
		"negative root dispersion":  func(s *Sample) { s.RootDispersion = -ms },
		"root distance beyond 16s":  func(s *Sample) { s.RootDispersion = 17 * time.Second },
	} {
		s := good
		mod(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, s)
		}
	}
}
