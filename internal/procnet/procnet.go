// Package procnet reads the kernel's network counters and socket tables
// from /proc: what the benchmarks (netlab's rows, the health checks')
// count connections by, and what a BGP drain counts open ones by.
package procnet

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TCPOpens finds ActiveOpens and PassiveOpens in /proc/net/snmp: a
// "Tcp:" line of names followed by a "Tcp:" line of values.
func TCPOpens(snmp string) (active, passive int64, err error) {
	var names []string
	for line := range strings.Lines(snmp) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if len(f) != len(names) {
			return 0, 0, fmt.Errorf("snmp: Tcp: %d names, %d values", len(names), len(f))
		}
		found := 0
		for i, n := range names {
			var p *int64
			switch n {
			case "ActiveOpens":
				p = &active
			case "PassiveOpens":
				p = &passive
			default:
				continue
			}
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("snmp: Tcp: %s %q: %w", n, f[i], err)
			}
			*p = v
			found++
		}
		if found != 2 {
			return 0, 0, fmt.Errorf("snmp: no ActiveOpens and PassiveOpens in the Tcp: lines")
		}
		return active, passive, nil
	}
	return 0, 0, fmt.Errorf("snmp: no Tcp: names and values")
}

// TCP socket states as /proc/net/tcp numbers them (include/net/tcp_states.h).
const (
	TCPEstablished = 0x01
	TCPTimeWait    = 0x06
	TCPListen      = 0x0A
)

// TCPSockets calls fn with the local address and state of each socket
// listed in table, the text of /proc/net/tcp or /proc/net/tcp6 (the
// kernel writes each address as 32-bit words in its own byte order:
// little-endian on the machines halb runs on).
func TCPSockets(table string, fn func(local netip.AddrPort, state int)) error {
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "sl" {
			continue
		}
		host, port, ok := strings.Cut(f[1], ":")
		p, err1 := strconv.ParseUint(port, 16, 16)
		st, err2 := strconv.ParseUint(f[3], 16, 8)
		a, err3 := procAddr(host)
		if !ok || err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("tcp table: cannot parse %q", strings.TrimSpace(line))
		}
		fn(netip.AddrPortFrom(a, uint16(p)), int(st))
	}
	return nil
}

// procAddr decodes an address of /proc/net/tcp{,6}: 8 or 32 hex digits,
// each 32-bit word little-endian.
func procAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap(), nil
}
