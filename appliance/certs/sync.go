package certs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Entry is what a node tells its peer of one stored certificate: enough
// to see which side has the newer one, no secret.
type Entry struct {
	Name string `json:"name"`
	// Sum is the SHA-256 of the chain file and the key file; "" for a
	// removal.
	Sum string `json:"sum,omitempty"`
	// Changed is when the pair was added, replaced or removed (on
	// whichever node did it first).
	Changed time.Time `json:"changed"`
	Removed bool      `json:"removed,omitempty"`
}

// Pair is a stored certificate as a peer takes it.
type Pair struct {
	Name    string    `json:"name"`
	Cert    []byte    `json:"cert"`
	Key     []byte    `json:"key"`
	Changed time.Time `json:"changed"`
}

// tombstone marks a removal (NAME.removed, its time the removal's), so a
// peer that still has the pair removes it rather than giving it back.
func (s *Store) tombstone(name string) string { return filepath.Join(s.Dir, name+".removed") }

// tombstoneKeep is how long a removal is remembered.
const tombstoneKeep = 30 * 24 * time.Hour

// Manifest lists the stored certificates and the removals of the last 30
// days, by name.
func (s *Store) Manifest(now time.Time) ([]Entry, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("certificate store: %w", err)
	}
	var out []Entry
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".crt") && CheckName(strings.TrimSuffix(n, ".crt")) == nil:
			name := strings.TrimSuffix(n, ".crt")
			crt, key := s.paths(name)
			c, err1 := os.ReadFile(crt)
			k, err2 := os.ReadFile(key)
			fi, err3 := os.Stat(crt)
			if err1 != nil || err2 != nil || err3 != nil {
				continue // half a pair: nothing to offer
			}
			sum := sha256.Sum256(append(c, k...))
			out = append(out, Entry{Name: name, Sum: hex.EncodeToString(sum[:]), Changed: fi.ModTime()})
		case strings.HasSuffix(n, ".removed") && CheckName(strings.TrimSuffix(n, ".removed")) == nil:
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if now.Sub(fi.ModTime()) > tombstoneKeep {
				os.Remove(filepath.Join(s.Dir, n))
				continue
			}
			out = append(out, Entry{Name: strings.TrimSuffix(n, ".removed"), Changed: fi.ModTime(), Removed: true})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Export reads the named pairs for the peer.
func (s *Store) Export(names []string) ([]Pair, error) {
	var out []Pair
	for _, n := range names {
		if err := CheckName(n); err != nil {
			return nil, err
		}
		crt, key := s.paths(n)
		c, err := os.ReadFile(crt)
		if err != nil {
			return nil, err
		}
		k, err := os.ReadFile(key)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(crt)
		if err != nil {
			return nil, err
		}
		out = append(out, Pair{Name: n, Cert: c, Key: k, Changed: fi.ModTime()})
	}
	return out, nil
}

// Import stores a peer's pair as Add does (checked first), with the time
// it changed there.
func (s *Store) Import(p Pair, now time.Time) error {
	if _, err := s.Add(p.Name, p.Cert, p.Key, now, true); err != nil {
		return err
	}
	crt, key := s.paths(p.Name)
	os.Chtimes(key, p.Changed, p.Changed)
	return os.Chtimes(crt, p.Changed, p.Changed)
}

// RemoveAt removes the pair as Remove does (absent is no error), its
// removal dated at (a peer's).
func (s *Store) RemoveAt(name string, at time.Time) error {
	if err := s.Remove(name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := os.WriteFile(s.tombstone(name), nil, CertMode); err != nil {
		return err
	}
	return os.Chtimes(s.tombstone(name), at, at)
}

// Newer lists what remote has newer than local: the names to fetch, and
// those removed there after they changed here.
func Newer(local, remote []Entry) (fetch, remove []string) {
	mine := map[string]Entry{}
	for _, e := range local {
		mine[e.Name] = e
	}
	for _, r := range remote {
		l, have := mine[r.Name]
		switch {
		case have && (l.Sum == r.Sum && !r.Removed || l.Removed && r.Removed || !r.Changed.After(l.Changed)):
		case r.Removed:
			if have && !l.Removed {
				remove = append(remove, r.Name)
			}
		default:
			fetch = append(fetch, r.Name)
		}
	}
	return fetch, remove
}
