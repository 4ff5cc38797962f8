package netlab

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// BackendMode selects how a Backend answers.
type BackendMode int32

const (
	// ModeOK answers 200 with the backend's name.
	ModeOK BackendMode = iota
	// ModeFail answers 500 (still naming the backend).
	ModeFail
	// ModeHang accepts the connection and reads the request, but does not
	// answer until the mode changes or the backend is closed.
	ModeHang
	// ModeRefuse closes the listener (connects are refused) and every open
	// connection, as a stopped service would. Switching to another mode
	// listens again on the same address.
	ModeRefuse
)

func (m BackendMode) String() string {
	switch m {
	case ModeOK:
		return "ok"
	case ModeFail:
		return "fail"
	case ModeHang:
		return "hang"
	case ModeRefuse:
		return "refuse"
	}
	return "BackendMode(" + strconv.Itoa(int(m)) + ")"
}

// Backend is an HTTP server that names itself in every response: status 200,
// body "<name>\n" and header "X-Backend: <name>", on every path ("/healthz"
// included) but BytesPath, where the body is n bytes (GET /bytes?n=16384;
// benchmarks of large responses). Its knobs (SetMode, SetDelay) are safe to use while it serves.
//
// Backend is namespace-agnostic: it serves on the listener it is given and,
// after ModeRefuse, listens again through the function set by SetRelisten.
type Backend struct {
	name     string
	srv      *http.Server
	requests atomic.Int64  // responses written
	served   atomic.Int64  // responses written to requests other than health checks
	inflight atomic.Int64  // requests in the handler, not yet answered
	done     chan struct{} // closed by Close

	mu          sync.Mutex
	mode        BackendMode
	delay       time.Duration
	relisten    func(addr string) (net.Listener, error)
	relistenErr error
	ln          net.Listener // current listener; nil while refusing or before Serve
	addr        string       // the address Serve was given, kept for relisten
	serving     bool
	closed      bool
	changed     chan struct{} // closed and replaced on every change of state
	conns       map[*trackedConn]struct{}
	header      http.Header // extra response headers (SetHeader)
	recording   bool        // RecordArrivals
	arrivals    []Arrival
}

// SentHeader carries the time a probe started a request (Unix nanoseconds,
// ProbeConfig.StampSent) to the backend that gets it.
const SentHeader = "X-Netlab-Sent"

// Arrival is one request as a Backend got it (see RecordArrivals).
type Arrival struct {
	// At is when the backend's handler got the request.
	At time.Time
	// Sent is when the client started the request (SentHeader); zero
	// without the header.
	Sent time.Time
}

// NewBackend returns a Backend in ModeOK with no delay.
func NewBackend(name string) *Backend {
	b := &Backend{
		name:    name,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		conns:   make(map[*trackedConn]struct{}),
	}
	b.srv = &http.Server{
		Handler:  b,
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return b
}

// SetHeader adds a header to every response (e.g. X-LB-Node).
func (b *Backend) SetHeader(key, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.header == nil {
		b.header = http.Header{}
	}
	b.header.Set(key, value)
}

// Name is the name the backend answers with.
func (b *Backend) Name() string { return b.name }

// Addr is the address being served ("" before Serve). It stays the same
// across ModeRefuse.
func (b *Backend) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// Mode is the current mode.
func (b *Backend) Mode() BackendMode {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mode
}

// Requests is the number of requests answered (any status).
func (b *Backend) Requests() int64 { return b.requests.Load() }

// Served is the number of requests answered other than health checks
// (GET /healthz): the ones clients sent through a balancer.
func (b *Backend) Served() int64 { return b.served.Load() }

// RecordArrivals makes the backend keep an Arrival for every request it
// gets from now on (those it drops unanswered included), until
// RecordArrivals(false).
func (b *Backend) RecordArrivals(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recording = on
}

// Arrivals returns the requests recorded so far, in order of arrival.
func (b *Backend) Arrivals() []Arrival {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.arrivals)
}

// record keeps r's arrival when recording.
func (b *Backend) record(r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.recording {
		return
	}
	a := Arrival{At: time.Now()}
	if ns, err := strconv.ParseInt(r.Header.Get(SentHeader), 10, 64); err == nil {
		a.Sent = time.Unix(0, ns)
	}
	b.arrivals = append(b.arrivals, a)
}

// SetRelisten sets how the backend listens again on its address when it
// leaves ModeRefuse. The default is net.Listen("tcp", addr); a lab passes a
// function that creates the socket inside the host's namespace. nil restores
// the default.
func (b *Backend) SetRelisten(f func(addr string) (net.Listener, error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.relisten = f
}

// SetDelay adds latency before each answer.
func (b *Backend) SetDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay = d
}

// SetMode switches the mode. Entering ModeRefuse closes the listener and all
// open connections before SetMode returns; leaving it listens again on the
// same address before SetMode returns (if that fails, the error is kept —
// see RelistenErr — and listening is retried in the background).
func (b *Backend) SetMode(m BackendMode) {
	b.mu.Lock()
	b.mode = m
	var kill []io.Closer
	if !b.closed {
		if m == ModeRefuse {
			kill = b.dropListenerLocked()
		} else {
			b.ensureListeningLocked()
		}
	}
	b.notifyLocked()
	b.mu.Unlock()
	for _, c := range kill {
		c.Close()
	}
}

// RelistenErr is the error of the last failed attempt to listen again after
// ModeRefuse, or nil once listening succeeded.
func (b *Backend) RelistenErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.relistenErr
}

// Serve answers requests on ln until Close, then returns nil. It may be
// called once.
func (b *Backend) Serve(ln net.Listener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ln.Close()
		return nil
	}
	if b.serving {
		b.mu.Unlock()
		return errors.New("netlab: backend " + b.name + " is already serving")
	}
	b.serving = true
	b.addr = ln.Addr().String()
	if b.mode == ModeRefuse {
		ln.Close()
	} else {
		b.ln = ln
	}
	b.notifyLocked()
	b.mu.Unlock()

	err := b.srv.Serve(&backendListener{b: b})
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil
	}
	b.Close()
	return err
}

// Close stops the backend like a killed process: the listener and every open
// connection (idle keep-alive ones and those with a request in progress) are
// closed. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	kill := b.dropListenerLocked()
	b.notifyLocked()
	b.mu.Unlock()
	for _, c := range kill {
		c.Close()
	}
	b.srv.Close()
	return nil
}

// notifyLocked wakes everyone waiting for a change of state.
func (b *Backend) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// dropListenerLocked detaches the listener and all connections; the caller
// closes what it returns after unlocking.
func (b *Backend) dropListenerLocked() []io.Closer {
	var kill []io.Closer
	if b.ln != nil {
		kill = append(kill, b.ln)
		b.ln = nil
	}
	for c := range b.conns {
		kill = append(kill, c)
	}
	return kill
}

// ensureListeningLocked listens again on the remembered address when the
// backend serves, is not refusing and has no listener.
func (b *Backend) ensureListeningLocked() {
	if b.closed || !b.serving || b.ln != nil || b.mode == ModeRefuse || b.addr == "" {
		return
	}
	listen := b.relisten
	if listen == nil {
		listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	ln, err := listen(b.addr)
	if err != nil {
		b.relistenErr = fmt.Errorf("netlab: backend %s: listen again on %s: %w", b.name, b.addr, err)
		return
	}
	b.relistenErr = nil
	b.ln = ln
}

// state is what the handler needs, read under the lock.
func (b *Backend) state() (mode BackendMode, delay time.Duration, changed <-chan struct{}, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mode, b.delay, b.changed, b.closed
}

// ServeHTTP answers per the current mode.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	b.record(r)
	ctx := r.Context()
	delayed := false
	for {
		mode, delay, changed, closed := b.state()
		if closed || mode == ModeRefuse {
			// The connection raced with Close or ModeRefuse: drop it
			// without an answer, as a dead process would.
			panic(http.ErrAbortHandler)
		}
		if mode == ModeHang {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		if delay > 0 && !delayed {
			delayed = true
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			case <-b.done:
				t.Stop()
				panic(http.ErrAbortHandler)
			}
			continue // the mode may have changed meanwhile
		}
		status := http.StatusOK
		if mode != ModeOK {
			status = http.StatusInternalServerError
		}
		body := b.name + "\n"
		size := int64(-1)
		if r.URL.Path == BytesPath {
			if size = bytesParam(r); size < 0 {
				status, body = http.StatusBadRequest, "n: a byte count up to 1 GiB\n"
			}
		}
		h := w.Header()
		b.mu.Lock()
		for k, v := range b.header {
			h[k] = v
		}
		b.mu.Unlock()
		h.Set("X-Backend", b.name)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if size >= 0 {
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", strconv.FormatInt(size, 10))
			w.WriteHeader(status)
			writeBytes(w, size)
		} else {
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
		b.requests.Add(1)
		if r.URL.Path != "/healthz" {
			b.served.Add(1)
		}
		return
	}
}

// backendListener is the one listener http.Server sees. It accepts from the
// backend's current listener, waits while the backend refuses, and tracks
// every connection so ModeRefuse and Close can cut them.
type backendListener struct {
	b      *Backend
	mu     sync.Mutex
	closed bool
}

func (l *backendListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *backendListener) Accept() (net.Conn, error) {
	b := l.b
	for {
		if l.isClosed() {
			return nil, net.ErrClosed
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, net.ErrClosed
		}
		ln, changed := b.ln, b.changed
		retry := ln == nil && b.mode != ModeRefuse // listening again failed
		b.mu.Unlock()

		if ln == nil {
			if !retry {
				<-changed
				continue
			}
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-changed:
				t.Stop()
			case <-t.C:
				b.mu.Lock()
				b.ensureListeningLocked()
				b.notifyLocked()
				b.mu.Unlock()
			}
			continue
		}

		c, err := ln.Accept()
		b.mu.Lock()
		current := b.ln == ln && !b.closed
		if err == nil && current {
			tc := &trackedConn{Conn: c, b: b}
			b.conns[tc] = struct{}{}
			b.mu.Unlock()
			return tc, nil
		}
		b.mu.Unlock()
		if err == nil {
			c.Close() // accepted just as the listener was dropped
			continue
		}
		if !current {
			continue // we closed that listener ourselves
		}
		return nil, err
	}
}

// Close is called by http.Server when it stops; closing the backend itself
// is Backend.Close's job.
func (l *backendListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	b := l.b
	b.mu.Lock()
	var ln net.Listener
	ln, b.ln = b.ln, nil
	b.notifyLocked()
	b.mu.Unlock()
	if ln != nil {
		return ln.Close()
	}
	return nil
}

func (l *backendListener) Addr() net.Addr {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		return b.ln.Addr()
	}
	a, err := net.ResolveTCPAddr("tcp", b.addr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return a
}

// trackedConn removes itself from the backend's set when closed.
type trackedConn struct {
	net.Conn
	b    *Backend
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.b.mu.Lock()
		delete(c.b.conns, c)
		c.b.mu.Unlock()
	})
	return err
}

// EchoServer is a TCP server that copies every byte it receives back to the
// sender, writing nothing else.
type EchoServer struct {
	name string
	wg   sync.WaitGroup

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	conns  map[net.Conn]struct{}
}

// NewEchoServer returns an EchoServer; name is for the lab's bookkeeping.
func NewEchoServer(name string) *EchoServer {
	return &EchoServer{name: name, conns: make(map[net.Conn]struct{})}
}

// Name is the server's name.
func (e *EchoServer) Name() string { return e.name }

// Serve echoes on connections accepted from ln until Close, then returns nil.
func (e *EchoServer) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		ln.Close()
		return nil
	}
	if e.ln != nil {
		e.mu.Unlock()
		return errors.New("netlab: echo server " + e.name + " is already serving")
	}
	e.ln = ln
	e.mu.Unlock()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			e.Close()
			return err
		}
		backoff = 0
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			return nil
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.wg.Done()
			io.Copy(c, c)
			c.Close()
			e.mu.Lock()
			delete(e.conns, c)
			e.mu.Unlock()
		}()
	}
}

// Close closes the listener and every open connection, and waits for the
// connection goroutines to end. It is idempotent.
func (e *EchoServer) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.wg.Wait()
		return nil
	}
	e.closed = true
	ln := e.ln
	conns := make([]net.Conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	e.wg.Wait()
	return nil
}

// BytesPath is the Backend path whose answer is a body of n bytes (query
// n, at most 1 GiB) with a Content-Length: the same bytes every time, from
// memory, so that the body costs the backend no more than writing it.
const BytesPath = "/bytes"

// bytesChunk is what writeBytes repeats.
var bytesChunk = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// bytesParam is the n of a BytesPath request, -1 when missing or out of
// range.
func bytesParam(r *http.Request) int64 {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n > 1<<30 {
		return -1
	}
	return n
}

// writeBytes writes n bytes of bytesChunk, over and over.
func writeBytes(w io.Writer, n int64) {
	for n > 0 {
		k := min(n, int64(len(bytesChunk)))
		if _, err := w.Write(bytesChunk[:k]); err != nil {
			return
		}
		n -= k
	}
}
