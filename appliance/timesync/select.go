package timesync

import (
	"math"
	"slices"
	"time"
)

// minDistance is the least half-width of a server's correctness interval:
// a server that claims to be exact still gets a millisecond, so that two
// honest servers on one LAN are not called liars for their measuring noise.
const minDistance = time.Millisecond

// candidate is one server's latest usable sample, as the selection sees it.
type candidate struct {
	name    string
	offset  time.Duration
	dist    time.Duration // root distance: the half-width of its interval
	stratum int
}

// rootDistance is RFC 5905's synchronisation distance of a sample: half
// the round trip to the server's reference plus its dispersion and our
// jitter of it, at least minDistance.
func rootDistance(s Sample, jitter time.Duration) time.Duration {
	return max(minDistance, (s.Delay+s.RootDelay)/2+s.RootDispersion+jitter)
}

// selectTruechimers is Marzullo's intersection over the correctness
// intervals [offset-dist, offset+dist]: it finds the region that the most
// intervals cover and keeps the servers whose interval covers all of it.
// The majority rule of RFC 5905 applies: the region must be covered by
// more than half the candidates, or nobody is kept (two servers that
// disagree cannot say which of them lies). It returns the indexes kept.
func selectTruechimers(c []candidate) []int {
	type edge struct {
		at   time.Duration
		kind int // +1 an interval opens, -1 one closes
	}
	edges := make([]edge, 0, 2*len(c))
	for _, x := range c {
		edges = append(edges, edge{x.offset - x.dist, +1}, edge{x.offset + x.dist, -1})
	}
	// At one point, openings come first: touching intervals agree.
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return b.kind - a.kind
	})
	best, n := 0, 0
	var lo, hi time.Duration
	for i, e := range edges {
		n += e.kind
		if n > best {
			best, lo = n, e.at
			hi = edges[i+1].at // an opening is always followed by some edge
		}
	}
	if 2*best <= len(c) {
		return nil
	}
	var keep []int
	for i, x := range c {
		if x.offset-x.dist <= lo && x.offset+x.dist >= hi {
			keep = append(keep, i)
		}
	}
	return keep
}

// choose picks among the truechimers the one with the lowest root
// distance, then the lowest stratum, then the first configured. The
// current choice stays while it is a truechimer and its distance is not
// more than twice the best one's, so that equal servers do not alternate.
func choose(c []candidate, keep []int, current string) int {
	if len(keep) == 0 {
		return -1
	}
	best := keep[0]
	for _, i := range keep[1:] {
		if c[i].dist < c[best].dist || c[i].dist == c[best].dist && c[i].stratum < c[best].stratum {
			best = i
		}
	}
	for _, i := range keep {
		if c[i].name == current && c[i].dist <= 2*c[best].dist {
			return i
		}
	}
	return best
}

// jitter is ntpd's peer jitter: the root mean square of the differences
// between the newest offset and each older one (offsets newest first).
func jitter(offsets []time.Duration) time.Duration {
	if len(offsets) < 2 {
		return 0
	}
	var sum float64
	for _, o := range offsets[1:] {
		d := float64(o - offsets[0])
		sum += d * d
	}
	return time.Duration(math.Sqrt(sum / float64(len(offsets)-1)))
}
