package proxy

import (
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A pump carries one direction of a plain TCP tunnel once its source has
// sent more than once: the source's reads and the writes to the other side
// run inside one long wait of Go's poller on the source (RawConn.Read), and
// a read that drains the socket is not followed by another read that
// would find nothing: the pump waits for the poller instead. That read
// (two a request in a request-response tunnel, one each way) is what Go's
// own Read makes, because a new Read forgets the readiness the poller saw
// before it began. Inside one RawConn.Read nothing is forgotten: readiness
// that comes while the pump reads or writes is kept for its next wait.
//
// What a read that drains the socket can still miss is an end merged into
// the wake-up that brought its bytes:
//   - a FIN: the reads ask the kernel for the TCP_INQ hint, which is not 0
//     while a FIN is unread, so the pump reads on and sees the EOF;
//   - a reset (or another socket error) right behind the bytes: no hint
//     tells it. The tunnel watch looks at every pump waiting so for
//     longer than watchEvery (a byte peeked, one system call) and wakes
//     the pump of a socket that has ended or failed; a reset is then seen
//     within two ticks (HAProxy sees it at once).
//
// A read that fills the buffer starts a burst, spliced while it lasts
// (splice.go).
//
// A pump waiting past watchEvery costs the watch's one look instead of the
// read that found nothing: a sparse tunnel pays about what it did (the
// look, from another goroutine, a little more: BenchmarkTCPSparse), a
// busy one two system calls a request less.
type pump struct {
	src, dst *side
	dl       *deadlines
	buf      []byte
	n        int64     // bytes written to dst
	now      time.Time // when the last chunk came
	rerr     unix.Errno
	eof      bool
	werr     error
	fn       func(fd uintptr) bool

	// recvmsg's arguments, made once; inq is the last read's TCP_INQ
	// hint.
	msg unix.Msghdr
	iov unix.Iovec
	oob [32]byte
	inq int

	// A burst's splicing (splice.go): its pipe (nil when not in a
	// burst), the bytes in it still to move and spliceOut's failure.
	pipe  *splicePipe
	left  int
	serr  unix.Errno
	outFn func(fd uintptr) bool

	// waitAt is when the pump began waiting after a read that drained
	// the socket (mono; 0 while it is not so waiting): the watch's.
	waitAt atomic.Int64
	looked int64 // the waitAt the watch last looked at; the watch's own
	// lookErr is a socket error the watch's look took (an unix.Errno);
	// looking is set while a look is under way.
	lookErr atomic.Uint32
	looking atomic.Bool
	idx     int // in watch.pumps, under watch.mu
	lookFn  func(fd uintptr)
}

// startPump turns src's reads into a pump writing to dst, or returns nil
// when the tunnel is not plain TCP both ways or src's socket gives no
// TCP_INQ hint.
func startPump(src, dst *side, dl *deadlines, buf []byte) *pump {
	if src.io == nil || dst.io == nil {
		return nil
	}
	var serr error
	if err := src.io.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_TCP, unix.TCP_INQ, 1)
	}); err != nil || serr != nil {
		return nil
	}
	pumpsStarted.Add(1)
	p := &pump{src: src, dst: dst, dl: dl, buf: buf}
	p.fn = p.pumpRead
	p.lookFn = p.look
	watch.add(p)
	return p
}

// pumpsStarted counts the pumps started, watchKicks the waits the watch
// ended (for tests).
var pumpsStarted, watchKicks atomic.Int64

// stop takes p off the watch and gives back a burst's pipe.
func (p *pump) stop() {
	watch.remove(p)
	p.endBurst()
}

// run pumps until the source ends, fails or reaches its read deadline, or
// a write to dst fails: k is the bytes written to dst, werr the write's
// failure, err the source's (io.EOF at its end).
func (p *pump) run() (k int64, werr, err error) {
	p.n, p.rerr, p.eof, p.werr = 0, 0, false, nil
	if e := p.takeLookErr(); e != 0 {
		return 0, nil, os.NewSyscallError("recvmsg", e)
	}
	err = p.src.io.rc.Read(p.fn)
	p.waitAt.Store(0)
	switch {
	case p.werr != nil:
		return p.n, p.werr, nil
	case err != nil:
	case p.rerr != 0:
		err = os.NewSyscallError("recvmsg", p.rerr)
	case p.eof:
		err = io.EOF
	}
	return p.n, nil, err
}

// pumpRead is the source's read callback: read, write on, and wait for the
// poller once a read drained the socket (see pump).
func (p *pump) pumpRead(fd uintptr) bool {
	p.waitAt.Store(0)
	for {
		if p.pipe != nil {
			if on, done := p.splice(fd); !on {
				return done
			}
			continue
		}
		n, e := p.recv(fd)
		switch {
		case e == unix.EAGAIN:
			// Nothing (the first read of a wait, or bytes already read
			// when the poller told of them): an end from now on wakes
			// the poller.
			return false
		case e != 0:
			p.rerr = e
			return true
		case n == 0:
			p.atEnd()
			return true
		}
		p.now = time.Now()
		src := p.src
		if err := src.forward(p.dst, p.buf[:n], p.now, p.dl); err != nil {
			p.werr = err
			return true
		}
		p.n += int64(n)
		p.dl.read(src.c, p.now.Add(src.idle), src.idle/8)
		if p.inq == 0 {
			// Drained, and no FIN behind the bytes: wait for the poller.
			p.waitAt.Store(int64(monoOf(p.now)))
			watch.wake()
			return false
		}
		if n == len(p.buf) {
			// The buffer filled and more waits: a large transfer,
			// spliced from now on while it lasts (splice.go), unless no
			// pipe is free.
			if p.pipe = getPipe(); p.pipe != nil && p.outFn == nil {
				p.outFn = p.spliceOutFd
			}
		}
	}
}

// splice moves one chunk of a burst (splice.go): on reports whether the
// pump goes on, else done is pumpRead's result. It ends the burst when the
// socket is drained (the next read, a recvmsg, tells then whether a FIN
// follows, or finds nothing and waits), ends, or fails.
func (p *pump) splice(fd uintptr) (on, done bool) {
	n, e := p.spliceIn(fd)
	switch {
	case e == unix.EAGAIN:
		// Nothing left: the poller tells of what comes next.
		p.endBurst()
		return false, false
	case e != 0:
		p.endBurst()
		p.rerr = e
		return false, true
	case n == 0:
		p.endBurst()
		p.atEnd()
		return false, true
	}
	p.now = time.Now()
	src, dst := p.src, p.dst
	src.toward(dst, p.now, p.dl)
	if err := p.spliceOut(n); err != nil {
		p.endBurst()
		p.werr = err
		return false, true
	}
	dst.touch(p.now)
	p.n += int64(n)
	p.dl.read(src.c, p.now.Add(src.idle), src.idle/8)
	if n < p.pipe.size {
		p.endBurst()
	}
	return true, false
}

// recv is recvmsg(2) into p.buf with the TCP_INQ hint in p.inq (1 when it
// is missing: as if bytes were left), again after EINTR.
func (p *pump) recv(fd uintptr) (int, unix.Errno) {
	p.iov.Base = unsafe.SliceData(p.buf)
	p.iov.SetLen(len(p.buf))
	p.msg.Iov = &p.iov
	p.msg.Iovlen = 1
	p.msg.Control = &p.oob[0]
	p.msg.SetControllen(len(p.oob))
	p.msg.Flags = 0
	for {
		n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&p.msg)), 0)
		if e == unix.EINTR {
			continue
		}
		p.inq = 1
		if e == 0 && p.msg.Controllen >= unix.SizeofCmsghdr+4 {
			h := (*unix.Cmsghdr)(unsafe.Pointer(&p.oob[0]))
			if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
				p.inq = int(*(*int32)(unsafe.Pointer(&p.oob[unix.SizeofCmsghdr])))
			}
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}

// look is the watch's look at a pump that has waited since a read that
// drained its socket: a byte peeked without waiting. Bytes, or nothing
// yet, need nothing (the poller tells the pump of bytes); an end (a FIN
// the pump was not told of) or an error (a reset: the peek takes the
// socket's error, so it is kept for the pump in lookErr) ends the wait at
// once, through a read deadline in the past (the pump then reads first,
// or reports lookErr).
func (p *pump) look(fd uintptr) {
	var b [1]byte
	p.looking.Store(true)
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == unix.EAGAIN, e == unix.EINTR, e == 0 && n > 0:
		p.looking.Store(false)
		return
	case e != 0:
		p.lookErr.Store(uint32(e))
	}
	p.looking.Store(false)
	watchKicks.Add(1)
	p.src.c.SetReadDeadline(time.Unix(1, 0))
}

// takeLookErr is the error the watch took from the socket, if any.
func (p *pump) takeLookErr() unix.Errno { return unix.Errno(p.lookErr.Swap(0)) }

// atEnd records the source's end, read by the pump: its EOF, unless the
// watch took a reset's error first. A look under way may have taken it,
// leaving the end for the pump to read, and not stored it yet: atEnd waits
// for the look (one system call).
func (p *pump) atEnd() {
	for p.looking.Load() {
		runtime.Gosched()
	}
	if p.rerr = p.takeLookErr(); p.rerr == 0 {
		p.eof = true
	}
}

// watchEvery is how often the tunnel watch looks at the pumps.
const watchEvery = 10 * time.Millisecond

// tunnelWatch looks at waiting pumps (see pump). It ticks only while a
// pump has waited since a drained read unlooked-at; otherwise it sleeps
// until one begins such a wait (wake).
type tunnelWatch struct {
	mu      sync.Mutex
	pumps   []*pump
	started bool
	armed   atomic.Bool   // ticking; a pump that begins a wait wakes it if not
	kick    chan struct{} // wakes a sleeping watch
	due     []*pump       // the watch goroutine's own
}

var watch = tunnelWatch{kick: make(chan struct{}, 1)}

func (w *tunnelWatch) add(p *pump) {
	w.mu.Lock()
	p.idx = len(w.pumps)
	w.pumps = append(w.pumps, p)
	if !w.started {
		w.started = true
		w.armed.Store(true)
		go w.run()
	}
	w.mu.Unlock()
}

func (w *tunnelWatch) remove(p *pump) {
	w.mu.Lock()
	last := len(w.pumps) - 1
	w.pumps[p.idx] = w.pumps[last]
	w.pumps[p.idx].idx = p.idx
	w.pumps[last] = nil
	w.pumps = w.pumps[:last]
	w.mu.Unlock()
}

// wake tells a sleeping watch that a pump began a wait (after storing its
// waitAt: the watch disarms before its last scan, so one of the two sees
// the other).
func (w *tunnelWatch) wake() {
	if !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

func (w *tunnelWatch) run() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		<-t.C
		if w.scan(true) {
			continue
		}
		// Nothing waits unlooked-at: disarm, then scan again (a pump
		// that began its wait before the disarm is seen here, one after
		// it wakes the watch).
		w.armed.Store(false)
		if w.scan(false) {
			w.armed.Store(true)
			continue
		}
		<-w.kick
		t.Reset(watchEvery)
	}
}

// scan looks at the pumps that have waited longer than watchEvery (look:
// false only notes them) and reports whether a pump waits unlooked-at.
func (w *tunnelWatch) scan(look bool) bool {
	now := int64(monoOf(time.Now()))
	pending := false
	w.mu.Lock()
	for _, p := range w.pumps {
		at := p.waitAt.Load()
		if at == 0 || at == p.looked {
			continue
		}
		pending = true
		if look && now-at >= int64(watchEvery) {
			p.looked = at
			w.due = append(w.due, p)
		}
	}
	w.mu.Unlock()
	for i, p := range w.due {
		p.src.io.rc.Control(p.lookFn)
		w.due[i] = nil
	}
	w.due = w.due[:0]
	return pending
}
