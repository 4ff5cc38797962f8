package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"halb/appliance/config"
)

// MaxDatagram is the largest syslog message sent over UDP, in bytes: RFC
// 5424 6.1 asks every receiver to take 2048 octets (and no more). A longer
// message loses the end of its MSG.
const MaxDatagram = 2048

// tcpSendBuffer is the SO_SNDBUF of a TCP syslog connection (the kernel
// doubles it): what the kernel may hold for a receiver, and what a
// receiver that dies takes with it uncounted (about 2000 access lines),
// while still enough for a LAN's bandwidth-delay product.
const tcpSendBuffer = 256 << 10

// syslogSink sends RFC 5424 messages to a remote syslog server: one per
// datagram over UDP, octet-counted (RFC 6587 3.4.1) over TCP.
//
// The address is resolved at each connect. A failed connect is retried
// with capped exponential backoff while the batch in hand waits (the
// queue fills, then new lines are dropped). Every write has a deadline
// (Options.WriteTimeout): a TCP receiver that stops reading fills the
// kernel's buffers, then the write times out, the connection is dropped
// and a new one made; lines not written whole go again on the new
// connection (a receiver discards the cut frame of a closed connection).
// Over TCP a goroutine reads the connection: syslog receivers send
// nothing, so its end means the peer closed, noticed before the next
// write. A UDP line whose send fails is dropped.
type syslogSink struct {
	t        *target
	network  string
	address  string
	facility int
	app      string
	procid   string
	timeout  time.Duration
	back     backoff

	mu   sync.Mutex // guards conn against abort
	conn *syslogConn
	buf  []byte
	msg  []byte
	ends []int
	msgs []ipv4.Message // sendmmsg's datagrams, over s.buf

	dialed bool // a connection was made before: the next is a reconnect
	stopAf func() bool
}

// syslogConn is one connection and, over TCP, its reader goroutine.
type syslogConn struct {
	net.Conn
	batch  batchWriter   // over UDP: sends many datagrams in one system call
	closed atomic.Bool   // the peer closed or the read failed
	done   chan struct{} // the reader returned (nil over UDP)
}

// batchWriter is what x/net's ipv4 and ipv6 PacketConns share.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newSyslogSink(t *target, cfg config.LogTarget) (*syslogSink, error) {
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("address %q: %w", cfg.Address, err)
	}
	fac := slices.Index(config.SyslogFacilities, cfg.Facility)
	if fac < 0 {
		return nil, fmt.Errorf("facility %q is not an RFC 5424 facility name", cfg.Facility)
	}
	network := cfg.Transport
	if network != "tcp" && network != "udp" {
		return nil, fmt.Errorf("transport %q is not udp or tcp", cfg.Transport)
	}
	tag := cfg.Tag
	if tag == "" {
		tag = config.DefaultLogTag
	}
	s := &syslogSink{
		t: t, network: network, address: cfg.Address, facility: fac,
		app:     syslogHeaderField(tag, 48),
		procid:  strconv.Itoa(os.Getpid()),
		timeout: t.m.opts.WriteTimeout,
		back:    backoff{min: t.m.opts.backoffMin, max: t.m.opts.backoffMax},
	}
	s.start(t.ctx)
	return s, nil
}

// start arms the abort of a blocked write at the drain deadline.
func (s *syslogSink) start(ctx context.Context) {
	s.stopAf = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn != nil {
			s.conn.SetDeadline(time.Unix(1, 0))
		}
	})
}

func (s *syslogSink) connect(ctx context.Context) error {
	d := net.Dialer{Timeout: s.timeout}
	if s.network == "tcp" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, tcpSendBuffer)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.DialContext(ctx, s.network, s.address)
	if err != nil {
		return err
	}
	sc := &syslogConn{Conn: c}
	if uc, ok := c.(*net.UDPConn); ok {
		// The socket is connected: the datagrams carry no address, and
		// either family's wrapper does (ipv4's for IPv4 only by name).
		if ra, _ := uc.RemoteAddr().(*net.UDPAddr); ra != nil && ra.IP.To4() == nil {
			sc.batch = ipv6.NewPacketConn(uc)
		} else {
			sc.batch = ipv4.NewPacketConn(uc)
		}
	}
	if s.network == "tcp" {
		sc.done = make(chan struct{})
		go func() {
			defer close(sc.done)
			b := make([]byte, 256)
			for {
				if _, err := sc.Read(b); err != nil {
					sc.closed.Store(true)
					return
				}
			}
		}()
		s.t.c.connected.Store(true)
	}
	s.mu.Lock()
	s.conn = sc
	s.mu.Unlock()
	if ctx.Err() != nil {
		sc.SetDeadline(time.Unix(1, 0))
	}
	if s.dialed {
		s.t.c.reconnects.Add(1)
	}
	s.dialed = true
	return nil
}

func (s *syslogSink) dropConn() {
	s.mu.Lock()
	sc := s.conn
	s.conn = nil
	s.mu.Unlock()
	if sc == nil {
		return
	}
	sc.Close()
	if sc.done != nil {
		<-sc.done
	}
	s.t.c.connected.Store(false)
}

func (s *syslogSink) close() {
	if s.stopAf != nil {
		s.stopAf()
	}
	s.dropConn()
}

func (s *syslogSink) tick() {}

func (s *syslogSink) deliver(ctx context.Context, batch []entry) {
	c := s.t.c
	for len(batch) > 0 {
		if ctx.Err() != nil { // past the drain deadline
			c.droppedFailed.Add(uint64(len(batch)))
			return
		}
		if s.conn == nil || s.conn.closed.Load() {
			s.dropConn()
			if err := s.connect(ctx); err != nil {
				if !s.t.retry(ctx, &s.back, fmt.Errorf("connect %s: %w", s.address, err), batch) {
					return
				}
				continue
			}
			s.back.reset()
		}
		if s.network == "udp" {
			batch = s.sendUDP(batch)
			continue
		}
		// TCP: frames of as many lines as fit in one write.
		s.buf, s.ends = s.buf[:0], s.ends[:0]
		for i := range batch {
			s.msg = appendSyslog(s.msg[:0], s.facility, &batch[i], s.t.m.hostname(), s.app, s.procid, 0)
			s.buf = strconv.AppendInt(s.buf, int64(len(s.msg)), 10)
			s.buf = append(s.buf, ' ')
			s.buf = append(s.buf, s.msg...)
			s.ends = append(s.ends, len(s.buf))
		}
		s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
		w, err := s.conn.Write(s.buf)
		whole := 0
		for whole < len(s.ends) && s.ends[whole] <= w {
			whole++
		}
		c.written.Add(uint64(whole))
		batch = batch[whole:]
		if err != nil {
			// Stalled or gone: a new connection takes the rest, the cut
			// frame included (the receiver drops it with the old one).
			if c.fail(fmt.Errorf("write to %s: %w", s.address, err), time.Now()) {
				s.t.logf(slog.LevelWarn, "log target not taking lines: reconnecting", "err", err)
			}
			s.dropConn()
			continue
		}
		if c.ok() {
			s.t.logf(slog.LevelInfo, "log target writing again")
		}
	}
}

// sendUDP sends each line of batch as one datagram, as many as fit in
// one sendmmsg(2) at a time; it returns what is left when the connection
// failed (to be sent on a new one). The datagram the error is about is
// lost and counted.
func (s *syslogSink) sendUDP(batch []entry) []entry {
	c := s.t.c
	for len(batch) > 0 {
		n := min(len(batch), udpBatch)
		s.buf, s.ends = s.buf[:0], s.ends[:0]
		for i := range batch[:n] {
			s.buf = appendSyslog(s.buf, s.facility, &batch[i], s.t.m.hostname(), s.app, s.procid, MaxDatagram)
			s.ends = append(s.ends, len(s.buf))
		}
		if len(s.msgs) < n {
			s.msgs = make([]ipv4.Message, udpBatch)
			for i := range s.msgs {
				s.msgs[i].Buffers = make([][]byte, 1)
			}
		}
		start := 0
		for i, end := range s.ends {
			s.msgs[i].Buffers[0] = s.buf[start:end]
			start = end
		}
		s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
		sent := 0
		var err error
		for sent < n && err == nil {
			var k int
			k, err = s.conn.batch.WriteBatch(s.msgs[sent:n], 0)
			sent += k
		}
		c.written.Add(uint64(sent))
		if err != nil {
			// The line is lost (a refused datagram is reported on a
			// later send); a new socket resolves the address again.
			c.droppedFailed.Add(1)
			if c.fail(fmt.Errorf("send to %s: %w", s.address, err), time.Now()) {
				s.t.logf(slog.LevelWarn, "log target failing: lines are dropped", "err", err)
			}
			s.dropConn()
			return batch[sent+1:]
		}
		if c.ok() {
			s.t.logf(slog.LevelInfo, "log target writing again")
		}
		batch = batch[n:]
	}
	return nil
}

// udpBatch is how many datagrams one sendmmsg(2) takes at most (the
// kernel's UIO_MAXIOV is 1024).
const udpBatch = 64

// backoff is a capped exponential wait between failed attempts.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// wait sleeps the next backoff; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
