// Package proxyproto encodes and parses the PROXY protocol header, versions
// 1 (text) and 2 (binary), as specified by HAProxy in
// https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt. halb sends
// it to backend servers (send-proxy, send-proxy-v2) and accepts it from
// trusted upstream load balancers (accept-proxy).
//
// Parse reads untrusted bytes, so it is strict and bounded:
//
//   - It never asks for more than MaxHeaderLen bytes: a v1 line is at most
//     107 bytes including CRLF, and a v2 header whose length field exceeds
//     MaxV2Len (4096, far above any sane set of TLVs) is refused as soon as
//     its 16-byte fixed part is in.
//   - It returns ErrIncomplete only while the bytes seen so far can still
//     begin a valid header; it rejects as soon as they cannot.
//   - v1: exactly "PROXY " then "TCP4", "TCP6" or "UNKNOWN", single spaces,
//     addresses in the named family written as net/netip writes or accepts
//     them (no zones, no leading zeros in dotted quads, at most 15 and 39
//     characters), decimal ports 0..65535 without sign or leading zeros,
//     and CRLF. "UNKNOWN" may be followed by a space and anything up to the
//     first CRLF.
//   - v2: the 12-byte signature, version 2, command LOCAL or PROXY. LOCAL
//     discards the whole address block, family included, as the spec
//     requires. PROXY needs a defined family (UNSPEC, INET, INET6, UNIX)
//     and transport (UNSPEC, STREAM, DGRAM) and a length covering the
//     family's addresses; only TCP over IPv4 or IPv6 yields addresses, the
//     other combinations are reported as Local. TLVs after the addresses
//     are skipped, not interpreted, but each must lie within the header.
//
// Parse reports IPv4-mapped IPv6 addresses as they were sent (TCP6 or
// AF_INET6). AppendV1 and AppendV2 unmap them first, so a v4 client
// accepted on a dual-stack socket goes out as TCP4 / AF_INET.
//
// Parse, AppendV1 and AppendV2 do not allocate (Append into a buffer with
// room). Test, fuzz and benchmark with:
//
//	go test -race ./appliance/proxy/proxyproto
//	go test -run X -fuzz FuzzParse -fuzztime 30s ./appliance/proxy/proxyproto
//	go test -run X -bench . -benchmem ./appliance/proxy/proxyproto
package proxyproto

import (
	"errors"
	"fmt"
	"net/netip"
)

var (
	// ErrIncomplete means buf is a proper prefix of a possible header:
	// read more (never beyond MaxHeaderLen bytes in total) and parse again.
	ErrIncomplete = errors.New("proxyproto: incomplete header")
	// ErrNotProxy means the first bytes rule out both the v1 and the v2
	// signature.
	ErrNotProxy = errors.New("proxyproto: not a PROXY protocol header")
	// ErrMalformed is wrapped by every error Parse returns for bytes that
	// start with a PROXY signature but break the format.
	ErrMalformed = errors.New("proxyproto: malformed header")
)

// Size limits.
const (
	// MaxV1Len is the longest v1 line, CRLF included.
	MaxV1Len = 107
	// MaxV2Len is the largest v2 length field Parse accepts (addresses and
	// TLVs after the 16-byte fixed part).
	MaxV2Len = 4096
	// MaxHeaderLen bounds every header Parse accepts: once a caller holds
	// this many bytes, Parse does not return ErrIncomplete.
	MaxHeaderLen = v2FixedLen + MaxV2Len
)

// Header is a parsed PROXY protocol header.
type Header struct {
	Version int // 1 or 2
	// Local is set for v1 "UNKNOWN", for the v2 LOCAL command, and for v2
	// PROXY headers whose family or transport is not TCP over IPv4/IPv6:
	// the connection's own addresses apply and Src and Dst are invalid.
	Local    bool
	Src, Dst netip.AddrPort
}

// Parse reads a v1 or v2 header at the start of buf and returns it with the
// number of bytes it occupies; bytes after it are left alone. It returns
// ErrIncomplete while buf is a proper prefix of a possible header,
// ErrNotProxy when the first bytes rule out both signatures, and an error
// wrapping ErrMalformed for anything else that is not a valid header.
func Parse(buf []byte) (Header, int, error) {
	if len(buf) == 0 {
		return Header{}, 0, ErrIncomplete
	}
	switch buf[0] {
	case v1Sig[0]:
		return parseV1(buf)
	case v2Sig[0]:
		return parseV2(buf)
	}
	return Header{}, 0, ErrNotProxy
}

// outAddrs picks the family for sending src and dst: IPv4 when both are
// IPv4 or IPv4-mapped, otherwise IPv6 with any IPv4 address mapped. ok is
// false when either address is invalid. Zones are dropped: the wire has no
// room for them.
func outAddrs(src, dst netip.AddrPort) (s, d netip.Addr, v4, ok bool) {
	s, d = src.Addr().Unmap().WithZone(""), dst.Addr().Unmap().WithZone("")
	if !s.IsValid() || !d.IsValid() {
		return netip.Addr{}, netip.Addr{}, false, false
	}
	if s.Is4() && d.Is4() {
		return s, d, true, true
	}
	return netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16()), false, true
}

// prefixMatch reports whether b and s agree on their common length.
func prefixMatch(b []byte, s string) bool {
	n := min(len(b), len(s))
	return string(b[:n]) == s[:n]
}

// malformedError is a format violation; it wraps ErrMalformed.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return "proxyproto: " + e.msg }
func (e *malformedError) Unwrap() error { return ErrMalformed }

func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}
