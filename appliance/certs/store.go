package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Store keeps named certificates in Dir (the daemon uses
// <state-dir>/certs): NAME.crt holds the PEM chain (mode 0644), NAME.key
// the PEM key (0600), Dir itself is 0700. Each file is written to a
// temporary file, synced and renamed into place; the directory is synced
// after. A crash between the two renames of a replace can leave a new key
// beside the old chain: Load and List then report that the key does not
// match, and adding the pair again mends it. Store does not lock: its
// user serialises changes.
type Store struct{ Dir string }

// File modes of the store.
const (
	DirMode  fs.FileMode = 0o700
	CertMode fs.FileMode = 0o644
	KeyMode  fs.FileMode = 0o600
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckName returns an error matching ErrInvalid unless name is a store
// name: 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return errorf(ErrInvalid, "certificate name %q: want 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit", name)
	}
	return nil
}

func (s *Store) paths(name string) (crt, key string) {
	return filepath.Join(s.Dir, name+".crt"), filepath.Join(s.Dir, name+".key")
}

// Add validates the pair with Parse at now and stores it as name. When
// name holds a certificate already, replace=false refuses (ErrExists) and
// replace=true puts the new pair in its place.
func (s *Store) Add(name string, certPEM, keyPEM []byte, now time.Time, replace bool) (Info, error) {
	if err := CheckName(name); err != nil {
		return Info{}, err
	}
	_, info, err := Parse(certPEM, keyPEM, now)
	if err != nil {
		return Info{}, err
	}
	info.Name = name
	if err := os.MkdirAll(s.Dir, DirMode); err != nil {
		return Info{}, fmt.Errorf("certificate store: %w", err)
	}
	if err := os.Chmod(s.Dir, DirMode); err != nil {
		return Info{}, fmt.Errorf("certificate store: %w", err)
	}
	crt, key := s.paths(name)
	if !replace {
		for _, p := range []string{crt, key} {
			if _, err := os.Lstat(p); err == nil {
				return Info{}, errorf(ErrExists, "certificate %q exists; replace it to change it", name)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return Info{}, fmt.Errorf("certificate store: %w", err)
			}
		}
	}
	// Both temporary files are complete and synced before either rename.
	tmpKey, err := writeTemp(s.Dir, name+".key", keyPEM, KeyMode)
	if err != nil {
		return Info{}, err
	}
	defer os.Remove(tmpKey)
	tmpCrt, err := writeTemp(s.Dir, name+".crt", certPEM, CertMode)
	if err != nil {
		return Info{}, err
	}
	defer os.Remove(tmpCrt)
	if err := os.Rename(tmpKey, key); err != nil {
		return Info{}, fmt.Errorf("certificate store: %w", err)
	}
	if err := os.Rename(tmpCrt, crt); err != nil {
		return Info{}, fmt.Errorf("certificate store: %w", err)
	}
	os.Remove(s.tombstone(name))
	return info, syncDir(s.Dir)
}

// writeTemp writes data to a new synced file in dir named after base
// (".BASE.tmp-*": never a store name) with mode perm, and returns its path.
func writeTemp(dir, base string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("certificate store: %w", err)
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("certificate store: write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("certificate store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("certificate store: sync %s: %w", dir, err)
	}
	return nil
}

// Load reads and Parses the pair stored as name at now. A name with no
// certificate is an error matching ErrNotFound.
func (s *Store) Load(name string, now time.Time) (tls.Certificate, Info, error) {
	tc, info, err := s.load(name, now)
	if err != nil {
		return tls.Certificate{}, Info{}, fmt.Errorf("certificate %q: %w", name, err)
	}
	return tc, info, nil
}

func (s *Store) load(name string, now time.Time) (tls.Certificate, Info, error) {
	if err := CheckName(name); err != nil {
		return tls.Certificate{}, Info{}, err
	}
	crt, key := s.paths(name)
	certPEM, err := os.ReadFile(crt)
	if errors.Is(err, fs.ErrNotExist) {
		if _, kerr := os.Lstat(key); kerr == nil {
			return tls.Certificate{}, Info{}, fmt.Errorf("%s is missing (the key is there)", filepath.Base(crt))
		}
		return tls.Certificate{}, Info{}, &kindError{kind: ErrNotFound, err: errors.New("not in the store")}
	} else if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	keyPEM, err := os.ReadFile(key)
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, Info{}, fmt.Errorf("%s is missing (the certificate is there)", filepath.Base(key))
	} else if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	tc, info, err := parse(certPEM, keyPEM, now)
	info.Name = name
	return tc, info, err
}

// List describes every stored certificate at now, sorted by name. An
// entry that cannot be read or is invalid now (expired, a file missing)
// is listed with Error, and described as far as its cert file decodes. A
// missing Dir is an empty store.
func (s *Store) List(now time.Time) ([]Info, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []Info{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("certificate store: %w", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		base := strings.TrimSuffix(strings.TrimSuffix(n, ".crt"), ".key")
		if base != n && CheckName(base) == nil && !slices.Contains(names, base) {
			names = append(names, base)
		}
	}
	slices.Sort(names)
	out := make([]Info, 0, len(names))
	for _, n := range names {
		_, info, err := s.load(n, now)
		if err != nil {
			info.Name, info.Error = n, err.Error()
		}
		out = append(out, info)
	}
	return out, nil
}

// Remove deletes the pair stored as name; a name with no file is an error
// matching ErrNotFound.
func (s *Store) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	crt, key := s.paths(name)
	found := false
	for _, p := range []string{crt, key} {
		switch err := os.Remove(p); {
		case err == nil:
			found = true
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("certificate store: %w", err)
		}
	}
	if !found {
		return errorf(ErrNotFound, "certificate %q is not in the store", name)
	}
	// Remembered for the peer (see Manifest).
	if err := os.WriteFile(s.tombstone(name), nil, CertMode); err != nil {
		return fmt.Errorf("certificate store: %w", err)
	}
	return syncDir(s.Dir)
}
