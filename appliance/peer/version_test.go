package peer

import (
	"testing"
	"time"
)

func TestVectorCompare(t *testing.T) {
	for _, c := range []struct {
		a, b Vector
		want Order
	}{
		{nil, nil, Equal},
		{Vector{"lb1": 1}, Vector{"lb1": 1}, Equal},
		{Vector{"lb1": 1}, Vector{"lb1": 1, "lb2": 0}, Equal},
		{nil, Vector{"lb1": 1}, Before},
		{Vector{"lb1": 1}, Vector{"lb1": 2}, Before},
		{Vector{"lb1": 2, "lb2": 1}, Vector{"lb1": 2}, After},
		{Vector{"lb1": 2, "lb2": 1}, Vector{"lb1": 3, "lb2": 0}, Concurrent},
		{Vector{"lb1": 1}, Vector{"lb2": 1}, Concurrent},
	} {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("%v vs %v = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if s := (Vector{"lb2": 3, "lb1": 5}).String(); s != "lb1:5 lb2:3" {
		t.Errorf("String = %q", s)
	}
	if m := (Vector{"lb1": 3, "lb2": 1}).Merge(Vector{"lb1": 2, "lb2": 4, "lb3": 1}); m.String() != "lb1:3 lb2:4 lb3:1" {
		t.Errorf("Merge = %v", m)
	}
}

// TestDecideInterleavings plays the orders in which two nodes' changes
// and their replication can interleave, and checks that both nodes end
// with the same version and, for changes made apart, the same winner on
// both sides.
func TestDecideInterleavings(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ver := func(v Vector, origin string, sec int, digest string) Version {
		return Version{Vector: v, Origin: origin, Time: t0.Add(time.Duration(sec) * time.Second), Digest: digest}
	}
	base := ver(Vector{"lb1": 1}, "lb1", 0, "d0")
	for _, c := range []struct {
		name          string
		lb1, lb2      Version // what each runs when they talk again
		want1, want2  Action  // lb1 offered lb2's, lb2 offered lb1's
		winnerDigest  string
		conflictFound bool
	}{
		{"nothing changed", base, base, Same, Same, "d0", false},
		{"lb1 changed", ver(Vector{"lb1": 2}, "lb1", 5, "d1"), base, Keep, Take, "d1", false},
		{"lb2 changed", base, ver(Vector{"lb1": 1, "lb2": 1}, "lb2", 5, "d2"), Take, Keep, "d2", false},
		{"lb1 changed twice", ver(Vector{"lb1": 3}, "lb1", 9, "d3"), base, Keep, Take, "d3", false},
		{"both changed, lb2 later", ver(Vector{"lb1": 2}, "lb1", 5, "d1"), ver(Vector{"lb1": 1, "lb2": 1}, "lb2", 6, "d2"),
			ConflictTake, ConflictKeep, "d2", true},
		{"both changed, lb1 later", ver(Vector{"lb1": 2}, "lb1", 7, "d1"), ver(Vector{"lb1": 1, "lb2": 1}, "lb2", 6, "d2"),
			ConflictKeep, ConflictTake, "d1", true},
		{"both changed at the same second", ver(Vector{"lb1": 2}, "lb1", 6, "d1"), ver(Vector{"lb1": 1, "lb2": 1}, "lb2", 6, "d2"),
			ConflictKeep, ConflictTake, "d1", true},
		{"both made the same change", ver(Vector{"lb1": 2}, "lb1", 5, "d1"), ver(Vector{"lb1": 1, "lb2": 1}, "lb2", 6, "d1"),
			Same, Same, "d1", false},
		{"lb2 took lb1's, then changed", ver(Vector{"lb1": 2}, "lb1", 5, "d1"), ver(Vector{"lb1": 2, "lb2": 1}, "lb2", 6, "d2"),
			Take, Keep, "d2", false},
		{"equal vectors, different parts (restored state)", ver(Vector{"lb1": 2}, "lb1", 5, "d1"), ver(Vector{"lb1": 2}, "lb1", 4, "d9"),
			ConflictKeep, ConflictTake, "d1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a1, a2 := Decide(c.lb1, c.lb2), Decide(c.lb2, c.lb1)
			if a1 != c.want1 || a2 != c.want2 {
				t.Fatalf("lb1 does %v, lb2 does %v; want %v, %v", a1, a2, c.want1, c.want2)
			}
			// What each runs after it acted on the other's offer.
			end := func(local, remote Version, a Action) Version {
				switch a {
				case Take, ConflictTake:
					return Version{Vector: local.Vector.Merge(remote.Vector), Digest: remote.Digest}
				}
				return Version{Vector: local.Vector.Merge(remote.Vector), Digest: local.Digest}
			}
			e1, e2 := end(c.lb1, c.lb2, a1), end(c.lb2, c.lb1, a2)
			if e1.Digest != c.winnerDigest || e2.Digest != c.winnerDigest || e1.Vector.Compare(e2.Vector) != Equal {
				t.Errorf("lb1 ends with %v %s, lb2 with %v %s; want both %s and equal vectors", e1.Vector, e1.Digest, e2.Vector, e2.Digest, c.winnerDigest)
			}
			if conflict := a1 >= ConflictTake; conflict != c.conflictFound || (a2 >= ConflictTake) != conflict {
				t.Errorf("conflict found: lb1 %v lb2 %v, want %v", a1, a2, c.conflictFound)
			}
		})
	}
}
