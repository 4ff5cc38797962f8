package proxy

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"halb/appliance/config"
	"halb/appliance/logs"
	"halb/appliance/proxy/balance"
)

// Component runs the services of the config.
type Component struct {
	log *slog.Logger

	latest config.Latest
	// reloadMu serialises Prepare, Apply, Abort, reconcile and the
	// shutdown; it guards pool and is taken before mu.
	reloadMu sync.Mutex
	pool     *listenerPool
	// prepared holds the certificates Prepare loaded to check a config,
	// for reconcile to use when that config comes (reloadMu guards it;
	// a change of the store drops it).
	prepared preparedCerts

	mu       sync.Mutex
	running  bool          // Run is going: Apply waits for its reconcile
	wantGen  uint64        // configs given to Apply
	doneGen  uint64        // of them, reconciled
	doneCh   chan struct{} // closed and replaced after each reconcile, and when Run ends
	ready    chan struct{} // closed after Run's first reconcile
	readyOne sync.Once
	services map[string]*service
	backends map[string]*backend
	retired  []*backend // replaced by a reload; idle connections closed at the next sweep
	order    []string
	lastLog  map[string]time.Time

	parkOnce sync.Once
	park     *parker // nil when epoll is not available

	down    map[string]bool      // "backend/server" taken out by health checks
	drained map[string]bool      // "backend/server" drained by an operator
	ramps   map[string]time.Time // "backend/server" in slow start, since
	observe func(backend, server string, err error)
	// restore holds entries saved at the last shutdown, for the first
	// reconcile (RestoreStick).
	restore []StickEntry
	// observeStick is told of new, moved and renewed source-persistence
	// entries (replication to the peer).
	observeStick func(StickEntry)
	// observeResp is told request outcomes of layer-7 observed backends.
	observeResp func(backend, server string, status int, err error)
	now         func() time.Time // the clock of slow start; tests set their own

	ctr    counters                   // by name, across reloads
	access atomic.Pointer[accessSink] // nil: no access records

	// TLS termination: how certificates are loaded (SetCertLoaders), and
	// the session ticket keys every service shares.
	loadStore CertLoader
	loadFiles FileLoader
	tickets   ticketKeys
}

// accessSink holds the access logger (an interface in an atomic pointer).
type accessSink struct{ l logs.AccessLogger }

// SetAccessLog has l take one record per request (http) or connection
// (tcp) of every service with access_log: true; nil stops the records. It
// may be called at any time; l's Access must not block.
func (c *Component) SetAccessLog(l logs.AccessLogger) {
	if l == nil {
		c.access.Store(nil)
		return
	}
	c.access.Store(&accessSink{l: l})
}

// accessLog is the access logger, or nil.
func (c *Component) accessLog() logs.AccessLogger {
	if a := c.access.Load(); a != nil {
		return a.l
	}
	return nil
}

// SetServerDrained drains a server (no new sessions; open ones and
// persistent clients finish, as HAProxy's drain state) or makes it ready.
// The state outlives reloads.
func (c *Component) SetServerDrained(backend, server string, drained bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := backend + "/" + server
	was := c.drained[key]
	if drained {
		c.drained[key] = true
		c.stopRamp(key)
	} else {
		delete(c.drained, key)
		if was && !c.down[key] {
			c.startRamp(key)
		}
	}
	if be := c.backends[backend]; be != nil {
		if s := be.byName[server]; s != nil {
			s.drained.Store(drained)
		}
	}
}

// StickEntry is one source-persistence entry: in backend Backend, the
// client Key (its address) goes to Server until Expires (renewed on use).
type StickEntry struct {
	Backend string    `json:"b"`
	Key     string    `json:"k"`
	Server  string    `json:"s"`
	Expires time.Time `json:"e"`
}

// ObserveStick has f told of every source-persistence entry that is new,
// moves to another server, or is renewed a quarter of its idle time after
// it was last told, on the goroutine of the request that made it: f must
// not block. Call it before Run.
func (c *Component) ObserveStick(f func(StickEntry)) {
	c.mu.Lock()
	c.observeStick = f
	c.mu.Unlock()
}

// ImportStick puts entries a peer's tables hold into this node's (entries
// of backends without source persistence here, or expired, are skipped)
// and returns how many it took. Imported entries are not told to
// ObserveStick.
func (c *Component) ImportStick(es []StickEntry) int {
	now := time.Now()
	c.mu.Lock()
	bes := c.backends
	c.mu.Unlock()
	n := 0
	for _, e := range es {
		if be := bes[e.Backend]; be != nil && be.stick != nil && be.byName[e.Server] != nil && be.stick.Import(e.Key, e.Server, e.Expires, now) {
			n++
		}
	}
	return n
}

// RestoreStick has the next reconcile (the first config in force) take
// entries saved at the last shutdown, as ImportStick does.
func (c *Component) RestoreStick(es []StickEntry) {
	c.mu.Lock()
	c.restore = es
	c.mu.Unlock()
}

// StickEntries lists the live source-persistence entries of every backend.
func (c *Component) StickEntries() []StickEntry {
	now := time.Now()
	c.mu.Lock()
	bes := c.backends
	c.mu.Unlock()
	var out []StickEntry
	for name, be := range bes {
		if be.stick == nil {
			continue
		}
		for _, e := range be.stick.Entries(now) {
			out = append(out, StickEntry{Backend: name, Key: e.Key, Server: e.Server, Expires: e.Expires})
		}
	}
	return out
}

// ObserveConnects has f told the result of every connection attempt to a
// server (err nil: connected), for passive health checks. Call it before
// Run.
func (c *Component) ObserveConnects(f func(backend, server string, err error)) {
	c.mu.Lock()
	c.observe = f
	c.mu.Unlock()
}

// ObserveResponses has f told the outcome of every request to a server of
// a backend with health.observe: layer7 (err: a response timeout or an
// invalid response; else the status), for passive layer-7 checks. Call it
// before Run.
func (c *Component) ObserveResponses(f func(backend, server string, status int, err error)) {
	c.mu.Lock()
	c.observeResp = f
	c.mu.Unlock()
}

// SetServerUp takes a server out of its backend's pool (up false: no new
// sessions; open ones finish) or puts it back, as its health checks say.
// The state outlives reloads.
func (c *Component) SetServerUp(backend, server string, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := backend + "/" + server
	was := c.down[key]
	if up {
		delete(c.down, key)
		if was && !c.drained[key] {
			c.startRamp(key)
		}
	} else {
		c.down[key] = true
		c.stopRamp(key)
	}
	if be := c.backends[backend]; be != nil {
		if s := be.byName[server]; s != nil {
			s.down.Store(!up)
			if !up {
				go s.closeIdle()
			}
		}
	}
}

// parker returns the component's parker of idle connections, started on
// first use; nil if it could not start (connections then wait with their
// goroutine).
func (c *Component) parker() *parker {
	c.parkOnce.Do(func() {
		p, err := newParker()
		if err != nil {
			c.log.Warn("idle connections keep their goroutine", "err", err)
			return
		}
		c.mu.Lock()
		c.park = p
		c.mu.Unlock()
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.park
}

// New returns the proxy component.
func New(log *slog.Logger) *Component {
	return &Component{log: log, services: map[string]*service{}, pool: newListenerPool(), doneCh: make(chan struct{}), ready: make(chan struct{}),
		backends: map[string]*backend{}, lastLog: map[string]time.Time{}, down: map[string]bool{}, drained: map[string]bool{},
		ramps: map[string]time.Time{}, now: time.Now}
}

// Name is the component's key in status.
func (c *Component) Name() string { return "services" }

// Ready is closed once Run has put the config applied before it in force:
// from then on status lists its services and they listen.
func (c *Component) Ready() <-chan struct{} { return c.ready }

// Apply hands over a new config. It first binds every listen address the
// running config does not hold; if one cannot be bound it returns the
// *BindError of each (errors.Join) and changes nothing. Then, in Run:
// changed routes, backends and servers take effect for new requests and
// connections while open ones finish on the old state; an address the
// running config holds is handed to its new service without being closed;
// addresses no longer configured stop listening, and open connections
// finish. While Run is going, Apply returns once the config is in force:
// every request whose head completes afterwards is routed by it. (Before
// Run, Run starts with the latest config.)
func (c *Component) Apply(cfg *config.Config) error {
	c.reloadMu.Lock()
	if err := c.pool.bind(cfg); err != nil {
		c.reloadMu.Unlock()
		return err
	}
	c.pool.pending = nil
	c.mu.Lock()
	c.wantGen++
	gen := c.wantGen
	c.mu.Unlock()
	c.latest.Set(cfg)
	c.reloadMu.Unlock()
	for {
		c.mu.Lock()
		if !c.running || c.doneGen >= gen {
			c.mu.Unlock()
			return nil
		}
		ch := c.doneCh
		c.mu.Unlock()
		<-ch
	}
}

// reconciled records that the configs up to gen are in force (or, with
// stopped, that Run ended) and wakes the Apply calls waiting.
func (c *Component) reconciled(gen uint64, stopped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.doneGen = max(c.doneGen, gen)
	if stopped {
		c.running = false
	}
	close(c.doneCh)
	c.doneCh = make(chan struct{})
}

// Prepare binds every listen address of cfg that the running config does
// not hold, without changing what runs, so that a caller learns that cfg
// cannot be applied before it saves or applies anything. On failure it
// returns the *BindError of each address (errors.Join) and holds nothing
// new. After success the caller hands cfg to Apply, which finds the
// sockets bound, or calls Abort, which closes them.
func (c *Component) Prepare(cfg *config.Config) error {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	c.prepared = preparedCerts{}
	loaded, err := c.certErrors(cfg, time.Now())
	if err != nil {
		return err
	}
	if err := c.pool.bind(cfg); err != nil {
		return err
	}
	c.pool.pending = keys(cfg)
	c.prepared = preparedCerts{cfg: cfg, certs: loaded}
	return nil
}

// Abort closes what the last Prepare bound for a config that is not
// applied after all.
func (c *Component) Abort() {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	c.pool.pending = nil
	c.prepared = preparedCerts{}
	c.pool.sweep(c.wanted())
}

// wanted is the set of addresses to keep open: those of the latest applied
// config and of a prepared one. Callers hold reloadMu.
func (c *Component) wanted() map[string]bool {
	k := keys(c.latest.Get())
	for a := range c.pool.pending {
		k[a] = true
	}
	return k
}

// Run works until ctx ends, then closes every listener and waits for open
// connections to finish (they are cut when their peers close or time out).
func (c *Component) Run(ctx context.Context) error {
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	defer c.reconciled(0, true)
	c.reconcile()
	c.readyOne.Do(func() { close(c.ready) })
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	ramp := time.NewTicker(rampStep)
	defer ramp.Stop()
	tickets := time.NewTicker(time.Minute) // rotates when the newest key is ticketRotate old
	defer tickets.Stop()
	for {
		select {
		case <-ramp.C:
			c.ramp(c.now())
		case now := <-tickets.C:
			c.rotateTickets(now)
		case <-ctx.Done():
			c.reconciled(0, true) // Apply calls waiting return now
			c.reloadMu.Lock()
			c.pool.close()
			c.reloadMu.Unlock()
			c.pool.wg.Wait()
			c.mu.Lock()
			c.services = map[string]*service{}
			bes := c.backends
			c.mu.Unlock()
			for _, be := range bes {
				be.purgeIdle(time.Now(), true)
			}
			c.parkOnce.Do(func() {}) // no parker from now on
			c.mu.Lock()
			p := c.park
			c.mu.Unlock()
			if p != nil {
				p.close()
			}
			return nil
		case <-c.latest.Changed():
			c.reconcile()
		case now := <-sweep.C:
			c.mu.Lock()
			bes := make([]*backend, 0, len(c.backends))
			for _, be := range c.backends {
				bes = append(bes, be)
			}
			retired := c.retired
			c.retired = nil
			c.mu.Unlock()
			for _, be := range bes {
				be.purgeIdle(now, false)
				if be.stick != nil {
					be.stick.Purge(now)
				}
			}
			for _, be := range retired {
				be.purgeIdle(now, true)
			}
		}
	}
}

func (c *Component) reconcile() {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	c.mu.Lock()
	gen := c.wantGen // cfg below is this one (Apply sets both under reloadMu)
	done := gen <= c.doneGen
	c.mu.Unlock()
	if done {
		// In force already: an Apply before Run signals a change that
		// Run's first reconcile took. Reconciling it again would reload
		// every certificate, and drop what a Prepare made meanwhile.
		return
	}
	cfg := c.latest.Get()
	if cfg == nil || c.pool.closed {
		return
	}
	defer c.reconciled(gen, false)
	var prepared map[string][]loadedCert
	if c.prepared.cfg == cfg {
		prepared = c.prepared.certs
	}
	c.prepared = preparedCerts{}
	// Backends: keep unchanged ones (counters, pools, stick tables).
	backends := map[string]*backend{}
	c.mu.Lock()
	for _, bc := range cfg.Backends {
		old := c.backends[bc.Name]
		if old != nil && old.sameConfig(bc) {
			backends[bc.Name] = old
			continue
		}
		be := newBackend(bc, old, &c.ctr)
		if be.stick != nil && (old == nil || be.stick != old.stick) && c.observeStick != nil {
			name, f := bc.Name, c.observeStick
			be.stick.OnChange(func(e balance.Entry) { f(StickEntry{Backend: name, Key: e.Key, Server: e.Server, Expires: e.Expires}) })
		}
		be.observe = c.observe
		if bc.Health.Observe == "layer7" {
			be.observeResp = c.observeResp
		}
		for _, s := range be.servers {
			s.down.Store(c.down[bc.Name+"/"+s.name])
			s.drained.Store(c.drained[bc.Name+"/"+s.name])
		}
		backends[bc.Name] = be
		if old != nil {
			c.retired = append(c.retired, old)
		}
	}
	for name, old := range c.backends {
		if backends[name] == nil {
			c.retired = append(c.retired, old)
		}
	}
	c.backends = backends
	c.rampLocked(c.now()) // rebuilt backends take the weights of their ramps
	restore := c.restore
	c.restore = nil
	c.mu.Unlock()
	if len(restore) > 0 {
		n := c.ImportStick(restore)
		c.log.Info("source persistence entries restored", "entries", n, "saved", len(restore))
	}

	keep := map[string]bool{}
	var order []string
	for _, sc := range cfg.Services {
		order = append(order, sc.Name)
	}
	// Status lists the services in this order from now on (one not made
	// yet is skipped): a service's listener serves as soon as it is taken
	// below, and its first request may end before this loop does.
	c.mu.Lock()
	c.order = order
	c.mu.Unlock()
	for _, sc := range cfg.Services {
		keep[sc.Name] = true
		c.mu.Lock()
		s := c.services[sc.Name]
		c.mu.Unlock()
		if s == nil || s.mode != sc.Mode {
			s = &service{name: sc.Name, mode: sc.Mode, log: c.log, comp: c, stats: c.ctr.service(sc.Name)}
		}
		// New connections and requests use the new state; open ones finish
		// on theirs.
		nst := newServiceState(sc, backends)
		var old *tlsTerm
		if ost := s.state.Load(); ost != nil {
			old = ost.tls
		}
		nst.tls = c.termFor(old, &sc, prepared[sc.Name], time.Now())
		s.state.Store(nst)
		c.mu.Lock()
		if c.services[sc.Name] != s {
			// Listed before its listener serves (its first request may
			// end before the loop does), as not listening yet.
			s.listen, s.listening, s.err = sc.Listen, nil, nil
			c.services[sc.Name] = s
		}
		c.mu.Unlock()
		listening, err := c.pool.take(s, sc.Listen)
		if err != nil {
			// Only when a socket closed between Apply and now.
			c.log.Error("service not listening on every address", "service", sc.Name, "err", err)
		}
		c.mu.Lock()
		s.listen, s.listening, s.err = sc.Listen, listening, err
		c.services[sc.Name] = s
		c.mu.Unlock()
	}
	c.mu.Lock()
	for name := range c.services {
		if !keep[name] {
			delete(c.services, name) // its listeners went to others or close below
		}
	}
	c.order = order
	c.mu.Unlock()
	c.pool.sweep(c.wanted())
}

// serviceState is what one request or connection of a service works with;
// a reload swaps it atomically.
type serviceState struct {
	cfg    config.Service
	routes []route
	// byHost indexes the routes of a service with many (routeIndexMin):
	// the exact-host routes by host, in order; anyHost are the others
	// (wildcard, or no host), in order. nil: route scans routes.
	byHost  map[string][]int32
	anyHost []int32
	def     *backend
	trusted []netip.Prefix // accept_proxy

	respFields []byte   // response_headers as "Name: value\r\n" lines
	respNames  []string // their names, lower case

	fwdFor, fwdProto, forwarded bool // forward_headers

	tls *tlsTerm // nil: no TLS; shared by the service's states
	// fwdClientCert: tls.client_auth.forward.
	fwdClientCert bool

	// sni_routes (tcp mode): backends by exact name and by the suffix of a
	// "*." wildcard, lower case; sniRouted: the service has some.
	sniExact, sniWild map[string]*backend
	sniRouted         bool
}

// sniBackend is the backend of TLS server name name: an exact route, a
// wildcard one (one label), else the default.
func (st *serviceState) sniBackend(name string) *backend {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if be := st.sniExact[name]; be != nil {
		return be
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if be := st.sniWild[name[i+1:]]; be != nil {
			return be
		}
	}
	return st.def
}

type route struct {
	host     string // lower case; "" any
	wildcard bool   // host is ".suffix": names under suffix
	domain   bool   // host is ".domain": domain and names under it
	prefix   string
	path     string // exact path without the query; "" any
	be       *backend
}

func newServiceState(sc config.Service, backends map[string]*backend) *serviceState {
	st := &serviceState{cfg: sc, def: backends[sc.DefaultBackend],
		fwdFor:    sc.Forwards(config.ForwardFor),
		fwdProto:  sc.Forwards(config.ForwardProto),
		forwarded: sc.Forwards(config.Forwarded)}
	for _, r := range sc.Routes {
		rt := route{host: strings.ToLower(r.Host), prefix: r.PathPrefix, path: r.Path, be: backends[r.Backend]}
		if rest, ok := strings.CutPrefix(rt.host, "*"); ok {
			rt.host, rt.wildcard = rest, true
		} else if strings.HasPrefix(rt.host, ".") {
			rt.domain = true
		}
		st.routes = append(st.routes, rt)
	}
	if len(st.routes) >= routeIndexMin {
		st.byHost = map[string][]int32{}
		for i, r := range st.routes {
			if r.host == "" || r.wildcard || r.domain {
				st.anyHost = append(st.anyHost, int32(i))
			} else {
				st.byHost[r.host] = append(st.byHost[r.host], int32(i))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sc.ResponseHeaders)) {
		st.respFields = append(st.respFields, k+": "+sc.ResponseHeaders[k]+"\r\n"...)
		st.respNames = append(st.respNames, strings.ToLower(k))
	}
	st.fwdClientCert = sc.TLS != nil && sc.TLS.ClientAuth != nil && sc.TLS.ClientAuth.Forward
	if len(sc.SNIRoutes) > 0 {
		st.sniRouted = true
		st.sniExact, st.sniWild = map[string]*backend{}, map[string]*backend{}
		for _, r := range sc.SNIRoutes {
			name := strings.ToLower(r.SNI)
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				st.sniWild[rest] = backends[r.Backend]
			} else {
				st.sniExact[name] = backends[r.Backend]
			}
		}
	}
	for _, p := range sc.AcceptProxy {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			st.trusted = append(st.trusted, pfx.Masked())
		}
	}
	return st
}

// trusts reports whether a must send a PROXY protocol header.
func (st *serviceState) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range st.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// backendList lists the backends the service uses, routes first.
func (st *serviceState) backendList() []*backend {
	var out []*backend
	add := func(be *backend) {
		if be != nil && !slices.Contains(out, be) {
			out = append(out, be)
		}
	}
	for _, r := range st.routes {
		add(r.be)
	}
	for _, r := range st.cfg.SNIRoutes {
		add(st.sniBackend(strings.TrimPrefix(r.SNI, "*")))
	}
	add(st.def)
	return out
}

// service is one configured service. A reload keeps it (its counters) and
// swaps its state, unless its mode changed; its listening sockets belong
// to the component's pool, which hands it their connections.
type service struct {
	name  string
	mode  string
	log   *slog.Logger
	comp  *Component
	state atomic.Pointer[serviceState]
	stats *serviceStats // of its name: a rebuilt service keeps them

	// Guarded by comp.mu.
	listen    []string // as configured
	listening []string // the sockets' addresses
	err       error    // addresses that could not be bound
}

func (s *service) logLimited(key, msg string, args ...any) {
	c := s.comp
	c.mu.Lock()
	now := time.Now()
	ok := now.Sub(c.lastLog[key]) >= 10*time.Second
	if ok {
		c.lastLog[key] = now
	}
	c.mu.Unlock()
	if ok {
		s.log.Warn(msg, args...)
	}
}

// ServiceStatus is the status of one service.
type ServiceStatus struct {
	Name      string          `json:"name"`
	Mode      string          `json:"mode"`
	Listen    []string        `json:"listen"`
	Listening []string        `json:"listening"`
	Error     string          `json:"error,omitempty"`
	Backend   string          `json:"backend"`
	TLS       *TLSStatus      `json:"tls,omitempty"`
	Stats     ServiceCounters `json:"stats"`
	Backends  []BackendStatus `json:"backends"`
}

// Status lists the services in config order with their counters and the
// backends they use.
func (c *Component) Status() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServiceStatus, 0, len(c.order))
	for _, name := range c.order {
		s := c.services[name]
		if s == nil {
			continue
		}
		st := s.state.Load()
		ss := ServiceStatus{Name: name, Mode: s.mode, Listen: s.listen, Backend: st.cfg.DefaultBackend, Error: errString(s.err),
			Stats: s.stats.snapshot(), Listening: append([]string{}, s.listening...), Backends: []BackendStatus{}}
		for _, be := range st.backendList() {
			ss.Backends = append(ss.Backends, be.status())
		}
		if st.tls != nil {
			ss.TLS = st.tls.status(time.Now())
			ss.Stats.TLS = s.stats.tlsSnapshot()
		}
		if st.sniRouted {
			ss.Stats.SNI = s.stats.sniSnapshot()
		}
		out = append(out, ss)
	}
	return out
}
