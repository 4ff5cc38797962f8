// Package proxy is halb's HAProxy half: listeners bound to service
// addresses even before this node holds the VIP (IP_FREEBIND), TCP
// forwarding, and an HTTP/1.1 engine of its own (h1: strict parsing,
// keep-alive on both sides, per-server connection pools), with routing by
// Host and path, the balancing algorithms of package balance, cookie and
// source persistence, per-server maxconn with a queue, PROXY protocol in
// and out, HAProxy-like timeouts, counters and an access log.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/proxy/proxyproto"
)

// listenFreebind listens on addr with IP_FREEBIND (IPv6: IPV6_FREEBIND) so a
// service binds its VIP before this node holds it: a VRRP takeover then
// needs no rebind.
func listenFreebind(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if network == "tcp6" {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// handle serves one client connection in the service's mode, after reading
// a PROXY protocol header from a trusted source.
func (s *service) handle(c *net.TCPConn) {
	s.stats.active.Add(1)
	st := s.state.Load()
	client := addrPort(c.RemoteAddr())
	local := addrPort(c.LocalAddr())
	var pre []byte
	if st.trusts(client.Addr()) {
		h, rest, err := readProxyHeader(c, st.cfg.Timeouts.HTTPRequest.D())
		if err != nil {
			s.stats.badRequests.Add(1)
			s.logLimited("proxyproto", "PROXY protocol header refused", "service", s.name, "client", client, "err", err)
			c.Close()
			s.stats.active.Add(-1)
			return
		}
		if !h.Local {
			client = netip.AddrPortFrom(h.Src.Addr().Unmap(), h.Src.Port())
			local = netip.AddrPortFrom(h.Dst.Addr().Unmap(), h.Dst.Port())
		}
		pre = rest
	}
	if s.mode == "tcp" {
		s.forwardTCP(c, st, client, local, pre)
		s.stats.active.Add(-1)
		return
	}
	h := &httpConn{s: s, c: c, client: client, local: local}
	h.serve(pre)
}

// readProxyHeader reads a PROXY protocol v1/v2 header within timeout and
// returns it with the bytes that followed it.
func readProxyHeader(c *net.TCPConn, timeout time.Duration) (proxyproto.Header, []byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, 256)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= 16+4096 {
				return proxyproto.Header{}, nil, errors.New("header too long")
			}
			buf = append(make([]byte, 0, 16+4096), buf...)
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, used, perr := proxyproto.Parse(buf)
		if perr == nil {
			return h, buf[used:], nil
		}
		if !errors.Is(perr, proxyproto.ErrIncomplete) {
			return h, nil, perr
		}
		if err != nil {
			return h, nil, fmt.Errorf("incomplete header: %w", err)
		}
	}
}

// forwardTCP carries one client connection to a server: it tries the
// servers the balancer picks, each at most once, until one accepts the
// connection (nothing has been sent yet, so a retry is safe), then copies
// both ways with half-close passed on and the client/server idle timeouts.
func (s *service) forwardTCP(client *net.TCPConn, st *serviceState, from, to netip.AddrPort, pre []byte) {
	defer client.Close()
	be := st.def
	if be == nil || len(be.servers) == 0 {
		s.stats.noServer.Add(1)
		return
	}
	t := st.cfg.Timeouts
	var triedArr [16]bool
	tried := triedArr[:]
	if len(be.servers) > len(tried) {
		tried = make([]bool, len(be.servers))
	}
	key := from.Addr().As16()
	start := time.Now()
	var upstream *net.TCPConn
	var srv *server
	for range be.servers {
		sess, err := be.pick(context.Background(), tried, key[:], from.Addr(), "", t.Queue.D())
		if err != nil {
			break
		}
		srv = sess.srv
		tried[srv.idx] = true
		be.acquire(srv)
		c, err := be.dial(context.Background(), srv, be.connectTimeout(tried, srv, t.Connect.D()), from, to)
		if err == nil {
			upstream = c
			break
		}
		be.release(srv)
		s.stats.retries.Add(1)
		s.logLimited("connect", "connect to server failed; trying another", "service", s.name, "server", srv.name, "err", err)
	}
	if upstream == nil {
		s.stats.noServer.Add(1)
		return
	}
	defer be.release(srv)
	defer upstream.Close()
	s.stats.observe(time.Since(start))
	if len(pre) > 0 {
		if _, err := upstream.Write(pre); err != nil {
			return
		}
	}
	in, out := tunnel(client, upstream, t.Client.D(), t.Server.D())
	s.stats.bytesIn.Add(in + int64(len(pre)))
	s.stats.bytesOut.Add(out)
	if st.cfg.AccessLog {
		s.log.Info("connection", "service", s.name, "client", from.String(), "backend", be.cfg.Name, "server", srv.name,
			"bytes_in", in+int64(len(pre)), "bytes_out", out, "duration_ms", time.Since(start).Milliseconds())
	}
}

// side is one end of a tunnel: its connection, its idle timeout and the
// time of its last read or write, so that a side busy in one direction is
// not timed out by the other (HAProxy's client/server timeouts count
// activity both ways on a side).
type side struct {
	c    *net.TCPConn
	idle time.Duration
	last atomic.Int64 // unix nanoseconds
}

func (s *side) touch(now time.Time) { s.last.Store(now.UnixNano()) }

// tunnel copies both ways until both directions end, passing half-closes
// on; an idle side or an error ends both. It returns the bytes copied
// from a to b and from b to a.
func tunnel(a, b *net.TCPConn, aIdle, bIdle time.Duration) (ab, ba int64) {
	now := time.Now()
	sa := &side{c: a, idle: aIdle}
	sb := &side{c: b, idle: bIdle}
	sa.touch(now)
	sb.touch(now)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ba = pipe(sb, sa)
	}()
	ab = pipe(sa, sb)
	wg.Wait()
	return ab, ba
}

// pipe copies src to dst with a pooled buffer. At src's EOF it half-closes
// dst; on an error or an idle timeout it closes both connections so the
// other direction ends too.
func pipe(src, dst *side) int64 {
	bp := getBuf(copyBufSize)
	defer putBuf(bp)
	buf := *bp
	var n int64
	// One goroutine per direction: dl.r is src's read deadline, dl.w dst's
	// write deadline; each moves only when it drifts by an eighth.
	var dl deadlines
	now := time.Now() // one clock read per chunk: after it arrived
	for {
		dl.read(src.c, now.Add(src.idle), src.idle/8)
		k, err := src.c.Read(buf)
		now = time.Now()
		if k > 0 {
			src.touch(now)
			dl.write(dst.c, now.Add(dst.idle), dst.idle/8)
			if _, werr := dst.c.Write(buf[:k]); werr != nil {
				src.c.Close()
				dst.c.Close()
				return n
			}
			dst.touch(now)
			n += int64(k)
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Idle in this direction: end only if the side was idle
				// both ways for its whole timeout.
				last := time.Unix(0, src.last.Load())
				if now.Sub(last) < src.idle {
					dl.r = time.Time{} // expired: set a new one
					continue
				}
			} else if isEOF(err) {
				dst.c.CloseWrite()
				return n
			}
			src.c.Close()
			dst.c.Close()
			return n
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
