package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics is one scrape of a Prometheus text exposition: the value of each
// series, keyed by the series as written ("name{a=\"x\",b=\"y\"}").
type Metrics map[string]float64

// Scrape GETs url from inside the host and parses the exposition.
func (h *Host) Scrape(url string) (Metrics, error) {
	tr := &http.Transport{DialContext: h.Dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("netlab: GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(string(b))
}

// ParseMetrics reads a Prometheus text exposition (comments skipped).
func ParseMetrics(text string) (Metrics, error) {
	m := Metrics{}
	for i, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("netlab: metrics line %d: no value: %q", i+1, line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("netlab: metrics line %d: %w", i+1, err)
		}
		m[line[:sp]] = v
	}
	return m, nil
}

// Get sums the series of the metric name whose labels include every
// label given as `key="value"`; ok is false when none matches.
func (m Metrics) Get(name string, labels ...string) (sum float64, ok bool) {
	for series, v := range m {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		all := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				all = false
				break
			}
		}
		if all {
			sum += v
			ok = true
		}
	}
	return sum, ok
}

// Val is Get without ok: 0 when no series matches.
func (m Metrics) Val(name string, labels ...string) float64 {
	v, _ := m.Get(name, labels...)
	return v
}

// SyslogReceiver collects the messages of a syslog server (UDP, one
// message per datagram) listening inside a host.
type SyslogReceiver struct {
	conn net.PacketConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

// ListenSyslog starts a UDP syslog receiver on addr inside the host.
func (h *Host) ListenSyslog(addr string) (*SyslogReceiver, error) {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := &SyslogReceiver{conn: pc, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, string(buf[:n]))
			r.mu.Unlock()
		}
	}()
	return r, nil
}

// Messages returns the messages received so far whose text contains every
// one of subs.
func (r *SyslogReceiver) Messages(subs ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
next:
	for _, m := range r.msgs {
		for _, s := range subs {
			if !strings.Contains(m, s) {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// Close stops the receiver.
func (r *SyslogReceiver) Close() error {
	err := r.conn.Close()
	<-r.done
	return err
}

// RawRequest sends req on a new TCP connection to addr from inside the
// host and returns everything the other side sent until it closed.
func (h *Host) RawRequest(ctx context.Context, addr, req string) ([]byte, error) {
	c, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}
