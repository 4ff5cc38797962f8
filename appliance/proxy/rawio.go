package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO reads and writes a TCP socket with raw system calls inside Go's
// poller (syscall.RawConn): the socket is non-blocking and the poller does
// the waiting, so the calls never block and need not tell the scheduler
// that they enter a system call. Go's own Read and Write do (entersyscall):
// a write that runs the network stack (on loopback or a veth, the
// receiver's side too) often outlasts sysmon's 20 µs tick, sysmon then
// hands the P to another thread, and the write's return finds it gone: a
// thread wake-up and a context switch or two per call, and a sysmon that
// never sleeps long (5.7% of halbd's CPU in the tcp-conn row's profile).
//
// Deadlines, closes and errors behave as Read and Write's: the poller's
// (os.ErrDeadlineExceeded, net.ErrClosed), a socket error as a
// *os.SyscallError, io.EOF at the end. One goroutine reads and one writes
// at a time, as on a net.Conn; the read and write halves share nothing.
type rawIO struct {
	rc syscall.RawConn
	// The callbacks' arguments and results, so that no closure is made
	// per call (a closure passed to RawConn escapes: an allocation).
	rb, wb         []byte
	rn, wn         int
	rerr, werr     error
	readFn, sendFn func(fd uintptr) bool
}

// newRawIO returns c's rawIO, or nil if c has no raw connection.
func newRawIO(c *net.TCPConn) *rawIO {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.readFn, r.sendFn = r.read, r.send
	return r
}

func (r *rawIO) read(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.rb))), uintptr(len(r.rb)))
		switch e {
		case 0:
			r.rn, r.rerr = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.rn, r.rerr = 0, e
		return true
	}
}

// Read reads into b, as net.Conn's Read.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.rb = b
	err := r.rc.Read(r.readFn)
	r.rb = nil
	switch {
	case err != nil:
		return 0, err
	case r.rerr != nil:
		return 0, os.NewSyscallError("read", r.rerr)
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

// send writes what is left of r.wb; it asks the poller to wait when the
// socket's buffer is full.
func (r *rawIO) send(fd uintptr) bool {
	for r.wn < len(r.wb) {
		p := r.wb[r.wn:]
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch e {
		case 0:
			r.wn += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

// Write writes all of b, as net.Conn's Write.
func (r *rawIO) Write(b []byte) (int, error) {
	r.wb, r.wn, r.werr = b, 0, nil
	err := r.rc.Write(r.sendFn)
	n := r.wn
	r.wb = nil
	switch {
	case r.werr != nil:
		return n, os.NewSyscallError("write", r.werr)
	case err != nil:
		return n, err
	}
	return n, nil
}
