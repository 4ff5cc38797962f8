package health

import (
	"errors"
	"testing"
	"time"
)

// TestStateRiseFall: a server starts up, goes down after fall failures in
// a row (a pass in between resets the count), comes back after rise
// passes in a row, and says why.
func TestStateRiseFall(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newState(2, 3, t0)
	fail := errors.New("http status 503 (want 200)")
	steps := []struct {
		err     error
		changed bool
		up      bool
		reason  string
	}{
		{fail, false, true, ""},
		{fail, false, true, ""},
		{nil, false, true, ""}, // resets the failure run
		{fail, false, true, ""},
		{fail, false, true, ""},
		{fail, true, false, "http status 503 (want 200), 3/3 failures"},
		{fail, false, false, ""},
		{nil, false, false, ""},
		{fail, false, false, ""}, // resets the pass run
		{nil, false, false, ""},
		{nil, true, true, "2/2 checks passed"},
		{nil, false, true, ""},
	}
	for i, st := range steps {
		now := t0.Add(time.Duration(i+1) * time.Second)
		changed, reason := s.observe(st.err, 5*time.Millisecond, now)
		if changed != st.changed || s.up != st.up || reason != st.reason {
			t.Fatalf("step %d: changed %v up %v reason %q; want %v %v %q", i, changed, s.up, reason, st.changed, st.up, st.reason)
		}
		if changed && !s.lastChange.Equal(now) {
			t.Fatalf("step %d: last change %v, want %v", i, s.lastChange, now)
		}
	}
	if s.ups != 1 || s.downs != 1 || s.checks != int64(len(steps)) {
		t.Fatalf("ups %d downs %d checks %d", s.ups, s.downs, s.checks)
	}
}

// TestStateRiseFallOne: rise 1 / fall 1 react to a single result.
func TestStateRiseFallOne(t *testing.T) {
	s := newState(1, 1, time.Unix(0, 0))
	if changed, reason := s.observe(errors.New("connect 10.0.0.1:80: connection refused"), 0, time.Unix(1, 0)); !changed || s.up || reason != "connect 10.0.0.1:80: connection refused, 1/1 failure" {
		t.Fatalf("fall 1: %v %v %q", changed, s.up, reason)
	}
	if changed, reason := s.observe(nil, 0, time.Unix(2, 0)); !changed || !s.up || reason != "1/1 check passed" {
		t.Fatalf("rise 1: %v %v %q", changed, s.up, reason)
	}
}

// TestStatePassive: fall connection failures in a row from traffic take an
// up server down at once; a success in between resets the count; active
// checks bring it back.
func TestStatePassive(t *testing.T) {
	s := newState(2, 3, time.Unix(0, 0))
	const conns = " connection failures in a row from traffic"
	refused := errors.New("dial tcp 10.0.0.11:80: i/o timeout")
	s.passive(refused, time.Unix(1, 0), conns)
	s.passive(refused, time.Unix(1, 0), conns)
	s.passive(nil, time.Unix(1, 0), conns)
	s.passive(refused, time.Unix(2, 0), conns)
	s.passive(refused, time.Unix(2, 0), conns)
	if !s.up {
		t.Fatal("down after 2 failures in a row (fall 3)")
	}
	changed, reason := s.passive(refused, time.Unix(3, 0), conns)
	if !changed || s.up || reason != "dial tcp 10.0.0.11:80: i/o timeout, 3 connection failures in a row from traffic" {
		t.Fatalf("%v %v %q", changed, s.up, reason)
	}
	if changed, _ := s.passive(refused, time.Unix(4, 0), conns); changed {
		t.Fatal("a down server changed again")
	}
	s.observe(nil, 0, time.Unix(5, 0))
	if changed, _ := s.observe(nil, 0, time.Unix(6, 0)); !changed || !s.up {
		t.Fatal("active checks did not bring it back")
	}
}

// TestStateDowntime: downtime adds up the outages, the current one to the
// time asked; a server that starts down (initial: down) is down from then.
func TestStateDowntime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	fail := errors.New("refused")
	s := newState(1, 1, t0)
	s.observe(fail, 0, at(10)) // down at 10
	if d := s.downtimeAt(at(15)); d != 5*time.Second {
		t.Fatalf("downtime %v during the outage, want 5s", d)
	}
	s.observe(nil, 0, at(20)) // up at 20
	if d := s.downtimeAt(at(100)); d != 10*time.Second {
		t.Fatalf("downtime %v after a 10s outage, want 10s", d)
	}
	s.passive(fail, at(200), " failures from traffic") // down at 200
	if d := s.downtimeAt(at(230)); d != 40*time.Second {
		t.Fatalf("downtime %v, want 10s + 30s so far", d)
	}
	s.observe(nil, 0, at(250))
	if d := s.downtimeAt(at(300)); d != 60*time.Second {
		t.Fatalf("downtime %v, want 10s + 50s", d)
	}
	d := newStateDown(2, 3, t0)
	if got := d.downtimeAt(at(7)); got != 7*time.Second {
		t.Fatalf("initially down: downtime %v, want 7s", got)
	}
}
