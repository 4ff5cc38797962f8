package netlab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProbeConfig configures a client probe.
type ProbeConfig struct {
	URL       string        // e.g. http://192.168.10.100/
	Rate      int           // requests per second; default 200
	KeepAlive bool          // false: a new connection per request; true: reuse connections
	Timeout   time.Duration // per request, body included; default 1s
	// Dial creates the socket inside the client's namespace. Required:
	// StartProbe panics without it, so a probe never silently runs from
	// the wrong namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// StampSent sends each request's Sent time in SentHeader, so that a
	// Backend recording arrivals knows when the client started it.
	StampSent bool
	// TLS configures the client side of an https URL (its roots, the
	// server name to send); nil: Go's defaults.
	TLS *tls.Config
}

// Sample is one request of a probe.
type Sample struct {
	Sent    time.Time     // when the request was started
	Latency time.Duration // until the body was read, or the failure
	OK      bool          // status 200 and the body read in full
	Status  int           // HTTP status; 0 without a response
	Err     string        // why it failed; "" when OK
	Backend string        // X-Backend of the response
	Node    string        // X-LB-Node of the response
	// CertSerial is the serial number (hex) of the certificate the
	// server presented on an https URL; "" without one.
	CertSerial string
}

// ProbeStats are a probe's live counts.
type ProbeStats struct {
	Sent, OK, Failed int
	InFlight         int    // sent, not yet finished
	LastBackend      string // of the most recently sent request that got a response naming one
	LastNode         string // likewise for X-LB-Node
	LastErr          string // of the most recently finished failure
}

// ProbeResult summarizes a probe's samples.
type ProbeResult struct {
	Samples []Sample // sorted by Sent
	// Period is 1/Rate, the spacing of the samples.
	Period           time.Duration
	Sent, OK, Failed int
	// LongestOutage is the longest stretch without a successful request;
	// see longestOutage for the exact rule.
	LongestOutage time.Duration
	// OutageStart is the Sent of the last success before the longest
	// outage, or of the first sample when the outage begins the run; zero
	// when there is no outage.
	OutageStart time.Time
	Backends    map[string]int // successful samples per X-Backend ("" not counted)
	Nodes       map[string]int // successful samples per X-LB-Node ("" not counted)
}

// Probe sends HTTP GETs at a fixed rate and records each one.
type Probe struct {
	cfg    ProbeConfig
	period time.Duration
	client *http.Client
	tr     *http.Transport
	reqCtx context.Context // requests outlive the caller's ctx, bounded by Timeout

	stopSending context.CancelFunc
	senderDone  chan struct{}
	wg          sync.WaitGroup

	mu          sync.Mutex
	samples     []Sample
	stats       ProbeStats
	lastRespAt  time.Time // Sent of the sample LastBackend/LastNode came from
	stopOnce    sync.Once
	finalResult *ProbeResult
}

// StartProbe begins sending requests to cfg.URL: one at once, then one per
// period (1/Rate) from a ticker, each in its own goroutine so a hung request
// does not delay the schedule. Sending ends with Stop or when ctx ends;
// requests in flight then still finish (bounded by Timeout) and are recorded.
func StartProbe(ctx context.Context, cfg ProbeConfig) *Probe {
	if cfg.Dial == nil {
		panic("netlab: ProbeConfig.Dial is required (it creates the socket in the client's namespace)")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 200
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	period := time.Second / time.Duration(cfg.Rate)
	if period <= 0 {
		period = time.Nanosecond
	}
	// Enough idle connections for every request that can be in flight.
	idle := max(cfg.Rate*int((cfg.Timeout+time.Second-1)/time.Second), 16)
	tr := &http.Transport{
		Proxy:                 nil, // never a proxy from the environment
		DialContext:           cfg.Dial,
		TLSClientConfig:       cfg.TLS,
		DisableKeepAlives:     !cfg.KeepAlive,
		DisableCompression:    true,
		MaxIdleConns:          0, // no overall limit
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // the per-request context bounds everything
	}
	p := &Probe{
		cfg:    cfg,
		period: period,
		tr:     tr,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		reqCtx:     context.WithoutCancel(ctx),
		senderDone: make(chan struct{}),
	}
	sendCtx, cancel := context.WithCancel(ctx)
	p.stopSending = cancel
	go p.send(sendCtx)
	return p
}

func (p *Probe) send(ctx context.Context) {
	defer close(p.senderDone)
	t := time.NewTicker(p.period)
	defer t.Stop()
	p.fire()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return
			}
			p.fire()
		}
	}
}

func (p *Probe) fire() {
	sent := time.Now()
	p.mu.Lock()
	p.stats.Sent++
	p.stats.InFlight++
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.record(p.do(sent))
	}()
}

// do performs one request sent at sent.
func (p *Probe) do(sent time.Time) Sample {
	s := Sample{Sent: sent}
	ctx, cancel := context.WithTimeout(p.reqCtx, p.cfg.Timeout)
	defer cancel()
	finish := func(err error) Sample {
		s.Latency = time.Since(sent)
		if err != nil {
			s.Err = errText(err)
		}
		return s
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return finish(err)
	}
	if p.cfg.StampSent {
		req.Header.Set(SentHeader, strconv.FormatInt(sent.UnixNano(), 10))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return finish(err)
	}
	defer resp.Body.Close()
	s.Status = resp.StatusCode
	s.Backend = resp.Header.Get("X-Backend")
	s.Node = resp.Header.Get("X-LB-Node")
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		s.CertSerial = resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return finish(fmt.Errorf("reading body: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return finish(errors.New("HTTP " + resp.Status))
	}
	s.OK = true
	return finish(nil)
}

// errText drops the "Get \"url\": " prefix every client error carries.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return err.Error()
}

func (p *Probe) record(s Sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, s)
	p.stats.InFlight--
	if s.OK {
		p.stats.OK++
	} else {
		p.stats.Failed++
		p.stats.LastErr = s.Err
	}
	if (s.Backend != "" || s.Node != "") && !s.Sent.Before(p.lastRespAt) {
		p.lastRespAt = s.Sent
		p.stats.LastBackend = s.Backend
		p.stats.LastNode = s.Node
	}
}

// Snapshot returns the counts so far; the probe keeps running.
func (p *Probe) Snapshot() ProbeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Stop stops sending, waits for the requests in flight (each bounded by
// Timeout) and returns the result. Later calls return the same result.
func (p *Probe) Stop() *ProbeResult {
	p.stopOnce.Do(func() {
		p.stopSending()
		<-p.senderDone
		p.wg.Wait()
		p.tr.CloseIdleConnections()
		p.mu.Lock()
		samples := slices.Clone(p.samples)
		p.mu.Unlock()
		sortSamples(samples)
		p.finalResult = summarize(samples, p.period)
	})
	return p.finalResult
}

// Window returns the same statistics over the samples sent in [from, to).
func (r *ProbeResult) Window(from, to time.Time) *ProbeResult {
	var in []Sample
	for _, s := range r.Samples {
		if !s.Sent.Before(from) && s.Sent.Before(to) {
			in = append(in, s)
		}
	}
	sortSamples(in)
	return summarize(in, r.Period)
}

// String is a one-line summary.
func (r *ProbeResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent=%d ok=%d failed=%d longest_outage=%v", r.Sent, r.OK, r.Failed, r.LongestOutage)
	for _, m := range []struct {
		name   string
		counts map[string]int
	}{{"backends", r.Backends}, {"nodes", r.Nodes}} {
		if len(m.counts) == 0 {
			continue
		}
		keys := make([]string, 0, len(m.counts))
		for k := range m.counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, " %s=", m.name)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s:%d", k, m.counts[k])
		}
	}
	return b.String()
}

func sortSamples(s []Sample) {
	slices.SortStableFunc(s, func(a, b Sample) int { return a.Sent.Compare(b.Sent) })
}

// summarize computes a result over samples sorted by Sent.
func summarize(samples []Sample, period time.Duration) *ProbeResult {
	r := &ProbeResult{
		Samples:  samples,
		Period:   period,
		Sent:     len(samples),
		Backends: map[string]int{},
		Nodes:    map[string]int{},
	}
	for _, s := range samples {
		if !s.OK {
			r.Failed++
			continue
		}
		r.OK++
		if s.Backend != "" {
			r.Backends[s.Backend]++
		}
		if s.Node != "" {
			r.Nodes[s.Node]++
		}
	}
	r.LongestOutage, r.OutageStart = longestOutage(samples, period)
	return r
}

// longestOutage is the longest stretch without a successful request, and the
// time it started, over samples sent one period apart:
//
//   - between consecutive successes s_i, s_j (by Sent) the outage is
//     s_j.Sent - s_i.Sent - period, floored at 0, starting at s_i.Sent;
//   - failures before the first success: first success's Sent - first
//     sample's Sent, starting at the first sample;
//   - failures after the last success: last sample's Sent - last success's
//     Sent, starting at the last success (a run that never recovers shows an
//     outage up to its end);
//   - no success at all: last.Sent - first.Sent + period, starting at the
//     first sample.
//
// So k failed samples in a row, one period apart, are an outage of k periods.
// On a tie the earliest outage wins. Without an outage the result is (0, zero
// time). Samples need not be sorted.
func longestOutage(samples []Sample, period time.Duration) (time.Duration, time.Time) {
	if len(samples) == 0 {
		return 0, time.Time{}
	}
	if !slices.IsSortedFunc(samples, func(a, b Sample) int { return a.Sent.Compare(b.Sent) }) {
		samples = slices.Clone(samples)
		sortSamples(samples)
	}
	first, last := samples[0], samples[len(samples)-1]

	var longest time.Duration
	var start time.Time
	consider := func(d time.Duration, from time.Time) {
		if d > longest {
			longest, start = d, from
		}
	}
	prevOK := -1
	for i, s := range samples {
		if !s.OK {
			continue
		}
		if prevOK < 0 {
			consider(s.Sent.Sub(first.Sent), first.Sent)
		} else {
			consider(s.Sent.Sub(samples[prevOK].Sent)-period, samples[prevOK].Sent)
		}
		prevOK = i
	}
	if prevOK < 0 {
		return last.Sent.Sub(first.Sent) + period, first.Sent
	}
	consider(last.Sent.Sub(samples[prevOK].Sent), samples[prevOK].Sent)
	return longest, start
}
