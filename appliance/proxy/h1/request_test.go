package h1

import (
	"errors"
	"strings"
	"testing"
)

// outcome is 0 for success, -1 for ErrIncomplete, else the Error's status.
func outcome(t *testing.T, err error) int {
	t.Helper()
	var e *Error
	switch {
	case err == nil:
		return 0
	case err == ErrIncomplete:
		return -1
	case errors.As(err, &e):
		return e.Status
	}
	t.Fatalf("unexpected error type %T: %v", err, err)
	return 0
}

// reqWant is what a parsed request holds; headLen 0 means the whole input.
type reqWant struct {
	method, target, path, host string
	minor                      int
	cl                         int64
	chunked, close             bool
	expect100, upgrade         bool
	headLen                    int
}

func get(hdrs string) string { return "GET / HTTP/1.1\r\nHost: a\r\n" + hdrs + "\r\n" }

func TestParseRequest(t *testing.T) {
	small := Limits{MaxLine: 32, MaxHeaderBytes: 64, MaxHeaders: 2}
	tests := []struct {
		name   string
		in     string
		lim    Limits
		status int      // 0 success, -1 ErrIncomplete
		want   *reqWant // checked on success
	}{
		// Request line (RFC 9112 §3).
		{name: "simple", in: "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n",
			want: &reqWant{method: "GET", target: "/a?b=c", path: "/a?b=c", host: "example.com", minor: 1, cl: -1}},
		{name: "any token method", in: "M-SEARCH.x / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &reqWant{method: "M-SEARCH.x", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "TRACE", in: "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &reqWant{method: "TRACE", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "HTTP/1.0 no Host", in: "GET / HTTP/1.0\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", minor: 0, cl: -1, close: true}},
		{name: "double SP after method", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "double SP before version", in: "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "SP after version", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", status: 400},
		{name: "HTAB separator", in: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "empty method", in: " / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "non-token method", in: "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "target with SP", in: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "target with CTL", in: "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "target with DEL", in: "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "target with 8-bit byte", in: "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "target with fragment", in: "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "HTTP/0.9 line", in: "GET /\r\n\r\n", status: 400},
		{name: "HTTP/2.0", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
		{name: "h2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505},
		{name: "HTTP/1.2", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", status: 505},
		{name: "HTTP/0.9 version", in: "GET / HTTP/0.9\r\nHost: a\r\n\r\n", status: 505},
		{name: "lowercase version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "two-digit minor", in: "GET / HTTP/1.10\r\nHost: a\r\n\r\n", status: 400},
		{name: "no dot", in: "GET / HTTP/11\r\nHost: a\r\n\r\n", status: 400},
		{name: "leading empty lines", in: "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "leading bare CR", in: "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "CONNECT", in: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", status: 501},
		{name: "OPTIONS *", in: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &reqWant{method: "OPTIONS", target: "*", path: "*", host: "a", minor: 1, cl: -1}},
		{name: "GET *", in: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "authority-form outside CONNECT", in: "GET a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n", status: 400},
		{name: "relative target", in: "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},

		// Line ends (RFC 9112 §2.2).
		{name: "bare LF lines", in: "GET / HTTP/1.1\nHost: a\nX: y\n\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "mixed line ends", in: "GET / HTTP/1.1\r\nHost: a\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "bare CR in request line", in: "GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n", status: 400},
		{name: "bare CR line end", in: "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", status: 400},
		{name: "bare CR in value", in: get("X: a\rb\r\n"), status: 400},
		{name: "CR CR LF", in: get("X: a\r\r\n"), status: 400},
		{name: "bare CR as end of head", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", status: 400},

		// Field lines (RFC 9112 §5).
		{name: "OWS trimmed", in: get("X: \t v w \t\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "obs-text value", in: get("X: caf\xc3\xa9\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "empty value", in: get("X:\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "SP before colon", in: get("X : b\r\n"), status: 400},
		{name: "HTAB before colon", in: get("X\t: b\r\n"), status: 400},
		{name: "non-token name", in: get("X(y): b\r\n"), status: 400},
		{name: "8-bit name", in: get("X\xe9: b\r\n"), status: 400},
		{name: "empty name", in: get(": b\r\n"), status: 400},
		{name: "no colon", in: get("Xb\r\n"), status: 400},
		{name: "NUL in value", in: get("X: a\x00b\r\n"), status: 400},
		{name: "VT in value", in: get("X: a\x0bb\r\n"), status: 400},
		{name: "DEL in value", in: get("X: a\x7fb\r\n"), status: 400},
		{name: "obs-fold", in: get("X: a\r\n b\r\n"), status: 400},
		{name: "obs-fold HTAB", in: get("X: a\r\n\tb\r\n"), status: 400},
		{name: "SP before first field", in: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", status: 400},

		// Host (RFC 9112 §3.2).
		{name: "missing Host", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "two Hosts", in: get("Host: a\r\n"), status: 400},
		{name: "two Hosts HTTP/1.0", in: "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", status: 400},
		{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", status: 400},
		{name: "Host with port", in: "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "Example.COM:8080", minor: 1, cl: -1}},
		{name: "Host IPv4", in: "GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "10.0.0.1:80", minor: 1, cl: -1}},
		{name: "Host IPv6", in: "GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "[2001:db8::1]:80", minor: 1, cl: -1}},
		{name: "Host IPv6 v4-mapped", in: "GET / HTTP/1.1\r\nHost: [::ffff:10.0.0.1]\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "[::ffff:10.0.0.1]", minor: 1, cl: -1}},
		{name: "Host pct-encoded", in: "GET / HTTP/1.1\r\nHost: a%2Db\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a%2Db", minor: 1, cl: -1}},
		{name: "Host with space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
		{name: "Host userinfo", in: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", status: 400},
		{name: "Host two ports", in: "GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", status: 400},
		{name: "Host long port", in: "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", status: 400},
		{name: "Host port only", in: "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", status: 400},
		{name: "Host unclosed IPv6", in: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", status: 400},
		{name: "Host bad IPv6", in: "GET / HTTP/1.1\r\nHost: [1:::2]\r\n\r\n", status: 400},
		{name: "Host IPv6 zone", in: "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", status: 400},
		{name: "Host bad pct", in: "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", status: 400},
		{name: "Host with slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400},

		// absolute-form (RFC 9112 §3.2.2).
		{name: "absolute-form", in: "GET http://Example.com:8080/p?q HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n",
			want: &reqWant{method: "GET", target: "http://Example.com:8080/p?q", path: "/p?q", host: "example.COM:8080", minor: 1, cl: -1}},
		{name: "absolute-form https no path", in: "GET HTTPS://a HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &reqWant{method: "GET", target: "HTTPS://a", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "absolute-form HTTP/1.0 takes Host from target", in: "GET http://a/x HTTP/1.0\r\n\r\n",
			want: &reqWant{method: "GET", target: "http://a/x", path: "/x", host: "a", minor: 0, cl: -1, close: true}},
		{name: "absolute-form Host mismatch", in: "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", status: 400},
		{name: "absolute-form port mismatch", in: "GET http://a:80/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "absolute-form missing Host", in: "GET http://a/ HTTP/1.1\r\n\r\n", status: 400},
		{name: "absolute-form ftp", in: "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "absolute-form userinfo", in: "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "absolute-form empty authority", in: "GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "absolute-form query without path", in: "GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},

		// Content-Length (RFC 9112 §6.3).
		{name: "Content-Length", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
			want: &reqWant{method: "POST", target: "/", path: "/", host: "a", minor: 1, cl: 5, headLen: 47}},
		{name: "Content-Length zero", in: get("Content-Length: 0\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: 0}},
		{name: "Content-Length leading zeros", in: get("Content-Length: 007\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: 7}},
		{name: "Content-Length 2^62", in: get("Content-Length: 4611686018427387904\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: 1 << 62}},
		{name: "Content-Length 2^62+1", in: get("Content-Length: 4611686018427387905\r\n"), status: 400},
		{name: "Content-Length overflow", in: get("Content-Length: 99999999999999999999\r\n"), status: 400},
		{name: "Content-Length empty", in: get("Content-Length:\r\n"), status: 400},
		{name: "Content-Length sign", in: get("Content-Length: +5\r\n"), status: 400},
		{name: "Content-Length negative", in: get("Content-Length: -1\r\n"), status: 400},
		{name: "Content-Length inner space", in: get("Content-Length: 5 6\r\n"), status: 400},
		{name: "Content-Length hex", in: get("Content-Length: 0x5\r\n"), status: 400},
		{name: "Content-Length decimal point", in: get("Content-Length: 5.0\r\n"), status: 400},
		{name: "Content-Length same twice", in: get("Content-Length: 5\r\nContent-Length: 5\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: 5}},
		{name: "Content-Length same list", in: get("Content-Length: 5, 5,5\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: 5}},
		{name: "Content-Length differing", in: get("Content-Length: 5\r\nContent-Length: 6\r\n"), status: 400},
		{name: "Content-Length differing list", in: get("Content-Length: 5, 6\r\n"), status: 400},
		{name: "Content-Length empty element", in: get("Content-Length: 5,,5\r\n"), status: 400},
		{name: "Content-Length trailing comma", in: get("Content-Length: 5,\r\n"), status: 400},

		// Transfer-Encoding (RFC 9112 §6.1, §7).
		{name: "chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: &reqWant{method: "POST", target: "/", path: "/", host: "a", minor: 1, cl: -1, chunked: true}},
		{name: "chunked any case", in: get("transfer-ENCODING: ChUnKeD\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1, chunked: true}},
		{name: "chunked OWS", in: get("Transfer-Encoding: \tchunked \r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1, chunked: true}},
		{name: "chunked twice", in: get("Transfer-Encoding: chunked, chunked\r\n"), status: 400},
		{name: "chunked in two fields", in: get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), status: 400},
		{name: "chunked not final", in: get("Transfer-Encoding: chunked, gzip\r\n"), status: 400},
		{name: "gzip only", in: get("Transfer-Encoding: gzip\r\n"), status: 400},
		{name: "identity", in: get("Transfer-Encoding: identity\r\n"), status: 400},
		{name: "gzip then chunked", in: get("Transfer-Encoding: gzip, chunked\r\n"), status: 501},
		{name: "gzip then chunked in two fields", in: get("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), status: 501},
		{name: "chunked with parameter", in: get("Transfer-Encoding: chunked;q=1\r\n"), status: 400},
		{name: "quoted chunked", in: get("Transfer-Encoding: \"chunked\"\r\n"), status: 400},
		{name: "empty TE", in: get("Transfer-Encoding:\r\n"), status: 400},
		{name: "TE empty element", in: get("Transfer-Encoding: , chunked\r\n"), status: 400},
		{name: "TE HTTP/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "TE and CL", in: get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), status: 400},

		// Limits.
		{name: "headers at MaxHeaders", lim: small, in: "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "headers beyond MaxHeaders", lim: small, in: "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nZ: w\r\n\r\n", status: 431},
		{name: "head at MaxHeaderBytes", lim: small, in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 64-32) + "\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "head beyond MaxHeaderBytes", lim: small, in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 64-31) + "\r\n\r\n", status: 431},
		{name: "incomplete head at MaxHeaderBytes", lim: small, in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 64-28), status: 431},
		{name: "incomplete head below MaxHeaderBytes", lim: small, in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 64-29), status: -1},
		{name: "empty lines beyond MaxHeaderBytes", lim: small, in: strings.Repeat("\r\n", 32), status: 431},
		{name: "request line at MaxLine", lim: small, in: "GET /" + strings.Repeat("a", 32-16) + " HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &reqWant{method: "GET", target: "/" + strings.Repeat("a", 16), path: "/" + strings.Repeat("a", 16), host: "a", minor: 1, cl: -1}},
		{name: "request line beyond MaxLine", lim: small, in: "GET /" + strings.Repeat("a", 32-15) + " HTTP/1.1\r\nHost: a\r\n\r\n", status: 414},
		{name: "incomplete request line at MaxLine", lim: small, in: "GET /" + strings.Repeat("a", 32-5), status: 414},
		{name: "incomplete request line below MaxLine", lim: small, in: "GET /" + strings.Repeat("a", 32-6), status: -1},
		{name: "incomplete TLS hello", in: "\x16\x03\x01\x02\x00\x01", status: 400},
		{name: "incomplete bad method", in: "GET\x00", status: 400},
		{name: "incomplete", in: "GET / HTTP/1.1\r\nHost: a\r\n", status: -1},
		{name: "empty", in: "", status: -1},

		// Connection, Expect, Upgrade.
		{name: "Connection close", in: get("Connection: keep-alive, Close\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1, close: true}},
		{name: "Connection close second field", in: get("Connection: foo\r\nConnection: close\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1, close: true}},
		{name: "Connection closed is not close", in: get("Connection: closed\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", minor: 0, cl: -1}},
		{name: "HTTP/1.0 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", minor: 0, cl: -1, close: true}},
		{name: "Upgrade", in: get("Connection: Upgrade\r\nUpgrade: websocket\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1, upgrade: true}},
		{name: "Upgrade field without token", in: get("Upgrade: websocket\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "Upgrade token without field", in: get("Connection: upgrade\r\n"),
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: -1}},
		{name: "Upgrade HTTP/1.0", in: "GET / HTTP/1.0\r\nConnection: upgrade, keep-alive\r\nUpgrade: websocket\r\n\r\n",
			want: &reqWant{method: "GET", target: "/", path: "/", minor: 0, cl: -1}},
		{name: "Expect 100-continue", in: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
			want: &reqWant{method: "POST", target: "/", path: "/", host: "a", minor: 1, cl: 1, expect100: true}},
		{name: "Expect HTTP/1.0 ignored", in: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
			want: &reqWant{method: "POST", target: "/", path: "/", minor: 0, cl: 1, close: true}},
		{name: "Expect other", in: get("Expect: 200-ok\r\n"), status: 417},
		{name: "Expect list", in: get("Expect: 100-continue, foo\r\n"), status: 417},

		// Bodies on any method.
		{name: "GET with body", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
			want: &reqWant{method: "GET", target: "/", path: "/", host: "a", minor: 1, cl: 2, headLen: 46}},
		{name: "HEAD chunked", in: "HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: &reqWant{method: "HEAD", target: "/", path: "/", host: "a", minor: 1, cl: -1, chunked: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			got := outcome(t, ParseRequest([]byte(tt.in), tt.lim, &req))
			if got != tt.status {
				t.Fatalf("outcome %d, want %d", got, tt.status)
			}
			if tt.status != 0 {
				return
			}
			w := *tt.want
			if w.headLen == 0 {
				w.headLen = len(tt.in)
			}
			g := reqWant{
				method: string(req.Method), target: string(req.Target), path: string(req.Path),
				host: string(req.Host), minor: req.Minor, cl: req.ContentLength, chunked: req.Chunked,
				close: req.Close, expect100: req.Expect100, upgrade: req.Upgrade, headLen: req.HeadLen,
			}
			if g != w {
				t.Errorf("got  %+v\nwant %+v", g, w)
			}
			// Every prefix of the head is incomplete.
			for i := range req.HeadLen {
				var r Request
				if got := outcome(t, ParseRequest([]byte(tt.in[:i]), tt.lim, &r)); got != -1 {
					t.Fatalf("prefix %q: outcome %d, want incomplete", tt.in[:i], got)
				}
			}
		})
	}
}

func TestParseRequestHeaders(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nX-A:  1 \r\nx-a:\t2\t3\r\nEmpty:\r\n\r\n"
	req := Request{Headers: make([]Header, 0, 1)}
	if err := ParseRequest([]byte(in), DefaultLimits, &req); err != nil {
		t.Fatal(err)
	}
	want := []string{"Host", "a", "X-A", "1", "x-a", "2\t3", "Empty", ""}
	var got []string
	for _, h := range req.Headers {
		got = append(got, string(h.Name), string(h.Value))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("headers %q, want %q", got, want)
	}

	// Parsing again into the same Request reuses Headers from the start.
	in2 := "GET / HTTP/1.1\r\nHost: b\r\n\r\n"
	if err := ParseRequest([]byte(in2), DefaultLimits, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Headers) != 1 || string(req.Headers[0].Value) != "b" {
		t.Errorf("reused headers %q", req.Headers)
	}
}

func TestPipelined(t *testing.T) {
	in := "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
		"\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
	var req Request
	if err := ParseRequest([]byte(in), DefaultLimits, &req); err != nil {
		t.Fatal(err)
	}
	next := in[req.HeadLen+int(req.ContentLength):]
	// The stray CRLF some clients send after a body counts into the next
	// head (RFC 9112 §2.2).
	if err := ParseRequest([]byte(next), DefaultLimits, &req); err != nil {
		t.Fatal(err)
	}
	if string(req.Path) != "/2" || req.HeadLen != len(next) {
		t.Errorf("second request %q HeadLen %d, want /2 %d", req.Path, req.HeadLen, len(next))
	}
}

func TestLimitsDefault(t *testing.T) {
	long := "GET /" + strings.Repeat("a", DefaultLimits.MaxLine)
	var req Request
	if got := outcome(t, ParseRequest([]byte(long), Limits{}, &req)); got != 414 {
		t.Errorf("zero Limits: outcome %d, want 414 from the default MaxLine", got)
	}
}

func TestHasToken(t *testing.T) {
	tests := []struct {
		value, token string
		want         bool
	}{
		{"close", "close", true},
		{"Keep-Alive, Upgrade", "upgrade", true},
		{" a ,\tb\t, c ", "b", true},
		{"closed", "close", false},
		{"a,,close,", "close", true},
		{"", "close", false},
		{"clo se", "close", false},
	}
	for _, tt := range tests {
		if got := HasToken([]byte(tt.value), tt.token); got != tt.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tt.value, tt.token, got, tt.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	err := error(&Error{Status: 431, Reason: "too many header fields"})
	if got, want := err.Error(), "h1: 431: too many header fields"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidValue(t *testing.T) {
	// Every byte at every position of a 19-byte value, so each lands in a
	// word and in the tail.
	for pos := range 19 {
		for c := range 256 {
			v := []byte(strings.Repeat("a", 19))
			v[pos] = byte(c)
			want := c == '\t' || c >= ' ' && c != 0x7f
			if got := validValue(v); got != want {
				t.Fatalf("byte %#x at %d: %v, want %v", c, pos, got, want)
			}
		}
	}
}

// TestParseRequestEarlyRefusal: a request line that no further bytes could
// make valid is refused before its line end arrives, with the status the
// whole line would get; the start of a valid line waits for more.
func TestParseRequestEarlyRefusal(t *testing.T) {
	for _, tt := range []struct {
		in     string
		status int // -1: wait for more
	}{
		{"G", -1},
		{"GET", -1},
		{"GET ", -1},
		{"GET /a?b", -1},
		{"GET / ", -1},
		{"GET / HT", -1},
		{"GET / HTTP/1.", -1},
		{"GET / HTTP/1.1", -1},
		{"GET / HTTP/1.1\r", -1},
		{"\r\n\r\nGET / HTTP/1", -1},
		{"GET /\x01\x02", 400},        // control bytes in the target
		{"GET /\x00", 400},            // NUL
		{"GET /\r", 400},              // HTTP/0.9 "GET /"
		{"GET /a\tb", 400},            // HTAB in the target
		{"GET /#frag", 400},           // '#' is no target byte
		{"GE(T", 400},                 // non-token method
		{" GET", 400},                 // empty method
		{"GET  /", 400},               // double SP
		{"\x16\x03\x01\x02\x00", 400}, // TLS sent to a plain port
		{"GET / XTTP", 400},           // not HTTP
		{"GET / HTTP/1,", 400},        // bad version syntax
		{"GET / HTTP/x", 400},         // bad version syntax
		{"GET / HTTP/2.0", 505},       // a version we do not speak
		{"GET / HTTP/1.1 ", 400},      // SP after the version
		{"GET / HTTP/1.1\rX", 400},    // bare CR
		{"GET / HTTP/1.12", 400},      // version too long
		{"GET " + strings.Repeat("a", 20) + "\x7f", 400},
	} {
		var req Request
		if got := outcome(t, ParseRequest([]byte(tt.in), DefaultLimits, &req)); got != tt.status {
			t.Errorf("%q: got %d, want %d", tt.in, got, tt.status)
		}
	}
}

// TestParseRequestPrefixesWait: no prefix of a valid head is refused, so
// early refusal never turns away a request sent in pieces.
func TestParseRequestPrefixesWait(t *testing.T) {
	for _, head := range []string{
		"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"\r\nPOST http://a.example/x HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		get("Cookie: " + strings.Repeat("c", 5000) + "\r\n"),
	} {
		checkPrefixesWait(t, []byte(head), DefaultLimits)
	}
}

// checkPrefixesWait fails if ParseRequest refuses any proper prefix of
// head, which it parses whole.
func checkPrefixesWait(t *testing.T, head []byte, lim Limits) {
	t.Helper()
	var req Request
	if err := ParseRequest(head, lim, &req); err != nil || req.HeadLen != len(head) {
		t.Fatalf("%q: %v, HeadLen %d", head, err, req.HeadLen)
	}
	for i := range len(head) {
		if err := ParseRequest(head[:i], lim, &req); err != ErrIncomplete {
			t.Fatalf("prefix %q of a valid head: %v, want ErrIncomplete", head[:i], err)
		}
	}
}
