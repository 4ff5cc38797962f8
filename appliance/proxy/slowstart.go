package proxy

import (
	"strings"
	"time"

	"halb/appliance/proxy/balance"
)

// weightScale multiplies configured weights for the balancers, as HAProxy's
// BE_WEIGHT_SCALE does, so that even a server of weight 1 can ramp up in
// steps during slow start.
const weightScale = 16

// rampStep is how often slow-start weights are recomputed.
const rampStep = 100 * time.Millisecond

// slowStartWeight is the balancer weight of a server of scaled weight full,
// elapsed into a slow start of length d: it grows in proportion to the time
// from 1 to full (HAProxy's slowstart), never below 1 so that the server
// gets some traffic from the start.
func slowStartWeight(full int64, elapsed, d time.Duration) int64 {
	if d <= 0 || elapsed >= d || full <= 0 {
		return full
	}
	elapsed = max(elapsed, 0)
	// Ceiling of full*elapsed/d, in float64 to stay clear of overflow for
	// long durations in nanoseconds.
	w := int64(float64(full)*float64(elapsed)/float64(d) + 0.999999)
	return min(max(w, 1), full)
}

// startRamp begins the slow start of a server that just came back (its
// checks passed again, or it left drain); rampLocked drops it at once when
// its backend has no slow start or a static algorithm. Called with c.mu
// held.
func (c *Component) startRamp(key string) {
	now := c.now()
	c.ramps[key] = now
	c.rampLocked(now)
}

// stopRamp ends a slow start early (the server went down or was drained
// again; the next comeback starts afresh). Called with c.mu held.
func (c *Component) stopRamp(key string) {
	if _, ok := c.ramps[key]; !ok {
		return
	}
	delete(c.ramps, key)
	if _, s := c.serverByKey(key); s != nil {
		s.rampWeight.Store(0)
	}
}

// ramp recomputes the weights of the servers in slow start.
func (c *Component) ramp(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rampLocked(now)
}

func (c *Component) rampLocked(now time.Time) {
	for key, start := range c.ramps {
		be, s := c.serverByKey(key)
		wr, ok := be.weighter(s)
		if s == nil || !ok || be.cfg.SlowStart <= 0 {
			delete(c.ramps, key) // gone from the config, or no slow start any more
			continue
		}
		full := int64(s.weight) * weightScale
		w := slowStartWeight(full, now.Sub(start), be.cfg.SlowStart.D())
		wr.SetWeight(s.pos, int(w))
		if w >= full {
			s.rampWeight.Store(0)
			delete(c.ramps, key)
		} else {
			s.rampWeight.Store(w)
		}
	}
}

// serverByKey finds "backend/server" in the running backends (nil when
// either is gone). Called with c.mu held.
func (c *Component) serverByKey(key string) (*backend, *server) {
	name, srv, _ := strings.Cut(key, "/")
	be := c.backends[name]
	if be == nil {
		return nil, nil
	}
	return be, be.byName[srv]
}

// weighter is the balancer of s's tier when its weights can change.
func (be *backend) weighter(s *server) (balance.Weighter, bool) {
	if be == nil || s == nil || s.disabled {
		return nil, false
	}
	p := be.active.picker
	if s.backup {
		p = be.backup.picker
	}
	w, ok := p.(balance.Weighter)
	return w, ok
}
