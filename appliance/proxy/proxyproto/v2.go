package proxyproto

import (
	"encoding/binary"
	"net/netip"
)

const (
	v2Sig      = "\r\n\r\n\x00\r\nQUIT\n"
	v2FixedLen = 16 // signature, version/command, family/transport, length

	v2CmdLocal = 0x0
	v2CmdProxy = 0x1

	v2TCP4 = 0x11 // AF_INET, STREAM
	v2TCP6 = 0x21 // AF_INET6, STREAM
)

// v2AddrLen is the address block length of each family (high nibble):
// UNSPEC, INET, INET6, UNIX.
var v2AddrLen = [4]int{0, 12, 36, 216}

// AppendV2 appends a v2 header to b: command PROXY, TCP over IPv4 when both
// addresses are IPv4 or IPv4-mapped IPv6 (sent unmapped), over IPv6
// otherwise (an IPv4 address then sent mapped), no TLVs. If either address
// is invalid it appends command PROXY with family UNSPEC and no addresses,
// which receivers treat as local.
func AppendV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, v2Sig...)
	b = append(b, 0x20|v2CmdProxy)
	s, d, v4, ok := outAddrs(src, dst)
	switch {
	case !ok:
		return append(b, 0x00, 0, 0)
	case v4:
		s4, d4 := s.As4(), d.As4()
		b = append(b, v2TCP4, 0, 12)
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	default:
		s16, d16 := s.As16(), d.As16()
		b = append(b, v2TCP6, 0, 36)
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// parseV2 parses a v2 header; buf[0] is '\r'.
func parseV2(buf []byte) (Header, int, error) {
	if !prefixMatch(buf, v2Sig) {
		return Header{}, 0, ErrNotProxy
	}
	// Judge each fixed byte as soon as it arrives.
	var cmd, fam byte
	if len(buf) > 12 {
		if v := buf[12] >> 4; v != 2 {
			return Header{}, 0, malformed("v2: bad version %d", v)
		}
		cmd = buf[12] & 0x0f
		if cmd != v2CmdLocal && cmd != v2CmdProxy {
			return Header{}, 0, malformed("v2: bad command %#x", cmd)
		}
	}
	if len(buf) > 13 && cmd == v2CmdProxy {
		// LOCAL ignores the family; PROXY must name a defined one.
		fam = buf[13]
		if fam>>4 > 3 || fam&0x0f > 2 {
			return Header{}, 0, malformed("v2: bad family/transport 0x%02x", fam)
		}
	}
	if len(buf) < v2FixedLen {
		return Header{}, 0, ErrIncomplete
	}
	length := int(binary.BigEndian.Uint16(buf[14:16]))
	if length > MaxV2Len {
		return Header{}, 0, malformed("v2: length %d above limit %d", length, MaxV2Len)
	}
	addrLen := 0
	if cmd == v2CmdProxy {
		addrLen = v2AddrLen[fam>>4]
		if length < addrLen {
			return Header{}, 0, malformed("v2: length %d short of the %d address bytes of family 0x%02x", length, addrLen, fam)
		}
	}
	total := v2FixedLen + length
	if len(buf) < total {
		return Header{}, 0, ErrIncomplete
	}
	h := Header{Version: 2, Local: true}
	if cmd == v2CmdLocal {
		return h, total, nil
	}
	block := buf[v2FixedLen:total]
	switch fam {
	case v2TCP4:
		h.Local = false
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(block[0:4])), binary.BigEndian.Uint16(block[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(block[4:8])), binary.BigEndian.Uint16(block[10:12]))
	case v2TCP6:
		h.Local = false
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(block[0:16])), binary.BigEndian.Uint16(block[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(block[16:32])), binary.BigEndian.Uint16(block[34:36]))
	}
	// Walk the TLVs (type, 16-bit length, value) to the end of the header.
	for tlvs := block[addrLen:]; len(tlvs) > 0; {
		if len(tlvs) < 3 {
			return Header{}, 0, malformed("v2: %d stray bytes after the last TLV", len(tlvs))
		}
		n := 3 + int(binary.BigEndian.Uint16(tlvs[1:3]))
		if n > len(tlvs) {
			return Header{}, 0, malformed("v2: TLV type 0x%02x of %d bytes overruns the header by %d", tlvs[0], n, n-len(tlvs))
		}
		tlvs = tlvs[n:]
	}
	return h, total, nil
}
