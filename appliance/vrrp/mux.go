package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// sockets shares one VRRP socket per interface and address family among
// the instances on it. The kernel hands every VRRP packet to every raw
// socket of protocol 112, so with a socket per instance each advert was
// copied to (and filtered by) all the link's sockets; here one socket
// receives it, and its reader hands it to the instances of its VRID (all
// of them: a v2 and a v3 instance may share one). Packets of VRIDs no
// instance runs are not received (the socket filter follows the
// instances), and packets too short to name a VRID are ignored, as each
// instance's own socket filter did. Parsing, and counting what is
// malformed, stays with each instance (readLoop).
//
// With heard set (a Component's), the sockets take the packets of every
// VRID and hand each valid advert to heard too: the routers of other
// nodes on the link are learnt from the one socket that reads the link
// anyway (heard's own socket skips the link).
//
// The socket opens with the first instance of its link and closes with
// the last; a receive error ends it for every instance on it (each steps
// down and retries, opening a new one).
type sockets struct {
	open  func(ifname string, v6 bool) (linkSocket, error)
	heard *heard

	mu    sync.Mutex
	links map[linkKey]*sharedLink
}

type linkKey struct {
	ifname string
	v6     bool
}

// sharedLink is one shared socket and the instances on it.
type sharedLink struct {
	s    *sockets
	key  linkKey
	sock linkSocket
	// subs by VRID; guarded by s.mu. The reader reads it under s.mu too.
	subs map[int][]*subConn
	// dead is closed when the reader ends; err says why (net.ErrClosed
	// after the last instance left).
	dead chan struct{}
	err  error

	// syncs are the instances' requests to catch up with the socket
	// (sync), each closed once the reader has handed out every packet
	// the socket held when it was made.
	syncMu sync.Mutex
	syncs  []chan struct{}
}

// subQueue is how many packets wait for an instance's loop; more are
// dropped, as a full socket buffer would.
const subQueue = 32

// subConn is an instance's view of a shared socket: the packets of its
// VRID, and adverts sent from its source address.
type subConn struct {
	l    *sharedLink
	vrid int
	src  netip.Addr // only the instance's loop sends and sets it
	in   chan muxPacket
	done chan struct{}
	once sync.Once
}

// muxPacket is a packet as the link's reader received it, parsed once
// for every instance of its VRID (pkt, or the parse error perr; b is
// shared by them and read-only).
type muxPacket struct {
	b        []byte
	src, dst netip.Addr
	ttl      int
	pkt      *Packet
	perr     error
	at       time.Time
}

var _ packetConn = (*subConn)(nil)

func newSockets(open func(ifname string, v6 bool) (linkSocket, error)) *sockets {
	return &sockets{open: open, links: map[linkKey]*sharedLink{}}
}

// openRawLink opens the kernel's socket of a link.
func openRawLink(ifname string, v6 bool) (linkSocket, error) { return openConn(ifname, v6) }

// conn joins the instance of vrid to the socket of (ifname, v6), opening
// it if it is the first; src is the source of its adverts. It has the
// signature of openFunc.
func (s *sockets) conn(ifname string, v6 bool, src netip.Addr, vrid int) (packetConn, error) {
	if vrid < 1 || vrid > 255 {
		return nil, fmt.Errorf("VRID %d out of range", vrid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := linkKey{ifname, v6}
	l := s.links[key]
	if l == nil {
		sock, err := s.open(ifname, v6)
		if err != nil {
			return nil, err
		}
		l = &sharedLink{s: s, key: key, sock: sock, subs: map[int][]*subConn{}, dead: make(chan struct{})}
		s.links[key] = l
		if s.heard != nil {
			s.heard.cover(ifname, v6, true)
		}
		go l.read()
	}
	c := &subConn{l: l, vrid: vrid, src: src, in: make(chan muxPacket, subQueue), done: make(chan struct{})}
	l.subs[vrid] = append(l.subs[vrid], c)
	if len(l.subs[vrid]) == 1 && (s.heard == nil || len(l.subs) == 1) {
		if err := l.sock.SetVRIDs(l.vrids()); err != nil {
			l.leave(c)
			return nil, fmt.Errorf("socket filter on %s: %w", ifname, err)
		}
	}
	return c, nil
}

// allVRIDs is every VRID (the filter of a socket that feeds heard).
var allVRIDs = func() []int {
	vs := make([]int, 255)
	for i := range vs {
		vs[i] = i + 1
	}
	return vs
}()

// vrids lists the VRIDs of the instances on the link, in order (all of
// them when the socket feeds heard); s.mu held.
func (l *sharedLink) vrids() []int {
	if l.s.heard != nil {
		return allVRIDs
	}
	return slices.Sorted(func(yield func(int) bool) {
		for v := range l.subs {
			if !yield(v) {
				return
			}
		}
	})
}

// leave removes c; the last to leave closes the socket. s.mu held.
func (l *sharedLink) leave(c *subConn) {
	subs := slices.DeleteFunc(l.subs[c.vrid], func(x *subConn) bool { return x == c })
	if len(subs) > 0 {
		l.subs[c.vrid] = subs
		return
	}
	delete(l.subs, c.vrid)
	if len(l.subs) == 0 {
		if l.s.links[l.key] == l {
			delete(l.s.links, l.key)
		}
		l.sock.Close()
		return
	}
	if l.s.heard != nil {
		return // the filter passes every VRID
	}
	select {
	case <-l.dead:
	default:
		// Best effort: a stale filter only lets in packets no one takes.
		l.sock.SetVRIDs(l.vrids())
	}
}

// read hands each received packet to the instances of its VRID until the
// socket fails or closes.
func (l *sharedLink) read() {
	buf := make([]byte, 1500)
	for {
		n, src, dst, ttl, err := l.sock.Recv(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = l.catchUp(buf)
		} else if err == nil {
			l.deliver(buf[:n], src, dst, ttl)
		}
		if err != nil {
			l.s.mu.Lock()
			if l.s.links[l.key] == l {
				delete(l.s.links, l.key) // the next instance opens a new one
			}
			l.err = err
			l.s.mu.Unlock()
			close(l.dead)
			for _, ch := range l.takeSyncs() {
				close(ch)
			}
			if l.s.heard != nil {
				l.s.heard.cover(l.key.ifname, l.key.v6, false)
			}
			return
		}
	}
}

// deliver hands a packet to the instances of its VRID (and to heard).
func (l *sharedLink) deliver(b []byte, src, dst netip.Addr, ttl int) {
	if len(b) < 2 {
		return // no VRID: the filter drops these
	}
	l.s.mu.Lock()
	subs := l.subs[int(b[1])]
	if len(subs) == 0 && l.s.heard == nil {
		l.s.mu.Unlock()
		return
	}
	p := muxPacket{b: slices.Clone(b), src: src, dst: dst, ttl: ttl, at: time.Now()}
	p.pkt, p.perr = Parse(p.b, src, dst)
	for _, c := range subs {
		select {
		case c.in <- p:
		default:
		}
	}
	l.s.mu.Unlock()
	if l.s.heard != nil && p.perr == nil {
		l.s.heard.hear(l.key.ifname, src, ttl, p.pkt)
	}
}

// sync asks the reader to catch up with the socket: the channel is closed
// once every packet the socket held when sync was called has been handed
// to its instances (or the reader ended). A BACKUP whose
// Master_Down_Timer expired asks before it takes over: after a stall
// (a paused VM, a starved CPU) the Go runtime may run the instance's
// timer before the poller wakes the reader, and the master's adverts
// that came meanwhile wait in the socket — the master never went down.
func (l *sharedLink) sync() <-chan struct{} {
	ch := make(chan struct{})
	l.syncMu.Lock()
	select {
	case <-l.dead:
		// The reader ended (its last take is done): nothing is read.
		l.syncMu.Unlock()
		close(ch)
		return ch
	default:
	}
	l.syncs = append(l.syncs, ch)
	l.syncMu.Unlock()
	// An error means closed: the reader ends and closes ch.
	l.sock.Interrupt()
	return ch
}

func (l *sharedLink) takeSyncs() []chan struct{} {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	s := l.syncs
	l.syncs = nil
	return s
}

// catchUp serves the sync requests after Interrupt woke the reader: it
// lets Recv wait again, takes the requests made so far, hands out every
// packet the socket holds without waiting, then closes the requests. A
// request made after the take sets a new deadline after Resume: RecvNow
// (or the next Recv) then returns os.ErrDeadlineExceeded, and it is taken
// in turn.
func (l *sharedLink) catchUp(buf []byte) error {
	var reqs []chan struct{}
	for {
		err := l.sock.Resume()
		if err == nil {
			reqs = append(reqs, l.takeSyncs()...)
			var n, ttl int
			var src, dst netip.Addr
			for n, src, dst, ttl, err = l.sock.RecvNow(buf); err == nil; n, src, dst, ttl, err = l.sock.RecvNow(buf) {
				l.deliver(buf[:n], src, dst, ttl)
			}
		}
		switch {
		case errors.Is(err, errNoPacket):
			for _, ch := range reqs {
				close(ch)
			}
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // another request came meanwhile
		}
		// The reader ends: it closes the requests.
		l.syncMu.Lock()
		l.syncs = append(reqs, l.syncs...)
		l.syncMu.Unlock()
		return err
	}
}

// packets implements parsedConn.
func (c *subConn) packets() (<-chan muxPacket, <-chan struct{}) { return c.in, c.l.dead }

// catchUp implements parsedConn.
func (c *subConn) catchUp() <-chan struct{} { return c.l.sync() }

// failure implements parsedConn.
func (c *subConn) failure() error {
	if errors.Is(c.l.err, net.ErrClosed) {
		return errors.New("VRRP socket closed")
	}
	return c.l.err
}

func (c *subConn) SetSource(src netip.Addr) { c.src = src }

func (c *subConn) Send(b []byte, dst netip.Addr) error { return c.l.sock.Send(b, c.src, dst) }

// Recv returns the next packet of the instance's VRID; net.ErrClosed
// once the instance closed it, and the socket's error if it failed.
func (c *subConn) Recv(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.src, p.dst, p.ttl, nil
	case <-c.done:
		return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
	case <-c.l.dead:
		select {
		case <-c.done:
			return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
		default:
		}
		return 0, netip.Addr{}, netip.Addr{}, 0, c.failure()
	}
}

// Close leaves the shared socket (closing it if c was the last).
func (c *subConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.l.s.mu.Lock()
		c.l.leave(c)
		c.l.s.mu.Unlock()
	})
	return nil
}
