package vrrp

// The VRRP advertisement codec: RFC 5798 §5 (VRRPv3, IPv4 and IPv6) and
// RFC 3768 §5 (VRRPv2, IPv4 only). The codec sees the VRRP message only; the
// IP header's source and destination come in as arguments because the v3
// checksum covers a pseudo-header built from them and because they decide
// the address family of the addresses carried.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |  v3
//	|   Auth Type   |   Adver Int   |          Checksum             |  v2
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Count IPvX addresses (4 or 16 bytes each) ...          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Authentication Data (8 bytes) ...                    |  v2
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The codec was checked against adverts captured from keepalived 2.2.7
// (packet_test.go): v3 over IPv4 includes the IPv4 pseudo-header in the
// checksum, exactly as over IPv6.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

const (
	// ProtocolNumber is VRRP's IP protocol number (IPv4 protocol, IPv6 next header).
	ProtocolNumber = 112
	// TypeAdvertisement is the only VRRP message type.
	TypeAdvertisement = 1
)

var (
	// MulticastIPv4 is the VRRP group for IPv4 (RFC 5798 §5.1.1.2).
	MulticastIPv4 = netip.MustParseAddr("224.0.0.18")
	// MulticastIPv6 is the VRRP group for IPv6 (RFC 5798 §5.1.2.2).
	MulticastIPv6 = netip.MustParseAddr("ff02::12")
)

// Parse and Marshal errors. Parse wraps them with detail; DropReason maps
// each to a short stable label for drop counters.
var (
	// ErrShort: fewer than 8 bytes, or fewer than the address count implies.
	ErrShort = errors.New("short VRRP packet")
	// ErrVersion: a version other than 2 or 3, or version 2 over IPv6.
	ErrVersion = errors.New("unsupported VRRP version")
	// ErrType: a message type other than ADVERTISEMENT.
	ErrType = errors.New("unknown VRRP message type")
	// ErrLength: bytes beyond what the address count implies.
	ErrLength = errors.New("VRRP length does not match address count")
	// ErrAddrCount: no addresses (or, to Marshal, more than 255).
	ErrAddrCount = errors.New("bad VRRP address count")
	// ErrChecksum: the checksum does not match the message (and, for v3,
	// the IP pseudo-header).
	ErrChecksum = errors.New("bad VRRP checksum")
	// ErrFamily: source and destination (or, to Marshal, an advertised
	// address) of different address families, or an invalid address.
	ErrFamily = errors.New("VRRP address family mismatch")
	// ErrInterval: an advertisement interval of 0 (or, to Marshal, one out
	// of range or not a multiple of the version's resolution).
	ErrInterval = errors.New("bad VRRP advertisement interval")
	// ErrAuth: a v2 authentication type other than 0, 1 or 2 (or, to
	// Marshal, authentication set on a v3 packet).
	ErrAuth = errors.New("bad VRRP authentication")
)

var dropReasons = [...]struct {
	err   error
	label string
}{
	{ErrShort, "short"},
	{ErrVersion, "version"},
	{ErrType, "type"},
	{ErrLength, "length"},
	{ErrAddrCount, "addr_count"},
	{ErrChecksum, "checksum"},
	{ErrFamily, "family"},
	{ErrInterval, "interval"},
	{ErrAuth, "auth"},
}

// DropReason is the drop-counter label for an error from Parse: "short",
// "version", "type", "length", "addr_count", "checksum", "family",
// "interval" or "auth"; "" for nil and "other" for any other error.
func DropReason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range dropReasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}

const (
	headerLen = 8 // version/type, VRID, priority, count, interval, checksum
	authLen   = 8 // v2 authentication data

	// v3 Max Advertise Interval: 12 bits of centiseconds.
	v3IntervalUnit = 10 * time.Millisecond
	v3IntervalMax  = 0xfff * v3IntervalUnit // 40.95s
	// v2 Advertisement Interval: 8 bits of seconds.
	v2IntervalUnit = time.Second
	v2IntervalMax  = 0xff * v2IntervalUnit

	maxAuthType = 2 // 0 none, 1 simple text password, 2 IP AH (RFC 2338)
)

// Packet is one VRRP advertisement.
type Packet struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8 // 0: the master is leaving; 255: the address owner
	// MaxAdvertInterval is v3's interval (10ms resolution, max 40.95s); for
	// v2 it is the advertisement interval in whole seconds (1..255s).
	MaxAdvertInterval time.Duration
	AuthType          uint8        // v2 only (0 none, 1 simple text; 2 IP AH is deprecated)
	AuthData          [8]byte      // v2 only
	Addrs             []netip.Addr // all of one family
}

// String is a one-line summary for logs.
func (p *Packet) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "VRRPv%d vrid %d prio %d int %v", p.Version, p.VRID, p.Priority, p.MaxAdvertInterval)
	if p.Version == 2 && p.AuthType != 0 {
		fmt.Fprintf(&sb, " auth %d", p.AuthType)
	}
	fmt.Fprintf(&sb, " %v", p.Addrs)
	return sb.String()
}

// Marshal encodes p as sent from src to dst (the IP header's addresses),
// after checking that it can be encoded: version 2 or 3, v2 only over IPv4,
// 1..255 addresses all of src's family, src and dst of one family, an
// interval within range at the version's resolution, and authentication
// only on v2. The checksum is filled in.
func (p *Packet) Marshal(src, dst netip.Addr) ([]byte, error) {
	n, err := p.check(src, dst)
	if err != nil {
		return nil, err
	}
	return p.appendTo(make([]byte, 0, n), src, dst), nil
}

// AppendMarshal is Marshal appending to b; it does not allocate when b has
// room. On error it returns b unchanged.
func (p *Packet) AppendMarshal(b []byte, src, dst netip.Addr) ([]byte, error) {
	if _, err := p.check(src, dst); err != nil {
		return b, err
	}
	return p.appendTo(b, src, dst), nil
}

// check validates p for sending from src to dst and returns its encoded length.
func (p *Packet) check(src, dst netip.Addr) (int, error) {
	is6, err := families(src, dst)
	if err != nil {
		return 0, err
	}
	switch {
	case p.Version != 2 && p.Version != 3:
		return 0, fmt.Errorf("%w: %d, want 2 or 3", ErrVersion, p.Version)
	case p.Version == 2 && is6:
		return 0, fmt.Errorf("%w: VRRPv2 is IPv4 only", ErrVersion)
	case len(p.Addrs) == 0 || len(p.Addrs) > 255:
		return 0, fmt.Errorf("%w: %d addresses, want 1..255", ErrAddrCount, len(p.Addrs))
	}
	for i, a := range p.Addrs {
		if !a.IsValid() || a.Is6() != is6 {
			return 0, fmt.Errorf("%w: address %d (%v) is not of the family of source %v", ErrFamily, i, a, src)
		}
	}
	d := p.MaxAdvertInterval
	if p.Version == 3 {
		if d < v3IntervalUnit || d > v3IntervalMax || d%v3IntervalUnit != 0 {
			return 0, fmt.Errorf("%w: %v, VRRPv3 wants 10ms..40.95s in steps of 10ms", ErrInterval, d)
		}
		if p.AuthType != 0 || p.AuthData != [authLen]byte{} {
			return 0, fmt.Errorf("%w: VRRPv3 has no authentication", ErrAuth)
		}
		return headerLen + len(p.Addrs)*addrLen(is6), nil
	}
	if d < v2IntervalUnit || d > v2IntervalMax || d%v2IntervalUnit != 0 {
		return 0, fmt.Errorf("%w: %v, VRRPv2 wants 1s..255s in whole seconds", ErrInterval, d)
	}
	if p.AuthType > maxAuthType {
		return 0, fmt.Errorf("%w: type %d, want 0..%d", ErrAuth, p.AuthType, maxAuthType)
	}
	return headerLen + len(p.Addrs)*addrLen(is6) + authLen, nil
}

// appendTo encodes a checked p onto b.
func (p *Packet) appendTo(b []byte, src, dst netip.Addr) []byte {
	start := len(b)
	b = append(b, byte(p.Version)<<4|TypeAdvertisement, p.VRID, p.Priority, byte(len(p.Addrs)))
	if p.Version == 3 {
		b = binary.BigEndian.AppendUint16(b, uint16(p.MaxAdvertInterval/v3IntervalUnit)) // reserved bits 0
	} else {
		b = append(b, p.AuthType, byte(p.MaxAdvertInterval/v2IntervalUnit))
	}
	b = append(b, 0, 0) // checksum, below
	for _, a := range p.Addrs {
		if a.Is6() {
			a16 := a.As16()
			b = append(b, a16[:]...)
		} else {
			a4 := a.As4()
			b = append(b, a4[:]...)
		}
	}
	if p.Version == 2 {
		b = append(b, p.AuthData[:]...)
	}
	msg := b[start:]
	binary.BigEndian.PutUint16(msg[6:8], checksum(p.Version, msg, src, dst))
	return b
}

// Parse decodes the VRRP message b (the IP payload, without the IP header)
// received from src for dst, the IP header's addresses: their family is the
// family of the addresses carried, and for v3 they make the checksum's
// pseudo-header. The 4 reserved bits of v3 are ignored. The checksum must be
// exactly what Marshal would write (the one's complement sum's alternative
// zero, 0xffff for 0x0000, is refused; RFC 1071 senders never produce it).
// Parse allocates only the Packet and its count addresses, after checking
// that b holds them.
func Parse(b []byte, src, dst netip.Addr) (*Packet, error) {
	is6, err := families(src, dst)
	if err != nil {
		return nil, err
	}
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, the header is %d", ErrShort, len(b), headerLen)
	}
	version := int(b[0] >> 4)
	switch {
	case version != 2 && version != 3:
		return nil, fmt.Errorf("%w: %d", ErrVersion, version)
	case version == 2 && is6:
		return nil, fmt.Errorf("%w: VRRPv2 over IPv6", ErrVersion)
	}
	if typ := b[0] & 0x0f; typ != TypeAdvertisement {
		return nil, fmt.Errorf("%w: %d", ErrType, typ)
	}
	count := int(b[3])
	if count == 0 {
		return nil, fmt.Errorf("%w: 0 addresses", ErrAddrCount)
	}
	alen := addrLen(is6)
	want := headerLen + count*alen
	if version == 2 {
		want += authLen
	}
	if len(b) < want {
		return nil, fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrShort, len(b), count, want)
	}
	if len(b) > want {
		return nil, fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrLength, len(b), count, want)
	}
	if got, sum := binary.BigEndian.Uint16(b[6:8]), checksum(version, b, src, dst); got != sum {
		return nil, fmt.Errorf("%w: %#04x, want %#04x", ErrChecksum, got, sum)
	}

	p := &Packet{Version: version, VRID: b[1], Priority: b[2]}
	if version == 3 {
		p.MaxAdvertInterval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * v3IntervalUnit
	} else {
		p.AuthType = b[4]
		p.MaxAdvertInterval = time.Duration(b[5]) * v2IntervalUnit
		copy(p.AuthData[:], b[want-authLen:])
	}
	if p.MaxAdvertInterval == 0 {
		return nil, fmt.Errorf("%w: 0", ErrInterval)
	}
	if p.AuthType > maxAuthType {
		return nil, fmt.Errorf("%w: type %d", ErrAuth, p.AuthType)
	}
	p.Addrs = make([]netip.Addr, count)
	for i, off := 0, headerLen; i < count; i, off = i+1, off+alen {
		p.Addrs[i], _ = netip.AddrFromSlice(b[off : off+alen])
	}
	return p, nil
}

// families checks that src and dst are valid and of one family and reports
// whether it is IPv6.
func families(src, dst netip.Addr) (is6 bool, err error) {
	if !src.IsValid() || !dst.IsValid() || src.Is6() != dst.Is6() {
		return false, fmt.Errorf("%w: source %v, destination %v", ErrFamily, src, dst)
	}
	return src.Is6(), nil
}

func addrLen(is6 bool) int {
	if is6 {
		return 16
	}
	return 4
}

// checksum computes the VRRP checksum of msg, treating its checksum field
// (bytes 6-7) as zero: the one's complement of the one's complement sum of
// the message and, for v3, the pseudo-header of RFC 8200 §8.1 (IPv6) or its
// IPv4 counterpart (source, destination, zero, protocol 112, length), as
// keepalived sends it.
func checksum(version int, msg []byte, src, dst netip.Addr) uint16 {
	var sum uint64
	if version == 3 {
		if src.Is6() {
			s, d := src.As16(), dst.As16()
			sum = sum16(sum16(0, s[:]), d[:])
			sum += uint64(len(msg)>>16) + uint64(len(msg)&0xffff) + ProtocolNumber
		} else {
			s, d := src.As4(), dst.As4()
			sum = sum16(sum16(0, s[:]), d[:])
			sum += ProtocolNumber + uint64(len(msg))
		}
	}
	sum = sum16(sum16(sum, msg[:6]), msg[8:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// sum16 adds b to sum as big-endian 16-bit words, an odd last byte padded
// with zero.
func sum16(sum uint64, b []byte) uint64 {
	for len(b) >= 2 {
		sum += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}
