// Package balance chooses the server for each new session of a backend and
// keeps the source-IP stick table. It is on the proxy hot path: every Pick is
// allocation-free and every type is safe for concurrent use.
//
// The algorithms (New):
//
//   - roundrobin: smooth weighted round robin (nginx's): servers take turns
//     in proportion to their weights, interleaved so that a heavy server
//     never gets a burst of consecutive sessions.
//   - leastconn: the server with the fewest active sessions per unit of
//     weight; equal servers take turns (the scan starts at a rotating index).
//   - source and uri: weighted rendezvous hashing (highest random weight) of
//     the client IP bytes or the request path: a key always lands on the same
//     server, and adding or removing a server moves only the keys that server
//     gains or loses; a server that ok refuses hands its keys to each key's
//     next-best server and nobody else's keys move.
//   - random: power of two choices: two distinct servers drawn at random in
//     proportion to their weights, and the less loaded (per unit of weight)
//     of the two is taken.
//
// The hashing is deterministic across processes and nodes: FNV-1a 64 with
// the murmur3 finaliser, no random seed, so both halves of an HA pair
// configured with the same servers send a client to the same server. With
// equal weights the comparison is integer-only; with unequal weights it uses
// math.Log, which is exact across nodes of the same architecture.
//
// The stick table (NewStickTable) maps a client key to a server name for an
// idle time, bounded in size and sharded to keep lock contention low.
package balance

import (
	"fmt"
	"sync/atomic"
)

// Member is one server as the balancer sees it.
type Member struct {
	Name   string // stable identity (used by consistent hashing so a server keeps its place when others change)
	Weight int    // 0 = drained: never picked for new sessions
}

// Picker chooses a server index for a new session.
type Picker interface {
	// Pick returns the index (into the members slice given to New) of the
	// chosen server, or -1 when no member is eligible.
	//
	// key is the hashing input for "source" (client IP bytes) and "uri"
	// (request path without query); ignored by other algorithms.
	//
	// ok(i) reports whether member i may be used now (the caller excludes
	// servers that are down, full or already tried for this request);
	// members with Weight 0 are never returned regardless of ok. ok must be
	// cheap and must not call back into the Picker.
	Pick(key []byte, ok func(i int) bool) int
	// sealed: the pickers are this package's (New), so Pick (the
	// function) knows every concrete type.
	sealed()
}

// Weighter is implemented by the pickers of the dynamic algorithms
// (roundrobin, leastconn, random): a member's weight may change while they
// pick, which is how a recovered server's weight ramps up (slow start).
// source and uri are static, as in HAProxy: a weight change there would move
// keys between servers.
type Weighter interface {
	// SetWeight sets member i's weight (0: never picked). Negative weights
	// count as 0.
	SetWeight(i, weight int)
}

// Load reports the current number of active sessions on member i (for
// leastconn and random).
type Load func(i int) int64

// Algorithms are the names New accepts.
var Algorithms = []string{"roundrobin", "leastconn", "source", "uri", "random"}

// New returns the picker for algorithm alg: "roundrobin", "leastconn",
// "source", "uri" or "random". The members are copied; load is required by
// leastconn and random and ignored by the others. Negative weights and
// unknown algorithms are errors.
func New(alg string, members []Member, load Load) (Picker, error) {
	weights := make([]int64, len(members))
	for i, m := range members {
		if m.Weight < 0 {
			return nil, fmt.Errorf("balance %s: member %d (%q): negative weight %d", alg, i, m.Name, m.Weight)
		}
		weights[i] = int64(m.Weight)
	}
	switch alg {
	case "roundrobin":
		return newRoundRobin(weights), nil
	case "leastconn":
		if load == nil {
			return nil, fmt.Errorf("balance %s: no load function", alg)
		}
		return &leastConn{weights: atomicWeights(weights), load: load}, nil
	case "source", "uri":
		return newRendezvous(members), nil
	case "random":
		if load == nil {
			return nil, fmt.Errorf("balance %s: no load function", alg)
		}
		return &twoChoices{weights: atomicWeights(weights), load: load}, nil
	}
	return nil, fmt.Errorf("balance: unknown algorithm %q (want one of %q)", alg, Algorithms)
}

func atomicWeights(ws []int64) []atomic.Int64 {
	out := make([]atomic.Int64, len(ws))
	for i, w := range ws {
		out[i].Store(w)
	}
	return out
}

// lighter reports whether load a at weight wa is less per unit of weight
// than load b at weight wb, without dividing.
func lighter(a, wa, b, wb int64) bool { return a*wb < b*wa }

// Pick is p.Pick(key, ok) called on p's concrete type, so that the
// compiler sees that ok does not escape: a caller's closure stays on its
// stack and a pick allocates nothing.
func Pick(p Picker, key []byte, ok func(i int) bool) int {
	switch p := p.(type) {
	case *roundRobin:
		return p.Pick(key, ok)
	case *leastConn:
		return p.Pick(key, ok)
	case *rendezvous:
		return p.Pick(key, ok)
	case *twoChoices:
		return p.Pick(key, ok)
	}
	return -1 // no other Picker exists (sealed)
}

func (*roundRobin) sealed() {}
func (*leastConn) sealed()  {}
func (*rendezvous) sealed() {}
func (*twoChoices) sealed() {}
