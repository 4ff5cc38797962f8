package procnet

import (
	"net"
	"net/netip"
	"os"
	"slices"
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

func TestTCPSockets(t *testing.T) {
	// Lines as the kernel writes them: 127.0.0.1:8080 listening,
	// 192.168.10.100:80 established, and ::1 port 443 in TIME_WAIT.
	v4 := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 640AA8C0:0050 0B00000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
`
	v6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:01BB 00000000000000000000000001000000:C350 06 00000000:00000000 03:00000F3C 00000000     0        0 0 3 0000000000000000
`
	type sock struct {
		local string
		state int
	}
	var got []sock
	fn := func(l netip.AddrPort, st int) { got = append(got, sock{l.String(), st}) }
	if err := TCPSockets(v4, fn); err != nil {
		t.Fatal(err)
	}
	if err := TCPSockets(v6, fn); err != nil {
		t.Fatal(err)
	}
	want := []sock{{"127.0.0.1:8080", TCPListen}, {"192.168.10.100:80", TCPEstablished}, {"[::1]:443", TCPTimeWait}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := TCPSockets("   0: 0100007G:1F90 00000000:0000 0A\n", fn); err == nil {
		t.Error("a bad address parsed")
	}
}

// TestTCPSocketsLive finds a listener this test opens in this machine's
// own table.
func TestTCPSocketsLive(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := ln.Addr().(*net.TCPAddr).AddrPort()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	found := false
	if err := TCPSockets(string(b), func(l netip.AddrPort, st int) { found = found || (l == want && st == TCPListen) }); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("listener %s not in /proc/net/tcp", want)
	}
}
