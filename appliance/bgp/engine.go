// Package bgp is halb's BGP mode (issue 20): it announces VIPs as host
// routes to routers, so that they send a VIP's traffic to the nodes that
// announce it: the best path (active_standby) or every node by ECMP
// (active_active).
//
// Two parts: the announce decision (announce.go), a pure function of the
// config, the services' health and the maintenance flag; and the
// component that keeps a BGP speaker equal to it, the speaker behind the
// small Engine interface. The speaker is GoBGP (appliance/bgp/gobgp, the
// only package that imports it, so a version change touches it alone).
//
// Tests: `go test -race ./appliance/bgp/...` runs the decision's table
// tests, the component with a fake Engine, and the GoBGP engine against a
// second in-process GoBGP speaker on 127.0.0.x (no root needed).
package bgp

import (
	"context"
	"net/netip"
	"time"
)

// Engine is a BGP speaker as halb uses it: one global instance, its
// neighbors, and locally originated host routes.
type Engine interface {
	// Start starts the speaker with its global settings.
	Start(ctx context.Context, g Global) error
	// Stop closes every session (a NOTIFICATION Cease to each
	// established neighbor) and stops the speaker.
	Stop(ctx context.Context) error
	// AddNeighbor configures a neighbor; the session is dialled (or
	// awaited) from then on.
	AddNeighbor(ctx context.Context, n Neighbor) error
	// DeleteNeighbor closes the session with address and forgets it.
	DeleteNeighbor(ctx context.Context, address string) error
	// Announce originates prefix with attrs, or changes the attributes
	// of a prefix already announced.
	Announce(ctx context.Context, prefix netip.Prefix, attrs Attrs) error
	// Withdraw stops originating prefix.
	Withdraw(ctx context.Context, prefix netip.Prefix) error
	// Neighbors lists the sessions' states.
	Neighbors(ctx context.Context) ([]NeighborState, error)
	// Routes lists the best routes learned from neighbors.
	Routes(ctx context.Context) ([]Route, error)
	// WatchSessions calls fn, from a goroutine of the engine's, each
	// time a session changes state, until ctx ends. Called once; it
	// lasts across Stop and Start.
	WatchSessions(ctx context.Context, fn func(SessionChange)) error
}

// SessionChange is a session going from one FSM state to another.
type SessionChange struct {
	Address  netip.Addr
	ASN      uint32
	From, To string
	// Reason is why a session that was established went down, as the
	// speaker says it (GoBGP: "hold-timer-expired", "notification-received
	// code 6(cease) subcode 3(peer deconfigured)", "bfd-down (detection
	// time expired): ...", ...); empty otherwise.
	Reason string
}

// Global is a speaker's own settings.
type Global struct {
	ASN      uint32
	RouterID netip.Addr
	// ListenPort is the TCP port sessions are accepted on; 0 does not
	// listen.
	ListenPort int
	// ListenAddresses limit the listener to these addresses. Default:
	// every address.
	ListenAddresses []netip.Addr
}

// Neighbor is one configured peer.
type Neighbor struct {
	Address  netip.Addr
	ASN      uint32
	Password string // TCP MD5 key; empty: none
	// HoldTime 0 sends no keepalives; Keepalive is the interval.
	HoldTime, Keepalive time.Duration
	// Multihop is the TTL of the session's packets; 0 or 1 is a directly
	// connected neighbor.
	Multihop int
	// Port is the neighbor's TCP port. Default: 179.
	Port int
	// LocalAddress is the source address of the session. Default: the
	// kernel's choice.
	LocalAddress netip.Addr
	// Passive waits for the neighbor to connect.
	Passive bool
	// ConnectRetry is the time between two connection attempts. Default:
	// 5s.
	ConnectRetry time.Duration
	// BFD runs a BFD session (RFC 5880/5881, single hop) beside the BGP
	// session when enabled: the BGP session is reset as soon as BFD
	// goes down, long before the hold time.
	BFD BFD
}

// BFD is a neighbor's BFD settings.
type BFD struct {
	Enabled bool
	// MinTx is the desired minimum interval between two packets sent,
	// MinRx the required minimum between two received; Multiplier
	// packets missed make the session down (detection time MinRx *
	// Multiplier). Zero: 300ms, 300ms, 3.
	MinTx, MinRx time.Duration
	Multiplier   int
}

// Attrs are the path attributes of an announcement that halb chooses.
type Attrs struct {
	// MED is the MULTI_EXIT_DISC; 0 is not sent.
	MED uint32
	// Prepend is how many extra times the local AS is in the AS path.
	Prepend int
	// Communities are RFC 1997 communities (high 16 bits the AS).
	Communities []uint32
}

// Equal reports whether a and b are the same attributes.
func (a Attrs) Equal(b Attrs) bool {
	if a.MED != b.MED || a.Prepend != b.Prepend || len(a.Communities) != len(b.Communities) {
		return false
	}
	for i := range a.Communities {
		if a.Communities[i] != b.Communities[i] {
			return false
		}
	}
	return true
}

// GracefulShutdown is the GRACEFUL_SHUTDOWN community, 65535:0 (RFC 8326):
// routers that honour it give the path the lowest preference, so traffic
// moves to other paths before it is withdrawn.
const GracefulShutdown uint32 = 0xFFFF0000

// NeighborState is a session's state.
type NeighborState struct {
	Address netip.Addr
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm, established.
	State string
	// Since is when the session became established (zero: it is not).
	Since time.Time
	// Received and Sent count the prefixes received from and advertised
	// to the neighbor.
	Received, Sent int
	// BFD is the state of the neighbor's BFD session: up, down, init,
	// admin_down; empty when BFD is off.
	BFD string
}

// Route is a route learned from a neighbor.
type Route struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr
	ASPath      []uint32
	MED         uint32
	Communities []uint32
	// From is the neighbor it was learned from.
	From netip.Addr
}
