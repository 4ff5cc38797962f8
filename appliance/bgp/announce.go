package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"halb/appliance/config"
)

// DefaultDrain is how long a VIP stays announced with GRACEFUL_SHUTDOWN
// after maintenance goes on, before it is withdrawn: time for routers to
// move new flows away and for open connections to finish.
const DefaultDrain = 30 * time.Second

// Input is what the announce decision reads.
type Input struct {
	Config *config.Config
	// Healthy says which services have their min_healthy servers up.
	Healthy map[string]bool
	// Maintenance is on since MaintenanceSince.
	Maintenance      bool
	MaintenanceSince time.Time
	// Drain is how long a VIP is announced with GRACEFUL_SHUTDOWN (or
	// while connections are handed off) before maintenance withdraws it.
	Drain time.Duration
	// HandoffTo are the nodes that take new connections during a drain
	// (bgp.drain_to, with the rules in place); none: GRACEFUL_SHUTDOWN.
	HandoffTo []netip.Addr
	// Open is how many connections of this node's own are still open on
	// the VIPs during a handoff drain (negative: not known); Drained says
	// none was left at some point of this maintenance.
	Open    int
	Drained bool
	Now     time.Time
}

// Decision is what to do with one VIP, and why.
type Decision struct {
	Prefix   netip.Prefix `json:"prefix"`
	Mode     string       `json:"mode"` // active_active or active_standby
	Announce bool         `json:"announce"`
	// Handoff: announced while new connections are handed to other nodes
	// (a maintenance drain with bgp.drain_to).
	Handoff bool   `json:"handoff,omitempty"`
	Attrs   Attrs  `json:"attrs"`
	Reason  string `json:"reason"`
}

// Decide says for every VIP of in.Config's bgp.announce whether it is
// announced, with which attributes, and why; next is when the decision
// changes by itself (the end of a maintenance drain), zero if never.
//
//   - when: always announces; when_healthy only while every service the
//     VIP follows is healthy.
//   - active_standby on a node without bgp.active: the AS path is
//     prepended standby_prepend times, so routers prefer the active node.
//   - maintenance: a VIP that would be announced is announced with the
//     GRACEFUL_SHUTDOWN community (RFC 8326) for Drain, then withdrawn;
//     with HandoffTo, it stays announced as it was while new connections
//     go to those nodes, until none of this node's own is open (or Drain
//     has passed), then it is withdrawn.
func Decide(in Input) (out []Decision, next time.Time) {
	b := &in.Config.BGP
	drainEnd := in.MaintenanceSince.Add(in.Drain)
	for i := range b.Announce {
		a := &b.Announce[i]
		pfx, err := netip.ParsePrefix(a.VIP)
		if err != nil {
			continue // validated: cannot happen
		}
		d := Decision{Prefix: pfx.Masked(), Mode: cmp.Or(a.Mode, config.DefaultBGPMode)}
		var reasons []string
		if a.When == "always" {
			d.Announce = true
			reasons = append(reasons, "when: always")
		} else {
			svcs := in.Config.AnnouncedServices(a)
			var sick []string
			for _, s := range svcs {
				if !in.Healthy[s] {
					sick = append(sick, s)
				}
			}
			if len(sick) > 0 {
				reasons = append(reasons, "not healthy: "+strings.Join(sick, ", ")+" (fewer than min_healthy servers up)")
			} else {
				d.Announce = true
				reasons = append(reasons, "healthy: "+strings.Join(svcs, ", "))
			}
		}
		if d.Announce && a.Mode == "active_standby" {
			if b.Active {
				reasons = append(reasons, "active")
			} else {
				d.Attrs.Prepend = a.StandbyPrepend
				reasons = append(reasons, fmt.Sprintf("standby: AS path prepended %d times", a.StandbyPrepend))
			}
		}
		if d.Announce && in.Maintenance && len(in.HandoffTo) > 0 {
			switch {
			case in.Now.Before(drainEnd) && !in.Drained:
				d.Handoff = true
				open := "open connections unknown"
				if in.Open >= 0 {
					open = fmt.Sprintf("%d open connection(s) finishing", in.Open)
				}
				reasons = append(reasons, fmt.Sprintf("maintenance: new connections handed to %s; %s (until %s)",
					joinAddrs(in.HandoffTo), open, drainEnd.Format(time.TimeOnly)))
				next = drainEnd
			case in.Drained:
				d = Decision{Prefix: d.Prefix, Mode: d.Mode}
				reasons = []string{"maintenance: withdrawn after the drain (no connection left)"}
			default:
				d = Decision{Prefix: d.Prefix, Mode: d.Mode}
				reasons = []string{fmt.Sprintf("maintenance: withdrawn after the drain (drain_time %s passed; %d connection(s) left)", in.Drain, max(in.Open, 0))}
			}
		} else if d.Announce && in.Maintenance {
			if in.Now.Before(drainEnd) {
				d.Attrs.Communities = []uint32{GracefulShutdown}
				reasons = append(reasons, "maintenance: draining with GRACEFUL_SHUTDOWN (65535:0) until "+drainEnd.Format(time.TimeOnly))
				next = drainEnd
			} else {
				d = Decision{Prefix: d.Prefix, Mode: d.Mode}
				reasons = []string{"maintenance: withdrawn after the drain"}
			}
		}
		d.Reason = strings.Join(reasons, "; ")
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y Decision) int { return x.Prefix.Addr().Compare(y.Prefix.Addr()) })
	return out, next
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
