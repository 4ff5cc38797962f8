package proxy

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency histogram buckets
// (time from a complete request head to the response head, http mode; to
// the server connection, tcp mode). The last bucket is unbounded.
var latencyBounds = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second,
}

type serviceStats struct {
	conns, active, requests, bytesIn, bytesOut atomic.Int64
	retries, noServer                          atomic.Int64
	badRequests, timeouts, serverErrors        atomic.Int64
	responses                                  [6]atomic.Int64
	latency                                    [len(latencyBounds) + 1]atomic.Int64
	latencySumMicros                           atomic.Int64
}

func (s *serviceStats) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	s.latency[i].Add(1)
	s.latencySumMicros.Add(d.Microseconds())
}

// ServiceCounters are a service's counters since it started.
type ServiceCounters struct {
	Connections       int64            `json:"connections"`
	ActiveConnections int64            `json:"active_connections"`
	Requests          int64            `json:"requests"`
	BytesIn           int64            `json:"bytes_in"`
	BytesOut          int64            `json:"bytes_out"`
	Retries           int64            `json:"retries"`
	NoServer          int64            `json:"no_server"`
	BadRequests       int64            `json:"bad_requests"`
	Timeouts          int64            `json:"timeouts"`
	ServerErrors      int64            `json:"server_errors"`
	Responses         map[string]int64 `json:"responses,omitempty"`
	Latency           []Bucket         `json:"latency"`
	LatencySumMicros  int64            `json:"latency_sum_us"`
	// MaxActive is the most connections open at once since start.
	MaxActive int64 `json:"max_active"`
	// TotalTime is the histogram of whole requests (http, HAProxy's Ta)
	// and connections (tcp, Tt).
	TotalTime Histogram `json:"total_time"`
}

// Histogram is a distribution of durations: Counts[i] observations at
// most Bounds[i] seconds and above Bounds[i-1] (not cumulative); the last
// count is above every bound. Sum is the total in seconds.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
}

// Bucket is one latency histogram bucket: Count observations at most LE
// (cumulative, as Prometheus); LE "+Inf" for the last.
type Bucket struct {
	LE    string `json:"le"`
	Count int64  `json:"count"`
}

func (s *serviceStats) snapshot() ServiceCounters {
	c := ServiceCounters{Connections: s.conns.Load(), ActiveConnections: s.active.Load(), Requests: s.requests.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(), Retries: s.retries.Load(), NoServer: s.noServer.Load(),
		BadRequests: s.badRequests.Load(), Timeouts: s.timeouts.Load(), ServerErrors: s.serverErrors.Load(),
		Responses: classMap(&s.responses), LatencySumMicros: s.latencySumMicros.Load()}
	var cum int64
	for i := range s.latency {
		cum += s.latency[i].Load()
		le := "+Inf"
		if i < len(latencyBounds) {
			le = latencyBounds[i].String()
		}
		c.Latency = append(c.Latency, Bucket{LE: le, Count: cum})
	}
	return c
}
