package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"halb/appliance/config"
)

// Limits of the listener: a scraper or a browser needs little, and a
// client that holds connections open or trickles bytes must not pile up.
const (
	maxConns       = 64 // connections open at once (more wait in the backlog)
	maxInFlight    = 8  // requests handled at once (more get 503)
	readHeaderTime = 5 * time.Second
	readTime       = 10 * time.Second
	writeTime      = 30 * time.Second
	idleTime       = 60 * time.Second
	maxHeaderBytes = 8 << 10
	shutdownGrace  = 5 * time.Second
	// logEvery: at most one refusal line per client address this often.
	logEvery = time.Minute
	// logClients bounds the addresses remembered for that; beyond it the
	// rest share one line a minute.
	logClients = 1024
)

// Status is the listener's state (status API, /stats;json).
type Status struct {
	// Listen is observe.listen; Listening the address bound ("" when
	// off); Error why the last Apply could not bind (the old listener
	// then still serves).
	Listen    string `json:"listen"`
	Listening string `json:"listening,omitempty"`
	Error     string `json:"error,omitempty"`
	// Served counts the requests that passed the allow-list and auth;
	// Refused the refusals by reason (RefuseReasons).
	Served  uint64            `json:"served"`
	Refused map[string]uint64 `json:"refused"`
}

// ListenerStats is the listener's part of Stats.
type ListenerStats = Status

// access is what Apply hot-swaps: who may read, and the VIPs to refuse.
type access struct {
	users map[string][]byte // name → bcrypt hash
	allow []netip.Prefix
	vips  map[netip.Addr]bool
}

// binding is one bound listener and its HTTP server.
type binding struct {
	listen   string // as configured
	ln       net.Listener
	srv      *http.Server
	stopping atomic.Bool // closed on purpose: Serve's error is no failure
}

// Server is the observe listener. Its goroutines (one HTTP server per
// binding, and a shutdown per replaced binding) end in Close.
type Server struct {
	source func() Snapshot
	log    *slog.Logger
	now    func() time.Time
	reg    *prometheus.Registry
	metric http.Handler

	acc  atomic.Pointer[access]
	auth *authCache
	sem  chan struct{}

	served  atomic.Uint64
	refused [5]atomic.Uint64 // by refuseIdx

	limMu   sync.Mutex
	limited map[netip.Addr]*logState

	rates sampler

	mu      sync.Mutex
	cur     *binding
	listen  string
	lastErr error
	closed  bool
	wg      sync.WaitGroup
}

type logState struct {
	last       time.Time
	suppressed int
}

var refuseIdx = map[string]int{"forbidden": 0, "unauthorized": 1, "method": 2, "vip": 3, "busy": 4}

// New returns a Server that takes a Snapshot from source for each scrape
// and page view; it listens once Apply names an address.
func New(source func() Snapshot, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{source: source, log: log.With("component", "observe"), now: time.Now, auth: newAuthCache(),
		sem: make(chan struct{}, maxInFlight), limited: map[netip.Addr]*logState{}}
	s.acc.Store(&access{})
	rt := runtimeCollectors()
	s.reg = newRegistry(s, rt)
	rtReg := prometheus.NewRegistry()
	rtReg.MustRegister(rt...)
	// Compressed here at gzip's fastest level (promhttp's is the
	// default level, three times the CPU for a few percent fewer bytes).
	// The text format is written straight from the snapshot (textSink);
	// other formats and name filters go through promhttp.
	g := gatherer{srv: s, runtime: rtReg}
	s.metric = gzipped(textHandler{g: g, slow: promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}, DisableCompression: true})})
	return s
}

// Registry is the Prometheus registry /metrics serves (tests, and the
// netlab checks that gather it in-process).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Apply takes observe's listener settings: users and allowed networks are
// swapped at once; the listener is started, stopped, or moved when
// o.Listen changed. vips are the addresses a listener with an empty host
// refuses connections to. When the new address cannot be bound the error
// names observe.listen and the old listener (and the old users and
// networks) stay.
func (s *Server) Apply(o config.Observe, vips []netip.Addr) error {
	acc := &access{users: map[string][]byte{}, vips: map[netip.Addr]bool{}}
	for _, u := range o.Users {
		acc.users[u.Name] = []byte(u.PasswordHash)
	}
	for i, a := range o.Allow {
		p, err := config.ParseNetwork(a)
		if err != nil {
			return fmt.Errorf("observe.allow[%d] %q: %w", i, a, err)
		}
		acc.allow = append(acc.allow, p)
	}
	for _, v := range vips {
		acc.vips[v.Unmap()] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("observe: server closed")
	}
	if s.cur != nil && s.cur.listen == o.Listen {
		s.acc.Store(acc)
		s.lastErr = nil
		return nil
	}
	if o.Listen == "" {
		s.acc.Store(acc)
		if s.cur != nil {
			s.log.Info("observe listener stopped", "listen", s.cur.listen)
		}
		s.stopLocked()
		s.listen, s.lastErr = "", nil
		return nil
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) && s.cur != nil && samePort(s.cur.listen, o.Listen) {
		// Our own listener holds the port (":8404" to "10.0.0.1:8404"):
		// let it go, bind, and take it back if that fails.
		old := s.cur.listen
		s.stopLocked()
		ln, err = net.Listen("tcp", o.Listen)
		if err != nil {
			if back, berr := net.Listen("tcp", old); berr == nil {
				s.startLocked(old, back)
			} else {
				s.log.Error("observe listener lost", "listen", old, "err", berr)
			}
		}
	}
	if err != nil {
		s.lastErr = fmt.Errorf("observe.listen %q: %w", o.Listen, err)
		return s.lastErr
	}
	s.acc.Store(acc)
	s.stopLocked()
	s.startLocked(o.Listen, ln)
	s.listen, s.lastErr = o.Listen, nil
	s.log.Info("observe listener started", "listen", o.Listen, "address", ln.Addr().String())
	return nil
}

func samePort(a, b string) bool {
	_, pa, err1 := net.SplitHostPort(a)
	_, pb, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && pa == pb
}

// startLocked serves ln; with an unspecified host, connections that
// arrive at a VIP are closed at accept.
func (s *Server) startLocked(listen string, ln net.Listener) {
	var l net.Listener = ln
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
			l = vipFilter{Listener: ln, s: s}
		}
	}
	l = netutil.LimitListener(l, maxConns)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: readHeaderTime, ReadTimeout: readTime, WriteTimeout: writeTime,
		IdleTimeout: idleTime, MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	b := &binding{listen: listen, ln: ln, srv: srv}
	s.cur = b
	s.wg.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !b.stopping.Load() {
			s.log.Error("observe listener failed", "listen", listen, "err", err)
		}
	})
}

// stopLocked stops the current binding: no new connections at once, the
// requests in flight get shutdownGrace.
func (s *Server) stopLocked() {
	b := s.cur
	if b == nil {
		return
	}
	s.cur = nil
	b.stopping.Store(true)
	b.ln.Close() // at once: the port may be bound again right after
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := b.srv.Shutdown(ctx); err != nil {
			b.srv.Close()
		}
	})
}

// Run serves until ctx ends, then closes the listener.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	return s.Close()
}

// Close stops the listener and waits for its goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.stopLocked()
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Status reports the listener's state and counters.
func (s *Server) Status() Status {
	s.mu.Lock()
	st := Status{Listen: s.listen, Refused: map[string]uint64{}}
	if s.cur != nil {
		st.Listening = s.cur.ln.Addr().String()
	}
	if s.lastErr != nil {
		st.Error = s.lastErr.Error()
	}
	s.mu.Unlock()
	st.Served = s.served.Load()
	for r, i := range refuseIdx {
		st.Refused[r] = s.refused[i].Load()
	}
	return st
}

// Addr is the bound address (nil when not listening).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	return s.cur.ln.Addr()
}

// vipFilter closes connections whose local address is a VIP.
type vipFilter struct {
	net.Listener
	s *Server
}

func (l vipFilter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		local, remote := addrOf(c.LocalAddr()), addrOf(c.RemoteAddr())
		if l.s.acc.Load().vips[local] {
			c.Close()
			l.s.refuse("vip", remote, "connection to a VIP", "local", local)
			continue
		}
		return c, nil
	}
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(t.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// refuse counts a refusal and logs it, at most once a minute per client
// address: the line after a quiet minute says how many were not logged.
func (s *Server) refuse(reason string, client netip.Addr, msg string, args ...any) {
	s.refused[refuseIdx[reason]].Add(1)
	now := s.now()
	s.limMu.Lock()
	key := client
	st := s.limited[key]
	if st == nil {
		if len(s.limited) >= logClients {
			for k, v := range s.limited {
				if now.Sub(v.last) >= logEvery {
					delete(s.limited, k)
				}
			}
		}
		if len(s.limited) >= logClients {
			key = netip.Addr{} // the rest share one line a minute
			st = s.limited[key]
		}
		if st == nil {
			st = &logState{}
			s.limited[key] = st
		}
	}
	if !st.last.IsZero() && now.Sub(st.last) < logEvery {
		st.suppressed++
		s.limMu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	s.limMu.Unlock()
	s.log.Warn("observe: refused "+msg, append([]any{"client", client.String(), "reason", reason, "not_logged_before", suppressed}, args...)...)
}

// ServeHTTP applies the gates in order: a request slot (503), the
// allow-list (403), basic auth (401), the method (405); then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client := addrOf(remoteAddr(r))
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.refuse("busy", client, "request: too many at once", "path", r.URL.Path)
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	acc := s.acc.Load()
	if len(acc.allow) > 0 && !slices.ContainsFunc(acc.allow, func(p netip.Prefix) bool { return p.Contains(client) }) {
		s.refuse("forbidden", client, "request: client not in observe.allow", "path", r.URL.Path)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if len(acc.users) > 0 {
		user, pass, ok := r.BasicAuth()
		if !ok || !s.auth.check(acc.users, user, pass, s.now()) {
			why := "request: no credentials"
			if ok {
				why = "request: wrong user or password"
			}
			s.refuse("unauthorized", client, why, "user", user, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Basic realm="halb", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.refuse("method", client, "request: read-only listener", "method", r.Method, "path", r.URL.Path)
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: read-only", http.StatusMethodNotAllowed)
		return
	}
	s.served.Add(1)
	switch r.URL.Path {
	case "/metrics":
		s.metric.ServeHTTP(w, r)
	case "/stats;json":
		s.serveJSON(w, r)
	case "/stats":
		if r.URL.Query().Get("format") == "json" {
			s.serveJSON(w, r)
			return
		}
		s.serveHTML(w, r)
	case "/":
		http.Redirect(w, r, "/stats", http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

func remoteAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

// stats takes a snapshot and merges it with the listener's counters.
func (s *Server) stats() *Stats {
	snap := s.source()
	now := snap.At
	if now.IsZero() {
		now = s.now()
	}
	st := buildStats(snap, now)
	st.Listener = s.Status()
	return st
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// VIPs lists the addresses of c's VRRP VIPs: what Apply's listener with
// an empty host refuses connections to.
func VIPs(c *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, r := range c.VRRP {
		for _, v := range r.VIPs {
			if p, err := netip.ParsePrefix(v); err == nil {
				out = append(out, p.Addr())
			} else if a, err := netip.ParseAddr(v); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}
