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

	"halb/appliance/proxy/hello"
	"halb/appliance/proxy/proxyproto"
)

// listenFreebind listens on addr with IP_FREEBIND (IPv6: IPV6_FREEBIND) so a
// service binds its VIP before this node holds it: a VRRP takeover then
// needs no rebind. Accepted connections get no TCP keep-alive probes
// (HAProxy's default, no clitcpka), as dialed ones (see backend.dial).
func listenFreebind(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(network, _ string, rc syscall.RawConn) error {
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
	accepted := time.Now()
	s.stats.opened()
	st := s.state.Load()
	client := addrPort(c.RemoteAddr())
	local := addrPort(c.LocalAddr())
	var pre []byte
	proxied := false
	if st.trusts(client.Addr()) {
		h, rest, err := readProxyHeader(c, st.cfg.Timeouts.HTTPRequest.D())
		if err != nil {
			s.stats.badRequests.Add(1)
			s.logLimited("proxyproto", "PROXY protocol header refused", "service", s.name, "client", client, "err", err)
			rec := newRecord(accepted, client, s.name, s.mode != "tcp")
			rec.Termination = stPR
			rec.Total = time.Since(accepted)
			s.account(st, &rec, nil, nil)
			c.Close()
			s.stats.active.Add(-1)
			return
		}
		if !h.Local {
			client = netip.AddrPortFrom(h.Src.Addr().Unmap(), h.Src.Port())
			local = netip.AddrPortFrom(h.Dst.Addr().Unmap(), h.Dst.Port())
			proxied = true
		}
		pre = rest
	}
	var tc *tlsClient
	if st.tls != nil {
		// The handshake is bounded as a request head (http) or by the
		// client's idle timeout (tcp).
		d := st.cfg.Timeouts.Client.D()
		if s.mode != "tcp" {
			d = st.cfg.Timeouts.HTTPRequest.D()
		}
		var err error
		tc, err = s.handshake(c, pre, st.tls, accepted.Add(d))
		if err != nil {
			why := handshakeFailure(err)
			s.stats.tlsFailed(why)
			if why != "empty" {
				s.logLimited("tls:"+why, "TLS handshake failed", "service", s.name, "client", client, "reason", why, "err", err)
			}
			c.Close()
			s.stats.active.Add(-1)
			return
		}
		s.stats.tlsDone(&tc.info)
		pre = nil
	}
	if s.mode == "tcp" {
		var cc streamConn = c
		if tc != nil {
			cc = tc
		}
		be, sni := st.def, ""
		if st.sniRouted {
			if tc != nil {
				sni = tc.info.sni
			} else {
				// Not terminated: read the ClientHello for its name,
				// then replay it (after the bytes that came with a PROXY
				// header) to the server.
				info, raw, err := hello.Read(&prefixConn{TCPConn: c, pre: pre}, accepted.Add(st.cfg.Timeouts.HTTPRequest.D()), nil)
				if err != nil {
					why := hello.Reason(err)
					s.stats.helloFailed(why)
					s.logLimited("hello:"+why, "TLS ClientHello refused", "service", s.name, "client", client, "reason", why, "err", err)
					rec := newRecord(accepted, client, s.name, false)
					rec.Termination, rec.BytesIn, rec.Total = stPR, int64(len(raw)), time.Since(accepted)
					s.account(st, &rec, nil, nil)
					c.Close()
					s.stats.active.Add(-1)
					return
				}
				sni, pre = info.SNI, raw
			}
			be = st.sniBackend(sni)
			s.stats.sniRouted(be != st.def)
		}
		s.forwardTCP(cc, st, be, client, local, pre, accepted, tc, sni)
		s.stats.active.Add(-1)
		return
	}
	h := &httpConn{s: s, c: c, t: tc, client: client}
	if proxied {
		h.proxied = &proxiedAddrs{client: client, dst: local}
	}
	h.serve(pre, accepted)
}

// prefixConn reads pre before the socket's bytes.
type prefixConn struct {
	*net.TCPConn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.TCPConn.Read(b)
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
// It accounts the connection (one access record) when it ends.
func (s *service) forwardTCP(client streamConn, st *serviceState, be *backend, from, to netip.AddrPort, pre []byte, accepted time.Time, tc *tlsClient, sni string) {
	defer client.Close()
	rec := newRecord(accepted, from, s.name, false)
	rec.SNI = sni
	if tc != nil {
		tc.info.record(&rec)
	} else if sni != "" {
		rec.Handshake = -1 // not terminated here
	}
	if be == nil || len(be.servers) == 0 {
		s.stats.noServer.Add(1)
		rec.Termination = stSC
		rec.Total = time.Since(accepted)
		s.account(st, &rec, nil, nil)
		return
	}
	rec.Backend = be.cfg.Name
	t := st.cfg.Timeouts
	var tried triedSet
	key := from.Addr().As16()
	start := time.Now()
	var upstream *upstream
	var srv *server
	var pickErr, dialErr error
	for range be.servers {
		sess, at, err := be.pickTimed(&tried, key[:], from.Addr(), "", t.Queue.D(), &rec, s.stats, srv)
		if err != nil {
			pickErr = err
			break
		}
		srv = sess.srv
		tried.add(srv.idx)
		c, err := be.dialTimed(srv, be.connectTimeout(&tried, srv, t.Connect.D()), from, to, at, &rec)
		if err == nil {
			upstream = c
			break
		}
		dialErr = err
		be.release(srv)
		s.logLimited("connect", "connect to server failed; trying another", "service", s.name, "server", srv.name, "err", err)
	}
	if upstream == nil {
		s.stats.noServer.Add(1)
		rec.Termination = noConnection(pickErr, dialErr)
		rec.Total = time.Since(accepted)
		s.account(st, &rec, be, nil)
		return
	}
	s.stats.observe(time.Since(start))
	var in, out int64
	var err error
	if len(pre) > 0 { // bytes that came with a PROXY header
		_, err = upstream.Write(pre)
	}
	if err != nil {
		rec.Termination = byTimeout(err, 'S', 'D')
	} else {
		ab, ba, end := tunnel(client, upstream, t.Client.D(), t.Server.D())
		in, out = int64(len(pre))+ab, ba
		rec.Termination = end
	}
	upstream.Close()
	be.release(srv)
	s.stats.bytesIn.Add(in)
	s.stats.bytesOut.Add(out)
	rec.BytesIn, rec.BytesOut = in, out
	rec.Total = time.Since(accepted)
	s.account(st, &rec, be, srv)
}

// side is one end of a tunnel: its connection, its idle timeout and the
// time of its last read or write, so that a side busy in one direction is
// not timed out by the other (HAProxy's client/server timeouts count
// activity both ways on a side).
type side struct {
	c    streamConn
	who  byte // 'C' client, 'S' server: in termination states
	idle time.Duration
	last atomic.Int64 // unix nanoseconds
	// t is the tunnel's state, shared by both sides.
	t *tunnelState
	// io reads and writes c with raw system calls when it is a plain
	// TCP connection; nil over TLS. The direction that reads c uses its
	// read half, the other its write half.
	io *rawIO
}

// tunnelState is what the two directions of a tunnel share.
type tunnelState struct {
	// end is the termination state: the first failure sets it, before
	// it closes the connections (so the other direction's failure that
	// the close causes loses).
	end atomic.Uint32
	// eofs counts the directions that ended at their source's EOF.
	eofs atomic.Int32
}

// newSide is c's side of tunnel t.
func newSide(c streamConn, who byte, idle time.Duration, t *tunnelState) *side {
	s := &side{c: c, who: who, idle: idle, t: t}
	var tc *net.TCPConn
	switch c := c.(type) {
	case *net.TCPConn:
		tc = c
	case *upstream:
		if c.t == nil {
			tc = c.TCPConn
		}
	}
	if tc != nil {
		s.io = newRawIO(tc)
	}
	return s
}

func (s *side) read(b []byte) (int, error) {
	if s.io != nil {
		return s.io.Read(b)
	}
	return s.c.Read(b)
}

func (s *side) write(b []byte) (int, error) {
	if s.io != nil {
		return s.io.Write(b)
	}
	return s.c.Write(b)
}

func (s *side) touch(now time.Time) { s.last.Store(now.UnixNano()) }

// forward writes b, read from s at now, to dst: both sides count it as
// activity (dst once written), and dst's write deadline (dl's) moves with
// it.
func (s *side) forward(dst *side, b []byte, now time.Time, dl *deadlines) error {
	s.toward(dst, now, dl)
	if _, err := dst.write(b); err != nil {
		return err
	}
	dst.touch(now)
	return nil
}

// toward is forward's part before the write.
func (s *side) toward(dst *side, now time.Time, dl *deadlines) {
	s.touch(now)
	dl.write(dst.c, now.Add(dst.idle), dst.idle/8)
}

// tunnel copies both ways between the client a and the server b until
// both directions end, passing half-closes on; an idle side or an error
// ends both. It returns the bytes copied from a to b and from b to a, and
// the termination state: "--" when both directions ended, else the first
// failure's (CD, SD, or cD, sD for an idle timeout).
func tunnel(a, b streamConn, aIdle, bIdle time.Duration) (ab, ba int64, end [2]byte) {
	now := time.Now()
	var t tunnelState
	sa := newSide(a, 'C', aIdle, &t)
	sb := newSide(b, 'S', bIdle, &t)
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
	end = stNormal
	if v := t.end.Load(); v != 0 {
		end = [2]byte{byte(v >> 8), byte(v)}
	}
	return ab, ba, end
}

// fail records the tunnel's termination state unless one is set: side
// who failed, in the data stage, by a timeout if err is one.
func (s *side) fail(who byte, err error) {
	st := byTimeout(err, who, 'D')
	s.t.end.CompareAndSwap(0, uint32(st[0])<<8|uint32(st[1]))
}

// pipe copies src to dst with a pooled buffer. At src's EOF it half-closes
// dst, or closes it when the other direction ended at its EOF already; on
// an error or an idle timeout it closes both connections so the other
// direction ends too. Once src has sent twice, a pump carries the
// direction (see pump).
func pipe(src, dst *side) int64 {
	bp := getBuf(copyBufSize)
	defer putBuf(bp)
	buf := *bp
	var n int64
	// One goroutine per direction: dl.r is src's read deadline, dl.w dst's
	// write deadline; each moves only when it drifts by an eighth.
	var dl deadlines
	var p *pump
	chunks := 0
	now := time.Now() // one clock read per chunk: after it arrived
	for {
		dl.read(src.c, now.Add(src.idle), src.idle/8)
		var err, werr error
		if p != nil {
			var k int64
			k, werr, err = p.run()
			n += k
			now = time.Now()
		} else {
			var k int
			k, err = src.read(buf)
			now = time.Now()
			if k > 0 {
				if werr = src.forward(dst, buf[:k], now, &dl); werr == nil {
					n += int64(k)
					if chunks++; chunks == 2 && err == nil {
						if p = startPump(src, dst, &dl, buf); p != nil {
							defer p.stop()
						}
					}
				}
			}
		}
		if werr != nil {
			src.fail(dst.who, werr)
			src.c.Close()
			dst.c.Close()
			return n
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Idle in this direction: end only if the side was idle
				// both ways for its whole timeout.
				last := time.Unix(0, src.last.Load())
				if now.Sub(last) < src.idle {
					dl.r = 0 // expired: set a new one
					continue
				}
			} else if isEOF(err) {
				if src.t.eofs.Add(1) == 2 {
					// The other way ended at its EOF before: dst sent
					// its FIN and was read to the end, so closing it
					// sends ours as a half-close would, one system
					// call less (HAProxy closes too). The caller's
					// Close then finds it closed.
					dst.c.Close()
				} else {
					dst.c.CloseWrite()
				}
				return n
			}
			src.fail(src.who, err)
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
