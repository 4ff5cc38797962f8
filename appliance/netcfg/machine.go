package netcfg

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// The RFC 2131 client states (figure 5), as Lease.State shows them.
const (
	stInit       = "INIT"
	stSelecting  = "SELECTING"
	stRequesting = "REQUESTING"
	stBound      = "BOUND"
	stRenewing   = "RENEWING"
	stRebinding  = "REBINDING"
	stInitReboot = "INIT-REBOOT"
	stRebooting  = "REBOOTING"
	stReleased   = "RELEASED" // after RELEASE: the client stopped
	stLinkDown   = "LINK-DOWN"
)

// Timing is the state machine's retransmission policy. The zero value is
// RFC 2131's: section 4.1's 4 s doubling to 64 s, randomised by ±1 s, for
// DISCOVER and REQUEST, and section 4.4.5's half of the time left until T2
// (RENEWING) or expiry (REBINDING), but at least MinRenewRetry.
type Timing struct {
	// Backoff is the wait after the attempt'th (0-based) transmission in
	// SELECTING, REQUESTING and REBOOTING. Default: RFC 2131 4.1.
	Backoff func(attempt int) time.Duration
	// MinRenewRetry is the shortest wait between retransmissions in
	// RENEWING and REBINDING. Default: 60 s (RFC 2131 4.4.5), never more
	// than the time left.
	MinRenewRetry time.Duration
	// MaxRenewRetry, when set, caps that wait: a server back after an
	// outage is found sooner than RFC 2131's half of the time left.
	// Default: no cap.
	MaxRenewRetry time.Duration
	// RenewAfter, when set, replaces T1 after every ACK: a test knob to
	// renew many times under a server's minimum lease. Zero: T1 from the
	// lease.
	RenewAfter time.Duration
}

func rfcBackoff(attempt int) time.Duration {
	d := 4 * time.Second << min(attempt, 4)
	return d + time.Duration(rand.Int64N(int64(2*time.Second))) - time.Second
}

// Retries before giving up an exchange: REQUESTING goes back to INIT,
// REBOOTING keeps the saved lease (RFC 2131 3.2) or goes to INIT.
const (
	requestTries = 4
	rebootTries  = 3
)

type eventKind int

const (
	evStart    eventKind = iota
	evTimer              // the deadline passed
	evPacket             // a packet arrived (Data)
	evLinkUp             // carrier came back
	evLinkDown           // carrier lost
	evRelease            // orderly stop giving the lease back
)

type event struct {
	Kind eventKind
	Now  time.Time
	Data []byte
}

type actionKind int

const (
	actSend   actionKind = iota // send Msg, to Dest (unicast) or broadcast
	actApply                    // put Lease in force; Prev was in force before (nil: none)
	actRemove                   // take Lease's address and route away
	actSave                     // save Lease (nil: delete the lease file)
	actLog                      // log Msg at Level
)

type action struct {
	Kind  actionKind
	Msg   *dhcpv4.DHCPv4
	Dest  netip.Addr // unicast destination; invalid = broadcast
	Lease *dhcpLease
	Prev  *dhcpLease
	Level slog.Level
	Text  string
}

// machine is the DHCP client's lease state machine: events in, actions
// out, time passed in. It owns no socket and no timer: its driver
// (dhcpClient) sends what it says and calls step(evTimer) at deadline().
type machine struct {
	ifname string
	mac    net.HardwareAddr
	timing Timing
	newXID func() dhcpv4.TransactionID

	state    string
	xid      dhcpv4.TransactionID
	started  time.Time // when the current exchange began (secs field)
	attempt  int
	next     time.Time  // retransmission or state timer; zero = none
	cur      *dhcpLease // the lease in force (applied); nil = none
	offer    *reply     // the offer being requested
	old      netip.Addr // the last address held, for Requested-IP in DISCOVER
	naks     int        // NAKs in a row, to back off a NAKing server
	linkDown bool

	out []action
}

func newMachine(ifname string, mac net.HardwareAddr, t Timing, saved *dhcpLease) *machine {
	if t.Backoff == nil {
		t.Backoff = rfcBackoff
	}
	if t.MinRenewRetry == 0 {
		t.MinRenewRetry = 60 * time.Second
	}
	m := &machine{ifname: ifname, mac: mac, timing: t, state: stInit, cur: saved,
		newXID: func() dhcpv4.TransactionID {
			var x dhcpv4.TransactionID
			v := rand.Uint32()
			x[0], x[1], x[2], x[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
			return x
		}}
	if saved != nil {
		m.old = saved.Address.Addr()
	}
	return m
}

// deadline is when step(evTimer) is due: the state's timer or the
// lease's expiry, whichever is first. Zero: nothing is due.
func (m *machine) deadline() time.Time {
	d := m.next
	if m.cur != nil && !m.cur.Infinite && (d.IsZero() || m.cur.Expiry.Before(d)) {
		d = m.cur.Expiry
	}
	return d
}

// lease is a copy of the lease in force (nil: none).
func (m *machine) lease() *dhcpLease {
	if m.cur == nil {
		return nil
	}
	c := *m.cur
	return &c
}

func (m *machine) logf(level slog.Level, format string, args ...any) {
	m.out = append(m.out, action{Kind: actLog, Level: level, Text: m.ifname + ": " + fmt.Sprintf(format, args...)})
}

// step feeds one event and returns the actions to carry out, in order.
func (m *machine) step(ev event) []action {
	m.out = nil
	now := ev.Now
	switch ev.Kind {
	case evStart:
		if m.cur != nil && m.cur.expired(now) {
			m.logf(slog.LevelInfo, "saved lease for %v expired at %v", m.cur.Address, m.cur.Expiry.Format(time.RFC3339))
			m.cur = nil
			m.out = append(m.out, action{Kind: actSave})
		}
		if m.cur != nil {
			// Adopt the saved lease (a restart of halbd keeps the address
			// and its connections) and confirm it: INIT-REBOOT.
			m.out = append(m.out, action{Kind: actApply, Lease: m.lease()})
		}
		switch {
		case m.linkDown:
			m.state, m.next = stLinkDown, time.Time{}
		case m.cur != nil:
			m.initReboot(now)
		default:
			m.discover(now)
		}
	case evTimer:
		m.timer(now)
	case evPacket:
		m.packet(ev.Data, now)
	case evLinkDown:
		if m.state == stReleased {
			break
		}
		m.linkDown = true
		m.state, m.next = stLinkDown, time.Time{}
		if m.cur != nil {
			m.logf(slog.LevelInfo, "link down: holding %v until the link is back and the lease confirmed, or it expires", m.cur.Address)
		} else {
			m.logf(slog.LevelInfo, "link down: waiting for it")
		}
	case evLinkUp:
		if !m.linkDown {
			break
		}
		m.linkDown = false
		if m.cur != nil {
			m.initReboot(now)
		} else {
			m.discover(now)
		}
	case evRelease:
		if m.cur != nil && m.cur.Server.IsValid() && !m.linkDown {
			p := m.msg(dhcpv4.MessageTypeRelease, now, m.newXID())
			p.ClientIPAddr = net.IP(m.cur.Address.Addr().AsSlice())
			p.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(m.cur.Server.AsSlice())))
			m.out = append(m.out, action{Kind: actSend, Msg: p, Dest: m.cur.Server})
		}
		if m.cur != nil {
			m.logf(slog.LevelInfo, "released %v", m.cur.Address)
			m.out = append(m.out, action{Kind: actRemove, Lease: m.lease()})
		}
		m.out = append(m.out, action{Kind: actSave})
		m.cur, m.state, m.next = nil, stReleased, time.Time{}
	}
	return m.out
}

func (m *machine) timer(now time.Time) {
	if m.state == stReleased {
		return
	}
	if m.cur != nil && m.cur.expired(now) {
		m.logf(slog.LevelWarn, "lease for %v expired unrenewed: removing the address", m.cur.Address)
		m.out = append(m.out, action{Kind: actRemove, Lease: m.lease()}, action{Kind: actSave})
		m.cur = nil
		if m.linkDown {
			m.next = time.Time{}
			return
		}
		m.discover(now)
		return
	}
	if m.next.IsZero() || now.Before(m.next) {
		return
	}
	switch m.state {
	case stInit:
		m.discover(now)
	case stSelecting:
		m.attempt++
		m.sendDiscover(now)
	case stRequesting:
		m.attempt++
		if m.attempt >= requestTries {
			m.logf(slog.LevelWarn, "no answer to REQUEST for %v from %v: back to INIT", m.offer.YIAddr, m.offer.Server)
			m.discover(now)
			return
		}
		m.sendRequest(now)
	case stRebooting:
		m.attempt++
		if m.attempt >= rebootTries {
			if m.cur != nil {
				m.logf(slog.LevelWarn, "no answer to INIT-REBOOT: keeping %v until %v (RFC 2131 3.2)", m.cur.Address, m.cur.Expiry.Format(time.RFC3339))
				m.state, m.next = stBound, m.cur.T1
				if m.cur.Infinite {
					m.next = time.Time{}
				}
				return
			}
			m.discover(now)
			return
		}
		m.sendReboot(now)
	case stBound:
		m.state, m.xid, m.started, m.attempt = stRenewing, m.newXID(), now, 0
		m.sendRenew(now)
	case stRenewing:
		if !now.Before(m.cur.T2) {
			m.state, m.xid, m.started, m.attempt = stRebinding, m.newXID(), now, 0
			m.logf(slog.LevelWarn, "no answer from %v by T2: rebinding (broadcast)", m.cur.Server)
		} else {
			m.attempt++
		}
		m.sendRenew(now)
	case stRebinding:
		m.attempt++
		m.sendRenew(now)
	}
}

// discover enters INIT and sends DISCOVER at once.
func (m *machine) discover(now time.Time) {
	m.offer = nil
	m.state, m.xid, m.started, m.attempt = stSelecting, m.newXID(), now, 0
	m.sendDiscover(now)
}

// afterNak goes back to INIT: at once after the first NAK, with the
// RFC 4.1 back-off when the server keeps NAKing what it offers.
func (m *machine) afterNak(now time.Time) {
	if m.naks >= 2 {
		m.state, m.offer = stInit, nil
		m.next = now.Add(m.timing.Backoff(m.naks - 2))
		return
	}
	m.discover(now)
}

func (m *machine) initReboot(now time.Time) {
	m.state, m.xid, m.started, m.attempt = stRebooting, m.newXID(), now, 0
	m.sendReboot(now)
}

func (m *machine) msg(t dhcpv4.MessageType, now time.Time, xid dhcpv4.TransactionID) *dhcpv4.DHCPv4 {
	p := &dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet,
		TransactionID: xid, ClientHWAddr: m.mac,
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero,
		Options: dhcpv4.Options{},
	}
	if !m.started.IsZero() {
		p.NumSeconds = uint16(min(now.Sub(m.started)/time.Second, 0xffff))
	}
	p.UpdateOption(dhcpv4.OptMessageType(t))
	if t != dhcpv4.MessageTypeRelease {
		p.UpdateOption(dhcpv4.OptParameterRequestList(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
			dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionNTPServers,
			dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionServerIdentifier,
			dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue))
	}
	return p
}

func (m *machine) send(p *dhcpv4.DHCPv4, dest netip.Addr, wait time.Duration, now time.Time) {
	m.out = append(m.out, action{Kind: actSend, Msg: p, Dest: dest})
	m.next = now.Add(wait)
}

func (m *machine) sendDiscover(now time.Time) {
	p := m.msg(dhcpv4.MessageTypeDiscover, now, m.xid)
	if m.old.IsValid() {
		p.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IP(m.old.AsSlice())))
	}
	m.send(p, netip.Addr{}, m.timing.Backoff(m.attempt), now)
}

func (m *machine) sendRequest(now time.Time) {
	p := m.msg(dhcpv4.MessageTypeRequest, now, m.xid)
	p.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IP(m.offer.YIAddr.AsSlice())))
	p.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(m.offer.Server.AsSlice())))
	m.send(p, netip.Addr{}, m.timing.Backoff(m.attempt), now)
}

func (m *machine) sendReboot(now time.Time) {
	p := m.msg(dhcpv4.MessageTypeRequest, now, m.xid)
	p.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IP(m.cur.Address.Addr().AsSlice())))
	m.send(p, netip.Addr{}, m.timing.Backoff(m.attempt), now)
}

// sendRenew sends the RENEWING (unicast to the server) or REBINDING
// (broadcast) REQUEST: ciaddr set, no Requested-IP, no server id.
func (m *machine) sendRenew(now time.Time) {
	p := m.msg(dhcpv4.MessageTypeRequest, now, m.xid)
	p.ClientIPAddr = net.IP(m.cur.Address.Addr().AsSlice())
	until, dest := m.cur.T2, m.cur.Server
	if m.state == stRebinding {
		until, dest = m.cur.Expiry, netip.Addr{}
	}
	left := until.Sub(now)
	wait := max(left/2, m.timing.MinRenewRetry)
	if m.timing.MaxRenewRetry > 0 && wait > m.timing.MaxRenewRetry {
		wait = m.timing.MaxRenewRetry
	}
	if wait > left {
		wait = left
	}
	if wait <= 0 {
		wait = time.Millisecond
	}
	m.send(p, dest, wait, now)
}

// packet handles one received packet; anything not expected now is
// dropped with a log line.
func (m *machine) packet(b []byte, now time.Time) {
	r, err := parseReply(b, now)
	if err != nil {
		m.logf(slog.LevelWarn, "dropped a reply in %s: %v", m.state, err)
		return
	}
	for _, n := range r.Notes {
		m.logf(slog.LevelWarn, "%s from %v: %s", r.Type, r.Server, n)
	}
	switch {
	case r.XID != m.xid:
		m.logf(slog.LevelDebug, "dropped %s with xid %x in %s: waiting for %x", r.Type, r.XID, m.state, m.xid)
		return
	case len(r.CHAddr) < len(m.mac) || !bytes.Equal(r.CHAddr[:len(m.mac)], m.mac):
		m.logf(slog.LevelWarn, "dropped %s for another client (chaddr %x)", r.Type, r.CHAddr)
		return
	case m.linkDown:
		return
	}
	switch m.state {
	case stSelecting:
		if r.Type != dhcpv4.MessageTypeOffer {
			m.logf(slog.LevelDebug, "dropped %s in SELECTING", r.Type)
			return
		}
		if !r.Server.IsValid() {
			m.logf(slog.LevelWarn, "dropped OFFER of %v without a server identifier", r.YIAddr)
			return
		}
		m.offer = r
		m.state, m.attempt = stRequesting, 0
		m.sendRequest(now)
	case stRequesting:
		if r.Server.IsValid() && r.Server != m.offer.Server {
			m.logf(slog.LevelDebug, "dropped %s from %v: requested from %v", r.Type, r.Server, m.offer.Server)
			return
		}
		m.answer(r, now, m.offer.YIAddr)
	case stRebooting:
		m.answer(r, now, m.cur.Address.Addr())
	case stRenewing, stRebinding:
		m.answer(r, now, m.cur.Address.Addr())
	default:
		m.logf(slog.LevelDebug, "dropped %s in %s", r.Type, m.state)
	}
}

// answer handles an ACK or NAK to a REQUEST for want.
func (m *machine) answer(r *reply, now time.Time, want netip.Addr) {
	switch r.Type {
	case dhcpv4.MessageTypeNak:
		m.logf(slog.LevelWarn, "NAK from %v in %s", r.Server, m.state)
		if m.state == stRequesting {
			m.naks++
		}
		if m.cur != nil {
			m.out = append(m.out, action{Kind: actRemove, Lease: m.lease()}, action{Kind: actSave})
			m.cur = nil
		}
		m.afterNak(now)
	case dhcpv4.MessageTypeAck:
		l := r.Lease
		if !l.Server.IsValid() {
			if m.cur != nil {
				l.Server = m.cur.Server
			}
			if !l.Server.IsValid() {
				m.logf(slog.LevelWarn, "dropped ACK without a server identifier")
				return
			}
		}
		if r.YIAddr != want {
			m.logf(slog.LevelWarn, "ACK gives %v, not the requested %v: taking it", r.YIAddr, want)
		}
		renewed := m.cur != nil && m.cur.Address == l.Address && (m.state == stRenewing || m.state == stRebinding || m.state == stRebooting)
		if renewed {
			l.Renewals = m.cur.Renewals
			if m.state != stRebooting {
				l.Renewals++
			}
		}
		if m.timing.RenewAfter > 0 && !l.Infinite && now.Add(m.timing.RenewAfter).Before(l.T2) {
			l.T1 = now.Add(m.timing.RenewAfter)
		}
		prev := m.lease()
		m.cur, m.old, m.naks, m.offer = &l, l.Address.Addr(), 0, nil
		m.state, m.next, m.started = stBound, l.T1, time.Time{}
		if l.Infinite {
			m.next = time.Time{}
		}
		m.out = append(m.out, action{Kind: actApply, Lease: m.lease(), Prev: prev}, action{Kind: actSave, Lease: m.lease()})
	default:
		m.logf(slog.LevelDebug, "dropped %s in %s", r.Type, m.state)
	}
}
