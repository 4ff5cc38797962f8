// Package health runs the active checks of backend servers (HAProxy's
// check inter/rise/fall, keepalived's real-server checks) and reports each
// server going down or coming back, with the reason, to whoever wires it:
// the proxy takes a down server out of its pool, VRRP tracking counts a
// service without a healthy server as failed.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"strings"
	"sync"
	"time"

	"halb/appliance/certs"
	"halb/appliance/config"
)

// Change is a server going down or coming back.
type Change struct {
	Backend string `json:"backend"`
	Server  string `json:"server"`
	Address string `json:"address"`
	Up      bool   `json:"up"`
	Reason  string `json:"reason"`
	// Unchecked: the server, down until now, is no longer checked (removed
	// from the config, or disabled); Up is true so that nothing holds it
	// down, but no check passed.
	Unchecked bool `json:"unchecked,omitempty"`
}

// jitter spreads checks: each interval is drawn within ±10% so that many
// servers configured alike are not all checked in the same instant.
const jitter = 0.1

// Component checks every server of every backend.
type Component struct {
	log      *slog.Logger
	onChange func(Change)
	clock    clock
	// checker makes the checker of a check kind; tests script their own.
	checker func(kind string) (Checker, error)
	// jitter draws the factor of the next interval, within 1±jitter.
	jitter func() float64

	latest   config.Latest
	mu       sync.Mutex
	monitors map[string]*monitor // by backend/server
	// disabled holds the servers[].disabled ones (not checked) by
	// backend/server.
	disabled map[string]config.Server
	order    []string
	wg       sync.WaitGroup
	ctx      context.Context
	reports  reports
	// l4 runs the plain tcp connect checks (nil: each monitor runs its
	// own, as with a fake clock).
	l4 *l4Loop
}

// New returns the health component; onChange is called on every state
// change, one call at a time and in the order of the changes, with no lock
// of the component held (it may call Up). It runs on a checking goroutine,
// the one that applies a config, or a caller of Passive.
func New(log *slog.Logger, onChange func(Change)) *Component {
	return &Component{log: log, onChange: onChange, monitors: map[string]*monitor{}, clock: realClock{}, checker: NewChecker,
		jitter: func() float64 { return 1 - jitter + 2*jitter*rand.Float64() }}
}

// Name is the component's key in status.
func (c *Component) Name() string { return "backends" }

// Apply hands over a new config: servers whose check or address changed
// restart their checks (checked at once, as on start); unchanged ones keep
// their state; removed ones stop.
func (c *Component) Apply(cfg *config.Config) error {
	c.latest.Set(cfg)
	return nil
}

// Run checks until ctx ends, then waits for every check to stop.
func (c *Component) Run(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	if _, real := c.clock.(realClock); real {
		l, err := newL4Loop()
		if err != nil {
			c.log.Error("tcp checks run one goroutine per server", "err", err)
		} else {
			c.l4 = l
			c.wg.Go(func() {
				if err := l.run(ctx); err != nil {
					c.log.Error("tcp checks stopped", "err", err)
				}
			})
		}
	}
	c.mu.Unlock()
	c.reconcile()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			for _, m := range c.monitors {
				m.stop()
			}
			c.mu.Unlock()
			c.wg.Wait()
			return nil
		case <-c.latest.Changed():
			c.reconcile()
		}
	}
}

// Up reports whether a server is up (true for unknown servers and until
// its first results, as HAProxy; false for a disabled one).
func (c *Component) Up(backend, server string) bool {
	c.mu.Lock()
	m := c.monitors[backend+"/"+server]
	_, off := c.disabled[backend+"/"+server]
	c.mu.Unlock()
	if m == nil {
		return !off
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.up
}

// reconcile starts, restarts and stops monitors to match the latest
// config. The changes it reports (a reset, a removal) are queued before a
// new monitor starts, so they go out before anything the new check finds.
func (c *Component) reconcile() {
	defer c.flush() // after c.mu is released: onChange may call Up
	cfg := c.latest.Get()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg == nil || c.ctx == nil {
		return
	}
	keep := map[string]bool{}
	var order []string
	c.disabled = map[string]config.Server{}
	for _, b := range cfg.Backends {
		for _, s := range b.Servers {
			key := b.Name + "/" + s.Name
			order = append(order, key)
			if s.Disabled {
				// Maintenance: not checked; its monitor, if any, stops
				// below.
				c.disabled[key] = s
				continue
			}
			keep[key] = true
			spec := monitorSpec{backend: b.Name, server: s.Name, addr: s.Address, health: b.Health}
			if b.TLS != nil {
				spec.tls, spec.tlsOn = *b.TLS, true
			}
			// down: the monitor being replaced had the server down; the
			// proxy holds that verdict until told otherwise. Its
			// downtime carries on (an outage it had ends now).
			down := false
			var downtime time.Duration
			if m := c.monitors[key]; m != nil {
				if reflect.DeepEqual(m.spec, spec) {
					continue
				}
				down = m.stop()
				m.mu.Lock()
				downtime = m.st.downtimeAt(c.clock.Now())
				m.mu.Unlock()
			}
			m, err := c.newMonitor(spec)
			if err != nil {
				c.log.Error("health check not started", "backend", b.Name, "server", s.Name, "err", err)
				delete(c.monitors, key)
				continue
			}
			m.st.downtime = downtime
			c.monitors[key] = m
			switch up := m.st.up; {
			case down && up:
				c.reports.push(m.change(true, "check changed: up until its first results"))
			case !down && !up:
				c.reports.push(m.change(false, "initial: down until "+plural(m.st.rise, m.st.rise, "check")+" passed"))
			}
			switch {
			case m.probe != nil:
				c.l4.add(m.probe)
			case spec.health.Check != "none":
				c.wg.Go(m.run)
			}
		}
	}
	for key, m := range c.monitors {
		if !keep[key] {
			delete(c.monitors, key)
			if m.stop() {
				// Forgotten: a server that comes back into the config
				// (or out of maintenance) starts afresh.
				why := "removed from the config"
				if _, off := c.disabled[key]; off {
					why = "disabled"
				}
				ch := m.change(true, why)
				ch.Unchecked = true
				c.reports.push(ch)
			}
		}
	}
	c.order = order
}

type monitorSpec struct {
	backend, server, addr string
	health                config.Health
	// tls: the backend's backends[].tls (tlsOn: it has one); its http
	// checks talk TLS with it.
	tls   config.BackendTLS
	tlsOn bool
}

// monitor checks one server.
type monitor struct {
	spec    monitorSpec
	checker Checker
	target  Target
	comp    *Component
	ctx     context.Context
	cancel  context.CancelFunc
	// probe is the monitor's checks in the component's l4 loop (nil: run
	// checks them).
	probe *l4Probe

	mu sync.Mutex
	st *state
}

func (c *Component) newMonitor(spec monitorSpec) (*monitor, error) {
	h := spec.health
	ch, err := c.checker(h.Check)
	if err != nil {
		return nil, err
	}
	t := Target{Addr: spec.addr, Port: h.Port, Path: h.Path, ExpectStatus: h.ExpectStatus, Host: h.Host, Method: h.Method,
		ExpectBody: h.ExpectBody, Verify: h.Verify, Send: h.Send, Expect: h.Expect, Timeout: h.Timeout.D()}
	if spec.tlsOn && (h.Check == "http" || h.Check == "https") {
		// The backend's TLS settings, as the proxy's connections use them.
		cfg, err := certs.ClientConfig(spec.tls.Verify, spec.tls.CA, spec.tls.ServerName)
		if err != nil {
			return nil, fmt.Errorf("backends %s tls: %w", spec.backend, err)
		}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(spec.addr)
		}
		ch, t.TLS = httpChecker{tls: true}, cfg
	}
	ctx, cancel := context.WithCancel(c.ctx)
	st := newState(h.Rise, h.Fall, c.clock.Now())
	if h.Initial == "down" && h.Check != "none" {
		st = newStateDown(h.Rise, h.Fall, c.clock.Now())
	}
	m := &monitor{spec: spec, checker: ch, target: t, comp: c, ctx: ctx, cancel: cancel, st: st}
	if c.l4 != nil {
		newProbe := newL4Probe
		switch ch := ch.(type) {
		case tcpChecker:
		case httpChecker:
			if ch.tls {
				newProbe = nil
			} else {
				newProbe = newHTTPProbe
			}
		default:
			newProbe = nil
		}
		if newProbe != nil {
			m.probe = newProbe(t, h.Timeout.D(),
				func() time.Duration { return time.Duration(float64(h.Interval.D()) * c.jitter()) },
				func(err error, latency time.Duration) {
					now := c.clock.Now()
					m.record(func(st *state) (bool, string) { return st.observe(err, latency, now) })
				})
		}
	}
	return m, nil
}

// stop ends the monitor's checks and reports whether it had the server
// down. Once stop returns the monitor queues no change: a check or traffic
// result that arrives later is moot.
func (m *monitor) stop() (down bool) {
	m.cancel()
	if m.probe != nil {
		m.comp.l4.remove(m.probe)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.st.up
}

// record applies one result to the state under m.mu, unless the monitor
// was stopped, and queues the change it makes; then it delivers what is
// queued.
func (m *monitor) record(result func(st *state) (changed bool, reason string)) {
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	changed, reason := result(m.st)
	if changed {
		m.comp.reports.push(m.change(m.st.up, reason))
	}
	m.mu.Unlock()
	if changed {
		m.comp.flush()
	}
}

// run checks at once, then every interval (±jitter), until cancelled. A
// check never outlives its timeout.
func (m *monitor) run() {
	h := m.spec.health
	clk := m.comp.clock
	timer := clk.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-timer.C():
		}
		start := clk.Now()
		cctx, cancel := context.WithTimeout(m.ctx, h.Timeout.D())
		err := m.checker.Check(cctx, m.target)
		cancel()
		if m.ctx.Err() != nil {
			return // stopped or reconfigured mid-check: the result is moot
		}
		now := clk.Now()
		m.record(func(st *state) (bool, string) { return st.observe(err, now.Sub(start), now) })
		timer.Reset(time.Duration(float64(h.Interval.D()) * m.comp.jitter()))
	}
}

func (m *monitor) change(up bool, reason string) Change {
	return Change{Backend: m.spec.backend, Server: m.spec.server, Address: m.spec.addr, Up: up, Reason: reason}
}

// reports is the queue of changes on their way to onChange. A change is
// queued under the lock that made it (its monitor's, or the component's
// for a reset or a removal), so the queue holds the changes in the order
// they happened; it is delivered with no lock held, by whichever goroutine
// finds no delivery in progress, so the order is kept to the end.
type reports struct {
	mu         sync.Mutex
	queue      []Change
	delivering bool
}

func (r *reports) push(ch Change) {
	r.mu.Lock()
	r.queue = append(r.queue, ch)
	r.mu.Unlock()
}

// deliver sends what is queued, and what is queued meanwhile, to send; it
// returns at once if another goroutine is delivering (that one sends it).
func (r *reports) deliver(send func(Change)) {
	r.mu.Lock()
	if r.delivering {
		r.mu.Unlock()
		return
	}
	r.delivering = true
	for len(r.queue) > 0 {
		ch := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		send(ch)
		r.mu.Lock()
	}
	r.queue = nil
	r.delivering = false
	r.mu.Unlock()
}

// flush delivers the queued changes: logs each and calls onChange.
func (c *Component) flush() {
	c.reports.deliver(func(ch Change) {
		if ch.Unchecked {
			c.log.Info(fmt.Sprintf("server %s/%s no longer checked: %s", ch.Backend, ch.Server, ch.Reason),
				"backend", ch.Backend, "server", ch.Server)
		} else {
			word := "down"
			if ch.Up {
				word = "up"
			}
			c.log.Warn(fmt.Sprintf("server %s/%s %s: %s", ch.Backend, ch.Server, word, ch.Reason),
				"backend", ch.Backend, "server", ch.Server, "up", ch.Up)
		}
		if c.onChange != nil {
			c.onChange(ch)
		}
	})
}

// Passive takes the result of a connection attempt of real traffic to a
// server (err nil: connected); fall failures in a row take the server down
// before its next active check. Servers without checks, or whose backend
// does not observe traffic, are left alone. Under observe: layer7 only a
// good response ends a run of failures (PassiveResponse), not a connect.
func (c *Component) Passive(backend, server string, err error) {
	m := c.observing(backend, server)
	if m == nil || err == nil && m.spec.health.Observe == "layer7" {
		return
	}
	m.passive(err, " connection failures in a row from traffic")
}

// PassiveResponse takes the outcome of a request to a server of a backend
// with observe: layer7: err is a response timeout or an invalid response,
// else status is the response's. A 5xx other than 501 and 505 fails (as
// HAProxy counts them); anything else ends a run of failures.
func (c *Component) PassiveResponse(backend, server string, status int, err error) {
	m := c.observing(backend, server)
	if m == nil || m.spec.health.Observe != "layer7" {
		return
	}
	if err == nil && status >= 500 && status != 501 && status != 505 {
		err = fmt.Errorf("http status %d from traffic", status)
	}
	m.passive(err, " failed requests in a row from traffic")
}

// observing is the monitor of a checked server whose backend observes
// traffic, or nil.
func (c *Component) observing(backend, server string) *monitor {
	c.mu.Lock()
	m := c.monitors[backend+"/"+server]
	c.mu.Unlock()
	if m == nil || m.spec.health.Check == "none" || m.spec.health.Observe == "none" {
		return nil
	}
	return m
}

func (m *monitor) passive(err error, what string) {
	now := m.comp.clock.Now()
	m.record(func(st *state) (bool, string) { return st.passive(err, now, what) })
}

// BackendHealth is the check state of one backend's servers.
type BackendHealth struct {
	Name    string         `json:"name"`
	Check   string         `json:"check"`
	Servers []ServerHealth `json:"servers"`
}

// ServerHealth is one server's check state.
type ServerHealth struct {
	Name       string    `json:"name"`
	Address    string    `json:"address"`
	State      string    `json:"state"` // up, down, unchecked (check: none), or disabled (servers[].disabled: not checked)
	Checks     int64     `json:"checks"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	LatencyMS  float64   `json:"latency_ms"`
	LastError  string    `json:"last_error,omitempty"`
	LastChange time.Time `json:"last_change,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	Ups        int64     `json:"ups"`
	Downs      int64     `json:"downs"`
	// Downtime is how long the server has been down since halbd started
	// (the current outage included).
	Downtime time.Duration `json:"downtime_ns"`
}

// checkOf is the check kind of backend name in the latest config.
func (c *Component) checkOf(name string) string {
	if cfg := c.latest.Get(); cfg != nil {
		for _, b := range cfg.Backends {
			if b.Name == name {
				return b.Health.Check
			}
		}
	}
	return ""
}

// Status lists backends and servers in config order.
func (c *Component) Status() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []BackendHealth{}
	for _, key := range c.order {
		m := c.monitors[key]
		if sv, off := c.disabled[key]; off {
			name, _, _ := strings.Cut(key, "/")
			if len(out) == 0 || out[len(out)-1].Name != name {
				out = append(out, BackendHealth{Name: name, Check: c.checkOf(name)})
			}
			b := &out[len(out)-1]
			b.Servers = append(b.Servers, ServerHealth{Name: sv.Name, Address: sv.Address, State: "disabled"})
			continue
		}
		if m == nil {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Name != m.spec.backend {
			out = append(out, BackendHealth{Name: m.spec.backend, Check: m.spec.health.Check})
		}
		m.mu.Lock()
		st := m.st
		sh := ServerHealth{Name: m.spec.server, Address: m.spec.addr, State: "down", Checks: st.checks, LastCheck: st.lastCheck,
			LatencyMS: float64(st.lastLatency.Microseconds()) / 1000, LastError: st.lastErr, LastChange: st.lastChange,
			Reason: st.reason, Ups: st.ups, Downs: st.downs, Downtime: st.downtimeAt(c.clock.Now())}
		up := st.up
		m.mu.Unlock()
		switch {
		case m.spec.health.Check == "none":
			sh.State = "unchecked"
		case up:
			sh.State = "up"
		}
		b := &out[len(out)-1]
		b.Servers = append(b.Servers, sh)
	}
	return out
}
