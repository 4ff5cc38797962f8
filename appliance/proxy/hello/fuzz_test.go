package hello

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks Parse on arbitrary bytes. Seeds live in
// testdata/fuzz/FuzzParse (real hellos from Go, openssl and curl, and
// broken ones); a Go hello and the Chrome-like one are added here.
//
// Invariants: Parse never panics; on error the Info is empty and the
// error is ErrShort (only below MaxHello bytes) or wraps a sentinel with
// a message; a hello that parses has every proper prefix ErrShort, parses
// the same alone, and the same with bytes after it; a final answer for b
// is final for b with a byte more.
func FuzzParse(f *testing.F) {
	f.Add(goHello(f, &tls.Config{ServerName: "fuzz.example", NextProtos: []string{"h2", "http/1.1"}}))
	f.Add(chromeHello())
	f.Add(refragment(f, chromeHello(), 200))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, n, err := parse(b)
		if err != nil {
			if info.SNI != "" || info.ALPN != nil || info.Versions != nil {
				t.Fatalf("error %v with info %+v", err, info)
			}
			switch {
			case err == ErrShort:
				if len(b) >= MaxHello || n <= len(b) || n > MaxHello {
					t.Fatalf("ErrShort with %d bytes, parse again at %d", len(b), n)
				}
			case errors.Is(err, ErrMalformed), errors.Is(err, ErrNotTLS), errors.Is(err, ErrTooLong):
				if !strings.HasPrefix(err.Error(), "hello: ") || len(err.Error()) < 16 {
					t.Fatalf("error %q says nothing", err)
				}
			default:
				t.Fatalf("unexpected error %v", err)
			}
		} else {
			if n <= 0 || n > len(b) || n > MaxHello {
				t.Fatalf("hello ends at %d of %d bytes", n, len(b))
			}
			alone, n2, err := parse(b[:n])
			if err != nil || n2 != n || !sameInfo(alone, info) {
				t.Fatalf("alone: %+v, %d, %v; with tail %+v, %d", alone, n2, err, info, n)
			}
			more, err := Parse(append(b[:len(b):len(b)], 0x16, 3, 1, 0, 0))
			if err != nil || !sameInfo(more, info) {
				t.Fatalf("with bytes after: %+v, %v; before %+v", more, err, info)
			}
			// Every proper prefix is short: all of them for small hellos,
			// a sample and the last 16 for large ones (keeping the target
			// fast keeps the fuzzer's minimization short).
			for k := 0; k < n; k += max(1, min(n/256, n-16-k)) {
				if _, err := Parse(b[:k]); err != ErrShort {
					t.Fatalf("prefix of %d of %d bytes: %v", k, n, err)
				}
			}
			if len(info.SNI) > maxNameLen || strings.ToLower(info.SNI) != info.SNI || len(info.Versions) > 127 {
				t.Fatalf("info %+v", info)
			}
		}
		// A final answer for b without its last byte is final for b.
		if len(b) > 0 {
			prev, _, perr := parse(b[:len(b)-1])
			switch {
			case perr == ErrShort:
			case perr == nil:
				if err != nil || !sameInfo(prev, info) {
					t.Fatalf("%d bytes: %+v, %v; one fewer: %+v", len(b), info, err, prev)
				}
			default:
				if err == nil || err == ErrShort {
					t.Fatalf("%d bytes: %v; one fewer: %v", len(b), err, perr)
				}
			}
		}
	})
}

func sameInfo(a, b Info) bool {
	return a.SNI == b.SNI && slices.Equal(a.ALPN, b.ALPN) && slices.Equal(a.Versions, b.Versions)
}
