package vrrp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// packetConn sends and receives VRRP messages (IP protocol 112) on one
// interface. Received messages come with the IP header's source,
// destination and TTL / hop limit.
type packetConn interface {
	Send(b []byte, dst netip.Addr) error
	// SetSource changes the source address of what is sent (the
	// interface's primary address changed).
	SetSource(src netip.Addr)
	Recv(b []byte) (n int, src, dst netip.Addr, ttl int, err error)
	Close() error
}

// rawConn is a raw IP socket for protocol 112 bound to one interface: it
// joins the VRRP multicast group there, sends with TTL / hop limit 255 from
// the interface's primary address, and reports each packet's TTL so the
// receiver can drop anything that crossed a router (RFC 5798 §5.1.1.3).
// It receives only the packets of one VRID (a socket filter): every raw
// socket of protocol 112 gets a copy of every VRRP packet, so without it
// N instances on a link would each read the adverts of all N (N² reads).
type rawConn struct {
	v6  bool
	ifi *net.Interface
	src netip.Addr
	p4  *ipv4.PacketConn
	p6  *ipv6.PacketConn
	c   net.PacketConn
}

func openConn(ifname string, v6 bool, src netip.Addr, vrid int) (*rawConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// Only this interface's packets, and sends leave through it.
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	network, group := "ip4:112", MulticastIPv4
	if v6 {
		network, group = "ip6:112", MulticastIPv6
	}
	c, err := lc.ListenPacket(context.Background(), network, "")
	if err != nil {
		return nil, fmt.Errorf("open raw socket (%s) on %s: %w", network, ifname, err)
	}
	rc := &rawConn{v6: v6, ifi: ifi, src: src, c: c}
	fail := func(what string, err error) (*rawConn, error) {
		c.Close()
		return nil, fmt.Errorf("%s on %s: %w", what, ifname, err)
	}
	gaddr := &net.IPAddr{IP: group.AsSlice()}
	filter, err := vridFilter(v6, vrid)
	if err != nil {
		return fail("socket filter", err)
	}
	if v6 {
		p := ipv6.NewPacketConn(c)
		rc.p6 = p
		if err := p.JoinGroup(ifi, gaddr); err != nil {
			return fail("join "+group.String(), err)
		}
		for _, f := range []func() error{
			func() error { return p.SetBPF(filter) },
			func() error { return p.SetMulticastHopLimit(255) },
			func() error { return p.SetHopLimit(255) },
			func() error { return p.SetMulticastLoopback(false) },
			func() error { return p.SetMulticastInterface(ifi) },
			func() error { return p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true) },
		} {
			if err := f(); err != nil {
				return fail("socket option", err)
			}
		}
	} else {
		p := ipv4.NewPacketConn(c)
		rc.p4 = p
		if err := p.JoinGroup(ifi, gaddr); err != nil {
			return fail("join "+group.String(), err)
		}
		for _, f := range []func() error{
			func() error { return p.SetBPF(filter) },
			func() error { return p.SetMulticastTTL(255) },
			func() error { return p.SetTTL(255) },
			func() error { return p.SetMulticastLoopback(false) },
			func() error { return p.SetMulticastInterface(ifi) },
			func() error { return p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true) },
		} {
			if err := f(); err != nil {
				return fail("socket option", err)
			}
		}
	}
	return rc, nil
}

// vridFilter is the socket filter that passes the VRRP packets of vrid:
// the second byte of the VRRP header. An IPv4 raw socket's filter sees
// the IP header first (its length in the low nibble of byte 0); an IPv6
// one sees the VRRP header at offset 0. A packet too short to hold a VRID
// is dropped.
func vridFilter(v6 bool, vrid int) ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	if v6 {
		prog = []bpf.Instruction{bpf.LoadAbsolute{Off: 1, Size: 1}}
	} else {
		prog = []bpf.Instruction{bpf.LoadMemShift{Off: 0}, bpf.LoadIndirect{Off: 1, Size: 1}}
	}
	prog = append(prog,
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(vrid), SkipFalse: 1},
		bpf.RetConstant{Val: 1 << 16},
		bpf.RetConstant{Val: 0})
	return bpf.Assemble(prog)
}

func (c *rawConn) SetSource(src netip.Addr) { c.src = src }

func (c *rawConn) Send(b []byte, dst netip.Addr) error {
	to := &net.IPAddr{IP: dst.AsSlice()}
	var err error
	if c.v6 {
		_, err = c.p6.WriteTo(b, &ipv6.ControlMessage{HopLimit: 255, Src: c.src.AsSlice(), IfIndex: c.ifi.Index}, to)
	} else {
		_, err = c.p4.WriteTo(b, &ipv4.ControlMessage{Src: c.src.AsSlice(), IfIndex: c.ifi.Index}, to)
	}
	return err
}

func (c *rawConn) Recv(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	n, src, dst, ttl, err := c.recv(b)
	// Never report more than the buffer holds, whatever the socket layer
	// computed (golang.org/x/net once over-counted IPv4 headers with options).
	return min(n, len(b)), src, dst, ttl, err
}

func (c *rawConn) recv(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	if c.v6 {
		n, cm, from, err := c.p6.ReadFrom(b)
		if err != nil || cm == nil {
			return n, ipOf(from), netip.Addr{}, 0, err
		}
		return n, ipOf(from), ipOfSlice(cm.Dst), cm.HopLimit, nil
	}
	n, cm, from, err := c.p4.ReadFrom(b)
	if err != nil || cm == nil {
		return n, ipOf(from), netip.Addr{}, 0, err
	}
	return n, ipOf(from), ipOfSlice(cm.Dst), cm.TTL, nil
}

// ipOf is the address of a raw socket's peer (zero when unknown).
func ipOf(a net.Addr) netip.Addr {
	if ia, ok := a.(*net.IPAddr); ok {
		return ipOfSlice(ia.IP)
	}
	return netip.Addr{}
}

func ipOfSlice(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func (c *rawConn) Close() error { return c.c.Close() }
