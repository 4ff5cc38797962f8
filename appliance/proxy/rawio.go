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
// at a time, as on a net.Conn; the read and write halves share nothing,
// except in SendThenRead, which writes from inside its read and so must
// not run beside a Write.
type rawIO struct {
	rc syscall.RawConn
	// The callbacks' arguments and results, so that no closure is made
	// per call (a closure passed to RawConn escapes: an allocation).
	rb, wb         []byte
	rn, wn         int
	rerr, werr     error
	readFn, sendFn func(fd uintptr) bool
	pastFn         func(fd uintptr) // readFn for Control (ReadPast); made on its first use
	rop            readOp           // what readFn does; the reading goroutine's
	sent           bool             // opSendRead: the write is done
	done           sentHook
}

// sentHook is told, from inside the read's wait, that SendThenRead's
// write is done: n bytes written, err its failure (nil: all of them).
type sentHook interface{ sent(n int, err error) }

// readOp is what a rawIO's read callback does.
type readOp uint8

const (
	opRead     readOp = iota // read, waiting for bytes
	opReadNow                // read what is there, without waiting
	opSendRead               // write wb, then read as opRead
)

// newRawIO returns c's rawIO.
func newRawIO(c *net.TCPConn) *rawIO {
	r := &rawIO{}
	r.bind(rawConn(c))
	return r
}

// rawStream is a socket whose reads and writes are a rawIO's: the socket
// under a tls.Conn (which reads under its input lock and writes under its
// output lock, one of each at a time, as rawIO wants), to a server
// directly and under tlsRaw from a client.
type rawStream struct {
	*net.TCPConn
	io *rawIO
}

func newRawStream(c *net.TCPConn) *rawStream { return &rawStream{TCPConn: c, io: newRawIO(c)} }

func (r *rawStream) Read(b []byte) (int, error)  { return r.io.Read(b) }
func (r *rawStream) Write(b []byte) (int, error) { return r.io.Write(b) }

// rawConn is c's raw connection. SyscallConn fails only for a nil or
// unopened net.TCPConn, which the proxy never has: a fault of ours.
func rawConn(c *net.TCPConn) syscall.RawConn {
	rc, err := c.SyscallConn()
	if err != nil {
		panic("proxy: a socket without its raw connection: " + err.Error())
	}
	return rc
}

// bind points r at rc; r's read and write callbacks are made once, on its
// first bind (ReadPast's on its first call: only the http path uses it).
func (r *rawIO) bind(rc syscall.RawConn) {
	r.rc = rc
	if r.readFn == nil {
		r.readFn, r.sendFn = r.read, r.send
	}
}

// sysRead is read(2) as a raw system call (see rawIO), again after EINTR.
func sysRead(fd uintptr, b []byte) (int, unix.Errno) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		if e != unix.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(n), 0
		}
	}
}

func (r *rawIO) read(fd uintptr) bool {
	if r.rop == opSendRead && !r.sent {
		// The write first, from inside the read's wait (sendThenRead
		// says why); the read is tried when the poller says there is
		// something to read.
		r.sent = true
		if !r.send(fd) {
			// The socket's buffer is full: wait for room.
			if err := r.rc.Write(r.sendFn); err != nil {
				r.werr = err
			}
		}
		if r.done != nil {
			r.done.sent(r.wn, r.werr)
		}
		return r.werr != nil
	}
	n, e := sysRead(fd, r.rb)
	switch {
	case e == unix.EAGAIN && r.rop != opReadNow:
		return false
	case e != 0:
		r.rn, r.rerr = 0, e
	default:
		r.rn, r.rerr = n, nil
	}
	return true
}

// readAs runs the poller's read with readFn doing op into b; the results
// are left in r.rn and r.rerr (r.werr for opSendRead's write).
func (r *rawIO) readAs(op readOp, b []byte) error {
	r.rb, r.rop = b, op
	err := r.rc.Read(r.readFn)
	r.rb = nil
	return err
}

// Read reads into b, as net.Conn's Read.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	err := r.readAs(opRead, b)
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

// ReadNow reads what the socket holds into b without waiting for more: 0
// and no error when it holds nothing; the error itself (an unix.Errno)
// when the read fails; io.EOF at the end.
func (r *rawIO) ReadNow(b []byte) (int, error) {
	return r.readNowResult(r.readAs(opReadNow, b), b)
}

// ReadPast is ReadNow whatever the read deadline: a look at what came
// after a wait that ended at its deadline.
func (r *rawIO) ReadPast(b []byte) (int, error) {
	if r.pastFn == nil {
		r.pastFn = func(fd uintptr) { r.read(fd) }
	}
	r.rb, r.rop = b, opReadNow
	err := r.rc.Control(r.pastFn)
	r.rb = nil
	return r.readNowResult(err, b)
}

// readNowResult is what ReadNow returns after a read into b that the
// poller's call ended with err.
func (r *rawIO) readNowResult(err error, b []byte) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case r.rerr == unix.EAGAIN:
		return 0, nil
	case r.rerr != nil:
		return 0, r.rerr
	case r.rn == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

// SendThenRead writes out and reads the answer into b, with the write
// made from inside the read's wait, as sendThenRead does: werr is the
// write's error (nothing was read), err the read's (io.EOF when the peer
// closed). The socket's deadlines apply. done, if not nil, is told when
// the write is done, before the wait; it is not told at all when the wait
// could not begin (err is then the deadline's, or the socket closed, and
// nothing was written).
func (r *rawIO) SendThenRead(out, b []byte, done sentHook) (n int, werr, err error) {
	r.wb, r.wn, r.werr, r.sent, r.done = out, 0, nil, false, done
	err = r.readAs(opSendRead, b)
	r.wb, r.done = nil, nil
	switch {
	case r.werr != nil:
		return 0, r.werr, nil
	case err != nil: // the deadline, or the socket closed
		return 0, nil, err
	case r.rerr != nil:
		return 0, nil, os.NewSyscallError("read", r.rerr)
	case r.rn <= 0:
		return 0, nil, io.EOF
	}
	return r.rn, nil, nil
}
