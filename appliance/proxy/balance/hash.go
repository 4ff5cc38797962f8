package balance

import "math"

// rendezvous is weighted rendezvous (highest random weight) hashing: for a
// key every member gets a pseudo-random score from hash(key, member name)
// and its weight, score = weight / -ln(u) with u uniform in (0,1), and the
// eligible member with the highest score wins. A member's score for a key
// does not depend on the other members, so adding or removing one moves
// only the keys it wins or held, and refusing one (ok) sends its keys to
// their next-best member while every other key stays put.
type rendezvous struct {
	names   []string
	hashes  []uint64 // mix(fnv(name)) per member
	weights []float64
	// uniform is set when every member with a weight has the same one: then
	// the highest hash wins and no floating point is involved.
	uniform bool
}

func newRendezvous(members []Member) *rendezvous {
	r := &rendezvous{
		names:   make([]string, len(members)),
		hashes:  make([]uint64, len(members)),
		weights: make([]float64, len(members)),
		uniform: true,
	}
	first := 0
	for i, m := range members {
		r.names[i] = m.Name
		r.hashes[i] = mix64(fnv1a(m.Name))
		r.weights[i] = float64(m.Weight)
		if m.Weight > 0 {
			if first == 0 {
				first = m.Weight
			} else if m.Weight != first {
				r.uniform = false
			}
		}
	}
	return r
}

func (r *rendezvous) Pick(key []byte, ok func(i int) bool) int {
	kh := mix64(fnv1a(key))
	best := -1
	var bestHash uint64
	var bestScore float64
	for i, w := range r.weights {
		if w == 0 || !ok(i) {
			continue
		}
		h := mix64(kh ^ r.hashes[i])
		if r.uniform {
			if best < 0 || h > bestHash || h == bestHash && r.names[i] < r.names[best] {
				best, bestHash = i, h
			}
			continue
		}
		// u = (h>>11 + 0.5) / 2^53 is in (0,1), so -ln(u) > 0.
		u := (float64(h>>11) + 0.5) * 0x1p-53
		s := w / -math.Log(u)
		if best < 0 || s > bestScore || s == bestScore && r.names[i] < r.names[best] {
			best, bestScore = i, s
		}
	}
	return best
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fnv1a is FNV-1a 64 of b.
func fnv1a[T ~string | ~[]byte](b T) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= fnvPrime64
	}
	return h
}

// mix64 is murmur3's 64-bit finaliser: it spreads every input bit over the
// whole output, which FNV alone does poorly for short keys such as IPv4
// addresses.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
