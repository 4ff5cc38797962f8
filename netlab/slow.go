package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// SlowConn is one connection of a SlowHeads run, as the client saw it.
type SlowConn struct {
	// Dialed is when the connect began: the proxy cannot have accepted
	// the connection, nor started its head timeout, before.
	Dialed time.Time
	// Closed is when the proxy answered or closed, whichever came first;
	// zero while neither happened.
	Closed time.Time
	// Sent counts the head's bytes written.
	Sent int
	// Reply is the first line the proxy sent ("" when it sent nothing).
	Reply string
	// Err is why the connection ended without a reply ("EOF", a reset).
	Err string
}

// SlowHeads is a crowd of slow clients (slowloris): connections that
// trickle a request head one byte at a time and never finish it.
type SlowHeads struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*SlowConn
	socks []net.Conn
	open  int
}

// slowHead is what each slow client sends, a byte at a time; longer than
// any head timeout lets it get through.
var slowHead = []byte("GET /slow HTTP/1.1\r\nHost: slow.example\r\nUser-Agent: netlab-slowloris\r\nX-Pad: " +
	string(bytes.Repeat([]byte("a"), 4096)))

// StartSlowHeads opens n connections from h to addr and has each send
// slowHead one byte every interval, until the proxy answers or closes, or
// Stop: the first byte as it connects, the next ones spread at random over
// the interval across the crowd (a steady n/interval bytes a second), or,
// when aligned, all at the same instants (bursts of n bytes). It returns
// once every connection is open.
func StartSlowHeads(h *Host, addr string, n int, interval time.Duration, aligned bool) (*SlowHeads, error) {
	s := &SlowHeads{stop: make(chan struct{})}
	var conns []net.Conn
	err := h.Do(func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		for range n {
			sc := &SlowConn{Dialed: time.Now()}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return fmt.Errorf("netlab: slow connection %d to %s: %w", len(conns)+1, addr, err)
			}
			conns = append(conns, c)
			s.conns = append(s.conns, sc)
			if _, err := c.Write(slowHead[:1]); err == nil { // the first byte at once
				sc.Sent = 1
			}
		}
		return nil
	})
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return nil, err
	}
	s.open, s.socks = len(conns), conns
	opened := time.Now()
	for i, c := range conns {
		offset := time.Duration(rand.Int64N(int64(interval))) + 1
		if aligned {
			offset = opened.Add(interval).Sub(s.conns[i].Dialed)
		}
		s.wg.Add(1)
		go s.trickle(c, s.conns[i], offset, interval)
	}
	return s, nil
}

// trickle is one slow client after its first byte: a byte at offset from
// its connect and every interval after it.
func (s *SlowHeads) trickle(c net.Conn, sc *SlowConn, offset, interval time.Duration) {
	defer s.wg.Done()
	defer c.Close()
	end := func(reply, why string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sc.Closed, sc.Reply, sc.Err = time.Now(), reply, why
		s.open--
	}
	next := sc.Dialed.Add(offset)
	buf := make([]byte, 256)
	for {
		if !time.Now().Before(next) {
			if sc.Sent < len(slowHead) {
				if _, err := c.Write(slowHead[sc.Sent : sc.Sent+1]); err == nil {
					s.mu.Lock()
					sc.Sent++
					s.mu.Unlock()
				}
			}
			next = next.Add(interval)
		}
		c.SetReadDeadline(next)
		k, err := c.Read(buf)
		if k > 0 {
			line, _, _ := bytes.Cut(buf[:k], []byte("\r\n"))
			end(string(line), "")
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		select {
		case <-s.stop:
			end("", "stopped")
		default:
			end("", errText(err))
		}
		return
	}
}

// Open is the number of connections the proxy has neither answered nor
// closed.
func (s *SlowHeads) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Stop closes every connection still open and returns them all.
func (s *SlowHeads) Stop() []SlowConn {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		for _, c := range s.socks {
			c.Close()
		}
	}
	s.wg.Wait()
	return s.Conns()
}

// Conns returns a snapshot of every connection.
func (s *SlowHeads) Conns() []SlowConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SlowConn, len(s.conns))
	for i, c := range s.conns {
		out[i] = *c
	}
	return out
}

// SlowLifetimes are the times from dial to close of the connections that
// ended, sorted.
func SlowLifetimes(conns []SlowConn) []time.Duration {
	var out []time.Duration
	for _, c := range conns {
		if !c.Closed.IsZero() {
			out = append(out, c.Closed.Sub(c.Dialed))
		}
	}
	slices.Sort(out)
	return out
}
