// Package gobgp is bgp.Engine on GoBGP (github.com/osrg/gobgp/v4) used as
// a library, without its gRPC listener: the only package of halb that
// imports GoBGP, so a version change touches this file alone, and only
// halbd links it (the daemon gets the engine from cmd/halbd). GoBGP v4
// runs BFD (RFC 5880/5881, single hop) beside a neighbor's session.
//
// Test: `go test -race ./appliance/bgp/gobgp/` runs the engine against a
// second in-process GoBGP speaker on 127.0.0.1/127.0.0.2 and a BFD peer
// of the test's own (no root).
package gobgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/protobuf/proto"

	"halb/appliance/bgp"
)

// Engine is a bgp.Engine on an embedded GoBGP server. A GoBGP v4 server
// does not start again once stopped, so each Start makes a new one.
type Engine struct {
	log *slog.Logger

	mu  sync.Mutex
	s   *server.BgpServer // nil: stopped
	asn uint32
	// The session watch, set up again on each new server.
	watchCtx    context.Context
	watchFn     func(bgp.SessionChange)
	watchCancel context.CancelFunc // of the current server's watch
	last        map[netip.Addr]gobgp.FSMState
	// bfdDown is why a neighbor's BFD session went down while its BGP
	// session was established.
	bfdDown map[netip.Addr]string
	// bfd is the BFD config of each neighbor that has one, and peer its
	// GoBGP config without BFD: BFD runs while the BGP session is
	// established (bfdFollow).
	bfd  map[netip.Addr]*api.BfdPeerConfig
	peer map[netip.Addr]*api.Peer
}

// bfdSettle is how long after a BGP session is established its BFD
// session starts: a router may make its own BFD session for the neighbor
// anew once BGP is up (FRR 8.4's bgpd does: it keys the session by the
// interface it learns then, and the old session says AdminDown as it
// goes), and GoBGP 4.8 resets BGP on a neighbor's AdminDown (RFC 5882
// section 3.2 says it should not), which would flap the session for
// ever.
const bfdSettle = time.Second

var _ bgp.Engine = (*Engine)(nil)

// New returns an Engine whose GoBGP logs to log (nil: discarded) at info
// level and above.
func New(log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Engine{last: map[netip.Addr]gobgp.FSMState{}, bfdDown: map[netip.Addr]string{},
		bfd: map[netip.Addr]*api.BfdPeerConfig{}, peer: map[netip.Addr]*api.Peer{}}
	g.log = slog.New(handler{log.Handler(), g.noteBFD})
	return g
}

// server is the running GoBGP server.
func (g *Engine) server() (*server.BgpServer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.s == nil {
		return nil, errors.New("bgp: the speaker is not started")
	}
	return g.s, nil
}

// handler passes GoBGP's records to halb's log, their messages prefixed
// with "gobgp: ", and notes the BFD failures among them: GoBGP resets a
// session whose BFD session fails as an administrative reset, and says
// why only in its log.
type handler struct {
	slog.Handler
	note func(peer, why string)
}

// Enabled lets the BFD warnings through even when halb's log drops them.
func (h handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.logs(ctx, l)
}

// logs reports whether records at l go to halb's log: info and above,
// as far as halb's log takes them.
func (h handler) logs(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo && h.Handler.Enabled(ctx, l)
}

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if why, ok := bfdDowns[r.Message]; ok {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "Peer" {
				h.note(a.Value.String(), why)
			}
			return true
		})
	}
	if !h.logs(ctx, r.Level) {
		return nil
	}
	r.Message = "gobgp: " + r.Message
	return h.Handler.Handle(ctx, r)
}
func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	return handler{h.Handler.WithAttrs(as), h.note}
}
func (h handler) WithGroup(name string) slog.Handler {
	return handler{h.Handler.WithGroup(name), h.note}
}

// bfdDowns are GoBGP's log messages of a BFD session going down (before
// it resets the BGP session), and the reason halb gives.
var bfdDowns = map[string]string{
	"Expired":                       "bfd-down (detection time expired)",
	"Remote peer signaled BFD down": "bfd-down (neighbor signalled down)",
}

// noteBFD keeps why peer's BFD session went down, for the session reset
// that follows.
func (g *Engine) noteBFD(peer, why string) {
	a, err := netip.ParseAddr(peer)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.bfdDown[a] = why
	g.mu.Unlock()
}

// fsmState is the name of a GoBGP FSM state: "established", ...
func fsmState(s gobgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}

// WatchSessions implements bgp.Engine with GoBGP's peer state watch,
// whose events carry why a session went down (DisconnectMessage, the
// reason GoBGP also logs with "Peer Down").
func (g *Engine) WatchSessions(ctx context.Context, fn func(bgp.SessionChange)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.s != nil && g.watchCancel != nil {
		g.watchCancel() // watched again with ctx
	}
	g.watchCtx, g.watchFn = ctx, fn
	if g.s == nil {
		return nil // watched from Start on
	}
	return g.watch()
}

// watch watches the sessions of the current server; g.mu is held.
func (g *Engine) watch() error {
	parent := g.watchCtx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	err := g.s.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: g.peerEvent}, server.WatchPeer())
	if err != nil {
		cancel()
		return fmt.Errorf("bgp: watch sessions: %w", err)
	}
	g.watchCancel = cancel
	return nil
}

func (g *Engine) peerEvent(pe *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	st := pe.Peer.State
	addr, to := st.NeighborAddress, st.SessionState
	g.mu.Lock()
	from, seen := g.last[addr]
	g.last[addr] = to
	fn := g.watchFn
	hasBFD := g.bfd[addr] != nil
	var bfdDown string
	if pe.Type == apiutil.PEER_EVENT_STATE && from != to {
		bfdDown = g.bfdDown[addr]
		delete(g.bfdDown, addr) // a note outlives no state change
	}
	g.mu.Unlock()
	if pe.Type != apiutil.PEER_EVENT_STATE || (seen && from == to) {
		return
	}
	ch := bgp.SessionChange{Address: addr, ASN: st.PeerASN, From: "unknown", To: fsmState(to)}
	if seen {
		ch.From = fsmState(from)
	}
	if seen && from == gobgp.BGP_FSM_ESTABLISHED {
		ch.Reason = st.DisconnectMessage
		if bfdDown != "" {
			ch.Reason = bfdDown + ": " + ch.Reason
		}
	}
	switch {
	case !hasBFD: // no BFD to follow BGP
	case to == gobgp.BGP_FSM_ESTABLISHED:
		go g.bfdFollow(addr, true)
	case seen && from == gobgp.BGP_FSM_ESTABLISHED:
		go g.bfdFollow(addr, false)
	}
	if fn != nil {
		fn(ch)
	}
}

// bfdFollow starts a neighbor's BFD session bfdSettle after its BGP
// session is established (if it still is, and the neighbor has BFD), or
// stops it when BGP goes down, by updating the peer (GoBGP changes the
// BFD session alone: BGP is not reset).
func (g *Engine) bfdFollow(addr netip.Addr, up bool) {
	if up {
		time.Sleep(bfdSettle)
	}
	g.mu.Lock()
	s, bfd, p := g.s, g.bfd[addr], g.peer[addr]
	established := g.last[addr] == gobgp.BGP_FSM_ESTABLISHED
	g.mu.Unlock()
	if s == nil || bfd == nil || p == nil || up != established {
		return
	}
	q := proto.Clone(p).(*api.Peer)
	if up {
		q.Bfd = bfd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: q}); err != nil {
		g.log.Warn("bfd: cannot update the neighbor", "neighbor", addr, "bfd", up, "err", err)
	}
}

// Start implements bgp.Engine.
func (g *Engine) Start(ctx context.Context, gl bgp.Global) error {
	port := int32(gl.ListenPort)
	if port == 0 {
		port = -1 // GoBGP: do not listen
	}
	var addrs []string
	for _, a := range gl.ListenAddresses {
		addrs = append(addrs, a.String())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.s != nil {
		return fmt.Errorf("bgp: start AS %d: already started", gl.ASN)
	}
	s := server.NewBgpServer(server.LoggerOption(g.log, new(slog.LevelVar))) // the handler filters
	go s.Serve()
	err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             gl.ASN,
		RouterId:        gl.RouterID.String(),
		ListenPort:      port,
		ListenAddresses: addrs,
	}})
	if err != nil {
		s.Stop()
		return fmt.Errorf("bgp: start AS %d router id %s: %w", gl.ASN, gl.RouterID, err)
	}
	g.s, g.asn = s, gl.ASN
	// Watched from the start, with or without a WatchSessions: BFD
	// follows the sessions (bfdFollow).
	return g.watch()
}

// Stop implements bgp.Engine: every session ends with a Cease, the BFD
// sessions end, and the server's goroutines. The engine may be started
// again.
func (g *Engine) Stop(context.Context) error {
	g.mu.Lock()
	s, cancel := g.s, g.watchCancel
	g.s, g.watchCancel = nil, nil
	g.mu.Unlock()
	if s == nil {
		return errors.New("bgp: stop: the speaker is not started")
	}
	s.Stop()
	if cancel != nil {
		cancel()
	}
	return nil
}

// AddNeighbor implements bgp.Engine. The session carries IPv4 and IPv6
// unicast, so that VIPs of either family can go over one session.
func (g *Engine) AddNeighbor(ctx context.Context, n bgp.Neighbor) error {
	retry := n.ConnectRetry
	if retry == 0 {
		retry = 5 * time.Second
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.Address.String(),
			PeerAsn:         n.ASN,
			AuthPassword:    n.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(n.HoldTime / time.Second),
			KeepaliveInterval: uint64(n.Keepalive / time.Second),
			ConnectRetry:      uint64(retry / time.Second),
		}},
		Transport: &api.Transport{
			PassiveMode: n.Passive,
			RemotePort:  uint32(n.Port),
		},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 1 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	var bfd *api.BfdPeerConfig
	if n.BFD.Enabled {
		var err error
		if bfd, err = bfdConfig(n.BFD); err != nil {
			return fmt.Errorf("bgp: add neighbor %s AS %d: %w", n.Address, n.ASN, err)
		}
	}
	s, err := g.server()
	if err == nil {
		// Without BFD: bfdFollow starts it once BGP is established.
		err = s.AddPeer(ctx, &api.AddPeerRequest{Peer: p})
	}
	if err != nil {
		return fmt.Errorf("bgp: add neighbor %s AS %d: %w", n.Address, n.ASN, err)
	}
	g.mu.Lock()
	g.peer[n.Address] = p
	if bfd != nil {
		g.bfd[n.Address] = bfd
	} else {
		delete(g.bfd, n.Address)
	}
	g.mu.Unlock()
	return nil
}

// bfdConfig is GoBGP's BFD config of b, zero values replaced by halb's
// defaults (300ms, 300ms, 3: GoBGP's own are 1s, 1s, 3).
func bfdConfig(b bgp.BFD) (*api.BfdPeerConfig, error) {
	us := func(what string, d, def time.Duration) (uint32, error) {
		if d == 0 {
			d = def
		}
		if d < time.Microsecond || d > time.Duration(1<<32-1)*time.Microsecond {
			return 0, fmt.Errorf("BFD %s %s out of range", what, d)
		}
		return uint32(d / time.Microsecond), nil
	}
	tx, err := us("min tx", b.MinTx, 300*time.Millisecond)
	if err != nil {
		return nil, err
	}
	rx, err := us("min rx", b.MinRx, 300*time.Millisecond)
	if err != nil {
		return nil, err
	}
	mult := b.Multiplier
	if mult == 0 {
		mult = 3
	}
	if mult < 1 || mult > 255 {
		return nil, fmt.Errorf("BFD multiplier %d out of range 1-255", b.Multiplier)
	}
	return &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: tx, RequiredMinimumReceive: rx, DetectionMultiplier: uint32(mult)}, nil
}

// DeleteNeighbor implements bgp.Engine.
func (g *Engine) DeleteNeighbor(ctx context.Context, address string) error {
	s, err := g.server()
	if err == nil {
		err = s.DeletePeer(ctx, &api.DeletePeerRequest{Address: address})
	}
	if a, perr := netip.ParseAddr(address); perr == nil && err == nil {
		g.mu.Lock()
		delete(g.peer, a)
		delete(g.bfd, a)
		g.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("bgp: delete neighbor %s: %w", address, err)
	}
	return nil
}

func familyOf(a netip.Addr) gobgp.Family {
	if a.Is4() {
		return gobgp.RF_IPv4_UC
	}
	return gobgp.RF_IPv6_UC
}

// path builds the path of a local host route; the next hop is left
// unspecified, which GoBGP replaces with the session's own address.
func (g *Engine) path(prefix netip.Prefix, a bgp.Attrs) (*apiutil.Path, error) {
	g.mu.Lock()
	asn := g.asn
	g.mu.Unlock()
	nlri, err := gobgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, err
	}
	fam := familyOf(prefix.Addr())
	attrs := []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if prefix.Addr().Is4() {
		nh, err := gobgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		mp, err := gobgp.NewPathAttributeMpReachNLRI(fam, []gobgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if a.Prepend > 0 {
		nums := make([]uint32, a.Prepend)
		for i := range nums {
			nums[i] = asn
		}
		seg := gobgp.NewAs4PathParam(gobgp.BGP_ASPATH_ATTR_TYPE_SEQ, nums)
		attrs = append(attrs, gobgp.NewPathAttributeAsPath([]gobgp.AsPathParamInterface{seg}))
	}
	if a.MED != 0 {
		attrs = append(attrs, gobgp.NewPathAttributeMultiExitDisc(a.MED))
	}
	if len(a.Communities) > 0 {
		attrs = append(attrs, gobgp.NewPathAttributeCommunities(a.Communities))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

// Announce implements bgp.Engine.
func (g *Engine) Announce(_ context.Context, prefix netip.Prefix, a bgp.Attrs) error {
	s, err := g.server()
	var p *apiutil.Path
	if err == nil {
		p, err = g.path(prefix, a)
	}
	if err == nil {
		_, err = s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
	}
	if err != nil {
		return fmt.Errorf("bgp: announce %s: %w", prefix, err)
	}
	return nil
}

// Withdraw implements bgp.Engine.
func (g *Engine) Withdraw(_ context.Context, prefix netip.Prefix) error {
	s, err := g.server()
	var p *apiutil.Path
	if err == nil {
		p, err = g.path(prefix, bgp.Attrs{})
	}
	if err == nil {
		err = s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}})
	}
	if err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", prefix, err)
	}
	return nil
}

// Neighbors implements bgp.Engine.
func (g *Engine) Neighbors(ctx context.Context) ([]bgp.NeighborState, error) {
	s, err := g.server()
	if err != nil {
		return nil, err
	}
	var out []bgp.NeighborState
	err = s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		var ns bgp.NeighborState
		ns.Address, _ = netip.ParseAddr(p.GetConf().GetNeighborAddress())
		st := p.GetState().GetSessionState()
		ns.State = strings.ToLower(strings.TrimPrefix(st.String(), "SESSION_STATE_"))
		if st == api.PeerState_SESSION_STATE_ESTABLISHED {
			if up := p.GetTimers().GetState().GetUptime(); up != nil {
				ns.Since = up.AsTime()
			}
		}
		for _, af := range p.GetAfiSafis() {
			ns.Received += int(af.GetState().GetReceived())
			ns.Sent += int(af.GetState().GetAdvertised())
		}
		if p.GetBfd().GetEnabled() {
			ns.BFD = bfdState(p.GetState().GetBfdState().GetSessionState())
		}
		out = append(out, ns)
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list neighbors: %w", err)
	}
	return out, nil
}

// bfdState is the name of a BFD session state: "up", "down", "init",
// "admin_down" ("down" before GoBGP reports one).
func bfdState(s api.BfdSessionState) string {
	if s == api.BfdSessionState_BFD_SESSION_STATE_UNSPECIFIED {
		return "down"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "BFD_SESSION_STATE_"))
}

// Routes implements bgp.Engine.
func (g *Engine) Routes(_ context.Context) ([]bgp.Route, error) {
	s, err := g.server()
	if err != nil {
		return nil, err
	}
	var out []bgp.Route
	var errs []error
	for _, fam := range []gobgp.Family{gobgp.RF_IPv4_UC, gobgp.RF_IPv6_UC} {
		err := s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}, func(nlri gobgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if !p.Best || !p.PeerAddress.IsValid() || p.PeerAddress.IsUnspecified() {
					continue // not best, or a local path
				}
				r, err := route(nlri, p)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, r)
			}
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("bgp: list routes: %w", err)
	}
	return out, nil
}

func route(nlri gobgp.NLRI, p *apiutil.Path) (bgp.Route, error) {
	r := bgp.Route{From: p.PeerAddress}
	var err error
	if r.Prefix, err = netip.ParsePrefix(nlri.String()); err != nil {
		return r, err
	}
	for _, a := range p.Attrs {
		switch v := a.(type) {
		case *gobgp.PathAttributeNextHop:
			r.NextHop = v.Value
		case *gobgp.PathAttributeMpReachNLRI:
			r.NextHop = v.Nexthop
		case *gobgp.PathAttributeAsPath:
			for _, s := range v.Value {
				r.ASPath = append(r.ASPath, s.GetAS()...)
			}
		case *gobgp.PathAttributeMultiExitDisc:
			r.MED = v.Value
		case *gobgp.PathAttributeCommunities:
			r.Communities = v.Value
		}
	}
	return r, nil
}
