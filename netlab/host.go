package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// onNewThread runs fn on a fresh OS thread that is thrown away afterwards:
// the goroutine locks its thread and exits without unlocking, so a thread
// moved into another namespace never returns to Go's pool.
func onNewThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// LAN is an Ethernet segment: a bridge in its own namespace, the switch.
type LAN struct {
	Name string
	lab  *Lab
	idx  int
	ns   netns.NsHandle
	full string
	nl   *netlink.Handle
	br   netlink.Link
}

// AddLAN creates a switch (a bridge with multicast snooping off, so VRRP
// multicast reaches every port as on a dumb switch).
func (l *Lab) AddLAN(name string) (*LAN, error) {
	ns, full, err := l.newNamespace("sw-" + name)
	if err != nil {
		return nil, err
	}
	n := &LAN{Name: name, lab: l, ns: ns, full: full}
	l.mu.Lock()
	n.idx = len(l.lans) + 1
	l.lans = append(l.lans, n)
	l.mu.Unlock()
	if n.nl, err = netlink.NewHandleAt(ns); err != nil {
		return nil, fmt.Errorf("netlab: LAN %s: netlink: %w", name, err)
	}
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &off}
	if err := n.nl.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("netlab: LAN %s: add bridge: %w", name, err)
	}
	if n.br, err = n.nl.LinkByName("br0"); err != nil {
		return nil, err
	}
	if err := n.nl.LinkSetUp(n.br); err != nil {
		return nil, fmt.Errorf("netlab: LAN %s: bridge up: %w", name, err)
	}
	return n, nil
}

func (n *LAN) remove() error {
	if n.nl != nil {
		n.nl.Close()
	}
	n.ns.Close()
	killNamespaceProcesses(filepath.Join(NetnsDir, n.full))
	if err := deleteNamespace(n.full); err != nil {
		return fmt.Errorf("netlab: remove LAN %s: %w", n.Name, err)
	}
	return nil
}

// Host is a machine of the lab: one network namespace.
type Host struct {
	Name string
	lab  *Lab
	idx  int
	ns   netns.NsHandle
	full string
	nl   *netlink.Handle

	mu      sync.Mutex
	ifaces  []*Iface
	closers []io.Closer // in-process listeners: their sockets pin the namespace
	gone    bool
}

// Iface is a host's link into a LAN.
type Iface struct {
	Name  string
	LAN   *LAN
	MAC   net.HardwareAddr
	Addrs []netip.Prefix
	port  string // the switch-side end
}

// AddHost creates a host with only its loopback, up.
func (l *Lab) AddHost(name string) (*Host, error) {
	ns, full, err := l.newNamespace(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, lab: l, ns: ns, full: full}
	l.mu.Lock()
	h.idx = len(l.hosts) + 1
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	if h.nl, err = netlink.NewHandleAt(ns); err != nil {
		return nil, fmt.Errorf("netlab: host %s: netlink: %w", name, err)
	}
	lo, err := h.nl.LinkByName("lo")
	if err == nil {
		err = h.nl.LinkSetUp(lo)
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: host %s: loopback up: %w", name, err)
	}
	// No duplicate address detection: link-local addresses are usable at
	// once (VRRPv3 over IPv6 sends from them).
	for _, k := range []string{"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"} {
		if err := h.Sysctl(k, "0"); err != nil {
			return nil, fmt.Errorf("netlab: host %s: %w", name, err)
		}
	}
	return h, nil
}

// NamespacePath is the bind mount of the host's namespace.
func (h *Host) NamespacePath() string { return filepath.Join(NetnsDir, h.full) }

// Connect plugs the host into lan through a veth named ifname, with the
// given addresses (CIDR, IPv4 or IPv6; IPv6 without duplicate address
// detection so it is usable at once). MACs are predictable:
// 02:4c:<lan>:00:<host>:<n>.
func (h *Host) Connect(lan *LAN, ifname string, addrs ...string) (*Iface, error) {
	h.mu.Lock()
	n := len(h.ifaces) + 1
	h.mu.Unlock()
	mac := net.HardwareAddr{0x02, 0x4c, byte(lan.idx), 0, byte(h.idx), byte(n)}
	port := fmt.Sprintf("p%d-%d", h.idx, n)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifname, HardwareAddr: mac},
		PeerName:      port,
		PeerNamespace: netlink.NsFd(int(lan.ns)),
	}
	if err := h.nl.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("netlab: %s: add veth %s to LAN %s: %w", h.Name, ifname, lan.Name, err)
	}
	peer, err := lan.nl.LinkByName(port)
	if err == nil {
		err = lan.nl.LinkSetMaster(peer, lan.br)
	}
	if err == nil {
		err = lan.nl.LinkSetUp(peer)
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: attach %s to LAN %s: %w", h.Name, port, lan.Name, err)
	}
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	ifc := &Iface{Name: ifname, LAN: lan, MAC: mac, port: port}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("netlab: %s: address %q: %w", h.Name, a, err)
		}
		if err := h.nl.AddrAdd(link, nlAddr(p)); err != nil {
			return nil, fmt.Errorf("netlab: %s: add %s to %s: %w", h.Name, a, ifname, err)
		}
		ifc.Addrs = append(ifc.Addrs, p)
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("netlab: %s: %s up: %w", h.Name, ifname, err)
	}
	// The carrier reaches the bridge port through the kernel's linkwatch,
	// which batches events (up to a second apart when many links change,
	// as when labs are built side by side): until then the port forwards
	// nothing, and a connection made at once loses its first ARP request
	// (retried a second later). Wait until both ends are operationally up.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l1, err1 := h.nl.LinkByName(ifname)
		l2, err2 := lan.nl.LinkByName(port)
		if err1 == nil && err2 == nil && l1.Attrs().OperState == netlink.OperUp && l2.Attrs().OperState == netlink.OperUp {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("netlab: %s: %s on LAN %s not up within 5s", h.Name, ifname, lan.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// An IPv6 address answers Neighbor Solicitations only once the
	// kernel has joined its solicited-node group, which it does in its
	// address work (a workqueue) after the carrier came, DAD or not. With
	// labs built side by side that can lag the carrier long enough for a
	// first connection's solicitation to go unanswered (it is retried a
	// second later). Wait for the groups too.
	for !h.v6Ready(ifname, ifc.Addrs) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("netlab: %s: %s has not joined its IPv6 addresses' solicited-node groups within 5s", h.Name, ifname)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.mu.Lock()
	h.ifaces = append(h.ifaces, ifc)
	h.mu.Unlock()
	return ifc, nil
}

// v6Ready reports whether ifname has joined the solicited-node group of
// every IPv6 address of want (igmp6 as the host's namespace sees it). An
// interface with no IPv6 address is ready without a look.
func (h *Host) v6Ready(ifname string, want []netip.Prefix) bool {
	if !slices.ContainsFunc(want, func(p netip.Prefix) bool { return p.Addr().Is6() }) {
		return true
	}
	groups, err := h.readProcNet("igmp6")
	if err != nil {
		return false
	}
	for _, p := range want {
		if !p.Addr().Is6() {
			continue
		}
		a := p.Addr().As16()
		sn := fmt.Sprintf("ff0200000000000000000001ff%02x%02x%02x", a[13], a[14], a[15])
		joined := false
		for line := range strings.Lines(groups) {
			f := strings.Fields(line)
			if len(f) >= 3 && f[1] == ifname && f[2] == sn {
				joined = true
				break
			}
		}
		if !joined {
			return false
		}
	}
	return true
}

// readProcNet reads /proc/net/name as the host's namespace sees it: from a
// thread set into it (/proc/thread-self; /proc/net follows the process's
// main thread, not the namespace).
func (h *Host) readProcNet(name string) (string, error) {
	var b []byte
	err := h.Do(func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return string(b), err
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// Iface returns the host's interface named name, or nil.
func (h *Host) Iface(name string) *Iface {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, i := range h.ifaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// Addr returns the first address of the host's interface ifname in the
// given family (4 or 6).
func (h *Host) Addr(ifname string, family int) netip.Addr {
	if i := h.Iface(ifname); i != nil {
		for _, p := range i.Addrs {
			if (family == 4) == p.Addr().Is4() {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}

// AddRoute adds a route to dst ("default", or a prefix) via gw.
func (h *Host) AddRoute(dst, gw string) error {
	g, err := netip.ParseAddr(gw)
	if err != nil {
		return fmt.Errorf("netlab: %s: gateway %q: %w", h.Name, gw, err)
	}
	r := &netlink.Route{Gw: g.AsSlice()}
	if dst != "default" {
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			return fmt.Errorf("netlab: %s: route %q: %w", h.Name, dst, err)
		}
		r.Dst = nlAddr(p).IPNet
	} else if g.Is6() {
		r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	if err := h.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("netlab: %s: route %s via %s: %w", h.Name, dst, gw, err)
	}
	return nil
}

// Do runs fn on a thread inside the host's namespace. Sockets made in fn
// belong to the host for their whole life.
func (h *Host) Do(fn func() error) error {
	return onNewThread(func() error {
		if err := netns.Set(h.ns); err != nil {
			return fmt.Errorf("netlab: enter %s: %w", h.Name, err)
		}
		return fn()
	})
}

// Listen opens a listener inside the host.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	if err == nil {
		h.mu.Lock()
		h.closers = append(h.closers, ln)
		h.mu.Unlock()
	}
	return ln, err
}

// dialTimeout bounds every Dial from a host.
const dialTimeout = 2 * time.Second

// Dial connects from inside the host. It fits http.Transport.DialContext.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		// The connect runs on this locked thread; bound it, or dials to a
		// blackholed address (callers' contexts are not always cancelled)
		// would each hold an OS thread for the kernel's SYN timeout.
		d := net.Dialer{Timeout: dialTimeout}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Sysctl writes a /proc/sys value in the host's namespace, e.g.
// ("net/ipv4/ip_nonlocal_bind", "1").
func (h *Host) Sysctl(key, value string) error {
	return h.Do(func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}

// SetLink brings the host's interface up or down.
func (h *Host) SetLink(ifname string, up bool) error {
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netlab: %s: %s: %w", h.Name, ifname, err)
	}
	if up {
		err = h.nl.LinkSetUp(link)
	} else {
		err = h.nl.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("netlab: %s: set %s up=%v: %w", h.Name, ifname, up, err)
	}
	return nil
}

// HasAddr reports whether addr is configured on any interface of the host.
func (h *Host) HasAddr(addr netip.Addr) bool {
	as, err := h.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
			return true
		}
	}
	return false
}

// Neighbor returns the link-layer address the host's ARP/ND table holds for
// ip on ifname, and the entry's state ("REACHABLE", "STALE", ...).
func (h *Host) Neighbor(ifname string, ip netip.Addr) (net.HardwareAddr, string, error) {
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return nil, "", err
	}
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := h.nl.NeighList(link.Attrs().Index, fam)
	if err != nil {
		return nil, "", err
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip.Unmap() {
			return n.HardwareAddr, neighState(n.State), nil
		}
	}
	return nil, "", fmt.Errorf("netlab: %s has no neighbor entry for %s", h.Name, ip)
}

func neighState(s int) string {
	var out []string
	for bit, name := range map[int]string{
		netlink.NUD_INCOMPLETE: "INCOMPLETE", netlink.NUD_REACHABLE: "REACHABLE", netlink.NUD_STALE: "STALE",
		netlink.NUD_DELAY: "DELAY", netlink.NUD_PROBE: "PROBE", netlink.NUD_FAILED: "FAILED",
		netlink.NUD_NOARP: "NOARP", netlink.NUD_PERMANENT: "PERMANENT",
	} {
		if s&bit != 0 {
			out = append(out, name)
		}
	}
	return strings.Join(out, ",")
}

// remove kills the host's processes and deletes its namespace (its veths go
// with it, so the switch sees the ports vanish).
func (h *Host) remove() error {
	h.mu.Lock()
	if h.gone {
		h.mu.Unlock()
		return nil
	}
	h.gone = true
	ifaces, closers := h.ifaces, h.closers
	h.mu.Unlock()
	// Unplug first: a socket still open somewhere keeps a namespace (and
	// its veths) alive, and a removed host must vanish from the LAN now.
	for _, i := range ifaces {
		if port, err := i.LAN.nl.LinkByName(i.port); err == nil {
			i.LAN.nl.LinkDel(port)
		}
	}
	for _, c := range closers {
		c.Close()
	}
	if h.nl != nil {
		h.nl.Close()
	}
	h.ns.Close()
	killNamespaceProcesses(h.NamespacePath())
	if err := deleteNamespace(h.full); err != nil {
		return fmt.Errorf("netlab: remove host %s: %w", h.Name, err)
	}
	return nil
}

// Remove takes the host out of the lab entirely, as if it lost power: its
// processes die and its links vanish.
func (h *Host) Remove() error {
	h.lab.mu.Lock()
	var procs []*Process
	for _, p := range h.lab.procs {
		if p.Host == h {
			procs = append(procs, p)
		}
	}
	h.lab.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	return h.remove()
}

// AddAddrs adds addresses (with prefix length bits) to the host's
// interface ifname.
func (h *Host) AddAddrs(ifname string, addrs []netip.Addr, bits int) error {
	return h.Do(func() error {
		link, err := h.nl.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("netlab: %s: %s: %w", h.Name, ifname, err)
		}
		for _, a := range addrs {
			if err := h.nl.AddrAdd(link, nlAddr(netip.PrefixFrom(a, bits))); err != nil {
				return fmt.Errorf("netlab: %s: add %s to %s: %w", h.Name, a, ifname, err)
			}
		}
		return nil
	})
}
