package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpChecker sends one ICMP echo request to the host of Target.Addr (its
// first address if a DNS name) and waits for the matching reply; Port is
// not used.
//
// It tries a raw socket (root or CAP_NET_RAW) and falls back to an
// unprivileged ping socket (a group in net.ipv4.ping_group_range). Each
// check opens its own socket: simpler than one shared socket with replies
// handed out to the checks waiting for them, at the cost of an fd per check
// in flight and, on raw sockets, a copy of every echo reply to each.
type icmpChecker struct{}

func (icmpChecker) Check(ctx context.Context, t Target) error {
	within := t.budget(ctx)
	host, _ := t.splitAddr()
	if host == "" {
		return fmt.Errorf("check %q: want a host", t.Addr)
	}
	if ctx.Err() != nil {
		return failed(ctx, within, "ping "+host, ctx.Err())
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		return failed(ctx, within, "resolve "+host, err)
	}
	ip := ips[0].Unmap()
	who := ip.String()
	if host != who {
		who = host + " (" + who + ")"
	}
	c, ping, err := listenICMP(ip.Is6())
	if err != nil {
		return fmt.Errorf("ping %s: %w", who, err)
	}
	defer c.Close()
	p := echoProbe{conn: c, v6: ip.Is6(), matchID: !ping, who: who, within: within}
	p.dst = &net.IPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	if ping {
		p.dst = &net.UDPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	return p.run(ctx)
}

// listenICMP opens a raw ICMP socket, or if that is not permitted a ping
// socket (ping reports true), for IPv4 or IPv6.
func listenICMP(v6 bool) (c *icmp.PacketConn, ping bool, err error) {
	network, pingNetwork, laddr := "ip4:icmp", "udp4", "0.0.0.0"
	if v6 {
		network, pingNetwork, laddr = "ip6:ipv6-icmp", "udp6", "::"
	}
	c, err = icmp.ListenPacket(network, laddr)
	if err == nil {
		// A raw socket gets all ICMP the host receives; let the kernel drop
		// all but echo replies. Best effort: the reply matching below
		// copes without.
		if v6 {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeEchoReply)
			_ = c.IPv6PacketConn().SetICMPFilter(&f)
		} else {
			var f ipv4.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv4.ICMPTypeEchoReply)
			_ = c.IPv4PacketConn().SetICMPFilter(&f)
		}
		return c, false, nil
	}
	if !errors.Is(err, os.ErrPermission) {
		return nil, false, fmt.Errorf("open icmp socket: %w", err)
	}
	c, perr := icmp.ListenPacket(pingNetwork, laddr)
	if perr != nil {
		return nil, false, fmt.Errorf("open icmp socket: %w; ping socket: %w "+
			"(needs CAP_NET_RAW or a group in net.ipv4.ping_group_range)", err, perr)
	}
	return c, true, nil
}

// echoProbe is one ICMP echo exchange on an open socket: raw, ping, or in
// tests plain UDP with a fake peer.
type echoProbe struct {
	conn    net.PacketConn
	dst     net.Addr // *net.IPAddr on raw sockets, *net.UDPAddr on ping sockets
	v6      bool
	matchID bool          // false on ping sockets, where the kernel sets the ID
	who     string        // the target in errors: "10.0.0.11" or "db1 (10.0.0.11)"
	within  time.Duration // the check's timeout, for errors
}

// run sends an echo request with a random ID, sequence number and 16-byte
// payload, and reads until the reply that matches all three (the ID only on
// raw sockets), ctx's deadline, or ctx's end. Other replies are not ours: a
// raw socket sees those of every check in flight.
func (p echoProbe) run(ctx context.Context) error {
	var rnd [20]byte
	rand.Read(rnd[:])
	id, seq, data := int(binary.BigEndian.Uint16(rnd[0:])), int(binary.BigEndian.Uint16(rnd[2:])), rnd[4:]
	var typ, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // ICMPv4
	if p.v6 {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	// For ICMPv6 Marshal leaves the checksum zero; the kernel fills it in.
	req, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", p.who, err)
	}

	if dl, ok := ctx.Deadline(); ok {
		p.conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { p.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := p.conn.WriteTo(req, p.dst); err != nil {
		return failed(ctx, p.within, "send echo request to "+p.who, err)
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			switch cerr := ctx.Err(); {
			case errors.Is(cerr, context.Canceled):
				return fmt.Errorf("ping %s: %w", p.who, context.Cause(ctx))
			case cerr != nil, errors.Is(err, os.ErrDeadlineExceeded):
				return &timeoutError{fmt.Sprintf("no echo reply from %s within %v", p.who, p.within)}
			}
			return failed(ctx, p.within, "read echo reply from "+p.who, err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.Seq != seq || (p.matchID && e.ID != id) || !bytes.Equal(e.Data, data) {
			continue
		}
		return nil
	}
}
