package proxy

import (
	"bufio"
	"bytes"
	"context"
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

// BenchmarkTCP measures the same exchange through a tcp-mode service.
func BenchmarkTCP(b *testing.B) {
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	cfg := "node: {name: lb1}\nservices:\n  - {name: t, listen: [\"" + listen + "\"], mode: tcp, default_backend: b}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"" + origin + "\"}]\n"
	benchRun(b, cfg, listen, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n", nil)
}

// benchRun runs a proxy on cfg, with the access logger al if not nil, and
// sends req b.N times on one connection to listen.
func benchRun(b *testing.B, cfg, listen, req string, al logs.AccessLogger) {
	c := New(slog.New(slog.DiscardHandler))
	c.SetAccessLog(al)
	parsed := mustConfigB(b, cfg)
	c.Apply(parsed)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	var conn net.Conn
	var err error
	for range 500 {
		if conn, err = net.Dial("tcp", listen); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	want := 612
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := io.WriteString(conn, req); err != nil {
			b.Fatal(err)
		}
		// Read the head, then the body.
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
			if len(line) <= 2 {
				break
			}
		}
		if n != want {
			b.Fatalf("Content-Length %d", n)
		}
		if _, err := br.Discard(n); err != nil {
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
	c := New(slog.New(slog.DiscardHandler))
	c.Apply(mustConfigB(b, cfg))
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	for range 500 {
		if conn, err := net.Dial("tcp", listen); err == nil {
			conn.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	req := "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
	b.SetParallelism(32) // 64 clients on 2 CPUs
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", listen)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 64<<10)
		for pb.Next() {
			if _, err := io.WriteString(conn, req); err != nil {
				b.Error(err)
				return
			}
			n := -1
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Error(err)
					return
				}
				if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := br.Discard(n); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
