// Package epollset waits on an epoll set of a program's own in Go's
// poller rather than in a blocking epoll_wait.
//
// A goroutine blocked in epoll_wait holds a thread in a system call; sysmon
// takes its P away, and when an event wakes the thread under load there is
// often no P free: the goroutine goes to the global run queue and the
// thread back to sleep, context switches at every wake-up. An epoll
// descriptor is readable while its set has events, so Go's poller can
// watch it like a socket: Wait asks the set with a zero timeout and, when
// it has nothing, parks the goroutine in the poller until it has, or until
// the wait's deadline.
//
// It pays where events come from outside under load (the proxy's parker:
// slow clients' bytes beside busy connections). A loop woken mostly by
// its own deadlines is better off in a blocking epoll_wait, whose timeout
// is the kernel's: the health checks' loop, moved here, took 1.5x its CPU
// (BenchmarkChecks1000 5.5-7.2% of a core against 3.7-3.9%, Checks10000
// 36.5-41.2% against 25.7-26.2%) and stayed as it was.
package epollset

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set is an epoll set in Go's poller. Ctl (or epoll_ctl on FD, by the
// goroutine that closes it) changes it; Wait must not be called from two
// goroutines at once.
type Set struct {
	fd int
	f  *os.File
	rc syscall.RawConn
}

// New creates an empty set (close-on-exec). It fails if the runtime
// cannot poll it.
func New() (*Set, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err == nil {
		// Deadlines work only on a descriptor in the poller: this
		// fails (os.ErrNoDeadline) if the runtime could not add it.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("an epoll set in Go's poller: %w", err)
	}
	return &Set{fd: fd, f: f, rc: rc}, nil
}

// FD is the set's descriptor, for epoll_ctl by the goroutine that
// closes the set (it is valid until Close); others use Ctl.
func (s *Set) FD() int { return s.fd }

// Ctl is epoll_ctl on the set, safe against a concurrent Close: the
// descriptor is held open for the call, and after Close it fails (a bare
// FD could by then name another descriptor).
func (s *Set) Ctl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	if cerr := s.rc.Control(func(sfd uintptr) { err = unix.EpollCtl(int(sfd), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// Wait fills events with the set's events, waiting until deadline (zero:
// no limit) for there to be some; it returns 0 when the deadline passed
// first. The set is asked before any wait, so events already there are
// never left waiting for another edge, even past the deadline.
func (s *Set) Wait(events []unix.EpollEvent, deadline time.Time) (int, error) {
	n := 0
	var werr error
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		// The poller would report the deadline without asking the set.
		// Control holds the descriptor open for the call, as Read does.
		if err := s.rc.Control(func(fd uintptr) { n, werr = poll(fd, events) }); err != nil {
			return 0, err
		}
		return n, werr
	}
	if err := s.f.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	err := s.rc.Read(func(fd uintptr) bool {
		n, werr = poll(fd, events)
		return n > 0 || werr != nil
	})
	switch {
	case werr != nil:
		return 0, werr
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil
	}
	return n, err
}

// poll asks the set fd for its events without waiting.
func poll(fd uintptr, events []unix.EpollEvent) (int, error) {
	for {
		// A zero timeout never blocks: no system call state.
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return 0, fmt.Errorf("epoll_pwait: %w", e)
		}
		return int(r), nil
	}
}

// Close closes the set; a Wait under way returns an error.
func (s *Set) Close() error { return s.f.Close() }
