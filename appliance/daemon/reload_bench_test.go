package daemon

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// bigConfig is a config of nb backends of ns servers each, balanced by
// one http service per listen address that routes by host name (each
// service an equal share of the backends); every server is at addr,
// checked by tcp every 30s. weight is the weight of server s0 of backend
// be0, the one thing a reload changes.
func bigConfig(listen []string, nb, ns int, addr string, weight int) []byte {
	var b bytes.Buffer
	b.WriteString("node: {name: lb1}\nservices:\n")
	per := nb / len(listen)
	for i, l := range listen {
		fmt.Fprintf(&b, "  - name: svc%d\n    listen: [\"%s\"]\n    mode: http\n    default_backend: be%d\n    routes:\n",
			i, l, i*per)
		for j := i * per; j < (i+1)*per; j++ {
			fmt.Fprintf(&b, "      - {host: b%d.example, backend: be%d}\n", j, j)
		}
	}
	b.WriteString("backends:\n")
	for i := range nb {
		fmt.Fprintf(&b, "  - name: be%d\n    health: {check: tcp, interval: 30s}\n    servers:\n", i)
		for j := range ns {
			w := 1
			if i == 0 && j == 0 {
				w = weight
			}
			fmt.Fprintf(&b, "      - {name: s%d, address: \"%s\", weight: %d}\n", j, addr, w)
		}
	}
	return b.Bytes()
}

// inuse is the heap and the goroutine stacks in use after a collection.
func inuse() (heap, stacks uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// BenchmarkReload1000x10 applies a config of 1000 backends of 10 servers
// (10 http services of 100 host routes each) the way the API does (parse,
// validate, prepare, save, history, apply): once to an unconfigured
// daemon, then as reloads that each change one server's weight. It reports
// parse+validate and Diff on their own, the first apply's time, the heap
// and goroutine stacks the config in force holds (HeapInuse and StackInuse
// after a collection, less the unconfigured daemon's), and a reload's time
// and allocations.
func BenchmarkReload1000x10(b *testing.B) {
	const nsvc, nb, ns = 10, 1000, 10
	addr := testutil.Serve(b, func(c net.Conn) { c.Close() })
	listen := make([]string, nsvc)
	for i := range listen {
		listen[i] = testutil.ReservedAddr(b)
	}
	raw := [2][]byte{bigConfig(listen, nb, ns, addr, 1), bigConfig(listen, nb, ns, addr, 2)}
	b.Logf("config: %d services, %d backends, %d servers, %d KiB of YAML", nsvc, nb, nb*ns, len(raw[0])>>10)

	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := config.Parse("halb.yaml", raw[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	c0, err := config.Parse("halb.yaml", raw[0])
	if err != nil {
		b.Fatal(err)
	}
	c1, _ := config.Parse("halb.yaml", raw[1])
	b.Run("diff", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ch := config.Diff(c0, c1); len(ch) != 1 {
				b.Fatalf("%d changes, want 1", len(ch))
			}
		}
	})

	b.Run("apply", func(b *testing.B) {
		td := startDaemon(b, b.TempDir(), "")
		heap0, stack0 := inuse()
		start := time.Now()
		if _, err := td.Apply("big.yaml", raw[0]); err != nil {
			b.Fatal(err)
		}
		first := time.Since(start)
		heap1, stack1 := inuse()
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			n++
			if _, err := td.Apply("big.yaml", raw[n%2]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
		b.ReportMetric(float64(heap1-heap0)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(stack1-stack0)/(1<<20), "stack-MiB")
	})
}
