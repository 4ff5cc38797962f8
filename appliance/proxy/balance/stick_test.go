package balance

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func wantGet(t *testing.T, tb *Table, key string, now time.Time, want string) {
	t.Helper()
	got, ok := tb.Get(key, now)
	switch {
	case want == "" && ok:
		t.Errorf("Get(%q) at +%v = %q, want absent", key, now.Sub(t0), got)
	case want != "" && (!ok || got != want):
		t.Errorf("Get(%q) at +%v = %q, %v, want %q", key, now.Sub(t0), got, ok, want)
	}
}

func TestStickExpiry(t *testing.T) {
	tb := NewStickTable(10*time.Second, 100)
	tb.Put("10.0.0.1", "a", sec(0))
	wantGet(t, tb, "10.0.0.1", sec(9), "a")  // refreshed to +19s
	wantGet(t, tb, "10.0.0.1", sec(18), "a") // refreshed to +28s
	wantGet(t, tb, "10.0.0.1", sec(28), "")  // exactly at expiry: gone
	if n := tb.Len(); n != 0 {
		t.Errorf("Len after expired Get = %d, want 0", n)
	}
	// Control: without the refreshing Gets the entry would have lapsed.
	tb.Put("10.0.0.2", "b", sec(0))
	wantGet(t, tb, "10.0.0.2", sec(18), "")
	wantGet(t, tb, "absent", sec(0), "")
}

func TestStickPutOverwrites(t *testing.T) {
	tb := NewStickTable(10*time.Second, 100)
	tb.Put("k", "a", sec(0))
	tb.Put("k", "b", sec(5)) // also renews
	wantGet(t, tb, "k", sec(14), "b")
	if n := tb.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	tb.Delete("k")
	tb.Delete("k") // twice is fine
	wantGet(t, tb, "k", sec(14), "")
	if n := tb.Len(); n != 0 {
		t.Errorf("Len after Delete = %d, want 0", n)
	}
}

func TestStickEvictsLeastRecentlyUsed(t *testing.T) {
	tb := NewStickTable(time.Hour, 3)
	tb.Put("a", "s0", sec(0))
	tb.Put("b", "s1", sec(1))
	tb.Put("c", "s2", sec(2))
	wantGet(t, tb, "a", sec(3), "s0") // a is now the most recent; b the oldest
	tb.Put("d", "s3", sec(4))
	if n := tb.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	wantGet(t, tb, "b", sec(5), "")
	wantGet(t, tb, "a", sec(5), "s0")
	wantGet(t, tb, "c", sec(5), "s2")
	wantGet(t, tb, "d", sec(5), "s3")
}

func TestStickFullDropsExpiredFirst(t *testing.T) {
	tb := NewStickTable(10*time.Second, 3)
	tb.Put("old1", "s0", sec(0))
	tb.Put("old2", "s0", sec(1))
	tb.Put("live", "s1", sec(5))
	tb.Put("new", "s2", sec(12)) // old1 and old2 have expired
	if n := tb.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (expired dropped, nothing live evicted)", n)
	}
	wantGet(t, tb, "live", sec(12), "s1")
	wantGet(t, tb, "new", sec(12), "s2")
}

func TestStickLargeBound(t *testing.T) {
	tb := NewStickTable(24*time.Hour, 10000)
	if len(tb.shards) != maxShards {
		t.Errorf("%d shards, want %d", len(tb.shards), maxShards)
	}
	for i := range 30000 {
		tb.Put(fmt.Sprint("k", i), "s", sec(i))
		if i%1000 == 0 && tb.Len() > 10000 {
			t.Fatalf("Len = %d after %d puts, want <= 10000", tb.Len(), i+1)
		}
	}
	if n := tb.Len(); n != 10000 {
		t.Errorf("Len = %d, want 10000", n)
	}
	// The most recent keys survive.
	wantGet(t, tb, "k29999", sec(30000), "s")
}

func TestStickEntriesAndPurge(t *testing.T) {
	tb := NewStickTable(10*time.Second, 0)
	tb.Put("a", "s0", sec(0))
	tb.Put("b", "s1", sec(5))
	es := tb.Entries(sec(10))
	if len(es) != 1 || es[0].Key != "b" || es[0].Server != "s1" || !es[0].Expires.Equal(sec(15)) {
		t.Errorf("Entries at +10s = %+v, want only b→s1 expiring at +15s", es)
	}
	if n := tb.Len(); n != 2 {
		t.Errorf("Len before Purge = %d, want 2", n)
	}
	if n := tb.Purge(sec(10)); n != 1 {
		t.Errorf("Purge dropped %d, want 1", n)
	}
	if n := tb.Len(); n != 1 {
		t.Errorf("Len after Purge = %d, want 1", n)
	}
}

// TestStickConcurrent is for -race: many goroutines on shared keys.
func TestStickConcurrent(t *testing.T) {
	const limit = 2000
	tb := NewStickTable(time.Minute, limit)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 3000 {
				key := fmt.Sprint("10.0.", i%50, ".", (i*7+g)%256)
				now := sec(i)
				switch i % 5 {
				case 0, 1:
					tb.Put(key, fmt.Sprint("s", g%4), now)
				case 2, 3:
					if s, ok := tb.Get(key, now); ok && len(s) != 2 {
						t.Errorf("Get(%q) = %q", key, s)
					}
				default:
					if g%8 == 0 {
						tb.Delete(key)
					} else {
						tb.Len()
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			tb.Entries(sec(1500))
			tb.Purge(sec(1500))
		}
	})
	wg.Wait()
	if n := tb.Len(); n > limit {
		t.Errorf("Len = %d, want <= %d", n, limit)
	}
}

func TestStickGetAllocs(t *testing.T) {
	tb := NewStickTable(time.Minute, 1000)
	tb.Put("192.0.2.1", "s0", sec(0))
	key := "192.0.2.1"
	if n := testing.AllocsPerRun(1000, func() { tb.Get(key, sec(1)) }); n != 0 {
		t.Errorf("%.1f allocs per Get hit, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { tb.Get("198.51.100.1", sec(1)) }); n != 0 {
		t.Errorf("%.1f allocs per Get miss, want 0", n)
	}
}

// TestStickOnChange: the table tells of new entries, of an entry that
// moves to another server and of renewals a quarter of the idle time
// apart, but not of every hit, nor of what Import put.
func TestStickOnChange(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	tb := NewStickTable(time.Minute, 100)
	var told []string
	tb.OnChange(func(e Entry) { told = append(told, e.Key+">"+e.Server+"@"+e.Expires.Sub(t0).String()) })
	tb.Put("10.0.0.1", "s1", t0)
	tb.Get("10.0.0.1", t0.Add(time.Second))         // a hit: not told
	tb.Put("10.0.0.1", "s1", t0.Add(2*time.Second)) // same server, soon: not told
	tb.Get("10.0.0.1", t0.Add(16*time.Second))      // a quarter of a minute on: told
	tb.Put("10.0.0.1", "s2", t0.Add(17*time.Second))
	if !tb.Import("10.0.0.2", "s3", t0.Add(50*time.Second), t0.Add(18*time.Second)) {
		t.Fatal("Import refused a live entry")
	}
	if tb.Import("10.0.0.3", "s3", t0.Add(time.Second), t0.Add(18*time.Second)) {
		t.Fatal("Import took an expired entry")
	}
	if s, ok := tb.Get("10.0.0.2", t0.Add(19*time.Second)); !ok || s != "s3" {
		t.Fatalf("imported entry: %q %v", s, ok)
	}
	want := []string{"10.0.0.1>s1@1m0s", "10.0.0.1>s1@1m16s", "10.0.0.1>s2@1m17s"}
	if !slices.Equal(told, want) {
		t.Errorf("told %q, want %q", told, want)
	}
}

// BenchmarkStickMemory reports the heap a source-persistence entry takes
// (IPv4 client keys, as source persistence makes them): go test -bench
// StickMemory ./appliance/proxy/balance.
func BenchmarkStickMemory(b *testing.B) {
	const n = 100_000
	now := time.Now()
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tb := NewStickTable(time.Hour, 0)
		for i := range n {
			tb.Put(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), "web1", now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/entry")
		runtime.KeepAlive(tb)
	}
}
