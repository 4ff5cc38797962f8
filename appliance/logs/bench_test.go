package logs

import (
	"net"
	"path/filepath"
	"testing"

	"halb/appliance/config"
)

// BenchmarkAccess measures one Access call (format, copy, queue) with one
// file target and with one UDP syslog target; the writer goroutine runs
// beside it, and dropped/op says how many lines it could not keep up with
// (a dropped line costs the caller less than a queued one).
//
//	flock /tmp/halb-heavy.lock go test -run '^$' -bench Access -benchmem ./appliance/logs
func BenchmarkAccess(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		cfg := fileTarget("f", filepath.Join(b.TempDir(), "access.log"))
		cfg.Queue = 1 << 16
		benchAccess(b, cfg)
	})
	b.Run("udp", func(b *testing.B) {
		// A receiver that keeps nothing: its allocations would count.
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 65536)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
		b.Cleanup(func() { c.Close(); <-done })
		cfg := syslogTarget("u", "udp", c.LocalAddr().String())
		cfg.Queue = 1 << 16
		benchAccess(b, cfg)
	})
}

func benchAccess(b *testing.B, cfg config.LogTarget) {
	opts, _ := testOptions(b)
	m := newManager(b, []config.LogTarget{cfg}, opts)
	r := httpRecord(12345)
	b.ReportAllocs()
	for b.Loop() {
		m.Access(r)
	}
	b.StopTimer()
	m.Close()
	s := m.Status()[0]
	b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkAccessLine measures formatting alone.
func BenchmarkAccessLine(b *testing.B) {
	r := httpRecord(12345)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAccess(buf[:0], r)
	}
}

// BenchmarkAccessParallel is BenchmarkAccess/file from as many goroutines
// as GOMAXPROCS, as the proxy calls it.
func BenchmarkAccessParallel(b *testing.B) {
	cfg := fileTarget("f", filepath.Join(b.TempDir(), "access.log"))
	cfg.Queue = 1 << 16
	opts, _ := testOptions(b)
	m := newManager(b, []config.LogTarget{cfg}, opts)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httpRecord(12345)
		for pb.Next() {
			m.Access(r)
		}
	})
	b.StopTimer()
	m.Close()
	b.ReportMetric(float64(m.Status()[0].Dropped)/float64(b.N), "dropped/op")
}
