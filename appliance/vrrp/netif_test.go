package vrrp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"halb/netlab"
)

// These tests need root: each builds a netlab LAN with hosts a and b (and
// their own namespaces) and drives the kernel through NetlinkNetif.

// nifPollBound is how long a change on the wire may take to show.
const nifPollBound = 5 * time.Second

type nifLab struct {
	lan  *netlab.LAN
	a, b *netlab.Host
}

// newNifLab builds a LAN with a (10.9.0.1, fd00:9::1) and b (10.9.0.2,
// fd00:9::2) on eth0.
func newNifLab(t *testing.T) *nifLab {
	t.Helper()
	netlab.SkipUnlessRoot(t)
	l := netlab.New(t)
	lan, err := l.AddLAN("lan")
	if err != nil {
		t.Fatal(err)
	}
	x := &nifLab{lan: lan}
	for _, h := range []struct {
		host         **netlab.Host
		name, v4, v6 string
	}{{&x.a, "a", "10.9.0.1/24", "fd00:9::1/64"}, {&x.b, "b", "10.9.0.2/24", "fd00:9::2/64"}} {
		host, err := l.AddHost(h.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := host.Connect(lan, "eth0", h.v4, h.v6); err != nil {
			t.Fatal(err)
		}
		*h.host = host
	}
	return x
}

// nifHandle returns a netlink handle working in h's namespace, closed when
// the test ends (before the lab is torn down).
func nifHandle(t *testing.T, h *netlab.Host) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(h.NamespacePath())
	if err != nil {
		t.Fatal(err)
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nh.Close()
		ns.Close()
	})
	return nh
}

// nifOf returns the netlink Netif of host h, closed when the test ends.
func nifOf(t *testing.T, h *netlab.Host) *NetlinkNetif {
	t.Helper()
	n := NewNetlinkNetifAt(nifHandle(t, h))
	t.Cleanup(func() { n.Close() })
	return n
}

// nifEventually polls cond until it holds or the bound passes; cond
// returns what it saw, for the failure message.
func nifEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(nifPollBound)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last saw %s", what, nifPollBound, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nifAddr returns the address ip as the kernel of nh lists it on ifname.
func nifAddr(t *testing.T, nh *netlink.Handle, ifname string, ip netip.Addr) (netlink.Addr, bool) {
	t.Helper()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	as, err := nh.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if addrOf(a) == ip {
			return a, true
		}
	}
	return netlink.Addr{}, false
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestNetifVIPAddDelIdempotent(t *testing.T) {
	x := newNifLab(t)
	nh := nifHandle(t, x.a)
	nif := NewNetlinkNetifAt(nh)
	t.Cleanup(func() { nif.Close() })

	// DAD on, and slow, on a's eth0, so that an IPv6 address added without
	// IFA_F_NODAD stays visibly tentative (netlab turns DAD off).
	for k, v := range map[string]string{"net/ipv6/conf/eth0/accept_dad": "1", "net/ipv6/conf/eth0/dad_transmits": "10"} {
		if err := x.a.Sysctl(k, v); err != nil {
			t.Fatal(err)
		}
	}

	for _, vip := range []netip.Prefix{mustPrefix("10.9.0.100/24"), mustPrefix("fd00:9::100/64")} {
		t.Run(vip.String(), func(t *testing.T) {
			has := func() bool {
				t.Helper()
				ok, err := nif.HasVIP("eth0", vip.Addr())
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if has() {
				t.Fatalf("precondition: %s already on a's eth0", vip)
			}
			for range 2 {
				if err := nif.AddVIP("eth0", vip); err != nil {
					t.Fatalf("AddVIP (twice is fine): %v", err)
				}
			}
			if !has() || !x.a.HasAddr(vip.Addr()) {
				t.Fatalf("after AddVIP: %s not on a's eth0", vip)
			}
			a, _ := nifAddr(t, nh, "eth0", vip.Addr())
			if vip.Addr().Is4() {
				if a.Label != "eth0:halb" {
					t.Errorf("IPv4 VIP label = %q, want %q", a.Label, "eth0:halb")
				}
			} else {
				if a.Flags&unix.IFA_F_NODAD == 0 {
					t.Errorf("IPv6 VIP flags %#x lack IFA_F_NODAD", a.Flags)
				}
				if a.Flags&unix.IFA_F_TENTATIVE != 0 {
					t.Errorf("IPv6 VIP is tentative (flags %#x): not usable at once", a.Flags)
				}
				// Control: the same kind of address added without NODAD
				// is tentative here, so the check above means something.
				ctl := mustPrefix("fd00:9::200/64")
				link, _ := nh.LinkByName("eth0")
				if err := nh.AddrAdd(link, prefixAddr(ctl)); err != nil {
					t.Fatal(err)
				}
				if c, _ := nifAddr(t, nh, "eth0", ctl.Addr()); c.Flags&unix.IFA_F_TENTATIVE == 0 {
					t.Errorf("control: %s added without NODAD is not tentative (flags %#x): the lab does not run DAD", ctl, c.Flags)
				}
			}
			for range 2 {
				if err := nif.DelVIP("eth0", vip); err != nil {
					t.Fatalf("DelVIP (twice is fine): %v", err)
				}
			}
			if has() {
				t.Fatalf("after DelVIP: %s still on a's eth0", vip)
			}
		})
	}

	if err := nif.AddVIP("nosuch0", mustPrefix("10.9.0.100/24")); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("AddVIP on a missing interface: err = %v, want one naming it", err)
	}
}

func TestRemoveLeftovers(t *testing.T) {
	x := newNifLab(t)
	nif := nifOf(t, x.a)

	// A crashed run left these on a's eth0.
	left := []netip.Prefix{
		mustPrefix("10.9.0.100/24"), mustPrefix("10.9.0.101/24"), mustPrefix("10.9.0.103/32"),
		mustPrefix("fd00:9::100/64"), mustPrefix("fd00:9::101/64"),
	}
	for _, p := range left {
		if err := nif.AddVIP("eth0", p); err != nil {
			t.Fatal(err)
		}
	}
	// The configured VIPs: .101 and fd00:9::101 are no longer among them;
	// .103 now has another prefix length; .102 was never added; 10.9.0.1 is
	// the node's own address, listed by mistake.
	vips := []netip.Prefix{
		mustPrefix("10.9.0.100/24"), mustPrefix("10.9.0.102/24"), mustPrefix("10.9.0.103/24"),
		mustPrefix("fd00:9::100/64"), mustPrefix("10.9.0.1/24"),
	}
	removed, err := nif.RemoveLeftovers("eth0", vips)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{mustPrefix("10.9.0.100/24"), mustPrefix("10.9.0.103/32"), mustPrefix("fd00:9::100/64")}
	slices.SortFunc(removed, netip.Prefix.Compare)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, s := range []string{"10.9.0.100", "10.9.0.103", "fd00:9::100"} {
		if x.a.HasAddr(netip.MustParseAddr(s)) {
			t.Errorf("leftover %s still on a", s)
		}
	}
	for _, s := range []string{"10.9.0.1", "fd00:9::1", "10.9.0.101", "fd00:9::101"} {
		if !x.a.HasAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s (not a listed VIP, or the node's own) was removed", s)
		}
	}
	if again, err := nif.RemoveLeftovers("eth0", vips); err != nil || len(again) != 0 {
		t.Errorf("second RemoveLeftovers = %v, %v; want nothing", again, err)
	}
}

func TestLinkUp(t *testing.T) {
	x := newNifLab(t)
	nh := nifHandle(t, x.a)
	nif := NewNetlinkNetifAt(nh)
	t.Cleanup(func() { nif.Close() })

	linkUp := func(ifname string, want bool) func() (bool, string) {
		return func() (bool, string) {
			up, err := nif.LinkUp(ifname)
			if err != nil {
				t.Fatal(err)
			}
			return up == want, fmt.Sprintf("up=%v", up)
		}
	}
	nifEventually(t, "eth0 up", linkUp("eth0", true))
	if err := x.a.SetLink("eth0", false); err != nil {
		t.Fatal(err)
	}
	nifEventually(t, "eth0 down after SetLink(false)", linkUp("eth0", false))
	if err := x.a.SetLink("eth0", true); err != nil {
		t.Fatal(err)
	}
	nifEventually(t, "eth0 up again after SetLink(true)", linkUp("eth0", true))

	if _, err := nif.LinkUp("nosuch0"); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("LinkUp on a missing interface: err = %v, want one naming it", err)
	}
}

// TestLinkUpDummy: a dummy link never reports oper state up, only
// IFF_UP+IFF_RUNNING.
func TestLinkUpDummy(t *testing.T) {
	x := newNifLab(t)
	nh := nifHandle(t, x.a)
	nif := NewNetlinkNetifAt(nh)
	t.Cleanup(func() { nif.Close() })
	linkUp := func(want bool) func() (bool, string) {
		return func() (bool, string) {
			up, err := nif.LinkUp("dummy0")
			if err != nil {
				t.Fatal(err)
			}
			return up == want, fmt.Sprintf("up=%v", up)
		}
	}

	err := nh.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("dummy links are not available in this kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	nifEventually(t, "dummy0 down before it is set up", linkUp(false))
	d, err := nh.LinkByName("dummy0")
	if err == nil {
		err = nh.LinkSetUp(d)
	}
	if err != nil {
		t.Fatal(err)
	}
	nifEventually(t, "dummy0 up", linkUp(true))
	if d, _ = nh.LinkByName("dummy0"); d.Attrs().OperState == netlink.OperUp {
		t.Logf("dummy0 reports oper state up on this kernel; the IFF_RUNNING path was not needed")
	}
}

func TestPrimaryAddr(t *testing.T) {
	x := newNifLab(t)
	nif := nifOf(t, x.a)

	vips := []netip.Prefix{mustPrefix("10.9.0.100/24"), mustPrefix("10.9.0.99/25")}
	for _, v := range vips {
		if err := nif.AddVIP("eth0", v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := nif.PrimaryAddr("eth0", false, vips)
	if err != nil || got != netip.MustParseAddr("10.9.0.1") {
		t.Errorf("PrimaryAddr(eth0, v4) = %v, %v; want 10.9.0.1", got, err)
	}

	// An interface with only a VIP has no primary IPv4 address, even when
	// the VIP is not passed (its label gives it away).
	if _, err := x.a.Connect(x.lan, "eth1"); err != nil {
		t.Fatal(err)
	}
	if err := nif.AddVIP("eth1", mustPrefix("10.9.0.110/24")); err != nil {
		t.Fatal(err)
	}
	if got, err := nif.PrimaryAddr("eth1", false, nil); err == nil {
		t.Errorf("PrimaryAddr(eth1, v4) = %v; want an error (only a VIP there)", got)
	}

	var ll netip.Addr
	nifEventually(t, "a link-local address on eth0", func() (bool, string) {
		ll, err = nif.PrimaryAddr("eth0", true, nil)
		return err == nil, "err=" + errString(err)
	})
	if !ll.IsLinkLocalUnicast() || ll.Zone() != "" {
		t.Errorf("PrimaryAddr(eth0, v6) = %v; want a link-local address without zone", ll)
	}
	if ok, err := nif.HasVIP("eth0", ll); err != nil || !ok {
		t.Errorf("%v is not on a's eth0 (%v)", ll, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestAnnounce: b holds a stale neighbor entry for the VIP that points at a
// wrong MAC (as when another node held the VIP). a takes the VIP and
// announces it; b's entry then points at a's eth0.
func TestAnnounce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		vip, barrier netip.Prefix
	}{
		{"gratuitous ARP", mustPrefix("10.9.0.100/24"), mustPrefix("10.9.0.101/24")},
		{"unsolicited NA", mustPrefix("fd00:9::100/64"), mustPrefix("fd00:9::101/64")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newNifLab(t)
			nif := nifOf(t, x.a)
			bh := nifHandle(t, x.b)
			wrong := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
			aMAC := x.a.Iface("eth0").MAC

			bEth0, err := bh.LinkByName("eth0")
			if err != nil {
				t.Fatal(err)
			}
			misdirect := func(ip netip.Addr) {
				t.Helper()
				err := bh.NeighSet(&netlink.Neigh{
					LinkIndex: bEth0.Attrs().Index, Family: familyOf(ip),
					State: netlink.NUD_STALE, IP: ip.AsSlice(), HardwareAddr: wrong,
				})
				if err != nil {
					t.Fatal(err)
				}
				if mac, _, err := x.b.Neighbor("eth0", ip); err != nil || !bytes.Equal(mac, wrong) {
					t.Fatalf("b's entry for %s = %v, %v; want %v", ip, mac, err, wrong)
				}
			}
			bPointsAtA := func(ip netip.Addr) func() (bool, string) {
				return func() (bool, string) {
					mac, state, err := x.b.Neighbor("eth0", ip)
					return err == nil && bytes.Equal(mac, aMAC), mac.String() + " " + state + " " + errString(err)
				}
			}
			announce := func(ip netip.Addr) {
				t.Helper()
				if err := x.a.Do(func() error { return nif.Announce("eth0", []netip.Addr{ip}) }); err != nil {
					t.Fatal(err)
				}
			}
			barrier := tc.barrier.Addr()
			if err := nif.AddVIP("eth0", tc.barrier); err != nil {
				t.Fatal(err)
			}

			// Precondition: the path from a to b carries frames. A link
			// just set up drops what it sends until the kernel has
			// activated it (linkwatch), so announce the barrier address
			// until b has it.
			misdirect(barrier)
			nifEventually(t, "path a→b: b's entry for "+barrier.String()+" points at a", func() (bool, string) {
				announce(barrier)
				return bPointsAtA(barrier)()
			})

			// b believes the VIP is at the wrong MAC (as when another
			// node held it); a takes the VIP.
			misdirect(tc.vip.Addr())
			if err := nif.AddVIP("eth0", tc.vip); err != nil {
				t.Fatal(err)
			}

			// One announcement of the barrier address only, and b has it:
			// anything a sent when it added the VIP has arrived by then
			// too.
			misdirect(barrier)
			announce(barrier)
			nifEventually(t, "b's entry for "+barrier.String()+" points at a", bPointsAtA(barrier))

			// Control: without an announcement, b still has the VIP at
			// the wrong MAC. The lab sees a missing announcement.
			if mac, state, err := x.b.Neighbor("eth0", tc.vip.Addr()); err != nil || !bytes.Equal(mac, wrong) {
				t.Fatalf("control: b's entry for %s = %v %s, %v before any announcement; want %v", tc.vip.Addr(), mac, state, err, wrong)
			}

			// One announcement of the VIP, and b points it at a.
			announce(tc.vip.Addr())
			nifEventually(t, "b's entry for "+tc.vip.Addr().String()+" points at a ("+aMAC.String()+")", bPointsAtA(tc.vip.Addr()))
		})
	}
}

// TestNetifClose: a NetlinkNetif holds no descriptor after Close, and
// refuses work afterwards.
func TestNetifClose(t *testing.T) {
	x := newNifLab(t)
	vips := []netip.Prefix{mustPrefix("10.9.0.100/24"), mustPrefix("fd00:9::100/64")}
	addrs := []netip.Addr{vips[0].Addr(), vips[1].Addr()}
	fds := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Error(err) // runs on the host's thread: no t.Fatal
		}
		return len(es)
	}
	err := x.a.Do(func() error {
		// Warm up once, so that descriptors the Go runtime keeps (its
		// poller) are open before counting.
		n, err := NewNetlinkNetif()
		if err != nil {
			return err
		}
		for _, v := range vips {
			if err := n.AddVIP("eth0", v); err != nil {
				return err
			}
		}
		if err := n.Announce("eth0", addrs); err != nil {
			return err
		}
		n.Close()

		before := fds()
		n, err = NewNetlinkNetif()
		if err != nil {
			return err
		}
		// It works in a's namespace: the VIPs are there.
		if ok, err := n.HasVIP("eth0", addrs[0]); err != nil || !ok {
			t.Errorf("NewNetlinkNetif inside a: HasVIP = %v, %v; want true", ok, err)
		}
		if err := n.Announce("eth0", addrs); err != nil {
			return err
		}
		if got := fds(); got != before+2 {
			t.Errorf("open descriptors after Announce: %d, want %d (the netlink socket and the namespace only)", got, before+2)
		}
		if err := n.Close(); err != nil {
			return err
		}
		if err := n.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if got := fds(); got != before {
			t.Errorf("open descriptors after Close: %d, want %d", got, before)
		}
		if _, err := n.HasVIP("eth0", addrs[0]); !errors.Is(err, net.ErrClosed) {
			t.Errorf("HasVIP after Close: err = %v, want net.ErrClosed", err)
		}
		if err := n.Announce("eth0", addrs); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Announce after Close: err = %v, want net.ErrClosed", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Closing a NetlinkNetif made on a borrowed handle leaves the handle
	// to its owner.
	nh := nifHandle(t, x.a)
	NewNetlinkNetifAt(nh).Close()
	if _, err := nh.LinkByName("eth0"); err != nil {
		t.Errorf("borrowed handle unusable after Close: %v", err)
	}
}

// TestAnnounceWireFormat: what b receives when a announces is what the
// brief of Announce says, field by field.
func TestAnnounceWireFormat(t *testing.T) {
	x := newNifLab(t)
	nif := nifOf(t, x.a)
	aMAC := x.a.Iface("eth0").MAC
	vip4, vip6 := mustPrefix("10.9.0.100/24"), mustPrefix("fd00:9::100/64")
	for _, v := range []netip.Prefix{vip4, vip6} {
		if err := nif.AddVIP("eth0", v); err != nil {
			t.Fatal(err)
		}
	}
	var aLL netip.Addr
	nifEventually(t, "a link-local address on eth0", func() (bool, string) {
		var err error
		aLL, err = nif.PrimaryAddr("eth0", true, nil)
		return err == nil, "err=" + errString(err)
	})

	// Listeners in b: an ARP socket, and a raw ICMPv6 socket that passes
	// only Neighbor Advertisements and reports hop limit and destination.
	var arpc *arp.Client
	var fd int
	err := x.b.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if arpc, err = arp.Dial(ifi); err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err != nil {
			arpc.Close()
			return err
		}
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = ^uint32(0)
		}
		const na = 136
		f.Data[na>>5] &^= 1 << (na & 31)
		return errors.Join(
			unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1),
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		arpc.Close()
		unix.Close(fd)
	})

	// Announce until b hears each (a link just set up drops frames at
	// first), then check the last one heard.
	deadline := time.Now().Add(nifPollBound)
	var garp *arp.Packet
	var dst net.HardwareAddr
	for garp == nil && time.Now().Before(deadline) {
		if err := x.a.Do(func() error { return nif.Announce("eth0", []netip.Addr{vip4.Addr()}) }); err != nil {
			t.Fatal(err)
		}
		arpc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			p, f, err := arpc.Read()
			if err != nil {
				break
			}
			if p.SenderIP == vip4.Addr() {
				garp, dst = p, f.Destination
				break
			}
		}
	}
	if garp == nil {
		t.Fatalf("b heard no gratuitous ARP for %s within %v", vip4.Addr(), nifPollBound)
	}
	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	if garp.Operation != arp.OperationRequest || !bytes.Equal(garp.SenderHardwareAddr, aMAC) ||
		garp.TargetIP != vip4.Addr() || !bytes.Equal(garp.TargetHardwareAddr, zero) ||
		dst.String() != "ff:ff:ff:ff:ff:ff" {
		t.Errorf("gratuitous ARP = op %v %v/%v → %v/%v to %v; want request %v/%v → %v/%v to broadcast",
			garp.Operation, garp.SenderHardwareAddr, garp.SenderIP, garp.TargetHardwareAddr, garp.TargetIP, dst,
			aMAC, vip4.Addr(), zero, vip4.Addr())
	}

	var heard bool
	buf, oob := make([]byte, 1500), make([]byte, 256)
	for !heard && time.Now().Before(deadline) {
		if err := x.a.Do(func() error { return nif.Announce("eth0", []netip.Addr{vip6.Addr()}) }); err != nil {
			t.Fatal(err)
		}
		for {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				break
			}
			m, err := ndp.ParseMessage(buf[:n])
			na, ok := m.(*ndp.NeighborAdvertisement)
			if err != nil || !ok || na.TargetAddress != vip6.Addr() {
				continue
			}
			heard = true
			hop, to := -1, netip.Addr{}
			cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, cm := range cms {
				switch {
				case cm.Header.Type == unix.IPV6_HOPLIMIT && len(cm.Data) >= 4:
					hop = int(int32(binary.NativeEndian.Uint32(cm.Data)))
				case cm.Header.Type == unix.IPV6_PKTINFO && len(cm.Data) >= 16:
					to = netip.AddrFrom16([16]byte(cm.Data[:16]))
				}
			}
			src := netip.Addr{}
			if sa, ok := from.(*unix.SockaddrInet6); ok {
				src = netip.AddrFrom16(sa.Addr)
			}
			var tlla net.HardwareAddr
			for _, o := range na.Options {
				if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
					tlla = l.Addr
				}
			}
			if !na.Override || na.Solicited || na.Router || !bytes.Equal(tlla, aMAC) ||
				hop != 255 || to != allNodes || src != aLL {
				t.Errorf("NA = override %v solicited %v router %v target LLA %v, hop limit %d, %v → %v; "+
					"want override, not solicited, not router, target LLA %v, hop limit 255, %v → ff02::1",
					na.Override, na.Solicited, na.Router, tlla, hop, src, to, aMAC, aLL)
			}
			break
		}
	}
	if !heard {
		t.Fatalf("b heard no Neighbor Advertisement for %s within %v", vip6.Addr(), nifPollBound)
	}
}

// TestVMAC: EnsureVMAC creates the macvlan with the virtual MAC (again:
// no change), only it answers ARP for a VIP on it, an IPv6 one carries the
// parent's link-local address alone, and RemoveVMAC deletes them.
func TestVMAC(t *testing.T) {
	x := newNifLab(t)
	nif := nifOf(t, x.a)
	nh := nifHandle(t, x.a)
	var ll netip.Addr
	nifEventually(t, "a link-local address on eth0", func() (bool, string) {
		var err error
		ll, err = nif.PrimaryAddr("eth0", true, nil)
		return err == nil, "err=" + errString(err)
	})
	for _, v6 := range []bool{false, true} {
		var name string
		for range 2 {
			err := x.a.Do(func() error {
				var err error
				name, err = nif.EnsureVMAC("eth0", 51, v6)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if want := map[bool]string{false: "vrrp.51", true: "vrrp6.51"}[v6]; name != want {
			t.Errorf("EnsureVMAC(v6=%v) = %q, want %q", v6, name, want)
		}
		link, err := nh.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		mv, ok := link.(*netlink.Macvlan)
		if !ok || mv.Mode != netlink.MACVLAN_MODE_PRIVATE || !bytes.Equal(mv.HardwareAddr, VirtualMAC(51, v6)) || mv.Flags&net.FlagUp == 0 {
			t.Errorf("%s: %T mode %v MAC %s flags %v", name, link, mv.Mode, mv.HardwareAddr, mv.Flags)
		}
		if v6 {
			addrs, _ := nh.AddrList(link, netlink.FAMILY_V6)
			var got []netip.Addr
			for _, a := range addrs {
				got = append(got, addrOf(a))
			}
			if !slices.Equal(got, []netip.Addr{ll}) {
				t.Errorf("%s has IPv6 addresses %v, want just eth0's %v", name, got, ll)
			}
		}
	}
	if got := VirtualMAC(51, false).String(); got != "00:00:5e:00:01:33" {
		t.Errorf("VirtualMAC(51) = %s", got)
	}

	// Only the macvlan answers ARP for a VIP on it (eth0 would too without
	// arp_ignore=1).
	vip := mustPrefix("10.9.0.100/24")
	if err := nif.AddVIP("vrrp.51", vip); err != nil {
		t.Fatal(err)
	}
	err := x.b.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range 5 {
			c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			mac, err := c.Resolve(vip.Addr())
			if err != nil {
				return fmt.Errorf("resolve %s (try %d): %w", vip.Addr(), i, err)
			}
			if mac.String() != "00:00:5e:00:01:33" {
				return fmt.Errorf("%s resolved to %s, want the virtual MAC", vip.Addr(), mac)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// A wrong macvlan of that name is replaced; a non-macvlan is refused.
	if err := nh.LinkSetHardwareAddr(mustLink(t, nh, "vrrp.51"), net.HardwareAddr{2, 0, 0, 0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := x.a.Do(func() error { _, err := nif.EnsureVMAC("eth0", 51, false); return err }); err != nil {
		t.Fatal(err)
	}
	if mac := mustLink(t, nh, "vrrp.51").Attrs().HardwareAddr; !bytes.Equal(mac, VirtualMAC(51, false)) {
		t.Errorf("vrrp.51 has MAC %s after EnsureVMAC, want the virtual MAC", mac)
	}
	if err := nif.RemoveVMAC("vrrp.51"); err != nil {
		t.Fatal(err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "vrrp.51"
	if err := nh.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		t.Fatal(err)
	}
	if err := x.a.Do(func() error { _, err := nif.EnsureVMAC("eth0", 51, false); return err }); err == nil {
		t.Error("EnsureVMAC over a bridge named vrrp.51 succeeded")
	}
	if err := nif.RemoveVMAC("vrrp.51"); err == nil {
		t.Error("RemoveVMAC deleted a bridge")
	}
	for _, name := range []string{"vrrp6.51", "vrrp6.51", "vrrp.52"} {
		if err := nif.RemoveVMAC(name); err != nil {
			t.Errorf("RemoveVMAC(%s): %v", name, err)
		}
	}
	if _, err := nh.LinkByName("vrrp6.51"); err == nil {
		t.Error("vrrp6.51 still there")
	}
}

func mustLink(t *testing.T, nh *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := nh.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestNetifWatchLinks: a NetlinkNetif made in a namespace tells of a link
// going down or up and of an address added there, and after Forget
// LinkUp sees the change at once (not a shared answer from before it);
// the channel closes when the context ends. One made on a borrowed
// handle does not know its namespace and says so.
func TestNetifWatchLinks(t *testing.T) {
	x := newNifLab(t)
	if _, err := nifOf(t, x.a).WatchLinks(t.Context()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("WatchLinks on a borrowed handle: err = %v, want errors.ErrUnsupported", err)
	}
	var n *NetlinkNetif
	if err := x.a.Do(func() error {
		var err error
		n, err = NewNetlinkNetif()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Called from a thread in the test's own namespace: the
	// subscription is made in a's all the same.
	ch, err := n.WatchLinks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	quiet := func() {
		t.Helper()
		for {
			select {
			case <-ch:
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}
	told := func(what string) {
		t.Helper()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the channel closed", what)
			}
		case <-time.After(nifPollBound):
			t.Fatalf("%s: not told within %v", what, nifPollBound)
		}
	}
	quiet()
	// A fresh answer, which LinkUp would reuse for pollShare but for
	// Forget.
	if up, err := n.LinkUp("eth0"); err != nil || !up {
		t.Fatalf("LinkUp(eth0) = %v, %v; want up", up, err)
	}
	if err := x.a.SetLink("eth0", false); err != nil {
		t.Fatal(err)
	}
	told("eth0 down")
	n.Forget()
	if up, err := n.LinkUp("eth0"); err != nil || up {
		t.Errorf("LinkUp(eth0) after the notification = %v, %v; want down", up, err)
	}
	if err := x.a.SetLink("eth0", true); err != nil {
		t.Fatal(err)
	}
	told("eth0 up")
	quiet()
	if err := x.a.AddAddrs("eth0", []netip.Addr{netip.MustParseAddr("10.9.0.77")}, 24); err != nil {
		t.Fatal(err)
	}
	told("an address added")

	// Called in a's own namespace by a thread without CAP_SYS_ADMIN (as
	// halbd on the appliance runs): the subscription is made there,
	// without entering the namespace it is in (which needs the
	// capability).
	var own <-chan struct{}
	if err := x.a.Do(func() error {
		return withoutSysAdmin(func() error {
			var err error
			own, err = n.WatchLinks(ctx)
			return err
		})
	}); err != nil {
		t.Fatalf("WatchLinks in its own namespace without CAP_SYS_ADMIN: %v", err)
	}
	quiet()
	if err := x.a.SetLink("eth0", false); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-own:
		if !ok {
			t.Fatal("eth0 down: the own namespace's channel closed")
		}
	case <-time.After(nifPollBound):
		t.Fatalf("eth0 down: not told on the own namespace's subscription within %v", nifPollBound)
	}

	cancel()
	for _, c := range []<-chan struct{}{ch, own} {
		deadline := time.After(nifPollBound)
	drain:
		for {
			select {
			case _, ok := <-c:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatal("the channel did not close when the context ended")
			}
		}
	}
}

// withoutSysAdmin runs f on the calling thread with CAP_SYS_ADMIN out of
// its effective set (capabilities are a thread's own), and raises it again
// after: the caller must hold the thread (a netlab host's Do does).
func withoutSysAdmin(f func() error) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	const bit = 1 << unix.CAP_SYS_ADMIN // < 32: in the first word
	if data[0].Effective&bit == 0 {
		return errors.New("the thread has no CAP_SYS_ADMIN to drop")
	}
	data[0].Effective &^= bit
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	err := f()
	data[0].Effective |= bit
	if err2 := unix.Capset(&hdr, &data[0]); err2 != nil {
		panic("cannot raise CAP_SYS_ADMIN again: " + err2.Error())
	}
	return err
}
