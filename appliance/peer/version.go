package peer

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Vector is a version vector of the cluster parts: for each node, how many
// changes made on it the config includes. A change made on node N raises
// N's count by one; a config taken from a peer takes its vector.
type Vector map[string]uint64

// Order is how two vectors relate.
type Order int

const (
	Equal      Order = iota
	Before           // every count ≤ the other's, one <: the other includes this
	After            // the other way round
	Concurrent       // each has a change the other lacks
)

func (o Order) String() string {
	return [...]string{"equal", "before", "after", "concurrent"}[o]
}

// Compare says how v relates to w.
func (v Vector) Compare(w Vector) Order {
	less, more := false, false
	for _, k := range keys(v, w) {
		switch a, b := v[k], w[k]; {
		case a < b:
			less = true
		case a > b:
			more = true
		}
	}
	switch {
	case less && more:
		return Concurrent
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// Merge is the least vector that includes both.
func (v Vector) Merge(w Vector) Vector {
	out := Vector{}
	for _, k := range keys(v, w) {
		out[k] = max(v[k], w[k])
	}
	return out
}

// Bump is v with node's count raised by one.
func (v Vector) Bump(node string) Vector {
	out := maps.Clone(v)
	if out == nil {
		out = Vector{}
	}
	out[node]++
	return out
}

// String is "lb1:5 lb2:3", nodes in name order; "" for none.
func (v Vector) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + ":" + strconv.FormatUint(v[k], 10))
	}
	return b.String()
}

func keys(v, w Vector) []string {
	ks := slices.Collect(maps.Keys(v))
	for k := range w {
		if _, ok := v[k]; !ok {
			ks = append(ks, k)
		}
	}
	return ks
}

// Version identifies the cluster parts a node runs.
type Version struct {
	Vector Vector `json:"vector"`
	// Origin is the node where the last change was made, Time when (by
	// that node's clock).
	Origin string    `json:"origin"`
	Time   time.Time `json:"time"`
	// Digest is config.ClusterDigest of the cluster parts.
	Digest string `json:"digest"`
}

func (v Version) String() string {
	if len(v.Vector) == 0 {
		return "(none)"
	}
	return v.Vector.String()
}

// Action is what a node does with a version a peer offers.
type Action int

const (
	// Same: both run the same cluster parts (the vectors are merged).
	Same Action = iota
	// Take: the offer includes everything this node has; apply it.
	Take
	// Keep: this node's version includes the offer; the peer should take
	// this node's.
	Keep
	// ConflictTake: the two were made apart; the offer wins the rule and
	// is applied, this node's is the loser.
	ConflictTake
	// ConflictKeep: the two were made apart; this node's wins, the offer
	// is the loser.
	ConflictKeep
)

func (a Action) String() string {
	return [...]string{"same", "take", "keep", "conflict-take", "conflict-keep"}[a]
}

// Decide says what a node running local does with remote. Equal cluster
// parts are the same whatever the vectors; otherwise the vectors order the
// two, and two concurrent versions are settled by Wins.
func Decide(local, remote Version) Action {
	if local.Digest == remote.Digest && local.Digest != "" {
		return Same
	}
	switch local.Vector.Compare(remote.Vector) {
	case Before:
		return Take
	case After:
		return Keep
	case Equal:
		// Equal vectors with different parts cannot come from two
		// nodes that follow the protocol (a restore of one node's
		// state directory can make them): settle them as a conflict.
	}
	if Wins(remote, local) {
		return ConflictTake
	}
	return ConflictKeep
}

// Wins is the rule that settles a conflict, the same on both nodes: the
// change made later (by its origin's clock) wins; at the same time, the
// one whose origin's name sorts first; then the greater digest.
func Wins(a, b Version) bool {
	switch {
	case !a.Time.Equal(b.Time):
		return a.Time.After(b.Time)
	case a.Origin != b.Origin:
		return a.Origin < b.Origin
	}
	return a.Digest > b.Digest
}
