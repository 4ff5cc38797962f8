package proxy

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"halb/internal/testutil"
)

// BenchmarkIdleConnMemory measures what an idle keep-alive connection
// costs the proxy once parked: 4000 clients (raw sockets, so that the
// client side allocates nothing on the Go heap) each get one response, then
// wait; it reports the live heap (after a GC) and the resident memory the
// process grew by, per connection. The heap figure is what the proxy
// keeps; the RSS figure adds the garbage collector's headroom and what
// the runtime keeps outside the heap (each socket's poll descriptor).
//
//	go test -run X -bench IdleConnMemory -benchtime 1x ./appliance/proxy
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 4000
	origin := rawOrigin(b)
	listen := testutil.ReservedAddr(b)
	cfg := "node: {name: lb1}\nservices:\n  - {name: web, listen: [\"" + listen + "\"], default_backend: b}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"" + origin + "\"}]\n"
	c := New(slog.New(slog.DiscardHandler))
	c.Apply(mustConfigB(b, cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	ap := netip.MustParseAddrPort(listen)
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	var fds []int
	b.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	dial := func() int {
		for range 500 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err = unix.Connect(fd, sa); err == nil {
				return fd
			}
			unix.Close(fd)
			time.Sleep(10 * time.Millisecond)
		}
		b.Fatal("cannot connect to", listen)
		return -1
	}
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	buf := make([]byte, 4096)
	exchange := func(fd int) {
		if _, err := unix.Write(fd, req); err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < 612+60 { // head + 612-byte body
			n, err := unix.Read(fd, buf)
			if err != nil || n == 0 {
				b.Fatalf("read: %v after %d bytes", err, got)
			}
			got += n
		}
	}
	// Warm up: the first connections grow the pools and the runtime.
	for range 64 {
		fd := dial()
		exchange(fd)
		fds = append(fds, fd)
	}
	awaitParked(b, c, len(fds), 30*time.Second)
	heap0, rss0 := liveHeap(), selfRSS(b)
	for range b.N {
		for range conns {
			fd := dial()
			exchange(fd)
			fds = append(fds, fd)
		}
	}
	awaitParked(b, c, len(fds), 30*time.Second)
	time.Sleep(time.Second) // the runtime returns what it freed
	heap1, rss1 := liveHeap(), selfRSS(b)
	if f := os.Getenv("HALB_IDLEMEM_PROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		pprof.WriteHeapProfile(out)
		out.Close()
	}
	n := float64(b.N * conns)
	b.ReportMetric(float64(heap1-heap0)/n, "heap-B/conn")
	b.ReportMetric(float64(rss1-rss0)/n, "rss-B/conn")
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

var vmRSS = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)

func selfRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	m := vmRSS.FindSubmatch(data)
	if m == nil {
		b.Fatal("no VmRSS in /proc/self/status")
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}
