package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/logs"
	"halb/internal/testutil"
)

// captureLog is an access logger that keeps copies of the records.
type captureLog struct {
	mu   sync.Mutex
	recs []logs.Access
}

func (c *captureLog) Access(r *logs.Access) {
	c.mu.Lock()
	c.recs = append(c.recs, *r)
	c.mu.Unlock()
}

func (c *captureLog) all() []logs.Access {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logs.Access(nil), c.recs...)
}

// waitClient waits for the record of the client at a and returns it.
func (c *captureLog) waitClient(t *testing.T, a net.Addr) logs.Access {
	t.Helper()
	var r logs.Access
	testutil.WaitFor(t, "the access record of "+a.String(), func() bool {
		for _, x := range c.all() {
			if x.Client == addrPort(a) {
				r = x
				return true
			}
		}
		return false
	})
	return r
}

// wait waits for n records and returns them.
func (c *captureLog) wait(t *testing.T, n int) []logs.Access {
	t.Helper()
	testutil.WaitFor(t, "access records", func() bool { return len(c.all()) >= n })
	return c.all()
}

// respond returns a server that reads one request head and runs then.
func respond(t *testing.T, then func(c net.Conn)) string {
	t.Helper()
	return respondEach(t, func(c net.Conn) bool { then(c); return false })
}

// respondEach returns a server that runs then after each request head
// (of requests without a body) while then reports true.
func respondEach(t *testing.T, then func(c net.Conn) bool) string {
	t.Helper()
	return testutil.Serve(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" && !then(c) {
				return
			}
		}
	})
}

// fullBacklog returns the address of a listener whose accept queue is
// full: the kernel drops the SYNs of further connections, which time out.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // room for one connection
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	c, err := net.Dial("tcp", addr) // fills the queue
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}

// exchangeRaw sends req on a new connection through the proxy, runs then
// (nil: read until the proxy closes) and returns the bytes received.
func exchangeRaw(t *testing.T, addr, req string, then func(c net.Conn) []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	if then != nil {
		return then(c)
	}
	b, _ := io.ReadAll(c)
	return b
}

// stage names the timings of a record, for the table below.
type stages struct{ request, queue, connect, response bool }

func checkStages(t *testing.T, r logs.Access, want stages) {
	t.Helper()
	for _, s := range []struct {
		name    string
		d       time.Duration
		reached bool
	}{{"request", r.Request, want.request}, {"queue", r.Queue, want.queue}, {"connect", r.Connect, want.connect}, {"response", r.Response, want.response}} {
		if s.reached && s.d < 0 || !s.reached && s.d != -1 {
			t.Errorf("%s time %v, want reached %v", s.name, s.d, s.reached)
		}
	}
	if r.Total < 0 {
		t.Errorf("total time %v", r.Total)
	}
}

// TestAccessRecordsHTTP: for each way a request ends, the record says who
// ended it in which stage (HAProxy's termination states), which stages it
// reached, which backend and server took it, and the bytes the client got.
func TestAccessRecordsHTTP(t *testing.T) {
	const get = "GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	ok := func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello") }
	all := stages{true, true, true, true}
	upToConnect := stages{true, true, true, false}
	none := stages{}
	relayed := make(chan struct{}) // the client got the first chunk
	for _, tc := range []struct {
		name     string
		server   func(t *testing.T) string // address of s0
		extra    string                    // service YAML lines
		srvExtra string                    // s0's YAML fields
		req      string
		client   func(c net.Conn) []byte
		status   int
		term     string
		server0  bool // the record names s0
		backend  bool // the record names b0
		stages   stages
		minStage time.Duration // Queue or Connect at least this (timeouts)
	}{
		{name: "normal", server: func(t *testing.T) string { return respond(t, ok) }, req: get,
			status: 200, term: "--", server0: true, backend: true, stages: all},
		{name: "client closes mid-head", server: func(t *testing.T) string { return respond(t, ok) }, req: "GET /p HTTP/1.1\r\nHost: x\r\n",
			client: func(c net.Conn) []byte { return nil }, term: "CR", stages: none},
		{name: "head timeout", server: func(t *testing.T) string { return respond(t, ok) }, extra: "    timeouts: {http_request: 200ms}\n",
			req: "GET /p HTTP/1.1\r\nHost: x\r\n", status: 408, term: "cR", stages: none},
		{name: "bad request", server: func(t *testing.T) string { return respond(t, ok) }, req: "GET /p HTTP/1.1\r\n\r\n",
			status: 400, term: "PR", stages: none},
		{name: "body too large", server: func(t *testing.T) string { return respond(t, ok) }, extra: "    limits: {max_body_bytes: 10}\n",
			req: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", status: 413, term: "PR", stages: stages{request: true}},
		{name: "no server", server: func(t *testing.T) string { return respond(t, ok) }, srvExtra: ", weight: 0", req: get,
			status: 503, term: "SC", backend: true, stages: stages{request: true, queue: true}},
		{name: "connect refused", server: func(t *testing.T) string { return freePort(t) }, req: get,
			status: 503, term: "SC", backend: true, server0: true, stages: upToConnect},
		{name: "connect timeout", server: fullBacklog, extra: "    timeouts: {connect: 200ms}\n", req: get,
			status: 503, term: "sC", backend: true, server0: true, stages: upToConnect, minStage: 200 * time.Millisecond},
		{name: "client closes during its body", server: func(t *testing.T) string { return respond(t, func(c net.Conn) { io.Copy(io.Discard, c) }) },
			req: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", client: func(c net.Conn) []byte { return nil },
			term: "CD", backend: true, server0: true, stages: upToConnect},
		{name: "client silent during its body", server: func(t *testing.T) string { return respond(t, func(c net.Conn) { io.Copy(io.Discard, c) }) },
			extra: "    timeouts: {client: 200ms}\n", req: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
			status: 408, term: "cD", backend: true, server0: true, stages: upToConnect},
		{name: "response timeout", server: func(t *testing.T) string { return respond(t, func(c net.Conn) { io.Copy(io.Discard, c) }) },
			extra: "    timeouts: {server: 200ms}\n", req: get, status: 504, term: "sH", backend: true, server0: true, stages: upToConnect},
		{name: "server closes before its head", server: func(t *testing.T) string { return respond(t, func(net.Conn) {}) }, req: get,
			status: 502, term: "SH", backend: true, server0: true, stages: upToConnect},
		{name: "invalid response head", server: func(t *testing.T) string {
			return respond(t, func(c net.Conn) { io.WriteString(c, "HELLO WORLD\r\n\r\n") })
		}, req: get, status: 502, term: "PH", backend: true, server0: true, stages: upToConnect},
		{name: "server closes during the body", server: func(t *testing.T) string {
			return respond(t, func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789") })
		}, req: get, status: 200, term: "SD", backend: true, server0: true, stages: all},
		{name: "server silent during the body", server: func(t *testing.T) string {
			return respond(t, func(c net.Conn) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
				io.Copy(io.Discard, c)
			})
		}, extra: "    timeouts: {server: 200ms}\n", req: get, status: 200, term: "sD", backend: true, server0: true, stages: all},
		{name: "malformed chunked body", server: func(t *testing.T) string {
			return respond(t, func(c net.Conn) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
				<-relayed
				io.WriteString(c, "zz\r\n")
				io.Copy(io.Discard, c)
			})
		}, req: get, client: func(c net.Conn) []byte {
			var got []byte
			buf := make([]byte, 4096)
			for !bytes.Contains(got, []byte("hello\r\n")) {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					return got
				}
			}
			close(relayed)
			rest, _ := io.ReadAll(c)
			return append(got, rest...)
		}, status: 200, term: "PD", backend: true, server0: true, stages: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listen := freePort(t)
			var rec captureLog
			c := New(slog.New(slog.DiscardHandler))
			c.SetAccessLog(&rec)
			cfg := fmt.Sprintf("node: {name: lb1}\nservices:\n  - name: web\n    listen: [\"%s\"]\n    default_backend: b0\n    access_log: true\n%sbackends:\n  - name: b0\n    servers: [{name: s0, address: \"%s\"%s}]\n",
				listen, tc.extra, tc.server(t), tc.srvExtra)
			runComponent(t, c, mustConfig(t, cfg))
			waitListening(t, listen)
			got := exchangeRaw(t, listen, tc.req, tc.client)
			r := rec.wait(t, 1)[0]
			if string(r.Termination[:]) != tc.term || r.Status != tc.status {
				t.Fatalf("termination %q status %d, want %q %d; record %+v; client got %q", r.Termination[:], r.Status, tc.term, tc.status, r, got)
			}
			if r.BytesOut != int64(len(got)) {
				t.Errorf("bytes out %d, the client got %d", r.BytesOut, len(got))
			}
			if (r.Backend == "b0") != tc.backend || (r.Server == "s0") != tc.server0 || r.Backend == "" && r.Server != "" {
				t.Errorf("backend %q server %q", r.Backend, r.Server)
			}
			if tc.status != 0 && !bytes.HasPrefix(got, []byte(fmt.Sprintf("HTTP/1.1 %d ", tc.status))) {
				t.Errorf("the client got %q", got)
			}
			checkStages(t, r, tc.stages)
			if max(r.Queue, 0)+max(r.Connect, 0) < tc.minStage {
				t.Errorf("queue %v + connect %v, want at least %v", r.Queue, r.Connect, tc.minStage)
			}
			if r.Total < r.Request || r.Total < max(r.Queue, 0)+max(r.Connect, 0) {
				t.Errorf("total %v below its stages: %+v", r.Total, r)
			}
			if n := len(rec.all()); n != 1 {
				t.Errorf("%d records for one request", n)
			}
		})
	}
}

// accessProxy runs a proxy with access records on the config of one
// service (YAML lines after its name and listen) and one backend b0 (its
// servers' YAML), and returns its address and the records.
func accessProxy(t *testing.T, service, backend string) (*Component, string, *captureLog) {
	t.Helper()
	listen := freePort(t)
	rec := &captureLog{}
	c := New(slog.New(slog.DiscardHandler))
	c.SetAccessLog(rec)
	cfg := fmt.Sprintf("node: {name: lb1}\nservices:\n  - name: web\n    listen: [\"%s\"]\n    default_backend: b0\n    access_log: true\n%sbackends:\n  - name: b0\n%s",
		listen, service, backend)
	runComponent(t, c, mustConfig(t, cfg))
	waitListening(t, listen)
	return c, listen, rec
}

// endless answers a request with a head and an endless body until the
// connection fails.
func endless(c net.Conn) {
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n")
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// TestAccessRecordsClientData: a client that resets its connection during
// the response body ends it in CD; one that stops reading for the client
// timeout, in cD.
func TestAccessRecordsClientData(t *testing.T) {
	const get = "GET /p HTTP/1.1\r\nHost: x\r\n\r\n"
	t.Run("client aborts", func(t *testing.T) {
		_, listen, rec := accessProxy(t, "", "    servers: [{name: s0, address: \""+respond(t, endless)+"\"}]\n")
		exchangeRaw(t, listen, get, func(c net.Conn) []byte {
			buf := make([]byte, 4096)
			if _, err := io.ReadAtLeast(c, buf, 100); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).SetLinger(0) // close with a reset
			return nil
		})
		r := rec.wait(t, 1)[0]
		if string(r.Termination[:]) != "CD" || r.Status != 200 || r.Server != "s0" || r.BytesOut < 100 {
			t.Fatalf("record %+v, want CD 200 from s0", r)
		}
		checkStages(t, r, stages{true, true, true, true})
	})
	t.Run("client timeout", func(t *testing.T) {
		_, listen, rec := accessProxy(t, "    timeouts: {client: 200ms}\n", "    servers: [{name: s0, address: \""+respond(t, endless)+"\"}]\n")
		exchangeRaw(t, listen, get, func(c net.Conn) []byte {
			rec.wait(t, 1) // reading nothing meanwhile
			return nil
		})
		r := rec.all()[0]
		if string(r.Termination[:]) != "cD" || r.Status != 200 || r.Server != "s0" {
			t.Fatalf("record %+v, want cD 200 from s0", r)
		}
	})
}

// TestAccessRecordsQueue: a request that waits for a slot on a server at
// its maxconn for the whole queue timeout gets 503, sQ, with the wait as
// its queue time and no connect time.
func TestAccessRecordsQueue(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	srv := respond(t, func(c net.Conn) {
		held <- struct{}{}
		<-release
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	c, listen, rec := accessProxy(t, "    timeouts: {queue: 200ms}\n", "    servers: [{name: s0, address: \""+srv+"\", maxconn: 1}]\n")
	first := make(chan []byte)
	go func() {
		first <- exchangeRaw(t, listen, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
	}()
	<-held
	got := exchangeRaw(t, listen, "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
	r := rec.wait(t, 1)[0]
	if string(r.Termination[:]) != "sQ" || r.Status != 503 || r.Backend != "b0" || r.Server != "" || r.BytesOut != int64(len(got)) {
		t.Fatalf("queued request's record %+v (client got %q), want sQ 503 in b0 with no server", r, got)
	}
	checkStages(t, r, stages{request: true, queue: true})
	if r.Queue < 200*time.Millisecond {
		t.Errorf("queue time %v, want the queue timeout (200ms) at least", r.Queue)
	}
	close(release)
	got = <-first
	r = rec.wait(t, 2)[1]
	if string(r.Termination[:]) != "--" || r.Status != 200 || r.Server != "s0" || r.BytesOut != int64(len(got)) {
		t.Fatalf("first request's record %+v (client got %q)", r, got)
	}
	st := c.Status().([]ServiceStatus)[0]
	// At least: waitListening's connection may not have ended yet.
	if st.Stats.MaxActive < 2 {
		t.Errorf("service's max active %d, want the 2 clients at once", st.Stats.MaxActive)
	}
	be := st.Backends[0]
	if q := be.QueueTime; sum(q.Counts) != 2 || be.QueueTimeouts != 1 || be.Total != 1 || be.Servers[0].MaxActive != 1 {
		t.Fatalf("backend status %+v: want 2 queue times, 1 timeout, 1 session, at most 1 at once", be)
	}
}

func sum(c []uint64) uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// TestAccessRecordsRedispatch: a request whose first server refuses the
// connection goes to the other: the record counts the retry and the
// redispatch, and so do the backend and the server that failed.
func TestAccessRecordsRedispatch(t *testing.T) {
	alive := respond(t, func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") })
	// s0's weight makes it the first pick of the smooth round robin.
	c, listen, rec := accessProxy(t, "", "    servers: [{name: s0, address: \""+freePort(t)+"\", weight: 2}, {name: s1, address: \""+alive+"\"}]\n")
	got := exchangeRaw(t, listen, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil)
	r := rec.wait(t, 1)[0]
	if r.Status != 200 || r.Server != "s1" || r.Retries != 1 || !r.Redispatched || string(r.Termination[:]) != "--" || r.BytesOut != int64(len(got)) {
		t.Fatalf("record %+v, want 200 from s1 after one retry, redispatched", r)
	}
	checked := time.Now()
	st := c.Status().([]ServiceStatus)[0]
	be := st.Backends[0]
	// Both sessions were given after the connection was accepted (the
	// record's Start) and before now, s1's after s0's. (Start + Total
	// was no bound: Total counts from the request's first byte, which
	// may come well after the accept on a loaded machine.)
	first, last := be.Servers[0].LastSession, be.Servers[1].LastSession
	if first.Before(r.Start) || last.Before(first) || last.After(checked) {
		t.Errorf("last sessions %v (s0), %v (s1); the connection was accepted at %v, checked at %v", first, last, r.Start, checked)
	}
	if st.Stats.Retries != 1 || be.Retries != 1 || be.Redispatches != 1 || be.Servers[0].Retries != 1 || be.Servers[0].Redispatches != 1 ||
		be.Servers[1].Retries != 0 || be.Servers[0].ConnectErrors != 1 {
		t.Fatalf("status %+v: want one retry and one redispatch, counted on s0", st)
	}
	if be.Servers[1].BytesOut != int64(len(got)) || be.BytesOut != int64(len(got)) || be.Servers[0].BytesOut != 0 || be.Responses["2xx"] != 1 {
		t.Fatalf("bytes out: backend %d, s0 %d, s1 %d; the client got %d", be.BytesOut, be.Servers[0].BytesOut, be.Servers[1].BytesOut, len(got))
	}
}

// TestAccessRecordsKeepAlive: two requests on one connection make two
// records; their bytes out add up to what the client got, and the second
// starts where the first ended.
func TestAccessRecordsKeepAlive(t *testing.T) {
	srv := respondEach(t, func(c net.Conn) bool {
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
		return err == nil
	})
	c, listen, rec := accessProxy(t, "", "    servers: [{name: s0, address: \""+srv+"\"}]\n")
	cn, _ := dialProxy(t, listen)
	received := 0
	for _, path := range []string{"/one", "/two"} {
		io.WriteString(cn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		var got []byte
		buf := make([]byte, 4096)
		for !bytes.HasSuffix(got, []byte("\r\n\r\nabc")) {
			n, err := cn.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("%s: %v after %q", path, err, got)
			}
		}
		received += len(got)
	}
	cn.Close()
	rs := rec.wait(t, 2)
	var out int64
	for _, r := range rs {
		out += r.BytesOut
	}
	if out != int64(received) || rs[0].Path != "/one" || rs[1].Path != "/two" || rs[1].Start.Before(rs[0].Start) {
		t.Fatalf("records %+v: bytes out %d, the client got %d", rs, out, received)
	}
	be := c.Status().([]ServiceStatus)[0].Backends[0]
	if be.BytesOut != out || be.Servers[0].BytesOut != out || sum(be.TotalTime.Counts) != 2 || sum(be.ResponseTime.Counts) != 2 {
		t.Fatalf("backend %+v, records' bytes out %d", be, out)
	}
}

// TestAccessRecordsTCP: a tcp connection's record: the bytes moved each
// way, the backend and server, queue and connect times (no request or
// response stage), and who ended it.
func TestAccessRecordsTCP(t *testing.T) {
	// greet sends hello, reads the client's bytes until EOF, and closes.
	greet := func(t *testing.T) string {
		return testutil.Serve(t, func(c net.Conn) {
			defer c.Close()
			io.WriteString(c, "hello")
			io.Copy(io.Discard, c)
		})
	}
	for _, tc := range []struct {
		name    string
		server  func(t *testing.T) string
		extra   string
		client  func(t *testing.T, c *net.TCPConn) []byte // returns what it got
		term    string
		in      int64 // bytes from the client; -1: not checked
		server0 bool
		stages  stages
	}{
		{name: "normal", server: greet, client: func(t *testing.T, c *net.TCPConn) []byte {
			io.WriteString(c, "ping")
			c.CloseWrite()
			b, _ := io.ReadAll(c)
			return b
		}, term: "--", in: 4, server0: true, stages: stages{queue: true, connect: true}},
		{name: "no server", server: freePort, client: func(t *testing.T, c *net.TCPConn) []byte {
			b, _ := io.ReadAll(c)
			return b
		}, term: "SC", in: 0, server0: true, stages: stages{queue: true, connect: true}},
		{name: "server resets", server: func(t *testing.T) string {
			return testutil.Serve(t, func(c net.Conn) {
				io.ReadFull(c, make([]byte, 4))
				io.WriteString(c, "bye")
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			})
		}, client: func(t *testing.T, c *net.TCPConn) []byte {
			io.WriteString(c, "ping")
			b, _ := io.ReadAll(c)
			return b
		}, term: "SD", in: 4, server0: true, stages: stages{queue: true, connect: true}},
		{name: "client resets", server: greet, client: func(t *testing.T, c *net.TCPConn) []byte {
			b := make([]byte, 5)
			io.ReadFull(c, b)
			c.SetLinger(0)
			return b
		}, term: "CD", in: 0, server0: true, stages: stages{queue: true, connect: true}},
		{name: "client timeout", server: greet, extra: "    timeouts: {client: 200ms}\n", client: func(t *testing.T, c *net.TCPConn) []byte {
			b, _ := io.ReadAll(c)
			return b
		}, term: "cD", in: 0, server0: true, stages: stages{queue: true, connect: true}},
		{name: "server timeout", server: func(t *testing.T) string {
			return testutil.Serve(t, func(c net.Conn) {
				defer c.Close()
				io.Copy(io.Discard, c)
			})
		}, extra: "    timeouts: {server: 200ms}\n", client: func(t *testing.T, c *net.TCPConn) []byte {
			b, _ := io.ReadAll(c)
			return b
		}, term: "sD", in: 0, server0: true, stages: stages{queue: true, connect: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listen := freePort(t)
			rec := &captureLog{}
			c := New(slog.New(slog.DiscardHandler))
			c.SetAccessLog(rec)
			cfg := fmt.Sprintf("node: {name: lb1}\nservices:\n  - name: t\n    listen: [\"%s\"]\n    mode: tcp\n    default_backend: b\n    access_log: true\n%sbackends:\n  - name: b\n    servers: [{name: s0, address: \"%s\"}]\n",
				listen, tc.extra, tc.server(t))
			runComponent(t, c, mustConfig(t, cfg))
			waitListening(t, listen)
			cn, err := net.Dial("tcp", listen)
			if err != nil {
				t.Fatal(err)
			}
			defer cn.Close()
			cn.SetDeadline(time.Now().Add(10 * time.Second))
			got := tc.client(t, cn.(*net.TCPConn))
			cn.Close()
			r := rec.waitClient(t, cn.LocalAddr())
			if string(r.Termination[:]) != tc.term || r.HTTP || r.Status != 0 || r.Service != "t" || r.Backend != "b" || (r.Server == "s0") != tc.server0 {
				t.Fatalf("record %+v, want %s", r, tc.term)
			}
			if r.BytesOut != int64(len(got)) || tc.in >= 0 && r.BytesIn != tc.in {
				t.Errorf("bytes in %d out %d, want in %d, out %d (what the client got)", r.BytesIn, r.BytesOut, tc.in, len(got))
			}
			checkStages(t, r, tc.stages)
			// waitListening's connection may still be ending (a status
			// read between its service and backend counts would differ).
			var st ServiceStatus
			same := func() bool {
				st = c.Status().([]ServiceStatus)[0]
				be := st.Backends[0]
				return be.BytesIn == st.Stats.BytesIn && be.BytesOut == st.Stats.BytesOut
			}
			ok := same()
			for deadline := time.Now().Add(testutil.WaitTimeout); !ok && time.Now().Before(deadline); ok = same() {
				time.Sleep(10 * time.Millisecond)
			}
			if be := st.Backends[0]; !ok {
				t.Errorf("backend bytes %d/%d, service %d/%d", be.BytesIn, be.BytesOut, st.Stats.BytesIn, st.Stats.BytesOut)
			}
		})
	}
}

// TestAccessRecordsRetrySameServer: a request sent on a pooled connection
// that its server had closed is sent again on a new connection to the
// same server: a retry, not a redispatch.
func TestAccessRecordsRetrySameServer(t *testing.T) {
	// The server answers one request per connection, then closes it: the
	// proxy pools it, for a keep-alive response.
	closed := make(chan struct{}, 2)
	srv := respond(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		closed <- struct{}{}
	})
	c, listen, rec := accessProxy(t, "", "    servers: [{name: s0, address: \""+srv+"\"}]\n")
	const get = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	exchangeRaw(t, listen, get, nil)
	<-closed
	got := exchangeRaw(t, listen, get, nil)
	r := rec.wait(t, 2)[1]
	if r.Status != 200 || r.Server != "s0" || r.Retries != 1 || r.Redispatched || string(r.Termination[:]) != "--" || r.BytesOut != int64(len(got)) {
		t.Fatalf("record %+v, want 200 from s0 after one retry, not redispatched", r)
	}
	be := c.Status().([]ServiceStatus)[0].Backends[0]
	if be.Retries != 1 || be.Redispatches != 0 || be.Servers[0].Retries != 1 || be.Servers[0].Redispatches != 0 {
		t.Fatalf("backend %+v: want one retry, no redispatch", be)
	}
}
