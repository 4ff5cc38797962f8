package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// message is one request as h1 frames it.
type message struct {
	req  Request
	body []byte // the body as sent: CL bytes, or the raw chunked body
	end  int    // offset after the message
}

// frame parses the request at data[off:] and frames its body the way the
// proxy does. It returns the status of an *Error, -1 for an incomplete
// message, or 0.
func frame(t testing.TB, data []byte, off int) (message, int) {
	var m message
	err := ParseRequest(data[off:], DefaultLimits, &m.req)
	var e *Error
	switch {
	case err == ErrIncomplete:
		return m, -1
	case errors.As(err, &e):
		return m, e.Status
	case err != nil:
		t.Fatalf("ParseRequest: unexpected error %v", err)
	}
	start := off + m.req.HeadLen
	switch {
	case m.req.Chunked:
		var c Chunked
		n, done, err := c.Scan(data[start:])
		if errors.As(err, &e) {
			return m, e.Status
		}
		if err != nil {
			t.Fatalf("Scan: unexpected error %v", err)
		}
		if !done {
			return m, -1
		}
		m.body = data[start : start+n]
	case m.req.ContentLength >= 0:
		if int64(len(data)-start) < m.req.ContentLength {
			return m, -1
		}
		m.body = data[start : start+int(m.req.ContentLength)]
	}
	m.end = start + len(m.body)
	return m, 0
}

// goReader reads requests the way net/http's server does.
type goReader struct {
	n  int
	rd *bytes.Reader
	br *bufio.Reader
}

func newGoReader(data []byte) *goReader {
	rd := bytes.NewReader(data)
	return &goReader{n: len(data), rd: rd, br: bufio.NewReader(rd)}
}

// next reads one request with its whole body and returns it, the body and
// the offset after it.
func (g *goReader) next() (*http.Request, []byte, int, error) {
	// net/http's conn.readRequest discards up to four leading CR and LF
	// bytes before http.ReadRequest (RFC 9112 §2.2).
	peek, _ := g.br.Peek(4)
	n := 0
	for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
		n++
	}
	g.br.Discard(n)
	req, err := http.ReadRequest(g.br)
	if err != nil {
		return nil, nil, 0, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, 0, err
	}
	return req, body, g.n - g.rd.Len() - g.br.Buffered(), nil
}

// dechunk decodes a raw chunked body.
func dechunk(t testing.TB, raw []byte) []byte {
	b, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("dechunk %q: %v", raw, err)
	}
	return b
}

// TestNetHTTPDifferential checks that for valid request streams net/http
// sees the same requests, bodies and message boundaries as h1.
func TestNetHTTPDifferential(t *testing.T) {
	browser := "GET /index.html?q=1&r=%2F HTTP/1.1\r\n" +
		"Host: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\n" +
		"Connection: keep-alive\r\n" +
		"Cookie: a=b; c=d\r\n\r\n"
	corpus := []struct {
		name string
		in   string
	}{
		{"browser GET", browser},
		{"POST Content-Length", "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"},
		{"POST repeated Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
		{"chunked", "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
		{"chunked extensions", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;name=value;q=\"quo\\\"ted\"\r\nhello\r\nA;x\r\n0123456789\r\n0;end\r\n\r\n"},
		{"chunked trailers", "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3\r\nabc\r\n0\r\nX-Sum: 123\r\nX-Other: v\r\n\r\n"},
		{"chunked data looks like framing", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"7\r\n0\r\n\r\nGE\r\n0\r\n\r\n"},
		{"pipelined", browser +
			"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" +
			"PUT /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n" +
			"GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		{"pipelined with CRLF between", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n" +
			"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"HTTP/1.0 keep-alive pair", "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
			"POST /2 HTTP/1.0\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"},
		{"absolute-form", "GET http://a.example:8080/p?q=1 HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"bare LF", "POST / HTTP/1.1\nHost: a\nContent-Length: 1\n\nz"},
		{"IPv6 Host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"},
		{"GET with body", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
	}
	for _, tt := range corpus {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.in)
			g := newGoReader(data)
			off := 0
			for off < len(data) {
				m, status := frame(t, data, off)
				if status != 0 {
					t.Fatalf("h1 at %d: outcome %d", off, status)
				}
				greq, gbody, gend, err := g.next()
				if err != nil {
					t.Fatalf("net/http at %d: %v", off, err)
				}
				if m.end != gend {
					t.Errorf("message end %d, net/http %d", m.end, gend)
				}
				if string(m.req.Method) != greq.Method || string(m.req.Target) != greq.RequestURI {
					t.Errorf("request %s %s, net/http %s %s", m.req.Method, m.req.Target, greq.Method, greq.RequestURI)
				}
				if !strings.EqualFold(string(m.req.Host), greq.Host) {
					t.Errorf("Host %q, net/http %q", m.req.Host, greq.Host)
				}
				if gpath := greq.URL.RequestURI(); string(m.req.Path) != gpath {
					t.Errorf("Path %q, net/http %q", m.req.Path, gpath)
				}
				body := m.body
				if m.req.Chunked {
					body = dechunk(t, body)
				}
				if !bytes.Equal(body, gbody) {
					t.Errorf("body %q, net/http %q", body, gbody)
				}
				off = m.end
			}
		})
	}
}
