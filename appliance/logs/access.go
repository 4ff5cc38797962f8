// Package logs writes halbd's logs where operators read them: the access
// log (one record per request or tcp connection) and the daemon's own log,
// to files with size-based rotation, to remote syslog (RFC 5424 over UDP or
// TCP) and to the journal. Writing never blocks the caller: every target has
// a bounded queue, and a line that does not fit is dropped and counted.
package logs

import (
	"net/netip"
	"time"
)

// Access is one access-log record: a request (http mode) or a connection
// (tcp mode). The proxy fills it and hands it to an AccessLogger, which
// must not keep the pointer after the call returns.
type Access struct {
	// Start is when the connection was accepted (tcp) or the request's
	// first byte arrived (http; for a kept-alive connection, when the
	// previous request ended).
	Start   time.Time
	Client  netip.AddrPort
	Service string
	// HTTP is true for a request of an http-mode service.
	HTTP bool
	// Backend and Server are "" when none was chosen (HAProxy's <NOSRV>).
	Backend, Server string
	// Status is the HTTP status sent to the client, 0 when none was sent
	// (tcp mode, or the connection ended first).
	Status int
	// BytesIn counts bytes from the client, BytesOut bytes sent to it (the
	// response head included: HAProxy's %B).
	BytesIn, BytesOut int64
	// Timings, HAProxy's: Request is the time to a complete request head
	// (TR), Queue the time spent waiting for a server slot (Tw), Connect the
	// time to the server's TCP connection (Tc), Response the time from the
	// request sent to the response head (Tr, http only), Total the whole
	// request or connection (Ta for http, Tt for tcp). -1 for a stage that
	// was never reached.
	Request, Queue, Connect, Response, Total time.Duration
	// Retries counts connection attempts beyond the first; Redispatched
	// is set when a retry went to another server.
	Retries      int
	Redispatched bool
	// Termination is HAProxy's two-letter termination state: who ended the
	// session (C client, S server, P proxy, R resource, I internal, c/s
	// client/server timeout, - normal) and in which stage (R request, Q
	// queue, C connect, H response headers, D data, - normal).
	Termination [2]byte
	// Request line (http): method, host, path (with query), protocol.
	Method, Host, Path, Proto string
	// TLS, when the service terminates it: the version ("TLSv1.3"), the
	// cipher suite, the client's SNI name ("" none) and the handshake's
	// time (HAProxy's %sslv, %sslc, %[ssl_fc_sni], %Th; the connection's
	// first request only, 0 for the next ones).
	TLSVersion, TLSCipher, SNI string
	Handshake                  time.Duration
}

// AccessLogger takes access records. Access must not block and must not
// keep r.
type AccessLogger interface {
	Access(r *Access)
}
