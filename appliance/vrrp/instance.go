package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"halb/appliance/config"
)

// Default announcement settings: the first gratuitous ARP / NA goes out on
// becoming MASTER, then GARPRepeat more, GARPInterval apart.
const (
	defaultGARPRepeat   = 3
	defaultGARPInterval = time.Second
	linkPoll            = 100 * time.Millisecond
)

// InstanceStatus is the status of one VRRP instance.
type InstanceStatus struct {
	Name              string          `json:"name"`
	Interface         string          `json:"interface"`
	VRID              int             `json:"vrid"`
	Version           int             `json:"version"`
	State             State           `json:"state"`
	Priority          int             `json:"priority"`           // configured
	EffectivePriority int             `json:"effective_priority"` // after tracking
	Master            string          `json:"master,omitempty"`   // current master's address
	VIPs              []string        `json:"vips"`
	HeldVIPs          []string        `json:"held_vips"`
	LastTransition    *Transition     `json:"last_transition,omitempty"`
	Counters          Counters        `json:"counters"`
	Error             string          `json:"error,omitempty"`
	Drops             map[string]uint `json:"drops,omitempty"`
}

// Counters count what an instance did.
type Counters struct {
	AdvertsSent     uint64 `json:"adverts_sent"`
	AdvertsReceived uint64 `json:"adverts_received"`
	Dropped         uint64 `json:"dropped"`
	Transitions     uint64 `json:"transitions"`
}

// instance runs one VRRP instance: it owns the socket and the timers and
// feeds the pure machine.
type instance struct {
	cfg     config.VRRPInstance
	vips    []netip.Prefix
	v6      bool
	peers   []netip.Addr // unicast peers; empty: multicast
	netif   Netif
	log     *slog.Logger
	publish func(typ, msg string, data any)

	mu      sync.Mutex
	m       *machine
	status  InstanceStatus
	drops   map[string]uint
	lastLog map[string]time.Time

	cmds chan func(m *machine, now time.Time) Actions
}

func newInstance(cfg config.VRRPInstance, netif Netif, log *slog.Logger, publish func(string, string, any)) (*instance, error) {
	in := &instance{cfg: cfg, netif: netif, log: log.With("vrrp", cfg.Name), publish: publish,
		drops: map[string]uint{}, lastLog: map[string]time.Time{}, cmds: make(chan func(*machine, time.Time) Actions, 4)}
	for _, s := range cfg.VIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("vrrp %q: VIP %q: %w", cfg.Name, s, err)
		}
		in.vips = append(in.vips, p)
		in.v6 = p.Addr().Is6()
	}
	for _, s := range cfg.UnicastPeers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("vrrp %q: unicast peer %q: %w", cfg.Name, s, err)
		}
		in.peers = append(in.peers, a)
	}
	in.status = InstanceStatus{Name: cfg.Name, Interface: cfg.Interface, VRID: cfg.VRID, Version: cfg.Version,
		State: StateInit, Priority: cfg.Priority, EffectivePriority: cfg.Priority, VIPs: cfg.VIPs, HeldVIPs: []string{}}
	return in, nil
}

func (in *instance) params() params {
	return params{
		Version:        in.cfg.Version,
		Priority:       in.cfg.Priority,
		AdvertInterval: in.cfg.AdvertInterval.D(),
		Preempt:        in.cfg.PreemptOn(),
		PreemptDelay:   in.cfg.PreemptDelay.D(),
		GARPRepeat:     defaultGARPRepeat,
		GARPInterval:   defaultGARPInterval,
	}
}

type received struct {
	pkt      *Packet
	src, dst netip.Addr
	ttl      int
	err      error
	at       time.Time
}

// run works until ctx ends; then it steps down (priority-0 advert, VIPs
// removed) and returns. Start-up failures (no interface yet, say) are
// retried: the instance stays in INIT, reports the error in status, and
// tries again every second.
func (in *instance) run(ctx context.Context) error {
	for {
		err := in.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		in.setError(err)
		in.log.Error("instance failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (in *instance) setError(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.status.Error = ""
	if err != nil {
		in.status.Error = err.Error()
	}
}

func (in *instance) runOnce(ctx context.Context) error {
	local, err := in.netif.PrimaryAddr(in.cfg.Interface, in.v6, in.vips)
	if err != nil {
		return err
	}
	if removed, err := in.netif.RemoveLeftovers(in.cfg.Interface, in.vips); err != nil {
		return err
	} else if len(removed) > 0 {
		in.log.Warn("removed VIPs left by an earlier run", "vips", fmt.Sprint(removed))
	}
	conn, err := openConn(in.cfg.Interface, in.v6, local)
	if err != nil {
		return fmt.Errorf("vrrp %q: %w", in.cfg.Name, err)
	}
	defer conn.Close()
	in.setError(nil)

	in.mu.Lock()
	in.m = newMachine(in.params(), local)
	in.mu.Unlock()

	recv := make(chan received, 16)
	go in.readLoop(conn, recv)

	now := time.Now()
	if up, err := in.netif.LinkUp(in.cfg.Interface); err == nil && !up {
		in.step(conn, local, func(m *machine) Actions { return m.SetFault(now, in.cfg.Interface+" link down") })
	}
	in.step(conn, local, func(m *machine) Actions { return m.Start(now) })

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	link := time.NewTicker(linkPoll)
	defer link.Stop()
	for {
		in.mu.Lock()
		next := in.m.NextDeadline()
		in.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			in.step(conn, local, func(m *machine) Actions { return m.Shutdown(time.Now()) })
			return nil
		case r := <-recv:
			if r.err != nil {
				return fmt.Errorf("vrrp %q: receive: %w", in.cfg.Name, r.err)
			}
			in.handle(conn, local, r)
		case <-timer.C:
			in.step(conn, local, func(m *machine) Actions { return m.Tick(time.Now()) })
		case <-link.C:
			up, err := in.netif.LinkUp(in.cfg.Interface)
			if err != nil {
				continue
			}
			reason := ""
			if !up {
				reason = in.cfg.Interface + " link down"
			}
			in.step(conn, local, func(m *machine) Actions { return m.SetFault(time.Now(), reason) })
		case cmd := <-in.cmds:
			in.step(conn, local, func(m *machine) Actions { return cmd(m, time.Now()) })
		}
	}
}

// readLoop delivers received packets until the socket closes.
func (in *instance) readLoop(conn packetConn, out chan<- received) {
	buf := make([]byte, 1500)
	for {
		n, src, dst, ttl, err := conn.Recv(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				out <- received{err: err}
			}
			return
		}
		pkt, perr := Parse(buf[:n], src, dst)
		if perr != nil {
			in.drop(DropReason(perr), src, perr)
			continue
		}
		out <- received{pkt: pkt, src: src, dst: dst, ttl: ttl, at: time.Now()}
	}
}

// handle applies the receive checks of RFC 5798 §7.1 and feeds the machine.
func (in *instance) handle(conn packetConn, local netip.Addr, r received) {
	switch {
	case r.src == local:
		return // our own advert looped back
	case r.ttl != 255:
		in.drop("ttl", r.src, fmt.Errorf("TTL/hop limit %d, want 255", r.ttl))
		return
	case int(r.pkt.VRID) != in.cfg.VRID:
		// Another virtual router on the same LAN: not ours, not an error.
		return
	case r.pkt.Version != in.cfg.Version:
		in.drop("version", r.src, fmt.Errorf("version %d, ours %d", r.pkt.Version, in.cfg.Version))
		return
	case len(in.peers) > 0 && !containsAddr(in.peers, r.src):
		in.drop("unknown_peer", r.src, fmt.Errorf("unicast mode: %s is not a configured peer", r.src))
		return
	case in.cfg.Version == 2 && r.pkt.MaxAdvertInterval != in.cfg.AdvertInterval.D():
		in.drop("interval", r.src, fmt.Errorf("advert interval %s, ours %s (VRRPv2 requires equal)", r.pkt.MaxAdvertInterval, in.cfg.AdvertInterval))
		return
	case r.pkt.Priority == 255 && in.cfg.AddressOwner:
		// Two owners of one address: a misconfiguration to shout about,
		// but RFC processing continues.
		in.logLimited("owner", "another node claims to own the VIPs", "from", r.src)
	}
	in.mu.Lock()
	in.status.Counters.AdvertsReceived++
	in.mu.Unlock()
	in.step(conn, local, func(m *machine) Actions {
		return m.Advert(r.at, r.src, int(r.pkt.Priority), r.pkt.MaxAdvertInterval)
	})
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// drop counts a rejected packet by reason and logs it, at most once per
// reason every 10 s.
func (in *instance) drop(reason string, src netip.Addr, err error) {
	in.mu.Lock()
	in.drops[reason]++
	in.status.Counters.Dropped++
	in.mu.Unlock()
	in.logLimited(reason, "dropped VRRP packet", "reason", reason, "from", src, "err", err)
}

func (in *instance) logLimited(key, msg string, args ...any) {
	in.mu.Lock()
	last := in.lastLog[key]
	now := time.Now()
	ok := now.Sub(last) >= 10*time.Second
	if ok {
		in.lastLog[key] = now
	}
	in.mu.Unlock()
	if ok {
		in.log.Warn(msg, args...)
	}
}

// step runs one machine step and carries out its actions.
func (in *instance) step(conn packetConn, local netip.Addr, f func(*machine) Actions) {
	in.mu.Lock()
	a := f(in.m)
	prio := in.m.priority
	in.mu.Unlock()
	in.exec(conn, local, a, prio)
}

func (in *instance) exec(conn packetConn, local netip.Addr, a Actions, prio int) {
	if a.DelVIPs {
		for _, v := range in.vips {
			if err := in.netif.DelVIP(in.cfg.Interface, v); err != nil {
				in.log.Error("remove VIP", "vip", v, "err", err)
			}
		}
	}
	if a.AddVIPs {
		for _, v := range in.vips {
			if err := in.netif.AddVIP(in.cfg.Interface, v); err != nil {
				in.log.Error("add VIP", "vip", v, "err", err)
			}
		}
	}
	if a.Send {
		in.send(conn, local, a.Priority)
	}
	if a.Announce {
		addrs := make([]netip.Addr, len(in.vips))
		for i, v := range in.vips {
			addrs[i] = v.Addr()
		}
		if err := in.netif.Announce(in.cfg.Interface, addrs); err != nil {
			in.logLimited("announce", "announce VIPs", "err", err)
		}
	}
	in.mu.Lock()
	in.status.EffectivePriority = prio
	if t := a.Transition; t != nil {
		in.status.Counters.Transitions++
		tt := *t
		in.status.LastTransition = &tt
		in.status.State = t.To
	}
	if in.m != nil && in.m.masterAddr.IsValid() {
		in.status.Master = in.m.masterAddr.String()
	}
	in.mu.Unlock()
	if t := a.Transition; t != nil {
		in.log.Info("state change", "from", t.From, "to", t.To, "reason", t.Reason, "priority", prio)
		in.publish("vrrp.state", fmt.Sprintf("%s: %s → %s (%s)", in.cfg.Name, t.From, t.To, t.Reason),
			map[string]any{"instance": in.cfg.Name, "from": t.From, "to": t.To, "reason": t.Reason, "priority": prio})
	}
}

func (in *instance) send(conn packetConn, local netip.Addr, prio uint8) {
	pkt := &Packet{Version: in.cfg.Version, VRID: uint8(in.cfg.VRID), Priority: prio,
		MaxAdvertInterval: in.cfg.AdvertInterval.D()}
	for _, v := range in.vips {
		pkt.Addrs = append(pkt.Addrs, v.Addr())
	}
	dsts := in.peers
	if len(dsts) == 0 {
		dsts = []netip.Addr{MulticastIPv4}
		if in.v6 {
			dsts = []netip.Addr{MulticastIPv6}
		}
	}
	for _, dst := range dsts {
		b, err := pkt.Marshal(local, dst)
		if err == nil {
			err = conn.Send(b, dst)
		}
		if err != nil {
			in.logLimited("send", "send advert", "to", dst, "err", err)
			continue
		}
		in.mu.Lock()
		in.status.Counters.AdvertsSent++
		in.mu.Unlock()
	}
}

// snapshot returns the instance's status, with the VIPs actually held.
func (in *instance) snapshot() InstanceStatus {
	in.mu.Lock()
	st := in.status
	st.Drops = make(map[string]uint, len(in.drops))
	for k, v := range in.drops {
		st.Drops[k] = v
	}
	in.mu.Unlock()
	st.HeldVIPs = []string{}
	for _, v := range in.vips {
		if ok, _ := in.netif.HasVIP(in.cfg.Interface, v.Addr()); ok {
			st.HeldVIPs = append(st.HeldVIPs, v.String())
		}
	}
	return st
}
