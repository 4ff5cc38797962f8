package netlab

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"halb/internal/procnet"
)

// slowClients are legitimate slow clients (a phone on a bad link): each of
// n connections sends a request head one byte every byteEvery, reads
// the answer SlowReadChunk bytes every SlowReadEvery, and starts the next
// request on the same connection, until Stop. Unlike SlowHeads, every
// request is finished and must be answered.
type slowClients struct {
	stop   chan struct{} // closed: finish the request under way, start no other
	wg     sync.WaitGroup
	n      int
	served atomic.Int64
	failed atomic.Int64

	mu       sync.Mutex
	firstErr error
}

// Slow clients read the response in pieces of SlowReadChunk bytes, one
// every SlowReadEvery.
const (
	SlowReadChunk = 1024
	SlowReadEvery = 10 * time.Millisecond
)

// startSlowClients opens n connections to addr, dialed inside do (a
// Host's Do), and starts them; it returns once all are open.
func startSlowClients(do func(func() error) error, addr, head string, n int, byteEvery time.Duration) (*slowClients, error) {
	s := &slowClients{stop: make(chan struct{}), n: n}
	var conns []net.Conn
	err := do(func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		for range n {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return fmt.Errorf("netlab: slow client %d to %s: %w", len(conns)+1, addr, err)
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return nil, err
	}
	for _, c := range conns {
		s.wg.Add(1)
		// The crowd's bytes spread evenly over time.
		go s.run(c, []byte(head), time.Duration(rand.Int64N(int64(byteEvery))), byteEvery)
	}
	return s, nil
}

// run is one slow client.
func (s *slowClients) run(c net.Conn, head []byte, offset, byteEvery time.Duration) {
	defer s.wg.Done()
	defer c.Close()
	br := bufio.NewReaderSize(slowReader{c}, SlowReadChunk)
	time.Sleep(offset)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		// A request takes len(head) x byteEvery and a bit to read: far
		// within this bound unless the proxy stalls it.
		c.SetDeadline(time.Now().Add(time.Duration(len(head))*byteEvery + 20*time.Second))
		for i := range head {
			if i > 0 {
				time.Sleep(byteEvery)
			}
			if _, err := c.Write(head[i : i+1]); err != nil {
				s.fail(fmt.Errorf("byte %d of the head: %w", i+1, err))
				return
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			s.fail(fmt.Errorf("response: %w", err))
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			s.fail(fmt.Errorf("status %d, body: %v", resp.StatusCode, err))
			return
		}
		s.served.Add(1)
	}
}

func (s *slowClients) fail(err error) {
	s.failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstErr == nil {
		s.firstErr = err
	}
}

// Stop lets every client finish the request under way and waits for all:
// the requests served, the clients that failed (each stops at its first
// failure), and the first failure.
func (s *slowClients) Stop() (served, failed int64, first error) {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served.Load(), s.failed.Load(), s.firstErr
}

// slowReader reads at most SlowReadChunk bytes a call, SlowReadEvery
// after the previous call.
type slowReader struct{ c net.Conn }

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(SlowReadEvery)
	return r.c.Read(p[:min(len(p), SlowReadChunk)])
}

// tcpOpens reads the TCP active and passive opens of h's network namespace
// (/proc/net/snmp as the namespace sees it): connections it started and
// connections it accepted, since the namespace was made.
func tcpOpens(h *Host) (active, passive int64, err error) {
	b, err := h.readProcNet("snmp")
	if err == nil {
		active, passive, err = procnet.TCPOpens(b)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("netlab: tcp opens of %s: %w", h.Name, err)
	}
	return active, passive, nil
}
