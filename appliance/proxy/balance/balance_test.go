package balance

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// members returns servers s0, s1, ... with the given weights.
func members(weights ...int) []Member {
	ms := make([]Member, len(weights))
	for i, w := range weights {
		ms[i] = Member{Name: fmt.Sprintf("s%d", i), Weight: w}
	}
	return ms
}

func all(int) bool { return true }

// except returns an ok function refusing the given indexes.
func except(refused ...int) func(int) bool {
	return func(i int) bool { return !slices.Contains(refused, i) }
}

// loads returns a Load reading from ls.
func loads(ls ...int64) Load { return func(i int) int64 { return ls[i] } }

func mustNew(t testing.TB, alg string, ms []Member, load Load) Picker {
	t.Helper()
	p, err := New(alg, ms, load)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// picks returns the indexes of n picks.
func picks(p Picker, n int, ok func(int) bool) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = p.Pick(nil, ok)
	}
	return out
}

func count(seq []int, n int) []int {
	c := make([]int, n)
	for _, i := range seq {
		c[i]++
	}
	return c
}

func longestRun(seq []int, of int) int {
	longest, run := 0, 0
	for _, i := range seq {
		if i == of {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		alg  string
		ms   []Member
		load Load
	}{
		{"weighted", members(1), loads(0)},
		{"", members(1), loads(0)},
		{"roundrobin", members(1, -1), nil},
		{"leastconn", members(1), nil},
		{"random", members(1), nil},
	} {
		if _, err := New(tc.alg, tc.ms, tc.load); err == nil {
			t.Errorf("New(%q, %v, load=%v): no error", tc.alg, tc.ms, tc.load != nil)
		} else {
			t.Logf("New(%q): %v", tc.alg, err)
		}
	}
	for _, alg := range Algorithms {
		if _, err := New(alg, members(1, 0, 2), loads(0, 0, 0)); err != nil {
			t.Errorf("New(%q): %v", alg, err)
		}
	}
}

// TestEligibility holds for every algorithm: weight 0 and members refused
// by ok are never picked, and -1 comes back when nobody is left.
func TestEligibility(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			ms := members(3, 0, 1, 2)
			load := loads(5, 0, 5, 5) // the drained member is the least loaded
			p := mustNew(t, alg, ms, load)
			for k := range 2000 {
				key := []byte(fmt.Sprint(k))
				if got := p.Pick(key, all); got < 0 || got == 1 {
					t.Fatalf("Pick(%q, all) = %d, want an index other than the drained 1", key, got)
				}
				if got := p.Pick(key, except(0, 3)); got != 2 {
					t.Fatalf("Pick(%q, only 2 ok) = %d, want 2", key, got)
				}
				if got := p.Pick(key, except(0, 2, 3)); got != -1 {
					t.Fatalf("Pick(%q, only drained 1 ok) = %d, want -1", key, got)
				}
				if got := p.Pick(key, func(int) bool { return false }); got != -1 {
					t.Fatalf("Pick(%q, none ok) = %d, want -1", key, got)
				}
			}
			empty := mustNew(t, alg, nil, loads())
			if got := empty.Pick([]byte("k"), all); got != -1 {
				t.Errorf("Pick with no members = %d, want -1", got)
			}
		})
	}
}

func TestRoundRobinSmooth(t *testing.T) {
	p := mustNew(t, "roundrobin", members(5, 1, 1), nil)
	seq := picks(p, 700, all)
	// nginx's documented sequence for weights 5, 1, 1.
	if want := []int{0, 0, 1, 0, 2, 0, 0}; !slices.Equal(seq[:7], want) {
		t.Errorf("first 7 picks = %v, want %v", seq[:7], want)
	}
	for start := 0; start < len(seq); start += 7 {
		if got := count(seq[start:start+7], 3); !slices.Equal(got, []int{5, 1, 1}) {
			t.Fatalf("picks %d..%d counts = %v, want [5 1 1]", start, start+6, got)
		}
	}
	if run := longestRun(seq, 0); run >= 5 {
		t.Errorf("heavy server picked %d times in a row", run)
	}
}

func TestRoundRobinWeights(t *testing.T) {
	p := mustNew(t, "roundrobin", members(3, 2, 5, 0), nil)
	seq := picks(p, 1000, all)
	if got := count(seq, 4); !slices.Equal(got, []int{300, 200, 500, 0}) {
		t.Errorf("counts over 1000 picks = %v, want [300 200 500 0]", got)
	}
	// Every cycle of total weight picks is exact, not just the sum.
	for start := 0; start < len(seq); start += 10 {
		if got := count(seq[start:start+10], 4); !slices.Equal(got, []int{3, 2, 5, 0}) {
			t.Fatalf("picks %d..%d counts = %v, want [3 2 5 0]", start, start+9, got)
		}
	}
}

func TestRoundRobinFiltered(t *testing.T) {
	p := mustNew(t, "roundrobin", members(1, 1, 1), nil)
	seq := picks(p, 100, except(1))
	if got := count(seq, 3); !slices.Equal(got, []int{50, 0, 50}) {
		t.Errorf("counts with 1 refused = %v, want [50 0 50]", got)
	}
	// Once the refused member is back, everyone is served again evenly.
	seq = picks(p, 300, all)
	if got := count(seq, 3); !slices.Equal(got, []int{100, 100, 100}) {
		t.Errorf("counts after 1 is back = %v, want [100 100 100]", got)
	}
}

func TestLeastConn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
		loads   []int64
		ok      func(int) bool
		want    int
	}{
		{"least loaded", []int{1, 1, 1}, []int64{5, 2, 9}, all, 1},
		{"least loaded refused", []int{1, 1, 1}, []int64{5, 2, 9}, except(1), 0},
		{"weight 3 carries more", []int{1, 3}, []int64{10, 10}, all, 1},
		{"per unit of weight", []int{1, 3}, []int64{3, 10}, all, 0},   // 3/1 < 10/3
		{"per unit of weight 2", []int{1, 3}, []int64{4, 11}, all, 1}, // 11/3 < 4/1
		{"drained idle", []int{0, 1}, []int64{0, 50}, all, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, "leastconn", members(tc.weights...), loads(tc.loads...))
			for range 10 { // whatever the rotation
				if got := p.Pick(nil, tc.ok); got != tc.want {
					t.Fatalf("Pick = %d, want %d", got, tc.want)
				}
			}
		})
	}
}

func TestLeastConnTiesRotate(t *testing.T) {
	p := mustNew(t, "leastconn", members(1, 1, 1), loads(0, 0, 0))
	if got := count(picks(p, 300, all), 3); !slices.Equal(got, []int{100, 100, 100}) {
		t.Errorf("counts with equal loads = %v, want [100 100 100]", got)
	}
	// Equal per unit of weight is a tie too.
	p = mustNew(t, "leastconn", members(1, 2, 1), loads(2, 4, 2))
	if got := count(picks(p, 300, all), 3); !slices.Equal(got, []int{100, 100, 100}) {
		t.Errorf("counts with equal loads per weight = %v, want [100 100 100]", got)
	}
}

// TestLeastConnFollowsLoad drives the load the picks create: sessions
// spread in proportion to weight.
func TestLeastConnFollowsLoad(t *testing.T) {
	ls := make([]int64, 3)
	p := mustNew(t, "leastconn", members(1, 2, 3), func(i int) int64 { return ls[i] })
	for range 600 {
		ls[p.Pick(nil, all)]++
	}
	if !slices.Equal(ls, []int64{100, 200, 300}) {
		t.Errorf("sessions after 600 picks = %v, want [100 200 300]", ls)
	}
}

func TestRandomAvoidsLoaded(t *testing.T) {
	p := mustNew(t, "random", members(1, 1, 1), loads(100, 0, 0))
	seq := picks(p, 10000, all)
	c := count(seq, 3)
	if c[0] != 0 {
		t.Errorf("loaded server 0 picked %d times; two distinct choices always include an idle one", c[0])
	}
	// Control: the idle ones share.
	if c[1] < 4000 || c[2] < 4000 {
		t.Errorf("counts = %v, want 1 and 2 to share about evenly", c)
	}
	// Alone, the loaded server is still picked.
	if got := p.Pick(nil, except(1, 2)); got != 0 {
		t.Errorf("Pick with only 0 ok = %d, want 0", got)
	}
}

func TestRandomWeights(t *testing.T) {
	// Equal (zero) loads: the first draw wins, which is weighted.
	p := mustNew(t, "random", members(1, 3), loads(0, 0))
	c := count(picks(p, 20000, all), 2)
	if frac := float64(c[1]) / 20000; math.Abs(frac-0.75) > 0.02 {
		t.Errorf("weight 3 of 4 got %.3f of picks (%v), want 0.75±0.02", frac, c)
	}
	// Load is compared per unit of weight: 0/1 < 5/10, and with two
	// members both are always drawn.
	p = mustNew(t, "random", members(1, 10), loads(0, 5))
	if c := count(picks(p, 1000, all), 2); c[0] != 1000 {
		t.Errorf("counts = %v, want all on 0", c)
	}
	p = mustNew(t, "random", members(1, 10), loads(1, 5))
	if c := count(picks(p, 1000, all), 2); c[1] != 1000 {
		t.Errorf("counts = %v, want all on 1 (5/10 < 1/1)", c)
	}
}

// TestRandomMany covers more members than the eligibility bit mask holds.
func TestRandomMany(t *testing.T) {
	weights := make([]int, 100)
	ls := make([]int64, 100)
	for i := range weights {
		weights[i], ls[i] = 1, int64(i)
	}
	weights[50] = 0
	p := mustNew(t, "random", members(weights...), loads(ls...))
	only := func(ok ...int) func(int) bool { return func(i int) bool { return slices.Contains(ok, i) } }
	for range 1000 {
		if got := p.Pick(nil, only(70, 99)); got != 70 {
			t.Fatalf("Pick among 70 and 99 = %d, want the less loaded 70", got)
		}
		if got := p.Pick(nil, only(50, 99)); got != 99 {
			t.Fatalf("Pick among drained 50 and 99 = %d, want 99", got)
		}
		if got := p.Pick(nil, all); got < 0 || got == 50 || got == 99 {
			t.Fatalf("Pick among all = %d", got)
		}
	}
}

// TestPickAllocs: Pick is allocation-free for every algorithm.
func TestPickAllocs(t *testing.T) {
	ms := members(1, 2, 3, 4, 5, 1, 2, 3, 4, 5)
	ls := make([]int64, len(ms))
	key := []byte{192, 0, 2, 1}
	for _, alg := range Algorithms {
		p := mustNew(t, alg, ms, func(i int) int64 { return ls[i] })
		if n := testing.AllocsPerRun(1000, func() { p.Pick(key, all) }); n != 0 {
			t.Errorf("%s: %.1f allocs per Pick, want 0", alg, n)
		}
	}
}

// The dynamic algorithms take weight changes while they pick (slow start);
// the static ones do not offer them.
func TestSetWeight(t *testing.T) {
	for _, alg := range []string{"roundrobin", "leastconn", "random"} {
		p := mustNew(t, alg, members(16, 16), loads(0, 0))
		w, ok := p.(Weighter)
		if !ok {
			t.Fatalf("%s: no Weighter", alg)
		}
		w.SetWeight(1, 0)
		if got := count(picks(p, 100, all), 2); got[1] != 0 {
			t.Errorf("%s: weight 0 picked %d times", alg, got[1])
		}
		w.SetWeight(1, -3)
		if got := count(picks(p, 100, all), 2); got[1] != 0 {
			t.Errorf("%s: negative weight picked %d times", alg, got[1])
		}
		w.SetWeight(1, 4)
		switch got := count(picks(p, 2000, all), 2); alg {
		case "roundrobin":
			if got[1] != 400 { // exactly 4 in every 20
				t.Errorf("%s: weight 4 of 20 picked %d of 2000, want 400", alg, got[1])
			}
		case "random":
			if got[1] < 200 || got[1] > 600 { // ~1/5 drawn; equal loads keep the first
				t.Errorf("%s: weight 4 of 20 picked %d of 2000, want about 400", alg, got[1])
			}
		}
		w.SetWeight(1, 16)
		if got := count(picks(p, 2000, all), 2); got[1] < 800 || got[1] > 1200 {
			t.Errorf("%s: weight restored: picked %v of 2000, want about half each", alg, got)
		}
	}
	// leastconn weighs load per unit of weight: at loads 3 and 1, a member
	// of weight 4 against one of 16 is heavier (1/4 > 3/16).
	p := mustNew(t, "leastconn", members(16, 16), loads(3, 1))
	p.(Weighter).SetWeight(1, 4)
	if got := p.Pick(nil, all); got != 0 {
		t.Errorf("leastconn after SetWeight: picked %d, want 0", got)
	}
	for _, alg := range []string{"source", "uri"} {
		if _, ok := mustNew(t, alg, members(1, 1), nil).(Weighter); ok {
			t.Errorf("%s offers SetWeight; static algorithms must not", alg)
		}
	}
}

// TestRoundRobinEqualAndUneven: with equal weights (the rotation) every
// member of a large backend is picked once per cycle, refused ones
// skipped; a weight change to unequal weights goes back to the smooth
// round robin's exact cycles, and back to equal to the rotation.
func TestRoundRobinEqualAndUneven(t *testing.T) {
	ws := make([]int, 1000)
	for i := range ws {
		ws[i] = 3
	}
	p := mustNew(t, "roundrobin", members(ws...), nil)
	seq := picks(p, 3000, all)
	for i, c := range count(seq, 1000) {
		if c != 3 {
			t.Fatalf("member %d picked %d times in 3000 picks of 1000 equal members, want 3", i, c)
		}
	}
	seq = picks(p, 999*2, except(500))
	for i, c := range count(seq, 1000) {
		if want := map[bool]int{true: 0, false: 2}[i == 500]; c != want {
			t.Fatalf("member %d picked %d times with 500 refused, want %d", i, c, want)
		}
	}
	p3 := mustNew(t, "roundrobin", members(1, 1, 1), nil)
	w := p3.(Weighter)
	w.SetWeight(2, 3) // 1, 1, 3: smooth, exact per cycle of 5
	seq = picks(p3, 500, all)
	for start := 0; start < len(seq); start += 5 {
		if got := count(seq[start:start+5], 3); !slices.Equal(got, []int{1, 1, 3}) {
			t.Fatalf("picks %d..%d counts = %v, want [1 1 3]", start, start+4, got)
		}
	}
	w.SetWeight(0, 3)
	w.SetWeight(1, 3) // equal again
	if got := count(picks(p3, 300, all), 3); !slices.Equal(got, []int{100, 100, 100}) {
		t.Fatalf("counts after the weights are equal again = %v", got)
	}
	w.SetWeight(0, 0)
	w.SetWeight(1, 0)
	w.SetWeight(2, 0) // all drained
	if i := p3.Pick(nil, all); i != -1 {
		t.Fatalf("picked %d with every weight 0", i)
	}
}
