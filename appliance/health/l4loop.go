package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/config"
)

// l4Loop runs the plain TCP connect checks (HAProxy's L4 checks) of many
// servers on one goroutine: non-blocking sockets in an epoll instance of
// its own, and the times of the next checks and of the timeouts of those
// in flight in a heap that sets the epoll wait. A check costs the socket
// calls and nothing more: no goroutine, timer, context or allocation per
// check (a failure allocates its error only when it differs from the
// last one).
//
// A check is what tcpChecker does without Send and Expect: connect with
// quick ACKs off and close with a reset (SO_LINGER 0) once the server's
// SYN-ACK arrives, so the server's application never accepts it. Servers
// named by DNS, with a service name for a port, or whose checks send or
// expect data are left to tcpChecker.
type l4Loop struct {
	epfd, evfd int
	base       time.Time // mono times are nanoseconds since base

	mu     sync.Mutex
	ops    []l4Op // adds and removes the loop has yet to take
	closed bool   // evfd is closed: nothing to wake

	// Owned by the loop's goroutine.
	heap   []*l4Probe // by due
	slots  []*l4Probe // by slot, as epoll events name probes
	free   []int32
	events []unix.EpollEvent
	ev     unix.EpollEvent
	linger unix.Linger
}

// l4Probe is one server's checks.
type l4Probe struct {
	family  int
	sa      unix.Sockaddr
	addr    string // host:port, as errors name it
	timeout time.Duration
	// next is the delay from the end of a check to the start of the next.
	next func() time.Duration
	// done takes each result (err nil: passed) on the loop's goroutine; it
	// must not block.
	done func(err error, latency time.Duration)

	// Owned by the loop's goroutine.
	slot  int32 // in l.slots, -1 when not in the loop
	idx   int   // in l.heap
	gen   int32 // tells this check's events from an earlier one's
	fd    int   // the connecting socket; -1 between checks
	due   int64 // mono: start of the next check, or the timeout of this one
	start int64 // mono: start of this check
	errno unix.Errno
	err   error // the last failure, reused while it repeats
	errAt phase // the phase p.err is about

	// An http check (req not nil): the request, the statuses that pass,
	// the phase of the check in flight, the bytes of the request sent and
	// of the response read.
	req   []byte
	want  config.StatusCodes
	phase phase
	sent  int
	buf   []byte
	code  int // the status of the last failure for a status not wanted
}

// phase is where an http check is: connecting, sending its request,
// reading the response.
type phase uint8

const (
	phaseConnect phase = iota
	phaseSend
	phaseRecv
	phaseStatus // a response came with a status not wanted (p.err's phase)
	phaseBad    // a response that is not HTTP/1.x (p.err's phase)
)

// what names the step of phase in an error, as httpChecker does.
func (ph phase) what(addr string) string {
	switch ph {
	case phaseSend:
		return "send request to " + addr
	case phaseRecv:
		return "read response from " + addr
	}
	return "connect " + addr
}

type l4Op struct {
	p   *l4Probe
	add bool
}

// wakeSlot is the epoll data of the loop's eventfd.
const wakeSlot = -1

// errL4Timeout stands for a timeout in l4Probe.errno.
const errL4Timeout = unix.Errno(^uintptr(0))

// newL4Loop opens the loop's epoll instance and eventfd.
func newL4Loop() (*l4Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("tcp check loop: epoll: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("tcp check loop: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("tcp check loop: epoll add: %w", err)
	}
	return &l4Loop{epfd: epfd, evfd: evfd, base: time.Now(), events: make([]unix.EpollEvent, 256),
		linger: unix.Linger{Onoff: 1, Linger: 0}}, nil
}

// newL4Probe returns the probe of a tcp connect check of t, or nil when t
// is not one the loop can run (see l4Loop).
func newL4Probe(t Target, timeout time.Duration, next func() time.Duration, done func(error, time.Duration)) *l4Probe {
	if t.Send != "" || t.Expect != "" {
		return nil
	}
	return newProbe(t, timeout, next, done)
}

// newHTTPProbe returns the probe of a plain http check of t (status only),
// or nil when t is not one the loop can run: a body to look for, or an
// address that is not an IP literal and port number, go to httpChecker.
func newHTTPProbe(t Target, timeout time.Duration, next func() time.Duration, done func(error, time.Duration)) *l4Probe {
	if t.ExpectBody != "" {
		return nil
	}
	hr, err := t.httpRequest()
	if err != nil {
		return nil // httpChecker reports it
	}
	p := newProbe(t, timeout, next, done)
	if p != nil {
		p.req, p.want = []byte(hr.req), hr.want
	}
	return p
}

func newProbe(t Target, timeout time.Duration, next func() time.Duration, done func(error, time.Duration)) *l4Probe {
	host, port := t.splitAddr()
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return nil
	}
	p := &l4Probe{addr: net.JoinHostPort(host, port), timeout: timeout, next: next, done: done, slot: -1, fd: -1}
	if ip.Is4() || ip.Is4In6() {
		p.family, p.sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(pn), Addr: ip.Unmap().As4()}
		return p
	}
	sa := &unix.SockaddrInet6{Port: int(pn), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else {
			return nil // tcpChecker reports it
		}
	}
	p.family, p.sa = unix.AF_INET6, sa
	return p
}

// add starts checking p: at once, then every p.next() after a check.
func (l *l4Loop) add(p *l4Probe) { l.post(l4Op{p, true}) }

// remove stops checking p and closes its check in flight. Results of p
// may still be delivered until the loop takes the removal.
func (l *l4Loop) remove(p *l4Probe) { l.post(l4Op{p, false}) }

func (l *l4Loop) post(op l4Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.ops = append(l.ops, op)
	if len(l.ops) == 1 {
		var one = [8]byte{1}
		unix.Write(l.evfd, one[:])
	}
}

// now is the loop's monotonic time.
func (l *l4Loop) now() int64 { return int64(time.Since(l.base)) }

// run checks until ctx ends, then closes every socket of the loop and the
// loop itself.
func (l *l4Loop) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.post(l4Op{}) })
	defer stop()
	defer l.close()
	for {
		if ctx.Err() != nil {
			return nil
		}
		wait := -1
		if len(l.heap) > 0 {
			// Round up: a wait that ends early is a wasted wake-up.
			d := l.heap[0].due - l.now()
			wait = int(max((d+int64(time.Millisecond)-1)/int64(time.Millisecond), 0))
		}
		n, err := unix.EpollWait(l.epfd, l.events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("tcp check loop: epoll wait: %w", err)
		}
		now := l.now()
		for i := range max(n, 0) {
			ev := &l.events[i]
			if ev.Fd == wakeSlot {
				l.takeOps(now)
				continue
			}
			if p := l.slots[ev.Fd]; p != nil && p.gen == ev.Pad && p.fd >= 0 {
				l.finish(p, ev.Events, now)
			}
		}
		for len(l.heap) > 0 && l.heap[0].due <= now {
			p := l.heap[0]
			if p.fd >= 0 {
				l.end(p, errL4Timeout, now)
			} else {
				l.start(p, now)
			}
		}
	}
}

// takeOps applies the adds and removes posted since the last call.
func (l *l4Loop) takeOps(now int64) {
	var buf [8]byte
	unix.Read(l.evfd, buf[:])
	l.mu.Lock()
	ops := l.ops
	l.ops = nil
	l.mu.Unlock()
	for _, op := range ops {
		p := op.p
		switch {
		case p == nil: // the wake-up of run's end
		case op.add && p.slot < 0:
			if len(l.free) > 0 {
				p.slot = l.free[len(l.free)-1]
				l.free = l.free[:len(l.free)-1]
			} else {
				p.slot = int32(len(l.slots))
				l.slots = append(l.slots, nil)
			}
			l.slots[p.slot] = p
			p.due = now
			l.push(p)
		case !op.add && p.slot >= 0:
			l.closeCheck(p)
			l.slots[p.slot] = nil
			l.free = append(l.free, p.slot)
			p.slot = -1
			l.heapRemove(p)
		}
	}
}

// start opens p's next check; an error opening it is its result.
func (l *l4Loop) start(p *l4Probe, now int64) {
	p.start = now
	p.phase, p.sent, p.buf = phaseConnect, 0, p.buf[:0]
	fd, err := unix.Socket(p.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.end(p, errnoOf(err), now)
		return
	}
	p.fd = fd
	// See tcpChecker: the reset of close goes out in place of our
	// handshake ACK, and the server's application never sees the check.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l.linger)
	switch err := unix.Connect(fd, p.sa); err {
	case unix.EINPROGRESS:
	case nil:
		l.end(p, 0, now)
		return
	default:
		l.end(p, errnoOf(err), now)
		return
	}
	p.gen++
	l.ev = unix.EpollEvent{Events: unix.EPOLLOUT, Fd: p.slot, Pad: p.gen}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &l.ev); err != nil {
		l.end(p, errnoOf(err), now)
		return
	}
	p.due = now + int64(p.timeout)
	l.fix(p)
}

// finish takes p's epoll events: for a tcp check, writable and no error
// is a connection and ends it; an http check goes on to its request and
// response.
func (l *l4Loop) finish(p *l4Probe, events uint32, now int64) {
	if p.req != nil && p.phase != phaseConnect {
		l.exchange(p, now)
		return
	}
	var errno unix.Errno
	if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 || events&unix.EPOLLOUT == 0 {
		v, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			errno = errnoOf(err)
		case v != 0:
			errno = unix.Errno(v)
		case events&unix.EPOLLOUT == 0:
			errno = unix.ECONNRESET
		}
	}
	if p.req != nil && errno == 0 {
		p.phase = phaseSend
		l.exchange(p, now)
		return
	}
	l.end(p, errno, now)
}

// exchange sends an http check's request and reads its response as far as
// the socket lets it, then waits for the next event, or ends the check:
// with the status of the final response, or the error of a send or read,
// or a response that is not HTTP/1.x.
func (l *l4Loop) exchange(p *l4Probe, now int64) {
	for p.phase == phaseSend {
		n, err := unix.Write(p.fd, p.req[p.sent:])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return // writable again later (EPOLLOUT is still asked)
		case err != nil:
			l.end(p, errnoOf(err), now)
			return
		}
		if p.sent += n; p.sent == len(p.req) {
			p.phase = phaseRecv
			l.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: p.slot, Pad: p.gen}
			if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, p.fd, &l.ev); err != nil {
				l.end(p, errnoOf(err), now)
				return
			}
		}
	}
	for {
		if len(p.buf) == cap(p.buf) {
			p.buf = append(p.buf, make([]byte, min(max(512, cap(p.buf)), maxHead-cap(p.buf)))...)[:len(p.buf)]
		}
		n, err := unix.Read(p.fd, p.buf[len(p.buf):cap(p.buf)])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil:
			l.end(p, errnoOf(err), now)
			return
		}
		p.buf = p.buf[:len(p.buf)+n]
		code, _, done, perr := parseHeads(p.buf, n == 0)
		switch {
		case perr != nil:
			l.endWith(p, phaseBad, 0, perr, now)
		case done && !p.want.Contains(code):
			l.endWith(p, phaseStatus, code, nil, now)
		case done:
			l.end(p, 0, now)
		case n > 0:
			continue
		default: // parseHeads reports an unfinished head at the end
			l.endWith(p, phaseBad, 0, fmt.Errorf("%w: connection closed", errBadResponse), now)
		}
		return
	}
}

// endWith ends an http check that got a response: a status not wanted
// (code) or one that is not HTTP/1.x (perr). Its error is made again only
// when it differs from the last one.
func (l *l4Loop) endWith(p *l4Probe, ph phase, code int, perr error, now int64) {
	l.closeCheck(p)
	switch {
	case ph == phaseStatus && (p.err == nil || p.errAt != ph || p.code != code):
		p.err, p.errAt, p.code = statusError(code, p.want), ph, code
	case ph == phaseBad:
		p.err, p.errAt = perr, ph
	}
	l.deliver(p, p.err, now)
}

// end closes p's check with its result (0: passed), delivers it and
// schedules the next check.
func (l *l4Loop) end(p *l4Probe, errno unix.Errno, now int64) {
	l.closeCheck(p)
	var err error
	if errno != 0 {
		if p.err == nil || p.errno != errno || p.errAt != p.phase {
			var cause error = errno
			if errno == errL4Timeout {
				cause = &timeoutError{"timeout after " + p.timeout.String()}
			}
			p.errno, p.errAt, p.err = errno, p.phase, fmt.Errorf("%s: %w", p.phase.what(p.addr), cause)
		}
		err = p.err
	}
	l.deliver(p, err, now)
}

// deliver hands p's result to its owner and schedules the next check.
func (l *l4Loop) deliver(p *l4Probe, err error, now int64) {
	p.done(err, time.Duration(now-p.start))
	p.due = l.now() + int64(p.next())
	l.fix(p)
}

// closeCheck closes p's socket, with a reset (SO_LINGER 0), if a check
// is in flight. Closing it takes it out of the epoll instance.
func (l *l4Loop) closeCheck(p *l4Probe) {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

// close ends the loop: every check in flight, the eventfd and epoll.
func (l *l4Loop) close() {
	l.mu.Lock()
	l.closed = true
	unix.Close(l.evfd)
	l.ops = nil
	l.mu.Unlock()
	for _, p := range l.slots {
		if p != nil {
			l.closeCheck(p)
			p.slot = -1
		}
	}
	l.slots, l.heap = nil, nil
	unix.Close(l.epfd)
}

func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return unix.EIO
}

// The heap of probes by due, with each probe's place in it.

func (l *l4Loop) push(p *l4Probe) {
	p.idx = len(l.heap)
	l.heap = append(l.heap, p)
	l.up(p.idx)
}

func (l *l4Loop) heapRemove(p *l4Probe) {
	i, last := p.idx, len(l.heap)-1
	if i != last {
		l.swap(i, last)
	}
	l.heap[last] = nil
	l.heap = l.heap[:last]
	if i != last {
		l.fixAt(i)
	}
}

func (l *l4Loop) fix(p *l4Probe) { l.fixAt(p.idx) }

func (l *l4Loop) fixAt(i int) {
	if !l.down(i) {
		l.up(i)
	}
}

func (l *l4Loop) swap(i, j int) {
	l.heap[i], l.heap[j] = l.heap[j], l.heap[i]
	l.heap[i].idx, l.heap[j].idx = i, j
}

func (l *l4Loop) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if l.heap[parent].due <= l.heap[i].due {
			return
		}
		l.swap(i, parent)
		i = parent
	}
}

// down moves heap[i] down to its place and reports whether it moved.
func (l *l4Loop) down(i int) bool {
	start, n := i, len(l.heap)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && l.heap[r].due < l.heap[c].due {
			c = r
		}
		if l.heap[i].due <= l.heap[c].due {
			break
		}
		l.swap(i, c)
		i = c
	}
	return i > start
}
