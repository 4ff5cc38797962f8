package proxyproto

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse checks Parse on arbitrary bytes. Seeds live in
// testdata/fuzz/FuzzParse; the valid headers of the unit tests are added.
func FuzzParse(f *testing.F) {
	for _, tt := range validHeaders {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		h, n, err := Parse(buf)
		if err != nil {
			if h != (Header{}) || n != 0 {
				t.Fatalf("failed with %v but returned %+v, %d", err, h, n)
			}
			switch {
			case err == ErrIncomplete:
				// Never ask for more than the documented bound.
				if limit := MaxHeaderLen; len(buf) >= limit || len(buf) > 0 && buf[0] == 'P' && len(buf) >= MaxV1Len {
					t.Fatalf("ErrIncomplete with %d bytes", len(buf))
				}
			case err == ErrNotProxy:
			case errors.Is(err, ErrMalformed):
				if !strings.HasPrefix(err.Error(), "proxyproto: v") {
					t.Fatalf("error %q does not say where", err)
				}
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("n = %d for %d bytes", n, len(buf))
		}
		if want := map[byte]int{'P': 1, '\r': 2}[buf[0]]; h.Version != want {
			t.Fatalf("Version %d for header starting %q", h.Version, buf[0])
		}
		if h.Local != !h.Src.IsValid() || h.Local != !h.Dst.IsValid() {
			t.Fatalf("Local %v with Src %v, Dst %v", h.Local, h.Src, h.Dst)
		}
		// The header alone parses the same; every proper prefix asks for
		// more.
		if h2, n2, err := Parse(buf[:n]); err != nil || h2 != h || n2 != n {
			t.Fatalf("header alone: %+v, %d, %v; with tail: %+v, %d", h2, n2, err, h, n)
		}
		for k := range n {
			if _, _, err := Parse(buf[:k]); err != ErrIncomplete {
				t.Fatalf("prefix of %d of %d bytes: %v, want ErrIncomplete", k, n, err)
			}
		}
		if h.Local {
			return
		}
		// Re-encoded with the same version, the addresses survive
		// (IPv4-mapped ones come back as IPv4).
		var re []byte
		if h.Version == 1 {
			re = AppendV1(nil, h.Src, h.Dst)
		} else {
			re = AppendV2(nil, h.Src, h.Dst)
		}
		h2, n2, err := Parse(re)
		if err != nil || n2 != len(re) || h2.Version != h.Version || h2.Local {
			t.Fatalf("re-encoded %q: %+v, %d, %v", re, h2, n2, err)
		}
		if unmap(h2.Src) != unmap(h.Src) || unmap(h2.Dst) != unmap(h.Dst) {
			t.Fatalf("re-encoded %q: %v %v, want %v %v", re, h2.Src, h2.Dst, h.Src, h.Dst)
		}
		// v1 text in canonical form re-encodes to the same bytes.
		if h.Version == 1 && h.Src.Addr().Is4In6() == h.Dst.Addr().Is4In6() && !h.Src.Addr().Is4In6() {
			if canon := AppendV1(nil, h.Src, h.Dst); bytes.Equal(canon, buf[:n]) != isCanonicalV1(buf[:n], h) {
				t.Fatalf("canonical form mismatch: %q vs %q", canon, buf[:n])
			}
		}
	})
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// isCanonicalV1 reports whether line writes its addresses as netip does.
func isCanonicalV1(line []byte, h Header) bool {
	f := strings.Fields(string(line))
	return f[2] == h.Src.Addr().String() && f[3] == h.Dst.Addr().String()
}

// FuzzAddrText checks the allocation-free address parsers against
// netip.ParseAddr.
func FuzzAddrText(f *testing.F) {
	for _, s := range []string{
		"0.0.0.0", "255.255.255.255", "1.2.3.04", "1.2.3", "1..2.3", "1.2.3.4.", "256.0.0.0",
		"::", "::1", "1::", "2001:db8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", ":1", "1:",
		"fe80::1%eth0", "::1.2.3.4", "1::2:3:4:5:6:1.2.3.4", "FFFF::ffff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		want, err := netip.ParseAddr(string(s))
		got, ok := parseIPv4(s)
		if wantOK := err == nil && want.Is4(); ok != wantOK || ok && got != want {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
		got, ok = parseIPv6(s)
		if wantOK := err == nil && want.Is6() && want.Zone() == ""; ok != wantOK || ok && got != want {
			t.Fatalf("parseIPv6(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
	})
}
