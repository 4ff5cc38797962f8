package balance

import (
	"math/rand/v2"
	"sync/atomic"
)

// twoChoices is the power of two choices: two distinct eligible members are
// drawn at random in proportion to their weights and the one with the lower
// load per unit of weight wins (the first drawn on a tie, which keeps the
// spread proportional to weight when loads are equal).
type twoChoices struct {
	weights []atomic.Int64
	load    Load
}

func (t *twoChoices) SetWeight(i, w int) { t.weights[i].Store(max(int64(w), 0)) }

func (t *twoChoices) Pick(_ []byte, ok func(i int) bool) int {
	// Eligibility and weight are read once per member; for up to 64
	// members they are remembered (a bit mask and a copy of the weights,
	// which slow start may change meanwhile), beyond that they are read
	// again while drawing.
	var (
		mask uint64
		snap [64]int64
	)
	small := len(t.weights) <= 64
	total, count, last := int64(0), 0, -1
	for i := range t.weights {
		w := t.weights[i].Load()
		if w == 0 || !ok(i) {
			continue
		}
		total += w
		count++
		last = i
		if small {
			mask |= 1 << i
			snap[i] = w
		}
	}
	switch count {
	case 0:
		return -1
	case 1:
		return last
	}
	weight := func(i int) int64 {
		if small {
			if mask&(1<<i) == 0 {
				return 0
			}
			return snap[i]
		}
		if w := t.weights[i].Load(); w > 0 && ok(i) {
			return w
		}
		return 0
	}
	a := t.draw(rand.Int64N(total), -1, weight)
	if a < 0 {
		// ok or a weight changed between the passes (only possible with
		// more than 64 members); the last eligible member stands in.
		return last
	}
	wa := weight(a)
	if total-wa <= 0 {
		return a
	}
	b := t.draw(rand.Int64N(total-wa), a, weight)
	if b < 0 {
		return a
	}
	if lighter(t.load(b), weight(b), t.load(a), wa) {
		return b
	}
	return a
}

// draw returns the member other than skip at weighted position r, or -1 if
// the weights (without skip's) do not reach past r.
func (t *twoChoices) draw(r int64, skip int, weight func(int) int64) int {
	for i := range t.weights {
		if i == skip {
			continue
		}
		w := weight(i)
		if w == 0 {
			continue
		}
		if r -= w; r < 0 {
			return i
		}
	}
	return -1
}
