package timesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"halb/appliance/config"
)

// Options are the Manager's collaborators; the zero value of each is the
// real one.
type Options struct {
	// Logger: default slog.Default().
	Logger *slog.Logger
	// Events receives what an operator wants in the event log: first
	// synchronisation, a change of server, a step, an alarm raised or
	// cleared. kind is always "time". Default: none.
	Events func(kind, msg string)
	// Clock schedules the polls. Default: the system clock.
	Clock Clock
	// Query exchanges one NTP packet with a server ("host" or
	// "host:port"). Default: NTPv4 through beevik/ntp.
	Query func(ctx context.Context, server string) (Sample, error)
	// Adjust corrects the clock when time.set_clock is on. Default:
	// adjtimex(2).
	Adjust Adjuster
}

// historyLen is how many offsets of a server the jitter is computed over
// (ntpd's clock filter holds 8).
const historyLen = 8

// slewRate is the kernel's one-shot slew rate: 500 ppm.
const slewRate = 500e-6

// Manager polls the NTP servers, chooses one, corrects the clock if
// allowed, and keeps the Status.
type Manager struct {
	log    *slog.Logger
	events func(kind, msg string)
	clock  Clock
	query  func(ctx context.Context, server string) (Sample, error)
	adjust Adjuster
	// kick wakes Run for a round now (servers or config changed).
	kick chan struct{}

	mu     sync.Mutex
	cfg    config.Time
	dhcp   []string
	peers  map[string]*peer
	poll   time.Duration
	status Status
	// chosen is the server chosen in the last round ("" if none); alarm
	// the kind of the alarm raised ("" if none).
	chosen    string
	alarmKind string
	// expect is the offset the next round should measure if nothing
	// changes (the last one minus what was corrected since); at is when
	// it was measured.
	expect   time.Duration
	expectAt time.Time
	slewing  time.Duration
	haveLast bool
}

// peer is one server's state between rounds.
type peer struct {
	st      ServerStatus
	offsets []time.Duration // newest first
}

// server is one entry of the poll list.
type server struct{ name, source string }

// New returns a Manager for cfg; Run starts polling.
func New(cfg config.Time, opts Options) (*Manager, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	m := &Manager{
		log:    opts.Logger,
		events: opts.Events,
		clock:  opts.Clock,
		query:  opts.Query,
		adjust: opts.Adjust,
		kick:   make(chan struct{}, 1),
		cfg:    cfg,
		peers:  map[string]*peer{},
		poll:   cfg.MinPoll.D(),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "timesync")
	if m.events == nil {
		m.events = func(string, string) {}
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.query == nil {
		m.query = defaultQuery
	}
	if m.adjust == nil {
		m.adjust = kernelAdjuster{}
	}
	m.status.SetClock = cfg.SetClock
	return m, nil
}

// checkConfig rejects what the poll loop cannot run with. The config
// package validates the same with lines; this guards other callers.
func checkConfig(cfg config.Time) error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"time.max_offset", cfg.MaxOffset.D()}, {"time.step_threshold", cfg.StepThreshold.D()},
		{"time.min_poll", cfg.MinPoll.D()}, {"time.max_poll", cfg.MaxPoll.D()}} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("timesync: %s: %v must be positive", f.name, f.d))
		}
	}
	if cfg.MaxPoll.D() < cfg.MinPoll.D() {
		errs = append(errs, fmt.Errorf("timesync: time.max_poll: %v is below time.min_poll (%v)", cfg.MaxPoll.D(), cfg.MinPoll.D()))
	}
	return errors.Join(errs...)
}

// Run polls until ctx ends, then returns nil once its queries are done.
func (m *Manager) Run(ctx context.Context) error {
	for {
		m.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.mu.Lock()
		poll := m.poll
		m.mu.Unlock()
		t := m.clock.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-m.kick:
			t.Stop()
		}
	}
}

// Apply takes a new time section: a change of servers or poll bounds
// polls at once from min_poll.
func (m *Manager) Apply(cfg config.Time) error {
	if err := checkConfig(cfg); err != nil {
		return err
	}
	m.mu.Lock()
	old := m.cfg
	m.cfg = cfg
	m.status.SetClock = cfg.SetClock
	changed := !slices.Equal(old.Servers, cfg.Servers) || old.MinPoll != cfg.MinPoll || old.MaxPoll != cfg.MaxPoll
	if changed {
		m.poll = cfg.MinPoll.D()
	}
	m.mu.Unlock()
	if changed {
		m.wake()
	}
	return nil
}

// SetDHCPServers sets the servers the DHCP lease offered (option 42);
// they are polled beside the configured ones, with Source "dhcp".
func (m *Manager) SetDHCPServers(servers []string) {
	m.mu.Lock()
	changed := !slices.Equal(m.dhcp, servers)
	if changed {
		m.dhcp = slices.Clone(servers)
		m.poll = m.cfg.MinPoll.D()
	}
	m.mu.Unlock()
	if changed {
		m.wake()
	}
}

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Status returns a copy of the latest state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Servers = slices.Clone(s.Servers)
	return s
}

// Offset is the clock's offset (server time minus ours) after the last
// round's correction, and whether the last round chose a server at all.
// It is what the peers compare to measure clock skew between nodes.
func (m *Manager) Offset() (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status.Offset, m.chosen != ""
}

// Test queries servers once each and says what they answered and which
// the selection would drop or choose; the Manager's state is unchanged.
func (m *Manager) Test(ctx context.Context, servers []string) []ServerStatus {
	m.mu.Lock()
	list := m.serverList()
	m.mu.Unlock()
	srvs := make([]server, len(servers))
	for i, name := range servers {
		srvs[i] = server{name, "config"}
		for _, s := range list {
			if s.name == name {
				srvs[i].source = s.source
			}
		}
	}
	samples, errs := m.queryAll(ctx, srvs)
	now := m.clock.Now()
	out := make([]ServerStatus, len(srvs))
	var cands []candidate
	var at []int
	for i, s := range srvs {
		out[i] = ServerStatus{Name: s.name, Source: s.source, Address: samples[i].Address, LastPoll: now}
		if errs[i] != nil {
			out[i].Error = errs[i].Error()
			continue
		}
		fill(&out[i], samples[i], 0)
		cands = append(cands, candidate{s.name, samples[i].Offset, rootDistance(samples[i], 0), samples[i].Stratum})
		at = append(at, i)
	}
	keep := selectTruechimers(cands)
	for j := range cands {
		out[at[j]].Falseticker = !slices.Contains(keep, j)
	}
	if c := choose(cands, keep, ""); c >= 0 {
		out[at[c]].Chosen = true
	}
	return out
}

// serverList is the configured servers, then DHCP's that are not also
// configured. m.mu is held.
func (m *Manager) serverList() []server {
	var out []server
	for _, s := range m.cfg.Servers {
		if !slices.ContainsFunc(out, func(x server) bool { return x.name == s }) {
			out = append(out, server{s, "config"})
		}
	}
	for _, s := range m.dhcp {
		if !slices.ContainsFunc(out, func(x server) bool { return x.name == s }) {
			out = append(out, server{s, "dhcp"})
		}
	}
	return out
}

// queryAll queries every server at once and waits for all answers.
func (m *Manager) queryAll(ctx context.Context, srvs []server) ([]Sample, []error) {
	samples := make([]Sample, len(srvs))
	errs := make([]error, len(srvs))
	var wg sync.WaitGroup
	for i, s := range srvs {
		wg.Go(func() { samples[i], errs[i] = m.query(ctx, s.name) })
	}
	wg.Wait()
	return samples, errs
}

// fill copies a usable sample into a server's status.
func fill(st *ServerStatus, s Sample, jit time.Duration) {
	st.Address = s.Address
	st.Reachable = true
	st.Offset, st.Delay, st.Jitter, st.Stratum = s.Offset, s.Delay, jit, s.Stratum
	st.Error = ""
}

// round polls every server once, chooses, corrects and sets the status.
func (m *Manager) round(ctx context.Context) {
	m.mu.Lock()
	srvs := m.serverList()
	poll := m.poll
	m.mu.Unlock()

	qctx, cancel := context.WithTimeout(ctx, min(queryTimeout, poll))
	samples, errs := m.queryAll(qctx, srvs)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := m.clock.Now()

	m.mu.Lock()
	d := m.evaluate(srvs, samples, errs, now, poll)
	m.mu.Unlock()

	var corrected time.Duration
	var adjErr error
	switch d.action {
	case actStep:
		if adjErr = m.adjust.Step(d.offset); adjErr == nil {
			corrected = d.offset
		}
	case actSlew:
		adjErr = m.adjust.Slew(d.offset)
	}

	m.mu.Lock()
	evs := m.finish(d, corrected, adjErr, now)
	m.mu.Unlock()
	for _, e := range evs {
		m.log.Info(e)
		m.events("time", e)
	}
	if adjErr != nil {
		m.log.Error("correct the clock", "err", adjErr)
	}
}

type action int

const (
	actNone action = iota
	actSlew
	actStep
)

// decision is what a round's samples call for.
type decision struct {
	chosen     string
	offset     time.Duration
	action     action
	reachable  int
	lost       bool // a server that answered the last round did not
	added      bool // a server polled for the first time
	noMajority bool
	falsetick  bool
}

// decide is the correction for a measured offset: none unless set_clock;
// a step beyond step_threshold; a slew below it.
func decide(cfg config.Time, offset time.Duration) action {
	switch {
	case !cfg.SetClock || offset == 0:
		return actNone
	case offset.Abs() > cfg.StepThreshold.D():
		return actStep
	default:
		return actSlew
	}
}

// evaluate records the round's samples, selects and chooses. m.mu is held.
func (m *Manager) evaluate(srvs []server, samples []Sample, errs []error, now time.Time, poll time.Duration) decision {
	var d decision
	keepNames := map[string]bool{}
	var cands []candidate
	for i, s := range srvs {
		keepNames[s.name] = true
		p := m.peers[s.name]
		if p == nil {
			p = &peer{}
			m.peers[s.name] = p
			d.added = true
		}
		wasReachable := p.st.Reachable
		p.st.Name, p.st.Source, p.st.LastPoll, p.st.Poll = s.name, s.source, now, poll
		p.st.Falseticker, p.st.Chosen = false, false
		if errs[i] != nil {
			p.st.Reachable = false
			p.st.Error = errs[i].Error()
			if samples[i].Address != "" {
				p.st.Address = samples[i].Address
			}
			d.lost = d.lost || wasReachable
			continue
		}
		p.offsets = append([]time.Duration{samples[i].Offset}, p.offsets[:min(len(p.offsets), historyLen-1)]...)
		jit := jitter(p.offsets)
		fill(&p.st, samples[i], jit)
		cands = append(cands, candidate{s.name, samples[i].Offset, rootDistance(samples[i], jit), samples[i].Stratum})
		d.reachable++
	}
	for name := range m.peers {
		if !keepNames[name] {
			delete(m.peers, name)
		}
	}
	keep := selectTruechimers(cands)
	d.noMajority = len(cands) > 0 && len(keep) == 0
	for j, c := range cands {
		if !slices.Contains(keep, j) {
			m.peers[c.name].st.Falseticker = true
			d.falsetick = true
		}
	}
	if c := choose(cands, keep, m.chosen); c >= 0 {
		d.chosen, d.offset = cands[c].name, cands[c].offset
		m.peers[d.chosen].st.Chosen = true
		d.action = decide(m.cfg, d.offset)
	}
	m.status.Servers = m.status.Servers[:0]
	for _, s := range srvs {
		m.status.Servers = append(m.status.Servers, m.peers[s.name].st)
	}
	return d
}

// finish applies the outcome of the correction to the status, the alarm
// and the poll interval, and returns the events. m.mu is held.
func (m *Manager) finish(d decision, corrected time.Duration, adjErr error, now time.Time) []string {
	var evs []string
	cfg := m.cfg
	offset := d.offset - corrected
	switch {
	case d.action == actStep && adjErr == nil:
		m.status.Steps++
		evs = append(evs, fmt.Sprintf("stepped the clock by %s (server %s)", signed(d.offset), d.chosen))
	case d.action == actSlew && adjErr == nil:
		m.status.Slews++
	case adjErr != nil:
		evs = append(evs, fmt.Sprintf("cannot correct the clock by %s: %v", signed(d.offset), adjErr))
	}

	// Poll: back to min_poll on a step, a big change, a loss or no
	// choice; double while stable: the offset below step_threshold, where
	// the last round leads to expect it, every server answering and
	// agreeing, none new.
	stableDelta := cfg.StepThreshold.D() / 4
	big := m.haveLast && (offset-m.predicted(now)).Abs() > stableDelta
	switch {
	case d.chosen == "" || d.lost || big || d.action == actStep:
		m.poll = cfg.MinPoll.D()
	case m.haveLast && !d.added && !d.falsetick && offset.Abs() <= cfg.StepThreshold.D():
		m.poll = min(2*m.poll, cfg.MaxPoll.D())
	}
	m.poll = max(min(m.poll, cfg.MaxPoll.D()), cfg.MinPoll.D())
	for i := range m.status.Servers {
		m.status.Servers[i].Poll = m.poll
		m.peers[m.status.Servers[i].Name].st.Poll = m.poll
	}

	if d.chosen != "" {
		m.haveLast, m.expect, m.expectAt = true, offset, now
		m.slewing = 0
		if d.action == actSlew && adjErr == nil {
			m.slewing = d.offset
		}
		m.status.Offset, m.status.Server, m.status.LastSync = offset, d.chosen, now
		switch {
		case m.chosen == "":
			evs = append(evs, fmt.Sprintf("synchronised to %s: offset %s", d.chosen, signed(d.offset)))
		case m.chosen != d.chosen:
			evs = append(evs, fmt.Sprintf("server changed from %s to %s: offset %s", m.chosen, d.chosen, signed(d.offset)))
		}
	} else {
		m.haveLast = false
	}
	m.chosen = d.chosen

	kind, reason := "", ""
	switch {
	case len(m.status.Servers) == 0:
	case d.reachable == 0:
		kind, reason = "noanswer", "no server answers"
	case d.noMajority:
		kind, reason = "nomajority", fmt.Sprintf("no majority among the %d servers that answer: all dropped as falsetickers", d.reachable)
	case offset.Abs() > cfg.MaxOffset.D():
		kind, reason = "offset", fmt.Sprintf("offset %s beyond max_offset %v", signed(offset), cfg.MaxOffset.D())
	}
	m.status.Synchronized = d.chosen != "" && offset.Abs() <= cfg.MaxOffset.D()
	if kind != m.alarmKind {
		if kind != "" {
			evs = append(evs, "alarm: "+reason)
		} else {
			evs = append(evs, "alarm cleared (was: "+m.status.Alarm+")")
		}
		m.alarmKind = kind
	}
	m.status.Alarm = reason
	return evs
}

// predicted is the offset the last measurement leads to expect now: the
// last offset less what the one-shot slew has absorbed since.
func (m *Manager) predicted(now time.Time) time.Duration {
	absorbed := time.Duration(float64(now.Sub(m.expectAt)) * slewRate)
	if absorbed >= m.slewing.Abs() {
		return m.expect - m.slewing
	}
	if m.slewing < 0 {
		absorbed = -absorbed
	}
	return m.expect - absorbed
}

// signed formats an offset with its sign: "+1.2ms", "-3s".
func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}
