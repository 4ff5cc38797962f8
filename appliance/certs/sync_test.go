package certs

import (
	"fmt"
	"testing"
	"time"
)

func TestNewer(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	local := []Entry{
		{Name: "same", Sum: "a", Changed: t0},
		{Name: "older-here", Sum: "a", Changed: t0},
		{Name: "newer-here", Sum: "a", Changed: t1},
		{Name: "gone-there", Sum: "a", Changed: t0},
		{Name: "gone-here", Changed: t1, Removed: true},
		{Name: "gone-both", Changed: t0, Removed: true},
		{Name: "revived-there", Changed: t0, Removed: true},
	}
	remote := []Entry{
		{Name: "same", Sum: "a", Changed: t1}, // same bytes: nothing to do
		{Name: "older-here", Sum: "b", Changed: t1},
		{Name: "newer-here", Sum: "b", Changed: t0},
		{Name: "gone-there", Changed: t1, Removed: true},
		{Name: "gone-here", Sum: "b", Changed: t0},
		{Name: "gone-both", Changed: t1, Removed: true},
		{Name: "revived-there", Sum: "b", Changed: t1},
		{Name: "new-there", Sum: "b", Changed: t0},
		{Name: "removed-unknown", Changed: t1, Removed: true},
	}
	fetch, remove := Newer(local, remote)
	if got := fmt.Sprint(fetch, remove); got != "[older-here revived-there new-there] [gone-there]" {
		t.Errorf("fetch, remove = %s", got)
	}
}

// TestStoreManifest: pairs and removals with their times; Import keeps
// the peer's time, RemoveAt dates the removal.
func TestStoreManifest(t *testing.T) {
	noSystemRoots(t)
	a, b := &Store{Dir: t.TempDir()}, &Store{Dir: t.TempDir()}
	pk := newPKI(t)
	chain, key := cat(pk.ecdsa.CertPEM, pk.inter.PEM, pk.root.PEM), pk.ecdsa.KeyPEM
	if _, err := a.Add("www", chain, key, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	ma, _ := a.Manifest(time.Now())
	pairs, err := a.Export([]string{"www"})
	if err != nil || len(pairs) != 1 {
		t.Fatal(err)
	}
	if err := b.Import(pairs[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	mb, _ := b.Manifest(time.Now())
	if fmt.Sprint(ma) != fmt.Sprint(mb) {
		t.Fatalf("manifests differ:\n%v\n%v", ma, mb)
	}
	at := time.Now().Add(time.Minute).Truncate(time.Second)
	if err := b.RemoveAt("www", at); err != nil {
		t.Fatal(err)
	}
	mb, _ = b.Manifest(time.Now())
	if len(mb) != 1 || !mb[0].Removed || !mb[0].Changed.Equal(at) {
		t.Fatalf("after RemoveAt: %v", mb)
	}
	if l, _ := b.List(time.Now()); len(l) != 0 {
		t.Errorf("List shows a removed pair: %v", l)
	}
	// Adding the name again forgets the removal.
	if _, err := b.Add("www", chain, key, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if mb, _ = b.Manifest(time.Now()); len(mb) != 1 || mb[0].Removed {
		t.Fatalf("after adding again: %v", mb)
	}
}
