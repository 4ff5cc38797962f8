package bgp

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"halb/internal/procnet"
)

// A drain without resets (bgp.drain_to). Withdrawing a node's path makes
// the router rehash: the node's flows go to the other nodes, which have no
// socket for them and reset them. So before withdrawing, the draining node
// hands every connection it did not already have to another node (the
// packets, unchanged, to that node's address on the shared segment: the
// VIP is on its loopback too) while its own connections finish, and
// withdraws once none is left (or bgp.drain_time has passed). The router
// then moves to the other nodes only flows they already serve. Coming
// back, the node announces again and for drain_time hands on the packets
// of connections it did not open (the router moved some of the other
// nodes' flows to it) while taking new ones itself.
//
// "Its own connections" are those the kernel's connection tracking saw
// answered here; tracking is on for the VIPs only, from the moment
// bgp.drain_to is set, so that connections open before a drain are known
// as this node's. A packet of a connection not answered here is "new" to
// the tracking (it picks up connections mid-stream: the kernel's default
// nf_conntrack_tcp_loose=1), and the handed-on packets are dropped here,
// so their entries are never confirmed: every packet of a handed-on
// connection stays "new". Packets the tracking finds invalid are never
// handed on: a retransmission out of the window on one of this node's
// connections stays here.

// Handoff phases.
type HandoffPhase int

const (
	// HandoffOff: no rules (bgp.drain_to is not set).
	HandoffOff HandoffPhase = iota
	// HandoffTrack: connections to the VIPs are tracked, nothing moves.
	HandoffTrack
	// HandoffDrain: packets to the VIPs of connections not answered here
	// (new ones included) go to the targets.
	HandoffDrain
	// HandoffReturn: new connections are taken here; packets of
	// connections not opened here go to the targets.
	HandoffReturn
)

func (p HandoffPhase) String() string {
	return [...]string{"off", "track", "drain", "return"}[p]
}

// Handoff sets the packet rules of a phase for the VIPs and targets.
type Handoff interface {
	Set(ctx context.Context, phase HandoffPhase, vips []netip.Prefix, targets []netip.Addr) error
}

// NFT is the Handoff of halbd: nftables tables `ip halb_bgp` and
// `ip6 halb_bgp` loaded by the nft program in one transaction each time.
type NFT struct {
	// Nft is the program (default: nft in PATH).
	Nft string
}

// handoffTable is the name of the nftables tables.
const handoffTable = "halb_bgp"

// Set implements Handoff.
func (n NFT) Set(ctx context.Context, phase HandoffPhase, vips []netip.Prefix, targets []netip.Addr) error {
	prog := n.Nft
	if prog == "" {
		prog = "nft"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "-f", "-")
	cmd.Stdin = strings.NewReader(HandoffRuleset(phase, vips, targets))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bgp: nft (handoff %s): %w: %s", phase, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// HandoffRuleset is the nftables script of a phase: it replaces both
// families' tables (a family without VIPs or without targets gets none).
func HandoffRuleset(phase HandoffPhase, vips []netip.Prefix, targets []netip.Addr) string {
	var b strings.Builder
	for _, fam := range []struct {
		name, addr, typ string
		is4             bool
	}{{"ip", "ip", "ipv4_addr", true}, {"ip6", "ip6", "ipv6_addr", false}} {
		// Create-then-delete makes the delete safe when the table does
		// not exist yet; all of it is one transaction.
		fmt.Fprintf(&b, "table %s %s\ndelete table %s %s\n", fam.name, handoffTable, fam.name, handoffTable)
		var vs, ts []string
		for _, p := range vips {
			if p.Addr().Is4() == fam.is4 {
				vs = append(vs, p.String())
			}
		}
		for _, a := range targets {
			if a.Is4() == fam.is4 {
				ts = append(ts, a.String())
			}
		}
		if phase == HandoffOff || len(vs) == 0 || len(ts) == 0 {
			continue
		}
		to := ts[0]
		if len(ts) > 1 {
			// One target per connection: a hash of the client's address
			// and port.
			var m []string
			for i, t := range ts {
				m = append(m, fmt.Sprintf("%d : %s", i, t))
			}
			to = fmt.Sprintf("jhash %s saddr . tcp sport mod %d map { %s }", fam.addr, len(ts), strings.Join(m, ", "))
		}
		fmt.Fprintf(&b, "table %s %s {\n", fam.name, handoffTable)
		fmt.Fprintf(&b, "\tset vips { type %s; flags interval; elements = { %s } }\n", fam.typ, strings.Join(vs, ", "))
		// Tracking only for the VIPs: the rest of the node's traffic
		// (health checks, connections to servers) costs nothing.
		fmt.Fprintf(&b, "\tchain raw_pre { type filter hook prerouting priority raw; policy accept; %s daddr != @vips notrack; }\n", fam.addr)
		fmt.Fprintf(&b, "\tchain raw_out { type filter hook output priority raw; policy accept; %s saddr != @vips notrack; }\n", fam.addr)
		fmt.Fprintf(&b, "\tchain pre {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n\t\tct state established accept\n")
		switch phase {
		case HandoffDrain:
			fmt.Fprintf(&b, "\t\t%s daddr @vips meta l4proto tcp ct state new counter dup to %s drop\n", fam.addr, to)
		case HandoffReturn:
			fmt.Fprintf(&b, "\t\t%s daddr @vips tcp flags & (syn|ack) != syn ct state new counter dup to %s drop\n", fam.addr, to)
		}
		b.WriteString("\t}\n}\n")
	}
	return b.String()
}

// OpenConns counts this node's TCP sockets on the VIPs (every state but
// listening and TIME_WAIT: those still need packets).
func OpenConns(vips []netip.Prefix) (int, error) {
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		err = procnet.TCPSockets(string(b), func(l netip.AddrPort, st int) {
			if st == procnet.TCPListen || st == procnet.TCPTimeWait {
				return
			}
			for _, p := range vips {
				if p.Contains(l.Addr()) {
					n++
					return
				}
			}
		})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
	}
	return n, nil
}
