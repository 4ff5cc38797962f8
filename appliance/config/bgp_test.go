package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// bgpBase is a valid config with a service on 192.168.10.100:80; the
// cases append a bgp section.
const bgpBase = `
node: {name: lb1}
vrrp:
  - {name: v, interface: eth0, vrid: 1, vips: [10.0.0.100/24]}
services:
  - {name: web, listen: ["192.168.10.100:80"], default_backend: www}
  - {name: api, listen: ["192.168.10.101:80"], default_backend: www}
backends:
  - name: www
    servers: [{name: s1, address: "10.0.0.11:80"}]
`

func TestValidateBGP(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"valid", bgpBase + `bgp:
  asn: 65001
  router_id: 10.0.0.1
  neighbors: [{address: 10.0.0.254, asn: 65000, password: secret}]
  announce:
    - {vip: 192.168.10.100/32}
    - {vip: 192.168.10.101/32, mode: active_standby, when: always}
`, nil},
		{"no bgp", bgpBase, nil},
		{"asn missing (router_id may be: halbd takes its address toward a neighbor)", bgpBase + `bgp:
  neighbors: [{address: 10.0.0.254, asn: 65000}]
`, []string{
			"halb.yaml:10: bgp.asn: is required, 1..4294967294",
		}},
		{"asn reserved", bgpBase + `bgp: {asn: 4294967295, router_id: 10.0.0.1, neighbors: [{address: 10.0.0.254, asn: 65000}]}
`, []string{"halb.yaml:10: bgp.asn: 4294967295 is out of range 1..4294967294"}},
		{"asn too large", bgpBase + `bgp: {asn: 4294967296, router_id: 10.0.0.1, neighbors: [{address: 10.0.0.254, asn: 65000}]}
`, []string{"halb.yaml:10: bgp.asn: 4294967296 is out of range 1..4294967294"}},
		{"router_id IPv6", bgpBase + `bgp: {asn: 65001, router_id: "2001:db8::1", neighbors: [{address: 10.0.0.254, asn: 65000}]}
`, []string{`halb.yaml:10: bgp.router_id: "2001:db8::1" is not an IPv4 address (e.g. 10.0.0.1)`}},
		{"no neighbors", bgpBase + `bgp: {asn: 65001, router_id: 10.0.0.1}
`, []string{"halb.yaml:10: bgp.neighbors: at least one neighbor is required"}},
		{"listen_port out of range", bgpBase + `bgp: {asn: 65001, router_id: 10.0.0.1, listen_port: 70000, neighbors: [{address: 10.0.0.254, asn: 65000}]}
`, []string{"halb.yaml:10: bgp.listen_port: 70000 is out of range 0..65535"}},
		{"neighbor errors", bgpBase + `bgp:
  asn: 65001
  router_id: 10.0.0.1
  neighbors:
    - {address: 10.0.0.254, asn: 65000}
    - {address: 10.0.0.254, asn: 0, hold_time: 2s, multihop: 0}
    - {address: router, asn: 65000, hold_time: 9500ms}
    - {address: 10.0.0.253, asn: 65000, hold_time: 9s, keepalive: 9s}
    - {address: 10.0.0.252, asn: 65000, hold_time: 0s, keepalive: 3s}
    - {asn: 65000, password: ` + longKey + `}
`, []string{
			"halb.yaml:15: bgp.neighbors[1].address: 10.0.0.254 is already bgp.neighbors[0]",
			"halb.yaml:15: bgp.neighbors[1].asn: is required, 1..4294967294",
			"halb.yaml:15: bgp.neighbors[1].hold_time: 2s is neither 0s nor in 3s..65535s",
			"halb.yaml:15: bgp.neighbors[1].multihop: 0 is out of range 1..255",
			`halb.yaml:16: bgp.neighbors[2].address: "router" is not an IP address`,
			"halb.yaml:16: bgp.neighbors[2].hold_time: 9.5s is not whole seconds",
			"halb.yaml:17: bgp.neighbors[3].keepalive: 9s is out of range 1s..8s (less than hold_time)",
			"halb.yaml:18: bgp.neighbors[4].keepalive: 3s: with hold_time 0s no keepalives are sent; leave it out",
			"halb.yaml:19: bgp.neighbors[5].address: is required",
			"halb.yaml:19: bgp.neighbors[5].password: is 81 bytes; TCP MD5 keys are at most 80",
		}},
		{"announce errors", bgpBase + `bgp:
  asn: 65001
  router_id: 10.0.0.1
  neighbors: [{address: 10.0.0.254, asn: 65000}]
  announce:
    - {vip: 192.168.10.100/24}
    - {vip: 10.0.0.100/32}
    - {vip: 192.168.10.101/32, mode: ecmp, when: sometimes, services: [nope]}
    - {vip: 192.168.10.101/32, mode: active_standby, standby_prepend: 11}
    - {vip: 192.168.10.200/32}
    - {vip: 192.168.10.201/32, when: always}
    - {}
`, []string{
			`halb.yaml:15: bgp.announce[0].vip: "192.168.10.100/24" is not a host prefix: use /32`,
			"halb.yaml:16: bgp.announce[1].vip: 10.0.0.100 is a VIP of vrrp[0] (v); a VIP is announced by BGP or held by VRRP, not both",
			"halb.yaml:16: bgp.announce[1].services: no service listens on 10.0.0.100: name the services whose health the VIP follows, or use when: always",
			`halb.yaml:17: bgp.announce[2].mode: "ecmp" is not one of active_active, active_standby`,
			`halb.yaml:17: bgp.announce[2].when: "sometimes" is not one of when_healthy, always`,
			`halb.yaml:17: bgp.announce[2].services[0]: service "nope" is not defined`,
			"halb.yaml:18: bgp.announce[3].vip: 192.168.10.101 is already announced by bgp.announce[2]",
			"halb.yaml:18: bgp.announce[3].standby_prepend: 11 is out of range 1..10",
			"halb.yaml:19: bgp.announce[4].services: no service listens on 192.168.10.200: name the services whose health the VIP follows, or use when: always",
			"halb.yaml:21: bgp.announce[6].vip: is required",
		}},
	})
}

var longKey = strings.Repeat("k", 81)

func TestValidateBGPDrainAndBFD(t *testing.T) {
	head := bgpBase + `bgp:
  asn: 65001
  router_id: 10.0.0.1
  announce: [{vip: 192.168.10.100/32}]
`
	runValidationCases(t, []validationCase{
		{"valid", head + `  neighbors: [{address: 10.0.0.254, asn: 65000, bfd: true, bfd_interval: 50ms, bfd_multiplier: 5}]
  drain_to: [10.0.0.2, "2001:db8::2"]
  drain_time: 2m
`, nil},
		{"errors", head + `  neighbors:
    - {address: 10.0.0.254, asn: 65000, bfd_interval: 50ms}
    - {address: 10.0.0.253, asn: 65000, bfd: true, bfd_interval: 5ms}
    - {address: 10.0.0.252, asn: 65000, bfd: true, multihop: 2}
    - {address: 10.0.0.251, asn: 65000, bfd: true, bfd_multiplier: 1}
  drain_to: [10.0.0.2, 10.0.0.2, 10.0.0.254, 192.168.10.100, 127.0.0.1, nowhere]
  drain_time: 2h
`, []string{
			"halb.yaml:15: bgp.neighbors[0].bfd: bfd_interval and bfd_multiplier are set but bfd is not: set bfd: true or leave them out",
			"halb.yaml:16: bgp.neighbors[1].bfd_interval: 5ms is not whole milliseconds in 10ms..60s",
			"halb.yaml:17: bgp.neighbors[2].bfd: BFD is single hop here (RFC 5881): not with multihop 2",
			"halb.yaml:18: bgp.neighbors[3].bfd_multiplier: 1 is out of range 2..255",
			"halb.yaml:19: bgp.drain_to[1]: 10.0.0.2 is already bgp.drain_to[0]",
			"halb.yaml:19: bgp.drain_to[2]: 10.0.0.254 is bgp.neighbors[0]: drain_to names other halb nodes, not routers",
			"halb.yaml:19: bgp.drain_to[3]: 192.168.10.100 is announced by bgp.announce[0]: drain_to names other halb nodes by their own addresses",
			"halb.yaml:19: bgp.drain_to[4]: 127.0.0.1 is not the unicast address of another halb node",
			`halb.yaml:19: bgp.drain_to[5]: "nowhere" is not an IP address`,
			"halb.yaml:20: bgp.drain_time: 2h0m0s is out of range 1s..1h",
		}},
	})
	cfg := mustParse(t, head+`  neighbors: [{address: 10.0.0.254, asn: 65000, bfd: true}, {address: 10.0.0.253, asn: 65000}]
`)
	if n := cfg.BGP.Neighbors; n[0].BFDInterval.D() != 300*time.Millisecond || n[0].BFDMultiplier != 3 || n[1].BFDInterval != 0 {
		t.Errorf("BFD defaults: %+v", n)
	}
	if cfg.BGP.DrainTime.D() != 30*time.Second {
		t.Errorf("drain_time default %s, want 30s", cfg.BGP.DrainTime)
	}
}

func TestBGPDefaults(t *testing.T) {
	cfg := mustParse(t, bgpBase+`bgp:
  asn: 65001
  router_id: 10.0.0.1
  neighbors:
    - {address: 10.0.0.254, asn: 65000}
    - {address: 10.0.0.253, asn: 65000, hold_time: 10s}
    - {address: 10.0.0.252, asn: 65000, hold_time: 0s}
  announce: [{vip: 192.168.10.100/32}]
`)
	n := cfg.BGP.Neighbors
	for i, want := range []struct{ hold, ka time.Duration }{{9 * time.Second, 3 * time.Second}, {10 * time.Second, 3 * time.Second}, {0, 0}} {
		if n[i].Hold() != want.hold || n[i].Keepalive.D() != want.ka || n[i].Multihop != 1 {
			t.Errorf("neighbors[%d] = hold %s keepalive %s multihop %d, want %s %s 1", i, n[i].Hold(), n[i].Keepalive, n[i].Multihop, want.hold, want.ka)
		}
	}
	a := cfg.BGP.Announce[0]
	if a.Mode != "active_active" || a.When != "when_healthy" || a.StandbyPrepend != 3 || len(a.Services) != 0 {
		t.Errorf("announce[0] = %+v, want active_active when_healthy prepend 3, no services written", a)
	}
	if got := cfg.AnnouncedServices(&a); !slices.Equal(got, []string{"web"}) {
		t.Errorf("AnnouncedServices = %q, want [web] (the service listening on the VIP)", got)
	}
}
