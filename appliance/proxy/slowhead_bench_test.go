package proxy

import (
	"context"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSlowHeadBytes measures the proxy's CPU per byte of a slow
// client's head (slowloris): 1000 connections each hold an unfinished head,
// parked; an op writes one more byte to one of them, in turns, and every
// 1000 ops waits until all are parked again. It reports cpu-µs/byte: the
// CPU of the whole process (the writes included) per byte.
//
//	go test -run X -bench SlowHeadBytes ./appliance/proxy
func BenchmarkSlowHeadBytes(b *testing.B) { slowHeadBench(b, "a") }

// BenchmarkSlowHeadLines is BenchmarkSlowHeadBytes with heads of short
// header lines ("X-A: 1\r\n" over and over, a byte at a time): what a
// line's end adds to the bytes. Keep -benchtime under about 100 lines a
// connection (100000x), below the proxy's limit on header fields.
//
//	go test -run X -bench SlowHeadLines -benchtime 100000x ./appliance/proxy
func BenchmarkSlowHeadLines(b *testing.B) { slowHeadBench(b, "X-A: 1\r\n") }

// slowHeadBench is BenchmarkSlowHeadBytes with tail repeated after the
// request line and the Host field.
func slowHeadBench(b *testing.B, tail string) {
	const conns = 1000
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	listen := ln.Addr().String()
	ln.Close()
	c := New(slog.New(slog.DiscardHandler))
	c.Apply(mustConfigB(b, "node: {name: lb1}\nservices:\n  - {name: web, listen: [\""+listen+"\"], default_backend: b, timeouts: {http_request: 1h}}\nbackends:\n  - name: b\n    servers: [{name: s0, address: \"127.0.0.1:9\"}]\n"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })

	var cs []net.Conn
	b.Cleanup(func() {
		for _, cn := range cs {
			cn.Close()
		}
	})
	for range conns {
		var cn net.Conn
		var err error
		for range 100 {
			if cn, err = net.Dial("tcp", listen); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			b.Fatal(err)
		}
		cn.Write([]byte("G"))
		cs = append(cs, cn)
	}
	allParked := func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if p := c.parker(); p != nil && p.Len() == conns {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d slow connections parked after 10s; %d active", c.parker().Len(), conns, c.Status().([]ServiceStatus)[0].Stats.ActiveConnections)
			}
			time.Sleep(time.Millisecond)
		}
	}
	allParked()
	head := []byte("ET /slow HTTP/1.1\r\nHost: slow\r\n")
	sent := make([]int, conns)
	next := func(i int) []byte {
		k := sent[i]
		sent[i]++
		if k < len(head) {
			return head[k : k+1]
		}
		k = (k - len(head)) % len(tail)
		return []byte(tail[k : k+1])
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for i := range b.N {
		cs[i%conns].Write(next(i % conns))
		if i%conns == conns-1 {
			allParked()
		}
	}
	allParked()
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/byte")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
