package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/config"
	"halb/appliance/logs"
	"halb/appliance/proxy/h1"
)

// maxResponseHead bounds a server's response head (HAProxy's bufsize);
// larger heads get 502.
const maxResponseHead = copyBufSize

// expectWait is how long a request with Expect: 100-continue waits for the
// server's interim response before its body is sent anyway.
const expectWait = time.Second

// respBufSize is the first server buffer of a request: a response head and
// a small body fit; longer bodies switch to copyBufSize.
const respBufSize = 8 << 10

// httpConn is one client connection in http mode. It holds a work area
// (buffers, parsed heads) and an access record only while a request is in
// progress; between requests, and while a slow client's head is
// unfinished, it is parked (see parker) with no goroutine, no buffer and
// no record. Every idle connection costs its httpConn, so it is kept
// small (TestHTTPConnSize): fields are ordered to leave no padding.
type httpConn struct {
	s  *service
	st *serviceState // of the current request
	c  *net.TCPConn  // the socket (nil while parked detached)
	t  *tlsClient    // nil: no TLS
	*work
	rec     *requestRecord // the request's record, once it has one
	client  netip.AddrPort
	proxied *proxiedAddrs // the addresses a PROXY header gave; nil: the socket's
	partial []byte        // an unfinished head kept while parked
	dl      deadlines     // of c

	// The request in progress is begun once its first byte is here
	// (firstByte: TR and Ta count from then); its record starts at
	// recStart: when the connection was accepted, or when the previous
	// request ended (logged: a wall-clock time).
	recStart     int64 // wall clock, unix nanoseconds (it is only logged)
	firstByte    mono
	headDeadline mono // the current head must be complete by then
	begun        bool
	first        bool // no request served yet
	parkedHead   bool // parked waiting for the rest of a head
	refused      bool // answered with an error: linger before closing
	pipelines    bool // sent a request before the previous one's answer
}

// requestRecord is the access record of a request in progress, with the
// backend and server it went to for the counters. It is pooled: a
// connection takes one when its request first has something to record
// and gives it back when the request ends.
type requestRecord struct {
	logs.Access
	be  *backend
	srv *server
	// The request line's host and path of the last record made with this
	// one: a client asking again for the same costs no allocation.
	lastHost, lastPath string
}

var recordPool = sync.Pool{New: func() any { return new(requestRecord) }}

// proxiedAddrs are the client's and the destination's addresses from a
// PROXY protocol header.
type proxiedAddrs struct{ client, dst netip.AddrPort }

// dst is the address the client connected to: what its PROXY header
// said, or the socket's (asked only when a server is dialed: a connection
// does not keep it).
func (h *httpConn) dst() netip.AddrPort {
	if h.proxied != nil {
		return h.proxied.dst
	}
	return addrPort(h.c.LocalAddr())
}

// waitingConn is what a connection waiting for its next request keeps while
// it is parked detached: what its httpConn needs to go on (a new one is
// made when it resumes), 48 bytes against the httpConn's 160. Its client's
// address comes back with the socket's (or from the PROXY header).
type waitingConn struct {
	s            *service
	proxied      *proxiedAddrs
	recStart     int64
	headDeadline mono
	first        bool
}

// waiting is h as a waitingConn: h has no request begun, no bytes held, no
// TLS and no socket (all of which the waitingConn would lose).
func (h *httpConn) waiting() *waitingConn {
	return &waitingConn{s: h.s, proxied: h.proxied, recStart: h.recStart, headDeadline: h.headDeadline, first: h.first}
}

// conn is the httpConn ic was made from by waiting, without its socket,
// client address or anything else waiting requires h not to hold. A field
// added to waitingConn goes in both.
func (ic *waitingConn) conn() *httpConn {
	return &httpConn{s: ic.s, proxied: ic.proxied, recStart: ic.recStart, headDeadline: ic.headDeadline, first: ic.first}
}

// unpark makes the connection's httpConn again and hands it the socket.
func (ic *waitingConn) unpark(c *net.TCPConn, timedOut bool) {
	h := ic.conn()
	switch {
	case ic.proxied != nil:
		h.client = ic.proxied.client
	case c != nil:
		h.client = addrPort(c.RemoteAddr())
	}
	h.unpark(c, timedOut)
}

// record returns the record of the request in progress, taking one that
// starts at recStart if it has none yet.
func (h *httpConn) record() *requestRecord {
	if h.rec == nil {
		r := recordPool.Get().(*requestRecord)
		r.Access = newRecord(time.Unix(0, h.recStart), h.client, h.s.name, true)
		if h.t != nil {
			h.t.info.record(&r.Access)
			if !h.first {
				r.Handshake = 0
			}
		}
		h.rec = r
	}
	return h.rec
}

// work is the per-request state, pooled.
type work struct {
	hb   *[]byte // client bytes: the head, then body and pipelined bytes
	buf  []byte
	r, w int

	ob   *[]byte // heads written out
	sb   *[]byte // server bytes
	vec  net.Buffers
	req  h1.Request
	resp h1.Response
	ch   h1.Chunked

	bodySent int64 // Content-Length body bytes that went with the head

	// ipKey holds the client's address as the source balancer's key
	// (here, not on the stack of exchange: the key outlives the call
	// that makes it, so it would escape, an allocation per request).
	ipKey [16]byte
	// cio is the client socket's raw I/O, for cioOf (clientIO).
	cio   rawIO
	cioOf *net.TCPConn

	// pending is the last write of a response kept back (in ob) to be
	// made from inside the wait for the next request (readSoon), under
	// the config pendingSt of the request it answers; nil: none.
	pending   []byte
	pendingSt *serviceState
}

var workPool = sync.Pool{New: func() any { return new(work) }}

// exchange outcome.
type outcome int

const (
	keepAlive outcome = iota // read the next request
	closeConn                // done; close the client connection
)

// headState is what readHead did.
type headState int

const (
	headReady  headState = iota // h.req holds a complete head
	headFailed                  // answered (or gone): close
	headParked                  // parked until more bytes come
)

func (h *httpConn) serve(pre []byte, accepted time.Time) {
	h.recStart = accepted.UnixNano()
	h.first = true
	h.st = h.s.state.Load()
	h.headDeadline = monoOf(time.Now().Add(h.st.cfg.Timeouts.HTTPRequest.D()))
	if len(pre) > 0 {
		h.partial = append([]byte(nil), pre...)
	}
	h.run()
}

// close ends the connection, and the request in progress if any; after a
// refusal it lingers first.
func (h *httpConn) close() {
	h.flush()
	h.finish()
	if h.refused {
		h.linger()
	}
	h.releaseWork()
	h.conn().Close()
	h.s.stats.active.Add(-1)
}

// Lingering close: how long, and how many bytes, a refused client may
// still send before its connection is closed.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// linger lets the answer to a refused request reach the client. Closing a
// socket with unread bytes resets the connection, and on a real network
// the reset can overtake the answer, which the client then never reads.
// So the write side is shut (the client reads the answer, then EOF) and
// what the client still sends is read and dropped until it closes, or for
// lingerTime or lingerBytes at most.
func (h *httpConn) linger() {
	if h.conn().CloseWrite() != nil {
		return
	}
	var small [512]byte
	b := small[:]
	if h.work != nil && len(h.buf) > len(b) {
		b = h.buf
	}
	h.dl.read(h.c, time.Now().Add(lingerTime), 0)
	for n := 0; n < lingerBytes; {
		m, err := h.conn().Read(b)
		n += m
		if err != nil {
			return
		}
	}
}

// run serves requests until the connection ends or parks.
func (h *httpConn) run() {
	for {
		st := h.s.state.Load()
		h.st = st
		t := st.cfg.Timeouts
		fresh := false // waited for the bytes of a new request
		if h.work == nil || h.r == h.w {
			if len(h.partial) == 0 {
				idle := t.HTTPKeepAlive.D()
				if h.first {
					idle = time.Until(h.headDeadline.time())
				}
				// A busy keep-alive client sends its next request soon:
				// read it into the buffer still at hand. Only a client
				// idle for parkAfter gives the buffer back and parks.
				got, gone, waited := h.readSoon(min(idle, parkAfter))
				if gone {
					h.close()
					return
				}
				if !got {
					h.releaseWork() // an idle connection holds no buffer
					if waited {
						idle -= parkAfter
					}
					switch h.wait(idle, !waited, false) {
					case waitParked:
						return
					case waitGone:
						h.close()
						return
					}
				}
				fresh = true
			}
		}
		if !h.begun {
			// The request's first bytes are here (or the client closed:
			// readHead then drops a request without a byte).
			now := time.Now()
			h.begun, h.firstByte = true, monoOf(now)
			if fresh && !h.first {
				h.headDeadline = monoOf(now.Add(t.HTTPRequest.D()))
			}
		}
		switch h.readHead(st) {
		case headParked:
			return
		case headFailed:
			h.close()
			return
		}
		// The request is routed by the config in force now that its head
		// is here, not by the one of when the connection began waiting.
		st = h.s.state.Load()
		h.st = st
		start := time.Now()
		h.record().Request = start.Sub(h.firstByte.time())
		out := h.exchange(st, start)
		if h.kept() && h.r < h.w {
			// The next request is here already: answer this one now,
			// and keep no answer back on this connection again (see
			// response).
			h.pipelines = true
			if !h.flush() {
				h.close()
				return
			}
		}
		if !h.kept() {
			h.finish() // else sent does, once the answer is written
		}
		if out != keepAlive {
			h.close()
			return
		}
		h.first = false
	}
}

type waitResult int

const (
	waitReady  waitResult = iota // bytes (or EOF) to read
	waitParked                   // parked: resumes with run, or onTimeout
	waitGone                     // timed out or failed: close
)

// readSoon reads the next bytes into the work buffer if they come within
// d (when there is a work buffer: waited). It reports whether bytes came,
// and gone when the client closed or failed. A response kept back
// (pending) is written first, from inside the read's wait: the client
// sends its next request only once it has the answer, so the poller
// reports that request's arrival and the read comes after it, where a read
// tried first finds nothing (HAProxy's count of reads: one a request).
func (h *httpConn) readSoon(d time.Duration) (got, gone, waited bool) {
	if h.work == nil || h.hb == nil || d <= 0 {
		return false, !h.flush(), false
	}
	// Only the head buffer waits; the others go back to their pools (ob
	// once the response it holds is written: sent).
	if h.pending == nil {
		putBuf(h.ob)
		h.ob = nil
	}
	putBuf(h.sb)
	h.sb = nil
	h.r, h.w = 0, 0
	h.dl.read(h.c, time.Now().Add(d), d/2)
	var n int
	var err error
	if h.pending != nil {
		var werr error
		n, werr, err = h.clientIO().SendThenRead(h.pending, h.buf, h)
		if werr != nil || !h.flush() { // flush: the wait never began
			return false, true, true
		}
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// Bytes (or the client's close) that came after the
			// request's last read but before the wait began were not
			// reported to it: look before the connection parks. If
			// some are here, the client sends before it has its
			// answers: keep none back for it again.
			if n, err = h.clientIO().ReadPast(h.buf); n > 0 {
				h.pipelines = true
			} else if err == nil {
				err = os.ErrDeadlineExceeded
			}
		}
	} else {
		n, err = h.clientRead(h.buf)
	}
	h.w = n
	if n > 0 {
		return true, false, true
	}
	return false, !errors.Is(err, os.ErrDeadlineExceeded), true
}

// sent ends the request whose response was kept back, once its last
// write is done (n bytes of it; err: it failed).
func (h *httpConn) sent(n int, err error) {
	st := h.pendingSt
	h.pending, h.pendingSt = nil, nil
	putBuf(h.ob)
	h.ob = nil
	h.out(int64(n))
	if err != nil {
		h.record().Termination = byTimeout(err, 'C', 'D')
	}
	h.finishAs(st)
}

// kept reports whether a response is kept back (response).
func (h *httpConn) kept() bool { return h.work != nil && h.pending != nil }

// flush writes the response kept back, if any, and reports whether that
// went well (true when there was none).
func (h *httpConn) flush() bool {
	if !h.kept() {
		return true
	}
	p := h.pending
	n, err := h.clientWrite(p)
	h.sent(n, err)
	return err == nil
}

// wait waits up to d for bytes without a buffer: briefly on the Go
// netpoller first when brief, then parked. head: the wait is for the rest
// of a head (a 408 if d passes while parked).
func (h *httpConn) wait(d time.Duration, brief, head bool) waitResult {
	if d <= 0 {
		return waitGone
	}
	if h.t != nil && h.t.pending() {
		return waitReady
	}
	first := time.Duration(0)
	if brief {
		first = min(d, parkAfter)
		if h.first && !head {
			first = min(d, firstParkAfter)
		}
		h.dl.read(h.c, time.Now().Add(first), 0)
		err := waitReadable(h.c)
		if err == nil {
			return waitReady
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || d <= first {
			return waitGone
		}
	}
	if p := h.s.comp.parker(); p != nil {
		h.releaseWork()
		h.parkedHead = head
		// An idle keep-alive connection keeps no net.TCPConn while
		// parked (unpark gives it a new one), nor its httpConn (a
		// waitingConn holds what it needs); a slow head, which parks
		// again at every byte, keeps both. h is not touched once
		// parked: it may resume at once.
		c := h.c
		h.c = nil
		var owner parkOwner = h
		detach := !head && h.t == nil && h.work == nil && len(h.partial) == 0 && h.rec == nil && !h.begun
		if detach {
			owner = h.waiting()
		}
		if p.park(c, d-first, owner, detach) == nil {
			return waitParked
		}
		h.c = c
		// No descriptor to spare (or the parker is closing): wait
		// with the goroutine.
	}
	h.dl.read(h.c, time.Now().Add(d-first), 0)
	if waitReadable(h.c) == nil {
		return waitReady
	}
	return waitGone
}

// parkedRead takes the bytes of a slow client's head while it is parked,
// on the parker's goroutine: a client that sends its head a byte at a
// time (slowloris, or a slow link) then costs a read and a look at the
// bytes per arrival, not a goroutine and a wake-up. The connection stays
// parked until the head is complete or refused (a line of it invalid),
// reaches its size limit, or the client closes; then run takes it with
// the bytes in partial, as if it had read them itself.
func (h *httpConn) parkedRead(fd int) bool {
	if !h.parkedHead || h.t != nil {
		return false
	}
	lim := h.s.state.Load().cfg.Limits
	room := lim.MaxHeaderBytes - len(h.partial)
	if room <= 0 {
		return false
	}
	var b [256]byte
	n, err := unix.Read(fd, b[:min(len(b), room)])
	if n <= 0 {
		return err == unix.EAGAIN
	}
	from := len(h.partial)
	h.partial = append(h.partial, b[:n]...)
	if len(h.partial) >= lim.MaxHeaderBytes || n == len(b) {
		return false
	}
	// Parsed when a line ended and while the request line is unfinished
	// (it is checked byte by byte), as readHead does: a head still
	// incomplete stays parked, one complete or refused goes to run.
	if bytes.IndexByte(b[:n], '\n') >= 0 || bytes.IndexByte(h.partial[:from], '\n') < 0 {
		req := parkedReqs.Get().(*h1.Request)
		err := h1.ParseRequest(h.partial, headLimits(lim), req)
		hs := req.Headers
		clear(hs) // no references into partial left in the pool
		*req = h1.Request{Headers: hs[:0]}
		parkedReqs.Put(req)
		if !errors.Is(err, h1.ErrIncomplete) {
			return false
		}
	}
	return true
}

// headLimits are the parser's limits on a request head.
func headLimits(l config.Limits) h1.Limits {
	return h1.Limits{MaxLine: l.MaxRequestLine, MaxHeaderBytes: l.MaxHeaderBytes, MaxHeaders: l.MaxHeaders}
}

// parkedReqs are parkedRead's parse results, thrown away: the parse
// only says whether the head is complete, refused or incomplete.
var parkedReqs = sync.Pool{New: func() any { return new(h1.Request) }}

// unpark takes the connection back from the parker: serves what arrived,
// or ends it after its deadline (a head's with 408).
func (h *httpConn) unpark(c *net.TCPConn, timedOut bool) {
	h.c, h.dl = c, deadlines{}
	switch {
	case c == nil: // no descriptor to make it of: the socket is closed
		h.close()
	case timedOut:
		if h.parkedHead {
			h.timeoutHead()
		}
		h.close()
	default:
		h.run()
	}
}

// conn is the client stream: the socket, or TLS over it.
func (h *httpConn) conn() streamConn {
	if h.t != nil {
		return h.t
	}
	return h.c
}

// waitReadable blocks until c has bytes (or EOF) to read, or its read
// deadline passes, without a buffer: the kernel keeps the bytes. It looks
// at every wake-up: the netpoller may report readiness for bytes already
// read (an edge it had not delivered yet).
func waitReadable(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		perr = e
		return true
	})
	if err != nil {
		return err
	}
	return perr
}

// ensureWork takes a work area with a head buffer of at least n bytes,
// holding the saved partial head if any.
func (h *httpConn) ensureWork(n int) {
	if h.work == nil {
		h.work = workPool.Get().(*work)
	}
	if h.hb == nil {
		size := headBufSize
		for size < n || size <= len(h.partial) { // room to read more
			size *= 2
		}
		h.hb = getBuf(size)
		h.buf = *h.hb
		h.r, h.w = 0, copy(h.buf, h.partial)
		h.partial = h.partial[:0] // its array is reused if the head stays unfinished
	}
}

// releaseWork gives the work area back to the pool (not while it holds
// unread client bytes, or a response kept back: flush writes it).
func (h *httpConn) releaseWork() {
	w := h.work
	if w == nil || w.r < w.w || w.pending != nil {
		return
	}
	putBuf(w.hb)
	putBuf(w.ob)
	putBuf(w.sb)
	w.hb, w.buf, w.ob, w.sb = nil, nil, nil, nil
	w.r, w.w = 0, 0
	clear(w.vec)
	w.vec = w.vec[:0]
	w.cio.rc, w.cioOf = nil, nil // no socket kept in the pool
	w.req.Headers = w.req.Headers[:0]
	w.resp.Headers = w.resp.Headers[:0]
	h.work = nil
	workPool.Put(w)
}

// grow makes room after h.w: it moves unread bytes to the front, or
// doubles the buffer up to max. It reports false when the buffer is full
// at max.
func (h *httpConn) grow(max int) bool {
	if h.w < len(h.buf) {
		return true
	}
	if h.r > 0 {
		h.w = copy(h.buf, h.buf[h.r:h.w])
		h.r = 0
		return true
	}
	if len(h.buf) >= max {
		return false
	}
	size := min(2*len(h.buf), max)
	nb := getBuf(size)
	copy(*nb, h.buf[:h.w])
	putBuf(h.hb)
	h.hb, h.buf = nb, *nb
	return true
}

// readHead reads until h.buf[h.r:] starts with a complete request head and
// parses it into h.req. A bad head is answered at once; a late one gets
// 408; a slow client's unfinished head is saved and the connection parked.
//
// It reads what the kernel holds without waiting, so a head larger than the
// buffer that arrived in one piece is read whole before anything waits,
// and it parks only when the kernel has nothing more: a head is refused
// (400, 414, 431) as soon as the bytes that make it bad have arrived.
func (h *httpConn) readHead(st *serviceState) headState {
	lim := headLimits(st.cfg.Limits)
	h.ensureWork(0)
	parse := true // bytes arrived that may complete or refuse the head
	for {
		if parse && h.w > h.r {
			h.req.Headers = h.req.Headers[:0]
			err := h1.ParseRequest(h.buf[h.r:h.w], lim, &h.req)
			if err == nil {
				h.partial = nil
				return headReady
			}
			if !errors.Is(err, h1.ErrIncomplete) {
				status := 400
				var he *h1.Error
				if errors.As(err, &he) {
					status = he.Status
				}
				h.s.stats.badRequests.Add(1)
				h.in(int64(h.w - h.r))
				h.fail(status, stPR)
				return headFailed
			}
		}
		if !h.grow(max(lim.MaxHeaderBytes, headBufSize) + 1) {
			h.s.stats.badRequests.Add(1)
			h.in(int64(h.w - h.r))
			h.fail(431, stPR)
			return headFailed
		}
		from := h.w
		h.dl.read(h.c, h.headDeadline.time(), 0) // a wait may have left a shorter one
		n, err := h.clientReadNow(h.buf[h.w:])
		if n > 0 {
			h.w += n
			// Parsing again is worth it only when a line ended, while
			// the request line is unfinished (it is checked byte by
			// byte), or at the size limit.
			i := bytes.IndexByte(h.buf[from:h.w], '\n')
			parse = i >= 0 || bytes.IndexByte(h.buf[h.r:from], '\n') < 0 || h.w-h.r >= lim.MaxHeaderBytes
			continue
		}
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				h.s.stats.timeouts.Add(1)
				h.in(int64(h.w - h.r))
				h.fail(408, stcR)
			case h.w == h.r:
				h.begun = false // no byte of a request: nothing to record
			default:
				h.in(int64(h.w - h.r))
				h.record().Termination = stCR
			}
			return headFailed // closed or failed before the head was complete
		}
		// The kernel has nothing more: wait for the rest without the
		// buffer, on the netpoller first while the head is young (its next
		// segments are on their way), parked at once when it has been
		// coming for longer than parkAfter: a slow client's every byte
		// would otherwise cost a timer and a second wake-up.
		young := time.Until(h.headDeadline.time()) > st.cfg.Timeouts.HTTPRequest.D()-parkAfter
		h.partial = append(h.partial[:0], h.buf[h.r:h.w]...)
		h.r = h.w
		h.releaseWork()
		switch h.wait(time.Until(h.headDeadline.time()), young, true) {
		case waitParked:
			return headParked
		case waitGone:
			h.timeoutHead()
			return headFailed
		}
		h.ensureWork(0)
		parse = false
	}
}

// redirectText are the reasons of https_redirect's statuses.
var redirectText = map[int]string{301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect"}

// redirectHTTPS answers the request with a redirect of status code to
// https://<Host without port><path>, and closes (lingering) like a refusal:
// a body the client sends is not read. No Host: 400.
func (h *httpConn) redirectHTTPS(st *serviceState, code int) {
	host := string(h.req.Host)
	if host == "" {
		h.fail(400, stPR)
		return
	}
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
		if bytes.IndexByte([]byte(host), ':') >= 0 {
			host = "[" + host + "]"
		}
	}
	r := h.record()
	r.Status, r.Termination = code, stPR
	h.refused = true
	h.s.stats.responses[statusClass(code)].Add(1)
	h.dl.write(h.c, time.Now().Add(time.Second), 0)
	msg := append([]byte("HTTP/1.1 "+strconv.Itoa(code)+" "+redirectText[code]+"\r\nLocation: https://"+host), h.req.Path...)
	msg = append(msg, "\r\nContent-Length: 0\r\nConnection: close\r\n"...)
	msg = append(append(msg, st.respFields...), "\r\n"...)
	n, _ := h.conn().Write(msg)
	h.out(int64(n))
}

// timeoutHead answers 408 to a head that did not complete in time.
func (h *httpConn) timeoutHead() {
	n := len(h.partial)
	if h.work != nil {
		n += h.w - h.r
	}
	if n > 0 {
		h.s.stats.timeouts.Add(1)
		h.in(int64(n))
		h.fail(408, stcR)
	} else {
		h.begun = false // no byte of a request: nothing to record
	}
	h.partial = nil
}

// in and out count bytes from and to the client, in the request's record
// and the service's counters.
func (h *httpConn) in(n int64) {
	h.record().BytesIn += n
	h.s.stats.bytesIn.Add(n)
}

func (h *httpConn) out(n int64) {
	h.record().BytesOut += n
	h.s.stats.bytesOut.Add(n)
}

// finish ends the request in progress, if any: its total time, the
// counters of its backend and server, its access record, which goes back
// to the pool. The next request's record starts now.
func (h *httpConn) finish() { h.finishAs(h.st) }

// finishAs is finish for a request served under the config st.
func (h *httpConn) finishAs(st *serviceState) {
	if h.begun {
		now := time.Now()
		r := h.record()
		r.Total = now.Sub(h.firstByte.time())
		h.s.account(st, &r.Access, r.be, r.srv)
		h.begun, h.recStart = false, now.UnixNano()
	}
	if r := h.rec; r != nil {
		r.be, r.srv = nil, nil
		h.rec = nil
		recordPool.Put(r)
	}
}

// fail answers the client with a short error response, ending the request
// in the termination state term; the connection is closed afterwards.
func (h *httpConn) fail(status int, term [2]byte) {
	r := h.record()
	r.Status, r.Termination = status, term
	h.refused = true
	h.s.stats.responses[statusClass(status)].Add(1)
	h.dl.write(h.c, time.Now().Add(time.Second), 0)
	msg := errorResponse(status)
	if h.st != nil && len(h.st.respFields) > 0 {
		i := bytes.Index(msg, []byte("\r\n")) + 2
		msg = append(append(append(make([]byte, 0, len(msg)+len(h.st.respFields)), msg[:i]...), h.st.respFields...), msg[i:]...)
	}
	n, _ := h.conn().Write(msg)
	h.out(int64(n))
}

// recordRequestLine copies the request line into the access record, before
// the head's bytes are reused: common methods and a host or path equal to
// the previous request's cost no allocation.
func (h *httpConn) recordRequestLine() {
	req, r := &h.req, h.rec
	r.Method = method(req.Method)
	if string(req.Host) != r.lastHost {
		r.lastHost = string(req.Host)
	}
	if string(req.Path) != r.lastPath {
		r.lastPath = string(req.Path)
	}
	r.Host, r.Path = r.lastHost, r.lastPath
	r.Proto = "HTTP/1.1"
	if req.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
}

// method returns m as a string, without allocating for the common ones.
func method(m []byte) string {
	for _, k := range [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"} {
		if string(m) == k {
			return k
		}
	}
	return string(m)
}

// setsField reports whether response_headers replaces the field name.
func (st *serviceState) setsField(name []byte) bool {
	for _, n := range st.respNames {
		if asciiEqualFold(name, n) {
			return true
		}
	}
	return false
}

// route finds the backend for host and path: the first matching route,
// else the default backend.
func (st *serviceState) route(host, path []byte) *backend {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && !bytes.HasSuffix(host, []byte("]")) {
		host = host[:i]
	}
	if st.byHost != nil && len(host) <= maxIndexedHost {
		return st.routeIndexed(host, path)
	}
	for i := range st.routes {
		if r := &st.routes[i]; r.matches(host, path) {
			return r.be
		}
	}
	return st.def
}

// routeIndexMin is how many routes a service needs for route to look its
// exact hosts up in a map rather than try each route in turn; a host
// longer than maxIndexedHost (DNS names have at most 253 bytes) is
// matched by the scan.
const (
	routeIndexMin  = 16
	maxIndexedHost = 255
)

// routeIndexed is route with the index: the first route that matches is
// the first of the host's exact routes and the others, in config order.
func (st *serviceState) routeIndexed(host, path []byte) *backend {
	var lower [maxIndexedHost]byte
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	exact := st.byHost[string(lower[:len(host)])]
	others := st.anyHost
	for len(exact) > 0 || len(others) > 0 {
		var i int32
		if len(others) == 0 || (len(exact) > 0 && exact[0] < others[0]) {
			i, exact = exact[0], exact[1:]
		} else {
			i, others = others[0], others[1:]
		}
		if r := &st.routes[i]; r.matches(host, path) {
			return r.be
		}
	}
	return st.def
}

// matches reports whether a request for host (without port) and path
// takes route r.
func (r *route) matches(host, path []byte) bool {
	if r.host != "" {
		switch {
		case r.domain && asciiEqualFold(host, r.host[1:]):
		case r.wildcard || r.domain:
			if len(host) <= len(r.host) || !asciiEqualFold(host[len(host)-len(r.host):], r.host) {
				return false
			}
		case !asciiEqualFold(host, r.host):
			return false
		}
	}
	if r.path != "" {
		p := path
		if i := bytes.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if string(p) != r.path {
			return false
		}
	}
	return bytes.HasPrefix(path, []byte(r.prefix))
}

// reqInfo is what the exchange needs of the request after its head's
// bytes are reused.
type reqInfo struct {
	head, close, upgrade, http10 bool
	expect100                    bool
	chunked                      bool
	replayable                   bool  // idempotent, no body: may be sent again (RFC 9110 9.2.2)
	length                       int64 // Content-Length, -1 without
}

// exchange proxies the request in h.req to a server and its response
// back. start is when the request began.
func (h *httpConn) exchange(st *serviceState, start time.Time) outcome {
	s := h.s
	req := &h.req
	t := st.cfg.Timeouts
	s.stats.requests.Add(1)
	if st.cfg.AccessLog {
		h.recordRequestLine()
	}
	if code := st.cfg.HTTPSRedirect; code != 0 {
		h.in(int64(req.HeadLen))
		h.redirectHTTPS(st, code)
		return closeConn
	}
	if max := st.cfg.Limits.MaxBodyBytes; max > 0 && req.ContentLength > max {
		s.stats.badRequests.Add(1)
		h.in(int64(req.HeadLen))
		h.fail(413, stPR)
		return closeConn
	}
	be := st.route(req.Host, req.Path)
	if be != nil {
		h.rec.be, h.rec.Backend = be, be.cfg.Name
	}
	if be == nil || len(be.servers) == 0 {
		s.stats.noServer.Add(1)
		h.in(int64(req.HeadLen))
		h.fail(503, stSC)
		return closeConn
	}
	info := reqInfo{head: string(req.Method) == "HEAD", close: req.Close, upgrade: req.Upgrade, http10: req.Minor == 0,
		expect100: req.Expect100, chunked: req.Chunked, length: req.ContentLength,
		replayable: !req.Chunked && req.ContentLength <= 0 && idempotent(req.Method)}

	// The body bytes already read.
	bodyStart := h.r + req.HeadLen
	inBuf := 0
	bodyDone := true
	switch {
	case req.Chunked:
		h.ch.Reset()
		n, done, err := h.ch.Scan(h.buf[bodyStart:h.w])
		if err != nil {
			s.stats.badRequests.Add(1)
			h.in(int64(req.HeadLen))
			h.fail(400, stPR)
			return closeConn
		}
		if max := st.cfg.Limits.MaxBodyBytes; max > 0 && h.ch.BodyBytes() > max {
			s.stats.badRequests.Add(1)
			h.in(int64(req.HeadLen))
			h.fail(413, stPR)
			return closeConn
		}
		inBuf, bodyDone = n, done
	case req.ContentLength > 0:
		inBuf = int(min(req.ContentLength, int64(h.w-bodyStart)))
		bodyDone = int64(inBuf) == req.ContentLength
	}

	// Persistence and hashing inputs.
	var cookieVal []byte
	if be.cookie != "" {
		cookieVal = findCookie(req.Headers, be.cookie)
	}
	var key []byte
	switch be.cfg.Balance {
	case "uri":
		key = req.Path
		if i := bytes.IndexByte(key, '?'); i >= 0 {
			key = key[:i]
		}
	case "source":
		h.ipKey = h.client.Addr().As16()
		key = h.ipKey[:]
	}

	// The request head for the server, with the body bytes already read.
	if h.ob == nil {
		h.ob = getBuf(headBufSize)
	}
	out := h.buildRequest((*h.ob)[:0])
	out = append(out, h.buf[bodyStart:bodyStart+inBuf]...)
	h.in(int64(req.HeadLen + inBuf))
	h.r = bodyStart + inBuf

	x := &attempt{be: be, key: key, cookie: cookieVal, info: info, bodyDone: bodyDone}
	defer x.end()
	for tries := 0; ; tries++ {
		if term, ok := h.connect(st, x, tries > 0); !ok {
			s.stats.noServer.Add(1)
			h.fail(503, term)
			return closeConn
		}
		x.sc.dl.write(x.sc.TCPConn, start.Add(t.Server.D()), t.Server.D()/8)
		// A request whose body is all in out is sent by the first read
		// of the response (see sendThenRead); others are sent now.
		status, got := 0, 0
		x.pending = nil
		if x.bodyDone {
			x.pending = out
		} else if _, err := x.sc.Write(out); err != nil {
			status = statusUnsent
		}
		switch {
		case status != 0:
		case !x.bodyDone && info.expect100:
			// Wait for the server's 100 Continue, but not for long: a
			// server that ignores Expect waits for the body (RFC 9110
			// 10.1.1 lets a client send it anyway, as curl does after 1s).
			status, got = h.readResponseHead(x, min(expectWait, t.Server.D()))
			if status == 504 && got == 0 {
				x.streamed = true
				if !h.sendBody(st, x) {
					return closeConn
				}
				status, got = h.readResponseHead(x, t.Server.D())
			}
		case !x.bodyDone:
			x.streamed = true
			if !h.sendBody(st, x) {
				return closeConn
			}
			fallthrough
		default:
			// A request on a pooled connection that may be sent again
			// is watched for its acknowledgement while another server
			// is left: a server gone since the connection was pooled
			// would otherwise cost the client the whole server timeout.
			x.ackCheck = x.reused && info.replayable && !x.streamed && tries < 3 && x.be.othersLeft(&x.tried, x.srv)
			status, got = h.readResponseHead(x, t.Server.D())
		}
		if status == 0 {
			break
		}
		if status == statusUnsent {
			if x.reused && info.replayable && tries < 3 {
				x.drop()
				continue // a pooled connection the server had closed
			}
			s.stats.serverErrors.Add(1)
			h.fail(502, stSH)
			return closeConn
		}
		if status == statusUnacked {
			// The server's TCP never acknowledged the request: it did
			// not get it (its host or link is gone). Another server
			// takes it; passive checks count it as a failed connection.
			x.tried.add(x.srv.idx)
			if x.be.observe != nil {
				x.be.observe(x.be.cfg.Name, x.srv.name, errUnacked)
			}
			h.s.logLimited("unacked", "request not acknowledged by the server; trying another", "service", s.name, "server", x.srv.name)
			x.drop()
			continue
		}
		if status == 502 && got == 0 && x.reused && info.replayable && tries < 3 {
			x.drop()
			continue // closed while idle in the pool: send again on a new connection
		}
		if status == 504 {
			s.stats.timeouts.Add(1)
		} else {
			s.stats.serverErrors.Add(1)
		}
		if x.be.observeResp != nil {
			err := errBadResponse
			if status == 504 {
				err = errResponseTimeout
			}
			x.be.observeResp(x.be.cfg.Name, x.srv.name, 0, err)
		}
		h.fail(status, x.term)
		return closeConn
	}
	if x.be.observeResp != nil {
		x.be.observeResp(x.be.cfg.Name, x.srv.name, h.resp.Status, nil)
	}
	return h.response(st, x, start)
}

// The response failures passive layer-7 checks are told of.
var (
	errBadResponse     = errors.New("invalid or no response")
	errResponseTimeout = errors.New("no response within timeouts.server")
)

// attempt is one request's server side: the chosen server and connection
// and what has been sent.
type attempt struct {
	be        *backend
	tried     triedSet
	key       []byte
	cookie    []byte
	info      reqInfo
	sess      session
	srv       *server
	sc        *upstream
	reused    bool
	ackCheck  bool // check the request was acknowledged after unackedWait
	bodyDone  bool // the whole request body was sent
	streamed  bool // body bytes were sent beyond the first write: no replay
	reuseOK   bool // the server connection may go back to the pool
	acquired  bool
	pending   []byte    // the request, when readResponseHead sends it
	headBytes int       // response head bytes in sb
	have      int       // response bytes in sb
	sentAt    time.Time // the request was sent (Tr counts from then)
	term      [2]byte   // why readResponseHead failed
}

// drop closes the server connection and ends the session on its server.
func (x *attempt) drop() {
	if x.sc != nil {
		x.sc.Close()
		x.sc = nil
	}
	if x.acquired {
		x.be.release(x.srv)
		x.acquired = false
	}
}

// end gives the connection back to the pool when reusable, else closes it.
func (x *attempt) end() {
	if x.sc != nil && x.reuseOK {
		x.srv.putIdle(x.sc, time.Now())
		x.sc = nil
	}
	x.drop()
}

// connect picks a server and gets a connection to it: a pooled one unless
// fresh, else a new one; a failed connect is retried on another server
// (nothing was sent). It reports false, with the termination state, when
// no server took the request (503).
func (h *httpConn) connect(st *serviceState, x *attempt, fresh bool) ([2]byte, bool) {
	t := st.cfg.Timeouts
	var dialErr error
	for {
		// x.srv is the server of the previous attempt, if any: this one
		// is a retry.
		sess, at, err := x.be.pickTimed(&x.tried, x.key, h.client.Addr(), string(x.cookie), t.Queue.D(), &h.rec.Access, h.s.stats, x.srv)
		if err != nil {
			// The record names the last server tried; its counters
			// take no bytes of a request it never got.
			h.rec.srv = nil
			return noConnection(err, dialErr), false
		}
		x.sess, x.srv = sess, sess.srv
		h.rec.srv = x.srv
		if x.sess.setCookie && string(x.cookie) == x.srv.name {
			x.sess.setCookie = false // the client already names this server
		}
		x.acquired = true
		x.reused = false
		if !fresh {
			// A request that may not be sent twice takes only a connection
			// that was busy very recently: the server is unlikely to
			// have closed it, which would cost a 502.
			maxIdle := idleServerConnMax
			if !x.info.replayable {
				maxIdle = time.Second
			}
			if c := x.srv.getIdle(at, maxIdle); c != nil {
				x.sc, x.reused = c, true
				addTime(&h.rec.Connect, 0) // reached, at no cost
				return stNormal, true
			}
		}
		c, err := x.be.dialTimed(x.srv, x.be.connectTimeout(&x.tried, x.srv, t.Connect.D()), h.client, h.dst(), at, &h.rec.Access)
		if err == nil {
			x.sc = c
			return stNormal, true
		}
		dialErr = err
		x.tried.add(x.srv.idx)
		x.drop()
		h.s.logLimited("connect", "connect to server failed; trying another", "service", h.s.name, "server", x.srv.name, "err", err)
	}
}

// idempotent reports whether a method may be retried automatically.
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// sendBody streams the rest of the request body from the client to the
// server through h.buf; pipelined bytes after a chunked body stay in
// h.buf[h.r:h.w]. It reports false when the exchange cannot go on (the
// client has been answered or is gone).
func (h *httpConn) sendBody(st *serviceState, x *attempt) bool {
	t := st.cfg.Timeouts
	maxBody := st.cfg.Limits.MaxBodyBytes
	remaining := int64(0)
	if !x.info.chunked {
		remaining = x.info.length - h.bodySent
	}
	h.r, h.w = 0, 0
	for {
		h.dl.read(h.c, time.Now().Add(t.Client.D()), t.Client.D()/8)
		room := h.buf[h.w:]
		if !x.info.chunked && int64(len(room)) > remaining {
			room = room[:remaining]
		}
		n, err := h.conn().Read(room)
		if n > 0 {
			h.w += n
			chunk := h.buf[h.r:h.w]
			done := false
			if x.info.chunked {
				k, d, serr := h.ch.Scan(chunk)
				if serr != nil || (maxBody > 0 && h.ch.BodyBytes() > maxBody) {
					h.s.stats.badRequests.Add(1)
					if serr != nil {
						h.fail(400, stPD)
					} else {
						h.fail(413, stPD)
					}
					return false
				}
				chunk, done = chunk[:k], d
			} else {
				remaining -= int64(n)
				done = remaining == 0
			}
			x.sc.dl.write(x.sc.TCPConn, time.Now().Add(t.Server.D()), t.Server.D()/8)
			if _, werr := x.sc.Write(chunk); werr != nil {
				h.s.stats.serverErrors.Add(1)
				h.fail(502, stSH)
				return false
			}
			h.in(int64(len(chunk)))
			h.r += len(chunk)
			if done {
				x.bodyDone = true
				if h.r == h.w {
					h.r, h.w = 0, 0
				}
				return true
			}
			if h.r == h.w {
				h.r, h.w = 0, 0
			}
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				h.s.stats.timeouts.Add(1)
				h.fail(408, stcD)
			} else {
				h.rec.Termination = stCD // the client left during its body
			}
			return false
		}
	}
}

// readResponseHead reads and parses a response head into h.resp; bytes
// already in the server buffer (after a 1xx) are used first. It returns 0,
// or the status to answer with (502, 504) and how many bytes came.
func (h *httpConn) readResponseHead(x *attempt, timeout time.Duration) (int, int) {
	if h.sb == nil {
		h.sb = getBuf(respBufSize)
		x.have = 0
	}
	sb := *h.sb
	lim := h1.Limits{MaxLine: 16 << 10, MaxHeaderBytes: maxResponseHead, MaxHeaders: 1000}
	sent := time.Now()
	x.sentAt = sent // all of the request the server waits for was sent
	ackCheck := x.ackCheck && timeout > unackedWait
	if ackCheck {
		// Up to a quarter early: on a busy connection the deadline is
		// then set only every so often, not for each request.
		x.sc.dl.read(x.sc.TCPConn, sent.Add(unackedWait), unackedWait/4)
	} else {
		x.sc.dl.read(x.sc.TCPConn, sent.Add(timeout), timeout/8)
	}
	got := 0
	for {
		if x.have > 0 {
			h.resp.Headers = h.resp.Headers[:0]
			err := h1.ParseResponse(sb[:x.have], lim, &h.resp)
			if err == nil {
				x.headBytes = h.resp.HeadLen
				return 0, got
			}
			if !errors.Is(err, h1.ErrIncomplete) || x.have == maxResponseHead {
				x.term = stPH
				return 502, got
			}
			if x.have == len(sb) {
				h.swapServerBuf(maxResponseHead, x.have)
				sb = *h.sb
			}
		}
		var n int
		var err error
		if x.pending != nil {
			out := x.pending
			x.pending = nil
			var werr error
			if x.sc.t != nil {
				// TLS: the record is written, then read (no raw shortcut).
				if _, werr = x.sc.Write(out); werr == nil {
					n, err = x.sc.Read(sb[x.have:])
				}
			} else {
				n, werr, err = x.sc.sendThenRead(out, sb[x.have:])
			}
			if werr != nil {
				return statusUnsent, 0
			}
		} else {
			n, err = x.sc.Read(sb[x.have:])
		}
		x.have += n
		got += n
		if n > 0 {
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ackCheck {
					ackCheck = false
					if got == 0 && unacked(x.sc.TCPConn) {
						return statusUnacked, 0
					}
					x.sc.dl.read(x.sc.TCPConn, sent.Add(timeout), timeout/8)
					continue
				}
				x.term = stsH
				return 504, got
			}
			x.term = stSH
			return 502, got
		}
	}
}

// unackedWait is how long (less up to a quarter) a request on a pooled
// connection may go without the server's TCP acknowledging it before it is
// taken elsewhere (see unacked). A live server's kernel acknowledges within
// its delayed-ACK time (at most 200ms on Linux), whatever its application
// is doing.
const unackedWait = 400 * time.Millisecond

// statusUnacked is readResponseHead's answer for a request the server's
// TCP has not acknowledged, statusUnsent for one it could not send (see
// attempt.pending): not HTTP statuses.
const (
	statusUnacked = 1
	statusUnsent  = 2
)

// sendThenRead writes out to u, then reads u's answer into b, with one
// read system call where Write and Read take two: Go's Read tries the
// socket before it waits, and right after a request the answer is never
// there yet (a read that fails with EAGAIN for each request). The write is
// made from inside the read's wait, after the runtime has forgotten any
// earlier readiness of u, so the readiness the answer brings cannot be
// missed; the first read comes when the poller says the answer (or the
// server's close or reset) is there. u's deadlines apply. werr is the
// write's error (nothing was read), err the read's (io.EOF when the server
// closed).
func (u *upstream) sendThenRead(out, b []byte) (n int, werr, err error) {
	if u.raw == nil {
		u.raw = newRawIO(u.TCPConn)
	}
	return u.raw.SendThenRead(out, b, nil)
}

// clientIO is the client socket's rawIO (not for TLS), bound to h.c;
// it is kept in the work area.
func (h *httpConn) clientIO() *rawIO {
	w := h.work
	if w.cioOf != h.c {
		w.cio.bind(rawConn(h.c))
		w.cioOf = h.c
	}
	return &w.cio
}

// clientRead reads from the client, waiting for bytes within the read
// deadline.
func (h *httpConn) clientRead(b []byte) (int, error) {
	if h.t != nil {
		return h.t.Read(b)
	}
	return h.clientIO().Read(b)
}

// clientReadNow reads what the client has sent without waiting: n is 0 and
// err nil when nothing is here.
func (h *httpConn) clientReadNow(b []byte) (int, error) {
	if h.t != nil {
		return h.t.readNow(b)
	}
	return h.clientIO().ReadNow(b)
}

// clientWrite writes b to the client.
func (h *httpConn) clientWrite(b []byte) (int, error) {
	if h.t != nil {
		return h.t.Write(b)
	}
	return h.clientIO().Write(b)
}

var errUnacked = errors.New("request not acknowledged by the server within " + unackedWait.String())

// unacked reports whether data sent on c is still unacknowledged.
func unacked(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var info *unix.TCPInfo
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	return err == nil && info != nil && info.Unacked > 0
}

// swapServerBuf replaces the server buffer by one of size bytes, keeping
// its first keep bytes.
func (h *httpConn) swapServerBuf(size, keep int) {
	nb := getBuf(size)
	copy(*nb, (*h.sb)[:keep])
	putBuf(h.sb)
	h.sb = nb
}

// consumeHead drops the response head just handled from the server buffer.
func (h *httpConn) consumeHead(x *attempt) {
	sb := *h.sb
	x.have = copy(sb, sb[x.headBytes:x.have])
	x.headBytes = 0
}

// response relays the response whose head is in h.resp: interim 1xx
// responses (sending the body after a 100 Continue), a protocol switch
// (tunnel), then the final response and its body.
func (h *httpConn) response(st *serviceState, x *attempt, start time.Time) outcome {
	s := h.s
	t := st.cfg.Timeouts
	resp := &h.resp
	for resp.Status >= 100 && resp.Status < 200 && resp.Status != 101 {
		out := h.buildResponse((*h.ob)[:0], x, false)
		h.dl.write(h.c, time.Now().Add(t.Client.D()), t.Client.D()/8)
		n, err := h.conn().Write(out)
		h.out(int64(n))
		if err != nil {
			h.rec.Termination = byTimeout(err, 'C', 'D')
			return closeConn
		}
		h.consumeHead(x)
		if resp.Status == 100 && !x.bodyDone {
			x.streamed = true
			if !h.sendBody(st, x) {
				return closeConn
			}
		}
		if status, _ := h.readResponseHead(x, t.Server.D()); status != 0 {
			h.fail(status, x.term)
			return closeConn
		}
	}
	now := time.Now()
	s.stats.observe(now.Sub(start))
	h.rec.Response = now.Sub(x.sentAt)
	x.be.stats.responseTime.observe(h.rec.Response)
	h.rec.Status = resp.Status
	s.stats.responses[statusClass(resp.Status)].Add(1)
	x.srv.stats.responses[statusClass(resp.Status)].Add(1)

	if resp.Status == 101 {
		if !x.info.upgrade || !x.bodyDone {
			s.stats.serverErrors.Add(1)
			h.fail(502, stPH)
			return closeConn
		}
		out := h.buildResponse((*h.ob)[:0], x, false)
		out = append(out, (*h.sb)[x.headBytes:x.have]...)
		h.dl.write(h.c, time.Now().Add(t.Client.D()), t.Client.D()/8)
		n, err := h.conn().Write(out)
		h.out(int64(n))
		if err != nil {
			h.rec.Termination = byTimeout(err, 'C', 'D')
			return closeConn
		}
		if h.w > h.r {
			if _, err := x.sc.Write(h.buf[h.r:h.w]); err != nil {
				h.rec.Termination = byTimeout(err, 'S', 'D')
				return closeConn
			}
			h.r = h.w
		}
		h.releaseWork()
		h.dl.clear(h.c)
		x.sc.dl.clear(x.sc.TCPConn)
		in, outN, end := tunnel(h.conn(), x.sc, t.Tunnel.D(), t.Tunnel.D())
		h.in(in)
		h.out(outN)
		h.rec.Termination = end
		return closeConn
	}

	// Body framing of the final response (RFC 9112 6.3).
	noBody := x.info.head || resp.Status == 204 || resp.Status == 304
	untilClose := !noBody && !resp.Chunked && resp.ContentLength < 0
	clientClose := x.info.close || untilClose || !x.bodyDone || (x.info.http10 && resp.Chunked)
	out := h.buildResponse((*h.ob)[:0], x, clientClose)
	sb := *h.sb
	avail := sb[x.headBytes:x.have]
	complete := false
	var remaining int64
	switch {
	case noBody:
		complete = len(avail) == 0
		avail = avail[:0]
	case resp.Chunked:
		h.ch.Reset()
		n, done, err := h.ch.Scan(avail)
		if err != nil {
			s.stats.serverErrors.Add(1)
			h.fail(502, stPH)
			return closeConn
		}
		avail, complete = avail[:n], done
	case resp.ContentLength >= 0:
		n := min(resp.ContentLength, int64(len(avail)))
		avail = avail[:n]
		remaining = resp.ContentLength - n
		complete = remaining == 0 && x.have == x.headBytes+int(n)
	default:
	}
	// Bytes out count the head, as HAProxy's.
	h.dl.write(h.c, time.Now().Add(t.Client.D()), t.Client.D()/8)
	var sent int64
	var err error
	switch {
	case len(out)+len(avail) <= cap(out) && complete && !clientClose && h.t == nil && !h.pipelines:
		// The whole response in one write, and the connection waits for
		// the next request after it: the write is kept back for readSoon
		// to make from inside that wait (it counts the bytes and ends the
		// request, sent). Not for a client that pipelines: a request that
		// arrives before that wait begins would be reported to no one
		// (the wait forgets earlier readiness), and would be read only
		// when the connection parks, parkAfter later.
		h.pending, h.pendingSt = append(out, avail...), st
	case len(out)+len(avail) <= cap(out):
		var n int
		n, err = h.clientWrite(append(out, avail...))
		sent = int64(n)
	case h.t != nil:
		// TLS: the head and what fits of the body in one write, so in
		// full records rather than a short one for the head.
		bp := getBuf(copyBufSize)
		b := append((*bp)[:0], out...)
		k := min(len(avail), cap(b)-len(b))
		n, werr := h.t.Write(append(b, avail[:k]...))
		putBuf(bp)
		sent, err = int64(n), werr
		if err == nil && k < len(avail) {
			n, err = h.t.Write(avail[k:])
			sent += int64(n)
		}
	default:
		h.vec = append(h.vec[:0], out, avail)
		sent, err = h.vec.WriteTo(h.conn())
	}
	if err != nil {
		h.out(sent)
		h.rec.Termination = byTimeout(err, 'C', 'D')
		return closeConn
	}
	if !complete && !noBody {
		n, ok := h.relayBody(st, x, remaining)
		sent += n
		if !ok {
			h.out(sent)
			return closeConn
		}
		complete = !untilClose
	}
	h.out(sent)
	x.reuseOK = complete && !resp.Close && !untilClose && x.bodyDone && !x.info.http10
	if clientClose {
		return closeConn
	}
	return keepAlive
}

// relayBody copies the rest of a response body from the server to the
// client: remaining bytes of a Content-Length body, the rest of a chunked
// body, or everything until the server closes. It reports the bytes sent
// and whether the body ended cleanly.
func (h *httpConn) relayBody(st *serviceState, x *attempt, remaining int64) (int64, bool) {
	t := st.cfg.Timeouts
	resp := &h.resp
	if len(*h.sb) < copyBufSize && (resp.Chunked || resp.ContentLength < 0 || remaining > int64(len(*h.sb))) {
		h.swapServerBuf(copyBufSize, 0) // a long body: fewer, larger reads
	}
	sb := *h.sb
	var sent int64
	for {
		room := sb
		if !resp.Chunked && resp.ContentLength >= 0 && int64(len(room)) > remaining {
			room = room[:remaining]
		}
		x.sc.dl.read(x.sc.TCPConn, time.Now().Add(t.Server.D()), t.Server.D()/8)
		n, err := x.sc.Read(room)
		if n > 0 {
			chunk := sb[:n]
			done := false
			switch {
			case resp.Chunked:
				k, d, serr := h.ch.Scan(chunk)
				if serr != nil {
					h.rec.Termination = stPD
					return sent, false
				}
				if k < n {
					x.reuseOK = false // bytes after the body: do not reuse
					done = true
				}
				chunk, done = chunk[:k], done || d
			case resp.ContentLength >= 0:
				remaining -= int64(n)
				done = remaining == 0
			}
			h.dl.write(h.c, time.Now().Add(t.Client.D()), t.Client.D()/8)
			w, werr := h.conn().Write(chunk)
			sent += int64(w)
			if werr != nil {
				h.rec.Termination = byTimeout(werr, 'C', 'D')
				return sent, false
			}
			if done {
				return sent, true
			}
			continue
		}
		if err != nil {
			if isEOF(err) && !resp.Chunked && resp.ContentLength < 0 {
				return sent, true // a body delimited by the server's close
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				h.s.stats.timeouts.Add(1)
			}
			h.rec.Termination = byTimeout(err, 'S', 'D')
			return sent, false
		}
	}
}

// buildRequest appends the request head for the server: the request line
// (origin-form), the client's fields without hop-by-hop ones, and
// X-Forwarded-For, X-Forwarded-Proto and Forwarded.
func (h *httpConn) buildRequest(out []byte) []byte {
	req := &h.req
	out = append(out, req.Method...)
	out = append(out, ' ')
	out = append(out, req.Path...)
	if req.Minor == 0 {
		out = append(out, " HTTP/1.0\r\n"...)
	} else {
		out = append(out, " HTTP/1.1\r\n"...)
	}
	st := h.st
	extra := connectionListsOthers(req.Headers)
	for _, f := range req.Headers {
		if hopByHop(f.Name, req.Upgrade) || st.fwdProto && asciiEqualFold(f.Name, "x-forwarded-proto") ||
			(extra && listedInConnection(req.Headers, f.Name)) ||
			st.fwdClientCert && len(f.Name) > 13 && asciiEqualFold(f.Name[:13], "x-ssl-client-") {
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	switch {
	case req.Upgrade:
		out = append(out, "Connection: upgrade\r\n"...)
	case req.Minor == 0:
		out = append(out, "Connection: close\r\n"...)
	}
	if st.fwdFor {
		out = append(out, "X-Forwarded-For: "...)
		out = h.client.Addr().AppendTo(out)
		out = append(out, "\r\n"...)
	}
	scheme := "http"
	if h.t != nil {
		scheme = "https"
	}
	if st.fwdClientCert && h.t != nil {
		if i := &h.t.info; i.clientSHA != "" {
			out = append(out, "X-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-DN: "...)
			out = append(out, i.clientDN...)
			out = append(out, "\r\nX-SSL-Client-SHA256: "...)
			out = append(out, i.clientSHA...)
			out = append(out, "\r\n"...)
		} else {
			out = append(out, "X-SSL-Client-Verify: NONE\r\n"...)
		}
	}
	if st.fwdProto {
		out = append(out, "X-Forwarded-Proto: "...)
		out = append(out, scheme...)
		out = append(out, "\r\n"...)
	}
	if st.forwarded {
		out = append(out, "Forwarded: for="...)
		if h.client.Addr().Is6() {
			out = append(out, `"[`...)
			out = h.client.Addr().AppendTo(out)
			out = append(out, `]"`...)
		} else {
			out = h.client.Addr().AppendTo(out)
		}
		if len(req.Host) > 0 {
			out = append(out, `;host="`...)
			out = append(out, req.Host...)
			out = append(out, '"')
		}
		out = append(out, ";proto="...)
		out = append(out, scheme...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "\r\n"...)
	h.bodySent = 0
	if !req.Chunked && req.ContentLength > 0 {
		h.bodySent = min(req.ContentLength, int64(h.w-(h.r+req.HeadLen)))
	}
	return out
}

// buildResponse appends the response head for the client.
func (h *httpConn) buildResponse(out []byte, x *attempt, clientClose bool) []byte {
	resp := &h.resp
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(resp.Status), 10)
	out = append(out, ' ')
	out = append(out, resp.Reason...)
	out = append(out, "\r\n"...)
	upgrade := resp.Status == 101
	extra := connectionListsOthers(resp.Headers)
	for _, f := range resp.Headers {
		if hopByHop(f.Name, upgrade) || (extra && listedInConnection(resp.Headers, f.Name)) || h.st.setsField(f.Name) {
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	out = append(out, h.st.respFields...)
	if resp.Status >= 200 && x.sess.setCookie {
		out = append(out, "Set-Cookie: "...)
		out = append(out, x.be.cookie...)
		out = append(out, '=')
		out = append(out, x.srv.name...)
		out = append(out, "; Path=/\r\n"...)
	}
	switch {
	case upgrade:
		out = append(out, "Connection: upgrade\r\n"...)
	case resp.Status < 200:
	case clientClose:
		out = append(out, "Connection: close\r\n"...)
	case x.info.http10:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	return append(out, "\r\n"...)
}

func appendField(out, name, value []byte) []byte {
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	return append(out, "\r\n"...)
}

// hopByHop reports whether a field belongs to one connection only (RFC
// 9110 7.6.1) and is not forwarded; Upgrade is kept for a protocol switch.
func hopByHop(name []byte, upgrade bool) bool {
	switch len(name) {
	case 2:
		return asciiEqualFold(name, "te")
	case 7:
		return !upgrade && asciiEqualFold(name, "upgrade")
	case 10:
		return asciiEqualFold(name, "connection") || asciiEqualFold(name, "keep-alive")
	case 16:
		return asciiEqualFold(name, "proxy-connection")
	}
	return false
}

// connectionListsOthers reports whether a Connection field names fields
// other than close, keep-alive and upgrade (those fields are hop-by-hop).
func connectionListsOthers(fields []h1.Header) bool {
	for _, f := range fields {
		if !asciiEqualFold(f.Name, "connection") {
			continue
		}
		for tok := range bytes.SplitSeq(f.Value, []byte(",")) {
			tok = bytes.TrimSpace(tok)
			if len(tok) > 0 && !asciiEqualFold(tok, "close") && !asciiEqualFold(tok, "keep-alive") && !asciiEqualFold(tok, "upgrade") {
				return true
			}
		}
	}
	return false
}

func listedInConnection(fields []h1.Header, name []byte) bool {
	for _, f := range fields {
		if asciiEqualFold(f.Name, "connection") && h1.HasToken(f.Value, string(name)) {
			return true
		}
	}
	return false
}

// findCookie returns the value of the cookie name in the Cookie fields.
func findCookie(fields []h1.Header, name string) []byte {
	for _, f := range fields {
		if !asciiEqualFold(f.Name, "cookie") {
			continue
		}
		for pair := range bytes.SplitSeq(f.Value, []byte(";")) {
			pair = bytes.TrimSpace(pair)
			k, v, ok := bytes.Cut(pair, []byte("="))
			if ok && string(k) == name {
				return bytes.Trim(v, `"`)
			}
		}
	}
	return nil
}

// asciiEqualFold compares b with the lower-case ASCII string s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

var errorResponses = map[int][]byte{}

func init() {
	for code, text := range map[int]string{
		400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
		417: "Expectation Failed", 431: "Request Header Fields Too Large", 501: "Not Implemented",
		502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
	} {
		body := "halb: " + strconv.Itoa(code) + " " + text + "\n"
		if code == 503 {
			body = "halb: 503 Service Unavailable: no server is available to handle this request.\n"
		}
		errorResponses[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + text +
			"\r\nContent-Type: text/plain\r\nCache-Control: no-cache\r\nContent-Length: " + strconv.Itoa(len(body)) +
			"\r\nConnection: close\r\n\r\n" + body)
	}
}

// errorResponse is the short response for status (400 for unknown ones).
func errorResponse(status int) []byte {
	if b, ok := errorResponses[status]; ok {
		return b
	}
	return errorResponses[400]
}
