package netlab

// The solo topology of the reload and overload scenarios: one load balancer
// (halbd, or HAProxy as the reference) between a client and two backend
// hosts, with no VRRP, and a proxy config that a scenario changes while it
// runs.
//
//	front LAN 192.168.10.0/24   client .10, lb1 .1 (the services listen here)
//	back LAN  10.0.0.0/24       lb1 .1, be1 .11, be2 .12
//
// Server sN (N from 1) is an in-process Backend named sN on be1 (odd N) or
// be2 (even N), port 8000+N.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// SoloAddr is lb1's front address; the solo services listen on it.
const SoloAddr = "192.168.10.1"

// SoloServerAddr is the address of server sN.
func SoloServerAddr(n int) string {
	return fmt.Sprintf("10.0.0.%d:%d", 11+(n-1)%2, 8000+n)
}

// SoloServer is a server of a solo backend.
type SoloServer struct {
	Name    string // sN, or any name with Addr set
	Addr    string // default: SoloServerAddr(N)
	Weight  int    // 0: halb's default (1)
	MaxConn int
}

// SoloBackend is a backend of a solo config.
type SoloBackend struct {
	Name    string
	Servers []SoloServer
	// Health is the backend's health mapping in YAML flow style without
	// the braces, e.g. "check: http, path: /healthz"; "" means
	// "check: none".
	Health string
}

// SoloService is an HTTP service of a solo config, on SoloAddr.
type SoloService struct {
	Name    string
	Port    int
	Backend string
	// TLS is the service's tls mapping in YAML flow style without the
	// braces, e.g. "certificates: [{name: www}], default: www"; "" means
	// plain HTTP.
	TLS string
}

// SoloConfig is the proxy part of a solo node's halb config.
type SoloConfig struct {
	Services []SoloService
	Backends []SoloBackend
	// Timeouts and Limits are the services' timeouts and limits
	// mappings, in flow style without braces ("http_request: 5s"); ""
	// keeps the defaults.
	Timeouts, Limits string
}

// YAML renders the node's halb.yaml.
func (c SoloConfig) YAML() []byte {
	var b bytes.Buffer
	b.WriteString("node: {name: lb1}\nservices:\n")
	for _, s := range c.Services {
		fmt.Fprintf(&b, "  - name: %s\n    listen: [\"%s:%d\"]\n    mode: http\n    default_backend: %s\n    response_headers: {X-LB-Node: lb1}\n",
			s.Name, SoloAddr, s.Port, s.Backend)
		if s.TLS != "" {
			fmt.Fprintf(&b, "    tls: {%s}\n", s.TLS)
		}
		if c.Timeouts != "" {
			fmt.Fprintf(&b, "    timeouts: {%s}\n", c.Timeouts)
		}
		if c.Limits != "" {
			fmt.Fprintf(&b, "    limits: {%s}\n", c.Limits)
		}
	}
	b.WriteString("backends:\n")
	for _, be := range c.Backends {
		health := be.Health
		if health == "" {
			health = "check: none"
		}
		fmt.Fprintf(&b, "  - name: %s\n    health: {%s}\n    servers:", be.Name, health)
		if len(be.Servers) == 0 {
			b.WriteString(" []")
		}
		b.WriteString("\n")
		for _, sv := range be.Servers {
			fmt.Fprintf(&b, "      - {name: %s, address: \"%s\"", sv.Name, sv.address())
			if sv.Weight > 0 {
				fmt.Fprintf(&b, ", weight: %d", sv.Weight)
			}
			if sv.MaxConn > 0 {
				fmt.Fprintf(&b, ", maxconn: %d", sv.MaxConn)
			}
			b.WriteString("}\n")
		}
	}
	return b.Bytes()
}

func (sv SoloServer) address() string {
	if sv.Addr != "" {
		return sv.Addr
	}
	n, err := strconv.Atoi(strings.TrimPrefix(sv.Name, "s"))
	if err != nil || !strings.HasPrefix(sv.Name, "s") {
		panic("netlab: solo server " + sv.Name + " has no address") // a scenario's own mistake
	}
	return SoloServerAddr(n)
}

// Clone returns a deep copy, for a scenario to change.
func (c SoloConfig) Clone() SoloConfig {
	out := c
	out.Services = append([]SoloService(nil), c.Services...)
	out.Backends = make([]SoloBackend, len(c.Backends))
	for i, be := range c.Backends {
		be.Servers = append([]SoloServer(nil), be.Servers...)
		out.Backends[i] = be
	}
	return out
}

// Backend returns the backend named name, or nil.
func (c *SoloConfig) Backend(name string) *SoloBackend {
	for i := range c.Backends {
		if c.Backends[i].Name == name {
			return &c.Backends[i]
		}
	}
	return nil
}

// ServerNames lists the servers of backend name.
func (c *SoloConfig) ServerNames(backend string) []string {
	var out []string
	if be := c.Backend(backend); be != nil {
		for _, sv := range be.Servers {
			out = append(out, sv.Name)
		}
	}
	return out
}

// Solo is the running solo topology.
type Solo struct {
	Lab     *Lab
	Flavor  Flavor
	Front   *LAN
	Back    *LAN
	Client  *Host
	LB      *Node
	BEHosts [2]*Host
	// Servers are the in-process servers s1..sN by name, whether the
	// config uses them or not.
	Servers map[string]*Backend

	mu     sync.Mutex
	cfg    SoloConfig
	closed []io.Closer
}

// NewSolo builds the solo topology in l with servers s1..sN started (each
// recording arrivals) and starts lb1 of flavor fl with cfg.
func NewSolo(l *Lab, fl Flavor, servers int, cfg SoloConfig) (*Solo, error) {
	s := &Solo{Lab: l, Flavor: fl, Servers: map[string]*Backend{}, cfg: cfg.Clone()}
	var err error
	if s.Front, err = l.AddLAN("front"); err != nil {
		return nil, err
	}
	if s.Back, err = l.AddLAN("back"); err != nil {
		return nil, err
	}
	if s.Client, err = l.AddHost("client"); err != nil {
		return nil, err
	}
	if _, err := s.Client.Connect(s.Front, "eth0", "192.168.10.10/24"); err != nil {
		return nil, err
	}
	for i, name := range []string{"be1", "be2"} {
		h, err := l.AddHost(name)
		if err != nil {
			return nil, err
		}
		if _, err := h.Connect(s.Back, "eth0", fmt.Sprintf("10.0.0.%d/24", 11+i)); err != nil {
			return nil, err
		}
		s.BEHosts[i] = h
	}
	for n := 1; n <= servers; n++ {
		name := fmt.Sprintf("s%d", n)
		b, err := s.BEHosts[(n-1)%2].ServeBackend(name, fmt.Sprintf(":%d", 8000+n))
		if err != nil {
			return nil, err
		}
		b.RecordArrivals(true)
		s.Servers[name] = b
	}
	lb, err := l.AddHost("lb1")
	if err != nil {
		return nil, err
	}
	if _, err := lb.Connect(s.Front, "eth0", SoloAddr+"/24"); err != nil {
		return nil, err
	}
	if _, err := lb.Connect(s.Back, "eth1", "10.0.0.1/24"); err != nil {
		return nil, err
	}
	if s.LB, err = l.StartNode(lb, fl, cfg.YAML()); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the in-process servers (the lab removes the rest).
func (s *Solo) Close() {
	for _, b := range s.Servers {
		b.Close()
	}
	s.mu.Lock()
	closers := s.closed
	s.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}
}

// OnClose has Close close c too (a scenario's own servers).
func (s *Solo) OnClose(c io.Closer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, c)
}

// Config returns the config in force (the last one applied).
func (s *Solo) Config() SoloConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Clone()
}

// URL is the address of the service listening on port: https when the
// service in force there terminates TLS.
func (s *Solo) URL(port int) string {
	scheme := "http"
	s.mu.Lock()
	for _, svc := range s.cfg.Services {
		if svc.Port == port && svc.TLS != "" {
			scheme = "https"
		}
	}
	s.mu.Unlock()
	return fmt.Sprintf("%s://%s:%d/", scheme, SoloAddr, port)
}

// Get makes one request from the client on a new connection and returns
// the backend that answered.
func (s *Solo) Get(url string) (string, error) { return s.Client.GetBackend(url) }

// GetBackend makes one request from inside the host on a new connection
// (1s timeout) and returns the X-Backend of the answer, which must be 200.
// An https URL's certificate is not verified: GetBackend asks whether a
// service answers; the TLS scenario checks certificates itself.
func (h *Host) GetBackend(url string) (string, error) {
	tr := &http.Transport{DialContext: h.Dial, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return resp.Header.Get("X-Backend"), nil
}

// ServeBackend starts a Backend named name inside the host on addr, which
// listens there again after ModeRefuse.
func (h *Host) ServeBackend(name, addr string) (*Backend, error) {
	b := NewBackend(name)
	b.SetRelisten(func(a string) (net.Listener, error) { return h.Listen("tcp", a) })
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go b.Serve(ln)
	return b, nil
}

// WaitServing waits until the service on port answers.
func (s *Solo) WaitServing(port int, timeout time.Duration) error {
	var last error
	if !WaitFor(timeout, func() bool { _, last = s.Get(s.URL(port)); return last == nil }) {
		return fmt.Errorf("netlab: no answer from %s within %s: %v", s.URL(port), timeout, last)
	}
	return nil
}

// Probe starts a probe of the client against the service on port, its
// requests stamped with their send time.
func (s *Solo) Probe(ctx context.Context, port, rate int, keepAlive bool, timeout time.Duration) *Probe {
	return StartProbe(ctx, ProbeConfig{URL: s.URL(port), Rate: rate, KeepAlive: keepAlive, Timeout: timeout,
		Dial: s.Client.Dial, StampSent: true})
}

// ProxyPID is the pid of the process that proxies: halbd, or HAProxy's
// master (whose children are its workers).
func (s *Solo) ProxyPID() int {
	name := map[Flavor]string{FlavorHalb: "halbd", FlavorReference: "haproxy"}[s.Flavor]
	for _, p := range s.LB.Processes() {
		if p.Name == name {
			return p.Cmd.Process.Pid
		}
	}
	return 0
}

// ProxyRSS is the resident memory of the proxy: halbd, or HAProxy's
// master and its workers together.
func (s *Solo) ProxyRSS() int64 { return rssTree(s.ProxyPID()) }

// ProxyPeakRSS is the highest resident memory of the proxy process that
// serves (halbd; HAProxy's current worker) since it started (VmHWM).
func (s *Solo) ProxyPeakRSS() int64 {
	pid := s.ProxyPID()
	if s.Flavor == FlavorReference {
		pid = newestChild(pid)
	}
	return procStatusBytes(pid, "VmHWM")
}

// Reload is one config change as it was made.
type Reload struct {
	// How: "halbctl config apply", "SIGHUP" or "SIGUSR2" (HAProxy).
	How string
	// Start is when the change was begun; Applied is when the proxy said
	// it had taken effect (halbctl returned; halbd's config.applied
	// event was received; HAProxy's master logged the new worker's
	// "Loading success."). Every request the client starts after Applied
	// sees the new config.
	Start, Applied time.Time
}

// Apply changes the config in force the way an operator of the flavor
// would: halb by `halbctl config apply` (sighup false) or by rewriting
// halb.yaml and sending SIGHUP; HAProxy by rewriting haproxy.cfg and
// sending SIGUSR2 to its master (master-worker reload: the new worker takes
// the listening sockets over from the old one, which finishes its open
// connections).
func (s *Solo) Apply(cfg SoloConfig, sighup bool) (Reload, error) {
	raw := cfg.YAML()
	parsed, err := config.Parse("halb.yaml", raw)
	if err != nil {
		return Reload{}, fmt.Errorf("netlab: solo config: %w", err)
	}
	var r Reload
	switch s.Flavor {
	case FlavorHalb:
		if sighup {
			r, err = s.applySIGHUP(raw)
		} else {
			r, err = s.applyHalbctl(raw)
		}
	case FlavorReference:
		r, err = s.reloadHAProxy(parsed)
	default:
		err = fmt.Errorf("netlab: unknown flavor %q", s.Flavor)
	}
	if err != nil {
		return r, err
	}
	s.mu.Lock()
	s.cfg = cfg.Clone()
	s.LB.Config, s.LB.Raw = parsed, raw
	s.mu.Unlock()
	return r, nil
}

func (s *Solo) applyHalbctl(raw []byte) (Reload, error) {
	r := Reload{How: "halbctl config apply"}
	ctl, err := halbctl()
	if err != nil {
		return r, err
	}
	file := filepath.Join(s.LB.Dir, "next.yaml")
	if err := os.WriteFile(file, raw, 0o640); err != nil {
		return r, err
	}
	r.Start = time.Now()
	out, err := exec.Command(ctl, "-socket", filepath.Join(s.LB.Dir, "halb.sock"), "config", "apply", file).CombinedOutput()
	r.Applied = time.Now()
	if err != nil {
		return r, fmt.Errorf("netlab: halbctl config apply: %w: %s", err, out)
	}
	return r, nil
}

func (s *Solo) applySIGHUP(raw []byte) (Reload, error) {
	r := Reload{How: "SIGHUP"}
	path := filepath.Join(s.LB.Dir, "halb.yaml")
	if err := writeAtomic(path, raw); err != nil {
		return r, err
	}
	cl := s.LB.API()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live := make(chan struct{})
	var sent sync.Once
	errStop := errors.New("done")
	var outcome error
	err := cl.Events(ctx, func(ev api.Event) error {
		switch ev.Type {
		case "events.subscribed":
			sent.Do(func() {
				close(live)
				r.Start = time.Now()
				for _, p := range s.LB.Processes() {
					if p.Name == "halbd" {
						outcome = p.Signal(syscall.SIGHUP)
					}
				}
			})
			if outcome != nil {
				return outcome
			}
		case "config.applied":
			r.Applied = time.Now()
			return errStop
		case "config.rejected":
			outcome = fmt.Errorf("netlab: halbd rejected the config: %s", ev.Message)
			return outcome
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return r, nil
	}
	return r, fmt.Errorf("netlab: SIGHUP reload: %w", err)
}

// reloadHAProxy writes haproxy.cfg for cfg and reloads HAProxy's master.
func (s *Solo) reloadHAProxy(cfg *config.Config) (Reload, error) {
	r := Reload{How: "SIGUSR2"}
	p := RefPaths{Dir: s.LB.Dir}
	hc, err := HAProxyConfig(cfg, p)
	if err != nil {
		return r, err
	}
	for path, m := range HAProxyMaps(cfg, p) {
		if err := writeAtomic(path, m); err != nil {
			return r, err
		}
	}
	if err := writeAtomic(p.HAProxyCfg(), hc); err != nil {
		return r, err
	}
	var master *Process
	for _, pr := range s.LB.Processes() {
		if pr.Name == "haproxy" {
			master = pr
		}
	}
	if master == nil {
		return r, errors.New("netlab: no HAProxy master")
	}
	// A master just started ignores SIGUSR2 until it enters its loop
	// (after it logged its first "Loading success."): a signal then is
	// lost. Wait until it catches the signal.
	pid := master.Cmd.Process.Pid
	if !WaitFor(10*time.Second, func() bool { return sigCaught(pid, syscall.SIGUSR2) }) {
		return r, fmt.Errorf("netlab: HAProxy's master (pid %d) does not catch SIGUSR2", pid)
	}
	const loaded = "Loading success."
	before := strings.Count(master.Log(), loaded)
	r.Start = time.Now()
	if err := syscall.Kill(master.Cmd.Process.Pid, syscall.SIGUSR2); err != nil {
		return r, fmt.Errorf("netlab: reload HAProxy: %w", err)
	}
	if !WaitFor(10*time.Second, func() bool { return strings.Count(master.Log(), loaded) > before }) {
		return r, fmt.Errorf("netlab: HAProxy logged no %q within 10s of SIGUSR2", loaded)
	}
	r.Applied = time.Now()
	return r, nil
}

// sigCaught reports whether process pid has a handler for sig (SigCgt of
// /proc/pid/status).
func sigCaught(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// writeAtomic replaces path with b through a rename, so a reader never
// sees half a file.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// HalbctlPath is the halbctl the solo scenarios run; empty: a halbctl next
// to HalbdPath, built from ../cmd/halbctl when missing (as tests do).
var HalbctlPath string

var (
	halbctlOnce sync.Once
	halbctlErr  error
)

func halbctl() (string, error) {
	halbctlOnce.Do(func() {
		if HalbctlPath != "" {
			return
		}
		HalbctlPath = filepath.Join(filepath.Dir(HalbdPath), "halbctl")
		if _, err := os.Stat(HalbctlPath); err == nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", HalbctlPath, "../cmd/halbctl").CombinedOutput(); err != nil {
			halbctlErr = fmt.Errorf("netlab: build halbctl: %w: %s", err, out)
		}
	})
	return HalbctlPath, halbctlErr
}

// newestChild is the child of pid started last (HAProxy's current
// worker), or pid itself without children.
func newestChild(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	best, bestStart := pid, int64(-1)
	for _, f := range strings.Fields(string(b)) {
		child, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if st := procStartTicks(child); st > bestStart {
			best, bestStart = child, st
		}
	}
	return best
}

// procStartTicks is when pid started, in clock ticks after boot; -1 when
// unreadable.
func procStartTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	if len(f) < 20 {
		return -1
	}
	v, err := strconv.ParseInt(f[19], 10, 64) // field 22 of stat
	if err != nil {
		return -1
	}
	return v
}

// procStatusBytes reads a "kB" field of /proc/pid/status (VmRSS, VmHWM) in
// bytes; 0 when unreadable.
func procStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cpuTree is the CPU time (user and system) used so far by pid and its
// descendants alive now.
func cpuTree(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	var total time.Duration
	if len(f) > 12 {
		ut, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total = time.Duration(ut+st) * time.Second / clockTicks
	}
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, k := range strings.Fields(string(kids)) {
		if child, err := strconv.Atoi(k); err == nil {
			total += cpuTree(child)
		}
	}
	return total
}

// clockTicks is USER_HZ, the unit of /proc/pid/stat times (100 on Linux).
const clockTicks = 100

// ProxyCPU is the CPU time the proxy (halbd; HAProxy's master and
// workers) has used so far.
func (s *Solo) ProxyCPU() time.Duration { return cpuTree(s.ProxyPID()) }

// ProxyFDs is the number of open file descriptors of the proxy (halbd;
// HAProxy's master and workers).
func (s *Solo) ProxyFDs() int { return fdTree(s.ProxyPID()) }

// fdTree counts the open file descriptors of pid and its descendants.
func fdTree(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	n := len(fds)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, k := range strings.Fields(string(kids)) {
		if child, err := strconv.Atoi(k); err == nil {
			n += fdTree(child)
		}
	}
	return n
}

// ProxyAnonRSS is the proxy's anonymous resident memory (RssAnon: heap,
// stacks, buffers), halbd or HAProxy's master and workers together. It
// leaves out the pages of the program's file that the load brought in (code
// run for the first time stays mapped): a leak grows this figure.
func (s *Solo) ProxyAnonRSS() int64 { return anonTree(s.ProxyPID()) }

// anonTree sums RssAnon over pid and its descendants.
func anonTree(pid int) int64 {
	n := procStatusBytes(pid, "RssAnon")
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, k := range strings.Fields(string(kids)) {
		if child, err := strconv.Atoi(k); err == nil {
			n += anonTree(child)
		}
	}
	return n
}

// GetFrom sends a GET to url from the host's address src (one of its own),
// with the cookie header cookie when not empty, on a new connection. It
// returns the X-Backend of the answer and the name=value of the cookie the
// answer sets, if any.
func (h *Host) GetFrom(src netip.Addr, url, cookie string) (backend, setCookie string, err error) {
	hdr, err := h.HeaderFrom(src, url, cookie)
	if err != nil {
		return "", "", err
	}
	if cs := (&http.Response{Header: hdr}).Cookies(); len(cs) > 0 {
		setCookie = cs[0].Name + "=" + cs[0].Value
	}
	return hdr.Get("X-Backend"), setCookie, nil
}

// HeaderFrom sends a GET as GetFrom does and returns the answer's header,
// which must be 200.
func (h *Host) HeaderFrom(src netip.Addr, url, cookie string) (http.Header, error) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.Do(func() (err error) {
			d := net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return resp.Header, nil
}
