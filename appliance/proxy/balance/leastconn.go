package balance

import "sync/atomic"

// leastConn picks the eligible member with the lowest load per unit of
// weight. The scan starts at a rotating index and only a strictly lighter
// member displaces the best so far, so equal members take turns.
type leastConn struct {
	weights []atomic.Int64
	load    Load
	next    atomic.Uint64
}

func (l *leastConn) Pick(_ []byte, ok func(i int) bool) int {
	n := len(l.weights)
	if n == 0 {
		return -1
	}
	i := int(l.next.Add(1) % uint64(n))
	best, bestLoad, bestWeight := -1, int64(0), int64(0)
	for range n {
		if w := l.weights[i].Load(); w > 0 && ok(i) {
			if ld := l.load(i); best < 0 || lighter(ld, w, bestLoad, bestWeight) {
				best, bestLoad, bestWeight = i, ld, w
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return best
}

func (l *leastConn) SetWeight(i, w int) { l.weights[i].Store(max(int64(w), 0)) }
