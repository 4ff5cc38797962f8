// Package procnet reads the kernel's network counters from /proc: what the
// benchmarks (netlab's rows, the health checks') count connections by.
package procnet

import (
	"fmt"
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
