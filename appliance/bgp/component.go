package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// Loopback is where the announced VIPs are put, so that the proxy's
// listeners on them accept: the loopback carries no ARP for them.
// vrrp.NetlinkNetif is one.
type Loopback interface {
	AddVIP(ifname string, vip netip.Prefix) error
	DelVIP(ifname string, vip netip.Prefix) error
}

// loName is the interface the VIPs go on.
const loName = "lo"

// retryEvery is how often a reconcile that failed is tried again.
const retryEvery = 5 * time.Second

// Component is the daemon's BGP part: it keeps the engine's global
// settings, neighbors and announcements equal to what the config, the
// services' health and maintenance call for.
type Component struct {
	log       *slog.Logger
	lo        Loopback // nil: VIPs are not put on the loopback
	newEngine func() Engine
	now       func() time.Time
	drain     time.Duration
	kick      chan struct{}
	// publish puts events on the daemon's stream (bgp.session_*,
	// bgp.vip_*).
	publish func(typ, msg string, data any)

	// smu guards downs: why and when each session last went down from
	// established (the engine's watch writes it).
	smu   sync.Mutex
	downs map[netip.Addr]sessionDown

	mu         sync.Mutex
	cfg        *config.Config
	healthy    map[string]bool
	maint      bool
	maintSince time.Time
	// What the engine has, owned by reconcile (under mu for Status). The
	// engine is made once and restarted (Stop, Start) when its global
	// settings change; the session watch stays with it.
	eng       Engine
	started   bool
	global    Global
	neighbors map[netip.Addr]Neighbor
	announced map[netip.Prefix]Attrs
	onLo      map[netip.Prefix]bool
	// vipState is each VIP's state and prepend as last published.
	vipState  map[netip.Prefix]string
	decisions []Decision
	lastErr   error

	// stopping: Withdraw has run; reconcile does nothing any more.
	stopping bool

	// The drain without resets (handoff.go): the rules in place and for
	// what, whether this maintenance's drain found no connection left,
	// and until when connections are handed back after it.
	handoff     Handoff // nil: bgp.drain_to has no effect
	openConns   func([]netip.Prefix) (int, error)
	hPhase      HandoffPhase
	hKey        string
	drained     bool
	returnUntil time.Time
	returnSet   bool // returnUntil was set at the start
}

type sessionDown struct {
	reason string
	at     time.Time
}

// New returns the component. newEngine makes a speaker (gobgp.New in
// halbd; nil: a config with bgp fails to apply, saying so); lo may be nil;
// publish gets the events (nil: none).
func New(log *slog.Logger, lo Loopback, newEngine func() Engine, publish func(typ, msg string, data any)) *Component {
	if publish == nil {
		publish = func(string, string, any) {}
	}
	return &Component{
		log: log, lo: lo, newEngine: newEngine, now: time.Now, drain: DefaultDrain, publish: publish, openConns: OpenConns,
		kick: make(chan struct{}, 1), healthy: map[string]bool{}, downs: map[netip.Addr]sessionDown{},
		neighbors: map[netip.Addr]Neighbor{}, announced: map[netip.Prefix]Attrs{}, onLo: map[netip.Prefix]bool{},
		vipState: map[netip.Prefix]string{},
	}
}

// sessionChanged publishes a session that became established or went
// down from established (with the speaker's reason); the states between
// (connect, active, ...) are in the status only.
func (c *Component) sessionChanged(ch SessionChange) {
	data := map[string]any{"neighbor": ch.Address.String(), "asn": ch.ASN, "from": ch.From, "to": ch.To}
	switch {
	case ch.To == "established" && ch.From != "established":
		c.log.Info("bgp: session established", "neighbor", ch.Address, "asn", ch.ASN)
		c.publish("bgp.session_established", fmt.Sprintf("bgp: session with %s (AS %d) established", ch.Address, ch.ASN), data)
	case ch.From == "established" && ch.To != "established":
		reason := cmp.Or(ch.Reason, "no reason given")
		c.smu.Lock()
		c.downs[ch.Address] = sessionDown{reason: reason, at: c.now()}
		c.smu.Unlock()
		data["reason"] = reason
		c.log.Warn("bgp: session down", "neighbor", ch.Address, "asn", ch.ASN, "state", ch.To, "reason", reason)
		c.publish("bgp.session_down", fmt.Sprintf("bgp: session with %s (AS %d) down: %s", ch.Address, ch.ASN, reason), data)
	}
}

// VIP states, as the status and the events name them.
const (
	VIPAnnounced        = "announced"
	VIPGracefulShutdown = "graceful_shutdown"
	VIPHandoff          = "handoff"
	VIPWithdrawn        = "withdrawn"
)

// vipStateOf is a VIP's state from what the engine has of it (handoff:
// its new connections go to other nodes).
func vipStateOf(a Attrs, announced, handoff bool) string {
	switch {
	case !announced:
		return VIPWithdrawn
	case slices.Contains(a.Communities, GracefulShutdown):
		return VIPGracefulShutdown
	case handoff:
		return VIPHandoff
	}
	return VIPAnnounced
}

// publishVIPs publishes each VIP of ds whose state (or prepend) changed
// since last published, and the VIPs no longer in ds as withdrawn for
// why. A VIP that was never announced is not published as withdrawn.
// Called with mu held.
func (c *Component) publishVIPs(ds []Decision, why string) {
	seen := map[netip.Prefix]bool{}
	for _, d := range ds {
		seen[d.Prefix] = true
		a, ok := c.announced[d.Prefix]
		c.publishVIP(d.Prefix, d.Mode, vipStateOf(a, ok, d.Handoff), a.Prepend, d.Reason)
	}
	for _, p := range slices.SortedFunc(maps.Keys(c.vipState), prefixCompare) {
		if !seen[p] {
			c.publishVIP(p, "", VIPWithdrawn, 0, why)
			delete(c.vipState, p)
		}
	}
}

func (c *Component) publishVIP(p netip.Prefix, mode, state string, prepend int, reason string) {
	key := fmt.Sprintf("%s prepend %d", state, prepend)
	prev, ok := c.vipState[p]
	if prev == key {
		return
	}
	c.vipState[p] = key
	if !ok && state == VIPWithdrawn {
		return
	}
	word := map[string]string{VIPAnnounced: "announced", VIPGracefulShutdown: "announced with GRACEFUL_SHUTDOWN",
		VIPHandoff: "announced, new connections handed to other nodes", VIPWithdrawn: "withdrawn"}[state]
	data := map[string]any{"vip": p.String(), "state": state, "reason": reason}
	if mode != "" {
		data["mode"] = mode
	}
	if prepend > 0 {
		data["prepend"] = prepend
	}
	c.publish("bgp.vip_"+state, fmt.Sprintf("bgp: VIP %s %s (%s)", p, word, reason), data)
}

// Name implements the daemon's Component.
func (c *Component) Name() string { return "bgp" }

func (c *Component) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Apply takes a new validated config.
func (c *Component) Apply(cfg *config.Config) error {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	c.poke()
	return nil
}

// SetServiceHealth records whether a service has its min_healthy servers.
func (c *Component) SetServiceHealth(service string, healthy bool) {
	c.mu.Lock()
	changed := c.healthy[service] != healthy
	c.healthy[service] = healthy
	c.mu.Unlock()
	if changed {
		c.poke()
	}
}

// SetLoopback sets where VIPs go; call before Run.
func (c *Component) SetLoopback(lo Loopback) {
	c.mu.Lock()
	c.lo = lo
	c.mu.Unlock()
}

// SetHandoff sets what moves connections in a drain with bgp.drain_to
// (NFT in halbd); call before Run.
func (c *Component) SetHandoff(h Handoff) {
	c.mu.Lock()
	c.handoff = h
	c.mu.Unlock()
}

// SetMaintenance turns maintenance on (VIPs drain with GRACEFUL_SHUTDOWN,
// or by handing new connections to bgp.drain_to, then are withdrawn) or
// off (announced again as health allows). drain false withdraws at once
// (halbd starting in maintenance: nothing to drain).
func (c *Component) SetMaintenance(on, drain bool) {
	c.mu.Lock()
	if on && !c.maint {
		c.maintSince = c.now()
		c.drained = false
		if !drain {
			c.maintSince = time.Time{}
		}
	}
	if !on && c.maint {
		c.returnUntil = c.now().Add(c.drainOf(c.cfg))
	}
	c.maint = on
	c.mu.Unlock()
	c.poke()
}

// Run reconciles on every change until ctx ends, then stops the speaker
// (closing its sessions withdraws every route) and takes the VIPs off the
// loopback.
func (c *Component) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.stop()
			return ctx.Err()
		case <-c.kick:
		case <-timer.C:
		}
		next, err := c.reconcile(ctx)
		wait := time.Duration(0)
		if err != nil {
			wait = retryEvery
		}
		if !next.IsZero() {
			if d := next.Sub(c.now()); wait == 0 || d < wait {
				wait = max(d, time.Millisecond)
			}
		}
		timer.Stop()
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// Withdraw, as halbd begins to stop, stops the speaker (closing its
// sessions withdraws every route) but leaves the VIPs on the loopback, so
// that what still reaches this node while the routers move is served;
// nothing is announced again. With bgp.drain_to it first drains as
// maintenance does: new connections go to the other nodes until none of
// this node's own is open (or drain_time has passed), and what reaches it
// after the withdrawal is handed on too. It reports whether any route was
// announced.
func (c *Component) Withdraw() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if !c.started || len(c.announced) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if targets := handoffTargets(&c.cfg.BGP); c.handoff != nil && len(targets) > 0 {
		vips := vipsOf(c.cfg)
		if err := c.setHandoff(ctx, HandoffDrain, vips, targets); err != nil {
			c.log.Warn("bgp: no drain before stopping", "err", err)
		} else {
			// Unlocked meanwhile: reconcile does nothing any more
			// (stopping), and stop comes after Withdraw.
			c.mu.Unlock()
			c.log.Info("bgp: handing new connections on before stopping", "to", targets)
			deadline := time.Now().Add(c.drainOf(c.cfg))
			for time.Now().Before(deadline) {
				if n, err := c.openConns(vips); err != nil || n == 0 {
					break
				}
				time.Sleep(handoffPoll)
			}
			c.mu.Lock()
		}
	}
	c.stopEngineLocked(ctx, "halbd stopping")
	return true
}

// stop stops the engine and removes the loopback VIPs.
func (c *Component) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked("halbd stopping")
}

// stopEngineLocked stops the engine if it runs, forgets its sessions
// and announcements and publishes the VIPs withdrawn (why: for their
// events).
func (c *Component) stopEngineLocked(ctx context.Context, why string) {
	if c.started {
		if err := c.eng.Stop(ctx); err != nil {
			c.log.Warn("bgp: stop", "err", err)
		}
		c.started = false
	}
	clear(c.neighbors)
	clear(c.announced)
	c.publishVIPs(nil, why)
}

// stopLocked stops the engine (why: for the VIP events), removes the
// loopback VIPs and the handoff rules.
func (c *Component) stopLocked(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.stopEngineLocked(ctx, why)
	if err := c.pruneLoopback(nil); err != nil {
		c.log.Warn("bgp: loopback", "err", err)
	}
	if err := c.setHandoff(ctx, HandoffOff, nil, nil); err != nil {
		c.log.Warn("bgp: handoff rules", "err", err)
	}
}

// drainOf is cfg's bgp.drain_time (the component's default without one).
func (c *Component) drainOf(cfg *config.Config) time.Duration {
	if cfg != nil && cfg.BGP.DrainTime != 0 {
		return cfg.BGP.DrainTime.D()
	}
	return c.drain
}

// setHandoff puts the rules of phase in place for vips and targets,
// unless they are already. Called with mu held.
func (c *Component) setHandoff(ctx context.Context, phase HandoffPhase, vips []netip.Prefix, targets []netip.Addr) error {
	if c.handoff == nil {
		return nil
	}
	if len(targets) == 0 {
		phase = HandoffOff
	}
	key := fmt.Sprint(vips, targets)
	if phase == HandoffOff {
		key = ""
	}
	if phase == c.hPhase && key == c.hKey {
		return nil
	}
	if err := c.handoff.Set(ctx, phase, vips, targets); err != nil {
		return err
	}
	if phase != c.hPhase {
		c.log.Info("bgp: handoff "+phase.String(), "vips", vips, "to", targets)
	}
	c.hPhase, c.hKey = phase, key
	return nil
}

// handoffTargets is bgp.drain_to.
func handoffTargets(b *config.BGP) []netip.Addr {
	var out []netip.Addr
	for _, s := range b.DrainTo {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// globalOf is the engine's global settings for b. Without router_id the
// router id is the IPv4 address this node reaches its first IPv4 neighbor
// from (the kernel's choice of source; no packet is sent), as routers pick
// an address of their own.
func globalOf(b *config.BGP) Global {
	rid, _ := netip.ParseAddr(b.RouterID)
	if !rid.IsValid() {
		rid = sourceToward(b.Neighbors)
	}
	return Global{ASN: uint32(b.ASN), RouterID: rid, ListenPort: b.ListenPort}
}

// sourceToward is the local IPv4 address of a route to the first IPv4
// neighbor that has one; the zero Addr when there is none.
func sourceToward(ns []config.BGPNeighbor) netip.Addr {
	for _, n := range ns {
		a, err := netip.ParseAddr(n.Address)
		if err != nil || !a.Is4() {
			continue
		}
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 179)))
		if err != nil {
			continue
		}
		local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
		return local
	}
	return netip.Addr{}
}

// neighborsOf is the engine's neighbors for b.
func neighborsOf(b *config.BGP) map[netip.Addr]Neighbor {
	out := map[netip.Addr]Neighbor{}
	for _, n := range b.Neighbors {
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			continue
		}
		out[a] = Neighbor{Address: a, ASN: uint32(n.ASN), Password: n.Password,
			HoldTime: n.Hold(), Keepalive: n.Keepalive.D(), Multihop: n.Multihop,
			BFD: BFD{Enabled: n.BFD, MinTx: n.BFDInterval.D(), MinRx: n.BFDInterval.D(), Multiplier: n.BFDMultiplier}}
	}
	return out
}

// reconcile brings the engine to what the config, health and maintenance
// call for. It returns when the decision changes by itself (zero: never).
func (c *Component) reconcile(ctx context.Context) (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return time.Time{}, nil
	}
	cfg := c.cfg
	if cfg == nil || !cfg.BGP.Enabled() {
		c.stopLocked("bgp removed from the config")
		c.decisions, c.lastErr = nil, nil
		return time.Time{}, nil
	}
	var errs []error
	g := globalOf(&cfg.BGP)
	if !g.RouterID.IsValid() {
		// No router_id and no route to a neighbor yet (the link may
		// come up later): try again shortly.
		c.lastErr = errors.New("bgp: no router_id, and no route to an IPv4 neighbor to take this node's address from")
		return time.Now().Add(2 * time.Second), c.lastErr
	}
	if c.started && (g.ASN != c.global.ASN || g.RouterID != c.global.RouterID || g.ListenPort != c.global.ListenPort ||
		!slices.Equal(g.ListenAddresses, c.global.ListenAddresses)) {
		c.log.Info("bgp: global settings changed, restarting the speaker", "asn", g.ASN, "router_id", g.RouterID)
		if err := c.eng.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
		c.started = false
	}
	if !c.started {
		if c.eng == nil && c.newEngine == nil {
			c.lastErr = errors.New("bgp: this halbd has no BGP engine")
			return time.Time{}, c.lastErr
		}
		if c.eng == nil {
			c.eng = c.newEngine()
			if err := c.eng.WatchSessions(ctx, c.sessionChanged); err != nil {
				c.log.Warn("bgp: cannot watch the sessions: no events for them", "err", err)
			}
		}
		if err := c.eng.Start(ctx, g); err != nil {
			c.lastErr = err
			return time.Time{}, err
		}
		c.started, c.global = true, g
		clear(c.neighbors)
		clear(c.announced)
	}

	want := neighborsOf(&cfg.BGP)
	for a, n := range c.neighbors {
		if w, ok := want[a]; !ok || w != n {
			if err := c.eng.DeleteNeighbor(ctx, a.String()); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(c.neighbors, a)
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if _, ok := c.neighbors[a]; ok {
			continue
		}
		if err := c.eng.AddNeighbor(ctx, want[a]); err != nil {
			errs = append(errs, err)
			continue
		}
		c.neighbors[a] = want[a]
	}

	vips := vipsOf(cfg)
	now := c.now()
	if !c.returnSet {
		// Starting: connections the router sends here were not opened
		// here (the node was down or restarted); they go back for a
		// while, as after maintenance.
		c.returnUntil, c.returnSet = now.Add(c.drainOf(cfg)), true
	}
	in := Input{Config: cfg, Healthy: c.healthy, Maintenance: c.maint,
		MaintenanceSince: c.maintSince, Drain: c.drainOf(cfg), Open: -1, Now: now}
	// Handing connections off during a drain: the rules go in place
	// before the decision counts on them.
	targets := handoffTargets(&cfg.BGP)
	phase := HandoffTrack
	switch {
	case c.maint:
		phase = HandoffDrain
	case now.Before(c.returnUntil):
		phase = HandoffReturn
	}
	var hoNext time.Time
	if err := c.setHandoff(ctx, phase, vips, targets); err != nil {
		errs = append(errs, err)
	} else if c.hPhase == HandoffDrain {
		in.HandoffTo = targets
		if !c.drained {
			n, err := c.openConns(vips)
			if err != nil {
				errs = append(errs, fmt.Errorf("bgp: counting open connections: %w", err))
			} else {
				in.Open, c.drained = n, n == 0
			}
			if now.Before(c.maintSince.Add(in.Drain)) {
				hoNext = now.Add(handoffPoll) // polled until the drain's end
			}
		}
		in.Drained = c.drained
	} else if c.hPhase == HandoffReturn {
		hoNext = c.returnUntil
	}
	ds, next := Decide(in)
	if !hoNext.IsZero() && (next.IsZero() || hoNext.Before(next)) {
		next = hoNext
	}
	wantAnn := map[netip.Prefix]Decision{}
	for _, d := range ds {
		if d.Announce {
			wantAnn[d.Prefix] = d
		}
	}
	// The VIPs go on the loopback before they are announced, and come
	// off after they are withdrawn.
	errs = append(errs, c.addLoopback(vips))
	for _, p := range slices.SortedFunc(maps.Keys(c.announced), prefixCompare) {
		if _, ok := wantAnn[p]; ok {
			continue
		}
		if err := c.eng.Withdraw(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(c.announced, p)
		c.log.Info("bgp: VIP withdrawn", "vip", p, "reason", reasonOf(ds, p))
	}
	for _, d := range ds {
		if !d.Announce {
			continue
		}
		if cur, ok := c.announced[d.Prefix]; ok && cur.Equal(d.Attrs) {
			continue
		}
		if err := c.eng.Announce(ctx, d.Prefix, d.Attrs); err != nil {
			errs = append(errs, err)
			continue
		}
		c.announced[d.Prefix] = d.Attrs
		c.log.Info("bgp: VIP announced", "vip", d.Prefix, "reason", d.Reason)
	}
	errs = append(errs, c.pruneLoopback(vips))
	c.publishVIPs(ds, "no longer in bgp.announce")
	c.decisions = ds
	c.lastErr = errors.Join(errs...)
	return next, c.lastErr
}

func prefixCompare(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }

// vipsOf is cfg's bgp.announce VIPs, sorted.
func vipsOf(cfg *config.Config) []netip.Prefix {
	var vips []netip.Prefix
	for _, a := range cfg.BGP.Announce {
		if p, err := netip.ParsePrefix(a.VIP); err == nil {
			vips = append(vips, p.Masked())
		}
	}
	slices.SortFunc(vips, prefixCompare)
	return vips
}

// handoffPoll is how often a handoff drain counts the open connections.
const handoffPoll = 250 * time.Millisecond

func reasonOf(ds []Decision, p netip.Prefix) string {
	for _, d := range ds {
		if d.Prefix == p {
			return d.Reason
		}
	}
	return "no longer in bgp.announce"
}

// addLoopback puts vips on the loopback; pruneLoopback takes off those
// that are not in vips. Called with mu held.
func (c *Component) addLoopback(vips []netip.Prefix) error {
	if c.lo == nil {
		return nil
	}
	var errs []error
	for _, p := range vips {
		if !c.onLo[p] {
			if err := c.lo.AddVIP(loName, p); err != nil {
				errs = append(errs, fmt.Errorf("bgp: add %s to %s: %w", p, loName, err))
				continue
			}
			c.onLo[p] = true
		}
	}
	return errors.Join(errs...)
}

func (c *Component) pruneLoopback(vips []netip.Prefix) error {
	if c.lo == nil {
		return nil
	}
	var errs []error
	for _, p := range slices.SortedFunc(maps.Keys(c.onLo), prefixCompare) {
		if !slices.Contains(vips, p) {
			if err := c.lo.DelVIP(loName, p); err != nil {
				errs = append(errs, fmt.Errorf("bgp: remove %s from %s: %w", p, loName, err))
				continue
			}
			delete(c.onLo, p)
		}
	}
	return errors.Join(errs...)
}

// Status implements the daemon's Component: nil when bgp is off.
func (c *Component) Status() any {
	st := c.status()
	if st == nil {
		return nil
	}
	return st
}

func (c *Component) status() *api.BGPStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil || !c.cfg.BGP.Enabled() {
		return nil
	}
	st := &api.BGPStatus{ASN: c.global.ASN, Maintenance: c.maint}
	if c.global.RouterID.IsValid() {
		st.RouterID = c.global.RouterID.String()
	}
	if c.lastErr != nil {
		st.Error = c.lastErr.Error()
	}
	for _, d := range c.decisions {
		a, ok := c.announced[d.Prefix]
		v := api.BGPVIP{VIP: d.Prefix.String(), Mode: d.Mode, State: vipStateOf(a, ok, d.Handoff), Announced: ok, Prepend: a.Prepend, Reason: d.Reason}
		for _, cm := range a.Communities {
			v.Communities = append(v.Communities, fmt.Sprintf("%d:%d", cm>>16, cm&0xffff))
		}
		st.VIPs = append(st.VIPs, v)
	}
	if !c.started {
		return st
	}
	// Under mu: the engine is not stopped meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ns, err := c.eng.Neighbors(ctx)
	if err != nil && st.Error == "" {
		st.Error = err.Error()
	}
	c.smu.Lock()
	for _, n := range ns {
		down := c.downs[n.Address]
		st.Sessions = append(st.Sessions, api.BGPSession{Address: n.Address.String(), ASN: c.neighbors[n.Address].ASN,
			State: n.State, Since: n.Since, Received: n.Received, Sent: n.Sent, DownReason: down.reason, LastDown: down.at, BFD: n.BFD})
	}
	c.smu.Unlock()
	slices.SortFunc(st.Sessions, func(a, b api.BGPSession) int { return cmp.Compare(a.Address, b.Address) })
	return st
}
