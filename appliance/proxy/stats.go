package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// timeBounds are the upper bounds of the time histograms (queue, connect,
// response and total times), from half a millisecond, a fast LAN
// exchange, to ten seconds, past the usual timeouts; the last bucket is
// unbounded. One slice for every histogram, so that they sum across
// backends.
var timeBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// timeBoundsSeconds are timeBounds in seconds, shared by every snapshot.
var timeBoundsSeconds = func() []float64 {
	out := make([]float64, len(timeBounds))
	for i, b := range timeBounds {
		out[i] = b.Seconds()
	}
	return out
}()

// histogram counts durations in the buckets of timeBounds with atomics:
// observe takes no lock and allocates nothing.
type histogram struct {
	counts   [len(timeBounds) + 1]atomic.Uint64
	sumNanos atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(timeBounds) && d > timeBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: timeBoundsSeconds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	out.Sum = time.Duration(h.sumNanos.Load()).Seconds()
	return out
}

// raiseMax raises m to n if n is larger (a high-water mark).
func raiseMax(m *atomic.Int64, n int64) {
	for {
		cur := m.Load()
		if n <= cur || m.CompareAndSwap(cur, n) {
			return
		}
	}
}

// latencyBounds are the upper bounds of the latency histogram buckets
// (time from a complete request head to the response head, http mode; to
// the server connection, tcp mode). The last bucket is unbounded.
var latencyBounds = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second,
}

// serviceStats are a service's counters. They belong to the service's
// name (counters), not to a service object: a reload that rebuilds the
// service (its mode changed) keeps them, so they never go backwards.
type serviceStats struct {
	conns, active, maxActive, requests, bytesIn, bytesOut atomic.Int64
	retries, noServer                                     atomic.Int64
	badRequests, timeouts, serverErrors                   atomic.Int64
	responses                                             [6]atomic.Int64
	latency                                               [len(latencyBounds) + 1]atomic.Int64
	latencySumMicros                                      atomic.Int64
	totalTime                                             histogram
	// TLS: handshakes completed, of them resumed, failed by reason (by
	// index in HandshakeFailures), completed by version (1.2, 1.3).
	tlsOK, tlsResumed atomic.Int64
	tlsFail           [10]atomic.Int64
	tlsVersions       [2]atomic.Int64
	// sni_routes: connections routed by name, sent to the default, and
	// refused for their ClientHello by reason (index in hello.Reasons()).
	sniRoutedN, sniDefault atomic.Int64
	helloFail              [8]atomic.Int64
}

// opened counts a client connection open (conns counts it at accept).
func (s *serviceStats) opened() { raiseMax(&s.maxActive, s.active.Add(1)) }

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
	// TLS counts the handshakes of a service that terminates TLS.
	TLS *TLSCounters `json:"tls,omitempty"`
	// SNI counts the routing of a service with sni_routes.
	SNI *SNICounters `json:"sni,omitempty"`
}

// Histogram is a distribution of durations: Counts[i] observations at
// most Bounds[i] seconds and above Bounds[i-1] (not cumulative); the last
// count is above every bound. Sum is the total in seconds. Every histogram
// of the proxy has the same Bounds (0.5ms to 10s), one slice that callers
// must not modify.
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
		Responses: classMap(&s.responses), LatencySumMicros: s.latencySumMicros.Load(),
		MaxActive: s.maxActive.Load(), TotalTime: s.totalTime.snapshot()}
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

// counters holds the counters of services, backends and servers by name
// for the component's life. A reload that builds a new service, backend or
// server object (its config changed) finds the counters of its name here,
// so they never go backwards, as Prometheus expects of a counter; a name
// removed and configured again carries on from its numbers. Entries are
// few (one per name ever configured) and never dropped.
type counters struct {
	mu       sync.Mutex
	services map[string]*serviceStats
	backends map[string]*backendStats
	servers  map[string]*serverStats // by "backend/server"
}

func (c *counters) service(name string) *serviceStats {
	return counterOf(&c.mu, &c.services, name)
}

func (c *counters) backend(name string) *backendStats {
	return counterOf(&c.mu, &c.backends, name)
}

func (c *counters) server(backend, server string) *serverStats {
	return counterOf(&c.mu, &c.servers, backend+"/"+server)
}

// counterOf returns (*m)[key], made on first use.
func counterOf[T any](mu *sync.Mutex, m *map[string]*T, key string) *T {
	mu.Lock()
	defer mu.Unlock()
	if *m == nil {
		*m = map[string]*T{}
	}
	v := (*m)[key]
	if v == nil {
		v = new(T)
		(*m)[key] = v
	}
	return v
}
