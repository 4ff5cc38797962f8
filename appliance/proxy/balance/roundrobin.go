package balance

import "sync"

// roundRobin is nginx's smooth weighted round robin: on each pick every
// eligible member's current value grows by its weight, the member with the
// highest current is picked and its current drops by the total weight of
// the eligible members. Over any cycle of total-weight picks (with the same
// members eligible) each member is picked exactly weight times, spread out.
//
// That costs a pass over every member per pick. While all weights are
// equal (the usual backend, outside a slow-start ramp) the picks are the
// same as plain rotation, which costs one step per refused member: a
// backend of 1000 servers picks as fast as one of 2.
type roundRobin struct {
	mu      sync.Mutex
	weights []int64
	current []int64
	// uneven counts the members whose weight differs from weights[0]:
	// 0 means every weight is equal.
	uneven int
	next   int // the rotation's next member, while uneven is 0
}

func newRoundRobin(weights []int64) *roundRobin {
	r := &roundRobin{weights: weights, current: make([]int64, len(weights))}
	r.recount()
	return r
}

func (r *roundRobin) recount() {
	r.uneven = 0
	for _, w := range r.weights {
		if w != r.weights[0] {
			r.uneven++
		}
	}
}

func (r *roundRobin) Pick(_ []byte, ok func(i int) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.weights); r.uneven == 0 && n > 0 {
		if r.weights[0] == 0 {
			return -1
		}
		for k := range n {
			i := r.next + k
			if i >= n {
				i -= n
			}
			if ok(i) {
				r.next = i + 1
				if r.next == n {
					r.next = 0
				}
				return i
			}
		}
		return -1
	}
	best, total := -1, int64(0)
	for i, w := range r.weights {
		if w == 0 || !ok(i) {
			continue
		}
		r.current[i] += w
		total += w
		if best < 0 || r.current[i] > r.current[best] {
			best = i
		}
	}
	if best >= 0 {
		r.current[best] -= total
	}
	return best
}

func (r *roundRobin) SetWeight(i, w int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nw := max(int64(w), 0)
	if i == 0 {
		r.weights[0] = nw
		r.recount()
		return
	}
	was := r.weights[i] != r.weights[0]
	r.weights[i] = nw
	if now := nw != r.weights[0]; now != was {
		if now {
			r.uneven++
		} else {
			r.uneven--
		}
	}
}
