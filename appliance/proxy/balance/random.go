package balance

import "math/rand/v2"

// twoChoices is the power of two choices: two distinct eligible members are
// drawn at random in proportion to their weights and the one with the lower
// load per unit of weight wins (the first drawn on a tie, which keeps the
// spread proportional to weight when loads are equal).
type twoChoices struct {
	weights []int64
	load    Load
}

func (t *twoChoices) Pick(_ []byte, ok func(i int) bool) int {
	// Eligibility is asked once per member; for up to 64 members it is
	// remembered in a bit mask, beyond that ok is asked again while drawing.
	var mask uint64
	small := len(t.weights) <= 64
	total, count, last := int64(0), 0, -1
	for i, w := range t.weights {
		if w == 0 || !ok(i) {
			continue
		}
		total += w
		count++
		last = i
		if small {
			mask |= 1 << i
		}
	}
	switch count {
	case 0:
		return -1
	case 1:
		return last
	}
	eligible := func(i int) bool {
		if small {
			return mask&(1<<i) != 0
		}
		return t.weights[i] > 0 && ok(i)
	}
	a := t.draw(rand.Int64N(total), -1, eligible)
	if a < 0 {
		// ok changed its mind between the passes (only possible with
		// more than 64 members); the last eligible member stands in.
		return last
	}
	b := t.draw(rand.Int64N(total-t.weights[a]), a, eligible)
	if b < 0 {
		return a
	}
	if lighter(t.load(b), t.weights[b], t.load(a), t.weights[a]) {
		return b
	}
	return a
}

// draw returns the eligible member other than skip at weighted position r,
// or -1 if the eligible weights (without skip's) do not reach past r.
func (t *twoChoices) draw(r int64, skip int, eligible func(int) bool) int {
	for i, w := range t.weights {
		if i == skip || w == 0 || !eligible(i) {
			continue
		}
		if r -= w; r < 0 {
			return i
		}
	}
	return -1
}
