package balance

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
)

// ipKeys returns n distinct pseudo-random IPv4 keys, the same on every run.
func ipKeys(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[uint32]bool{}
	keys := make([][]byte, 0, n)
	for len(keys) < n {
		v := r.Uint32()
		if seen[v] {
			continue
		}
		seen[v] = true
		keys = append(keys, []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return keys
}

// owners returns the name of the member each key lands on ("" for -1).
func owners(p Picker, ms []Member, keys [][]byte, ok func(int) bool) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		if j := p.Pick(k, ok); j >= 0 {
			out[i] = ms[j].Name
		}
	}
	return out
}

func tally(names []string) map[string]int {
	c := map[string]int{}
	for _, n := range names {
		c[n]++
	}
	return c
}

// hashCases are the weight sets the hashing tests run with: equal weights
// (integer comparison) and unequal ones (the logarithm).
var hashCases = []struct {
	name    string
	weights []int
}{
	{"equal", []int{1, 1, 1, 1, 1}},
	{"weighted", []int{1, 2, 3, 1, 2}},
}

func TestHashDeterministic(t *testing.T) {
	keys := ipKeys(10000)
	for _, alg := range []string{"source", "uri"} {
		for _, hc := range hashCases {
			ms := members(hc.weights...)
			a := owners(mustNew(t, alg, ms, nil), ms, keys, all)
			b := owners(mustNew(t, alg, ms, nil), ms, keys, all)
			for i := range keys {
				if a[i] != b[i] {
					t.Fatalf("%s %s: key %v: %s then %s", alg, hc.name, keys[i], a[i], b[i])
				}
			}
		}
	}
}

// TestHashGolden pins the mapping: two HA nodes (and two releases) must
// send a client to the same server. A change here is a change of mapping
// for every deployed pair.
func TestHashGolden(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		key     string
		want    string
	}{
		{[]int{1, 1, 1, 1, 1}, "\xc0\x00\x02\x01", "s3"},
		{[]int{1, 1, 1, 1, 1}, "\x0a\x00\x00\x07", "s1"},
		{[]int{1, 1, 1, 1, 1}, "/index.html", "s1"},
		{[]int{1, 2, 3, 1, 2}, "\xc0\x00\x02\x01", "s3"},
		{[]int{1, 2, 3, 1, 2}, "\x0a\x00\x00\x07", "s1"},
		{[]int{1, 2, 3, 1, 2}, "/index.html", "s1"},
	} {
		ms := members(tc.weights...)
		p := mustNew(t, "source", ms, nil)
		if got := ms[p.Pick([]byte(tc.key), all)].Name; got != tc.want {
			t.Errorf("weights %v key %q: %s, want %s", tc.weights, tc.key, got, tc.want)
		}
	}
}

// TestFNV checks the hand-written FNV-1a against the standard library's.
func TestFNV(t *testing.T) {
	for _, s := range []string{"", "a", "s0", "\xc0\x00\x02\x01", "/index.html"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv1a(s), h.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %#x, want %#x", s, got, want)
		}
		if got, want := fnv1a([]byte(s)), h.Sum64(); got != want {
			t.Errorf("fnv1a([]byte(%q)) = %#x, want %#x", s, got, want)
		}
	}
}

// TestHashUniformMatchesScore: the integer comparison used with equal
// weights gives the mapping the weighted score would (up to hashes equal
// in their top 53 bits), so going from equal to unequal weights moves only
// the keys the weights move.
func TestHashUniformMatchesScore(t *testing.T) {
	ms := members(1, 1, 1, 1, 1)
	fast := newRendezvous(ms)
	slow := newRendezvous(ms)
	slow.uniform = false
	if !fast.uniform {
		t.Fatal("equal weights not detected")
	}
	for _, k := range ipKeys(10000) {
		if a, b := fast.Pick(k, all), slow.Pick(k, all); a != b {
			t.Fatalf("key %v: %d by hash, %d by score", k, a, b)
		}
	}
}

func TestHashSpread(t *testing.T) {
	keys := ipKeys(30000)
	ms := members(1, 1, 1)
	c := tally(owners(mustNew(t, "source", ms, nil), ms, keys, all))
	for _, m := range ms {
		if n := c[m.Name]; n < 8500 || n > 11500 {
			t.Errorf("%s got %d of 30000 keys, want 10000±15%%", m.Name, n)
		}
	}
	t.Logf("spread over 3 equal: %v", c)

	ms = members(1, 2, 1)
	c = tally(owners(mustNew(t, "source", ms, nil), ms, keys, all))
	for _, light := range []string{"s0", "s2"} {
		if r := float64(c["s1"]) / float64(c[light]); r < 1.8 || r > 2.2 {
			t.Errorf("weight 2 got %.2f times the keys of %s (%v), want 2±0.2", r, light, c)
		}
	}
	t.Logf("spread over weights 1,2,1: %v", c)
}

// TestHashRemoveMovesOnlyItsKeys: a server removed from n, the keys it
// held move and no other key does (BenchmarkHashQuality measures the
// fraction over a million keys).
func TestHashRemoveMovesOnlyItsKeys(t *testing.T) {
	keys := clientKeys(30000, false)
	cases := append(slices.Clone(hashCases), []struct {
		name    string
		weights []int
	}{
		{"n=2", slices.Repeat([]int{1}, 2)},
		{"n=10", slices.Repeat([]int{1}, 10)},
		{"n=100", slices.Repeat([]int{1}, 100)},
	}...)
	for _, hc := range cases {
		t.Run(hc.name, func(t *testing.T) {
			ms := members(hc.weights...)
			before := owners(mustNew(t, "source", ms, nil), ms, keys, all)
			// The middle server leaves the config: the ones after it shift
			// down an index but keep their names.
			gone := len(ms) / 2
			rest := append(append([]Member{}, ms[:gone]...), ms[gone+1:]...)
			after := owners(mustNew(t, "source", rest, nil), rest, keys, all)
			moved, orphaned := 0, 0
			for i := range keys {
				switch {
				case before[i] == ms[gone].Name:
					orphaned++
					if after[i] == ms[gone].Name || after[i] == "" {
						t.Fatalf("key %v still on %q", keys[i], after[i])
					}
				case before[i] != after[i]:
					moved++
				}
			}
			if moved != 0 {
				t.Errorf("%d keys not on the removed server moved", moved)
			}
			if orphaned == 0 {
				t.Error("control: no key was on the removed server")
			}
		})
	}
}

// TestHashNodesAgree: two nodes (two halbd processes, each building its
// picker from its own config, as the nodes of an ECMP group do) send every
// client to the same server, so a flow the router moves to the other node
// keeps its server: with equal or unequal weights (the same on both),
// whatever order the servers are listed in, after the same server is
// removed from both, and while both refuse the same server (down by both
// nodes' checks). Control: nodes whose weights differ disagree.
func TestHashNodesAgree(t *testing.T) {
	keys := clientKeys(100000, false)
	for _, hc := range []struct {
		name    string
		weights []int
	}{
		{"equal", slices.Repeat([]int{1}, 10)},
		{"weighted", []int{1, 2, 3, 1, 2, 3, 1, 2, 3, 4}},
	} {
		t.Run(hc.name, func(t *testing.T) {
			ms := members(hc.weights...)
			// differ returns the keys that nodes configured with a and b
			// send to different servers, both refusing the server refused.
			differ := func(a, b []Member, refused string) int {
				pick := func(ms []Member) []string {
					return owners(mustNew(t, "source", ms, nil), ms, keys, func(i int) bool { return ms[i].Name != refused })
				}
				oa, ob := pick(a), pick(b)
				n := 0
				for i := range keys {
					if oa[i] != ob[i] || oa[i] == "" {
						n++
					}
				}
				return n
			}
			reversed := slices.Clone(ms)
			slices.Reverse(reversed)
			without := slices.Delete(slices.Clone(ms), 3, 4)
			for _, c := range []struct {
				what    string
				a, b    []Member
				refused string
			}{
				{"same config", ms, ms, ""},
				{"servers listed in reverse on one node", ms, reversed, ""},
				{"s3 removed from both", without, slices.Clone(without), ""},
				{"s3 refused by both", ms, reversed, "s3"},
			} {
				if n := differ(c.a, c.b, c.refused); n != 0 {
					t.Errorf("%s: %d of %d keys on different servers", c.what, n, len(keys))
				}
			}
			heavier := slices.Clone(ms)
			heavier[0].Weight++
			n := differ(ms, heavier, "")
			if n == 0 {
				t.Error("control: nodes with different weights for s0 agree on every key")
			}
			t.Logf("control: s0's weight %d on one node, %d on the other: %d of %d keys on different servers", ms[0].Weight, heavier[0].Weight, n, len(keys))
		})
	}
}

func TestHashAddMovesAShare(t *testing.T) {
	keys := ipKeys(30000)
	for _, hc := range hashCases {
		t.Run(hc.name, func(t *testing.T) {
			ms := members(hc.weights...)
			before := owners(mustNew(t, "source", ms, nil), ms, keys, all)
			grown := append(append([]Member{}, ms...), Member{Name: "s5", Weight: 1})
			if hc.name == "weighted" {
				grown[5].Weight = 2 // the mean weight of the others: 1/6 of the keys again
			}
			after := owners(mustNew(t, "source", grown, nil), grown, keys, all)
			moved := 0
			for i := range keys {
				if before[i] != after[i] {
					moved++
					if after[i] != "s5" {
						t.Fatalf("key %v moved from %s to %s, not to the new server", keys[i], before[i], after[i])
					}
				}
			}
			frac := float64(moved) / float64(len(keys))
			if frac < 0.10 || frac > 0.25 {
				t.Errorf("adding a 6th server moved %.3f of keys, want about 1/6", frac)
			}
			t.Logf("adding a 6th server moved %.3f of keys", frac)
		})
	}
}

func TestHashRefusedFallsToNextBest(t *testing.T) {
	keys := ipKeys(30000)
	for _, hc := range hashCases {
		t.Run(hc.name, func(t *testing.T) {
			ms := members(hc.weights...)
			p := mustNew(t, "uri", ms, nil)
			before := owners(p, ms, keys, all)
			after := owners(p, ms, keys, except(1))
			rehomed := 0
			for i := range keys {
				switch {
				case before[i] == "s1":
					rehomed++
					if after[i] == "s1" || after[i] == "" {
						t.Fatalf("key %v of refused s1 went to %q", keys[i], after[i])
					}
				case before[i] != after[i]:
					t.Fatalf("key %v moved from %s to %s though only s1 was refused", keys[i], before[i], after[i])
				}
			}
			if rehomed == 0 {
				t.Error("control: no key was on s1")
			}
			// s1's keys spread over the others rather than piling on one.
			c := tally(after)
			for _, m := range ms {
				if m.Name != "s1" && c[m.Name] <= tally(before)[m.Name] {
					t.Errorf("%s gained none of s1's keys: before %v after %v", m.Name, tally(before), c)
				}
			}
		})
	}
}

// TestHashURIKeys: text keys spread too (paths share long prefixes).
func TestHashURIKeys(t *testing.T) {
	ms := members(1, 1, 1)
	p := mustNew(t, "uri", ms, nil)
	c := map[int]int{}
	for i := range 30000 {
		c[p.Pick(fmt.Appendf(nil, "/static/img/%d.png", i), all)]++
	}
	for i := range ms {
		if n := c[i]; n < 8500 || n > 11500 {
			t.Errorf("%s got %d of 30000 paths, want 10000±15%%", ms[i].Name, n)
		}
	}
}
