package vrrp

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzParse feeds Parse arbitrary messages and IP header addresses (4 or 16
// bytes; any other length is an invalid address). Parse must not panic, must
// fail only with one of its sentinel errors, and whatever it accepts Marshal
// must reproduce byte for byte, except that v3's 4 reserved bits are sent as
// zero (and so the checksum differs when the input had them set).
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 60s ./appliance/vrrp
//
// The seed corpus is wireTests plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, tc := range wireTests {
		f.Add(tc.wire, tc.src.AsSlice(), tc.dst.AsSlice())
	}
	f.Fuzz(func(t *testing.T, b, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		parseRoundTrip(t, b, src, dst)
		// Random bytes rarely carry a right checksum; try them again with
		// one so that everything past the checksum check is fuzzed too
		// (checksum needs valid addresses of one family).
		if _, err := families(src, dst); err == nil && len(b) >= headerLen {
			parseRoundTrip(t, withChecksum(b, src, dst), src, dst)
		}
	})
}

func parseRoundTrip(t *testing.T, b []byte, src, dst netip.Addr) {
	in := bytes.Clone(b)
	p, err := Parse(b, src, dst)
	if !bytes.Equal(b, in) {
		t.Fatalf("Parse modified its input")
	}
	if err != nil {
		if p != nil {
			t.Fatalf("Parse returned %v with error %v", p, err)
		}
		if DropReason(err) == "other" {
			t.Fatalf("Parse error %v is none of the sentinels", err)
		}
		return
	}
	out, err := p.Marshal(src, dst)
	if err != nil {
		t.Fatalf("Parse accepted % x as %v, which Marshal refuses: %v", b, p, err)
	}
	reserved := p.Version == 3 && b[4]&0xf0 != 0
	want := b
	if reserved {
		want = bytes.Clone(b)
		want[4] &= 0x0f
		want[6], want[7] = out[6], out[7]
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("Parse→Marshal of % x (%v):\n got % x\nwant % x", b, p, out, want)
	}
	if reserved {
		// The re-encoded packet (reserved bits cleared) must itself parse.
		if _, err := Parse(out, src, dst); err != nil {
			t.Fatalf("Parse of re-Marshaled % x: %v", out, err)
		}
	}
}
