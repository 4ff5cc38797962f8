package proxyproto

import (
	"bytes"
	"net/netip"
	"strconv"
)

const v1Sig = "PROXY "

// AppendV1 appends "PROXY TCP4 src dst sport dport\r\n" to b: TCP4 when
// both addresses are IPv4 or IPv4-mapped IPv6 (sent unmapped), TCP6
// otherwise (an IPv4 address then sent mapped). If either address is
// invalid it appends "PROXY UNKNOWN\r\n".
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	s, d, v4, ok := outAddrs(src, dst)
	if !ok {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	if v4 {
		b = append(b, "PROXY TCP4 "...)
	} else {
		b = append(b, "PROXY TCP6 "...)
	}
	b = s.AppendTo(b)
	b = append(b, ' ')
	b = d.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, '\r', '\n')
}

// parseV1 parses a v1 line; buf[0] is 'P'.
func parseV1(buf []byte) (Header, int, error) {
	b := buf[:min(len(buf), MaxV1Len)]
	if !prefixMatch(b, v1Sig) {
		return Header{}, 0, ErrNotProxy
	}
	if len(b) < len(v1Sig) {
		return Header{}, 0, ErrIncomplete
	}
	i := len(v1Sig)
	rest := b[i:]
	var is6 bool
	switch {
	case bytes.HasPrefix(rest, []byte("TCP4 ")):
	case bytes.HasPrefix(rest, []byte("TCP6 ")):
		is6 = true
	case bytes.HasPrefix(rest, []byte("UNKNOWN")):
		return parseV1Unknown(b, i+len("UNKNOWN"))
	case prefixMatch(rest, "TCP4 "), prefixMatch(rest, "TCP6 "), prefixMatch(rest, "UNKNOWN"):
		return Header{}, 0, ErrIncomplete
	default:
		return Header{}, 0, malformed("v1: bad protocol %q", clip(rest, 8))
	}
	i += len("TCP4 ")

	src, i, err := v1Addr(b, i, is6, "source address")
	if err != nil {
		return Header{}, 0, err
	}
	dst, i, err := v1Addr(b, i, is6, "destination address")
	if err != nil {
		return Header{}, 0, err
	}
	sport, i, err := v1Port(b, i, ' ', "source port")
	if err != nil {
		return Header{}, 0, err
	}
	dport, i, err := v1Port(b, i, '\r', "destination port")
	if err != nil {
		return Header{}, 0, err
	}
	// TCP lines end by byte 104, so b is never cut short here.
	if i == len(b) {
		return Header{}, 0, ErrIncomplete
	}
	if b[i] != '\n' {
		return Header{}, 0, malformed("v1: missing CRLF")
	}
	return Header{
		Version: 1,
		Src:     netip.AddrPortFrom(src, sport),
		Dst:     netip.AddrPortFrom(dst, dport),
	}, i + 1, nil
}

// parseV1Unknown parses the rest of "PROXY UNKNOWN" from b[i]: CRLF, or a
// space and anything up to the first CRLF. b is cut at MaxV1Len.
func parseV1Unknown(b []byte, i int) (Header, int, error) {
	if i == len(b) {
		return Header{}, 0, ErrIncomplete
	}
	switch b[i] {
	case '\r':
		if i+1 == len(b) {
			return Header{}, 0, ErrIncomplete
		}
		if b[i+1] != '\n' {
			return Header{}, 0, malformed("v1: missing CRLF")
		}
		return Header{Version: 1, Local: true}, i + 2, nil
	case ' ':
		k := bytes.Index(b[i+1:], []byte("\r\n"))
		if k < 0 {
			if len(b) == MaxV1Len {
				return Header{}, 0, malformed("v1: no CRLF within %d bytes", MaxV1Len)
			}
			return Header{}, 0, ErrIncomplete
		}
		return Header{Version: 1, Local: true}, i + 1 + k + 2, nil
	}
	return Header{}, 0, malformed("v1: bad protocol %q", clip(b[len(v1Sig):], 8))
}

// v1Field returns the field starting at b[i] and the index after the delim
// that ends it. Each byte must be in one of the classes in valid, and the
// field may hold at most maxLen bytes. If b ends inside the field, it
// returns the partial field and ErrIncomplete.
func v1Field(b []byte, i int, delim byte, maxLen int, valid uint8, what string) ([]byte, int, error) {
	for j := i; j < len(b); j++ {
		c := b[j]
		if c == delim && j > i {
			return b[i:j], j + 1, nil
		}
		if charClass[c]&valid == 0 || j-i == maxLen {
			return nil, 0, malformed("v1: bad %s %q", what, clip(word(b[i:]), maxLen+1))
		}
	}
	return b[i:], 0, ErrIncomplete
}

func v1Addr(b []byte, i int, is6 bool, what string) (netip.Addr, int, error) {
	var (
		tok []byte
		err error
		ip  netip.Addr
		ok  bool
	)
	if is6 {
		tok, i, err = v1Field(b, i, ' ', 39, classIPv6, what)
		if err == nil {
			ip, ok = parseIPv6(tok)
		}
	} else {
		tok, i, err = v1Field(b, i, ' ', 15, classIPv4, what)
		if err == nil {
			ip, ok = parseIPv4(tok)
		}
	}
	if err != nil {
		return netip.Addr{}, 0, err
	}
	if !ok {
		return netip.Addr{}, 0, malformed("v1: bad %s %q", what, tok)
	}
	return ip, i, nil
}

func v1Port(b []byte, i int, delim byte, what string) (uint16, int, error) {
	tok, i, err := v1Field(b, i, delim, 5, classDigit, what)
	if err == ErrIncomplete {
		// Refuse a partial port that more bytes cannot mend: a leading
		// zero or a value above 65535.
		if _, ok := parsePort(tok); !ok && len(tok) > 0 {
			return 0, 0, malformed("v1: bad %s %q", what, tok)
		}
		return 0, 0, err
	}
	if err != nil {
		return 0, 0, err
	}
	p, ok := parsePort(tok)
	if !ok {
		return 0, 0, malformed("v1: bad %s %q", what, tok)
	}
	return p, i, nil
}

// parsePort parses a decimal port 0..65535 without sign or leading zeros.
func parsePort(tok []byte) (uint16, bool) {
	if len(tok) == 0 || len(tok) > 5 || tok[0] == '0' && len(tok) > 1 {
		return 0, false
	}
	var v uint32
	for _, c := range tok {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + uint32(c-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Byte classes of v1 fields.
const (
	classDigit uint8 = 1 << iota // port
	classIPv4                    // dotted quad
	classIPv6                    // hex groups, colons, trailing dotted quad
)

var charClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case isDigit(byte(c)):
			t[c] = classDigit | classIPv4 | classIPv6
		case c == '.':
			t[c] = classIPv4 | classIPv6
		case c == ':', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
			t[c] = classIPv6
		}
	}
	return t
}()

// word returns b up to its first space or CR.
func word(b []byte) []byte {
	if k := bytes.IndexAny(b, " \r"); k >= 0 {
		return b[:k]
	}
	return b
}

// clip returns at most n bytes of b, for quoting untrusted input in errors.
func clip(b []byte, n int) []byte { return b[:min(len(b), n)] }
