package health

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
)

// BenchmarkChecks1000 runs 1000 TCP checks a second (1000 servers, 1s
// interval) for 5s against a loopback listener and reports the CPU time of
// this process (checker and listener together) as a share of one core:
// make bench prints it.
func BenchmarkChecks1000(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var y strings.Builder
	y.WriteString("node: {name: lb1}\nbackends:\n  - name: many\n    health: {check: tcp, interval: 1s, timeout: 500ms}\n    servers:\n")
	for i := range 1000 {
		fmt.Fprintf(&y, "      - {name: s%d, address: \"%s\"}\n", i, ln.Addr())
	}
	cfg, err := config.Parse("halb.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		c := New(slog.New(slog.DiscardHandler), nil)
		c.Apply(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		time.Sleep(time.Second) // the first round, all at once
		cpu0, t0 := cpuTime(), time.Now()
		time.Sleep(5 * time.Second)
		cpu, wall := cpuTime()-cpu0, time.Since(t0)
		var checks int64
		for _, be := range c.Status().([]BackendHealth) {
			for _, s := range be.Servers {
				checks += s.Checks
				if s.State != "up" {
					b.Fatalf("server %s is %s: %s", s.Name, s.State, s.LastError)
				}
			}
		}
		cancel()
		<-done
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
		b.ReportMetric(float64(checks)/(wall.Seconds()+1), "checks/s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
