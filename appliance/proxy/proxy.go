package proxy

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"halb/appliance/config"
)

// Component runs the services of the config.
type Component struct {
	log *slog.Logger

	mu       sync.Mutex
	want     *config.Config
	changed  chan struct{}
	services map[string]*service
	order    []string
	lastLog  map[string]time.Time
}

// New returns the proxy component.
func New(log *slog.Logger) *Component {
	return &Component{log: log, changed: make(chan struct{}, 1), services: map[string]*service{}, lastLog: map[string]time.Time{}}
}

// Name is the component's key in status.
func (c *Component) Name() string { return "services" }

// Apply hands over a new config: new services start listening; a changed
// backend takes effect for new connections while open ones finish on the
// old; services whose listen addresses changed are rebound; removed ones
// stop listening and their open connections finish.
func (c *Component) Apply(cfg *config.Config) error {
	c.mu.Lock()
	c.want = cfg
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

// Run works until ctx ends, then closes every listener and waits for open
// connections to finish (they are cut when their peers close).
func (c *Component) Run(ctx context.Context) error {
	c.reconcile()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			svcs := c.services
			c.services = map[string]*service{}
			c.mu.Unlock()
			for _, s := range svcs {
				s.stop()
			}
			return nil
		case <-c.changed:
			c.reconcile()
		}
	}
}

func (c *Component) reconcile() {
	c.mu.Lock()
	cfg := c.want
	c.mu.Unlock()
	if cfg == nil {
		return
	}
	backends := map[string]config.Backend{}
	for _, b := range cfg.Backends {
		backends[b.Name] = b
	}
	keep := map[string]bool{}
	var order []string
	for _, sc := range cfg.Services {
		if sc.Mode != "tcp" {
			continue // HTTP mode arrives with the HTTP engine
		}
		keep[sc.Name] = true
		order = append(order, sc.Name)
		p := newPool(backends[sc.DefaultBackend])
		c.mu.Lock()
		s := c.services[sc.Name]
		c.mu.Unlock()
		if s != nil && slices.Equal(s.cfg.Listen, sc.Listen) {
			c.mu.Lock()
			s.cfg = sc
			c.mu.Unlock()
			s.pool.Store(p) // new connections use the new pool
			continue
		}
		if s != nil {
			s.stop()
		}
		s = &service{cfg: sc, log: c.log, comp: c}
		s.pool.Store(p)
		if err := s.start(); err != nil {
			c.log.Error("service not started", "service", sc.Name, "err", err)
		}
		c.mu.Lock()
		c.services[sc.Name] = s
		c.mu.Unlock()
	}
	c.mu.Lock()
	for name, s := range c.services {
		if !keep[name] {
			go s.stop()
			delete(c.services, name)
		}
	}
	c.order = order
	c.mu.Unlock()
}

// ServiceStatus is the status of one service.
type ServiceStatus struct {
	Name      string         `json:"name"`
	Mode      string         `json:"mode"`
	Listen    []string       `json:"listen"`
	Listening []string       `json:"listening"`
	Error     string         `json:"error,omitempty"`
	Backend   string         `json:"backend"`
	Conns     int64          `json:"connections"`
	Retries   int64          `json:"retries"`
	NoServer  int64          `json:"no_server"`
	BytesIn   int64          `json:"bytes_in"`
	BytesOut  int64          `json:"bytes_out"`
	Servers   []ServerStatus `json:"servers"`
}

// ServerStatus is the status of one server of a service's backend.
type ServerStatus struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	Weight        int    `json:"weight"`
	Active        int64  `json:"active"`
	Total         int64  `json:"total"`
	ConnectErrors int64  `json:"connect_errors"`
}

// Status lists the services this build serves (TCP mode), in config order.
func (c *Component) Status() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServiceStatus, 0, len(c.order))
	for _, name := range c.order {
		s := c.services[name]
		if s == nil {
			continue
		}
		st := ServiceStatus{Name: name, Mode: s.cfg.Mode, Listen: s.cfg.Listen, Backend: s.cfg.DefaultBackend, Error: errString(s.err),
			Conns: s.stats.conns.Load(), Retries: s.stats.retries.Load(), NoServer: s.stats.noServer.Load(),
			BytesIn: s.stats.bytesIn.Load(), BytesOut: s.stats.bytesOut.Load(), Listening: []string{}, Servers: []ServerStatus{}}
		for _, ln := range s.listeners {
			st.Listening = append(st.Listening, ln.Addr().String())
		}
		if p := s.pool.Load(); p != nil {
			for _, sv := range p.servers {
				st.Servers = append(st.Servers, ServerStatus{Name: sv.name, Address: sv.addr, Weight: sv.weight,
					Active: sv.active.Load(), Total: sv.total.Load(), ConnectErrors: sv.connectErrors.Load()})
			}
		}
		out = append(out, st)
	}
	return out
}

type service struct {
	cfg       config.Service
	log       *slog.Logger
	comp      *Component
	pool      atomic.Pointer[pool]
	listeners []net.Listener
	err       error
	wg        sync.WaitGroup
	stats     struct {
		conns, retries, noServer, bytesIn, bytesOut atomic.Int64
	}
}

func (s *service) start() error {
	for _, addr := range s.cfg.Listen {
		ln, err := listenFreebind(addr)
		if err != nil {
			s.err = err
			continue
		}
		s.listeners = append(s.listeners, ln)
		go s.serve(ln)
	}
	return s.err
}

// stop closes the listeners; open connections finish on their own.
func (s *service) stop() {
	for _, ln := range s.listeners {
		ln.Close()
	}
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

// pool is a backend's servers with a smooth weighted round-robin balancer
// (nginx's algorithm: even spreading, weights respected, no bursts).
type pool struct {
	mu      sync.Mutex
	servers []*server
}

type server struct {
	idx           int
	name, addr    string
	weight        int
	current       int
	active, total atomic.Int64
	connectErrors atomic.Int64
}

func newPool(b config.Backend) *pool {
	p := &pool{}
	for _, sc := range b.Servers {
		p.servers = append(p.servers, &server{idx: len(p.servers), name: sc.Name, addr: sc.Address, weight: sc.EffectiveWeight()})
	}
	return p
}

// pick returns the next server by smooth weighted round robin among those
// with weight > 0 not yet tried for this connection; nil when none is left.
func (p *pool) pick(tried []bool) *server {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *server
	total := 0
	for _, s := range p.servers {
		if s.weight <= 0 || tried[s.idx] {
			continue
		}
		s.current += s.weight
		total += s.weight
		if best == nil || s.current > best.current {
			best = s
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}
