package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/appliance/logs"
	"halb/internal/testutil"
)

// rawOrigin answers every request on a keep-alive connection with a fixed
// 612-byte page (nginx's welcome page size), parsing only enough to find
// the end of each head: the cheapest server, so the proxy's cost shows.
func rawOrigin(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := bytes.Repeat([]byte("x"), 612)
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 { // end of a head
						if _, err := c.Write(resp); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkHTTPKeepAlive measures one keep-alive client through the proxy
// (client, proxy and origin share the CPU). Profile it with
// go test -run X -bench HTTPKeepAlive -cpuprofile cpu.out ./appliance/proxy
func BenchmarkHTTPKeepAlive(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	// Two servers (the same origin): a pooled request is then watched for
	// its acknowledgement, as in a real pool of several servers.
	cfg := "node: {name: lb1}\nservices:\n  - {name: web, listen: [\"" + listen + "\"], default_backend: b}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"" + origin + "\"}, {name: s1, address: \"" + origin + "\"}]\n"
	benchRun(b, cfg, listen, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n", nil)
}

// discardAccess takes access records and drops them: the proxy's own cost
// of the access log, without a sink's.
type discardAccess struct{}

func (discardAccess) Access(*logs.Access) {}

// BenchmarkHTTPKeepAliveAccessLog is BenchmarkHTTPKeepAlive with
// access_log on and a logger that drops the records.
func BenchmarkHTTPKeepAliveAccessLog(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	cfg := "node: {name: lb1}\nservices:\n  - {name: web, listen: [\"" + listen + "\"], default_backend: b, access_log: true}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"" + origin + "\"}, {name: s1, address: \"" + origin + "\"}]\n"
	benchRun(b, cfg, listen, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n", discardAccess{})
}

const benchReq = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"

// tcpBenchConfig is a tcp service at listen in front of origin.
func tcpBenchConfig(listen, origin string) string {
	return "node: {name: lb1}\nservices:\n  - {name: t, listen: [\"" + listen + "\"], mode: tcp, default_backend: b}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"" + origin + "\"}]\n"
}

// BenchmarkTCP measures the same exchange through a tcp-mode service.
func BenchmarkTCP(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	benchRun(b, tcpBenchConfig(listen, origin), listen, benchReq, nil)
}

// BenchmarkTCPParallel: 64 keep-alive clients at once through a tcp-mode
// service, as wrk -c64.
func BenchmarkTCPParallel(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	benchParallel(b, tcpBenchConfig(listen, origin), listen, false)
}

// BenchmarkTCPConn: 16 clients at once, each request on a new connection
// through a tcp-mode service (wrk -H 'Connection: close'): an op is a
// connection.
func BenchmarkTCPConn(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	benchParallel(b, tcpBenchConfig(listen, origin), listen, true)
}

// startBench runs a proxy on cfg, with the access logger al if not nil,
// and waits until listen accepts.
func startBench(b *testing.B, cfg, listen string, al logs.AccessLogger) {
	c := New(slog.New(slog.DiscardHandler))
	c.SetAccessLog(al)
	c.Apply(mustConfigB(b, cfg))
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	for range 500 {
		if conn, err := net.Dial("tcp", listen); err == nil {
			conn.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("the proxy never listened on " + listen)
}

// exchange sends req on conn and reads rawOrigin's answer.
func exchange(conn net.Conn, br *bufio.Reader, req string) error {
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	// Read the head, then the body.
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
		if len(line) <= 2 {
			break
		}
	}
	if n != 612 {
		return fmt.Errorf("Content-Length %d", n)
	}
	_, err := br.Discard(n)
	return err
}

// benchRun runs a proxy on cfg, with the access logger al if not nil, and
// sends req b.N times on one connection to listen.
func benchRun(b *testing.B, cfg, listen, req string, al logs.AccessLogger) {
	startBench(b, cfg, listen, al)
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := exchange(conn, br, req); err != nil {
			b.Fatal(err)
		}
	}
}

func mustConfigB(b *testing.B, yaml string) *config.Config {
	b.Helper()
	cfg, err := config.Parse("halb.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// BenchmarkHTTPParallel: 64 keep-alive clients at once, as wrk -c64.
func BenchmarkHTTPParallel(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	cfg := "node: {name: lb1}\nservices:\n  - {name: web, listen: [\"" + listen + "\"], default_backend: b}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"" + origin + "\"}]\n"
	benchParallel(b, cfg, listen, false)
}

// benchParallel runs a proxy on cfg and clients of listen at once, 64 of
// them on keep-alive connections, or 16 with a new connection per request
// (perConn).
func benchParallel(b *testing.B, cfg, listen string, perConn bool) {
	startBench(b, cfg, listen, nil)
	b.SetParallelism(32) // 64 clients on 2 CPUs
	if perConn {
		b.SetParallelism(8)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var conn net.Conn
		var br *bufio.Reader
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		for pb.Next() {
			if conn == nil {
				var err error
				if conn, err = net.Dial("tcp", listen); err != nil {
					b.Error(err)
					return
				}
				br = bufio.NewReaderSize(conn, 64<<10)
			}
			if err := exchange(conn, br, benchReq); err != nil {
				b.Error(err)
				return
			}
			if perConn {
				conn.Close()
				conn = nil
			}
		}
	})
}

// BenchmarkTCPSparse: 200 tunnels through a tcp-mode service to an echo
// server, each making a round trip of 32 bytes every 30 ms, so every
// direction of every tunnel pauses longer than the tunnel watch's tick
// between its bytes: what mostly idle tunnels cost. An op is a round
// trip; cpu-µs/trip is the whole process's CPU (clients and echo server
// included) per round trip.
func BenchmarkTCPSparse(b *testing.B) {
	const tunnels, gap = 200, 30 * time.Millisecond
	echo := serveConns(b, func(c net.Conn) {
		defer c.Close()
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
	})
	listen := testutil.ReservedAddr(b)
	startBench(b, tcpBenchConfig(listen, echo), listen, nil)
	conns := make([]net.Conn, tunnels)
	for i := range conns {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	msg := bytes.Repeat([]byte("s"), 32)
	trip := func(c net.Conn, buf []byte) error {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	}
	for _, c := range conns { // warm: the pumps start after two chunks
		buf := make([]byte, len(msg))
		for range 3 {
			if err := trip(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	per := (b.N + tunnels - 1) / tunnels
	errs := make(chan error, tunnels)
	cpu0 := processCPU()
	b.ResetTimer()
	for i, c := range conns {
		go func() {
			buf := make([]byte, len(msg))
			time.Sleep(time.Duration(i) * gap / tunnels) // spread the tunnels over the gap
			for range per {
				if err := trip(c, buf); err != nil {
					errs <- err
					return
				}
				time.Sleep(gap)
			}
			errs <- nil
		}()
	}
	for range tunnels {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(per*tunnels), "cpu-µs/trip")
}
