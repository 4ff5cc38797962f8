package vrrp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestConnReceivesItsVRID: an instance's socket receives the adverts of
// its VRID and none of another VRID on the same link, over IPv4 and IPv6.
// b opens a socket for VRID 1 and one for VRID 2; a sends an advert of
// VRID 2, then one of VRID 1: each socket's first packet is its own.
func TestConnReceivesItsVRID(t *testing.T) {
	x := newNifLab(t)
	for _, fam := range []struct {
		v6       bool
		src, dst netip.Addr
	}{
		{false, netip.MustParseAddr("10.9.0.1"), MulticastIPv4},
		{true, netip.MustParseAddr("fd00:9::1"), MulticastIPv6},
	} {
		t.Run(fmt.Sprintf("v6=%v", fam.v6), func(t *testing.T) {
			var recv [3]*rawConn // by VRID 1, 2
			for vrid := 1; vrid <= 2; vrid++ {
				if err := x.b.Do(func() (err error) {
					recv[vrid], err = openConn("eth0", fam.v6, netip.Addr{}, vrid)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				defer recv[vrid].Close()
			}
			var send *rawConn
			if err := x.a.Do(func() (err error) {
				send, err = openConn("eth0", fam.v6, fam.src, 9)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer send.Close()
			for _, vrid := range []int{2, 1} {
				p := Packet{Version: 3, VRID: uint8(vrid), Priority: 100, MaxAdvertInterval: time.Second,
					Addrs: []netip.Addr{fam.src}}
				b, err := p.Marshal(fam.src, fam.dst)
				if err != nil {
					t.Fatal(err)
				}
				if err := send.Send(b, fam.dst); err != nil {
					t.Fatal(err)
				}
			}
			for vrid := 1; vrid <= 2; vrid++ {
				recv[vrid].c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 1500)
				n, src, dst, _, err := recv[vrid].Recv(buf)
				if err != nil {
					t.Fatalf("socket of VRID %d: %v", vrid, err)
				}
				p, err := Parse(buf[:n], src, dst)
				if err != nil {
					t.Fatalf("socket of VRID %d: %v", vrid, err)
				}
				if int(p.VRID) != vrid {
					t.Errorf("socket of VRID %d received first an advert of VRID %d", vrid, p.VRID)
				}
			}
		})
	}
}
