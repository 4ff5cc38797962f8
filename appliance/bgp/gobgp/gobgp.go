// Package gobgp is bgp.Engine on GoBGP (github.com/osrg/gobgp/v3) used as
// a library, without its gRPC listener: the only package of halb that
// imports GoBGP, so a version change touches this file alone, and only
// halbd links it (the daemon gets the engine from cmd/halbd).
//
// Test: `go test -race ./appliance/bgp/gobgp/` runs the engine against a
// second in-process GoBGP speaker on 127.0.0.1/127.0.0.2 (no root).
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

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"

	"halb/appliance/bgp"
)

// Engine is a bgp.Engine on an embedded GoBGP server.
type Engine struct {
	s   *server.BgpServer
	asn uint32

	// downs is why each session last went down, from GoBGP's "Peer
	// Down" log record (its watch API does not carry the reason).
	mu    sync.Mutex
	downs map[string]string
}

var _ bgp.Engine = (*Engine)(nil)

// New returns an Engine whose GoBGP logs to log (nil: discarded).
func New(log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{downs: map[string]string{}}
	e.s = server.NewBgpServer(server.LoggerOption(&slogger{log: log, level: gobgplog.InfoLevel, note: e.note}))
	go e.s.Serve()
	return e
}

// note keeps the reason of a "Peer Down" record.
func (g *Engine) note(msg string, f gobgplog.Fields) {
	if msg != "Peer Down" {
		return
	}
	key, _ := f["Key"].(string)
	reason, _ := f["Reason"].(string)
	g.mu.Lock()
	g.downs[key] = reason
	g.mu.Unlock()
}

// WatchSessions implements bgp.Engine with GoBGP's peer state watch; the
// reason of a session that goes down is the one GoBGP logs, which it
// logs before it reports the state change.
func (g *Engine) WatchSessions(ctx context.Context, fn func(bgp.SessionChange)) error {
	last := map[string]api.PeerState_SessionState{}
	err := g.s.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		pe := r.GetPeer()
		st := pe.GetPeer().GetState()
		if st == nil {
			return
		}
		key, to := st.GetNeighborAddress(), st.GetSessionState()
		from, seen := last[key]
		last[key] = to
		if pe.GetType() != api.WatchEventResponse_PeerEvent_STATE || (seen && from == to) {
			return
		}
		if !seen {
			from = api.PeerState_UNKNOWN
		}
		ch := bgp.SessionChange{ASN: st.GetPeerAsn(), From: strings.ToLower(from.String()), To: strings.ToLower(to.String())}
		ch.Address, _ = netip.ParseAddr(key)
		if from == api.PeerState_ESTABLISHED {
			g.mu.Lock()
			ch.Reason = g.downs[key]
			g.mu.Unlock()
		}
		fn(ch)
	})
	if err != nil {
		return fmt.Errorf("bgp: watch sessions: %w", err)
	}
	return nil
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
	g.asn = gl.ASN
	err := g.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             gl.ASN,
		RouterId:        gl.RouterID.String(),
		ListenPort:      port,
		ListenAddresses: addrs,
	}})
	if err != nil {
		return fmt.Errorf("bgp: start AS %d router id %s: %w", gl.ASN, gl.RouterID, err)
	}
	return nil
}

// Stop implements bgp.Engine: every session ends with a Cease. The
// engine may be started again. (GoBGP's server loop, started by New, runs
// until the process ends: reuse an Engine rather than make new ones.)
func (g *Engine) Stop(ctx context.Context) error {
	if err := g.s.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		return fmt.Errorf("bgp: stop: %w", err)
	}
	return nil
}

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func familyOf(a netip.Addr) *api.Family {
	if a.Is4() {
		return familyV4
	}
	return familyV6
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
			{Config: &api.AfiSafiConfig{Family: familyV4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyV6, Enabled: true}},
		},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 1 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("bgp: add neighbor %s AS %d: %w", n.Address, n.ASN, err)
	}
	return nil
}

// DeleteNeighbor implements bgp.Engine.
func (g *Engine) DeleteNeighbor(ctx context.Context, address string) error {
	if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: address}); err != nil {
		return fmt.Errorf("bgp: delete neighbor %s: %w", address, err)
	}
	return nil
}

// path builds the api.Path of a local host route; the next hop is left
// unspecified, which GoBGP replaces with the session's own address.
func (g *Engine) path(prefix netip.Prefix, a bgp.Attrs) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: prefix.Addr().String(), PrefixLen: uint32(prefix.Bits())})
	if err != nil {
		return nil, err
	}
	var msgs []*anypb.Any
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0}) // IGP
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, origin)
	fam := familyOf(prefix.Addr())
	if prefix.Addr().Is4() {
		nh, err := anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, nh)
	} else {
		mp, err := anypb.New(&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, mp)
	}
	if a.Prepend > 0 {
		nums := make([]uint32, a.Prepend)
		for i := range nums {
			nums[i] = g.asn
		}
		asp, err := anypb.New(&api.AsPathAttribute{Segments: []*api.AsSegment{{Type: 2, Numbers: nums}}}) // AS_SEQUENCE
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, asp)
	}
	if a.MED != 0 {
		med, err := anypb.New(&api.MultiExitDiscAttribute{Med: a.MED})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, med)
	}
	if len(a.Communities) > 0 {
		c, err := anypb.New(&api.CommunitiesAttribute{Communities: a.Communities})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, c)
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: msgs}, nil
}

// Announce implements bgp.Engine.
func (g *Engine) Announce(ctx context.Context, prefix netip.Prefix, a bgp.Attrs) error {
	p, err := g.path(prefix, a)
	if err == nil {
		_, err = g.s.AddPath(ctx, &api.AddPathRequest{Path: p})
	}
	if err != nil {
		return fmt.Errorf("bgp: announce %s: %w", prefix, err)
	}
	return nil
}

// Withdraw implements bgp.Engine.
func (g *Engine) Withdraw(ctx context.Context, prefix netip.Prefix) error {
	p, err := g.path(prefix, bgp.Attrs{})
	if err == nil {
		err = g.s.DeletePath(ctx, &api.DeletePathRequest{Family: p.Family, Path: p})
	}
	if err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", prefix, err)
	}
	return nil
}

// Neighbors implements bgp.Engine.
func (g *Engine) Neighbors(ctx context.Context) ([]bgp.NeighborState, error) {
	var out []bgp.NeighborState
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		var ns bgp.NeighborState
		ns.Address, _ = netip.ParseAddr(p.GetConf().GetNeighborAddress())
		st := p.GetState().GetSessionState()
		ns.State = strings.ToLower(st.String())
		if st == api.PeerState_ESTABLISHED {
			if up := p.GetTimers().GetState().GetUptime(); up != nil {
				ns.Since = up.AsTime()
			}
		}
		for _, af := range p.GetAfiSafis() {
			ns.Received += int(af.GetState().GetReceived())
			ns.Sent += int(af.GetState().GetAdvertised())
		}
		out = append(out, ns)
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list neighbors: %w", err)
	}
	return out, nil
}

// Routes implements bgp.Engine.
func (g *Engine) Routes(ctx context.Context) ([]bgp.Route, error) {
	var out []bgp.Route
	var errs []error
	for _, fam := range []*api.Family{familyV4, familyV6} {
		err := g.s.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}, func(d *api.Destination) {
			for _, p := range d.GetPaths() {
				if !p.GetBest() || p.GetNeighborIp() == "" || p.GetNeighborIp() == "<nil>" {
					continue
				}
				r, err := route(d.GetPrefix(), p)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if r.From.IsValid() {
					out = append(out, r)
				}
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

func route(prefix string, p *api.Path) (bgp.Route, error) {
	var r bgp.Route
	var err error
	if r.Prefix, err = netip.ParsePrefix(prefix); err != nil {
		return r, err
	}
	r.From, _ = netip.ParseAddr(p.GetNeighborIp())
	if r.From.IsUnspecified() {
		r.From = netip.Addr{} // a local path
	}
	for _, a := range p.GetPattrs() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return r, err
		}
		switch v := m.(type) {
		case *api.NextHopAttribute:
			r.NextHop, _ = netip.ParseAddr(v.NextHop)
		case *api.MpReachNLRIAttribute:
			if len(v.NextHops) > 0 {
				r.NextHop, _ = netip.ParseAddr(v.NextHops[0])
			}
		case *api.AsPathAttribute:
			for _, s := range v.Segments {
				r.ASPath = append(r.ASPath, s.Numbers...)
			}
		case *api.MultiExitDiscAttribute:
			r.MED = v.Med
		case *api.CommunitiesAttribute:
			r.Communities = v.Communities
		}
	}
	return r, nil
}

// slogger routes GoBGP's log to slog.
type slogger struct {
	log   *slog.Logger
	level gobgplog.LogLevel
	note  func(msg string, f gobgplog.Fields) // sees every record
}

func (l *slogger) emit(lv slog.Level, gl gobgplog.LogLevel, msg string, f gobgplog.Fields) {
	if l.note != nil {
		l.note(msg, f)
	}
	if gl > l.level {
		return
	}
	args := make([]any, 0, 2*len(f))
	for k, v := range f {
		args = append(args, k, v)
	}
	l.log.Log(context.Background(), lv, "gobgp: "+msg, args...)
}

func (l *slogger) Panic(msg string, f gobgplog.Fields) {
	l.emit(slog.LevelError, gobgplog.PanicLevel, msg, f)
	panic(msg)
}
func (l *slogger) Fatal(msg string, f gobgplog.Fields) {
	l.emit(slog.LevelError, gobgplog.FatalLevel, msg, f)
}
func (l *slogger) Error(msg string, f gobgplog.Fields) {
	l.emit(slog.LevelError, gobgplog.ErrorLevel, msg, f)
}
func (l *slogger) Warn(msg string, f gobgplog.Fields) {
	l.emit(slog.LevelWarn, gobgplog.WarnLevel, msg, f)
}
func (l *slogger) Info(msg string, f gobgplog.Fields) {
	l.emit(slog.LevelInfo, gobgplog.InfoLevel, msg, f)
}
func (l *slogger) Debug(msg string, f gobgplog.Fields) {
	l.emit(slog.LevelDebug, gobgplog.DebugLevel, msg, f)
}
func (l *slogger) SetLevel(level gobgplog.LogLevel) { l.level = level }
func (l *slogger) GetLevel() gobgplog.LogLevel      { return l.level }
