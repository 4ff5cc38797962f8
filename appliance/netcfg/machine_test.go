package netcfg

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	tMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	tServer = netip.MustParseAddr("10.9.0.1")
	tAddr   = netip.MustParseAddr("10.9.0.50")
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fixedTiming makes retransmissions deterministic: 4, 8, 16, 32, 64, 64 s.
func fixedTiming() Timing {
	return Timing{Backoff: func(a int) time.Duration { return 4 * time.Second << min(a, 4) }}
}

// srv builds a server reply to the client's request q.
type srvOpt func(p *dhcpv4.DHCPv4)

func lt(secs uint32) srvOpt {
	return func(p *dhcpv4.DHCPv4) {
		p.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Duration(secs) * time.Second))
	}
}

func genericOpt(code uint8, b []byte) srvOpt {
	return func(p *dhcpv4.DHCPv4) { p.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(code), b)) }
}

func srvReply(t *testing.T, q *dhcpv4.DHCPv4, typ dhcpv4.MessageType, opts ...srvOpt) []byte {
	t.Helper()
	p, err := dhcpv4.New()
	if err != nil {
		t.Fatal(err)
	}
	p.OpCode = dhcpv4.OpcodeBootReply
	p.TransactionID = q.TransactionID
	p.ClientHWAddr = q.ClientHWAddr
	p.UpdateOption(dhcpv4.OptMessageType(typ))
	p.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(tServer.AsSlice())))
	if typ != dhcpv4.MessageTypeNak {
		p.YourIPAddr = net.IP(tAddr.AsSlice())
		p.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		p.UpdateOption(dhcpv4.OptRouter(net.IP(tServer.AsSlice())))
		p.UpdateOption(dhcpv4.OptDNS(net.IPv4(10, 9, 0, 53)))
		p.UpdateOption(dhcpv4.OptNTPServers(net.IPv4(10, 9, 0, 123)))
		p.UpdateOption(dhcpv4.OptDomainName("lab.example"))
		p.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
	}
	for _, o := range opts {
		o(p)
	}
	return p.ToBytes()
}

type harness struct {
	t   *testing.T
	m   *machine
	now time.Time
}

func newHarness(t *testing.T, saved *dhcpLease) *harness {
	h := &harness{t: t, now: t0}
	h.m = newMachine("eth0", tMAC, fixedTiming(), saved)
	return h
}

func (h *harness) step(ev event) []action {
	ev.Now = h.now
	return h.m.step(ev)
}

// advance moves the clock to the machine's deadline and fires it.
func (h *harness) fire() []action {
	h.t.Helper()
	d := h.m.deadline()
	if d.IsZero() {
		h.t.Fatalf("no deadline in %s", h.m.state)
	}
	h.now = d
	return h.step(event{Kind: evTimer})
}

func (h *harness) pkt(b []byte) []action { return h.step(event{Kind: evPacket, Data: b}) }

func sends(acts []action) []action {
	var out []action
	for _, a := range acts {
		if a.Kind == actSend {
			out = append(out, a)
		}
	}
	return out
}

func only(t *testing.T, acts []action, k actionKind) action {
	t.Helper()
	var got []action
	for _, a := range acts {
		if a.Kind == k {
			got = append(got, a)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one action of kind %d, got %d in %+v", k, len(got), acts)
	}
	return got[0]
}

func has(acts []action, k actionKind) bool {
	for _, a := range acts {
		if a.Kind == k {
			return true
		}
	}
	return false
}

func logs(acts []action) string {
	var b strings.Builder
	for _, a := range acts {
		if a.Kind == actLog {
			b.WriteString(a.Text + "\n")
		}
	}
	return b.String()
}

// bind runs DISCOVER/OFFER/REQUEST/ACK and returns the ACK's actions.
func (h *harness) bind(opts ...srvOpt) []action {
	t := h.t
	t.Helper()
	d := only(t, h.step(event{Kind: evStart}), actSend)
	if d.Msg.MessageType() != dhcpv4.MessageTypeDiscover || d.Dest.IsValid() {
		t.Fatalf("start: want broadcast DISCOVER, got %v to %v", d.Msg.MessageType(), d.Dest)
	}
	r := only(t, h.pkt(srvReply(t, d.Msg, dhcpv4.MessageTypeOffer, opts...)), actSend)
	if r.Msg.MessageType() != dhcpv4.MessageTypeRequest || r.Dest.IsValid() ||
		!r.Msg.RequestedIPAddress().Equal(net.IP(tAddr.AsSlice())) || !r.Msg.ServerIdentifier().Equal(net.IP(tServer.AsSlice())) {
		t.Fatalf("after OFFER: want broadcast REQUEST for %v to %v, got %v", tAddr, tServer, r.Msg.Summary())
	}
	acts := h.pkt(srvReply(t, r.Msg, dhcpv4.MessageTypeAck, opts...))
	if h.m.state != stBound {
		t.Fatalf("after ACK: state %s, want BOUND; %s", h.m.state, logs(acts))
	}
	return acts
}

func TestMachineDORA(t *testing.T) {
	h := newHarness(t, nil)
	acts := h.bind()
	ap := only(t, acts, actApply)
	if ap.Prev != nil || ap.Lease.Address != netip.MustParsePrefix("10.9.0.50/24") || ap.Lease.Router != tServer ||
		ap.Lease.Domain != "lab.example" || len(ap.Lease.DNS) != 1 || ap.Lease.NTP[0] != netip.MustParseAddr("10.9.0.123") {
		t.Fatalf("apply: %+v", ap.Lease)
	}
	if s := only(t, acts, actSave); s.Lease == nil {
		t.Fatal("lease not saved")
	}
	if got, want := h.m.deadline(), t0.Add(30*time.Minute); !got.Equal(want) {
		t.Fatalf("deadline %v, want T1 %v", got, want)
	}
}

func TestMachineRenewInPlace(t *testing.T) {
	h := newHarness(t, nil)
	h.bind()
	for i := 1; i <= 3; i++ {
		q := only(t, h.fire(), actSend)
		if h.m.state != stRenewing || q.Dest != tServer || !q.Msg.ClientIPAddr.Equal(net.IP(tAddr.AsSlice())) ||
			q.Msg.Options.Has(dhcpv4.OptionRequestedIPAddress) || q.Msg.Options.Has(dhcpv4.OptionServerIdentifier) {
			t.Fatalf("T1: want unicast REQUEST to %v with ciaddr, no option 50/54; got %s to %v", tServer, q.Msg.Summary(), q.Dest)
		}
		acts := h.pkt(srvReply(t, q.Msg, dhcpv4.MessageTypeAck))
		if has(acts, actRemove) {
			t.Fatalf("renewal removed the address: %+v", acts)
		}
		ap := only(t, acts, actApply)
		if ap.Prev == nil || ap.Prev.Address != ap.Lease.Address || ap.Lease.Renewals != i {
			t.Fatalf("renewal %d: apply %+v prev %+v", i, ap.Lease, ap.Prev)
		}
		if !ap.Lease.Expiry.Equal(h.now.Add(time.Hour)) {
			t.Fatalf("expiry %v, want now+1h", ap.Lease.Expiry)
		}
	}
}

func TestMachineRebindThenExpire(t *testing.T) {
	h := newHarness(t, nil)
	h.bind()
	var renews, rebinds int
	removedAt := time.Time{}
	for i := 0; i < 50 && removedAt.IsZero(); i++ {
		acts := h.fire()
		for _, a := range acts {
			switch {
			case a.Kind == actRemove:
				removedAt = h.now
			case a.Kind == actSend && h.m.state == stRenewing:
				renews++
				if a.Dest != tServer {
					t.Fatalf("RENEWING sent to %v", a.Dest)
				}
				if h.now.Before(t0.Add(30 * time.Minute)) {
					t.Fatalf("renewing before T1 at %v", h.now)
				}
			case a.Kind == actSend && h.m.state == stRebinding:
				rebinds++
				if a.Dest.IsValid() || !a.Msg.ClientIPAddr.Equal(net.IP(tAddr.AsSlice())) {
					t.Fatalf("REBINDING: want broadcast with ciaddr, got %s to %v", a.Msg.Summary(), a.Dest)
				}
				if h.now.Before(t0.Add(52*time.Minute + 30*time.Second)) {
					t.Fatalf("rebinding before T2 at %v", h.now)
				}
			case a.Kind == actSend && h.m.state == stSelecting:
				if !a.Msg.RequestedIPAddress().Equal(net.IP(tAddr.AsSlice())) {
					t.Fatalf("DISCOVER after expiry lacks Requested-IP %v: %s", tAddr, a.Msg.Summary())
				}
			}
		}
	}
	if !removedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("address removed at %v, want exactly at expiry %v", removedAt, t0.Add(time.Hour))
	}
	if renews < 2 || rebinds < 2 || h.m.state != stSelecting {
		t.Fatalf("renews %d rebinds %d state %s", renews, rebinds, h.m.state)
	}
}

func TestMachineNakWhileRenewing(t *testing.T) {
	h := newHarness(t, nil)
	h.bind()
	q := only(t, h.fire(), actSend)
	acts := h.pkt(srvReply(t, q.Msg, dhcpv4.MessageTypeNak))
	only(t, acts, actRemove)
	d := only(t, acts, actSend)
	if d.Msg.MessageType() != dhcpv4.MessageTypeDiscover || h.m.lease() != nil {
		t.Fatalf("after NAK: want DISCOVER and no lease, got %s", d.Msg.Summary())
	}
}

func TestMachineInitRebootAck(t *testing.T) {
	saved := &dhcpLease{Address: netip.MustParsePrefix("10.9.0.50/24"), Server: tServer, Obtained: t0.Add(-10 * time.Minute),
		T1: t0.Add(20 * time.Minute), T2: t0.Add(40 * time.Minute), Expiry: t0.Add(50 * time.Minute), Renewals: 7}
	h := newHarness(t, saved)
	acts := h.step(event{Kind: evStart})
	if ap := only(t, acts, actApply); ap.Lease.Address != saved.Address {
		t.Fatalf("saved lease not adopted: %+v", acts)
	}
	q := only(t, acts, actSend)
	if q.Msg.MessageType() != dhcpv4.MessageTypeRequest || q.Dest.IsValid() || q.Msg.Options.Has(dhcpv4.OptionServerIdentifier) ||
		!q.Msg.ClientIPAddr.IsUnspecified() || !q.Msg.RequestedIPAddress().Equal(net.IP(tAddr.AsSlice())) || h.m.state != stRebooting {
		t.Fatalf("INIT-REBOOT: want broadcast REQUEST, Requested-IP, no server id, ciaddr 0; got %s", q.Msg.Summary())
	}
	acts = h.pkt(srvReply(t, q.Msg, dhcpv4.MessageTypeAck))
	if has(acts, actRemove) || h.m.state != stBound || h.m.lease().Renewals != 7 {
		t.Fatalf("after ACK: %s %+v", h.m.state, acts)
	}
}

func TestMachineInitRebootNak(t *testing.T) {
	saved := &dhcpLease{Address: netip.MustParsePrefix("10.9.0.50/24"), Server: tServer,
		T1: t0.Add(time.Minute), T2: t0.Add(2 * time.Minute), Expiry: t0.Add(3 * time.Minute)}
	h := newHarness(t, saved)
	q := only(t, h.step(event{Kind: evStart}), actSend)
	acts := h.pkt(srvReply(t, q.Msg, dhcpv4.MessageTypeNak))
	only(t, acts, actRemove)
	if d := only(t, acts, actSend); d.Msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatalf("after NAK: %s", d.Msg.Summary())
	}
}

func TestMachineInitRebootSilentKeepsLease(t *testing.T) {
	saved := &dhcpLease{Address: netip.MustParsePrefix("10.9.0.50/24"), Server: tServer,
		T1: t0.Add(time.Hour), T2: t0.Add(2 * time.Hour), Expiry: t0.Add(3 * time.Hour)}
	h := newHarness(t, saved)
	h.step(event{Kind: evStart})
	h.fire()
	h.fire()
	acts := h.fire() // third attempt timed out
	if has(acts, actRemove) || h.m.state != stBound || !h.m.deadline().Equal(saved.T1) {
		t.Fatalf("no answer: want BOUND on the saved lease until T1, got %s deadline %v", h.m.state, h.m.deadline())
	}
}

func TestMachineExpiredSavedLease(t *testing.T) {
	saved := &dhcpLease{Address: netip.MustParsePrefix("10.9.0.50/24"), Server: tServer, Expiry: t0.Add(-time.Second)}
	h := newHarness(t, saved)
	acts := h.step(event{Kind: evStart})
	if has(acts, actApply) {
		t.Fatal("expired lease applied")
	}
	if d := only(t, acts, actSend); d.Msg.MessageType() != dhcpv4.MessageTypeDiscover || !d.Msg.RequestedIPAddress().Equal(net.IP(tAddr.AsSlice())) {
		t.Fatalf("want DISCOVER with Requested-IP, got %s", d.Msg.Summary())
	}
}

func TestMachineLinkFlap(t *testing.T) {
	h := newHarness(t, nil)
	h.bind()
	h.now = h.now.Add(time.Minute)
	if acts := h.step(event{Kind: evLinkDown}); has(acts, actSend) || has(acts, actRemove) {
		t.Fatalf("link down: %+v", acts)
	}
	if d := h.m.deadline(); !d.Equal(t0.Add(time.Hour)) {
		t.Fatalf("link down: deadline %v, want only the expiry", d)
	}
	h.now = h.now.Add(time.Minute)
	q := only(t, h.step(event{Kind: evLinkUp}), actSend)
	if h.m.state != stRebooting || q.Msg.Options.Has(dhcpv4.OptionServerIdentifier) || !q.Msg.RequestedIPAddress().Equal(net.IP(tAddr.AsSlice())) {
		t.Fatalf("link up: want INIT-REBOOT REQUEST, got %s in %s", q.Msg.Summary(), h.m.state)
	}
	acts := h.pkt(srvReply(t, q.Msg, dhcpv4.MessageTypeAck))
	if has(acts, actRemove) || h.m.state != stBound {
		t.Fatalf("re-confirm: %s %+v", h.m.state, acts)
	}
}

func TestMachineLinkDownUntilExpiry(t *testing.T) {
	h := newHarness(t, nil)
	h.bind()
	h.step(event{Kind: evLinkDown})
	acts := h.fire()
	if only(t, acts, actRemove); has(acts, actSend) || !h.now.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expiry with link down at %v: %+v", h.now, acts)
	}
	if d := only(t, h.step(event{Kind: evLinkUp}), actSend); d.Msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatalf("link up without lease: %s", d.Msg.Summary())
	}
}

func TestMachineRetransmitBackoff(t *testing.T) {
	h := newHarness(t, nil)
	h.step(event{Kind: evStart})
	var gaps []time.Duration
	var xids = map[dhcpv4.TransactionID]bool{}
	for range 6 {
		prev := h.now
		d := only(t, h.fire(), actSend)
		gaps = append(gaps, h.now.Sub(prev))
		xids[d.Msg.TransactionID] = true
	}
	want := []time.Duration{4, 8, 16, 32, 64, 64}
	for i := range want {
		if gaps[i] != want[i]*time.Second {
			t.Fatalf("gaps %v, want %v s", gaps, want)
		}
	}
	if len(xids) != 1 {
		t.Fatalf("retransmissions changed the xid: %v", xids)
	}
}

func TestRFCBackoffRange(t *testing.T) {
	for a := range 8 {
		base := 4 * time.Second << min(a, 4)
		for range 100 {
			if d := rfcBackoff(a); d < base-time.Second || d > base+time.Second {
				t.Fatalf("attempt %d: %v outside %v±1s", a, d, base)
			}
		}
	}
}

func TestMachineNakingServerBacksOff(t *testing.T) {
	h := newHarness(t, nil)
	d := only(t, h.step(event{Kind: evStart}), actSend)
	for i := range 4 {
		r := only(t, h.pkt(srvReply(t, d.Msg, dhcpv4.MessageTypeOffer)), actSend)
		acts := h.pkt(srvReply(t, r.Msg, dhcpv4.MessageTypeNak))
		if i == 0 {
			d = only(t, acts, actSend) // first NAK: discover at once
			continue
		}
		if has(acts, actSend) {
			t.Fatalf("NAK %d: discovered again at once", i+1)
		}
		start := h.now
		d = only(t, h.fire(), actSend)
		if gap := h.now.Sub(start); gap < 4*time.Second {
			t.Fatalf("NAK %d: discover after %v", i+1, gap)
		}
	}
}

func TestMachineDropsBadInput(t *testing.T) {
	h := newHarness(t, nil)
	d := only(t, h.step(event{Kind: evStart}), actSend)
	good := srvReply(t, d.Msg, dhcpv4.MessageTypeOffer)
	other := dhcpv4.DHCPv4{}
	_ = other
	wrongXID := append([]byte(nil), good...)
	wrongXID[4] ^= 0xff
	otherMAC := append([]byte(nil), good...)
	otherMAC[28+5] ^= 0xff
	zero := srvReply(t, d.Msg, dhcpv4.MessageTypeOffer, lt(0))
	noSID, _ := dhcpv4.FromBytes(good)
	noSID.Options.Del(dhcpv4.OptionServerIdentifier)
	for name, b := range map[string][]byte{
		"truncated":      good[:100],
		"empty":          nil,
		"wrong xid":      wrongXID,
		"other chaddr":   otherMAC,
		"lease 0":        zero,
		"no server id":   noSID.ToBytes(),
		"bad mask":       srvReply(t, d.Msg, dhcpv4.MessageTypeOffer, genericOpt(1, []byte{255, 0, 255, 0})),
		"short router":   srvReply(t, d.Msg, dhcpv4.MessageTypeOffer, genericOpt(3, []byte{10, 9, 0})),
		"domain control": srvReply(t, d.Msg, dhcpv4.MessageTypeOffer, genericOpt(15, []byte("a\nnameserver 6.6.6.6"))),
		"ack in select":  srvReply(t, d.Msg, dhcpv4.MessageTypeAck),
	} {
		acts := h.pkt(b)
		if has(acts, actSend) || has(acts, actApply) || h.m.state != stSelecting {
			t.Fatalf("%s: not dropped: %+v state %s", name, acts, h.m.state)
		}
		if !has(acts, actLog) {
			t.Fatalf("%s: dropped without a log line", name)
		}
	}
	// The good offer still works afterwards.
	if r := only(t, h.pkt(good), actSend); r.Msg.MessageType() != dhcpv4.MessageTypeRequest {
		t.Fatal("good offer not taken after bad input")
	}
}

func TestParseAbsurdTimes(t *testing.T) {
	q := &dhcpv4.DHCPv4{ClientHWAddr: tMAC}
	for _, c := range []struct {
		name           string
		opts           []srvOpt
		t1, t2, expiry time.Duration
		infinite, note bool
	}{
		{name: "1 s", opts: []srvOpt{lt(1)}, t1: 500 * time.Millisecond, t2: 875 * time.Millisecond, expiry: time.Second},
		{name: "10 years clamped", opts: []srvOpt{lt(10 * 365 * 86400)}, t1: maxLease / 2, t2: maxLease * 7 / 8, expiry: maxLease, note: true},
		{name: "infinite", opts: []srvOpt{lt(infiniteLease)}, infinite: true},
		{name: "T1>T2>lease", opts: []srvOpt{lt(100), genericOpt(58, []byte{0, 0, 1, 0}), genericOpt(59, []byte{0, 0, 0, 200})},
			t1: 50 * time.Second, t2: 87500 * time.Millisecond, expiry: 100 * time.Second, note: true},
		{name: "T1 0", opts: []srvOpt{lt(100), genericOpt(58, []byte{0, 0, 0, 0})}, t1: 50 * time.Second, t2: 87500 * time.Millisecond, expiry: 100 * time.Second, note: true},
		{name: "T1 T2 given", opts: []srvOpt{lt(120), genericOpt(58, []byte{0, 0, 0, 1}), genericOpt(59, []byte{0, 0, 0, 2})}, t1: time.Second, t2: 2 * time.Second, expiry: 120 * time.Second},
	} {
		r, err := parseReply(srvReply(t, q, dhcpv4.MessageTypeAck, c.opts...), t0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		l := r.Lease
		if l.Infinite != c.infinite || (!c.infinite && (l.T1.Sub(t0) != c.t1 || l.T2.Sub(t0) != c.t2 || l.Expiry.Sub(t0) != c.expiry)) {
			t.Errorf("%s: T1 %v T2 %v expiry %v infinite %v", c.name, l.T1.Sub(t0), l.T2.Sub(t0), l.Expiry.Sub(t0), l.Infinite)
		}
		if (len(r.Notes) > 0) != c.note {
			t.Errorf("%s: notes %q", c.name, r.Notes)
		}
	}
}

func TestMachineRelease(t *testing.T) {
	h := newHarness(t, nil)
	h.bind()
	acts := h.step(event{Kind: evRelease})
	s := only(t, acts, actSend)
	if s.Msg.MessageType() != dhcpv4.MessageTypeRelease || s.Dest != tServer || !s.Msg.ClientIPAddr.Equal(net.IP(tAddr.AsSlice())) {
		t.Fatalf("release: %s to %v", s.Msg.Summary(), s.Dest)
	}
	only(t, acts, actRemove)
	if sv := only(t, acts, actSave); sv.Lease != nil {
		t.Fatal("lease file kept after release")
	}
	if !h.m.deadline().IsZero() {
		t.Fatal("timer after release")
	}
}

func TestMachineRenewAfterKnob(t *testing.T) {
	h := newHarness(t, nil)
	h.m.timing.RenewAfter = 100 * time.Millisecond
	h.bind()
	if d := h.m.deadline().Sub(h.now); d != 100*time.Millisecond {
		t.Fatalf("renew after %v", d)
	}
}

func TestMachineStartWithLinkDown(t *testing.T) {
	h := newHarness(t, nil)
	h.step(event{Kind: evLinkDown})
	if acts := h.step(event{Kind: evStart}); has(acts, actSend) || h.m.state != stLinkDown || !h.m.deadline().IsZero() {
		t.Fatalf("start with the link down: %s %+v", h.m.state, acts)
	}
	if d := only(t, h.step(event{Kind: evLinkUp}), actSend); d.Msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatalf("link up: %s", d.Msg.Summary())
	}
}
