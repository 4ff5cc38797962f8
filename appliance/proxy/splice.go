package proxy

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A pump splices a large transfer: once a read has filled the copy buffer
// and the TCP_INQ hint says more waits, the pump moves the source's bytes
// into a pipe and from the pipe to the other side with splice(2), so the
// bytes are not copied into the proxy and out again (the kernel passes
// references to the pages), until the socket is drained; then it reads
// again (the hint, see pump). HAProxy splices with `option splice-auto` or `splice-response`
// (its default is not to). Small exchanges never splice: for them a read
// and a write are cheaper than two splices.
//
// Pipes are shared: a burst takes one and gives it back empty when it
// ends. At most maxPipes are open (a burst beyond that copies, as HAProxy
// does past its maxpipes), at most maxFreePipes kept for the next burst.
// A pipe holds at most its size of a direction's bytes (moved out of the
// source's socket buffer) while the other side is slow.

const (
	maxPipes     = 1024
	maxFreePipes = 32
	// pipeSize is what each pipe is grown to (F_SETPIPE_SZ): a splice
	// moves up to this much, and on a real NIC each arriving segment
	// takes one of the pipe's slots (a default 64 KiB pipe has 16).
	pipeSize = 256 << 10
	// minPipeSize is the least a pipe worth splicing through holds. The
	// kernel makes smaller ones (two pages) for a user past its pipe
	// quota (fs.pipe-user-pages-soft, 64 MiB; a process without
	// CAP_SYS_RESOURCE, as halbd on the appliance, counts against it):
	// then no more pipes are made and bursts copy.
	minPipeSize = 64 << 10
)

// splicePipe is one pipe: r its read end, w its write end, size its
// capacity.
type splicePipe struct {
	r, w int
	size int
}

var pipes = struct {
	mu    sync.Mutex
	free  []*splicePipe
	open  int
	limit int // maxPipes, or fewer once the kernel gave a small pipe
}{limit: maxPipes}

// splicedBytes counts the bytes the pumps spliced (for tests).
var splicedBytes atomic.Int64

// getPipe returns an empty pipe, or nil when maxPipes are open or none
// can be made.
func getPipe() *splicePipe {
	pipes.mu.Lock()
	if n := len(pipes.free); n > 0 {
		p := pipes.free[n-1]
		pipes.free[n-1] = nil
		pipes.free = pipes.free[:n-1]
		pipes.mu.Unlock()
		return p
	}
	if pipes.open >= pipes.limit {
		pipes.mu.Unlock()
		return nil
	}
	pipes.open++
	pipes.mu.Unlock()
	var fd [2]int
	if err := unix.Pipe2(fd[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		pipes.mu.Lock()
		pipes.open--
		pipes.mu.Unlock()
		return nil
	}
	p := &splicePipe{r: fd[0], w: fd[1]}
	// Growing may be refused (fs.pipe-max-size, or the user's pipe
	// quota): the pipe is then used at the size it has, if that is worth
	// it.
	if n, err := unix.FcntlInt(uintptr(fd[1]), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		p.size = n
	} else if n, err := unix.FcntlInt(uintptr(fd[1]), unix.F_GETPIPE_SZ, 0); err == nil {
		p.size = n
	}
	if p.size < minPipeSize {
		closePipe(p)
		pipes.mu.Lock()
		pipes.limit = pipes.open
		pipes.mu.Unlock()
		return nil
	}
	return p
}

// putPipe gives back an empty pipe.
func putPipe(p *splicePipe) {
	pipes.mu.Lock()
	if len(pipes.free) < maxFreePipes {
		pipes.free = append(pipes.free, p)
		pipes.mu.Unlock()
		return
	}
	pipes.mu.Unlock()
	closePipe(p)
}

// closePipe closes a pipe that may hold bytes (a burst that failed).
func closePipe(p *splicePipe) {
	unix.Close(p.r)
	unix.Close(p.w)
	pipes.mu.Lock()
	pipes.open--
	pipes.mu.Unlock()
}

// pipesOpen is how many pipes are open, and how many of them are free
// (for tests).
func pipesOpen() (open, free int) {
	pipes.mu.Lock()
	defer pipes.mu.Unlock()
	return pipes.open, len(pipes.free)
}

// spliceFlags: neither end waits (the socket is non-blocking too); the
// pages are moved where the kernel can.
const spliceFlags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE

// sysSplice is splice(2) from in to out of at most n bytes, again after
// EINTR, as a raw system call (see rawIO).
func sysSplice(in, out uintptr, n int) (int, unix.Errno) {
	for {
		k, _, e := unix.RawSyscall6(unix.SYS_SPLICE, in, 0, out, 0, uintptr(n), spliceFlags)
		if e != unix.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(k), 0
		}
	}
}

// spliceIn moves what the source's socket fd holds into the burst's pipe.
func (p *pump) spliceIn(fd uintptr) (int, unix.Errno) {
	return sysSplice(fd, uintptr(p.pipe.w), p.pipe.size)
}

// spliceOut moves the pipe's p.left bytes to the other side, waiting in
// the poller while its socket buffer is full (as rawIO.Write); the pipe is
// empty when it returns nil.
func (p *pump) spliceOut(n int) error {
	p.left, p.serr = n, 0
	err := p.dst.io.rc.Write(p.outFn)
	switch {
	case p.serr != 0:
		return os.NewSyscallError("splice", p.serr)
	case err != nil:
		return err
	}
	splicedBytes.Add(int64(n))
	return nil
}

// spliceOutFd is spliceOut's write callback.
func (p *pump) spliceOutFd(fd uintptr) bool {
	for p.left > 0 {
		k, e := sysSplice(uintptr(p.pipe.r), fd, p.left)
		switch e {
		case 0:
			p.left -= k
		case unix.EAGAIN:
			return false
		default:
			p.serr = e
			return true
		}
	}
	return true
}

// endBurst gives the burst's pipe back: empty unless bytes are stuck in it
// (the other side failed), when it is closed.
func (p *pump) endBurst() {
	if p.pipe == nil {
		return
	}
	if p.left > 0 {
		closePipe(p.pipe)
	} else {
		putPipe(p.pipe)
	}
	p.pipe, p.left = nil, 0
}
