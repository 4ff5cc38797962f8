package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"halb/appliance/config"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// linkWatcher is a Netif that tells when links or addresses change.
type linkWatcher interface {
	// WatchLinks returns a channel that receives (coalesced) after a
	// link or address changed, until ctx ends or the notifications fail;
	// it is closed then.
	WatchLinks(ctx context.Context) (<-chan struct{}, error)
	// Forget drops answers LinkUp and PrimaryAddr reuse, so that the
	// polls after a change see it.
	Forget()
}

// Netif is everything VRRP asks of the kernel. The netlink implementation is
// below; tests of the state machine use a fake.
type Netif interface {
	// AddVIP puts the address on the interface (idempotent: already
	// present is fine). IPv6 VIPs are added with IFA_F_NODAD so they are
	// usable at once. IPv4 VIPs carry the label "<ifname>:halb" (when the
	// interface name leaves room for it), which marks them as halb's.
	AddVIP(ifname string, vip netip.Prefix) error
	// DelVIP removes it (idempotent: absent is fine).
	DelVIP(ifname string, vip netip.Prefix) error
	// HasVIP reports whether the address is on the interface.
	HasVIP(ifname string, vip netip.Addr) (bool, error)
	// Announce tells the LAN that this node now answers for addrs: one
	// gratuitous ARP per IPv4 address (an ARP request, sender = target =
	// the address, from the interface's MAC, to the Ethernet broadcast, as
	// keepalived sends them; from a VRRP virtual MAC an ARP reply, see
	// sendGratuitousARP), and one unsolicited Neighbor Advertisement
	// per IPv6 address (override set, solicited clear, target link-layer
	// address option, to ff02::1 with hop limit 255). The sockets live in
	// the network namespace of the calling thread.
	Announce(ifname string, addrs []netip.Addr) error
	// LinkUp reports whether the interface is up with carrier (oper state
	// up, or IFF_UP+IFF_RUNNING as veth and dummy links report it).
	LinkUp(ifname string) (bool, error)
	// PrimaryAddr returns the interface's first address of the family. For
	// IPv4 it is the first address that is not a VIP (a primary one when
	// there is one); for IPv6 it is the link-local address, which RFC 5798
	// requires as the source of IPv6 adverts. The result has no zone.
	PrimaryAddr(ifname string, v6 bool, vips []netip.Prefix) (netip.Addr, error)
	// RemoveLeftovers removes, from the named interface, addresses in vips
	// still present (a crash left them): called at start before the state
	// machine runs. Returns what it removed.
	RemoveLeftovers(ifname string, vips []netip.Prefix) ([]netip.Prefix, error)
	// EnsureVMAC makes sure the virtual MAC interface of a use_vmac
	// instance exists and is up (idempotent: a right one is kept, a wrong
	// macvlan of that name replaced): a macvlan in private mode named
	// config.VMACName(vrid, v6) over parent, with the RFC 5798 virtual MAC
	// 00:00:5e:00:01:VRID (00:00:5e:00:02:VRID for IPv6). It sets the
	// sysctls keepalived sets: arp_ignore=1 on parent and on the macvlan
	// (only the macvlan answers ARP for the VIPs, and only for them);
	// arp_filter=0, accept_local=1, rp_filter=0 on the macvlan; and
	// arp_announce=2 on parent (its ARP requests never name a VIP). The
	// macvlan generates no IPv6 address (addr_gen_mode none); an IPv6
	// one gets a copy of parent's link-local address (the source of
	// adverts, shared by both nodes' macvlans, hence no DAD). It returns
	// the macvlan's name.
	EnsureVMAC(parent string, vrid int, v6 bool) (string, error)
	// RemoveVMAC deletes the macvlan named ifname (idempotent: absent is
	// fine; an interface of that name that is not a macvlan is an error).
	RemoveVMAC(ifname string) error
	Close() error
}

// NetlinkNetif is the kernel implementation of Netif: addresses and links
// through netlink, gratuitous ARP through a packet socket, unsolicited
// Neighbor Advertisements through a raw ICMPv6 socket. Announce opens its
// sockets for the call and closes them before it returns, so the only
// descriptor held between calls is the netlink handle. It is safe for
// concurrent use.
type NetlinkNetif struct {
	mu     sync.Mutex // serialises netlink requests and guards closed
	h      *netlink.Handle
	owned  bool // Close closes h and ns
	closed bool
	// ns is h's network namespace (closed: not known), where WatchLinks
	// subscribes.
	ns netns.NsHandle

	// The answers to the instances' polls (LinkUp every linkPoll for
	// each instance, PrimaryAddr every primaryPoll), reused
	// for pollShare: with 100 instances on one interface the polls were
	// 1100 netlink requests a second through mu, each parsing every
	// address of the link (the VIPs among them), and the instances'
	// loops queued behind them (late adverts, a backup that took over).
	links   map[string]linkPollState
	primary map[primaryKey]primaryPollState
}

// pollShare is how long a poll's answer serves the other instances' polls.
const pollShare = linkPoll / 2

type linkPollState struct {
	link netlink.Link // nil when err
	up   bool
	err  error
	at   time.Time
}

type primaryKey struct {
	ifname string
	fam    int
}

type primaryPollState struct {
	addrs []netlink.Addr
	err   error
	at    time.Time
}

var _ Netif = (*NetlinkNetif)(nil)

// vipLabelSuffix marks an IPv4 address as a halb VIP: its label is the
// interface name followed by this (an alias label, as `ip addr` shows it).
// IPv6 has no address labels; see isLeftover.
const vipLabelSuffix = ":halb"

// announceTimeout bounds the writes of one Announce call.
const announceTimeout = time.Second

// NewNetlinkNetif returns the kernel implementation working in the calling
// thread's network namespace (the daemon's).
func NewNetlinkNetif() (*NetlinkNetif, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vrrp: open netlink: %w", err)
	}
	// The namespace the handle works in, for WatchLinks's subscription.
	ns, err := netns.Get()
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("vrrp: network namespace: %w", err)
	}
	return &NetlinkNetif{h: h, owned: true, ns: ns}, nil
}

// NewNetlinkNetifAt returns the kernel implementation using h for every
// netlink call, e.g. a handle of another namespace in tests. The caller
// keeps ownership of h: Close does not close it. Raw ARP/NDP sockets are
// still opened in the namespace of the thread that calls Announce, so tests
// call Announce inside that namespace (a netlab host's Do).
func NewNetlinkNetifAt(h *netlink.Handle) *NetlinkNetif {
	return &NetlinkNetif{h: h, ns: netns.None()}
}

// Close releases the netlink handle (when NewNetlinkNetif opened it). Later
// calls fail with net.ErrClosed. It is safe to call more than once.
func (n *NetlinkNetif) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.owned {
		n.h.Close()
		n.ns.Close()
	}
	n.h = nil
	return nil
}

// WatchLinks implements linkWatcher with rtnetlink's notifications of
// links and addresses (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
// RTNLGRP_IPV6_IFADDR), as keepalived follows its interfaces. A full
// socket buffer (ENOBUFS: notifications lost) is a change too: the poll
// after it reads everything again. errors.ErrUnsupported when n does
// not know its namespace (NewNetlinkNetifAt).
func (n *NetlinkNetif) WatchLinks(ctx context.Context) (<-chan struct{}, error) {
	if err := n.lock(); err != nil {
		return nil, err
	}
	if !n.ns.IsOpen() {
		n.mu.Unlock()
		return nil, errors.ErrUnsupported
	}
	s, err := subscribeIn(n.ns, unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR)
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("vrrp: subscribe to link notifications: %w", err)
	}
	ch := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, s.Close) // wakes Receive
	go func() {
		defer close(ch)
		defer func() {
			if stop() { // failed before ctx ended
				s.Close()
			}
		}()
		for {
			_, from, err := s.Receive()
			if err != nil && !errors.Is(err, unix.ENOBUFS) {
				return // closed, or the socket failed: the caller polls
			}
			if err == nil && from.Pid != nl.PidKernel {
				continue
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}

// subscribeIn opens an rtnetlink socket in namespace ns listening to
// groups. In the calling thread's own namespace (the daemon's) it opens it
// there: entering a namespace, even the one the thread is in, needs
// CAP_SYS_ADMIN, which halbd on the appliance does not have (its
// subscription failed there, and it polled the links every linkPoll).
func subscribeIn(ns netns.NsHandle, groups ...uint) (*nl.NetlinkSocket, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	defer cur.Close()
	if cur.Equal(ns) {
		return nl.Subscribe(unix.NETLINK_ROUTE, groups...)
	}
	return nl.SubscribeAt(ns, cur, unix.NETLINK_ROUTE, groups...)
}

// Forget implements linkWatcher: the polls' shared answers (pollShare)
// are dropped, so the next ones ask the kernel.
func (n *NetlinkNetif) Forget() {
	n.mu.Lock()
	clear(n.links)
	clear(n.primary)
	n.mu.Unlock()
}

// lock takes the lock for a netlink call; it fails once n is closed.
func (n *NetlinkNetif) lock() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return net.ErrClosed
	}
	return nil
}

// vipLabel is the IPv4 label of halb's VIPs on ifname, or "" when the name
// leaves no room for the suffix (labels are at most 15 bytes).
func vipLabel(ifname string) string {
	l := ifname + vipLabelSuffix
	if len(l) > unix.IFNAMSIZ-1 {
		return ""
	}
	return l
}

func prefixAddr(p netip.Prefix) *netlink.Addr {
	a := p.Addr().Unmap()
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}}
}

// AddVIP implements Netif.
func (n *NetlinkNetif) AddVIP(ifname string, vip netip.Prefix) error {
	if err := n.lock(); err != nil {
		return fmt.Errorf("vrrp: add VIP %s to %s: %w", vip, ifname, err)
	}
	defer n.mu.Unlock()
	a := prefixAddr(vip)
	if vip.Addr().Unmap().Is4() {
		a.Label = vipLabel(ifname)
	} else {
		a.Flags = unix.IFA_F_NODAD
	}
	err := n.withLink(ifname, func(link netlink.Link) error { return n.h.AddrAdd(link, a) })
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vrrp: add VIP %s to %s: %w", vip, ifname, err)
	}
	return nil
}

// DelVIP implements Netif. It removes the address with vip's prefix length,
// whatever its label.
func (n *NetlinkNetif) DelVIP(ifname string, vip netip.Prefix) error {
	if err := n.lock(); err != nil {
		return fmt.Errorf("vrrp: delete VIP %s from %s: %w", vip, ifname, err)
	}
	defer n.mu.Unlock()
	err := n.withLink(ifname, func(link netlink.Link) error { return n.h.AddrDel(link, prefixAddr(vip)) })
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("vrrp: delete VIP %s from %s: %w", vip, ifname, err)
	}
	return nil
}

// HasVIP implements Netif.
func (n *NetlinkNetif) HasVIP(ifname string, vip netip.Addr) (bool, error) {
	if err := n.lock(); err != nil {
		return false, fmt.Errorf("vrrp: look for %s on %s: %w", vip, ifname, err)
	}
	defer n.mu.Unlock()
	addrs, err := n.addrs(ifname, familyOf(vip))
	if err != nil {
		return false, fmt.Errorf("vrrp: look for %s on %s: %w", vip, ifname, err)
	}
	for _, a := range addrs {
		if addrOf(a) == vip.Unmap().WithZone("") {
			return true, nil
		}
	}
	return false, nil
}

// RemoveLeftovers removes, from the named interface, addresses in vips
// still present (a crash left them): called at start before the state
// machine runs. An address counts when its IP is one of vips' (whatever
// its prefix length) and it looks like a halb VIP: an IPv4 address must
// carry halb's label (unless the interface name is too long for one), an
// IPv6 address must be a global one added without DAD. It returns what it
// removed, as found on the interface.
func (n *NetlinkNetif) RemoveLeftovers(ifname string, vips []netip.Prefix) ([]netip.Prefix, error) {
	if err := n.lock(); err != nil {
		return nil, fmt.Errorf("vrrp: remove leftover VIPs from %s: %w", ifname, err)
	}
	defer n.mu.Unlock()
	addrs, err := n.addrs(ifname, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("vrrp: remove leftover VIPs from %s: %w", ifname, err)
	}
	var removed []netip.Prefix
	var errs []error
	for _, a := range addrs {
		if !isLeftover(ifname, a, vips) {
			continue
		}
		p := prefixOf(a)
		// The label is left out so that the kernel matches on the address
		// and prefix length alone.
		del := &netlink.Addr{IPNet: a.IPNet, LinkIndex: a.LinkIndex}
		if err := n.h.AddrDel(nil, del); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("vrrp: remove leftover VIP %s from %s: %w", p, ifname, err))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// isLeftover reports whether a is one of vips and marked as halb's.
func isLeftover(ifname string, a netlink.Addr, vips []netip.Prefix) bool {
	ip := addrOf(a)
	if !inPrefixes(ip, vips) {
		return false
	}
	if ip.Is4() {
		l := vipLabel(ifname)
		return l == "" || a.Label == l
	}
	return !ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_NODAD != 0
}

// Announce implements Netif. Its sockets are opened in the calling thread's
// network namespace and closed before it returns. The interface is the
// one looked up at most pollShare ago (withLink): the instances of a link
// taking over together look it up once, and no call dumps the node's
// links or addresses (net.InterfaceByName and arp.Dial each did, a
// millisecond apiece with a hundred VIPs).
func (n *NetlinkNetif) Announce(ifname string, addrs []netip.Addr) error {
	if err := n.lock(); err != nil {
		return fmt.Errorf("vrrp: announce on %s: %w", ifname, err)
	}
	var ifi *net.Interface
	err := n.withLink(ifname, func(l netlink.Link) error {
		a := l.Attrs()
		ifi = &net.Interface{Index: a.Index, MTU: a.MTU, Name: a.Name, HardwareAddr: a.HardwareAddr}
		return nil
	})
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("vrrp: announce on %s: %w", ifname, err)
	}
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if len(v4) == 0 && len(v6) == 0 {
		return nil
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, sendGratuitousARP(ifi, v4))
	}
	if len(v6) > 0 {
		errs = append(errs, sendUnsolicitedNA(ifi, v6))
	}
	return errors.Join(errs...)
}

// sendGratuitousARP sends, for each address, an ARP request with sender =
// target = the address and the interface's MAC as sender hardware address,
// to the Ethernet broadcast. The target hardware address is zero, as in
// the kernel's own gratuitous ARP and RFC 5227's ARP announcement.
//
// From a VRRP virtual MAC (use_vmac) the announcement is an ARP reply
// instead, with the target hardware address equal to the sender's (what
// Linux takes as a gratuitous reply): another node whose daemon died and
// left its macvlan holding the VIP answers a request, from its copy of the
// virtual MAC, and so pulls the switch's entry for that MAC back to itself.
//
// The socket is a packet socket of protocol 0, which receives nothing,
// with the frames' Ethernet header built here (arp.Dial's socket took
// every ARP packet of the link while open, and Dial dumped the node's
// addresses to find the interface's).
func sendGratuitousARP(ifi *net.Interface, addrs []netip.Addr) error {
	fail := func(err error) error {
		return fmt.Errorf("vrrp: gratuitous ARP on %s: open socket: %w", ifi.Name, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: int64(announceTimeout / time.Second)}); err != nil {
		return fail(err)
	}
	op, target := arp.OperationRequest, make(net.HardwareAddr, len(ifi.HardwareAddr))
	if isVirtualMAC(ifi.HardwareAddr) {
		op, target = arp.OperationReply, ifi.HardwareAddr
	}
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	dst := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(dst.Addr[:], broadcast)
	// Ethernet header: destination, source, EtherType ARP.
	hdr := append(append(slices.Clone(broadcast), ifi.HardwareAddr...), byte(unix.ETH_P_ARP>>8), byte(unix.ETH_P_ARP&0xff))
	var errs []error
	for _, a := range addrs {
		p, err := arp.NewPacket(op, ifi.HardwareAddr, a, target, a)
		var b []byte
		if err == nil {
			b, err = p.MarshalBinary()
		}
		if err == nil {
			err = unix.Sendto(fd, append(slices.Clone(hdr), b...), 0, dst)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp: gratuitous ARP for %s on %s: %w", a, ifi.Name, err))
		}
	}
	return errors.Join(errs...)
}

var allNodes = netip.MustParseAddr("ff02::1")

// sendUnsolicitedNA sends, for each address, an unsolicited Neighbor
// Advertisement to all nodes. The message is built by ndp; the socket is a
// plain raw ICMPv6 socket addressed by interface index rather than ndp's
// Conn, which resolves the interface by name through a process-wide cache
// (wrong when one process works in several namespaces, as tests do). The
// kernel fills in the checksum and picks the source, the link-local
// address of the interface.
func sendUnsolicitedNA(ifi *net.Interface, addrs []netip.Addr) error {
	fail := func(err error) error {
		return fmt.Errorf("vrrp: unsolicited NA on %s: open socket: %w", ifi.Name, err)
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	// Receive nothing: the socket only sends.
	var filter unix.ICMPv6Filter
	for i := range filter.Data {
		filter.Data[i] = ^uint32(0)
	}
	if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &filter); err != nil {
		return fail(err)
	}
	for _, o := range []struct{ opt, v int }{
		{unix.IPV6_MULTICAST_IF, ifi.Index},
		{unix.IPV6_MULTICAST_HOPS, ndp.HopLimit}, // RFC 4861: receivers drop anything else
		// Our own kernel must not see the advert: for an address still
		// in DAD it would read as a duplicate.
		{unix.IPV6_MULTICAST_LOOP, 0},
	} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.v); err != nil {
			return fail(err)
		}
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: int64(announceTimeout / time.Second)}); err != nil {
		return fail(err)
	}
	dst := &unix.SockaddrInet6{Addr: allNodes.As16(), ZoneId: uint32(ifi.Index)}
	var errs []error
	for _, a := range addrs {
		b, err := ndp.MarshalMessage(&ndp.NeighborAdvertisement{
			Override:      true,
			TargetAddress: a,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
		})
		if err == nil {
			err = unix.Sendto(fd, b, 0, dst)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp: unsolicited NA for %s on %s: %w", a, ifi.Name, err))
		}
	}
	return errors.Join(errs...)
}

// LinkUp implements Netif. An answer younger than pollShare is reused.
func (n *NetlinkNetif) LinkUp(ifname string) (bool, error) {
	if err := n.lock(); err != nil {
		return false, fmt.Errorf("vrrp: state of link %s: %w", ifname, err)
	}
	defer n.mu.Unlock()
	c := n.link(ifname, false)
	if c.err != nil {
		return false, fmt.Errorf("vrrp: state of link %s: %w", ifname, c.err)
	}
	return c.up, nil
}

// link returns the interface as looked up less than pollShare ago, or
// looks it up (fresh: always). n.mu held.
func (n *NetlinkNetif) link(ifname string, fresh bool) linkPollState {
	now := time.Now()
	if c, ok := n.links[ifname]; ok && !fresh && now.Sub(c.at) < pollShare && now.Sub(c.at) >= 0 {
		return c
	}
	c := linkPollState{at: now}
	c.link, c.err = n.h.LinkByName(ifname)
	if c.err != nil {
		c.link = nil
	} else {
		a := c.link.Attrs()
		c.up = a.RawFlags&unix.IFF_UP != 0 && (a.OperState == netlink.OperUp || a.RawFlags&unix.IFF_RUNNING != 0)
	}
	if n.links == nil {
		n.links = map[string]linkPollState{}
	}
	n.links[ifname] = c
	return c
}

// withLink runs f on the interface, looked up at most pollShare ago (the
// 100 instances of a link taking over at once look it up once); if f
// finds it gone (an interface recreated under the name), on a fresh
// lookup again. n.mu held.
func (n *NetlinkNetif) withLink(ifname string, f func(netlink.Link) error) error {
	c := n.link(ifname, false)
	if c.link == nil {
		c = n.link(ifname, true)
	}
	if c.link == nil {
		return c.err
	}
	err := f(c.link)
	if errors.Is(err, unix.ENODEV) {
		if c = n.link(ifname, true); c.link == nil {
			return c.err
		}
		err = f(c.link)
	}
	return err
}

// PrimaryAddr implements Netif. IPv6 addresses still in (or failed by)
// duplicate address detection are skipped: nothing can be sent from them.
func (n *NetlinkNetif) PrimaryAddr(ifname string, v6 bool, vips []netip.Prefix) (netip.Addr, error) {
	fam, what := netlink.FAMILY_V4, "IPv4"
	if v6 {
		fam, what = netlink.FAMILY_V6, "IPv6 link-local"
	}
	if err := n.lock(); err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp: primary %s address of %s: %w", what, ifname, err)
	}
	defer n.mu.Unlock()
	// The address list younger than pollShare is reused (the VIPs in it
	// are skipped below either way).
	now, key := time.Now(), primaryKey{ifname, fam}
	c, ok := n.primary[key]
	if !ok || now.Sub(c.at) >= pollShare || now.Sub(c.at) < 0 {
		c.addrs, c.err = n.addrs(ifname, fam)
		c.at = now
		if n.primary == nil {
			n.primary = map[primaryKey]primaryPollState{}
		}
		n.primary[key] = c
	}
	addrs, err := c.addrs, c.err
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp: primary %s address of %s: %w", what, ifname, err)
	}
	var secondary netip.Addr
	for _, a := range addrs {
		ip := addrOf(a)
		if v6 {
			if ip.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				return ip, nil
			}
			continue
		}
		if !ip.Is4() || (a.Label != "" && a.Label == vipLabel(ifname)) || inPrefixes(ip, vips) {
			continue
		}
		if a.Flags&unix.IFA_F_SECONDARY == 0 {
			return ip, nil
		}
		if !secondary.IsValid() {
			secondary = ip
		}
	}
	if secondary.IsValid() {
		return secondary, nil
	}
	return netip.Addr{}, fmt.Errorf("vrrp: primary %s address of %s: none", what, ifname)
}

// addrs lists the addresses of the family on the named interface. A dump
// interrupted by a concurrent change is retried.
func (n *NetlinkNetif) addrs(ifname string, family int) ([]netlink.Addr, error) {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		as, err := n.h.AddrList(link, family)
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < 10 {
			continue
		}
		return as, err
	}
}

// inPrefixes reports whether ip is the address of one of ps.
func inPrefixes(ip netip.Addr, ps []netip.Prefix) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr().Unmap().WithZone("") == ip })
}

func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func addrOf(a netlink.Addr) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.IP)
	return ip.Unmap()
}

func prefixOf(a netlink.Addr) netip.Prefix {
	bits, _ := a.Mask.Size()
	return netip.PrefixFrom(addrOf(a), bits)
}

// VirtualMAC is the RFC 5798 virtual router MAC address of a VRID:
// 00:00:5e:00:01:VRID, or 00:00:5e:00:02:VRID for IPv6.
func VirtualMAC(vrid int, v6 bool) net.HardwareAddr {
	fam := byte(1)
	if v6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, byte(vrid)}
}

// htons is v in network byte order, as a sockaddr_ll's protocol wants it.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// isVirtualMAC reports whether mac is an RFC 5798 virtual router MAC.
func isVirtualMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0 && mac[1] == 0 && mac[2] == 0x5e && mac[3] == 0 && (mac[4] == 1 || mac[4] == 2)
}

// EnsureVMAC implements Netif. The sysctls are written through /proc/sys,
// which is the network namespace of the calling thread (the daemon's; in
// tests, call it inside the namespace whose handle n uses).
func (n *NetlinkNetif) EnsureVMAC(parent string, vrid int, v6 bool) (string, error) {
	name := config.VMACName(vrid, v6)
	mac := VirtualMAC(vrid, v6)
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("vrrp: virtual MAC interface %s on %s: %w", name, parent, err)
	}
	if err := n.lock(); err != nil {
		return fail(err)
	}
	defer n.mu.Unlock()
	pl, err := n.h.LinkByName(parent)
	if err != nil {
		return fail(err)
	}
	link, err := n.h.LinkByName(name)
	if err == nil {
		mv, ok := link.(*netlink.Macvlan)
		if !ok {
			return fail(fmt.Errorf("%s exists and is a %s, not a macvlan", name, link.Type()))
		}
		a := mv.Attrs()
		if a.ParentIndex != pl.Attrs().Index || !slices.Equal(a.HardwareAddr, mac) || mv.Mode != netlink.MACVLAN_MODE_PRIVATE {
			if err := n.h.LinkDel(link); err != nil {
				return fail(fmt.Errorf("replace the macvlan of that name: %w", err))
			}
			link = nil
		}
	} else {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fail(err)
		}
		link = nil
	}
	if link == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.ParentIndex, attrs.HardwareAddr = name, pl.Attrs().Index, mac
		mv := &netlink.Macvlan{LinkAttrs: attrs, Mode: netlink.MACVLAN_MODE_PRIVATE}
		if err := n.h.LinkAdd(mv); err != nil {
			return fail(fmt.Errorf("create macvlan: %w", err))
		}
		if link, err = n.h.LinkByName(name); err != nil {
			return fail(err)
		}
	}
	// Both nodes' macvlans have one MAC: an IPv6 address generated from
	// it would be a duplicate, and its neighbor discovery and router
	// solicitations would pull the switch's entry for the virtual MAC
	// to the backup.
	if err := n.h.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		return fail(fmt.Errorf("addr_gen_mode none: %w", err))
	}
	sysctls := []struct{ iface, key, val string }{
		{parent, "arp_ignore", "1"},
		// ARP requests the parent sends (for a client the VIP answers)
		// name the parent's own address: with the VIP as sender they
		// would point clients' entries for the VIP at the parent's MAC.
		{parent, "arp_announce", "2"},
		{name, "arp_ignore", "1"},
		{name, "arp_filter", "0"},
		{name, "accept_local", "1"},
		{name, "rp_filter", "0"},
	}
	for _, s := range sysctls {
		p := "/proc/sys/net/ipv4/conf/" + s.iface + "/" + s.key
		if err := os.WriteFile(p, []byte(s.val), 0o644); err != nil {
			return fail(fmt.Errorf("sysctl: %w", err))
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return fail(fmt.Errorf("set up: %w", err))
	}
	if v6 {
		pas, err := n.h.AddrList(pl, netlink.FAMILY_V6)
		if err != nil {
			return fail(err)
		}
		for _, a := range pas {
			if !addrOf(a).IsLinkLocalUnicast() {
				continue
			}
			ll := &netlink.Addr{IPNet: a.IPNet, Flags: unix.IFA_F_NODAD, Scope: int(netlink.SCOPE_LINK)}
			if err := n.h.AddrAdd(link, ll); err != nil && !errors.Is(err, unix.EEXIST) {
				return fail(fmt.Errorf("copy link-local address %s: %w", addrOf(a), err))
			}
		}
	}
	return name, nil
}

// RemoveVMAC implements Netif.
func (n *NetlinkNetif) RemoveVMAC(ifname string) error {
	fail := func(err error) error {
		return fmt.Errorf("vrrp: remove virtual MAC interface %s: %w", ifname, err)
	}
	if err := n.lock(); err != nil {
		return fail(err)
	}
	defer n.mu.Unlock()
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fail(err)
	}
	if _, ok := link.(*netlink.Macvlan); !ok {
		return fail(fmt.Errorf("a %s, not a macvlan", link.Type()))
	}
	if err := n.h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fail(err)
	}
	return nil
}
