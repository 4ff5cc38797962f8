package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// The quality of the consistent hash behind "source" (issue 20: every node
// of an ECMP group sends a client to the same server, so the hash should
// spread clients evenly and move few of them when a server goes), measured
// against Google's Maglev table (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016) as the alternative:
//
//	go test -run '^$' -bench HashQuality -benchtime 20000x ./appliance/proxy/balance
//
// Each case maps qualityKeys client keys over n equal servers and reports
//   - max/min: the most loaded server's keys over the least loaded's;
//   - cv: the coefficient of variation of the servers' keys;
//   - cv-floor: sqrt((n-1)/keys), the cv of a perfectly uniform random
//     assignment of that many keys (the sampling noise: a hash cannot do
//     better on random keys, only worse);
//   - moved: the fraction of keys whose server changed when one server of n
//     is removed (ideal: its share, about 1/n);
//   - moved-other: the fraction of keys that moved though their server
//     stayed (0 for rendezvous, asserted);
//
// and ns/op, one pick.

// qualityKeys is the number of client keys of a measurement.
const qualityKeys = 1_000_000

// maglevSize is Maglev's lookup table size: a prime, at least 100 entries
// per server for up to 655 servers (the paper's rule of thumb M ≥ 100·N).
const maglevSize = 65537

// clientKeys returns n distinct client keys as the proxy makes them (the
// 16-byte form of an IPv4 address, netip.Addr.As16): pseudo-random
// addresses, the same on every run, or with consecutive the addresses
// from 10.0.0.0 up (a client network).
func clientKeys(n int, consecutive bool) [][]byte {
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[uint32]bool{}
	keys := make([][]byte, 0, n)
	for i := uint32(0); len(keys) < n; i++ {
		v := 10<<24 + i
		if !consecutive {
			if v = r.Uint32(); seen[v] {
				continue
			}
			seen[v] = true
		}
		k := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).As16()
		keys = append(keys, k[:])
	}
	return keys
}

// maglev is Maglev's consistent hashing (the paper's section 3.4), here
// only to be measured against rendezvous: every server fills the slots of
// a prime-sized table in the order of its own permutation of the slots,
// the servers taking turns, and a key's server is the one in its slot.
type maglev struct {
	table []int32
}

func newMaglev(names []string, size uint64) *maglev {
	n := len(names)
	offset, skip, next := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for i, name := range names {
		h := fnv1a(name)
		offset[i] = mix64(h) % size
		skip[i] = mix64(h^0x9e3779b97f4a7c15)%(size-1) + 1
	}
	m := &maglev{table: make([]int32, size)}
	for i := range m.table {
		m.table[i] = -1
	}
	for filled := uint64(0); n > 0; {
		for i := range n {
			c := (offset[i] + next[i]*skip[i]) % size
			for m.table[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % size
			}
			m.table[c] = int32(i)
			next[i]++
			if filled++; filled == size {
				return m
			}
		}
	}
	return m
}

func (m *maglev) Pick(key []byte) int { return int(m.table[mix64(fnv1a(key))%uint64(len(m.table))]) }

// quality is what a hash does with keys over n equal servers.
type quality struct {
	maxMin, cv, cvFloor float64
	moved, movedOther   float64 // fractions of the keys when one server goes
}

// measure maps keys with pick over the servers names, then with pickLess
// over names without names[gone], and compares. owner indexes are into the
// names each was built with.
func measure(keys [][]byte, names []string, gone int, pick, pickLess func([]byte) int) quality {
	n := len(names)
	load := make([]int, n)
	before := make([]int, len(keys))
	for i, k := range keys {
		before[i] = pick(k)
		load[before[i]]++
	}
	lo, hi := load[0], load[0]
	var sum, sq float64
	for _, l := range load {
		lo, hi = min(lo, l), max(hi, l)
		sum += float64(l)
	}
	mean := sum / float64(n)
	for _, l := range load {
		sq += (float64(l) - mean) * (float64(l) - mean)
	}
	q := quality{
		maxMin:  float64(hi) / float64(lo),
		cv:      math.Sqrt(sq/float64(n)) / mean,
		cvFloor: math.Sqrt(float64(n-1) / float64(len(keys))),
	}
	moved, other := 0, 0
	for i, k := range keys {
		j := pickLess(k)
		if j >= gone {
			j++ // back to an index of names
		}
		if j != before[i] {
			moved++
			if before[i] != gone {
				other++
			}
		}
	}
	q.moved = float64(moved) / float64(len(keys))
	q.movedOther = float64(other) / float64(len(keys))
	return q
}

func (q quality) report(b *testing.B) {
	b.ReportMetric(q.maxMin, "max/min")
	b.ReportMetric(q.cv, "cv")
	b.ReportMetric(q.cvFloor, "cv-floor")
	b.ReportMetric(q.moved, "moved")
	b.ReportMetric(q.movedOther, "moved-other")
}

func BenchmarkHashQuality(b *testing.B) {
	for _, set := range []string{"random", "consecutive"} {
		keys := clientKeys(qualityKeys, set == "consecutive")
		for _, n := range []int{2, 5, 10, 100} {
			ms := members(slices.Repeat([]int{1}, n)...)
			names := make([]string, n)
			for i, m := range ms {
				names[i] = m.Name
			}
			gone := n / 2
			less := append(append([]Member{}, ms[:gone]...), ms[gone+1:]...)
			lessNames := append(append([]string{}, names[:gone]...), names[gone+1:]...)
			b.Run(fmt.Sprintf("keys=%s/n=%d/rendezvous", set, n), func(b *testing.B) {
				p, pl := newRendezvous(ms), newRendezvous(less)
				q := measure(keys, names, gone, func(k []byte) int { return p.Pick(k, all) }, func(k []byte) int { return pl.Pick(k, all) })
				if q.movedOther != 0 {
					b.Fatalf("removing %s moved %.6f of the keys of other servers", names[gone], q.movedOther)
				}
				i := 0
				for b.Loop() {
					p.Pick(keys[i%len(keys)], all)
					i++
				}
				q.report(b) // after the loop, whose start resets the metrics
			})
			b.Run(fmt.Sprintf("keys=%s/n=%d/maglev", set, n), func(b *testing.B) {
				m, ml := newMaglev(names, maglevSize), newMaglev(lessNames, maglevSize)
				q := measure(keys, names, gone, m.Pick, ml.Pick)
				i := 0
				for b.Loop() {
					m.Pick(keys[i%len(keys)])
					i++
				}
				q.report(b)
			})
		}
	}
}

// TestMaglevTable: the comparison is with a correct Maglev: every slot is
// filled and equal servers hold as many slots, give or take one.
func TestMaglevTable(t *testing.T) {
	for _, n := range []int{1, 2, 5, 100} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprint("s", i)
		}
		m := newMaglev(names, maglevSize)
		slots := make([]int, n)
		for _, s := range m.table {
			if s < 0 {
				t.Fatalf("n=%d: a slot is empty", n)
			}
			slots[s]++
		}
		lo, hi := slots[0], slots[0]
		for _, c := range slots {
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 1 {
			t.Errorf("n=%d: servers hold %d to %d slots", n, lo, hi)
		}
	}
}
