package balance

import "sync"

// roundRobin is nginx's smooth weighted round robin: on each pick every
// eligible member's current value grows by its weight, the member with the
// highest current is picked and its current drops by the total weight of
// the eligible members. Over any cycle of total-weight picks (with the same
// members eligible) each member is picked exactly weight times, spread out.
type roundRobin struct {
	mu      sync.Mutex
	weights []int64
	current []int64
}

func newRoundRobin(weights []int64) *roundRobin {
	return &roundRobin{weights: weights, current: make([]int64, len(weights))}
}

func (r *roundRobin) Pick(_ []byte, ok func(i int) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
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
	r.weights[i] = max(int64(w), 0)
	r.mu.Unlock()
}
