package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"halb/appliance/config"
)

// Target is what one check probes.
type Target struct {
	// Addr is the server's address host:port as in the config; host may be a
	// DNS name or an IPv6 address in brackets. icmp checks use only the host.
	Addr string
	// Port is checked instead of Addr's port. Default (0): Addr's port.
	Port int
	// Path is the request path of http(s) checks. Default: "/".
	Path string
	// ExpectStatus are the statuses a passing http(s) check gets.
	// Default (empty): 200.
	ExpectStatus config.StatusCodes
	// Host is the Host header of http(s) checks, and their TLS server name.
	// Default: Addr's host, without the port.
	Host string
	// Method is the request method of http(s) checks. Default: GET.
	Method string
	// ExpectBody, when set, must occur in the first 16 KiB of an http(s)
	// response (head and body; a chunked body is searched as sent).
	ExpectBody string
	// Verify checks an https server's certificate against the system roots
	// for Host. Default: any certificate passes.
	Verify bool
	// TLS, when set, is the TLS config of an https check (the backend's
	// backends[].tls), instead of Verify and Host.
	TLS *tls.Config
	// Send is written after a tcp check connects. Default: nothing.
	Send string
	// Expect, when set, must occur in the first 4 KiB a tcp check reads
	// back (after Send).
	Expect string
	// Timeout is the check's timeout as its errors name it ("timeout after
	// 1s"); the context's deadline is what bounds the check. Default (0):
	// the time left until that deadline as the check starts, to the
	// millisecond, which is less than the timeout by however long the
	// caller took to start the check.
	Timeout time.Duration
}

// Checker runs one check. It returns nil when the server passes, else an
// error whose text explains the failure to an operator, e.g.
// "connect 10.0.0.11:80: connection refused", "http status 503 (want 200)",
// "read response from 10.0.0.11:80: timeout after 1s",
// "no echo reply from 10.0.0.11 within 1s".
//
// The context bounds the check: Check returns by ctx's deadline or soon
// after ctx is cancelled, and leaves no goroutine or socket behind. A
// timeout matches errors.Is(err, context.DeadlineExceeded). Checkers are
// safe for concurrent use.
type Checker interface {
	Check(ctx context.Context, t Target) error
}

// NewChecker returns the checker for kind: "tcp", "http", "https", "icmp"
// or "none" (always passes).
func NewChecker(kind string) (Checker, error) {
	switch kind {
	case "tcp":
		return tcpChecker{}, nil
	case "http":
		return httpChecker{}, nil
	case "https":
		return httpChecker{tls: true}, nil
	case "icmp":
		return icmpChecker{}, nil
	case "none":
		return noneChecker{}, nil
	}
	return nil, fmt.Errorf("unknown check %q (want tcp, http, https, icmp or none)", kind)
}

type noneChecker struct{}

func (noneChecker) Check(context.Context, Target) error { return nil }

// tcpChecker passes when a TCP connection opens; it closes it at once.
type tcpChecker struct{}

func (tcpChecker) Check(ctx context.Context, t Target) error {
	within := t.budget(ctx)
	if ctx.Err() != nil {
		return failed(ctx, within, "check "+t.Addr, ctx.Err())
	}
	addr, _, err := t.dialAddr()
	if err != nil {
		return err
	}
	var d net.Dialer
	if t.Send == "" && t.Expect == "" {
		// A connect check, as HAProxy's: the server's SYN-ACK is the
		// answer. With quick ACKs off our handshake ACK is held back,
		// and the reset of closeNow goes out in its place: the server
		// never completes the connection, its application never
		// accepts (nor logs) a check, and both kernels do less.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 0) })
			return nil
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return failed(ctx, within, "connect "+addr, err)
	}
	defer closeNow(c)
	if t.Send == "" && t.Expect == "" {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if t.Send != "" {
		if _, err := io.WriteString(c, t.Send); err != nil {
			return failed(ctx, within, "send to "+addr, err)
		}
	}
	if t.Expect == "" {
		return nil
	}
	buf := make([]byte, 0, maxExpect)
	for len(buf) < maxExpect {
		n, err := c.Read(buf[len(buf):maxExpect])
		buf = buf[:len(buf)+n]
		if strings.Contains(string(buf), t.Expect) {
			return nil
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return failed(ctx, within, fmt.Sprintf("read from %s (%d bytes, no %q yet)", addr, len(buf), t.Expect), err)
		}
	}
	return fmt.Errorf("tcp reply of %s: %q not in its first %d bytes", addr, t.Expect, len(buf))
}

// closeNow ends a check's connection with a reset (SO_LINGER 0), as
// HAProxy ends its checks: no FIN exchange and no TIME_WAIT socket left per
// check, which at a thousand checks a second would hold ports for a minute.
func closeNow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// maxExpect bounds how much a tcp check reads looking for Expect.
const maxExpect = 4 << 10

// maxHead bounds how much of an http(s) response a check reads.
const maxHead = 16 << 10

// headReaders are the checks' response readers (maxHead each: a thousand
// checks a second would otherwise make 16 MB/s of garbage).
var headReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxHead) }}

// httpChecker sends one GET on a fresh connection and wants ExpectStatus.
// It is a minimal HTTP/1.1 client rather than net/http's Transport: no
// connection pool, no goroutines that outlive the check, and the body is
// never read.
type httpChecker struct {
	tls bool
}

// errBadResponse marks an http(s) response that is not HTTP/1.x.
var errBadResponse = errors.New("bad response")

func (h httpChecker) Check(ctx context.Context, t Target) error {
	within := t.budget(ctx)
	if ctx.Err() != nil {
		return failed(ctx, within, "check "+t.Addr, ctx.Err())
	}
	hr, err := t.httpRequest()
	if err != nil {
		return err
	}
	addr, vhost, want, req := hr.addr, hr.vhost, hr.want, hr.req

	d := net.Dialer{KeepAlive: -1} // one exchange: no keep-alive set-up
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return failed(ctx, within, "connect "+addr, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	// Closing the TCP connection (not the TLS one, whose Close writes)
	// ends any read, write or handshake in progress.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	conn := raw
	if h.tls {
		// Any certificate passes unless Verify asks for the system roots.
		cfg := t.TLS
		if cfg == nil {
			cfg = &tls.Config{InsecureSkipVerify: !t.Verify, ServerName: hostOnly(vhost)}
		}
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return failed(ctx, within, "tls handshake with "+addr, err)
		}
		conn = tc
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return failed(ctx, within, "send request to "+addr, err)
	}
	br := headReaders.Get().(*bufio.Reader)
	defer func() { br.Reset(nil); headReaders.Put(br) }()
	code, err := readStatus(conn, br)
	if errors.Is(err, errBadResponse) {
		return err
	}
	if err != nil {
		return failed(ctx, within, "read response from "+addr, err)
	}
	if !want.Contains(code) {
		return statusError(code, want)
	}
	if t.ExpectBody == "" {
		return nil
	}
	// The rest of the 16 KiB: the server closes after the response
	// (Connection: close), so reading to EOF or the bound is enough.
	body, err := io.ReadAll(br)
	if strings.Contains(string(body), t.ExpectBody) {
		return nil
	}
	if err != nil {
		return failed(ctx, within, "read body from "+addr, err)
	}
	return fmt.Errorf("http body of %s: %q not in its first %d bytes", addr, t.ExpectBody, len(body))
}

// httpCheck is what an http(s) check of a Target sends and wants.
type httpCheck struct {
	addr  string // host:port to connect to
	vhost string // the Host header
	want  config.StatusCodes
	req   string
}

// httpRequest is the request an http(s) check of t sends, checked.
func (t Target) httpRequest() (httpCheck, error) {
	addr, host, err := t.dialAddr()
	if err != nil {
		return httpCheck{}, err
	}
	path := t.Path
	if path == "" {
		path = "/"
	}
	vhost := t.Host
	if vhost == "" {
		vhost = host
		if strings.Contains(vhost, ":") { // IPv6; a zone has no place in Host
			vhost, _, _ = strings.Cut(vhost, "%")
			vhost = "[" + vhost + "]"
		}
	}
	if !isToken(path) {
		return httpCheck{}, fmt.Errorf("http check of %s: bad path %q", addr, path)
	}
	if !isToken(vhost) {
		return httpCheck{}, fmt.Errorf("http check of %s: bad host %q", addr, vhost)
	}
	want := t.ExpectStatus
	if len(want) == 0 {
		want = config.StatusCodes{{Lo: 200, Hi: 200}}
	}
	method := t.Method
	if method == "" {
		method = "GET"
	}
	if !isToken(method) {
		return httpCheck{}, fmt.Errorf("http check of %s: bad method %q", addr, method)
	}
	req := method + " " + path + " HTTP/1.1\r\nHost: " + vhost +
		"\r\nUser-Agent: halb-health\r\nConnection: close\r\nAccept: */*\r\n\r\n"
	return httpCheck{addr: addr, vhost: vhost, want: want, req: req}, nil
}

func statusError(code int, want config.StatusCodes) error {
	return fmt.Errorf("http status %d (want %s)", code, want)
}

// parseHeads reads the response heads in b: the status of the final one
// (interim 1xx responses are skipped; 101 is final, no upgrade was asked)
// and the length of the heads once its head is complete (done), or done
// false when b holds no complete final head yet. eof says no more bytes
// will come: an unfinished head is then errBadResponse, as is one of
// maxHead bytes or more.
func parseHeads(b []byte, eof bool) (code, n int, done bool, err error) {
	rest := b
	line := func() ([]byte, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, false
		}
		l := rest[:i]
		rest = rest[i+1:]
		return bytes.TrimSuffix(l, []byte("\r")), true
	}
	incomplete := func() (int, int, bool, error) {
		switch {
		case len(b) >= maxHead:
			return 0, 0, false, fmt.Errorf("%w: head longer than %d bytes", errBadResponse, maxHead)
		case !eof:
			return 0, 0, false, nil
		case len(b) == 0:
			return 0, 0, false, fmt.Errorf("%w: connection closed before the status line", errBadResponse)
		}
		return 0, 0, false, fmt.Errorf("%w: connection closed after %d bytes of head", errBadResponse, len(b))
	}
	for {
		status, ok := line()
		if !ok {
			return incomplete()
		}
		code, err := parseStatusLine(string(status))
		if err != nil {
			return 0, 0, false, err
		}
		for {
			h, ok := line()
			if !ok {
				return incomplete()
			}
			if len(h) == 0 {
				break
			}
		}
		if code >= 200 || code == 101 {
			return code, len(b) - len(rest), true, nil
		}
	}
}

// readStatus reads response heads from r through br, at most maxHead
// bytes in all, and returns the status of the final one (parseHeads: interim
// 1xx responses are skipped), br positioned after its head (the body,
// within the bound). A malformed or truncated head is errBadResponse;
// other errors are r's.
func readStatus(r io.Reader, br *bufio.Reader) (int, error) {
	br.Reset(&io.LimitedReader{R: r, N: maxHead})
	for want := 1; ; {
		_, err := br.Peek(want) // what has come, and at least one byte more
		if err != nil && err != io.EOF {
			return 0, err
		}
		b, _ := br.Peek(br.Buffered())
		code, n, done, perr := parseHeads(b, err == io.EOF)
		if perr != nil {
			return 0, perr
		}
		if done {
			br.Discard(n)
			return code, nil
		}
		want = len(b) + 1
	}
}

// parseStatusLine returns the status of "HTTP/1.1 200 OK"; the reason
// phrase may be empty or missing.
func parseStatusLine(s string) (int, error) {
	proto, rest, _ := strings.Cut(s, " ")
	digits, _, _ := strings.Cut(rest, " ")
	if len(proto) != len("HTTP/1.x") || !strings.HasPrefix(proto, "HTTP/1.") || !isDigits(proto[7:]) ||
		len(digits) != 3 || !isDigits(digits) || digits[0] == '0' {
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return 0, fmt.Errorf("%w: status line %q", errBadResponse, s)
	}
	code, _ := strconv.Atoi(digits)
	return code, nil
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s fits in a request line or header: not empty,
// no spaces or control characters.
func isToken(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return s != ""
}

// hostOnly drops the port from a Host header: "a.example:8443" -> "a.example",
// "[::1]" -> "::1".
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// splitAddr returns the host of t.Addr and the port to check: t.Port if
// set, else Addr's (empty if it has none). Addr may lack the port ("db1",
// "[2001:db8::1]", "2001:db8::1").
func (t Target) splitAddr() (host, port string) {
	host, port, err := net.SplitHostPort(t.Addr)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(t.Addr, "["), "]"), ""
	}
	if t.Port != 0 {
		port = strconv.Itoa(t.Port)
	}
	return host, port
}

// dialAddr returns the host:port a tcp or http(s) check connects to, and
// the host alone.
func (t Target) dialAddr() (addr, host string, err error) {
	host, port := t.splitAddr()
	if host == "" || port == "" {
		return "", "", fmt.Errorf("check %q: want host:port or a check port", t.Addr)
	}
	return net.JoinHostPort(host, port), host, nil
}

// budget is the check's timeout for messages like "timeout after 1s":
// t.Timeout, else checkBudget.
func (t Target) budget(ctx context.Context) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return checkBudget(ctx)
}

// checkBudget is the time left until ctx's deadline (0: none), rounded for
// messages like "timeout after 1s".
func checkBudget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	d := max(time.Until(dl), 0)
	if d > time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d
}

// timeoutError is a check that ran out of time. It matches
// context.DeadlineExceeded.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string        { return e.msg }
func (e *timeoutError) Timeout() bool        { return true }
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// failed describes err from the step what of a check: running out of time
// reads "timeout after 1s", a cancelled check gives ctx's cause, and a
// socket error drops the addresses net repeats ("connect 10.0.0.11:80:
// connection refused", not "...: dial tcp 10.0.0.11:80: connect: ...").
func failed(ctx context.Context, within time.Duration, what string, err error) error {
	switch cerr := ctx.Err(); {
	case errors.Is(cerr, context.Canceled):
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case cerr != nil, errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: %w", what, &timeoutError{"timeout after " + within.String()})
	}
	var errno syscall.Errno
	var op *net.OpError
	switch {
	case errors.As(err, &errno):
		err = errno
	case errors.As(err, &op) && op.Err != nil:
		err = op.Err
	}
	return fmt.Errorf("%s: %w", what, err)
}
