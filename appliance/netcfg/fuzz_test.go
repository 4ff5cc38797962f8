package netcfg

import (
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzParseReply feeds arbitrary bytes to the reply parser and to the state
// machine in each state that reads packets: nothing may panic, and an
// accepted lease must be self-consistent. Seeds: testdata/fuzz/FuzzParseReply.
func FuzzParseReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReply(b, t0)
		if err == nil && (r.Type == dhcpv4.MessageTypeAck || r.Type == dhcpv4.MessageTypeOffer) {
			l := r.Lease
			if !l.Address.IsValid() || l.Address.Bits() < 1 || l.Address.Bits() > 32 {
				t.Fatalf("accepted lease with address %v", l.Address)
			}
			if !l.Infinite && !(t0.Before(l.T1) && l.T1.Before(l.T2) && l.T2.Before(l.Expiry) || l.Expiry.Sub(t0) < 2*time.Second) {
				t.Fatalf("accepted lease with T1 %v T2 %v expiry %v", l.T1, l.T2, l.Expiry)
			}
			if l.Expiry.Sub(t0) > maxLease {
				t.Fatalf("lease %v over the cap", l.Expiry.Sub(t0))
			}
		}
		// The machine in SELECTING, then BOUND/RENEWING with the same bytes
		// given the xid it waits for.
		m := newMachine("fz0", tMAC, fixedTiming(), nil)
		m.step(event{Kind: evStart, Now: t0})
		if len(b) >= 8 {
			copy(b[4:8], m.xid[:])
		}
		m.step(event{Kind: evPacket, Now: t0, Data: b})
		m.step(event{Kind: evTimer, Now: m.deadline()})
		m.step(event{Kind: evPacket, Now: m.deadline(), Data: b})
	})
}
