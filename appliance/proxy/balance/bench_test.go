package balance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkPick(b *testing.B) {
	ms := members(1, 2, 3, 1, 2, 3, 1, 2, 3, 1)
	var ls [10]atomic.Int64
	for i := range ls {
		ls[i].Store(int64(rand.IntN(100)))
	}
	load := func(i int) int64 { return ls[i].Load() }
	keys := ipKeys(1024)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			p := mustNew(b, alg, ms, load)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Pick(keys[i&1023], all)
				i++
			}
		})
		b.Run(alg+"/parallel", func(b *testing.B) {
			p := mustNew(b, alg, ms, load)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					p.Pick(keys[i&1023], all)
					i++
				}
			})
		})
	}
	b.Run("source/equal", func(b *testing.B) {
		p := mustNew(b, "source", members(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), nil)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Pick(keys[i&1023], all)
			i++
		}
	})
}

func BenchmarkStickGet(b *testing.B) {
	tb := NewStickTable(time.Hour, 100000)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()
		tb.Put(keys[i], fmt.Sprint("s", i%10), t0)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tb.Get(keys[i&1023], t0)
			i++
		}
	})
	b.Run("hit/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				tb.Get(keys[i&1023], t0)
				i++
			}
		})
	})
}
