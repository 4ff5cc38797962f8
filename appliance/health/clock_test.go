package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"halb/internal/testutil"
)

// fakeClock moves only when the test advances it; its timers fire then.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	resets []time.Duration // every Reset, in order
}

type fakeTimer struct {
	clk   *fakeClock
	c     chan time.Time
	when  time.Time
	armed bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clk: f, c: make(chan time.Time, 1)}
	f.timers = append(f.timers, t)
	t.arm(d)
	return t
}

// arm sets the timer to fire d from now (at once if d <= 0); f.mu held.
func (t *fakeTimer) arm(d time.Duration) {
	t.when, t.armed = t.clk.now.Add(d), true
	if d <= 0 {
		t.armed = false
		t.c <- t.clk.now
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.clk.resets = append(t.clk.resets, d)
	t.arm(d)
}

func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	t.armed = false
	t.clk.mu.Unlock()
}

// advance moves the clock by d and fires the timers due by then.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.timers {
		if t.armed && !t.when.After(f.now) {
			t.armed = false
			t.c <- f.now
		}
	}
}

// waitArmed waits (in real time) until n timers are armed: the checking
// goroutines have finished their checks and wait for the next interval.
func (f *fakeClock) waitArmed(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		armed := 0
		for _, tm := range f.timers {
			if tm.armed {
				armed++
			}
		}
		f.mu.Unlock()
		if armed == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timers armed, want %d", armed, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// scripted is a checker whose result the test sets per server address.
type scripted struct {
	mu     sync.Mutex
	result map[string]error
	checks map[string]int
	last   Target
}

func (s *scripted) set(addr string, err error) {
	s.mu.Lock()
	s.result[addr] = err
	s.mu.Unlock()
}

func (s *scripted) count(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks[addr]
}

func (s *scripted) Check(_ context.Context, t Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[t.Addr]++
	s.last = t
	return s.result[t.Addr]
}

// runFake runs the component on yaml with the fake clock and the scripted
// checker; jitter is the interval factor (nil: the component's own).
func runFake(t *testing.T, yaml string, clk *fakeClock, chk *scripted, jitter func() float64) (*Component, *recorder) {
	t.Helper()
	rec := &recorder{ch: make(chan Change, 1024)}
	c := New(slog.New(slog.DiscardHandler), rec.record)
	c.clock = clk
	c.checker = func(string) (Checker, error) { return chk, nil }
	if jitter != nil {
		c.jitter = jitter
	}
	start(t, c, yaml)
	return c, rec
}

func (r *recorder) none(t *testing.T, when string) {
	t.Helper()
	select {
	case c := <-r.ch:
		t.Fatalf("%s: unexpected change %+v", when, c)
	default:
	}
}

// TestScheduleRiseFall steps the checking loop on a fake clock: checked at
// once on start, then every interval; down after exactly fall failed
// checks, up after exactly rise passed ones, with the change times of the
// clock.
func TestScheduleRiseFall(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	chk := &scripted{result: map[string]error{}, checks: map[string]int{}}
	const addr = "10.0.0.1:80"
	c, rec := runFake(t, `
node: {name: lb1}
backends:
  - name: web
    health: {check: tcp, interval: 2s, timeout: 1500ms, rise: 2, fall: 3}
    servers: [{name: web1, address: "`+addr+`"}]
`, clk, chk, func() float64 { return 1 })
	clk.waitArmed(t, 1) // the check at start ran
	if n := chk.count(addr); n != 1 {
		t.Fatalf("%d checks at start, want 1", n)
	}
	chk.mu.Lock()
	if chk.last.Addr != addr || chk.last.Timeout != 1500*time.Millisecond {
		t.Errorf("checked %+v, want %s with the timeout 1.5s its errors name", chk.last, addr)
	}
	chk.mu.Unlock()
	step := func(n int) {
		for range n {
			clk.advance(2 * time.Second)
			clk.waitArmed(t, 1)
		}
	}
	chk.set(addr, errors.New("connect 10.0.0.1:80: connection refused"))
	step(2)
	rec.none(t, "after 2 of 3 failures")
	step(1)
	ch := rec.wait(t, time.Second)
	if ch.Up || !strings.Contains(ch.Reason, "connection refused, 3/3 failures") {
		t.Fatalf("change %+v, want down after 3/3 failures", ch)
	}
	st := c.Status().([]BackendHealth)[0].Servers[0]
	if want := t0.Add(6 * time.Second); !st.LastChange.Equal(want) || st.State != "down" || st.Checks != 4 {
		t.Fatalf("status %+v, want down at t0+6s after 4 checks", st)
	}
	chk.set(addr, nil)
	step(1)
	rec.none(t, "after 1 of 2 passed checks")
	step(1)
	if ch := rec.wait(t, time.Second); !ch.Up || ch.Reason != "2/2 checks passed" {
		t.Fatalf("change %+v, want up after 2/2 checks passed", ch)
	}
	if st := c.Status().([]BackendHealth)[0].Servers[0]; !st.LastChange.Equal(t0.Add(10*time.Second)) || st.Ups != 1 || st.Downs != 1 {
		t.Fatalf("status %+v, want up at t0+10s, 1 up and 1 down", st)
	}
	// A failure between passes resets the run: fall counts failures in a
	// row.
	for _, err := range []error{errors.New("x"), errors.New("x"), nil, errors.New("x"), errors.New("x")} {
		chk.set(addr, err)
		step(1)
	}
	rec.none(t, "after fail, fail, pass, fail, fail")
	if n := chk.count(addr); n != 11 {
		t.Errorf("%d checks in 20s at interval 2s (and one at start), want 11", n)
	}
}

// TestScheduleJitter: each interval is drawn within ±10%, so 200 servers
// started together spread out instead of being checked in the same
// millisecond.
func TestScheduleJitter(t *testing.T) {
	clk := newFakeClock()
	chk := &scripted{result: map[string]error{}, checks: map[string]int{}}
	var b strings.Builder
	b.WriteString("node: {name: lb1}\nbackends:\n  - name: many\n    health: {check: tcp, interval: 1s}\n    servers:\n")
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, "      - {name: s%d, address: \"10.0.%d.%d:80\"}\n", i, i/250, i%250+1)
	}
	runFake(t, b.String(), clk, chk, nil)
	clk.waitArmed(t, n)
	clk.mu.Lock()
	resets := append([]time.Duration(nil), clk.resets...)
	clk.mu.Unlock()
	if len(resets) != n {
		t.Fatalf("%d intervals drawn, want %d", len(resets), n)
	}
	perMS := map[time.Duration]int{}
	busiest := 0
	for _, d := range resets {
		if d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Errorf("interval %v outside 1s ±10%%", d)
		}
		ms := d.Truncate(time.Millisecond)
		perMS[ms]++
		busiest = max(busiest, perMS[ms])
	}
	// 200 draws over 200 ms: about one per millisecond; a few collide.
	if len(perMS) < 100 || busiest > 8 {
		t.Errorf("next checks fall in %d distinct milliseconds, at most %d in one; want a spread", len(perMS), busiest)
	}
}

// TestObserve: what traffic reports counts per the backend's observe:
// layer7 takes 5xx (but 501, 505) and response errors in a row, a good
// response resets the run and a connect does not; layer4 counts only
// failed connects; none ignores traffic.
func TestObserve(t *testing.T) {
	clk := newFakeClock()
	chk := &scripted{result: map[string]error{}, checks: map[string]int{}}
	c, rec := runFake(t, `
node: {name: lb1}
backends:
  - name: l7
    health: {check: tcp, fall: 3, observe: layer7}
    servers: [{name: s, address: "10.0.0.1:80"}]
  - name: l4
    health: {check: tcp, fall: 3}
    servers: [{name: s, address: "10.0.0.2:80"}]
  - name: off
    health: {check: tcp, fall: 1, observe: none}
    servers: [{name: s, address: "10.0.0.3:80"}]
`, clk, chk, func() float64 { return 1 })
	clk.waitArmed(t, 3)
	timeout := errors.New("no response within 30s")
	c.PassiveResponse("l7", "s", 500, nil)
	c.PassiveResponse("l7", "s", 503, nil)
	c.Passive("l7", "s", nil) // a connect: no reset under layer7
	c.PassiveResponse("l7", "s", 501, nil)
	c.PassiveResponse("l7", "s", 200, nil) // resets
	c.PassiveResponse("l7", "s", 502, nil)
	c.PassiveResponse("l7", "s", 0, timeout)
	rec.none(t, "l7 after two failures in a row")
	c.PassiveResponse("l7", "s", 504, nil)
	if ch := rec.wait(t, time.Second); ch.Backend != "l7" || ch.Up || ch.Reason != "http status 504 from traffic, 3 failed requests in a row from traffic" {
		t.Fatalf("change %+v", ch)
	}

	for range 5 {
		c.PassiveResponse("l4", "s", 500, nil)
		c.PassiveResponse("off", "s", 500, nil)
		c.Passive("off", "s", timeout)
	}
	rec.none(t, "5xx on layer4, anything on none")
	c.Passive("l4", "s", timeout)
	c.Passive("l4", "s", timeout)
	c.Passive("l4", "s", nil) // resets under layer4
	c.Passive("l4", "s", timeout)
	c.Passive("l4", "s", timeout)
	rec.none(t, "l4 after a reset")
	c.Passive("l4", "s", timeout)
	if ch := rec.wait(t, time.Second); ch.Backend != "l4" || ch.Up {
		t.Fatalf("change %+v", ch)
	}
}

// changesOf returns the changes recorded so far for one server, as
// "up: reason" or "down: reason".
func (r *recorder) changesOf(backend, server string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.changes {
		if c.Backend == backend && c.Server == server {
			word := "down"
			if c.Up {
				word = "up"
			}
			out = append(out, word+": "+c.Reason)
		}
	}
	return out
}

// waitChanges waits until n changes are recorded for a server and returns
// them.
func (r *recorder) waitChanges(t *testing.T, backend, server string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.changesOf(backend, server)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: changes %q, want %d", backend, server, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReportsInOrderOfChanges: when a reconcile restarts a server's check,
// the reset it reports (up until the first results, or initial: down) goes
// out before anything the new check finds; else the proxy keeps the stale
// verdict and no later check corrects it (a down server kept in the pool,
// an up one kept out). The race is made certain: reconcile makes server b's
// checker after it has started a's new check, and the checker factory holds
// it there until a's new check has reported its result.
func TestReportsInOrderOfChanges(t *testing.T) {
	const a, b = "10.0.0.1:80", "10.0.0.2:80"
	conf := func(health string) string {
		if health == "" {
			return "node: {name: lb1}\n"
		}
		return `node: {name: lb1}
backends:
  - name: web
    health: {` + health + `}
    servers: [{name: a, address: "` + a + `"}, {name: b, address: "` + b + `"}]
`
	}
	const refused = "down: connect 10.0.0.1:80: connection refused, 1/1 failure"
	for _, tc := range []struct {
		name          string
		before, after string // health of the config before and of the one that restarts the checks
		fail          bool   // a's checks fail
		want          []string
	}{
		{"check changed", "check: tcp, interval: 2s, rise: 1, fall: 1", "check: tcp, interval: 3s, rise: 1, fall: 1", true,
			[]string{refused, "up: check changed: up until its first results", refused}},
		{"initial down", "", "check: tcp, interval: 2s, rise: 1, fall: 1, initial: down", false,
			[]string{"down: initial: down until 1/1 check passed", "up: 1/1 check passed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			chk := &scripted{result: map[string]error{}, checks: map[string]int{}}
			if tc.fail {
				chk.set(a, errors.New("connect 10.0.0.1:80: connection refused"))
			}
			rec := &recorder{ch: make(chan Change, 1024)}
			c := New(slog.New(slog.DiscardHandler), rec.record)
			c.clock = clk
			// a's new check has reported once its result is recorded as
			// often as wanted.
			result := tc.want[len(tc.want)-1]
			count := func(changes []string) (n int) {
				for _, ch := range changes {
					if ch == result {
						n++
					}
				}
				return n
			}
			reported := func() bool { return count(rec.changesOf("web", "a")) == count(tc.want) }
			var calls, holdAt atomic.Int64
			c.checker = func(string) (Checker, error) {
				if calls.Add(1) == holdAt.Load() { // b's checker
					for deadline := time.Now().Add(5 * time.Second); !reported(); time.Sleep(time.Millisecond) {
						if time.Now().After(deadline) {
							t.Errorf("a's new check reported nothing while reconcile was held: %q", rec.changesOf("web", "a"))
							break
						}
					}
				}
				return chk, nil
			}
			start(t, c, conf(tc.before))
			if tc.before != "" {
				clk.waitArmed(t, 2)
				rec.waitChanges(t, "web", "a", 1)
			}
			holdAt.Store(calls.Load() + 2)
			c.Apply(mustParse(t, conf(tc.after)))
			rec.waitChanges(t, "web", "a", len(tc.want))
			clk.waitArmed(t, 2)
			got := rec.changesOf("web", "a")
			if !slices.Equal(got, tc.want) {
				t.Fatalf("a's changes, in the order reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if up := c.Up("web", "a"); up != strings.HasPrefix(got[len(got)-1], "up") {
				t.Fatalf("Up(a) = %v, but the last change reported is %q", up, got[len(got)-1])
			}
		})
	}
}

// TestPassiveOfReplacedCheck: traffic that looked its server up just
// before a reconcile replaced the server's check lands on the old check;
// it must change nothing, or the proxy would keep a down verdict the new
// check (which has the server up) never lifts.
func TestPassiveOfReplacedCheck(t *testing.T) {
	clk := newFakeClock()
	chk := &scripted{result: map[string]error{}, checks: map[string]int{}}
	conf := func(interval string) string {
		return `node: {name: lb1}
backends:
  - name: web
    health: {check: tcp, interval: ` + interval + `, fall: 1}
    servers: [{name: a, address: "10.0.0.1:80"}]
`
	}
	c, rec := runFake(t, conf("2s"), clk, chk, func() float64 { return 1 })
	clk.waitArmed(t, 1)
	c.mu.Lock()
	old := c.monitors["web/a"]
	c.mu.Unlock()
	c.Apply(mustParse(t, conf("3s")))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		replaced := c.monitors["web/a"] != old
		c.mu.Unlock()
		if replaced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the check was not replaced")
		}
	}
	clk.waitArmed(t, 1)
	old.passive(errors.New("connect 10.0.0.1:80: connection refused"), " connection failures in a row from traffic")
	rec.none(t, "a failure from traffic on the replaced check")
	if !c.Up("web", "a") {
		t.Fatal("Up(a) = false: the replaced check's verdict leaked")
	}
}

// TestDowntime: the status's downtime counts the outages on the
// component's clock, the current one included, and carries on when a
// reload changes the server's check.
func TestDowntime(t *testing.T) {
	clk := newFakeClock()
	chk := &scripted{result: map[string]error{}, checks: map[string]int{}}
	const addr = "10.0.0.1:80"
	cfg := func(interval string) string {
		return `
node: {name: lb1}
backends:
  - name: web
    health: {check: tcp, interval: ` + interval + `, rise: 1, fall: 1}
    servers: [{name: web1, address: "` + addr + `"}]
`
	}
	c, rec := runFake(t, cfg("2s"), clk, chk, func() float64 { return 1 })
	downtime := func() time.Duration { return c.Status().([]BackendHealth)[0].Servers[0].Downtime }
	clk.waitArmed(t, 1)
	// flip makes the next check's result err, which changes the state to
	// up; two seconds after the change the downtime is want.
	flip := func(err error, up bool, want time.Duration) {
		t.Helper()
		chk.set(addr, err)
		clk.advance(2 * time.Second)
		if ch := rec.wait(t, time.Second); ch.Up != up {
			t.Fatalf("change %+v, want up %v", ch, up)
		}
		clk.waitArmed(t, 1)
		clk.advance(2 * time.Second)
		clk.waitArmed(t, 1)
		if d := downtime(); d != want {
			t.Fatalf("downtime %v two seconds after going up %v, want %v", d, up, want)
		}
	}
	flip(errors.New("refused"), false, 2*time.Second) // down at t0+2s: in the outage
	flip(nil, true, 4*time.Second)                    // up at t0+6s: a 4s outage
	c.Apply(mustParse(t, cfg("3s")))
	testutil.WaitFor(t, "the new check", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		m := c.monitors["web/web1"]
		return m != nil && m.spec.health.Interval.D() == 3*time.Second
	})
	if d := downtime(); d != 4*time.Second {
		t.Fatalf("downtime %v after the check changed, want the 4s it had", d)
	}
}
