package netlab

// What make bench adds for issue 16: a syslog receiver that counts the
// access lines of the bench's requests, and a scraper of /metrics.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchSyslogAddr is where the log rows' proxies send their access log: a
// UDP receiver on the client (the LB's front LAN).
const benchSyslogAddr = "192.168.10.10:5514"

// benchObservePort is observe.listen's port (":8404") in the bench's labs.
const benchObservePort = "8404"

// isBenchAccessLine reports whether a syslog message carries the access
// line of a bench request: service web, backend web, wrk's "GET /". halb's
// and HAProxy's lines (httplog) both have " web web/SERVER " and the quoted
// request line; their own messages ("Proxy web started") have neither.
func isBenchAccessLine(msg []byte) bool {
	return bytes.Contains(msg, []byte(" web web/")) && bytes.Contains(msg, []byte(`"GET / HTTP/1.1"`))
}

// AccessCounter is a UDP syslog receiver that keeps nothing but the count
// of the bench's access lines (isBenchAccessLine) and the first of them.
type AccessCounter struct {
	conn   net.PacketConn
	lines  atomic.Int64
	other  atomic.Int64
	mu     sync.Mutex
	sample string
	done   chan struct{}
}

// ListenAccessCounter starts an AccessCounter on addr inside the host, with
// a receive buffer of 16 MiB so that the receiver's own lag loses no line.
func (h *Host) ListenAccessCounter(addr string) (*AccessCounter, error) {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 16<<20)
			}); err != nil {
				return err
			}
			return serr
		}}
		pc, err = lc.ListenPacket(context.Background(), "udp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: syslog receiver on %s in %s: %w", addr, h.Name, err)
	}
	return newAccessCounter(pc), nil
}

// newAccessCounter counts what arrives on pc until Close.
func newAccessCounter(pc net.PacketConn) *AccessCounter {
	r := &AccessCounter{conn: pc, done: make(chan struct{})}
	go r.run()
	return r
}

func (r *AccessCounter) run() {
	defer close(r.done)
	buf := make([]byte, 65536)
	for {
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		r.count(buf[:n])
	}
}

// count takes one datagram.
func (r *AccessCounter) count(msg []byte) {
	if !isBenchAccessLine(msg) {
		r.other.Add(1)
		return
	}
	if r.lines.Add(1) == 1 {
		r.mu.Lock()
		r.sample = string(bytes.TrimSpace(msg))
		r.mu.Unlock()
	}
}

// Lines is how many access lines of bench requests arrived so far; Other
// how many other messages.
func (r *AccessCounter) Lines() int64 { return r.lines.Load() }

// Other is how many messages that are no bench access line arrived.
func (r *AccessCounter) Other() int64 { return r.other.Load() }

// Sample is the first access line received ("" before one came).
func (r *AccessCounter) Sample() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sample
}

// WaitLines waits until at least want lines arrived since from, or until
// no line arrived for settle (the proxy has sent all it will), at most
// limit; it returns the lines since from.
func (r *AccessCounter) WaitLines(from, want int64, settle, limit time.Duration) int64 {
	deadline := time.Now().Add(limit)
	last, lastChange := r.Lines(), time.Now()
	for {
		n := r.Lines()
		if n-from >= want || time.Now().After(deadline) {
			return n - from
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= settle {
			return n - from
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the receiver.
func (r *AccessCounter) Close() error {
	err := r.conn.Close()
	<-r.done
	return err
}

// scrapeStats is what a scraper saw during one round.
type scrapeStats struct {
	OK, Failed int
	FirstErr   error
	Bytes      []float64 // body sizes of the good scrapes
	MS         []float64 // their durations
}

// scrapeEvery GETs url every interval until ctx ends, on a kept-alive
// connection made with dial (Host.Dial: from inside a host) as Prometheus
// does, and counts the answers: a good one is a 200 whose body contains
// want.
func scrapeEvery(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), url, want string, every time.Duration) scrapeStats {
	var st scrapeStats
	tr := &http.Transport{DialContext: dial}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	fail := func(err error) {
		if ctx.Err() != nil {
			return // cut short by the end of the run
		}
		st.Failed++
		if st.FirstErr == nil {
			st.FirstErr = err
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return st
		case <-tick.C:
		}
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			fail(err)
			return st
		}
		resp, err := cl.Do(req)
		if err != nil {
			fail(err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			fail(err)
		case resp.StatusCode != http.StatusOK:
			fail(fmt.Errorf("GET %s: %s", url, resp.Status))
		case !bytes.Contains(b, []byte(want)):
			fail(fmt.Errorf("GET %s: no %s in %d bytes", url, want, len(b)))
		default:
			st.OK++
			st.Bytes = append(st.Bytes, float64(len(b)))
			st.MS = append(st.MS, float64(time.Since(t0).Microseconds())/1000)
		}
	}
}
