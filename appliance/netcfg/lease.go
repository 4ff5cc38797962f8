package netcfg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease limits. A reply outside them is either dropped (no lease time, a
// zero lease) or clamped with a log line; see parseReply.
const (
	// maxLease caps a finite lease: a server that grants 100 years is
	// renewed yearly instead. Holding an address for less than granted is
	// always allowed.
	maxLease = 365 * 24 * time.Hour
	// infiniteLease is option 51's 0xffffffff.
	infiniteLease = 0xffffffff
)

// dhcpLease is one lease as the state machine keeps it and as it is saved
// in the state directory (JSON).
type dhcpLease struct {
	Address  netip.Prefix `json:"address"`
	Server   netip.Addr   `json:"server"` // option 54
	Router   netip.Addr   `json:"router,omitzero"`
	DNS      []netip.Addr `json:"dns,omitempty"`
	NTP      []netip.Addr `json:"ntp,omitempty"`
	Domain   string       `json:"domain,omitempty"`
	Infinite bool         `json:"infinite,omitempty"`
	Obtained time.Time    `json:"obtained"`
	T1       time.Time    `json:"t1,omitzero"`
	T2       time.Time    `json:"t2,omitzero"`
	Expiry   time.Time    `json:"expiry,omitzero"`
	Renewals int          `json:"renewals"`
}

// expired reports whether the lease has run out at now.
func (l *dhcpLease) expired(now time.Time) bool {
	return !l.Infinite && !now.Before(l.Expiry)
}

// remaining is the valid lifetime left at now (0 for an infinite lease).
func (l *dhcpLease) remaining(now time.Time) time.Duration {
	if l.Infinite {
		return 0
	}
	return l.Expiry.Sub(now)
}

// errNoLease marks a reply without a usable lease time.
var errNoLease = errors.New("no usable lease time")

// reply is a parsed DHCP reply: the fields the state machine reads.
type reply struct {
	Type   dhcpv4.MessageType
	XID    dhcpv4.TransactionID
	CHAddr []byte
	YIAddr netip.Addr
	Server netip.Addr // option 54; invalid when absent
	Lease  dhcpLease  // only for OFFER and ACK
	// Notes are the clamps applied to the times (logged by the caller).
	Notes []string
}

// parseReply reads a DHCP reply's fields and options. It never panics on
// any input (FuzzParseReply); a malformed option is an error naming it.
func parseReply(b []byte, now time.Time) (*reply, error) {
	p, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("malformed packet (%d bytes): %w", len(b), err)
	}
	if p.OpCode != dhcpv4.OpcodeBootReply {
		return nil, fmt.Errorf("op %d is not a BOOTREPLY", p.OpCode)
	}
	r := &reply{XID: p.TransactionID, CHAddr: p.ClientHWAddr}
	mt := p.Options.Get(dhcpv4.OptionDHCPMessageType)
	if len(mt) != 1 {
		return nil, fmt.Errorf("option 53 (message type): length %d, want 1", len(mt))
	}
	r.Type = dhcpv4.MessageType(mt[0])
	if sid := p.Options.Get(dhcpv4.OptionServerIdentifier); sid != nil {
		a, err := parseIP(sid, "option 54 (server identifier)")
		if err != nil {
			return nil, err
		}
		r.Server = a
	}
	if y, ok := netip.AddrFromSlice(p.YourIPAddr.To4()); ok {
		r.YIAddr = y
	}
	if r.Type != dhcpv4.MessageTypeOffer && r.Type != dhcpv4.MessageTypeAck {
		return r, nil
	}
	if !r.YIAddr.IsGlobalUnicast() {
		return nil, fmt.Errorf("yiaddr %v is not a unicast address", p.YourIPAddr)
	}
	if err := r.parseLease(p.Options, now); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reply) parseLease(o dhcpv4.Options, now time.Time) error {
	l := &r.Lease
	l.Server = r.Server
	bitsLen := classfulPrefix(r.YIAddr)
	if m := o.Get(dhcpv4.OptionSubnetMask); m != nil {
		n, err := parseMask(m)
		if err != nil {
			return err
		}
		bitsLen = n
	}
	l.Address = netip.PrefixFrom(r.YIAddr, bitsLen)
	if rt := o.Get(dhcpv4.OptionRouter); rt != nil {
		as, err := parseIPList(rt, "option 3 (router)")
		if err != nil {
			return err
		}
		l.Router = as[0]
	}
	var err error
	if b := o.Get(dhcpv4.OptionDomainNameServer); b != nil {
		if l.DNS, err = parseIPList(b, "option 6 (DNS)"); err != nil {
			return err
		}
	}
	if b := o.Get(dhcpv4.OptionNTPServers); b != nil {
		if l.NTP, err = parseIPList(b, "option 42 (NTP)"); err != nil {
			return err
		}
	}
	if b := o.Get(dhcpv4.OptionDomainName); b != nil {
		if l.Domain, err = parseDomain(b); err != nil {
			return err
		}
	}
	lt := o.Get(dhcpv4.OptionIPAddressLeaseTime)
	if lt == nil {
		return fmt.Errorf("option 51 (lease time) missing: %w", errNoLease)
	}
	secs, err := parseU32(lt, "option 51 (lease time)")
	if err != nil {
		return err
	}
	if secs == 0 {
		return fmt.Errorf("option 51 (lease time) is 0: %w", errNoLease)
	}
	l.Obtained = now
	if secs == infiniteLease {
		l.Infinite = true
		return nil
	}
	lease := time.Duration(secs) * time.Second
	if lease > maxLease {
		r.Notes = append(r.Notes, fmt.Sprintf("lease %v clamped to %v", lease, maxLease))
		lease = maxLease
	}
	t1, t2 := lease/2, lease*7/8
	if b := o.Get(dhcpv4.OptionRebindingTimeValue); b != nil {
		s, err := parseU32(b, "option 59 (T2)")
		if err != nil {
			return err
		}
		if d := time.Duration(s) * time.Second; s > 0 && d < lease {
			t2 = d
		} else {
			r.Notes = append(r.Notes, fmt.Sprintf("T2 %ds outside (0, lease %v): using %v", s, lease, t2))
		}
	}
	if b := o.Get(dhcpv4.OptionRenewTimeValue); b != nil {
		s, err := parseU32(b, "option 58 (T1)")
		if err != nil {
			return err
		}
		if d := time.Duration(s) * time.Second; s > 0 && d < t2 {
			t1 = d
		} else {
			t1 = lease / 2
			if t1 >= t2 {
				t1 = t2 / 2
			}
			r.Notes = append(r.Notes, fmt.Sprintf("T1 %ds outside (0, T2 %v): using %v", s, t2, t1))
		}
	} else if t1 >= t2 {
		t1 = t2 / 2
	}
	l.T1, l.T2, l.Expiry = now.Add(t1), now.Add(t2), now.Add(lease)
	return nil
}

func parseU32(b []byte, what string) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%s: length %d, want 4", what, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

func parseIP(b []byte, what string) (netip.Addr, error) {
	if len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("%s: length %d, want 4", what, len(b))
	}
	return netip.AddrFrom4([4]byte(b)), nil
}

// parseIPList reads a list of IPv4 addresses (options 3, 6, 42).
func parseIPList(b []byte, what string) ([]netip.Addr, error) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: length %d is not a positive multiple of 4", what, len(b))
	}
	out := make([]netip.Addr, 0, len(b)/4)
	for i := 0; i < len(b); i += 4 {
		out = append(out, netip.AddrFrom4([4]byte(b[i:i+4])))
	}
	return out, nil
}

// parseMask reads option 1 and insists on a contiguous mask.
func parseMask(b []byte) (int, error) {
	v, err := parseU32(b, "option 1 (subnet mask)")
	if err != nil {
		return 0, err
	}
	n := bits.LeadingZeros32(^v)
	if n == 0 || v<<n != 0 {
		return 0, fmt.Errorf("option 1 (subnet mask) %08x is not a contiguous mask of 1 to 32 bits", v)
	}
	return n, nil
}

// parseDomain reads option 15: printable, no spaces, at most 253 bytes
// (it goes into resolv.conf).
func parseDomain(b []byte) (string, error) {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" || len(s) > 253 {
		return "", fmt.Errorf("option 15 (domain name): length %d", len(s))
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("option 15 (domain name) has byte %#x", c)
		}
	}
	return s, nil
}

// classfulPrefix is the prefix length when a server sends no option 1.
func classfulPrefix(a netip.Addr) int {
	switch b := a.As4(); {
	case b[0] < 128:
		return 8
	case b[0] < 192:
		return 16
	default:
		return 24
	}
}
