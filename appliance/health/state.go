package health

import (
	"strconv"
	"time"
)

// state is one server's health as HAProxy counts it: a server starts up
// (until its first results say otherwise), goes down after fall failed
// checks in a row and comes back after rise passed checks in a row. It is
// pure: the caller gives the time, so tests need no clock.
type state struct {
	rise, fall int

	up             bool
	okRun, failRun int
	checks         int64
	lastCheck      time.Time
	lastLatency    time.Duration
	lastErr        string
	lastChange     time.Time
	ups, downs     int64
	reason         string // why the last change happened
	connFails      int    // failures in a row from traffic
	// downtime is the length of the outages that ended; downSince the
	// start of the current one (while down).
	downtime  time.Duration
	downSince time.Time
}

func newState(rise, fall int, now time.Time) *state {
	return &state{rise: max(rise, 1), fall: max(fall, 1), up: true, lastChange: now}
}

// newStateDown is a state that starts down (health.initial: down): rise
// passed checks bring the server in.
func newStateDown(rise, fall int, now time.Time) *state {
	s := newState(rise, fall, now)
	s.up = false
	s.downSince = now
	return s
}

// downtimeAt is the time the server was down until now, the current
// outage included.
func (s *state) downtimeAt(now time.Time) time.Duration {
	if s.up {
		return s.downtime
	}
	return s.downtime + max(now.Sub(s.downSince), 0)
}

// setUp records a change of state at now.
func (s *state) setUp(up bool, now time.Time) {
	s.downtime = s.downtimeAt(now) // an outage that ends now
	s.up, s.lastChange = up, now
	if up {
		s.ups++
		return
	}
	s.downs++
	s.downSince = now
}

// observe records one check result (err nil: passed) and reports whether
// the server changed state; reason explains a change for an operator.
func (s *state) observe(err error, latency time.Duration, now time.Time) (changed bool, reason string) {
	s.checks++
	s.lastCheck, s.lastLatency = now, latency
	if err == nil {
		s.lastErr = ""
		s.okRun++
		s.failRun = 0
		if !s.up && s.okRun >= s.rise {
			s.setUp(true, now)
			s.reason = plural(s.okRun, s.rise, "check") + " passed"
			return true, s.reason
		}
		return false, ""
	}
	s.lastErr = err.Error()
	s.failRun++
	s.okRun = 0
	if s.up && s.failRun >= s.fall {
		s.setUp(false, now)
		s.reason = s.lastErr + ", " + plural(s.failRun, s.fall, "failure")
		return true, s.reason
	}
	return false, ""
}

// passive records the result of a connection attempt by real traffic
// (HAProxy's observe layer4): fall failures in a row take an up server
// down at once, before its next active check; only active checks bring it
// back.
func (s *state) passive(err error, now time.Time, what string) (changed bool, reason string) {
	if err == nil {
		s.connFails = 0
		return false, ""
	}
	s.connFails++
	if !s.up || s.connFails < s.fall {
		return false, ""
	}
	s.setUp(false, now)
	s.okRun = 0
	s.lastErr = err.Error()
	s.reason = s.lastErr + ", " + strconv.Itoa(s.connFails) + what
	s.connFails = 0
	return true, s.reason
}

// plural writes "3/3 failures".
func plural(n, of int, what string) string {
	s := strconv.Itoa(n) + "/" + strconv.Itoa(of) + " " + what
	if of != 1 {
		s += "s"
	}
	return s
}
