package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"halb/appliance/config"
)

// Clock is the time source of the DHCP clients' timers.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configures a Manager. The zero value manages nothing on the
// host's files and keeps no lease across restarts.
type Options struct {
	// StateDir keeps the DHCP leases (dhcp-<ifname>.lease) and the record
	// of what a static configuration added (static.json), written
	// atomically. Default: none (nothing survives a restart).
	StateDir string
	// ManageSystem lets netcfg write ResolvConf. Default: false.
	ManageSystem bool
	// ResolvConf is the resolver file written when ManageSystem is set.
	// Default: /etc/resolv.conf.
	ResolvConf string
	// FirstBoot runs DHCP on every wired interface when Management is
	// empty (the daemon sets it when manage_system is on and
	// node.management unset). Default: false (empty Management =
	// unmanaged).
	FirstBoot bool
	// ReleaseOnStop sends DHCPRELEASE and removes the leased address when
	// Run's context ends. Default: false: a restart of halbd keeps the
	// address (and the connections on it) and confirms it by INIT-REBOOT.
	// Leaving DHCP through Apply always releases.
	ReleaseOnStop bool
	// NetNS is the path of the network namespace to manage (e.g.
	// /run/netns/x). Default: the process's own.
	NetNS string
	// Logger receives the log. Default: slog.Default().
	Logger *slog.Logger
	// Events receives what an operator wants to see: ("dhcp", "eth0:
	// bound 10.0.0.5/24 from 10.0.0.1, lease 1h0m0s"), ("network", ...).
	// Default: none.
	Events func(kind, msg string)
	// Clock is the DHCP timers' time source. Default: the system clock.
	Clock Clock

	// timing overrides the retransmission policy (tests).
	timing Timing
	// wired overrides which links are wired at first boot (tests: veth).
	wired func(netlink.Link) bool
}

// Manager applies node.management: a static address, a DHCP client, DHCP
// on every wired link at first boot, or nothing (unmanaged). It touches
// only the addresses and routes it added.
type Manager struct {
	opts Options
	log  *slog.Logger
	k    *kernel

	applyMu sync.Mutex // serialises Run's start and stop and Apply
	mu      sync.Mutex // guards the fields below; never held while waiting
	cfg     config.Management
	running bool
	wg      sync.WaitGroup
	cur     *runner
	lastErr string
}

// runner is one applied configuration's live part.
type runner struct {
	mode    string
	cancel  context.CancelFunc
	done    chan struct{}
	clients []*dhcpClient // first-boot adds to it (a NIC that shows up later): cmu
	cmu     sync.Mutex
	static  *staticRecord     // what the static config added
	cfg     config.Management // static settings (DNS, gateway)
	err     error
	errMu   sync.Mutex
}

// New checks m and prepares a manager; nothing is changed before Run.
func New(m config.Management, opts Options) (*Manager, error) {
	if err := check(m); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.ResolvConf == "" {
		opts.ResolvConf = "/etc/resolv.conf"
	}
	k, err := newKernel(opts.NetNS)
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, log: opts.Logger.With("component", "netcfg"), k: k, cfg: m}, nil
}

func check(m config.Management) error {
	if m.Interface == "" && (m.DHCP || m.Address != "") {
		return errors.New("netcfg: management.interface is required with dhcp or address")
	}
	if m.DHCP && m.Address != "" {
		return errors.New("netcfg: management: dhcp and address exclude each other")
	}
	if m.Address != "" {
		p, err := netip.ParsePrefix(m.Address)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("netcfg: management.address %q: want an IPv4 CIDR such as 172.16.0.1/16", m.Address)
		}
	}
	if m.Gateway != "" {
		if _, err := netip.ParseAddr(m.Gateway); err != nil {
			return fmt.Errorf("netcfg: management.gateway %q: %w", m.Gateway, err)
		}
	}
	for i, d := range m.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("netcfg: management.dns[%d] %q: %w", i, d, err)
		}
	}
	return nil
}

func (m *Manager) mode(c config.Management) string {
	switch {
	case c.DHCP:
		return "dhcp"
	case c.Address != "":
		return "static"
	case c.Interface == "" && m.opts.FirstBoot:
		return "first-boot"
	}
	return "unmanaged"
}

// Run applies the configuration and keeps it (DHCP leases, link changes)
// until ctx ends. It returns after every goroutine it started stopped.
// On return the addresses stay (a restart of halbd must not cut the
// operator off); only ReleaseOnStop gives a DHCP lease back.
func (m *Manager) Run(ctx context.Context) error {
	defer m.k.close()
	m.applyMu.Lock()
	m.mu.Lock()
	m.running = true
	cfg := m.cfg
	m.mu.Unlock()
	m.start(cfg)
	m.applyMu.Unlock()
	<-ctx.Done()
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	cur := m.cur
	m.running = false
	m.mu.Unlock()
	if cur != nil {
		cur.stop(m.opts.ReleaseOnStop)
	}
	m.wg.Wait()
	return nil
}

// Apply switches to a new configuration: static to DHCP, DHCP to static,
// another interface. What the old configuration added is removed (a DHCP
// lease is released); nothing else on the links is touched.
func (m *Manager) Apply(c config.Management) error {
	if err := check(c); err != nil {
		return err
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	old, running, same := m.cur, m.running, sameManagement(m.cfg, c)
	m.cfg = c
	m.mu.Unlock()
	if !running || same && old != nil {
		return nil
	}
	if old != nil {
		// A DHCP client on the same link keeps its lease across the
		// change (first-boot to dhcp on that link); the others release.
		for _, cl := range old.clientList() {
			cl.release.Store(!(c.DHCP && c.Interface == cl.ifname))
		}
		old.stop(false)
		if old.static != nil {
			m.removeStatic(old.static, c)
		}
	}
	m.start(c)
	return nil
}

func sameManagement(a, b config.Management) bool {
	return a.Interface == b.Interface && a.DHCP == b.DHCP && a.Address == b.Address && a.Gateway == b.Gateway && slices.Equal(a.DNS, b.DNS)
}

// clientList is the runner's DHCP clients now.
func (r *runner) clientList() []*dhcpClient {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return slices.Clone(r.clients)
}

func (r *runner) stop(release bool) {
	for _, c := range r.clientList() {
		if release {
			c.release.Store(true)
		}
	}
	r.cancel()
	<-r.done
}

func (r *runner) setErr(err error) {
	r.errMu.Lock()
	r.err = err
	r.errMu.Unlock()
}

// start launches the runner for c and makes it current. Its context is
// its own: Run and Apply stop it with runner.stop (release decided
// first), never by the parent's cancellation racing the decision.
func (m *Manager) start(c config.Management) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{mode: m.mode(c), cancel: cancel, done: make(chan struct{}), cfg: c}
	var wg sync.WaitGroup
	switch r.mode {
	case "dhcp":
		r.clients = []*dhcpClient{m.client(c.Interface, defaultMetric)}
	case "first-boot":
		links, err := m.k.h.LinkList()
		if err != nil {
			r.setErr(fmt.Errorf("netcfg: list links: %w", err))
		}
		sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
		for _, l := range links {
			if m.wired(l) {
				r.clients = append(r.clients, m.client(l.Attrs().Name, firstBootMetric(l)))
			}
		}
		if len(r.clients) == 0 {
			r.setErr(errors.New("netcfg: first boot: no wired interface"))
		}
	}
	m.mu.Lock()
	m.cur = r
	m.mu.Unlock()
	switch r.mode {
	case "static":
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runStatic(ctx, r)
		}()
	}
	for _, cl := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runClient(ctx, cl)
		}()
	}
	if r.mode == "first-boot" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.watchWired(ctx, r, &wg)
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		wg.Wait()
		cancel()
		close(r.done)
	}()
	if r.mode == "static" {
		m.writeResolv(m.dns(r))
	}
	return r
}

func (m *Manager) runClient(ctx context.Context, cl *dhcpClient) {
	if err := cl.run(ctx); err != nil {
		m.log.Error("dhcp client", "interface", cl.ifname, "err", err)
		cl.setErr(err)
	}
}

// wired reports whether first-boot DHCP runs on l.
func (m *Manager) wired(l netlink.Link) bool {
	if m.opts.wired != nil {
		return m.opts.wired(l)
	}
	return m.k.physical(l)
}

// firstBootMetric: the default route of a lower-numbered link wins.
func firstBootMetric(l netlink.Link) int { return defaultMetric + l.Attrs().Index - 1 }

// watchWired, at first boot, starts DHCP on each wired link that shows up
// after the start (a NIC whose driver udev loads after halbd started: halbd
// does not wait for udev's coldplug), until ctx ends. wg counts the
// clients it starts.
func (m *Manager) watchWired(ctx context.Context, r *runner, wg *sync.WaitGroup) {
	links := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := m.k.subscribeLinks(links, done); err != nil {
		m.log.Error("first boot: new links not watched", "err", err)
		return
	}
	take := func(l netlink.Link) {
		if !m.wired(l) {
			return
		}
		name := l.Attrs().Name
		r.cmu.Lock()
		for _, c := range r.clients {
			if c.ifname == name {
				r.cmu.Unlock()
				return
			}
		}
		cl := m.client(name, firstBootMetric(l))
		r.clients = append(r.clients, cl)
		r.cmu.Unlock()
		r.setErr(nil)
		m.log.Info("first boot: DHCP on a new link", "interface", name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runClient(ctx, cl)
		}()
	}
	// The links that came between start's list and the subscription.
	if ls, err := m.k.h.LinkList(); err == nil {
		for _, l := range ls {
			take(l)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-links:
			take(u.Link)
		}
	}
}

func (m *Manager) client(ifname string, metric int) *dhcpClient {
	c := &dhcpClient{ifname: ifname, k: m.k, opts: &m.opts, metric: metric, state: stInit,
		log: m.log.With("interface", ifname)}
	c.changed = func() { m.writeResolv(m.dnsNow()) }
	return c
}

// runStatic applies a static configuration, then re-applies it when the
// link comes back (an administrative down flushes the default route).
func (m *Manager) runStatic(ctx context.Context, r *runner) {
	c := r.cfg
	p, _ := netip.ParsePrefix(c.Address)
	var gw netip.Addr
	if c.Gateway != "" {
		gw, _ = netip.ParseAddr(c.Gateway)
	}
	rec, err := loadStatic(m.opts.StateDir)
	if err != nil {
		m.log.Warn("static record", "err", err)
	}
	if rec == nil || rec.Interface != c.Interface {
		if rec != nil {
			m.removeStatic(rec, c)
		}
		rec = &staticRecord{Interface: c.Interface}
	}
	m.mu.Lock()
	r.static = rec
	m.mu.Unlock()
	links := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := m.k.subscribeLinks(links, done); err != nil {
		r.setErr(err)
	}
	apply := func() error {
		err := m.applyStatic(rec, p, gw)
		r.setErr(err)
		if err != nil {
			m.log.Error("static", "err", err)
		}
		return err
	}
	err = apply()
	if m.opts.Events != nil && err == nil {
		msg := fmt.Sprintf("%s: static %v", c.Interface, p)
		if gw.IsValid() {
			msg += " via " + gw.String()
		}
		m.opts.Events("network", msg)
	}
	// A failed apply (the link missing, say) is retried on every change of
	// the link, first when it shows up: a NIC whose driver udev loads after
	// halbd started comes administratively down, and apply sets it up. An
	// applied config is applied again when the carrier comes back.
	ok := err == nil
	wasUp := ok
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-links:
			if u.Attrs().Name != c.Interface {
				continue
			}
			up := carrier(u.Link)
			if !ok || up && !wasUp {
				ok = apply() == nil
			}
			wasUp = up
		}
	}
}

// applyStatic adds the address and route; rec records what netcfg added
// (an address or route already there is left as someone else's).
func (m *Manager) applyStatic(rec *staticRecord, p netip.Prefix, gw netip.Addr) error {
	l, err := m.k.link(rec.Interface)
	if err != nil {
		return err
	}
	if set, err := m.k.ensureUp(l); err != nil {
		return err
	} else if set {
		m.log.Info("link set up", "interface", rec.Interface)
	}
	// What a previous static config added and this one does not have.
	if rec.Address.IsValid() && rec.Address != p {
		if err := m.k.addrDel(l, rec.Address); err != nil {
			return err
		}
		m.setRecord(func() { rec.Address = netip.Prefix{} })
	}
	if rec.Gateway.IsValid() && rec.Gateway != gw {
		if err := m.k.routeDel(l, rec.Gateway, defaultMetric, protoStatic); err != nil {
			return err
		}
		m.setRecord(func() { rec.Gateway = netip.Addr{} })
	}
	added, err := m.k.addrAdd(l, p)
	if err != nil {
		return err
	}
	if added {
		m.setRecord(func() { rec.Address = p })
	}
	if gw.IsValid() {
		added, err := m.k.routeAdd(l, gw, defaultMetric, protoStatic)
		if err != nil {
			return err
		}
		if added {
			m.setRecord(func() { rec.Gateway = gw })
		}
	}
	return saveStatic(m.opts.StateDir, rec)
}

// setRecord changes the static record under mu: Status reads it.
func (m *Manager) setRecord(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

// removeStatic removes what rec says netcfg added, unless next keeps it.
func (m *Manager) removeStatic(rec *staticRecord, next config.Management) {
	l, err := m.k.link(rec.Interface)
	if err != nil {
		m.log.Warn("remove static", "err", err)
		return
	}
	keep := next.Interface == rec.Interface && next.Address != "" && next.Address == rec.Address.String()
	if rec.Gateway.IsValid() && !(keep && next.Gateway == rec.Gateway.String()) {
		if err := m.k.routeDel(l, rec.Gateway, defaultMetric, protoStatic); err != nil {
			m.log.Warn("remove static route", "err", err)
		}
	}
	if rec.Address.IsValid() && !keep {
		if err := m.k.addrDel(l, rec.Address); err != nil {
			m.log.Warn("remove static address", "err", err)
		}
	}
	if !keep {
		if err := saveStatic(m.opts.StateDir, nil); err != nil {
			m.log.Warn("static record", "err", err)
		}
	}
}

// dnsNow is the resolver list in force now.
func (m *Manager) dnsNow() ([]netip.Addr, []string) {
	m.mu.Lock()
	r := m.cur
	m.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	return m.dns(r)
}

func (m *Manager) dns(r *runner) (dns []netip.Addr, search []string) {
	if r.mode == "static" {
		for _, d := range r.cfg.DNS {
			a, _ := netip.ParseAddr(d)
			dns = append(dns, a)
		}
		return dns, nil
	}
	for _, c := range r.clientList() {
		l, _, _, _ := c.snapshot()
		if l == nil {
			continue
		}
		for _, d := range l.DNS {
			if !slices.Contains(dns, d) {
				dns = append(dns, d)
			}
		}
		if l.Domain != "" && !slices.Contains(search, l.Domain) {
			search = append(search, l.Domain)
		}
	}
	return dns, search
}

// writeResolv writes resolv.conf when the system is netcfg's to manage
// and there is something to write: where the file points when it is a
// link (the image's /etc/resolv.conf links into /var/lib/halb/etc on a
// read-only root), and only when its content changes.
func (m *Manager) writeResolv(dns []netip.Addr, search []string) {
	if !m.opts.ManageSystem || len(dns) == 0 {
		return
	}
	if _, err := writeIfChanged(m.opts.ResolvConf, resolvConf(dns, search)); err != nil {
		m.log.Error("resolv.conf", "err", err)
	}
}

// Status is the management network now.
func (m *Manager) Status() Status {
	m.mu.Lock()
	cfg, r := m.cfg, m.cur
	m.mu.Unlock()
	st := Status{Mode: m.mode(cfg)}
	if r == nil {
		return st
	}
	r.errMu.Lock()
	if r.err != nil {
		st.Error = r.err.Error()
	}
	r.errMu.Unlock()
	dns, _ := m.dns(r)
	for _, d := range dns {
		st.DNS = append(st.DNS, d.String())
	}
	if r.mode == "static" {
		is := m.ifStatus(cfg.Interface)
		m.mu.Lock()
		if r.static != nil && r.static.Address.IsValid() {
			is.Managed = []string{r.static.Address.String()}
		}
		m.mu.Unlock()
		st.Interfaces = append(st.Interfaces, is)
		st.Gateway = cfg.Gateway
	}
	for _, c := range r.clientList() {
		l, state, _, cerr := c.snapshot()
		is := m.ifStatus(c.ifname)
		ls := &Lease{State: state}
		if l != nil {
			is.Managed = []string{l.Address.String()}
			ls.Address, ls.Server, ls.Domain = l.Address.String(), l.Server.String(), l.Domain
			ls.Obtained, ls.T1, ls.T2, ls.Expiry, ls.Renewals = l.Obtained, l.T1, l.T2, l.Expiry, l.Renewals
			if l.Router.IsValid() {
				ls.Router = l.Router.String()
				if st.Gateway == "" {
					st.Gateway = ls.Router
				}
			}
			for _, d := range l.DNS {
				ls.DNS = append(ls.DNS, d.String())
			}
			for _, n := range l.NTP {
				ls.NTP = append(ls.NTP, n.String())
				if !slices.Contains(st.NTP, n.String()) {
					st.NTP = append(st.NTP, n.String())
				}
			}
		}
		is.Lease = ls
		if cerr != "" && st.Error == "" {
			st.Error = c.ifname + ": " + cerr
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	return st
}

func (m *Manager) ifStatus(name string) InterfaceStatus {
	is := InterfaceStatus{Name: name}
	l, err := m.k.link(name)
	if err != nil {
		return is
	}
	if len(l.Attrs().HardwareAddr) > 0 {
		is.MAC = l.Attrs().HardwareAddr.String()
	}
	is.Carrier = carrier(l)
	is.Addresses = m.k.addrs(l)
	return is
}
