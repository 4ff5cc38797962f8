package config

import (
	"fmt"
	"net/netip"
	"time"
)

// AnnouncedServices returns the services whose health the VIP of a
// follows: a.Services, or by default every service with a listener on
// the VIP's address.
func (c *Config) AnnouncedServices(a *BGPAnnounce) []string {
	if len(a.Services) > 0 {
		return a.Services
	}
	pfx, err := netip.ParsePrefix(a.VIP)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range c.Services {
		for _, l := range s.Listen {
			if ap, err := netip.ParseAddrPort(l); err == nil && ap.Addr().Unmap() == pfx.Addr() {
				out = append(out, s.Name)
				break
			}
		}
	}
	return out
}

// bgp checks the bgp section: the speaker, its neighbors and the VIPs
// announced (host prefixes, not VRRP VIPs, services that exist).
func (v *validator) bgp(c *Config, services map[string]bool) {
	b := &c.BGP
	if !b.Enabled() {
		return
	}
	v.asn("bgp.asn", b.ASN)
	if b.RouterID == "" {
		// halbd takes the IPv4 address it reaches the first neighbor
		// from (a node that a peer's config gives bgp has none yet).
	} else if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
		v.errf("bgp.router_id", "%q is not an IPv4 address (e.g. 10.0.0.1)", b.RouterID)
	}
	v.intRange("bgp.listen_port", b.ListenPort, 0, 65535)
	if len(b.Neighbors) == 0 {
		v.errf("bgp.neighbors", "at least one neighbor is required")
	}
	addrs := map[netip.Addr]string{}
	for i := range b.Neighbors {
		n := &b.Neighbors[i]
		path := fmt.Sprintf("bgp.neighbors[%d]", i)
		if n.Address == "" {
			v.errf(path+".address", "is required")
		} else if a, ok := v.ip(path+".address", n.Address); ok {
			if other, dup := addrs[a]; dup {
				v.errf(path+".address", "%s is already %s", a, other)
			} else {
				addrs[a] = path
			}
		}
		v.asn(path+".asn", n.ASN)
		if len(n.Password) > 80 {
			v.errf(path+".password", "is %d bytes; TCP MD5 keys are at most 80", len(n.Password))
		}
		hold, ka := n.Hold(), n.Keepalive.D()
		switch {
		case hold%time.Second != 0:
			v.errf(path+".hold_time", "%s is not whole seconds", hold)
		case hold != 0 && (hold < 3*time.Second || hold > 65535*time.Second):
			v.errf(path+".hold_time", "%s is neither 0s nor in 3s..65535s", hold)
		}
		switch {
		case ka%time.Second != 0 || ka < 0:
			v.errf(path+".keepalive", "%s is not whole seconds", n.Keepalive)
		case hold == 0 && ka != 0:
			v.errf(path+".keepalive", "%s: with hold_time 0s no keepalives are sent; leave it out", n.Keepalive)
		case hold != 0 && hold >= 3*time.Second && (ka < time.Second || ka >= hold):
			v.errf(path+".keepalive", "%s is out of range 1s..%s (less than hold_time)", n.Keepalive, hold-time.Second)
		}
		v.intRange(path+".multihop", n.Multihop, 1, 255)
		switch iv := n.BFDInterval.D(); {
		case !n.BFD && (n.BFDInterval != 0 || n.BFDMultiplier != 0):
			v.errf(path+".bfd", "bfd_interval and bfd_multiplier are set but bfd is not: set bfd: true or leave them out")
		case !n.BFD:
		case iv%time.Millisecond != 0 || iv < 10*time.Millisecond || iv > time.Minute:
			v.errf(path+".bfd_interval", "%s is not whole milliseconds in 10ms..60s", n.BFDInterval)
		case n.Multihop > 1:
			v.errf(path+".bfd", "BFD is single hop here (RFC 5881): not with multihop %d", n.Multihop)
		default:
			v.intRange(path+".bfd_multiplier", n.BFDMultiplier, 2, 255)
		}
	}
	vrrpVIPs := map[netip.Addr]string{}
	for i, r := range c.VRRP {
		for _, s := range r.VIPs {
			if p, err := netip.ParsePrefix(s); err == nil {
				vrrpVIPs[p.Addr()] = fmt.Sprintf("vrrp[%d] (%s)", i, r.Name)
			}
		}
	}
	seen := map[netip.Addr]string{}
	for i := range b.Announce {
		a := &b.Announce[i]
		path := fmt.Sprintf("bgp.announce[%d]", i)
		pfx, err := netip.ParsePrefix(a.VIP)
		switch {
		case a.VIP == "":
			v.errf(path+".vip", "is required")
		case err != nil || pfx.Addr().Zone() != "":
			v.errf(path+".vip", "%q is not a host prefix (e.g. 192.168.10.100/32)", a.VIP)
		case !pfx.IsSingleIP():
			v.errf(path+".vip", "%q is not a host prefix: use /%d", a.VIP, pfx.Addr().BitLen())
		case vrrpVIPs[pfx.Addr()] != "":
			v.errf(path+".vip", "%s is a VIP of %s; a VIP is announced by BGP or held by VRRP, not both", pfx.Addr(), vrrpVIPs[pfx.Addr()])
		case seen[pfx.Addr()] != "":
			v.errf(path+".vip", "%s is already announced by %s", pfx.Addr(), seen[pfx.Addr()])
		default:
			seen[pfx.Addr()] = path
		}
		v.oneOf(path+".mode", a.Mode, BGPModes)
		v.oneOf(path+".when", a.When, BGPWhens)
		for j, s := range a.Services {
			if !services[s] {
				v.errf(fmt.Sprintf("%s.services[%d]", path, j), "service %q is not defined", s)
			}
		}
		if a.When == "when_healthy" && len(a.Services) == 0 && err == nil && len(c.AnnouncedServices(a)) == 0 {
			v.errf(path+".services", "no service listens on %s: name the services whose health the VIP follows, or use when: always", pfx.Addr())
		}
		if a.Mode == "active_standby" {
			v.intRange(path+".standby_prepend", a.StandbyPrepend, 1, 10)
		}
	}
	if d := b.DrainTime.D(); d < time.Second || d > time.Hour {
		v.errf("bgp.drain_time", "%s is out of range 1s..1h", b.DrainTime)
	}
	targets := map[netip.Addr]string{}
	for i, s := range b.DrainTo {
		path := fmt.Sprintf("bgp.drain_to[%d]", i)
		a, ok := v.ip(path, s)
		switch {
		case !ok:
		case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.Zone() != "":
			v.errf(path, "%s is not the unicast address of another halb node", a)
		case targets[a] != "":
			v.errf(path, "%s is already %s", a, targets[a])
		case addrs[a] != "":
			v.errf(path, "%s is %s: drain_to names other halb nodes, not routers", a, addrs[a])
		case seen[a] != "":
			v.errf(path, "%s is announced by %s: drain_to names other halb nodes by their own addresses", a, seen[a])
		default:
			targets[a] = path
		}
	}
}

// MaxASN is the largest AS number a speaker may have (4294967295 is
// reserved, RFC 7300).
const MaxASN = 4294967294

func (v *validator) asn(path string, n int) {
	if n == 0 {
		v.errf(path, "is required, 1..%d", MaxASN)
	} else {
		v.intRange(path, n, 1, MaxASN)
	}
}
