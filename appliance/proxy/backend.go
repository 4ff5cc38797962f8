package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"halb/appliance/certs"
	"halb/appliance/config"
	"halb/appliance/proxy/balance"
	"halb/appliance/proxy/proxyproto"
)

// stickyTableMax bounds a source stick table (HAProxy's stick-table size).
const stickyTableMax = 1 << 20

// idleServerConnMax is how long an idle server connection stays in the pool.
// Servers close idle keep-alive connections themselves (nginx after 75s,
// Apache after 5s); closing ours first avoids most reuse races.
const idleServerConnMax = 4 * time.Second

// idlePerServer bounds the idle connections kept per server.
const idlePerServer = 256

var (
	errNoServer     = errors.New("no server available")
	errQueueTimeout = errors.New("queue timeout")
)

// backend is a pool of servers with its balancer, persistence and queue.
// A reload that leaves a backend's config unchanged keeps the object (and so
// its idle connections and stick table); a changed backend gets a new object
// and the old one finishes its sessions. Counters belong to the backend's
// and servers' names (counters), so they carry on across either.
type backend struct {
	cfg     config.Backend
	tlsErr  error // backends[].tls could not be set up (its CA): every dial fails with it
	servers []*server
	byName  map[string]*server
	// active holds the servers that are neither backup nor disabled,
	// backup the backup servers that are not disabled, each with its
	// own balancer (disabled servers are in neither).
	active, backup tier
	stick          *balance.Table // source persistence; nil otherwise
	cookie         string         // cookie persistence name; "" otherwise
	limited        bool           // some server has maxconn
	observe        func(backend, server string, err error)
	// observeResp, set for backends with observe: layer7, is told every
	// request's outcome.
	observeResp func(backend, server string, status int, err error)

	mu     sync.Mutex
	freed  chan struct{} // closed and replaced when a limited server frees a slot
	queued atomic.Int64
	stats  *backendStats
}

// backendStats are a backend's counters, kept by name across reloads.
type backendStats struct {
	requests, noServer, queueTimeouts, queueMax atomic.Int64
	// Sessions on servers, bytes from and to clients, responses sent to
	// clients by class, connection retries and redispatches.
	active, total, bytesIn, bytesOut, retries, redispatches atomic.Int64
	responses                                               [6]atomic.Int64
	queueTime, connectTime, responseTime, totalTime         histogram
}

// serverStats are a server's counters, kept by backend and server name
// across reloads.
type serverStats struct {
	// active counts the sessions on the server of every backend object
	// of its name (a reload's old one finishing included), for the
	// status; the balancer and maxconn count server.active.
	active, maxActive, total, connectErrors  atomic.Int64
	bytesIn, bytesOut, retries, redispatches atomic.Int64
	lastSession                              atomic.Int64    // unix nanoseconds; 0 never
	responses                                [6]atomic.Int64 // by class: other, 1xx..5xx
}

// tier is a set of a backend's servers and the balancer over them:
// member i of picker is servers[i].
type tier struct {
	servers []*server
	picker  balance.Picker
}

// server is one real server of a backend.
type server struct {
	idx      int // in backend.servers
	pos      int // in its tier's servers
	name     string
	addr     string
	weight   int
	maxconn  int64
	backup   bool // servers[].backup
	disabled bool // servers[].disabled: never picked, not even by persistence

	tls        *tls.Config  // backends[].tls for this server; nil: plain TCP
	rampWeight atomic.Int64 // scaled weight in slow start; 0 when not ramping
	down       atomic.Bool  // by its health check
	drained    atomic.Bool  // by an operator (halbctl server drain)
	active     atomic.Int64 // sessions given by this object (balancing, maxconn)
	stats      *serverStats

	idleMu sync.Mutex
	idle   []idleConn
}

type idleConn struct {
	c     *upstream
	since time.Time
}

// newBackend builds the backend of b; old is the object of b's name being
// replaced (nil if none), ctr keeps the counters by name.
func newBackend(b config.Backend, old *backend, ctr *counters) *backend {
	be := &backend{cfg: b, byName: map[string]*server{}, freed: make(chan struct{}), cookie: b.Sticky.Cookie, stats: ctr.backend(b.Name)}
	for _, sc := range b.Servers {
		s := &server{idx: len(be.servers), name: sc.Name, addr: sc.Address, weight: sc.EffectiveWeight(), maxconn: int64(sc.MaxConn),
			backup: sc.Backup, disabled: sc.Disabled, stats: ctr.server(b.Name, sc.Name)}
		if sc.MaxConn > 0 && !sc.Disabled {
			be.limited = true
		}
		be.servers = append(be.servers, s)
		be.byName[s.name] = s
		switch {
		case s.disabled:
		case s.backup:
			s.pos = len(be.backup.servers)
			be.backup.servers = append(be.backup.servers, s)
		default:
			s.pos = len(be.active.servers)
			be.active.servers = append(be.active.servers, s)
		}
	}
	if b.TLS != nil {
		base, err := certs.ClientConfig(b.TLS.Verify, b.TLS.CA, b.TLS.ServerName)
		be.tlsErr = err
		for _, s := range be.servers {
			if err != nil {
				break
			}
			s.tls = base.Clone()
			if s.tls.ServerName == "" {
				// Verify the server's IP address (no SNI is sent for one).
				host, _, _ := net.SplitHostPort(s.addr)
				s.tls.ServerName = host
			}
			s.tls.ClientSessionCache = tls.NewLRUClientSessionCache(idlePerServer)
		}
	}
	be.active.picker = newPicker(b.Balance, be.active.servers)
	be.backup.picker = newPicker(b.Balance, be.backup.servers)
	if b.Sticky.Source {
		if old != nil && old.stick != nil && old.cfg.Sticky == b.Sticky {
			be.stick = old.stick // clients stay where they were across reloads
		} else {
			be.stick = balance.NewStickTable(b.Sticky.Expire.D(), stickyTableMax)
		}
	}
	return be
}

// newPicker is the balancer alg over servers.
func newPicker(alg string, servers []*server) balance.Picker {
	members := make([]balance.Member, len(servers))
	for i, s := range servers {
		members[i] = balance.Member{Name: s.name, Weight: s.weight * weightScale}
	}
	p, err := balance.New(alg, members, func(i int) int64 { return servers[i].active.Load() })
	if err != nil { // validation rules this out; fall back rather than fail
		p, _ = balance.New("roundrobin", members, nil)
	}
	return p
}

// usable reports whether s takes new sessions as its state goes (up,
// weight above 0, not drained, not disabled), whatever its load: HAProxy's
// srv_is_usable, which decides whether the backups are in use.
func (s *server) usable() bool {
	return s.weight > 0 && !s.disabled && !s.down.Load() && !s.drained.Load()
}

// tierNow is the tier that takes new sessions: the active servers while
// one of them is usable, else the backups.
func (be *backend) tierNow() *tier {
	if len(be.backup.servers) == 0 {
		return &be.active
	}
	for _, s := range be.active.servers {
		if s.usable() {
			return &be.active
		}
	}
	return &be.backup
}

// firstBackup is the first usable backup server in config order, the only
// one that takes new sessions while the backups are in use without
// backends[].all_backups; nil when none is usable.
func (be *backend) firstBackup() *server {
	for _, s := range be.backup.servers {
		if s.usable() {
			return s
		}
	}
	return nil
}

// candidates are the servers a new session may go to now (their load and
// the servers tried aside): the tier in use, or only its first usable
// backup.
func (be *backend) candidates() []*server {
	t := be.tierNow()
	if t == &be.backup && !be.cfg.AllBackups {
		if s := be.firstBackup(); s != nil {
			return be.backup.servers[s.pos : s.pos+1]
		}
		return nil
	}
	return t.servers
}

// sameConfig reports whether b can be kept for cfg across a reload.
func (be *backend) sameConfig(cfg config.Backend) bool { return reflect.DeepEqual(be.cfg, cfg) }

// session is one pick: the server and how it was chosen.
type session struct {
	srv       *server
	setCookie bool // cookie persistence: tell the client which server it got
}

// pickRequest chooses a server for a new session. tried marks servers
// already tried for this session (redispatch). key is the hashing input of
// source/uri balancing; client the client's address for source persistence;
// cookieVal the client's persistence cookie value. When every eligible
// server is at its maxconn, it waits up to queueTimeout for a slot.
func (be *backend) pick(ctx context.Context, tried *triedSet, key []byte, client netip.Addr, cookieVal string, queueTimeout time.Duration) (session, error) {
	be.stats.requests.Add(1)
	// Persistence may also send a client to a draining server (weight 0)
	// or a backup that is up while other servers are: its sessions finish
	// there, as with HAProxy's drain state and its backup servers. Never
	// to a disabled one (maintenance).
	persistent := func(i int) bool {
		s := be.servers[i]
		return !tried.has(i) && !s.disabled && !s.down.Load() && (s.maxconn == 0 || s.active.Load() < s.maxconn)
	}
	var deadline *time.Timer
	for {
		// Persistence first: a server named by the cookie or the stick
		// table is honoured while it is usable.
		if cookieVal != "" {
			if s := be.byName[cookieVal]; s != nil && persistent(s.idx) {
				return session{srv: s}, nil
			}
		}
		var stickKey string
		if be.stick != nil && client.IsValid() {
			stickKey = client.String()
			if name, ok := be.stick.Get(stickKey, time.Now()); ok {
				if s := be.byName[name]; s != nil && persistent(s.idx) {
					return session{srv: s}, nil
				}
			}
		}
		var freed chan struct{}
		if be.limited {
			be.mu.Lock()
			freed = be.freed
			be.mu.Unlock()
		}
		t := be.tierNow()
		eligible := func(i int) bool {
			s := t.servers[i]
			return !tried.has(s.idx) && s.usable() && (s.maxconn == 0 || s.active.Load() < s.maxconn)
		}
		i := -1
		if t == &be.backup && !be.cfg.AllBackups {
			// Only the first usable backup takes new sessions.
			if s := be.firstBackup(); s != nil && eligible(s.pos) {
				i = s.pos
			}
		} else {
			i = balance.Pick(t.picker, key, eligible)
		}
		if i >= 0 {
			s := t.servers[i]
			if stickKey != "" {
				be.stick.Put(stickKey, s.name, time.Now())
			}
			return session{srv: s, setCookie: be.cookie != ""}, nil
		}
		if !be.anyFull(tried) {
			be.stats.noServer.Add(1)
			return session{}, errNoServer
		}
		// Queue: wait for a slot on a limited server.
		if deadline == nil {
			raiseMax(&be.stats.queueMax, be.queued.Add(1))
			defer be.queued.Add(-1)
			deadline = time.NewTimer(queueTimeout)
			defer deadline.Stop()
		}
		select {
		case <-freed:
		case <-deadline.C:
			be.stats.queueTimeouts.Add(1)
			return session{}, errQueueTimeout
		case <-ctx.Done():
			return session{}, ctx.Err()
		}
	}
}

// triedSet holds the servers already tried for one session (retries and
// redispatch): a handful, so a small array whatever the backend's size (a
// flag per server cost an allocation per request in a backend of more
// than 16 servers).
type triedSet struct {
	n    int
	idx  [6]int32
	more []int32
}

func (t *triedSet) has(i int) bool {
	for _, k := range t.idx[:min(t.n, len(t.idx))] {
		if int(k) == i {
			return true
		}
	}
	return t.n > len(t.idx) && slices.Contains(t.more, int32(i))
}

func (t *triedSet) add(i int) {
	if t.has(i) {
		return
	}
	if t.n < len(t.idx) {
		t.idx[t.n] = int32(i)
	} else {
		t.more = append(t.more, int32(i))
	}
	t.n++
}

// anyFull reports whether some untried candidate server is at maxconn.
func (be *backend) anyFull(tried *triedSet) bool {
	for _, s := range be.candidates() {
		if !tried.has(s.idx) && s.usable() && s.maxconn > 0 && s.active.Load() >= s.maxconn {
			return true
		}
	}
	return false
}

// acquire counts a session on s, given at now; release ends it and wakes
// queued requests.
func (be *backend) acquire(s *server, now time.Time) {
	s.active.Add(1)
	raiseMax(&s.stats.maxActive, s.stats.active.Add(1))
	s.stats.total.Add(1)
	s.stats.lastSession.Store(now.UnixNano())
	be.stats.active.Add(1)
	be.stats.total.Add(1)
}

func (be *backend) release(s *server) {
	s.active.Add(-1)
	s.stats.active.Add(-1)
	be.stats.active.Add(-1)
	if s.maxconn > 0 && be.queued.Load() > 0 {
		be.mu.Lock()
		close(be.freed)
		be.freed = make(chan struct{})
		be.mu.Unlock()
	}
}

// redispatchConnect bounds a connection attempt while another server could
// still take the request: a blackholed server then costs half a second
// before the request moves on, not the whole connect timeout, and the
// passive checks see its failures as fast.
const redispatchConnect = 500 * time.Millisecond

// connectTimeout is the time an attempt on s may take: timeout when s is
// the last server left to try, at most redispatchConnect otherwise.
func (be *backend) connectTimeout(tried *triedSet, s *server, timeout time.Duration) time.Duration {
	if be.othersLeft(tried, s) {
		return min(timeout, redispatchConnect)
	}
	return timeout
}

// othersLeft reports whether a candidate server other than s is left to
// try.
func (be *backend) othersLeft(tried *triedSet, s *server) bool {
	for _, o := range be.candidates() {
		if o != s && !tried.has(o.idx) && o.usable() {
			return true
		}
	}
	return false
}

// dial connects to s within timeout, sending a PROXY protocol header with
// the client's addresses when the backend asks for one, then, with
// backends[].tls, handshaking (within the same timeout).
func (be *backend) dial(ctx context.Context, s *server, timeout time.Duration, src, dst netip.AddrPort) (*upstream, error) {
	if be.tlsErr != nil {
		s.stats.connectErrors.Add(1)
		return nil, be.tlsErr
	}
	// No TCP keep-alive probes (HAProxy's default, no srvtcpka): the idle
	// timeouts end dead connections, and the four setsockopt calls that
	// turn the probes on are a cost per connection.
	start := time.Now()
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err == nil && s.tls == nil && be.observe != nil {
		be.observe(be.cfg.Name, s.name, nil)
	}
	if err != nil {
		if be.observe != nil {
			be.observe(be.cfg.Name, s.name, err)
		}
		s.stats.connectErrors.Add(1)
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if pp := be.cfg.ProxyProtocol; pp != "" && src.IsValid() && dst.IsValid() {
		var hdr []byte
		if pp == "v1" {
			hdr = proxyproto.AppendV1(make([]byte, 0, 108), src, dst)
		} else {
			hdr = proxyproto.AppendV2(make([]byte, 0, 52), src, dst)
		}
		if _, err := tc.Write(hdr); err != nil {
			tc.Close()
			s.stats.connectErrors.Add(1)
			return nil, err
		}
	}
	u := &upstream{TCPConn: tc}
	if s.tls != nil {
		t := tls.Client(newRawStream(tc), s.tls)
		tc.SetDeadline(start.Add(timeout))
		err := t.HandshakeContext(ctx)
		tc.SetDeadline(time.Time{})
		if err != nil {
			err = fmt.Errorf("tls handshake with %s: %w", s.addr, err)
		}
		if be.observe != nil {
			be.observe(be.cfg.Name, s.name, err)
		}
		if err != nil {
			tc.Close()
			s.stats.connectErrors.Add(1)
			return nil, err
		}
		u.t = t
	}
	return u, nil
}

// getIdle returns a connection to s pooled less than maxIdle ago, or nil.
func (s *server) getIdle(now time.Time, maxIdle time.Duration) *upstream {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	for n := len(s.idle); n > 0; n = len(s.idle) {
		ic := s.idle[n-1]
		if now.Sub(ic.since) >= maxIdle {
			// The most recent is too old: keep the pool for others
			// unless it is past the pool's own limit.
			if now.Sub(ic.since) < idleServerConnMax {
				return nil
			}
			s.idle = s.idle[:n-1]
			ic.c.Close()
			continue
		}
		s.idle = s.idle[:n-1]
		return ic.c
	}
	return nil
}

// putIdle pools c for reuse; it reports false (and closes c) when full.
func (s *server) putIdle(c *upstream, now time.Time) {
	s.idleMu.Lock()
	if len(s.idle) < idlePerServer {
		s.idle = append(s.idle, idleConn{c: c, since: now})
		s.idleMu.Unlock()
		return
	}
	s.idleMu.Unlock()
	c.Close()
}

// closeIdle closes the server's pooled connections (it went down).
func (s *server) closeIdle() {
	s.idleMu.Lock()
	idle := s.idle
	s.idle = nil
	s.idleMu.Unlock()
	for _, ic := range idle {
		ic.c.Close()
	}
}

// purgeIdle closes pooled connections idle too long (all of them when all).
func (be *backend) purgeIdle(now time.Time, all bool) {
	for _, s := range be.servers {
		s.idleMu.Lock()
		keep := s.idle[:0]
		for _, ic := range s.idle {
			if all || now.Sub(ic.since) >= idleServerConnMax {
				ic.c.Close()
				continue
			}
			keep = append(keep, ic)
		}
		clear(s.idle[len(keep):])
		s.idle = keep
		s.idleMu.Unlock()
	}
}

// BackendStatus is the status of one backend.
type BackendStatus struct {
	Name string `json:"name"`
	// TLS says how the backend talks to its servers: "" plain TCP, else
	// "verify full ..." or, loudly, "verify NONE ...".
	TLS           string         `json:"tls,omitempty"`
	Balance       string         `json:"balance"`
	Persistence   string         `json:"persistence,omitempty"`
	Requests      int64          `json:"requests"`
	NoServer      int64          `json:"no_server"`
	Queued        int64          `json:"queued"`
	QueueMax      int64          `json:"queue_max"`
	QueueTimeouts int64          `json:"queue_timeouts"`
	StickEntries  int            `json:"stick_entries,omitempty"`
	Servers       []ServerStatus `json:"servers"`
	// Sessions (connections to servers) open now and since start, bytes
	// from and to the clients, and the responses by class.
	Active    int64            `json:"active"`
	Total     int64            `json:"total"`
	BytesIn   int64            `json:"bytes_in"`
	BytesOut  int64            `json:"bytes_out"`
	Responses map[string]int64 `json:"responses,omitempty"`
	// Retries counts connection attempts beyond a session's first;
	// Redispatches those that went to another server.
	Retries      int64 `json:"retries"`
	Redispatches int64 `json:"redispatches"`
	// Time waiting for a server slot (Tw, one per pick: a retry picks
	// again), to connect (Tc, new connections only: a pooled one costs
	// none), from the request sent to the response head (Tr, http), and
	// whole (Ta/Tt, one per request or connection routed here).
	QueueTime    Histogram `json:"queue_time"`
	ConnectTime  Histogram `json:"connect_time"`
	ResponseTime Histogram `json:"response_time"`
	TotalTime    Histogram `json:"total_time"`
}

// ServerStatus is the status of one server of a backend.
type ServerStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Up      bool   `json:"up"`
	Drained bool   `json:"drained,omitempty"`
	// Backup: servers[].backup; Disabled: servers[].disabled (maintenance:
	// no traffic, not checked, never Up).
	Backup        bool             `json:"backup,omitempty"`
	Disabled      bool             `json:"disabled,omitempty"`
	Weight        int              `json:"weight"`
	SlowStartPct  int64            `json:"slowstart_pct,omitempty"` // weight in slow start, percent of Weight
	MaxConn       int64            `json:"maxconn,omitempty"`
	Active        int64            `json:"active"`
	Total         int64            `json:"total"`
	ConnectErrors int64            `json:"connect_errors"`
	Idle          int              `json:"idle_connections"`
	Responses     map[string]int64 `json:"responses,omitempty"`
	// MaxActive is the most sessions open at once since start.
	MaxActive    int64 `json:"max_active"`
	BytesIn      int64 `json:"bytes_in"`
	BytesOut     int64 `json:"bytes_out"`
	Retries      int64 `json:"retries"`
	Redispatches int64 `json:"redispatches"`
	// LastSession is when the server was last given a session.
	LastSession time.Time `json:"last_session,omitzero"`
}

// tlsStatus describes backends[].tls for status.
func (be *backend) tlsStatus() string {
	t := be.cfg.TLS
	switch {
	case t == nil:
		return ""
	case be.tlsErr != nil:
		return "ERROR: " + be.tlsErr.Error()
	case t.Verify == "none":
		return "verify NONE: the servers' certificates are not checked"
	}
	s := "verify full against "
	if t.CA == "" {
		s += "the system roots"
	} else {
		s += t.CA
	}
	if t.ServerName != "" {
		return s + " for " + t.ServerName
	}
	return s + " for each server's address"
}

func (be *backend) status() BackendStatus {
	bs := be.stats
	st := BackendStatus{Name: be.cfg.Name, TLS: be.tlsStatus(), Balance: be.cfg.Balance, Requests: bs.requests.Load(),
		NoServer: bs.noServer.Load(), Queued: be.queued.Load(), QueueMax: bs.queueMax.Load(),
		QueueTimeouts: bs.queueTimeouts.Load(), Servers: []ServerStatus{},
		Active: bs.active.Load(), Total: bs.total.Load(), BytesIn: bs.bytesIn.Load(), BytesOut: bs.bytesOut.Load(),
		Responses: classMap(&bs.responses), Retries: bs.retries.Load(), Redispatches: bs.redispatches.Load(),
		QueueTime: bs.queueTime.snapshot(), ConnectTime: bs.connectTime.snapshot(),
		ResponseTime: bs.responseTime.snapshot(), TotalTime: bs.totalTime.snapshot()}
	switch {
	case be.cookie != "":
		st.Persistence = "cookie " + be.cookie
	case be.stick != nil:
		st.Persistence = "source"
		st.StickEntries = be.stick.Len()
	}
	for _, s := range be.servers {
		s.idleMu.Lock()
		idle := len(s.idle)
		s.idleMu.Unlock()
		var pct int64
		if w := s.rampWeight.Load(); w > 0 && s.weight > 0 {
			pct = max(w*100/(int64(s.weight)*weightScale), 1)
		}
		ss := s.stats
		var last time.Time
		if ns := ss.lastSession.Load(); ns != 0 {
			last = time.Unix(0, ns)
		}
		st.Servers = append(st.Servers, ServerStatus{Name: s.name, Address: s.addr, Up: !s.down.Load() && !s.disabled, Drained: s.drained.Load(),
			Backup: s.backup, Disabled: s.disabled, Weight: s.weight, SlowStartPct: pct, MaxConn: s.maxconn,
			Active: ss.active.Load(), Total: ss.total.Load(), ConnectErrors: ss.connectErrors.Load(), Idle: idle,
			Responses: classMap(&ss.responses), MaxActive: ss.maxActive.Load(), BytesIn: ss.bytesIn.Load(), BytesOut: ss.bytesOut.Load(),
			Retries: ss.retries.Load(), Redispatches: ss.redispatches.Load(), LastSession: last})
	}
	return st
}

// classMap turns response counters by class into "2xx": n entries.
func classMap(c *[6]atomic.Int64) map[string]int64 {
	var m map[string]int64
	for i := range c {
		if n := c[i].Load(); n > 0 {
			if m == nil {
				m = map[string]int64{}
			}
			m[classNames[i]] = n
		}
	}
	return m
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) int {
	if code >= 100 && code < 600 {
		return code / 100
	}
	return 0
}
