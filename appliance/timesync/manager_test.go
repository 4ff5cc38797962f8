package timesync

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// fakeClock's timers fire when the test advances it; armed reports each
// timer's duration as the poll loop creates it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
	on bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 100)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	t := &fakeTimer{at: f.now.Add(d), c: make(chan time.Time, 1), on: true}
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	f.armed <- d
	return fakeTimerRef{f, t}
}

type fakeTimerRef struct {
	f *fakeClock
	t *fakeTimer
}

func (r fakeTimerRef) C() <-chan time.Time { return r.t.c }
func (r fakeTimerRef) Stop() bool {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	was := r.t.on
	r.t.on = false
	return was
}

// advance moves the time on by d and fires the timers due.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.timers {
		if t.on && !t.at.After(f.now) {
			t.on = false
			t.c <- f.now
		}
	}
}

// fakeNet answers queries from a table the test changes between rounds.
type fakeNet struct {
	mu      sync.Mutex
	answers map[string]Sample // absent: no answer
	queries map[string]int
}

func (n *fakeNet) set(server string, s Sample) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.answers[server] = s
}

func (n *fakeNet) down(server string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.answers, server)
}

func (n *fakeNet) query(_ context.Context, server string) (Sample, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queries[server]++
	s, ok := n.answers[server]
	if !ok {
		return Sample{}, errors.New("i/o timeout")
	}
	return s, nil
}

// recorder is an Adjuster that remembers its calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) Step(d time.Duration) error { r.add("step " + signed(d)); return nil }
func (r *recorder) Slew(d time.Duration) error { r.add("slew " + signed(d)); return nil }
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}
func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// events collects the Manager's events.
type events struct {
	mu   sync.Mutex
	msgs []string
}

func (e *events) add(kind, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, kind+": "+msg)
}
func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.msgs)
}

func honest(off time.Duration) Sample {
	return Sample{Offset: off, Delay: 2 * ms, Stratum: 2, RootDelay: 4 * ms, RootDispersion: ms}
}

// harness runs a Manager on the fakes.
type harness struct {
	t   *testing.T
	m   *Manager
	clk *fakeClock
	net *fakeNet
	adj *recorder
	ev  *events
}

func timeConfig(servers ...string) config.Time {
	return config.Time{Servers: servers, MaxOffset: config.Duration(500 * ms), StepThreshold: config.Duration(128 * ms),
		MinPoll: config.Duration(time.Second), MaxPoll: config.Duration(8 * time.Second)}
}

func start(t *testing.T, cfg config.Time, answers map[string]Sample) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), net: &fakeNet{answers: answers, queries: map[string]int{}}, adj: &recorder{}, ev: &events{}}
	m, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Clock: h.clk, Query: h.net.query, Adjust: h.adj, Events: h.ev.add})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// poll waits for the loop to finish a round and arm its timer, and
// returns the interval it armed.
func (h *harness) poll() time.Duration {
	h.t.Helper()
	select {
	case d := <-h.clk.armed:
		return d
	case <-time.After(testutil.WaitTimeout):
		h.t.Fatalf("the poll loop armed no timer in %v", testutil.WaitTimeout)
		return 0
	}
}

// next lets the armed interval pass and waits for the next round.
func (h *harness) next(d time.Duration) time.Duration {
	h.t.Helper()
	h.clk.advance(d)
	return h.poll()
}

func serverOf(st Status, name string) ServerStatus {
	for _, s := range st.Servers {
		if s.Name == name {
			return s
		}
	}
	return ServerStatus{}
}

func TestManagerDropsTheLiar(t *testing.T) {
	h := start(t, timeConfig("a", "liar", "b"), map[string]Sample{
		"a": honest(ms), "liar": honest(3 * time.Second), "b": honest(ms / 2)})
	h.poll()
	st := h.m.Status()
	if !serverOf(st, "liar").Falseticker || serverOf(st, "a").Falseticker || serverOf(st, "b").Falseticker {
		t.Errorf("falsetickers: %+v, want only the liar", st.Servers)
	}
	if st.Server != "a" && st.Server != "b" {
		t.Errorf("chosen %q, want a or b", st.Server)
	}
	if !st.Synchronized || st.Alarm != "" || st.Offset.Abs() > ms {
		t.Errorf("status %+v, want synchronised within 1ms and no alarm", st)
	}
	if calls := h.adj.list(); len(calls) != 0 {
		t.Errorf("set_clock off, but the adjuster was called: %v", calls)
	}
	if off, ok := h.m.Offset(); !ok || off != st.Offset {
		t.Errorf("Offset() = %v, %v, want %v, true", off, ok, st.Offset)
	}
	if ev := h.ev.list(); len(ev) != 1 || !strings.HasPrefix(ev[0], "time: synchronised to ") {
		t.Errorf("events %q, want one 'synchronised to'", ev)
	}
}

func TestManagerAlarms(t *testing.T) {
	h := start(t, timeConfig("liar"), map[string]Sample{"liar": honest(3 * time.Second)})
	h.poll()
	st := h.m.Status()
	if st.Offset != 3*time.Second || st.Synchronized || st.Alarm != "offset +3s beyond max_offset 500ms" {
		t.Errorf("status %+v, want offset 3s, not synchronised, the offset alarm", st)
	}
	h.net.set("liar", honest(ms))
	d := h.next(time.Second)
	if st := h.m.Status(); st.Alarm != "" || !st.Synchronized {
		t.Errorf("status %+v after the server came right, want synchronised and no alarm", st)
	}
	h.net.down("liar")
	h.next(d)
	if st := h.m.Status(); st.Alarm != "no server answers" || st.Synchronized || serverOf(st, "liar").Reachable {
		t.Errorf("status %+v, want 'no server answers'", st)
	}
	if _, ok := h.m.Offset(); ok {
		t.Error("Offset() ok with no server answering")
	}
	want := []string{
		"time: synchronised to liar: offset +3s",
		"time: alarm: offset +3s beyond max_offset 500ms",
		"time: alarm cleared (was: offset +3s beyond max_offset 500ms)",
		"time: alarm: no server answers",
	}
	if ev := h.ev.list(); !slices.Equal(ev, want) {
		t.Errorf("events\n%q\nwant\n%q", ev, want)
	}
}

func TestManagerNoMajority(t *testing.T) {
	h := start(t, timeConfig("a", "b"), map[string]Sample{"a": honest(0), "b": honest(3 * time.Second)})
	h.poll()
	st := h.m.Status()
	if !strings.HasPrefix(st.Alarm, "no majority among the 2 servers") || st.Synchronized || st.Server != "" {
		t.Errorf("status %+v, want the no-majority alarm and nothing chosen", st)
	}
	if !serverOf(st, "a").Falseticker || !serverOf(st, "b").Falseticker {
		t.Errorf("servers %+v, want both falsetickers", st.Servers)
	}
}

func TestManagerNoServersNoAlarm(t *testing.T) {
	h := start(t, timeConfig(), map[string]Sample{})
	h.poll()
	if st := h.m.Status(); st.Alarm != "" || st.Synchronized {
		t.Errorf("status %+v, want no alarm and not synchronised with no servers", st)
	}
}

func TestManagerPollAdapts(t *testing.T) {
	h := start(t, timeConfig("a", "b"), map[string]Sample{"a": honest(ms), "b": honest(ms)})
	var got []time.Duration
	d := h.poll()
	got = append(got, d)
	for range 5 {
		d = h.next(d)
		got = append(got, d)
	}
	if want := []time.Duration{1, 2, 4, 8, 8, 8}; !slices.Equal(got, scale(want)) {
		t.Fatalf("stable poll intervals %v, want %v", got, scale(want))
	}
	// A server lost: back to min_poll, then doubling again.
	h.net.down("b")
	d = h.next(d)
	if d != time.Second {
		t.Errorf("after losing b, poll %v, want 1s", d)
	}
	d = h.next(d)
	if d != 2*time.Second {
		t.Errorf("stable with one server, poll %v, want 2s", d)
	}
	// A big change of offset (40ms > step_threshold/4): back to min_poll.
	h.net.set("a", honest(41*ms))
	if d = h.next(d); d != time.Second {
		t.Errorf("after a 40ms jump, poll %v, want 1s", d)
	}
	// Apply with new servers polls at once from min_poll.
	h.next(d)
	cfg := timeConfig("a", "c")
	h.net.set("c", honest(41*ms))
	if err := h.m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if d = h.poll(); d != time.Second {
		t.Errorf("after Apply, poll %v, want 1s", d)
	}
	if st := h.m.Status(); len(st.Servers) != 2 || st.Servers[1].Name != "c" || !st.Servers[1].Reachable {
		t.Errorf("servers after Apply %+v, want a and c", st.Servers)
	}
}

func scale(s []time.Duration) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, d := range s {
		out[i] = d * time.Second
	}
	return out
}

func TestManagerStepAndSlew(t *testing.T) {
	cfg := timeConfig("a")
	cfg.SetClock = true
	h := start(t, cfg, map[string]Sample{"a": honest(3 * time.Second)})
	d := h.poll()
	st := h.m.Status()
	if st.Steps != 1 || st.Offset != 0 || !st.Synchronized || st.Alarm != "" || !st.SetClock {
		t.Errorf("after a 3s offset with set_clock: %+v, want one step, offset 0, synchronised", st)
	}
	h.net.set("a", honest(-50*ms))
	h.next(d)
	h.net.set("a", honest(-30*ms))
	h.next(time.Second)
	st = h.m.Status()
	if st.Steps != 1 || st.Slews != 2 || st.Offset != -30*ms {
		t.Errorf("after -50ms, -30ms: %+v, want 2 slews and offset -30ms", st)
	}
	if got, want := h.adj.list(), []string{"step +3s", "slew -50ms", "slew -30ms"}; !slices.Equal(got, want) {
		t.Errorf("adjuster calls %q, want %q", got, want)
	}
	if ev := h.ev.list(); !slices.Contains(ev, "time: stepped the clock by +3s (server a)") {
		t.Errorf("events %q, want the step", ev)
	}
}

func TestManagerSlewDoesNotLookLikeAJump(t *testing.T) {
	// A slew of 100ms absorbs 0.5ms per second: 8s later the offset is
	// 96ms, which is the expected course, not a change that resets the poll.
	cfg := timeConfig("a")
	cfg.SetClock = true
	h := start(t, cfg, map[string]Sample{"a": honest(100 * ms)})
	d := h.poll()
	h.net.set("a", honest(96*ms))
	h.clk.advance(7 * time.Second) // the timer fires at 1s; the round reads 8s later
	if d = h.poll(); d != 2*time.Second {
		t.Errorf("poll after the expected slew progress %v, want 2s", d)
	}
}

func TestManagerDHCPServers(t *testing.T) {
	h := start(t, timeConfig("a"), map[string]Sample{"a": honest(ms), "d": honest(ms), "e": honest(2 * ms)})
	h.poll()
	h.m.SetDHCPServers([]string{"a", "d", "e"})
	h.poll() // a round at once, without advancing the clock
	st := h.m.Status()
	var got []string
	for _, s := range st.Servers {
		got = append(got, s.Name+"/"+s.Source)
	}
	if want := []string{"a/config", "d/dhcp", "e/dhcp"}; !slices.Equal(got, want) {
		t.Errorf("servers %v, want %v", got, want)
	}
}

func TestManagerTestLeavesStateAlone(t *testing.T) {
	h := start(t, timeConfig("a"), map[string]Sample{"a": honest(ms), "x": honest(0), "liar": honest(3 * time.Second), "y": honest(ms)})
	h.poll()
	before := h.m.Status()
	res := h.m.Test(context.Background(), []string{"x", "liar", "y", "gone"})
	if len(res) != 4 || !res[1].Falseticker || res[0].Falseticker || res[3].Error == "" || res[3].Reachable {
		t.Errorf("Test = %+v, want the liar marked, gone with an error", res)
	}
	if res[0].Stratum != 2 || res[0].Offset != 0 || !(res[0].Chosen || res[2].Chosen) {
		t.Errorf("Test = %+v, want figures and x or y chosen", res)
	}
	if after := h.m.Status(); !equalStatus(before, after) {
		t.Errorf("Test changed the status:\n%+v\n%+v", before, after)
	}
}

func equalStatus(a, b Status) bool {
	return slices.Equal(a.Servers, b.Servers) && a.Offset == b.Offset && a.Server == b.Server && a.Alarm == b.Alarm
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := timeConfig("a")
	cfg.MaxPoll = config.Duration(500 * ms)
	cfg.MaxOffset = 0
	_, err := New(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "time.max_poll") || !strings.Contains(err.Error(), "time.max_offset") {
		t.Errorf("New = %v, want errors naming time.max_poll and time.max_offset", err)
	}
}
