package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// parkAfter is how long a connection waiting for bytes keeps its goroutine
// before it is parked: busy keep-alive connections never park, idle ones
// cost no goroutine stack.
const parkAfter = 10 * time.Millisecond

// parker holds idle client connections without a goroutine each: their
// sockets are in an epoll set of its own (one-shot), and a single
// goroutine hands a connection back to a new goroutine when bytes arrive.
// A timer per parked connection enforces its timeout. This is what keeps
// an idle keep-alive connection, or a slow client's unfinished head, at
// about a kilobyte instead of a goroutine stack and a buffer.
type parker struct {
	epfd, wake int
	mu         sync.Mutex
	parked     map[uint64]*parked
	next       atomic.Uint64
	closed     bool
	done       chan struct{}
}

type parked struct {
	c         *net.TCPConn
	timer     *time.Timer
	resume    func()
	onTimeout func()
}

func newParker() (*parker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	p := &parker{epfd: epfd, wake: wake, parked: map[uint64]*parked{}, done: make(chan struct{})}
	p.next.Store(1) // 0 is the wake-up eventfd
	go p.loop()
	return p, nil
}

var errParkerClosed = errors.New("parker closed")

// park waits for c to become readable, then calls resume on a new
// goroutine; after timeout it calls onTimeout instead. registered tells
// whether c's socket is already in the set (from an earlier park).
func (p *parker) park(c *net.TCPConn, registered bool, timeout time.Duration, resume, onTimeout func()) error {
	id := p.next.Add(1)
	pc := &parked{c: c, resume: resume, onTimeout: onTimeout}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errParkerClosed
	}
	p.parked[id] = pc
	pc.timer = time.AfterFunc(timeout, func() {
		if p.take(id) != nil {
			onTimeout()
		}
	})
	p.mu.Unlock()
	rc, err := c.SyscallConn()
	if err != nil {
		p.take(id)
		return err
	}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		op := unix.EPOLL_CTL_MOD
		if !registered {
			op = unix.EPOLL_CTL_ADD
		}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		if pc := p.take(id); pc != nil {
			pc.timer.Stop()
		}
		return err
	}
	return nil
}

// take removes id from the parked set; exactly one of the event loop, the
// timer and close gets it.
func (p *parker) take(id uint64) *parked {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.parked[id]
	delete(p.parked, id)
	return pc
}

func (p *parker) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // close
			}
			if pc := p.take(id); pc != nil {
				pc.timer.Stop()
				go pc.resume()
			}
		}
	}
}

// Len is the number of parked connections.
func (p *parker) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// close stops the loop and closes every parked connection.
func (p *parker) close() {
	p.mu.Lock()
	p.closed = true
	all := p.parked
	p.parked = map[uint64]*parked{}
	p.mu.Unlock()
	for _, pc := range all {
		pc.timer.Stop()
		pc.c.Close()
	}
	unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.wake)
}
