package proxy

import (
	"container/heap"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tunLoop carries established tcp-mode tunnels' bytes without a goroutine
// per direction: both sockets of a tunnel are in an epoll set of the
// loop's own (edge-triggered, registered once), and on readiness the loop
// reads and writes them itself with non-blocking system calls, as
// HAProxy's event loop does. Go's blocking-style I/O costs a read that
// finds nothing and a goroutine wake-up per direction and request; here a
// request costs one read and one write, and a wake-up of the loop per
// batch of ready sockets.
//
// The loop has a thread of its own and sleeps in epoll_wait, as HAProxy's
// threads do: bytes that arrive wake that thread and nothing else, where a
// goroutine woken through Go's poller costs the runtime's netpoll, run
// queue and often a second thread's wake-up. A thread blocked in a system
// call keeps its P (Go's right to run code) until the runtime takes it
// back, so the runtime is given one P more per loop (see newTunLoops):
// goroutines never wait for a sleeping loop's.
//
// A write that would block keeps the bytes it could not write in a buffer
// of the tunnel's direction and stops reading that direction's source
// (back-pressure) until the destination is writable again. Idle timeouts
// are a heap of the tunnels' next deadlines, checked lazily: activity only
// updates a side's last time, and a tunnel whose deadline passes is pushed
// back with its new one unless a side was idle for its whole timeout.
type tunLoop struct {
	epfd, wake int    // the epoll set; an eventfd in it that wakes the loop
	buf        []byte // the loop's read buffer

	mu     sync.Mutex
	slots  []*tun   // by index, nil when free; an event carries index, side and generation
	gens   []uint32 // by index: the generation of the slot's last tunnel
	free   []int32  // unused slot indices
	due    tunHeap  // live tunnels, earliest deadline first
	armed  mono     // the deadline the loop sleeps until at most; 0: none
	closed bool
	done   chan struct{}
}

// tun is one tunnel in a loop. Side 0 is the client, 1 the server;
// direction d reads side d and writes side 1-d.
type tun struct {
	slot     int32
	gen      uint32
	at       int32 // index in due
	fd       [2]int
	idle     [2]time.Duration
	last     [2]mono // a side's last read or write
	hup      [2]bool // an event showed the side's peer closing or an error: read to the end
	want     uint8   // directions (bit d) the events ask to pump; wantConnect: the connect ended
	queued   bool    // in the batch being pumped
	ended    bool    // finished
	attached bool    // both sockets in the set (not while connecting, see connect)
	// connecting: the server's socket is connecting (see connect), the
	// client's not in the set yet; ready is closed when that ends,
	// connErr saying how.
	connecting bool
	connErr    error
	ready      chan struct{}
	dir        [2]tunDir
	deadline   mono // in due
	end        [2]byte
	done       chan struct{} // closed when the tunnel has ended
}

// tunDir is one direction of a tunnel.
type tunDir struct {
	pend     *[]byte // bytes read but not yet written; nil: none
	pooled   bool    // pend is from getBuf
	off, len int
	eof      bool  // the source sent its FIN
	shut     bool  // the FIN was passed on: this direction has ended
	n        int64 // bytes written to the destination
}

// free lets go of x's buffer.
func (x *tunDir) free() {
	if x.pooled {
		putBuf(x.pend)
	}
	x.pend, x.pooled, x.off, x.len = nil, false, 0, 0
}

var tunWho = [2]byte{'C', 'S'}

// wantConnect is the bit of tun.want for an event of a connecting socket.
const wantConnect = 4

// noDeadline is the deadline of a tunnel the heap has no reason to wake
// the loop for.
const noDeadline = mono(1<<63 - 1)

// tunHeap orders live tunnels by deadline; it keeps each one's at.
type tunHeap []*tun

func (h tunHeap) Len() int           { return len(h) }
func (h tunHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h tunHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = int32(i), int32(j)
}
func (h *tunHeap) Push(x any) {
	t := x.(*tun)
	t.at = int32(len(*h))
	*h = append(*h, t)
}
func (h *tunHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// tunLoopBufSize is the loop's read buffer: a read that fills it is
// followed by another.
const tunLoopBufSize = 64 << 10

func newTunLoop() (*tunLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET}
	setEventData(&ev, wakeData)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	l := &tunLoop{epfd: epfd, wake: wake, buf: make([]byte, tunLoopBufSize), done: make(chan struct{})}
	go l.loop()
	return l, nil
}

var errTunLoopClosed = errors.New("tunnel loop closed")

// run carries the tunnel between client and server until both directions
// end, an error or an idle side ends it; it returns the bytes copied each
// way and the termination state, as tunnel does. The loop takes the
// sockets: client and server are closed when run returns, whatever it
// returns. On errTunLoopClosed (before any byte moved) both are still
// open and the caller's.
func (l *tunLoop) run(client, server *net.TCPConn, clientIdle, serverIdle time.Duration) (ab, ba int64, end [2]byte, err error) {
	var fds [2]int
	for i, c := range [2]*net.TCPConn{client, server} {
		fd, err := dupConn(c)
		if err != nil {
			if i == 1 {
				unix.Close(fds[0])
			}
			return 0, 0, end, err
		}
		fds[i] = fd
	}
	now := monoOf(time.Now())
	t := &tun{fd: fds, idle: [2]time.Duration{clientIdle, serverIdle}, last: [2]mono{now, now}, done: make(chan struct{}), attached: true}
	t.deadline = t.next()
	if err := l.add(t, 0, 2); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return 0, 0, end, err
	}
	// The Go side closes its descriptors: the sockets leave Go's poller
	// and live on in the loop's.
	client.Close()
	server.Close()
	<-t.done
	end = stNormal
	if t.end != [2]byte{} {
		end = t.end
	}
	return t.dir[0].n, t.dir[1].n, end, nil
}

// add gives t a slot and puts its sockets from side first to side end-1 in
// the epoll set. Under l.mu: the loop looks the slot up when the first
// event comes, which may be at once.
func (l *tunLoop) add(t *tun, first, end int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errTunLoopClosed
	}
	if k := len(l.free); k > 0 {
		t.slot, l.free = l.free[k-1], l.free[:k-1]
	} else {
		t.slot = int32(len(l.slots))
		l.slots = append(l.slots, nil)
		l.gens = append(l.gens, 0)
	}
	l.gens[t.slot]++
	t.gen = l.gens[t.slot]
	l.slots[t.slot] = t
	for side := first; side < end; side++ {
		if err := l.register(t, side); err != nil {
			if side > first {
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, t.fd[first], nil)
			}
			l.slots[t.slot] = nil
			l.free = append(l.free, t.slot)
			return err
		}
	}
	heap.Push(&l.due, t)
	l.arm(t.deadline)
	return nil
}

// register puts t's socket of side in the epoll set, for good.
func (l *tunLoop) register(t *tun, side int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET}
	setEventData(&ev, uint64(t.slot)<<1|uint64(side)|uint64(t.gen)<<32)
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, t.fd[side], &ev)
}

// maxSleep bounds the loop's sleep, so that a deadline later than that
// needs no wake-up (a connect's, a new tunnel's: most are).
const maxSleep = time.Second

// arm makes the loop wake by d (l.mu held).
func (l *tunLoop) arm(d mono) {
	if (l.armed == 0 || d < l.armed) && d < monoOf(time.Now().Add(maxSleep)) {
		l.armed = d
		l.poke()
	}
}

// poke wakes the loop.
func (l *tunLoop) poke() {
	unix.Write(l.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// connect dials addr with a non-blocking socket whose connect completes
// in the loop's set: the server's socket never enters Go's poller, and the
// client's first bytes can go as soon as carry has it. It returns when the
// connect succeeded, failed or took timeout; connected, the tunnel is the
// caller's to carry or drop.
func (l *tunLoop) connect(addr netip.AddrPort, timeout time.Duration) (*tun, error) {
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if a := addr.Addr(); a.Is4() || a.Is4In6() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.Unmap().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: os.NewSyscallError("connect", err)}
	}
	t := &tun{fd: [2]int{-1, fd}, connecting: true, ready: make(chan struct{}), done: make(chan struct{})}
	t.deadline = monoOf(time.Now().Add(timeout))
	if err := l.add(t, 1, 2); err != nil {
		unix.Close(fd)
		return nil, err
	}
	<-t.ready
	if t.connErr != nil {
		<-t.done
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: t.connErr}
	}
	return t, nil
}

// carry carries the tunnel of a connected t to client, with the bytes in
// first (a PROXY protocol header, bytes that came with the client's) sent
// to the server before the client's, as run does; first is t's.
func (l *tunLoop) carry(t *tun, client *net.TCPConn, first []byte, clientIdle, serverIdle time.Duration) (ab, ba int64, end [2]byte) {
	fd, err := dupConn(client)
	if err != nil {
		l.drop(t, err)
		return 0, 0, byTimeout(err, 'C', 'D')
	}
	now := monoOf(time.Now())
	l.mu.Lock()
	t.fd[0] = fd
	t.idle = [2]time.Duration{clientIdle, serverIdle}
	t.last = [2]mono{now, now}
	if len(first) > 0 {
		t.dir[0].pend = &first
		t.dir[0].len = len(first)
	}
	if err := l.register(t, 0); err != nil {
		t.fd[0] = -1
		l.mu.Unlock()
		unix.Close(fd)
		l.drop(t, err)
		return 0, 0, byTimeout(err, 'C', 'D')
	}
	// The registration's first event (the socket is writable) pumps both
	// ways: bytes may wait on either side.
	t.attached = true
	t.want |= 3
	t.deadline = t.next()
	heap.Fix(&l.due, int(t.at))
	l.arm(t.deadline)
	l.mu.Unlock()
	client.Close()
	<-t.done
	end = stNormal
	if t.end != [2]byte{} {
		end = t.end
	}
	return t.dir[0].n, t.dir[1].n, end
}

// drop ends a connected t that will not be carried.
func (l *tunLoop) drop(t *tun, why error) {
	l.mu.Lock()
	t.end = byTimeout(why, 'C', 'D')
	t.deadline = 0 // expire ends it
	heap.Fix(&l.due, int(t.at))
	l.arm(1)
	l.mu.Unlock()
	<-t.done
}

// dupConn returns a duplicate of c's descriptor (non-blocking, as Go
// makes its sockets).
func dupConn(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return fd, derr
}

// next is t's next deadline: the earliest of its sides' last activity
// plus idle timeout (a side without one never times out).
func (t *tun) next() mono {
	d := mono(1<<63 - 1)
	for s := range 2 {
		if t.idle[s] > 0 {
			d = min(d, t.last[s]+mono(t.idle[s]))
		}
	}
	return d
}

func (l *tunLoop) loop() {
	runtime.LockOSThread() // never unlocked: the thread ends with the loop
	defer close(l.done)
	defer unix.Close(l.wake)
	defer unix.Close(l.epfd)
	events := make([]unix.EpollEvent, 128)
	batch := make([]*tun, 0, 128)
	for {
		l.mu.Lock()
		sleep := maxSleep
		if l.armed != 0 {
			sleep = max(0, min(sleep, time.Duration(l.armed-monoOf(time.Now()))))
		}
		wait := int((sleep + time.Millisecond - 1) / time.Millisecond)
		l.mu.Unlock()
		n, err := unix.EpollWait(l.epfd, events, wait)
		if err != nil && err != unix.EINTR {
			return
		}
		now := monoOf(time.Now())
		batch = batch[:0]
		l.mu.Lock()
		for k := range max(n, 0) {
			d := eventData(&events[k])
			if d == wakeData {
				var b [8]byte
				unix.Read(l.wake, b[:])
				continue
			}
			i, side, gen := int32(uint32(d)>>1), int(d&1), uint32(d>>32)
			if int(i) >= len(l.slots) {
				continue
			}
			t := l.slots[i]
			if t == nil || t.gen != gen {
				continue
			}
			ev := events[k].Events
			if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				t.hup[side] = true
			}
			// Readable: pump the direction it is the source of;
			// writable: the one it is the destination of, if that one
			// holds bytes (the flags are the socket's state, not why
			// the event came: a writable socket shows EPOLLOUT always).
			switch {
			case t.connecting:
				t.want |= wantConnect
			case ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0:
				t.want |= 1 << side
			}
			if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && t.dir[1-side].len > 0 {
				t.want |= 1 << (1 - side)
			}
			// Not attached: the bits wait for carry's event.
			if t.want != 0 && !t.queued && (t.attached || t.connecting) {
				t.queued = true
				batch = append(batch, t)
			}
		}
		l.mu.Unlock()
		for k, t := range batch {
			batch[k] = nil
			if t.ended { // by an earlier event of this batch
				continue
			}
			if l.pump(t, now) {
				l.finish(t)
			}
		}
		if l.expire(now) {
			return
		}
	}
}

// pump moves what it can in the directions t.want asks for and reports
// whether the tunnel has ended.
func (l *tunLoop) pump(t *tun, now mono) bool {
	t.queued = false
	if t.connecting {
		return l.connected(t, now)
	}
	want := t.want
	t.want = 0
	for d := range 2 {
		if want&(1<<d) != 0 && !l.pumpDir(t, d, now) {
			return true
		}
	}
	return t.dir[0].shut && t.dir[1].shut
}

// connected ends the connect of t, which an event of its socket says
// has ended: false when it succeeded (t.ready closed, t is the connect
// caller's), true when it failed (t.connErr set).
func (l *tunLoop) connected(t *tun, now mono) bool {
	t.want = 0
	soerr, err := unix.GetsockoptInt(t.fd[1], unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		t.connErr = os.NewSyscallError("getsockopt", err)
	case soerr != 0:
		t.connErr = os.NewSyscallError("connect", unix.Errno(soerr))
	}
	if t.connErr != nil {
		return true
	}
	l.mu.Lock()
	t.connecting = false
	t.deadline = noDeadline // carry or drop sets it
	heap.Fix(&l.due, int(t.at))
	l.mu.Unlock()
	t.last = [2]mono{now, now}
	close(t.ready)
	return false
}

// pumpDir moves direction d's bytes until its source has no more or its
// destination takes no more; false: the tunnel failed (t.end set).
func (l *tunLoop) pumpDir(t *tun, d int, now mono) bool {
	x := &t.dir[d]
	src, dst := t.fd[d], t.fd[1-d]
	for !x.shut {
		if x.len > 0 {
			k, err := rawIO(unix.SYS_WRITE, dst, (*x.pend)[x.off:x.off+x.len])
			if err == unix.EAGAIN {
				return true // the destination's EPOLLOUT resumes
			}
			if err != nil {
				t.end = byTimeout(err, tunWho[1-d], 'D')
				return false
			}
			t.last[1-d] = now
			x.off += k
			x.len -= k
			x.n += int64(k)
			if x.len == 0 {
				x.free()
			}
			continue
		}
		if x.eof {
			unix.Shutdown(dst, unix.SHUT_WR)
			x.shut = true
			return true
		}
		k, err := rawIO(unix.SYS_READ, src, l.buf)
		if k == 0 && err == nil {
			x.eof = true
			continue
		}
		if err == unix.EAGAIN {
			return true // the source's EPOLLIN resumes
		}
		if err != nil {
			t.end = byTimeout(err, tunWho[d], 'D')
			return false
		}
		t.last[d] = now
		w, err := rawIO(unix.SYS_WRITE, dst, l.buf[:k])
		if err != nil && err != unix.EAGAIN {
			t.end = byTimeout(err, tunWho[1-d], 'D')
			return false
		}
		w = max(w, 0)
		if w > 0 {
			t.last[1-d] = now
			x.n += int64(w)
		}
		if w < k { // back-pressure: keep the rest, read no more
			x.pend, x.pooled = getBuf(k-w), true
			x.len = copy(*x.pend, l.buf[w:k])
			continue // the next write finds the destination full
		}
		// A short read drained the socket: a later byte, FIN or error
		// brings another event, unless one came already (hup), whose
		// FIN or error must then be read now.
		if k < len(l.buf) && !t.hup[d] {
			return true
		}
	}
	return true
}

// rawIO reads or writes (trap) b on the non-blocking fd without telling
// the runtime (no entersyscall): the call never blocks, and a loopback
// write that runs the receiver's TCP for tens of microseconds must not
// cost the loop its P.
func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// expire ends the tunnels with a side idle for its whole timeout and
// re-arms the loop's deadline. It reports whether the loop is closed and
// has no tunnel left: it then ends.
func (l *tunLoop) expire(now mono) (end bool) {
	var ended []*tun
	l.mu.Lock()
	for len(l.due) > 0 && l.due[0].deadline <= now {
		t := l.due[0]
		if t.connecting && t.connErr == nil {
			t.connErr = os.ErrDeadlineExceeded
		}
		if t.end == [2]byte{} && t.connErr == nil {
			for s := range 2 {
				if t.idle[s] > 0 && now-t.last[s] >= mono(t.idle[s]) {
					t.end = byTimeout(os.ErrDeadlineExceeded, tunWho[s], 'D')
					break
				}
			}
		}
		if t.end != [2]byte{} || t.connErr != nil {
			heap.Pop(&l.due)
			t.at = -1
			ended = append(ended, t)
			continue
		}
		t.deadline = t.next()
		heap.Fix(&l.due, 0)
	}
	var want mono
	if len(l.due) > 0 {
		want = l.due[0].deadline
	}
	l.armed = want
	l.mu.Unlock()
	for _, t := range ended {
		l.finish(t)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed && len(l.due) == 0
}

// finish ends t: its sockets are closed (which takes them out of the
// epoll set), its slot freed and its owner woken.
func (l *tunLoop) finish(t *tun) {
	l.mu.Lock()
	if t.at >= 0 {
		heap.Remove(&l.due, int(t.at))
		t.at = -1
	}
	l.slots[t.slot] = nil
	l.free = append(l.free, t.slot)
	l.mu.Unlock()
	for s := range 2 {
		if t.fd[s] >= 0 {
			unix.Close(t.fd[s])
			t.fd[s] = -1
		}
		t.dir[s].free()
	}
	t.ended = true
	if t.connecting { // the connect failed
		t.connecting = false
		close(t.ready)
	}
	close(t.done)
}

// Len is the number of tunnels in the loop.
func (l *tunLoop) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.due)
}

// close refuses new tunnels; the loop ends when its last tunnel has ended
// (at once if it has none): the tunnels open at a shutdown go on until
// their peers close or time out, as the component's other connections do.
func (l *tunLoop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.poke() // the loop checks
}

// tunLoops spreads tunnels over one loop per CPU.
type tunLoops struct {
	loops []*tunLoop
	next  atomic.Uint32
}

// tunLoopsPerComponent is the number of loops a component runs: one per P
// the runtime had before the first ones started, which added as many.
var (
	tunLoopsOnce         sync.Once
	tunLoopsPerComponent int
)

func newTunLoops() (*tunLoops, error) {
	tunLoopsOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		tunLoopsPerComponent = n
		runtime.GOMAXPROCS(2 * n)
	})
	ls := &tunLoops{}
	for range tunLoopsPerComponent {
		l, err := newTunLoop()
		if err != nil {
			ls.close()
			return nil, err
		}
		ls.loops = append(ls.loops, l)
	}
	return ls, nil
}

func (ls *tunLoops) pick() *tunLoop {
	return ls.loops[int(ls.next.Add(1))%len(ls.loops)]
}

// Len is the number of tunnels in the loops.
func (ls *tunLoops) Len() int {
	n := 0
	for _, l := range ls.loops {
		n += l.Len()
	}
	return n
}

func (ls *tunLoops) close() {
	for _, l := range ls.loops {
		l.close()
	}
}
