package netlab

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// flapHealth is the flapping scenario's check: HTTP, at the classic
// topology's settings (HAProxy's defaults: inter 2s, fall 3, rise 2).
var flapHealth = fmt.Sprintf("check: http, path: /healthz, interval: %s, timeout: %s, rise: %d, fall: %d",
	ClassicCheckInterval, ClassicCheckTimeout, ClassicCheckRise, ClassicCheckFall)

// TestBackendFlapping: under the mixed load (100 requests/s on keep-alive
// connections, 100/s on new ones), s1 is killed (its listener and every
// connection closed: connects are refused) and restarted 2s later, every
// 8s, with health checks on. Reported beside HAProxy's with the same check
// settings: the failed requests and what they were, and s1's share.
// Asserted: s1 is back in use after each restart (it answers requests
// before it is killed again, or after the last restart), for both.
func TestBackendFlapping(t *testing.T) {
	cycles := pick(4, 40)
	const down, up = 2 * time.Second, 6 * time.Second
	cfg := SoloConfig{
		Services: []SoloService{{Name: "web", Port: 80, Backend: "web"}},
		Backends: []SoloBackend{{Name: "web", Health: flapHealth, Servers: []SoloServer{{Name: "s1"}, {Name: "s2"}}}},
	}
	soloScenario(t, "backend-flapping", 2, cfg, func(t *testing.T, s *Solo, row *Row) {
		s1 := s.Servers["s1"]
		ka := s.Probe(context.Background(), 80, 100, true, 2*time.Second)
		nc := s.Probe(context.Background(), 80, 100, false, 2*time.Second)
		time.Sleep(2 * time.Second)
		t0 := time.Now()
		var restarts []time.Time
		for range cycles {
			s1.SetMode(ModeRefuse)
			time.Sleep(down)
			s1.SetMode(ModeOK)
			if err := s1.RelistenErr(); err != nil {
				t.Fatal(err)
			}
			restarts = append(restarts, time.Now())
			time.Sleep(up)
		}
		// After the last restart: until s1 answers again (bounded).
		back := WaitFor(10*time.Second, func() bool { return answeredAfter(s1, restarts[len(restarts)-1]) })
		time.Sleep(time.Second)
		rk, rn := ka.Stop(), nc.Stop()
		wk, wn := rk.Window(t0, time.Now()), rn.Window(t0, time.Now())
		row.Sent, row.Failed = wk.Sent+wn.Sent, wk.Failed+wn.Failed
		row.Notef("%d kills of s1 (down %s, up %s): keep-alive client %d/%d failed, new-connection client %d/%d failed",
			cycles, down, up, wk.Failed, wk.Sent, wn.Failed, wn.Sent)
		if row.Failed > 0 {
			row.Notef("failures: %s", joinNonEmpty(errorKinds(wk), errorKinds(wn)))
		}
		row.Notef("answered by s1: %d, by s2: %d", wk.Backends["s1"]+wn.Backends["s1"], wk.Backends["s2"]+wn.Backends["s2"])
		unused := 0
		for i, r := range restarts {
			if i+1 < len(restarts) && !answeredBetween(s1, r, r.Add(up)) {
				unused++
			}
		}
		if unused > 0 {
			row.Notef("s1 got no request in %d of its %d up phases of %s", unused, len(restarts)-1, up)
		}
		if !back {
			t.Errorf("s1 answered nothing in the 10s after its last restart")
		}
	})
}

// answeredAfter reports whether b got a request sent after t.
func answeredAfter(b *Backend, t time.Time) bool {
	return answeredBetween(b, t, time.Now().Add(time.Hour))
}

// answeredBetween reports whether b got a request sent in [from, to).
func answeredBetween(b *Backend, from, to time.Time) bool {
	for _, a := range b.Arrivals() {
		if !a.Sent.Before(from) && a.Sent.Before(to) {
			return true
		}
	}
	return false
}

func joinNonEmpty(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += p
	}
	return out
}
