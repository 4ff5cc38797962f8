// Package proxy is halb's HAProxy half: listeners bound to service
// addresses even before this node holds the VIP (IP_FREEBIND), and
// forwarding to backend servers. This first part carries TCP mode:
// bidirectional forwarding with half-close, a connect timeout, and a retry
// on another server when a connect fails (redispatch) before any byte was
// sent. HTTP mode arrives with the HTTP/1.1 engine.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults until the config carries timeouts.
const (
	defaultConnectTimeout = 5 * time.Second
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

// forwardTCP carries one client connection to a server of p: it tries the
// servers the balancer picks, each at most once, until one accepts the
// connection (nothing has been sent yet, so a retry is safe), then copies
// both ways. On Linux, io.Copy between TCP connections uses splice(2).
func (s *service) forwardTCP(client *net.TCPConn) {
	defer client.Close()
	p := s.pool.Load()
	if p == nil || len(p.servers) == 0 {
		s.stats.noServer.Add(1)
		return
	}
	var upstream *net.TCPConn
	var srv *server
	tried := make([]bool, len(p.servers))
	for attempt := 0; attempt < len(p.servers); attempt++ {
		srv = p.pick(tried)
		if srv == nil {
			break
		}
		tried[srv.idx] = true
		c, err := net.DialTimeout("tcp", srv.addr, defaultConnectTimeout)
		if err == nil {
			upstream = c.(*net.TCPConn)
			break
		}
		srv.connectErrors.Add(1)
		s.stats.retries.Add(1)
		s.logLimited("connect", "connect to server failed; trying another", "service", s.cfg.Name, "server", srv.name, "err", err)
	}
	if upstream == nil {
		s.stats.noServer.Add(1)
		return
	}
	srv.active.Add(1)
	srv.total.Add(1)
	defer srv.active.Add(-1)
	defer upstream.Close()

	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(upstream, client)
		upstream.CloseWrite() // half-close: the server sees the client's FIN
		done <- n
	}()
	n, _ := io.Copy(client, upstream)
	client.CloseWrite()
	in := <-done
	s.stats.bytesIn.Add(in)
	s.stats.bytesOut.Add(n)
}

// serve accepts on ln until it is closed.
func (s *service) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.logLimited("accept", "accept failed", "service", s.cfg.Name, "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		s.stats.conns.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.forwardTCP(c.(*net.TCPConn))
		}()
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
