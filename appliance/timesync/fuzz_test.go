package timesync

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// ntpPacket builds a mode-4 answer: li, stratum, root dispersion in
// seconds/65536, and the four timestamps taken from now+skew.
func ntpPacket(li, stratum byte, rootDisp uint32, ref, rx, tx time.Time) []byte {
	p := make([]byte, 48)
	p[0] = li<<6 | 4<<3 | 4
	p[1] = stratum
	p[2] = 6
	p[3] = 0xec // precision 2^-20
	binary.BigEndian.PutUint32(p[8:], rootDisp)
	copy(p[12:], "LOCL")
	binary.BigEndian.PutUint64(p[16:], ntpTime(ref))
	binary.BigEndian.PutUint64(p[32:], ntpTime(rx))
	binary.BigEndian.PutUint64(p[40:], ntpTime(tx))
	return p
}

// ntpEpoch is 1900-01-01, where NTP era 0 starts.
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

func ntpTime(t time.Time) uint64 {
	d := t.Sub(ntpEpoch)
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// answerOnce serves one request on a loopback socket with reply, the
// request's transmit timestamp copied into the origin field (the client
// checks it) when the reply is long enough to hold one.
func answerOnce(t testing.TB, reply []byte) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1024)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil || n < 48 {
			return
		}
		out := append([]byte(nil), reply...)
		if len(out) >= 32 {
			copy(out[24:32], buf[40:48])
		}
		if len(out) == 0 {
			out = []byte{0} // always answer: the client never waits out its timeout
		}
		c.WriteToUDP(out, from)
	}()
	return c.LocalAddr().String()
}

// FuzzQueryAnswer feeds arbitrary answers to the real query path (beevik's
// parsing, its Validate and ours): no panic, and whatever it accepts is a
// usable sample.
func FuzzQueryAnswer(f *testing.F) {
	now := time.Now()
	f.Add(ntpPacket(0, 2, 0x10, now.Add(-time.Second), now, now))
	f.Add(ntpPacket(3, 2, 0x10, now.Add(-time.Second), now, now))                         // unsynchronised
	f.Add(ntpPacket(0, 0, 0x10, now.Add(-time.Second), now, now))                         // kiss-o'-death
	f.Add(ntpPacket(0, 16, 0x10, now.Add(-time.Second), now, now))                        // stratum 16
	f.Add(ntpPacket(0, 2, 0xffffffff, now.Add(-time.Second), now, now))                   // root dispersion 65536s
	f.Add(ntpPacket(0, 2, 0x10, now.Add(time.Hour), now, now))                            // reference after transmit
	f.Add(ntpPacket(0, 2, 0x10, now.Add(-time.Second), now.Add(time.Second), now))        // transmit before receive
	f.Add(ntpPacket(0, 2, 0x10, now.Add(-time.Second), now, now.Add(3*time.Second))[:40]) // truncated
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, reply []byte) {
		addr := answerOnce(t, reply)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := defaultQuery(ctx, addr)
		if err != nil {
			return
		}
		if verr := s.Validate(); verr != nil {
			t.Fatalf("query accepted %+v that Validate rejects: %v", s, verr)
		}
		if s.Address != addr {
			t.Errorf("sample address %q, want %q", s.Address, addr)
		}
	})
}

func TestQueryAcceptsAGoodAnswer(t *testing.T) {
	now := time.Now()
	addr := answerOnce(t, ntpPacket(0, 2, 0x10, now.Add(-time.Second), now.Add(2*time.Second), now.Add(2*time.Second)))
	s, err := defaultQuery(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	// The answer's timestamps were taken before the query: the offset is
	// +2s less the time between building the answer and the query.
	if s.Stratum != 2 || s.Offset > 2*time.Second || s.Offset <= 0 || s.Address != addr {
		t.Errorf("sample %+v, want stratum 2, offset a bit under +2s, address %s", s, addr)
	}
}

func TestQueryRejects(t *testing.T) {
	now := time.Now()
	for name, p := range map[string][]byte{
		"leap 3":         ntpPacket(3, 2, 0x10, now.Add(-time.Second), now, now),
		"kiss-o'-death":  ntpPacket(0, 0, 0x10, now.Add(-time.Second), now, now),
		"stratum 16":     ntpPacket(0, 16, 0x10, now.Add(-time.Second), now, now),
		"root disp 64ks": ntpPacket(0, 2, 0xffffffff, now.Add(-time.Second), now, now),
		"truncated":      ntpPacket(0, 2, 0x10, now.Add(-time.Second), now, now)[:40],
		// beevik/ntp v1.6.0 panics on these (found by FuzzQueryAnswer).
		"precision -128": withByte(ntpPacket(0, 2, 0x10, now.Add(-time.Second), now, now), 3, 0x80),
		"poll -128":      withByte(ntpPacket(0, 2, 0x10, now.Add(-time.Second), now, now), 2, 0x80),
	} {
		addr := answerOnce(t, p)
		if s, err := defaultQuery(context.Background(), addr); err == nil {
			t.Errorf("%s: accepted %+v", name, s)
		}
	}
}

func withByte(p []byte, i int, b byte) []byte {
	p[i] = b
	return p
}
