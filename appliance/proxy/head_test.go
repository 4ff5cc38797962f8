package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// headTimeout is the request head timeout of the head tests: long, so that
// a head answered only when it expires is told from one answered at once
// by the client's read deadline (half of it) on any machine.
const headTimeout = 40 * time.Second

// headService runs a proxy with the default limits (request line 8192,
// head 16384 bytes) and a long head timeout in front of an origin.
func headService(t *testing.T) (listen string, o *origin) {
	t.Helper()
	o = newOrigin(t, "a")
	listen = freePort(t)
	run(t, mustConfig(t, httpConfig(listen, fmt.Sprintf("    timeouts: {http_request: %s}\n", headTimeout), servers(o.addr()))))
	waitListening(t, listen)
	return listen, o
}

// sizedHead returns a GET head of exactly n bytes (n >= 27, the smallest
// HTTP/1.1 head), padded with a Cookie field from 37 bytes on (in the path
// below), and the cookie's value.
func sizedHead(n int) (head, cookie string) {
	const fixed = "GET / HTTP/1.1\r\nHost: x\r\nCookie: \r\n\r\n"
	if n < len(fixed) {
		return "GET /" + strings.Repeat("p", n-27) + " HTTP/1.1\r\nHost: x\r\n\r\n", ""
	}
	cookie = strings.Repeat("c", n-len(fixed))
	return "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + "\r\n\r\n", cookie
}

// sending is how a test client writes a head.
type sending int

const (
	oneWrite sending = iota
	pieces           // a few writes with pauses, split at odd places
	byteByByte
)

func (s sending) String() string { return [...]string{"one write", "pieces", "byte by byte"}[s] }

func sendHead(c net.Conn, head string, how sending) error {
	c.(*net.TCPConn).SetNoDelay(true)
	switch how {
	case pieces:
		for _, cut := range []int{1, 7, 4095, 4097, 8191, 8193, 16383} {
			if cut >= len(head) {
				break
			}
			if _, err := io.WriteString(c, head[:cut]); err != nil {
				return err
			}
			head = head[cut:]
			time.Sleep(2 * time.Millisecond) // separate segments
		}
	case byteByByte:
		for i := 0; i+1 < len(head); i++ {
			if _, err := c.Write([]byte{head[i]}); err != nil {
				return err
			}
		}
		head = head[len(head)-1:]
	}
	_, err := io.WriteString(c, head)
	return err
}

// exchangeHead sends head and reads the response: its status and body. It
// fails the test when no answer comes within half the head timeout.
func exchangeHead(t *testing.T, listen, head string, how sending) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(headTimeout / 2))
	// The proxy may refuse and close while the head is still being sent:
	// read the answer whatever the write says.
	go sendHead(c, head, how)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%d-byte head sent %s: no response: %v", len(head), how, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestHTTPHeadSizes: heads of every size around the buffer and limit
// boundaries, sent in one write, in pieces and byte by byte, are forwarded
// whole up to the limit and refused with 431 past it, at once (a head
// larger than the first read buffer used to wait for the request timeout
// and get 408).
func TestHTTPHeadSizes(t *testing.T) {
	listen, _ := headService(t)
	var sizes []int
	for n := 27; n <= 300; n++ {
		sizes = append(sizes, n)
	}
	for _, b := range []int{512, 1024, 2048, 4086, 4096, 4136, 8192, 16384, 32768} {
		for n := b - 3; n <= b+3; n++ {
			sizes = append(sizes, n)
		}
	}
	sizes = append(sizes, 5000, 6000, 8000, 12000, 16000, 20000, 65536, 1<<20)
	for how := range byteByByte + 1 {
		for _, n := range sizes {
			if how == byteByByte && n > 300 && n%4 != 0 && n != 16385 {
				continue // byte by byte: every size up to 300, then a sample
			}
			if how == byteByByte && n > 20000 {
				continue
			}
			head, cookie := sizedHead(n)
			status, body := exchangeHead(t, listen, head, how)
			switch {
			case n <= 16384 && (status != 200 || field(body, "cookie") != cookie):
				t.Fatalf("%d-byte head sent %s: %d, cookie of %d bytes reached the server (want 200 and %d)",
					n, how, status, len(field(body, "cookie")), len(cookie))
			case n > 16384 && status != 431:
				t.Fatalf("%d-byte head sent %s: %d, want 431", n, how, status)
			}
		}
	}
}

// TestHTTPRequestLineSizes: a request line up to max_request_line (8192,
// line end included) is forwarded, one byte more is refused with 414 at
// once, however it is sent; a line without end is refused as soon as it
// passes the limit.
func TestHTTPRequestLineSizes(t *testing.T) {
	listen, _ := headService(t)
	for how := range byteByByte + 1 {
		for _, n := range []int{8190, 8191, 8192, 8193, 8194, 9000} {
			line := "GET /" + strings.Repeat("p", n-len("GET / HTTP/1.1\r\n")) + " HTTP/1.1\r\n"
			status, _ := exchangeHead(t, listen, line+"Host: x\r\n\r\n", how)
			want := 200
			if n > 8192 {
				want = 414
			}
			if status != want {
				t.Fatalf("%d-byte request line sent %s: %d, want %d", n, how, status, want)
			}
		}
		status, _ := exchangeHead(t, listen, "GET /"+strings.Repeat("p", 1<<20), how)
		if status != 414 {
			t.Fatalf("endless request line sent %s: %d, want 414", how, status)
		}
	}
}

// TestHTTPBadRequestLineAtOnce: a request line is refused as soon as a byte
// makes it invalid, without waiting for its line end.
func TestHTTPBadRequestLineAtOnce(t *testing.T) {
	listen, o := headService(t)
	for _, tt := range []struct {
		head   string
		status int
	}{
		{"GET /\x01\x02", 400},
		{"GET /\x00", 400},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400}, // a TLS ClientHello
		{"GET / HTTP/2.0", 505},
		{"GET / HTTP/1.1 x", 400},
	} {
		for how := range byteByByte + 1 {
			if status, _ := exchangeHead(t, listen, tt.head, how); status != tt.status {
				t.Errorf("%q sent %s: %d, want %d", tt.head, how, status, tt.status)
			}
		}
	}
	if n := o.reqs.Load(); n != 0 {
		t.Errorf("the server saw %d requests", n)
	}
}

// TestHTTPTruncatedHead: a client that closes before its head is complete
// is closed at once, without an answer and without a request to a server.
func TestHTTPTruncatedHead(t *testing.T) {
	listen, o := headService(t)
	head, _ := sizedHead(5000)
	for _, n := range []int{1, 2, 16, 35, 4095, 4096, 4097, 4999} {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(headTimeout / 2))
		io.WriteString(c, head[:n])
		c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(b) != 0 {
			t.Fatalf("%d bytes then EOF: read %q, %v; want a close without answer", n, b, err)
		}
	}
	if n := o.reqs.Load(); n != 0 {
		t.Errorf("the server saw %d requests", n)
	}
}

// TestHTTPRefusalLingers: a refused client that is still sending reads the
// answer and then an orderly end (FIN), not a reset: closing a socket with
// unread bytes resets the connection, and on a real network the reset can
// overtake the answer.
func TestHTTPRefusalLingers(t *testing.T) {
	listen, _ := headService(t)
	head, _ := sizedHead(40000) // 431 after 16 KiB; the rest is unread then
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(headTimeout / 2))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 431 ") {
		t.Fatalf("read %q then %v: want the 431 answer, then EOF", b[:min(len(b), 40)], err)
	}
}

// TestHTTPForwardHeaders: forward_headers picks the fields added to each
// request; a client's own X-Forwarded-Proto is replaced only when the proxy
// adds its own.
func TestHTTPForwardHeaders(t *testing.T) {
	o := newOrigin(t, "a")
	for _, tt := range []struct {
		list                string
		xff, xfp, forwarded string
	}{
		{"", "10.1.1.1,127.0.0.1", "http", `for=127.0.0.1;host="h";proto=http`}, // default: all three
		{"[]", "10.1.1.1", "https", ""},
		{"[x-forwarded-for]", "10.1.1.1,127.0.0.1", "https", ""},
		{"[x-forwarded-proto, forwarded]", "10.1.1.1", "http", `for=127.0.0.1;host="h";proto=http`},
	} {
		listen := freePort(t)
		extra := ""
		if tt.list != "" {
			extra = "    forward_headers: " + tt.list + "\n"
		}
		c := run(t, mustConfig(t, httpConfig(listen, extra, servers(o.addr()))))
		waitListening(t, listen)
		resp, body := get(t, &http.Client{}, "http://"+listen+"/", "Host", "h", "X-Forwarded-For", "10.1.1.1", "X-Forwarded-Proto", "https")
		if field(body, "xff") != tt.xff || field(body, "xfp") != tt.xfp || field(body, "fwd") != tt.forwarded {
			t.Errorf("forward_headers %q: server saw xff=%q xfp=%q forwarded=%q; want %q %q %q", tt.list,
				field(body, "xff"), field(body, "xfp"), field(body, "fwd"), tt.xff, tt.xfp, tt.forwarded)
		}
		// Bytes out count what the client got: the head and the body.
		head := len("HTTP/1.1 200 OK\r\n") // at least the status line
		for k, vs := range resp.Header {
			for _, v := range vs {
				head += len(k) + 2 + len(v) + 2
			}
		}
		// The count is made after the response is written: wait for it.
		want := int64(head + len(body))
		var got int64
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if got = c.Status().([]ServiceStatus)[0].Stats.BytesOut; got >= want {
				break
			}
		}
		if got < want {
			t.Errorf("bytes out %d: want at least head and body, %d", got, want)
		}
	}
}
