package tui

import (
	"time"

	"halb/appliance/health"
	"halb/appliance/proxy"
	"halb/appliance/vrrp"
)

// The component status types the console shows, as the daemon sends them.
type (
	VRRPInstance  = vrrp.InstanceStatus
	ServiceStatus = proxy.ServiceStatus
	BackendHealth = health.BackendHealth
	ServerHealth  = health.ServerHealth
)

// Rates keeps each service's requests per second over a window of
// samples, from the differences of its request counter between polls.
type Rates struct {
	size int
	last map[string]sample
	hist map[string][]float64
}

type sample struct {
	at       time.Time
	requests int64
}

func newRates(size int) *Rates {
	return &Rates{size: size, last: map[string]sample{}, hist: map[string][]float64{}}
}

// add takes one poll's counters. A counter that went back (the daemon
// restarted, the service was re-created) starts a new series.
func (r *Rates) add(at time.Time, services []ServiceStatus) {
	seen := map[string]bool{}
	for _, s := range services {
		seen[s.Name] = true
		n := s.Stats.Requests
		if s.Mode == "tcp" {
			n = s.Stats.Connections
		}
		prev, ok := r.last[s.Name]
		r.last[s.Name] = sample{at, n}
		if !ok || n < prev.requests {
			continue
		}
		dt := at.Sub(prev.at).Seconds()
		if dt <= 0 {
			continue
		}
		h := append(r.hist[s.Name], float64(n-prev.requests)/dt)
		if len(h) > r.size {
			h = h[len(h)-r.size:]
		}
		r.hist[s.Name] = h
	}
	for name := range r.last {
		if !seen[name] {
			delete(r.last, name)
			delete(r.hist, name)
		}
	}
}

// Series returns a service's rates, oldest first.
func (r *Rates) Series(service string) []float64 { return r.hist[service] }

// Now returns a service's latest rate, 0 when unknown.
func (r *Rates) Now(service string) float64 {
	h := r.hist[service]
	if len(h) == 0 {
		return 0
	}
	return h[len(h)-1]
}
