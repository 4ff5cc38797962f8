package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Route metrics and protocols of the default routes netcfg installs. The
// protocol marks the route as netcfg's in `ip route` (proto dhcp/static).
const (
	defaultMetric = 1024
	protoDHCP     = unix.RTPROT_DHCP
	protoStatic   = unix.RTPROT_STATIC
)

// kernel is netcfg's one door to the kernel: addresses, default routes,
// links and the sockets of the DHCP client, all in one network namespace.
type kernel struct {
	h  *netlink.Handle
	ns netns.NsHandle // the namespace; -1 = the process's own
}

// newKernel opens the door to the namespace at path ("" = the current).
func newKernel(path string) (*kernel, error) {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netcfg: netlink: %w", err)
		}
		return &kernel{h: h, ns: netns.None()}, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("netcfg: namespace %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netcfg: netlink in %s: %w", path, err)
	}
	return &kernel{h: h, ns: ns}, nil
}

func (k *kernel) close() {
	k.h.Close()
	if k.ns.IsOpen() {
		k.ns.Close()
	}
}

// inNS runs f on a thread in the namespace (sockets opened there stay
// there).
func (k *kernel) inNS(f func() error) error {
	if !k.ns.IsOpen() {
		return f()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("netcfg: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(k.ns); err != nil {
		return fmt.Errorf("netcfg: enter namespace: %w", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("netcfg: cannot return to the original namespace: " + err.Error())
		}
	}()
	return f()
}

// subscribeLinks delivers link changes until done is closed.
func (k *kernel) subscribeLinks(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error {
	opts := netlink.LinkSubscribeOptions{ErrorCallback: func(error) {}}
	if k.ns.IsOpen() {
		ns := k.ns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("netcfg: subscribe to links: %w", err)
	}
	return nil
}

func (k *kernel) link(name string) (netlink.Link, error) {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("netcfg: link %s: %w", name, err)
	}
	return l, nil
}

// ensureUp sets a managed link administratively up (as a network manager
// does: on the image nothing else brings the NICs up). It reports whether
// it had to.
func (k *kernel) ensureUp(l netlink.Link) (bool, error) {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return false, nil
	}
	if err := k.h.LinkSetUp(l); err != nil {
		return false, fmt.Errorf("netcfg: set %s up: %w", l.Attrs().Name, err)
	}
	return true, nil
}

// carrier reports whether the link is up with a carrier.
func carrier(l netlink.Link) bool {
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown && a.RawFlags&unix.IFF_LOWER_UP != 0)
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}}
}

// addrReplace puts p on the link with the given valid lifetime (0 =
// forever), or changes the lifetime of the address already there in
// place: RTM_NEWADDR with NLM_F_REPLACE, never a delete.
func (k *kernel) addrReplace(l netlink.Link, p netip.Prefix, valid time.Duration) error {
	a := nlAddr(p)
	lft := ^uint32(0)
	if valid > 0 {
		lft = uint32(min((valid+time.Second-1)/time.Second, 0xfffffffe))
	}
	a.ValidLft, a.PreferedLft = int(lft), int(lft)
	if err := k.h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("netcfg: address %v on %s: %w", p, l.Attrs().Name, err)
	}
	return nil
}

// addrAdd adds p (forever) unless it is there: added says whether netcfg
// created it (and so may remove it).
func (k *kernel) addrAdd(l netlink.Link, p netip.Prefix) (added bool, err error) {
	if err := k.h.AddrAdd(l, nlAddr(p)); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("netcfg: add %v to %s: %w", p, l.Attrs().Name, err)
	}
	return true, nil
}

// addrDel removes p; an address already gone is not an error. An IPv4
// address is removed only once the link promotes secondaries
// (promote_secondaries, as systemd-networkd sets it): otherwise the
// kernel flushes, with a primary address, every secondary one of its
// subnet — a VIP of the same subnet and prefix length among them.
func (k *kernel) addrDel(l netlink.Link, p netip.Prefix) error {
	if p.Addr().Is4() {
		name := l.Attrs().Name
		if err := k.inNS(func() error {
			return os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/promote_secondaries", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("netcfg: remove %v from %s: promote secondaries first: %w", p, name, err)
		}
	}
	if err := k.h.AddrDel(l, nlAddr(p)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("netcfg: remove %v from %s: %w", p, l.Attrs().Name, err)
	}
	return nil
}

// addrs lists the link's IPv4 and IPv6 addresses (CIDR), link-local
// IPv6 left out.
func (k *kernel) addrs(l netlink.Link) []string {
	as, err := k.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		if a.IP.To4() == nil && a.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, a.IPNet.String())
	}
	return out
}

func defaultRoute(l netlink.Link, gw netip.Addr, metric, proto int) *netlink.Route {
	return &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IP(gw.AsSlice()), Priority: metric,
		Protocol: netlink.RouteProtocol(proto), Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
}

// routeAdd installs a default route via gw. added says whether netcfg
// created it: the same route already there is not netcfg's to remove,
// and another default route at the same metric is an error (netcfg
// replaces nothing it did not add).
func (k *kernel) routeAdd(l netlink.Link, gw netip.Addr, metric, proto int) (added bool, err error) {
	r := defaultRoute(l, gw, metric, proto)
	if err := k.h.RouteAdd(r); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			rs, _ := k.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: r.Dst, Priority: metric},
				netlink.RT_FILTER_DST|netlink.RT_FILTER_PRIORITY)
			for _, x := range rs {
				if x.LinkIndex == r.LinkIndex && x.Gw.Equal(r.Gw) {
					return false, nil
				}
			}
			return false, fmt.Errorf("netcfg: a default route with metric %d exists that netcfg did not add", metric)
		}
		return false, fmt.Errorf("netcfg: default route via %v on %s: %w", gw, l.Attrs().Name, err)
	}
	return true, nil
}

func (k *kernel) routeDel(l netlink.Link, gw netip.Addr, metric, proto int) error {
	if err := k.h.RouteDel(defaultRoute(l, gw, metric, proto)); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("netcfg: remove default route via %v on %s: %w", gw, l.Attrs().Name, err)
	}
	return nil
}

// unicastConn opens a UDP socket on addr:68 bound to the link, for the
// RENEWING REQUEST and RELEASE that go to the server by unicast.
func (k *kernel) unicastConn(ifname string, addr netip.Addr) (net.PacketConn, error) {
	var c net.PacketConn
	err := k.inNS(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
				if serr == nil {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}}
		var err error
		c, err = lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(addr.String(), "68"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netcfg: unicast socket %v:68 on %s: %w", addr, ifname, err)
	}
	return c, nil
}

// physical reports whether a link is a wired network device: a kernel
// "device" (not loopback, veth, bridge, vlan, bond, dummy, macvlan,
// tun...) with an Ethernet MAC and a /sys/class/net/<name>/device entry
// (it sits on a bus: PCI, USB, virtio). The sysfs check is made in the
// namespace's sysfs view only for the current namespace; in another
// namespace the link type alone decides.
func (k *kernel) physical(l netlink.Link) bool {
	a := l.Attrs()
	if l.Type() != "device" || a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 {
		return false
	}
	if k.ns.IsOpen() {
		return true
	}
	_, err := os.Stat(filepath.Join("/sys/class/net", a.Name, "device"))
	return err == nil
}
