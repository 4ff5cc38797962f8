package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin is a net/http server (the reference implementation) that reports
// what it read: its name, the request line, selected fields, and the length
// and SHA-256 of the body.
type origin struct {
	name  string
	srv   *httptest.Server
	conns atomic.Int64
	reqs  atomic.Int64
}

func newOrigin(t *testing.T, name string) *origin {
	t.Helper()
	o := &origin{name: name}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	o.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.srv.Start()
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) addr() string { return o.srv.Listener.Addr().String() }

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.reqs.Add(1)
	switch r.URL.Path {
	case "/slow":
		time.Sleep(300 * time.Millisecond)
	case "/chunked":
		fl := w.(http.Flusher)
		for i := range 5 {
			fmt.Fprintf(w, "part %d\n", i)
			fl.Flush()
		}
		return
	case "/bighead":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("X-Big", strings.Repeat("h", n))
		w.Write([]byte("small body"))
		return
	case "/500", "/501", "/503":
		code, _ := strconv.Atoi(r.URL.Path[1:])
		w.WriteHeader(code)
		return
	case "/big":
		w.Header().Set("Content-Length", "1000000")
		w.Write(bytes.Repeat([]byte("x"), 1000000))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sum := sha256.Sum256(body)
	w.Header().Set("X-Server", o.name)
	fmt.Fprintf(w, "server=%s\nmethod=%s\nuri=%s\nhost=%s\nproto=%s\nxff=%s\nxfp=%s\nfwd=%s\nconnection=%s\ncookie=%s\nlen=%d\nsha=%s\n",
		o.name, r.Method, r.RequestURI, r.Host, r.Proto, strings.Join(r.Header.Values("X-Forwarded-For"), ","),
		r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Forwarded"), r.Header.Get("Connection"), r.Header.Get("Cookie"),
		len(body), hex.EncodeToString(sum[:]))
}

// field returns key's value in an origin report.
func field(body, key string) string {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

func httpConfig(listen string, extra string, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: lb1}\nservices:\n  - name: web\n    listen: [\"%s\"]\n    default_backend: b0\n%s", listen, extra)
	b.WriteString("backends:\n")
	for i, be := range backends {
		fmt.Fprintf(&b, "  - name: b%d\n%s", i, be)
	}
	return b.String()
}

// servers is the YAML of a backend's servers (addresses of origins).
func servers(addrs ...string) string {
	var b strings.Builder
	b.WriteString("    servers:\n")
	for i, a := range addrs {
		fmt.Fprintf(&b, "      - {name: s%d, address: \"%s\"}\n", i, a)
	}
	return b.String()
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, client *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(b)
}

// dialProxy opens a client connection with a 5s deadline.
func dialProxy(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

// raw sends bytes on a new connection and returns everything the proxy
// sent until it closed (or 3s passed).
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestHTTPForwardsAndKeepsAlive(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	c := run(t, mustConfig(t, httpConfig(listen, "", servers(o.addr()))))
	waitListening(t, listen)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i := range 10 {
		resp, body := get(t, client, "http://"+listen+"/p?q="+fmt.Sprint(i), "X-Forwarded-Proto", "https", "Connection", "keep-alive, X-Secret", "X-Secret", "hop")
		if resp.StatusCode != 200 || field(body, "server") != "a" || field(body, "uri") != fmt.Sprintf("/p?q=%d", i) {
			t.Fatalf("response %d: %s", resp.StatusCode, body)
		}
		if field(body, "xff") != "127.0.0.1" || field(body, "xfp") != "http" || field(body, "fwd") != `for=127.0.0.1;host="`+listen+`";proto=http` {
			t.Fatalf("forwarding fields: %s", body)
		}
		if field(body, "connection") != "" || strings.Contains(body, "hop") {
			t.Fatalf("hop-by-hop fields reached the server: %s", body)
		}
	}
	if n := o.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 10 requests: want 1 (server-side keep-alive pool)", n)
	}
	st := c.Status().([]ServiceStatus)[0]
	if st.Stats.Connections > 2 || st.Stats.Requests != 10 || st.Stats.Responses["2xx"] != 10 || st.Stats.BytesIn == 0 || st.Stats.BytesOut == 0 {
		t.Errorf("stats %+v: want 1 connection (+1 probe of waitListening), 10 requests, 10 2xx, bytes both ways", st.Stats)
	}
	if last := st.Stats.Latency[len(st.Stats.Latency)-1]; last.LE != "+Inf" || last.Count != 10 {
		t.Errorf("latency histogram %+v: want 10 observations", st.Stats.Latency)
	}
}

func TestHTTPRouting(t *testing.T) {
	www, api, img, def := newOrigin(t, "www"), newOrigin(t, "api"), newOrigin(t, "img"), newOrigin(t, "def")
	listen := freePort(t)
	routes := `    routes:
      - {host: www.example.com, path_prefix: /api/, backend: b1}
      - {host: www.example.com, backend: b2}
      - {host: "*.img.example.com", backend: b3}
`
	run(t, mustConfig(t, httpConfig(listen, routes, servers(def.addr()), servers(api.addr()), servers(www.addr()), servers(img.addr()))))
	waitListening(t, listen)
	client := &http.Client{}
	for _, tc := range []struct{ host, path, want string }{
		{"www.example.com", "/api/v1", "api"},
		{"WWW.Example.COM:8080", "/api/", "api"},
		{"www.example.com", "/apix", "www"},
		{"www.example.com", "/", "www"},
		{"a.img.example.com", "/x", "img"},
		{"img.example.com", "/x", "def"}, // *.suffix needs a label before the suffix
		{"other.example.com", "/api/v1", "def"},
	} {
		_, body := get(t, client, "http://"+listen+tc.path, "Host", tc.host)
		if got := field(body, "server"); got != tc.want {
			t.Errorf("Host %s path %s: served by %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestHTTPNoServer503(t *testing.T) {
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "    response_headers: {X-LB-Node: lb1}\n", "    servers: []\n")))
	waitListening(t, listen)
	resp, body := get(t, &http.Client{}, "http://"+listen+"/")
	if resp.StatusCode != 503 || !strings.Contains(body, "no server is available") {
		t.Fatalf("%d %q: want 503 with a clear body", resp.StatusCode, body)
	}
	if resp.Header.Get("X-LB-Node") != "lb1" {
		t.Fatalf("the proxy's own response lacks response_headers: %v", resp.Header)
	}
}

func TestHTTPResponseHeaders(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "    response_headers: {X-Server: replaced, X-LB-Node: lb1}\n", servers(o.addr()))))
	waitListening(t, listen)
	resp, _ := get(t, &http.Client{}, "http://"+listen+"/")
	if v := resp.Header.Values("X-Server"); len(v) != 1 || v[0] != "replaced" || resp.Header.Get("X-LB-Node") != "lb1" {
		t.Fatalf("fields %v", resp.Header)
	}
}

// TestHTTPBadRequests: malformed or oversized requests get the exact
// status, the connection is closed, and nothing reaches the server.
func TestHTTPBadRequests(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	limits := "    limits: {max_request_line: 256, max_header_bytes: 2048, max_headers: 10, max_body_bytes: 100}\n"
	c := run(t, mustConfig(t, httpConfig(listen, limits, servers(o.addr()))))
	waitListening(t, listen)
	many := ""
	for i := range 11 {
		many += fmt.Sprintf("X-H%d: v\r\n", i)
	}
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"two CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", 400},
		{"long line", "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"big head", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", 3000) + "\r\n\r\n", 431},
		{"many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + many + "\r\n", 431},
		{"big body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413},
		{"big chunked body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + strings.Repeat("c", 101) + "\r\n0\r\n\r\n", 413},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
	} {
		got := raw(t, listen, tc.req)
		if want := fmt.Sprintf("HTTP/1.1 %d ", tc.status); !strings.HasPrefix(got, want) || !strings.Contains(got, "Connection: close") {
			t.Errorf("%s: got %q, want %q... and Connection: close", tc.name, firstLine(got), want)
		}
	}
	if n := o.reqs.Load(); n != 0 {
		t.Errorf("the server got %d requests; a refused request must never reach it", n)
	}
	if st := c.Status().([]ServiceStatus)[0]; st.Stats.BadRequests != 13 {
		t.Errorf("bad_requests %d, want 13", st.Stats.BadRequests)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// TestHTTPSlowHead408: a head that does not arrive within http_request
// gets 408 (slowloris), even while bytes trickle in, fast (the connection
// keeps its goroutine) or slow (it is parked between bytes).
func TestHTTPSlowHead408(t *testing.T) {
	for _, gap := range []time.Duration{20 * time.Millisecond, 120 * time.Millisecond} {
		t.Run(gap.String(), func(t *testing.T) { testSlowHead(t, gap) })
	}
}

func testSlowHead(t *testing.T, gap time.Duration) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	c := run(t, mustConfig(t, httpConfig(listen, "    timeouts: {http_request: 700ms}\n", servers(o.addr()))))
	waitListening(t, listen)
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	go func() {
		for _, b := range []byte("GET / HTTP/1.1\r\nHost: a\r\nX: slowly") {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
		t.Fatalf("got %q, want 408", firstLine(string(got)))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("408 after %v: the timeout is for the whole head", el)
	}
	if n := o.reqs.Load(); n != 0 {
		t.Fatalf("the server got %d requests", n)
	}
	waitActive(t, c, 0)
}

// waitActive waits until the service has n open connections.
func waitActive(t *testing.T, c *Component, n int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := c.Status().([]ServiceStatus)[0].Stats.ActiveConnections
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d open connections, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPIdleKeepAliveParked: an idle keep-alive connection is parked
// (no goroutine), still served when its next request comes, and closed
// after http_keep_alive.
func TestHTTPIdleKeepAliveParked(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	c := run(t, mustConfig(t, httpConfig(listen, "    timeouts: {http_keep_alive: 600ms}\n", servers(o.addr()))))
	waitListening(t, listen)
	conn, br := dialProxy(t, listen)
	for i := range 3 {
		fmt.Fprintf(conn, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d after idling: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// Parked after parkAfter, well before http_keep_alive.
		awaitParked(t, c, 1, 400*time.Millisecond)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("read a byte from an idle connection")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("closed after %v idle, want about 600ms", el)
	}
	waitActive(t, c, 0)
}

// TestHTTPBodies: uploads with Content-Length and chunked bodies (larger
// than the buffers) and a chunked response arrive intact; pipelined
// requests after a chunked body are served in order.
func TestHTTPBodies(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(o.addr()))))
	waitListening(t, listen)
	client := &http.Client{}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB
	sum := sha256.Sum256(payload)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if chunked {
			body = io.MultiReader(body) // hides the length: net/http sends chunked
		}
		req, _ := http.NewRequest("POST", "http://"+listen+"/up", body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if field(string(b), "len") != fmt.Sprint(len(payload)) || field(string(b), "sha") != hex.EncodeToString(sum[:]) {
			t.Fatalf("chunked=%v: server read %s", chunked, b)
		}
	}
	resp, b := get(t, client, "http://"+listen+"/chunked")
	if string(b) != "part 0\npart 1\npart 2\npart 3\npart 4\n" || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("chunked response %q %v", b, resp.TransferEncoding)
	}
	resp, b = get(t, client, "http://"+listen+"/big")
	if len(b) != 1000000 || resp.ContentLength != 1000000 {
		t.Fatalf("big response: %d bytes", len(b))
	}

	// Response heads past the first server buffer, up to 32 KiB; a larger
	// one is a 502.
	resp, b = get(t, client, "http://"+listen+"/bighead?n=20000")
	if resp.StatusCode != 200 || len(resp.Header.Get("X-Big")) != 20000 || string(b) != "small body" {
		t.Fatalf("20 KB response head: %d, %d bytes of X-Big, body %q", resp.StatusCode, len(resp.Header.Get("X-Big")), b)
	}
	if resp, _ = get(t, client, "http://"+listen+"/bighead?n=40000"); resp.StatusCode != 502 {
		t.Fatalf("40 KB response head: %d, want 502", resp.StatusCode)
	}

	// Pipelining: a chunked request and a GET in one write.
	got := raw(t, listen, "POST /one HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer-X: t\r\n\r\n"+
		"GET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	first := strings.Index(got, "uri=/one")
	second := strings.Index(got, "uri=/two")
	if first < 0 || second < first || !strings.Contains(got, "len=3") {
		t.Fatalf("pipelined responses out of order or missing:\n%s", got)
	}
}

// TestRequestBeforeAnswer: a client that sends its next request while the
// previous one is still at the server is answered at once, not when its
// connection parks. The proxy writes a response from inside the wait for
// the next request (readSoon), and that wait is not told of bytes that
// came before it began; it looks for them when it ends, before parking.
func TestRequestBeforeAnswer(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	c := run(t, mustConfig(t, httpConfig(listen, "", servers(o.addr()))))
	waitListening(t, listen)
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resumed := c.parker().Resumed()
	for i := range 3 {
		// /slow is answered after 300 ms; the next request goes out
		// while it is at the server.
		fmt.Fprintf(conn, "GET /slow?i=%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		time.Sleep(50 * time.Millisecond)
		fmt.Fprintf(conn, "GET /x?i=%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		for _, want := range []string{"/slow", "/x"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d, %s: %v", i, want, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if uri := fmt.Sprintf("%s?i=%d", want, i); field(string(b), "uri") != uri {
				t.Fatalf("round %d: got %q, want the answer to %s", i, b, uri)
			}
		}
	}
	if n := c.parker().Resumed() - resumed; n != 0 {
		t.Fatalf("the connection parked %d times between requests that were there", n)
	}
}

// TestHalfCloseAfterRequest: a keep-alive client that ends its side right
// after its request gets the answer, then the connection's end at once, not
// at the keep-alive timeout: its FIN may come before the wait in which the
// answer is written, which is not told of it (TestRequestBeforeAnswer).
func TestHalfCloseAfterRequest(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "    timeouts: {http_keep_alive: 1m}\n", servers(o.addr()))))
	waitListening(t, listen)
	for i := range 20 {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /h?i=%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		if i%2 == 1 {
			time.Sleep(5 * time.Millisecond) // the FIN apart from the request
		}
		c.(*net.TCPConn).CloseWrite()
		start := time.Now()
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") || field(string(b), "uri") != fmt.Sprintf("/h?i=%d", i) {
			t.Fatalf("%d: read %q, %v", i, b, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("%d: the connection ended %v after the client's, want at once", i, el)
		}
	}
}

// TestHTTP10: an HTTP/1.0 client gets its response and the connection
// closes, unless it asked for keep-alive.
func TestHTTP10(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(o.addr()))))
	waitListening(t, listen)
	got := raw(t, listen, "GET /x HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.Contains(got, "proto=HTTP/1.0") || !strings.Contains(got, "Connection: close") {
		t.Fatalf("HTTP/1.0: %q", got)
	}
	c, br := dialProxy(t, listen)
	for i := range 2 {
		fmt.Fprintf(c, "GET /k%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("keep-alive request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Connection") != "keep-alive" {
			t.Fatalf("request %d: Connection %q, want keep-alive", i, resp.Header.Get("Connection"))
		}
	}
}

// TestHTTPExpectContinue: the client sends its body only after the
// server's 100 Continue came through the proxy.
func TestHTTPExpectContinue(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(o.addr()))))
	waitListening(t, listen)
	c, br := dialProxy(t, listen)
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim response %q %v: want 100 Continue before the body", line, err)
	}
	br.ReadString('\n') // the empty line ending the 100
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || field(string(b), "len") != "5" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestHTTPUpgradeTunnel: a WebSocket-style upgrade becomes a tunnel.
func TestHTTPUpgradeTunnel(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "websocket" || !strings.Contains(strings.ToLower(req.Header.Get("Connection")), "upgrade") {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br) // echo
	})
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(addr))))
	waitListening(t, listen)
	c, br := dialProxy(t, listen)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade: %v %+v", err, resp)
	}
	for _, msg := range []string{"ping\n", "pong\n", strings.Repeat("z", 100000) + "\n"} {
		io.WriteString(c, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("tunnel echo: %d bytes, %v", len(got), err)
		}
	}
}

// TestHTTPCookiePersistence: the first response names the server in a
// cookie; requests carrying it stay there; a cookie naming a drained
// server is not honoured.
func TestHTTPCookiePersistence(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	be := "    sticky: {cookie: SRV}\n" + servers(a.addr(), b.addr())
	run(t, mustConfig(t, httpConfig(listen, "", be)))
	waitListening(t, listen)
	client := &http.Client{}
	resp, body := get(t, client, "http://"+listen+"/")
	ck := resp.Header.Get("Set-Cookie")
	first := field(body, "server")
	srvName := map[string]string{"a": "s0", "b": "s1"}[first]
	if ck != "SRV="+srvName+"; Path=/" {
		t.Fatalf("Set-Cookie %q, want SRV=%s; Path=/", ck, srvName)
	}
	for range 10 {
		resp, body := get(t, client, "http://"+listen+"/", "Cookie", "x=1; SRV="+srvName)
		if field(body, "server") != first {
			t.Fatalf("cookie %s served by %s", srvName, field(body, "server"))
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("Set-Cookie repeated for a client that has it")
		}
	}
	// A cookie naming an unknown server: balanced and told the new one.
	resp, _ = get(t, client, "http://"+listen+"/", "Cookie", "SRV=gone")
	if !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "SRV=s") {
		t.Fatalf("stale cookie: Set-Cookie %q", resp.Header.Get("Set-Cookie"))
	}
}

// TestHTTPSourcePersistence: one client address stays on one server while
// round robin would alternate.
func TestHTTPSourcePersistence(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	be := "    sticky: {source: true}\n" + servers(a.addr(), b.addr())
	c := run(t, mustConfig(t, httpConfig(listen, "", be)))
	waitListening(t, listen)
	seen := map[string]int{}
	for range 10 {
		_, body := get(t, &http.Client{}, "http://"+listen+"/")
		seen[field(body, "server")]++
	}
	if len(seen) != 1 {
		t.Fatalf("one client spread over %v", seen)
	}
	if st := c.Status().([]ServiceStatus)[0].Backends[0]; st.StickEntries != 1 || st.Persistence != "source" {
		t.Fatalf("stick table: %+v", st)
	}
}

// TestHTTPMaxconnQueue: a server with maxconn 1 takes one request at a
// time; the others wait in the queue, and a request that waits longer
// than timeouts.queue gets 503.
func TestHTTPMaxconnQueue(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	be := fmt.Sprintf("    servers:\n      - {name: s0, address: \"%s\", maxconn: 1}\n", o.addr())
	c := run(t, mustConfig(t, httpConfig(listen, "    timeouts: {queue: 2s}\n", be)))
	waitListening(t, listen)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := (&http.Client{}).Get("http://" + listen + "/slow")
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for i, code := range codes {
		if code != 200 {
			t.Fatalf("request %d: %d, want 200 (queued, then served)", i, code)
		}
	}
	st := c.Status().([]ServiceStatus)[0].Backends[0]
	if st.QueueMax < 1 {
		t.Fatalf("queue_max %d: requests should have queued", st.QueueMax)
	}

	apply(t, c, mustConfig(t, httpConfig(listen, "    timeouts: {queue: 50ms}\n", be)))
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := (&http.Client{}).Get("http://" + listen + "/slow")
			codes[i] = 0
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	n503 := 0
	for _, code := range codes {
		if code == 503 {
			n503++
		}
	}
	if n503 == 0 {
		t.Fatalf("codes %v: a request queued past timeouts.queue must get 503", codes)
	}
}

// TestHTTPReloadsUnderLoad: a client load across 20 reloads that change
// the backends sees no error.
func TestHTTPReloadsUnderLoad(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	cfgs := []string{httpConfig(listen, "", servers(a.addr(), b.addr())), httpConfig(listen, "", servers(b.addr())),
		httpConfig(listen, "    timeouts: {client: 20s}\n", servers(a.addr()))}
	c := run(t, mustConfig(t, cfgs[0]))
	waitListening(t, listen)
	stop := make(chan struct{})
	var failures, ok atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post("http://"+listen+"/r", "text/plain", strings.NewReader("body"))
				if err != nil {
					failures.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || field(string(b), "len") != "4" {
					failures.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := range 20 {
		time.Sleep(50 * time.Millisecond)
		c.Apply(mustConfig(t, cfgs[i%len(cfgs)]))
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || ok.Load() < 20 {
		t.Fatalf("%d failed, %d ok across 20 reloads", failures.Load(), ok.Load())
	}
}

// TestHTTPServerErrors: a server that closes without answering gives 502, a
// silent one 504 after timeouts.server.
func TestHTTPServerErrors(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if strings.Contains(string(buf[:n]), "/close") {
			c.Close()
			return
		}
		if strings.Contains(string(buf[:n]), "/garbage") {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx")
			c.Close()
			return
		}
		time.Sleep(2 * time.Second)
		c.Close()
	})
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "    timeouts: {server: 200ms}\n", servers(addr))))
	waitListening(t, listen)
	for path, want := range map[string]int{"/close": 502, "/garbage": 502, "/silent": 504} {
		resp, _ := get(t, &http.Client{}, "http://"+listen+path)
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestAcceptProxy: a trusted client's PROXY header gives the client
// address (X-Forwarded-For); a trusted client without one is refused.
func TestAcceptProxy(t *testing.T) {
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "    accept_proxy: [127.0.0.0/8]\n", servers(o.addr()))))
	waitListening(t, listen)
	for _, hdr := range []string{"PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x07\xc0\x00\x02\x01\x15\xb3\x00\x50"} {
		got := raw(t, listen, hdr+"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if !strings.Contains(got, "xff=203.0.113.7\n") {
			t.Fatalf("PROXY header %q: server saw %q", hdr[:8], got)
		}
	}
	if got := raw(t, listen, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); got != "" {
		t.Fatalf("a trusted client without a PROXY header got %q; want the connection closed", got)
	}
}

// TestSendProxy: with proxy_protocol the server gets a PROXY header with
// the client's address first, in http and tcp mode.
func TestSendProxy(t *testing.T) {
	got := make(chan string, 4)
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		got <- line
		if req, err := http.ReadRequest(br); err == nil {
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	for _, mode := range []string{"http", "tcp"} {
		listen := freePort(t)
		cfg := fmt.Sprintf("node: {name: lb1}\nservices:\n  - {name: s, listen: [\"%s\"], mode: %s, default_backend: b}\nbackends:\n  - name: b\n    proxy_protocol: v1\n    servers: [{name: s0, address: \"%s\"}]\n",
			listen, mode, addr)
		run(t, mustConfig(t, cfg))
		waitListening(t, listen)
		c, br := dialProxy(t, listen)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", mode, err, resp)
		}
		line := <-got
		if !strings.HasPrefix(line, "PROXY TCP4 127.0.0.1 127.0.0.1 ") || !strings.HasSuffix(line, " "+listen[strings.LastIndex(listen, ":")+1:]+"\r\n") {
			t.Fatalf("%s: server got %q, want a PROXY v1 line from the client to %s", mode, line, listen)
		}
	}
}

// TestAddressesAfterParking: a keep-alive connection parked between its
// requests (it keeps neither its socket's nor its own state then) goes on
// with the same addresses: a PROXY header's, in X-Forwarded-For and in
// the PROXY header to the server, or else the socket's.
func TestAddressesAfterParking(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		if req, err := http.ReadRequest(br); err == nil {
			body := strings.TrimSpace(line) + " xff=" + req.Header.Get("X-Forwarded-For")
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	trusting, plain := freePort(t), freePort(t)
	cfg := fmt.Sprintf("node: {name: lb1}\nservices:\n  - {name: p, listen: [\"%s\"], mode: http, default_backend: b, accept_proxy: [127.0.0.1/32]}\n  - {name: s, listen: [\"%s\"], mode: http, default_backend: b}\nbackends:\n  - name: b\n    proxy_protocol: v1\n    servers: [{name: s0, address: \"%s\"}]\n",
		trusting, plain, addr)
	c := run(t, mustConfig(t, cfg))
	waitListening(t, trusting)
	waitListening(t, plain)
	for _, listen := range []string{trusting, plain} {
		cn, br := dialProxy(t, listen)
		want := "PROXY TCP4 203.0.113.7 192.0.2.1 5555 80 xff=203.0.113.7"
		if listen == trusting {
			io.WriteString(cn, "PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\n")
		} else {
			from, to := cn.LocalAddr().(*net.TCPAddr), cn.RemoteAddr().(*net.TCPAddr)
			want = fmt.Sprintf("PROXY TCP4 %s %s %d %d xff=%s", from.IP, to.IP, from.Port, to.Port, from.IP)
		}
		for i := range 2 {
			io.WriteString(cn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != want {
				t.Fatalf("%s, request %d: server saw %q, want %q", listen, i+1, body, want)
			}
			if i == 0 {
				awaitParked(t, c, 1, 10*time.Second)
			}
		}
		cn.Close()
	}
}

// TestBalanceAlgorithmsThroughProxy: uri hashing keeps a path on one
// server; leastconn avoids the busy server.
func TestBalanceAlgorithmsThroughProxy(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", "    balance: uri\n"+servers(a.addr(), b.addr()))))
	waitListening(t, listen)
	client := &http.Client{}
	spread := map[string]bool{}
	for i := range 20 {
		path := fmt.Sprintf("/item/%d", i)
		_, first := get(t, client, "http://"+listen+path)
		for range 3 {
			_, again := get(t, client, "http://"+listen+path+"?q=x")
			if field(again, "server") != field(first, "server") {
				t.Fatalf("uri %s moved from %s to %s", path, field(first, "server"), field(again, "server"))
			}
		}
		spread[field(first, "server")] = true
	}
	if len(spread) != 2 {
		t.Fatalf("20 paths all on %v", spread)
	}
}

// TestAccessLog: one record per request, the refused ones included, to
// the access logger when access_log is on; none when it is off.
func TestAccessLog(t *testing.T) {
	o := newOrigin(t, "a")
	listen, quiet := freePort(t), freePort(t)
	var rec captureLog
	c := New(slog.New(slog.DiscardHandler))
	c.SetAccessLog(&rec)
	cfg := fmt.Sprintf("node: {name: lb1}\nservices:\n  - {name: web, listen: [\"%s\"], default_backend: b0, access_log: true}\n  - {name: quiet, listen: [\"%s\"], default_backend: b0}\nbackends:\n  - name: b0\n%s",
		listen, quiet, servers(o.addr()))
	runComponent(t, c, mustConfig(t, cfg))
	waitListening(t, listen)
	waitListening(t, quiet)
	get(t, &http.Client{}, "http://"+quiet+"/not-logged")
	get(t, &http.Client{}, "http://"+listen+"/logged?x=1", "Host", "www.example.com")
	r := rec.wait(t, 1)[0]
	if r.Service != "web" || !r.HTTP || r.Method != "GET" || r.Host != "www.example.com" || r.Path != "/logged?x=1" || r.Proto != "HTTP/1.1" ||
		r.Status != 200 || r.Backend != "b0" || r.Server != "s0" || r.Termination != stNormal || !r.Client.Addr().IsLoopback() {
		t.Fatalf("record %+v", r)
	}
	raw(t, listen, "GET / HTTP/1.1\r\n\r\n") // no Host: 400
	r = rec.wait(t, 2)[1]
	if r.Status != 400 || r.Termination != stPR || r.Backend != "" || r.Server != "" {
		t.Fatalf("refused request's record %+v", r)
	}
	if n := len(rec.all()); n != 2 {
		t.Fatalf("%d records, want 2 (none from the service without access_log)", n)
	}
}

// TestCurl: the real client HTTP users reach for: HTTP/1.0, keep-alive
// across two URLs, and an upload with Expect: 100-continue.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (scripts/deps.sh installs it)")
	}
	o := newOrigin(t, "a")
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(o.addr()))))
	waitListening(t, listen)
	out, err := exec.Command(curl, "-sS", "-0", "http://"+listen+"/ten").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "proto=HTTP/1.0") {
		t.Fatalf("curl -0: %v\n%s", err, out)
	}
	out, err = exec.Command(curl, "-sS", "-v", "http://"+listen+"/one", "http://"+listen+"/two").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "uri=/two") || !regexp.MustCompile(`(?i)re-?using existing connection`).Match(out) {
		t.Fatalf("curl keep-alive: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "upload")
	payload := bytes.Repeat([]byte("u"), 200000)
	os.WriteFile(file, payload, 0o644)
	out, err = exec.Command(curl, "-sS", "-v", "-T", file, "-H", "Expect: 100-continue", "http://"+listen+"/put").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "HTTP/1.1 100 Continue") || !strings.Contains(string(out), "len=200000") {
		t.Fatalf("curl upload with 100-continue: %v\n%s", err, out)
	}
}

// TestHTTPPooledConnectionClosedByServer: a server that closes its idle
// keep-alive connections without saying so; the next GET through the
// pool is sent again on a new connection instead of failing.
func TestHTTPPooledConnectionClosedByServer(t *testing.T) {
	var accepted atomic.Int64
	addr := serveConns(t, func(c net.Conn) {
		accepted.Add(1)
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(50 * time.Millisecond) // then close while idle
	})
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(addr))))
	waitListening(t, listen)
	client := &http.Client{}
	for i := range 3 {
		resp, body := get(t, client, "http://"+listen+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := accepted.Load(); n < 3 {
		t.Fatalf("%d server connections for 3 requests 200ms apart", n)
	}
}

// TestHTTPExpectIgnoredByServer: a server that ignores Expect and waits
// for the body still gets it: after expectWait the proxy streams the body
// the client sends once its own wait for 100 is over (curl waits 1s).
func TestHTTPExpectIgnoredByServer(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c)) // sends no 100
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
	})
	listen := freePort(t)
	run(t, mustConfig(t, httpConfig(listen, "", servers(addr))))
	waitListening(t, listen)
	c, br := dialProxy(t, listen)
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	time.Sleep(1200 * time.Millisecond) // the client's own wait for 100
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// TestServerDownByHealth: a server taken out by its health check gets no
// new requests (persistence included), survives a reload taken out, and
// is used again once back.
func TestServerDownByHealth(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	cfg := httpConfig(listen, "", "    sticky: {cookie: SRV}\n"+servers(a.addr(), b.addr()))
	c := run(t, mustConfig(t, cfg))
	waitListening(t, listen)
	client := &http.Client{}
	c.SetServerUp("b0", "s0", false)
	c.Apply(mustConfig(t, cfg+"\n")) // a reload keeps it out
	for range 6 {
		if _, body := get(t, client, "http://"+listen+"/", "Cookie", "SRV=s0"); field(body, "server") != "b" {
			t.Fatalf("a server down by health check got a request (cookie SRV=s0): %s", body)
		}
	}
	if st := c.Status().([]ServiceStatus)[0].Backends[0].Servers[0]; st.Up {
		t.Fatalf("status shows s0 up: %+v", st)
	}
	c.SetServerUp("b0", "s1", false)
	if resp, _ := get(t, client, "http://"+listen+"/"); resp.StatusCode != 503 {
		t.Fatalf("all servers down: %d, want 503", resp.StatusCode)
	}
	c.SetServerUp("b0", "s0", true)
	if _, body := get(t, client, "http://"+listen+"/"); field(body, "server") != "a" {
		t.Fatalf("after s0 came back: %s", body)
	}
}

// TestServerDrained: a drained server gets no new sessions but still its
// persistent clients (HAProxy's drain), across a reload; ready restores it.
func TestServerDrained(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	cfg := httpConfig(listen, "", "    sticky: {cookie: SRV}\n"+servers(a.addr(), b.addr()))
	c := run(t, mustConfig(t, cfg))
	waitListening(t, listen)
	client := &http.Client{}
	c.SetServerDrained("b0", "s0", true)
	c.Apply(mustConfig(t, cfg+"\n"))
	for range 4 {
		if _, body := get(t, client, "http://"+listen+"/"); field(body, "server") != "b" {
			t.Fatalf("a drained server got a new session: %s", body)
		}
	}
	if _, body := get(t, client, "http://"+listen+"/", "Cookie", "SRV=s0"); field(body, "server") != "a" {
		t.Fatalf("a persistent client of the drained server was moved: %s", body)
	}
	if st := c.Status().([]ServiceStatus)[0].Backends[0].Servers[0]; !st.Drained || !st.Up {
		t.Fatalf("status %+v", st)
	}
	c.SetServerDrained("b0", "s0", false)
	seen := map[string]bool{}
	for range 4 {
		_, body := get(t, client, "http://"+listen+"/")
		seen[field(body, "server")] = true
	}
	if !seen["a"] {
		t.Fatalf("the ready server got nothing: %v", seen)
	}
}

// TestObserveResponses: a backend with observe: layer7 reports every
// request's status (and response failures) for passive checks; others
// report none.
func TestObserveResponses(t *testing.T) {
	a := newOrigin(t, "a")
	listen := freePort(t)
	type outcome struct {
		backend, server string
		status          int
		err             bool
	}
	var mu sync.Mutex
	var got []outcome
	c := New(slog.New(slog.DiscardHandler))
	c.ObserveResponses(func(b, s string, status int, err error) {
		mu.Lock()
		got = append(got, outcome{b, s, status, err != nil})
		mu.Unlock()
	})
	cfg := "node: {name: lb1}\nservices:\n  - name: web\n    listen: [\"" + listen + "\"]\n    default_backend: b0\n" +
		"    routes: [{path_prefix: /5, backend: b1}]\n    timeouts: {server: 200ms}\n" +
		"backends:\n  - name: b0\n    health: {observe: layer7}\n" + servers(a.addr()) +
		"  - name: b1\n" + servers(a.addr())
	runComponent(t, c, mustConfig(t, cfg))
	waitListening(t, listen)
	client := &http.Client{}
	get(t, client, "http://"+listen+"/")
	get(t, client, "http://"+listen+"/500")  // b1: layer4, not reported
	get(t, client, "http://"+listen+"/slow") // 300ms > timeouts.server: 504
	mu.Lock()
	defer mu.Unlock()
	want := []outcome{{"b0", "s0", 200, false}, {"b0", "s0", 0, true}}
	if !slices.Equal(got, want) {
		t.Fatalf("observed %+v, want %+v", got, want)
	}
}
