package procnet

import (
	"os"
	"testing"
)

const snmpSample = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1234
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 15341 9027 3 12 4 1000 2000 0 0 7 0
Udp: InDatagrams NoPorts
Udp: 5 6
`

func TestParseTCPOpens(t *testing.T) {
	a, p, err := TCPOpens(snmpSample)
	if err != nil || a != 15341 || p != 9027 {
		t.Errorf("TCPOpens = %d, %d, %v; want 15341, 9027", a, p, err)
	}
	for name, bad := range map[string]string{
		"no tcp":       "Ip: a\nIp: 1\n",
		"names only":   "Tcp: ActiveOpens PassiveOpens\n",
		"short values": "Tcp: ActiveOpens PassiveOpens\nTcp: 1\n",
		"no opens":     "Tcp: RtoMin MaxConn\nTcp: 1 2\n",
		"not a number": "Tcp: ActiveOpens PassiveOpens\nTcp: x 2\n",
	} {
		if _, _, err := TCPOpens(bad); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// This namespace's own, read the way the bench reads a host's.
	b, err := os.ReadFile("/proc/thread-self/net/snmp")
	if err != nil {
		t.Skip(err)
	}
	if _, _, err := TCPOpens(string(b)); err != nil {
		t.Errorf("this machine's snmp: %v", err)
	}
}
