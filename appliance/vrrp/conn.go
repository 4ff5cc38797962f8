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
	"syscall"
	"time"
	"unsafe"

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

// linkSocket is the VRRP socket of one interface and address family that
// the instances on it share (sockets, mux.go): each advert is sent from
// the source its instance gives, and the socket filter passes the VRIDs
// of the instances on it.
type linkSocket interface {
	Send(b []byte, src, dst netip.Addr) error
	Recv(b []byte) (n int, src, dst netip.Addr, ttl int, err error)
	// SetVRIDs sets the socket filter: only packets of these VRIDs are
	// received.
	SetVRIDs(vrids []int) error
	// Interrupt makes a waiting Recv (or the next one, once the packets
	// already read are handed out) return os.ErrDeadlineExceeded at once,
	// until Resume; RecvNow then takes what the socket holds without
	// waiting (errNoPacket when it is empty). The link's reader catches
	// up with the socket this way when an instance asks (sharedLink.sync).
	Interrupt() error
	Resume() error
	RecvNow(b []byte) (n int, src, dst netip.Addr, ttl int, err error)
	Close() error
}

// errNoPacket is RecvNow's answer when the socket holds no packet.
var errNoPacket = errors.New("no packet waiting")

// rawConn is a raw IP socket for protocol 112 bound to one interface: it
// joins the VRRP multicast group there, sends with TTL / hop limit 255,
// and reports each packet's TTL so the receiver can drop anything that
// crossed a router (RFC 5798 §5.1.1.3). It receives only the packets of
// the VRIDs set by SetVRIDs (a socket filter; none until then): every raw
// socket of protocol 112 gets a copy of every VRRP packet the node
// receives, so the instances of a link share one (mux.go), and it skips
// the adverts of other virtual routers on the link.
type rawConn struct {
	v6  bool
	ifi *net.Interface
	p4  *ipv4.PacketConn
	p6  *ipv6.PacketConn
	c   net.PacketConn
	r   *batchReader // only the link's reader reads
	sc  syscall.RawConn
}

var _ linkSocket = (*rawConn)(nil)

func openConn(ifname string, v6 bool) (*rawConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// Only this interface's packets, and sends leave through it.
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
			if serr == nil {
				// Room for a burst of every instance's adverts.
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
			}
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
	rc := &rawConn{v6: v6, ifi: ifi, c: c}
	fail := func(what string, err error) (*rawConn, error) {
		c.Close()
		return nil, fmt.Errorf("%s on %s: %w", what, ifname, err)
	}
	gaddr := &net.IPAddr{IP: group.AsSlice()}
	filter, err := vridFilter(v6, nil)
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
	if rc.sc, err = c.(syscall.Conn).SyscallConn(); err != nil {
		return fail("raw socket", err)
	}
	rc.r = newBatchReader(rc.sc, v6)
	return rc, nil
}

// rcvBuf is the receive buffer of a link's socket (the kernel doubles it).
const rcvBuf = 256 << 10

// vridFilter is the socket filter that passes the VRRP packets of the
// VRIDs: the second byte of the VRRP header. An IPv4 raw socket's filter
// sees the IP header first (its length in the low nibble of byte 0); an
// IPv6 one sees the VRRP header at offset 0. A packet too short to hold a
// VRID is dropped, and so is every packet when vrids is empty.
func vridFilter(v6 bool, vrids []int) ([]bpf.RawInstruction, error) {
	if len(vrids) > 255 {
		return nil, fmt.Errorf("%d VRIDs in one socket filter, at most 255", len(vrids))
	}
	var prog []bpf.Instruction
	if v6 {
		prog = []bpf.Instruction{bpf.LoadAbsolute{Off: 1, Size: 1}}
	} else {
		prog = []bpf.Instruction{bpf.LoadMemShift{Off: 0}, bpf.LoadIndirect{Off: 1, Size: 1}}
	}
	if slices.Equal(vrids, allVRIDs) {
		// Any VRID (a socket that feeds heard): one test, not 255.
		return bpf.Assemble(append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
			bpf.RetConstant{Val: 1 << 16}))
	}
	// Each match jumps over the remaining tests and the drop.
	for i, v := range vrids {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(v), SkipTrue: uint8(len(vrids) - i)})
	}
	prog = append(prog,
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 1 << 16})
	return bpf.Assemble(prog)
}

// SetVRIDs implements linkSocket.
func (c *rawConn) SetVRIDs(vrids []int) error {
	filter, err := vridFilter(c.v6, vrids)
	if err != nil {
		return err
	}
	if c.v6 {
		return c.p6.SetBPF(filter)
	}
	return c.p4.SetBPF(filter)
}

// Send implements linkSocket.
func (c *rawConn) Send(b []byte, src, dst netip.Addr) error {
	if len(b) == 0 {
		return errors.New("empty VRRP message")
	}
	// The source and interface in IP_PKTINFO / IPV6_PKTINFO, as x/net's
	// WriteTo would put them; sent with a raw sendmsg for the reason
	// batchReader reads with a raw recvmmsg (a master sends thousands of
	// adverts a second).
	var oob []byte
	var name unsafe.Pointer
	var namelen uint32
	if c.v6 {
		oob = (&ipv6.ControlMessage{HopLimit: 255, Src: src.AsSlice(), IfIndex: c.ifi.Index}).Marshal()
		sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		name, namelen = unsafe.Pointer(sa), unix.SizeofSockaddrInet6
	} else {
		oob = (&ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: c.ifi.Index}).Marshal()
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		name, namelen = unsafe.Pointer(sa), unix.SizeofSockaddrInet4
	}
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	h := unix.Msghdr{Name: (*byte)(name), Namelen: namelen, Iov: &iov}
	h.SetIovlen(1)
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
	var errno syscall.Errno
	err := c.sc.Write(func(fd uintptr) bool {
		for {
			_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&h)), unix.MSG_DONTWAIT)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait in the poller until writable
			}
			errno = e
			return true
		}
	})
	runtime.KeepAlive(b)
	runtime.KeepAlive(oob)
	runtime.KeepAlive(name)
	if err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("sendmsg", errno)
	}
	return nil
}

// Recv implements linkSocket.
func (c *rawConn) Recv(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	n, src, dst, ttl, _, err := c.r.read(b, 0)
	return n, src, dst, ttl, err
}

// RecvNow implements linkSocket.
func (c *rawConn) RecvNow(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	n, src, dst, ttl, _, err := c.r.read(b, unix.MSG_DONTWAIT)
	if errors.Is(err, unix.EAGAIN) {
		err = errNoPacket
	}
	return n, src, dst, ttl, err
}

// Interrupt implements linkSocket: a read deadline in the past.
func (c *rawConn) Interrupt() error { return c.c.SetReadDeadline(time.Unix(1, 0)) }

// Resume implements linkSocket.
func (c *rawConn) Resume() error { return c.c.SetReadDeadline(time.Time{}) }

// batchReader reads a raw protocol 112 socket a batch of packets at a
// time (recvmmsg): the adverts of a link's instances come in bursts, and
// each read that finds the socket empty costs a wait in the poller. It
// calls recvmmsg itself, without telling the Go scheduler (a raw system
// call: non-blocking, it never sleeps in the kernel): a system call that
// enters through the scheduler wakes its monitor thread (sysmon) from its
// sleep, at its shortest period, and a backup receives thousands of
// adverts a second (100 instances at 50 ms) — the monitor's polling had
// cost it about as much CPU as the adverts themselves.
type batchReader struct {
	v6          bool
	sc          syscall.RawConn
	hs          []mmsghdr
	iovs        []unix.Iovec
	bufs, oobs  [][]byte
	names       []unix.RawSockaddrAny
	next, count int
}

// mmsghdr is struct mmsghdr of recvmmsg(2) (Go pads it to the
// alignment of the msghdr's pointers, as C does).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// readBatch is how many packets one read takes at most.
const readBatch = 32

func newBatchReader(sc syscall.RawConn, v6 bool) *batchReader {
	r := &batchReader{v6: v6, sc: sc, hs: make([]mmsghdr, readBatch), iovs: make([]unix.Iovec, readBatch),
		bufs: make([][]byte, readBatch), oobs: make([][]byte, readBatch), names: make([]unix.RawSockaddrAny, readBatch)}
	oob := ipv4.NewControlMessage(ipv4.FlagTTL | ipv4.FlagDst | ipv4.FlagInterface)
	if v6 {
		oob = ipv6.NewControlMessage(ipv6.FlagHopLimit | ipv6.FlagDst | ipv6.FlagInterface)
	}
	for i := range r.hs {
		r.bufs[i] = make([]byte, 1500)
		r.oobs[i] = make([]byte, len(oob))
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		h := &r.hs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oobs[i][0]
	}
	return r
}

// buffered reports whether packets of the last batch are still to be read
// (read will not wait).
func (r *batchReader) buffered() bool { return r.next < r.count }

// recvmmsg reads a batch; with flags MSG_DONTWAIT it does not wait for one
// (EAGAIN), else it waits in Go's poller (read deadlines apply).
func (r *batchReader) recvmmsg(flags int) (int, error) {
	for i := range r.hs {
		r.hs[i].hdr.Namelen = unix.SizeofSockaddrAny
		r.hs[i].hdr.SetControllen(len(r.oobs[i]))
		r.hs[i].n = 0
	}
	var n int
	var errno syscall.Errno
	err := r.sc.Read(func(fd uintptr) bool {
		for {
			r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hs[0])), uintptr(len(r.hs)),
				uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN && flags&unix.MSG_DONTWAIT == 0:
				return false // wait in the poller
			}
			n, errno = int(r1), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
	return n, nil
}

// read copies the next packet's VRRP message (without the IP header) into
// b and returns its length (at most len(b)), the IP header's source,
// destination and TTL / hop limit, and the interface it came in on. With
// flags MSG_DONTWAIT it does not wait for one (EAGAIN).
func (r *batchReader) read(b []byte, flags int) (n int, src, dst netip.Addr, ttl, ifindex int, err error) {
	if r.next == r.count {
		r.next = 0
		r.count, err = r.recvmmsg(flags)
		if err != nil {
			r.count = 0
			return 0, src, dst, 0, 0, err
		}
	}
	i := r.next
	r.next++
	m := &r.hs[i]
	pkt := r.bufs[i][:m.n]
	oob := r.oobs[i][:m.hdr.Controllen]
	switch sa := &r.names[i]; sa.Addr.Family {
	case unix.AF_INET:
		src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		src = netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(sa)).Addr).Unmap()
	}
	if r.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) == nil {
			dst, ttl, ifindex = ipOfSlice(cm.Dst), cm.HopLimit, cm.IfIndex
		}
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) == nil {
			dst, ttl, ifindex = ipOfSlice(cm.Dst), cm.TTL, cm.IfIndex
		}
		// A batch read keeps the IPv4 header (and its options).
		hl := 0
		if len(pkt) > 0 {
			hl = int(pkt[0]&0x0f) << 2
		}
		if hl >= ipv4.HeaderLen && hl <= len(pkt) {
			pkt = pkt[hl:]
		} else {
			pkt = nil
		}
	}
	return copy(b, pkt), src, dst, ttl, ifindex, nil
}

func ipOfSlice(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func (c *rawConn) Close() error { return c.c.Close() }
