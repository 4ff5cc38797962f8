package proxy

import (
	"container/heap"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"halb/internal/epollset"
)

// parkAfter is how long a connection waiting for bytes keeps its goroutine
// before it is parked: busy keep-alive connections never park, idle ones
// cost no goroutine stack.
const parkAfter = 10 * time.Millisecond

// firstParkAfter is parkAfter for a new connection that has not sent a
// byte: a client sends its request right behind its handshake's last ACK,
// so one that has not within a millisecond is idle (a browser's
// preconnect, a load of connections opened before their requests), and
// each of a burst of such connections would keep a goroutine stack for
// parkAfter: 9000 connections opened at once had up to 1100 goroutines
// waiting (netlab bench -rows mem; docs/proxy-profile.md).
const firstParkAfter = time.Millisecond

// parker holds idle client connections without a goroutine each: a
// parked connection is its socket in an epoll set of the parker's own
// (one-shot), its deadline in the parker's heap (no timer per
// connection), and the owner to call back on a new goroutine when bytes
// arrive or the deadline passes. An idle keep-alive connection is parked
// detached, with no net.TCPConn either: its descriptor is duplicated and
// the net.TCPConn closed, which frees the net package's and the runtime's
// state of the socket, and a new one is made when it resumes; it then costs
// what its owner keeps (the httpConn) and one slot here.
type parker struct {
	wake int
	// set is the epoll set, waited on in Go's poller (see epollset): a
	// blocking epoll_wait cost context switches at every byte of a slow
	// client. The loop changes it by descriptor (close closes it after
	// the loop ended); park, on other goroutines, through Ctl.
	set *epollset.Set

	mu      sync.Mutex
	slots   []parkSlot // by index; an epoll event carries index and generation
	free    []int32    // unused slot indices
	due     parkHeap   // used slot indices, earliest deadline first
	n       int        // parked connections
	waiting mono       // the deadline the loop sleeps until; 0: none
	resumed uint64     // connections handed back to their owners
	closed  bool
	done    chan struct{}
}

// parkOwner is what a parked connection returns to: unpark is called once,
// on a new goroutine, with the connection as a new net.TCPConn (nil if it
// could not be made: the socket is then closed) and whether its deadline
// passed rather than bytes arriving.
type parkOwner interface {
	unpark(c *net.TCPConn, timedOut bool)
}

type parkSlot struct {
	owner    parkOwner    // nil: free
	c        *net.TCPConn // attached; nil: detached, fd is the parker's
	fd       int32
	gen      uint32
	at       int32 // index in due
	deadline mono
}

// parkHeap orders slot indices by deadline; it keeps each slot's at.
type parkHeap struct {
	idx   []int32
	slots *[]parkSlot
}

func (h *parkHeap) Len() int { return len(h.idx) }
func (h *parkHeap) Less(i, j int) bool {
	return (*h.slots)[h.idx[i]].deadline < (*h.slots)[h.idx[j]].deadline
}
func (h *parkHeap) Swap(i, j int) {
	h.idx[i], h.idx[j] = h.idx[j], h.idx[i]
	(*h.slots)[h.idx[i]].at = int32(i)
	(*h.slots)[h.idx[j]].at = int32(j)
}
func (h *parkHeap) Push(x any) {
	i := x.(int32)
	(*h.slots)[i].at = int32(len(h.idx))
	h.idx = append(h.idx, i)
}
func (h *parkHeap) Pop() any {
	i := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return i
}

// wakeData marks the eventfd's events.
const wakeData = ^uint64(0)

func newParker() (*parker, error) {
	set, err := epollset.New()
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		set.Close()
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventData(&ev, wakeData)
	if err := unix.EpollCtl(set.FD(), unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		set.Close()
		unix.Close(wake)
		return nil, err
	}
	p := &parker{wake: wake, set: set, done: make(chan struct{})}
	p.due.slots = &p.slots
	go p.loop()
	return p, nil
}

func setEventData(ev *unix.EpollEvent, d uint64) {
	ev.Fd, ev.Pad = int32(uint32(d)), int32(uint32(d>>32))
}

func eventData(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

var errParkerClosed = errors.New("parker closed")

// park hands c to the parker until it becomes readable or timeout passes;
// then owner.unpark gets it back. detach: c is closed once parked (its
// socket lives on in the parker) and unpark gets a new net.TCPConn, which
// frees the net package's and the runtime's state of the socket for as
// long as it is parked, at a dozen system calls when it resumes: for
// connections that park seldom and long (idle keep-alive). Otherwise c
// stays open and unpark gets c itself: for connections that park often
// and briefly (a slow client's head, byte after byte). On error c is
// untouched and still the caller's.
func (p *parker) park(c *net.TCPConn, timeout time.Duration, owner parkOwner, detach bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd = int(s)
		if detach {
			fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
		}
	}); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	attached := c
	if detach {
		attached = nil
	}
	deadline := monoOf(time.Now().Add(timeout))
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		if detach {
			unix.Close(fd)
		}
		return errParkerClosed
	}
	var i int32
	if k := len(p.free); k > 0 {
		i, p.free = p.free[k-1], p.free[:k-1]
	} else {
		p.slots = append(p.slots, parkSlot{})
		i = int32(len(p.slots) - 1)
	}
	s := &p.slots[i]
	s.owner, s.c, s.fd, s.deadline = owner, attached, int32(fd), deadline
	s.gen++
	gen := s.gen
	heap.Push(&p.due, i)
	p.n++
	wake := p.waiting == 0 || deadline < p.waiting
	if wake {
		p.waiting = deadline
	}
	p.mu.Unlock()
	// One-shot: after an event the descriptor is silent until the loop
	// arms it again (a slow head whose bytes it read) or removes it.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setEventData(&ev, uint64(i)|uint64(gen)<<32)
	// Ctl, not the set's bare descriptor: close may have closed the set
	// since p.mu was let go.
	if err := p.set.Ctl(unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		mine := p.slots[i].owner != nil && p.slots[i].gen == gen
		if mine {
			p.release(i)
		}
		p.mu.Unlock()
		if mine {
			if detach {
				unix.Close(fd)
			}
			return err
		}
		// The loop took it already (its deadline passed): it is parked.
	}
	if wake {
		p.poke()
	}
	if detach {
		c.Close()
	}
	return nil
}

// poke wakes the loop.
func (p *parker) poke() {
	unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// release frees slot i (p.mu held).
func (p *parker) release(i int32) {
	heap.Remove(&p.due, int(p.slots[i].at))
	p.slots[i].owner, p.slots[i].c = nil, nil
	p.free = append(p.free, i)
	p.n--
}

// taken is a connection the loop took from its slot, to give back.
type taken struct {
	owner    parkOwner
	c        *net.TCPConn // attached
	fd       int
	timedOut bool
}

func (p *parker) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	var out []taken
	var inline []ready
	for {
		p.mu.Lock()
		var wait time.Time
		if p.due.Len() > 0 {
			d := p.slots[p.due.idx[0]].deadline
			p.waiting = d
			wait = d.time()
		} else {
			p.waiting = 0
		}
		p.mu.Unlock()
		n, err := p.set.Wait(events, wait)
		if err != nil {
			return
		}
		out, inline = out[:0], inline[:0]
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		for k := range max(n, 0) {
			d := eventData(&events[k])
			if d == wakeData {
				var b [8]byte
				unix.Read(p.wake, b[:])
				continue
			}
			i, gen := int32(uint32(d)), uint32(d>>32)
			s := &p.slots[i]
			if s.owner == nil || s.gen != gen {
				continue
			}
			// The end of the stream (or an error) goes to the owner
			// unread.
			if r, ok := s.owner.(parkReader); ok && s.c != nil && events[k].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
				inline = append(inline, ready{i: i, gen: gen, r: r, fd: int(s.fd)})
				continue
			}
			out = append(out, taken{owner: s.owner, c: s.c, fd: int(s.fd)})
			p.release(i)
		}
		p.mu.Unlock()
		// Bytes for an attached owner that can take them here: no
		// goroutine unless it needs one. Only this loop takes slots, so
		// each is still the owner's.
		for k := range inline {
			e := inline[k]
			inline[k] = ready{}
			if e.r.parkedRead(e.fd) {
				ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
				setEventData(&ev, uint64(e.i)|uint64(e.gen)<<32)
				if unix.EpollCtl(p.set.FD(), unix.EPOLL_CTL_MOD, e.fd, &ev) == nil {
					continue
				}
			}
			p.mu.Lock()
			if s := &p.slots[e.i]; s.owner != nil && s.gen == e.gen {
				out = append(out, taken{owner: s.owner, c: s.c, fd: int(s.fd)})
				p.release(e.i)
			}
			p.mu.Unlock()
		}
		now := monoOf(time.Now())
		p.mu.Lock()
		for p.due.Len() > 0 {
			i := p.due.idx[0]
			s := &p.slots[i]
			if s.deadline > now {
				break
			}
			out = append(out, taken{owner: s.owner, c: s.c, fd: int(s.fd), timedOut: true})
			p.release(i)
		}
		p.resumed += uint64(len(out))
		p.mu.Unlock()
		for k := range out {
			t := out[k]
			out[k] = taken{}
			// The socket leaves this set before its descriptor is
			// duplicated or closed: the set holds it by descriptor and
			// would keep reporting it while another one is open.
			unix.EpollCtl(p.set.FD(), unix.EPOLL_CTL_DEL, t.fd, nil)
			c := t.c
			if c == nil {
				c = connOf(t.fd)
			}
			go t.owner.unpark(c, t.timedOut)
		}
	}
}

// parkReader is an owner of attached connections that can take the bytes
// that arrive on one while it is parked, on the parker's goroutine:
// parkedRead reads what the descriptor holds without blocking and reports
// whether the connection stays parked (its deadline unchanged); false
// hands it back with unpark. It must not block, and must not park.
type parkReader interface {
	parkedRead(fd int) (stay bool)
}

// ready is an event for a parkReader's connection.
type ready struct {
	i   int32
	gen uint32
	r   parkReader
	fd  int
}

// connOf makes a net.TCPConn of a parked socket's descriptor, which it
// closes (the connection has a duplicate); nil if that fails.
func connOf(fd int) *net.TCPConn {
	f := os.NewFile(uintptr(fd), "")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil
	}
	tc, _ := c.(*net.TCPConn)
	if tc == nil {
		c.Close()
	}
	return tc
}

// Len is the number of parked connections.
func (p *parker) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Resumed is how many connections the parker has handed back to their
// owners (bytes, a closed socket or a deadline).
func (p *parker) Resumed() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resumed
}

// close stops the loop and closes every parked connection.
func (p *parker) close() {
	p.mu.Lock()
	p.closed = true
	var fds []int
	var conns []*net.TCPConn
	for i := range p.slots {
		s := &p.slots[i]
		switch {
		case s.owner == nil:
		case s.c != nil:
			conns = append(conns, s.c)
		default:
			fds = append(fds, int(s.fd))
		}
		s.owner, s.c = nil, nil
	}
	p.due.idx, p.free, p.n = nil, nil, 0
	p.mu.Unlock()
	p.poke()
	<-p.done
	for _, fd := range fds {
		unix.Close(fd)
	}
	for _, c := range conns {
		c.Close()
	}
	p.set.Close()
	unix.Close(p.wake)
}
