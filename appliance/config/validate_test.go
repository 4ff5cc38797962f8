package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// doc turns a raw string literal into config bytes. A leading newline is
// dropped, so that line 1 is the line after the opening backquote.
func doc(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

// parseErrors parses src as halb.yaml and returns its errors as strings, or
// nil when it parsed.
func parseErrors(t *testing.T, src string) []string {
	t.Helper()
	cfg, err := Parse("halb.yaml", doc(src))
	if err == nil {
		if cfg == nil {
			t.Fatalf("Parse returned neither a config nor an error")
		}
		return nil
	}
	if cfg != nil {
		t.Errorf("Parse returned a config together with an error")
	}
	es := AsErrors(err)
	if len(es) == 0 {
		t.Fatalf("Parse error is not a non-empty Errors: %T %v", err, err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

// mustParse parses src and fails the test on any error.
func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse("halb.yaml", doc(src))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

func checkErrors(t *testing.T, src string, want []string) {
	t.Helper()
	got := parseErrors(t, src)
	if !slices.Equal(got, want) {
		t.Errorf("errors differ\ngot:\n\t%s\nwant:\n\t%s\nconfig:\n%s",
			strings.Join(got, "\n\t"), strings.Join(want, "\n\t"), src)
	}
}

type validationCase struct {
	name string
	yaml string
	want []string // nil: the config is valid
}

func runValidationCases(t *testing.T, cases []validationCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.yaml, tc.want)
		})
	}
}

func TestValidateNode(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"name missing", `
node:
  management: {}
`, []string{"halb.yaml:1: node.name: is required"}},
		{"name empty", `
node: {name: ""}
`, []string{"halb.yaml:1: node.name: is required"}},
		{"name with underscore", `
node:
  name: lb_1
`, []string{`halb.yaml:2: node.name: "lb_1" is not a valid host name`}},
		{"name starting with hyphen", `
node: {name: "-lb1"}
`, []string{`halb.yaml:1: node.name: "-lb1" is not a valid host name`}},
		{"name too long", `
node: {name: ` + strings.Repeat("a", 64) + `}
`, []string{`halb.yaml:1: node.name: "` + strings.Repeat("a", 64) + `" is not a valid host name`}},
		{"name of 63 characters", `
node: {name: ` + strings.Repeat("a", 63) + `}
`, nil},
		{"name with dots", `
node: {name: lb1.example.com}
`, nil},
		{"management interface invalid", `
node:
  name: lb1
  management: {interface: "eth0/1", dhcp: true}
`, []string{`halb.yaml:3: node.management.interface: "eth0/1" is not a valid interface name`}},
		{"management interface too long", `
node:
  name: lb1
  management: {interface: abcdefghijklmnop, dhcp: true}
`, []string{`halb.yaml:3: node.management.interface: "abcdefghijklmnop" is not a valid interface name`}},
		{"management dhcp without interface", `
node:
  name: lb1
  management: {dhcp: true}
`, []string{"halb.yaml:3: node.management.interface: is required with dhcp or address"}},
		{"management address without interface", `
node:
  name: lb1
  management:
    address: 172.16.0.1/16
`, []string{"halb.yaml:3: node.management.interface: is required with dhcp or address"}},
		{"management dhcp and address", `
node:
  name: lb1
  management:
    interface: eth0
    dhcp: true
    address: 172.16.0.1/16
`, []string{"halb.yaml:6: node.management.address: cannot be set together with dhcp: true"}},
		{"management address without prefix length", `
node:
  name: lb1
  management: {interface: eth0, address: 172.16.0.1}
`, []string{`halb.yaml:3: node.management.address: "172.16.0.1" is not an address in CIDR form (e.g. 172.16.0.1/16)`}},
		{"management gateway not an IP", `
node:
  name: lb1
  management:
    interface: eth0
    address: 172.16.0.1/16
    gateway: router
`, []string{`halb.yaml:6: node.management.gateway: "router" is not an IP address`}},
		{"management gateway with dhcp", `
node:
  name: lb1
  management:
    interface: eth0
    dhcp: true
    gateway: 172.16.0.254
`, []string{"halb.yaml:6: node.management.gateway: cannot be set together with dhcp: true"}},
		{"management dns not an IP", `
node:
  name: lb1
  management:
    interface: eth0
    address: 172.16.0.1/16
    dns:
      - 172.16.0.254
      - dns.example.com
`, []string{`halb.yaml:8: node.management.dns[1]: "dns.example.com" is not an IP address`}},
		{"management static valid", `
node:
  name: lb1
  management:
    interface: eth0
    address: "fd00::1/64"
    gateway: "fd00::fe"
    dns: ["fd00::53", 172.16.0.254]
`, nil},
		{"management dhcp valid", `
node:
  name: lb1
  management: {interface: eth0, dhcp: true}
`, nil},
	})
}

func TestValidateTime(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"servers valid", `
node: {name: lb1}
time:
  servers: [172.16.0.254, "2001:db8::123", ntp.example.com]
`, nil},
		{"server not a host", `
node: {name: lb1}
time:
  servers:
    - ntp.example.com
    - "not a host!"
`, []string{`halb.yaml:5: time.servers[1]: "not a host!" is not an IP address or host name`}},
		{"max_offset zero", `
node: {name: lb1}
time:
  max_offset: 0s
`, []string{"halb.yaml:3: time.max_offset: 0s must be positive"}},
		{"max_offset negative", `
node: {name: lb1}
time: {max_offset: -1s}
`, []string{"halb.yaml:2: time.max_offset: -1s must be positive"}},
		{"clock keys valid", `
node: {name: lb1}
time: {set_clock: true, step_threshold: 1s, min_poll: 2s, max_poll: 2s}
`, nil},
		{"poll bounds", `
node: {name: lb1}
time:
  min_poll: 500ms
  max_poll: 37h
  step_threshold: 0s
`, []string{"halb.yaml:3: time.min_poll: 500ms is outside 1s..36h", "halb.yaml:4: time.max_poll: 37h0m0s is outside 1s..36h",
			"halb.yaml:5: time.step_threshold: 0s must be positive"}},
		{"max_poll below min_poll", `
node: {name: lb1}
time: {min_poll: 128s, max_poll: 64s}
`, []string{"halb.yaml:2: time.max_poll: 1m4s is below time.min_poll (2m8s)"}},
	})
}

func TestValidatePeers(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"valid", `
node: {name: lb1}
peers:
  - {name: lb2, address: 172.16.0.2}
  - {name: lb3, address: "fd00::3"}
`, nil},
		{"name missing", `
node: {name: lb1}
peers:
  - {address: 172.16.0.2}
`, []string{"halb.yaml:3: peers[0].name: is required"}},
		{"name invalid", `
node: {name: lb1}
peers:
  - {name: "lb 2", address: 172.16.0.2}
`, []string{`halb.yaml:3: peers[0].name: "lb 2" may hold only letters, digits, '-', '_' and '.' (at most 63)`}},
		{"name duplicate", `
node: {name: lb1}
peers:
  - {name: lb2, address: 172.16.0.2}
  - {name: lb2, address: 172.16.0.3}
`, []string{`halb.yaml:4: peers[1].name: "lb2" is already used by peers[0]`}},
		{"name is this node", `
node: {name: lb1}
peers:
  - name: lb1
    address: 172.16.0.1
`, []string{`halb.yaml:3: peers[0].name: "lb1" is this node's own name`}},
		{"address missing", `
node: {name: lb1}
peers:
  - name: lb2
`, []string{"halb.yaml:3: peers[0].address: is required"}},
		{"address a host name", `
node: {name: lb1}
peers:
  - name: lb2
    address: lb2.example.com
`, []string{`halb.yaml:4: peers[0].address: "lb2.example.com" is not an IP address`}},
	})
}

// vrrpDoc is the start of a config whose vrrp list starts on line 3; a case
// appends a raw string that begins with a newline.
const vrrpDoc = "node: {name: lb1}\nvrrp:"

func TestValidateVRRP(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"valid", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
`, nil},
		{"name missing", vrrpDoc + `
  - {interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].name: is required"}},
		{"name invalid", vrrpDoc + `
  - {name: "web a", interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
`, []string{`halb.yaml:3: vrrp[0].name: "web a" may hold only letters, digits, '-', '_' and '.' (at most 63)`}},
		{"name too long", vrrpDoc + `
  - {name: ` + strings.Repeat("v", 64) + `, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
`, []string{`halb.yaml:3: vrrp[0].name: "` + strings.Repeat("v", 64) + `" may hold only letters, digits, '-', '_' and '.' (at most 63)`}},
		{"name duplicate", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - {name: a, interface: eth0, vrid: 2, vips: [10.0.0.2/24]}
`, []string{`halb.yaml:4: vrrp[1].name: "a" is already used by vrrp[0]`}},
		{"interface missing", vrrpDoc + `
  - {name: a, vrid: 1, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].interface: is required"}},
		{"interface invalid", vrrpDoc + `
  - name: a
    interface: "eth 0"
    vrid: 1
    vips: [10.0.0.1/24]
`, []string{`halb.yaml:4: vrrp[0].interface: "eth 0" is not a valid interface name`}},
		{"version 4", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    version: 4
    vips: [10.0.0.1/24]
`, []string{"halb.yaml:6: vrrp[0].version: 4 is not 2 or 3"}},
		{"version 2 valid", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, version: 2, vips: [10.0.0.1/24]}
`, nil},

		// Priority.
		{"priority 0", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, priority: 0, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].priority: 0 is out of range 1..255"}},
		{"priority 256", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, priority: 256, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].priority: 256 is out of range 1..255"}},
		{"priority 255 without address_owner", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, priority: 255, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].priority: 255 is reserved for the address owner (set address_owner: true), use 1..254"}},
		{"address_owner with priority 100", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    address_owner: true
    priority: 100
    vips: [10.0.0.1/24]
`, []string{"halb.yaml:7: vrrp[0].priority: 100: an address owner has priority 255"}},
		{"address_owner with priority 255", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, address_owner: true, priority: 255, vips: [10.0.0.1/24]}
`, nil},
		{"address_owner without priority", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, address_owner: true, vips: [10.0.0.1/24]}
`, nil},
		{"priority 1 and 254", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, priority: 1, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 2, priority: 254, vips: [10.0.0.2/24]}
`, nil},

		// Advertisement interval, VRRPv3: 10ms..40.95s in steps of 10ms.
		{"advert_interval v3 bounds", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, advert_interval: 10ms, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 2, advert_interval: 40.95s, vips: [10.0.0.2/24]}
`, nil},
		{"advert_interval v3 too short", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, advert_interval: 5ms, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].advert_interval: 5ms is out of range 10ms..40.95s"}},
		{"advert_interval v3 zero", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, advert_interval: 0s, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].advert_interval: 0s is out of range 10ms..40.95s"}},
		{"advert_interval v3 too long", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    advert_interval: 40.96s
    vips: [10.0.0.1/24]
`, []string{"halb.yaml:6: vrrp[0].advert_interval: 40.96s is out of range 10ms..40.95s"}},
		{"advert_interval v3 not a 10ms step", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, advert_interval: 15ms, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].advert_interval: 15ms is not a multiple of 10ms"}},

		// Advertisement interval, VRRPv2: whole seconds 1s..255s.
		{"advert_interval v2 bounds", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 1s, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 2, version: 2, advert_interval: 255s, vips: [10.0.0.2/24]}
`, nil},
		{"advert_interval v2 fraction", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 1500ms, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].advert_interval: 1.5s: VRRP version 2 takes whole seconds 1s..255s"}},
		{"advert_interval v2 below a second", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 100ms, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].advert_interval: 100ms: VRRP version 2 takes whole seconds 1s..255s"}},
		{"advert_interval v2 too long", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 256s, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].advert_interval: 4m16s: VRRP version 2 takes whole seconds 1s..255s"}},

		// Preempt delay.
		{"preempt_delay bounds", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, preempt: false, preempt_delay: 0s, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 2, preempt_delay: 1000s, vips: [10.0.0.2/24]}
`, nil},
		{"preempt_delay negative", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, preempt_delay: -1s, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].preempt_delay: -1s is out of range 0s..1000s"}},
		{"preempt_delay too long", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, preempt_delay: 1001s, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].preempt_delay: 16m41s is out of range 0s..1000s"}},

		// VIPs.
		{"vips missing", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1}
`, []string{"halb.yaml:3: vrrp[0].vips: at least one VIP is required"}},
		{"vips empty", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: []
`, []string{"halb.yaml:6: vrrp[0].vips: at least one VIP is required"}},
		{"vip without prefix length", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1]}
`, []string{`halb.yaml:3: vrrp[0].vips[0]: "10.0.0.1" is not an address in CIDR form (e.g. 172.16.0.100/24)`}},
		{"vip with zone", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: ["fe80::1%eth0/64"]}
`, []string{`halb.yaml:3: vrrp[0].vips[0]: "fe80::1%eth0/64" is not an address in CIDR form (e.g. 172.16.0.100/24)`}},
		{"vips of mixed family", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips:
      - 10.0.0.1/24
      - "fd00::1/64"
`, []string{`halb.yaml:8: vrrp[0].vips[1]: "fd00::1/64" is ipv6 but this instance's first VIP is ipv4; use one instance per family`}},
		{"vip in two instances", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - {name: b, interface: eth1, vrid: 2, vips: [10.0.0.9/24, 10.0.0.1/32]}
`, []string{"halb.yaml:4: vrrp[1].vips[1]: 10.0.0.1 is already a VIP of vrrp[0]"}},
		{"version 2 with IPv6 VIP", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, version: 2, vips: ["fd00::1/64"]}
`, []string{"halb.yaml:3: vrrp[0].version: VRRP version 2 carries IPv4 only; use version 3 for IPv6 VIPs"}},
		{"version 3 with IPv6 VIP", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: ["fd00::1/64"]}
`, nil},

		// VRID.
		{"vrid missing", vrrpDoc + `
  - {name: a, interface: eth0, vips: [10.0.0.1/24]}
`, []string{"halb.yaml:3: vrrp[0].vrid: 0 is out of range 1..255"}},
		{"vrid 0", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 0
    vips: [10.0.0.1/24]
`, []string{"halb.yaml:5: vrrp[0].vrid: 0 is out of range 1..255"}},
		{"vrid 300", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 300
    vips: [10.0.0.1/24]
`, []string{"halb.yaml:5: vrrp[0].vrid: 300 is out of range 1..255"}},
		{"vrid 1 and 255", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 255, vips: [10.0.0.2/24]}
`, nil},
		{"vrid twice on one interface", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 51, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 51, vips: [10.0.0.2/24]}
`, []string{"halb.yaml:4: vrrp[1].vrid: 51 is already used on eth0 by vrrp[0]"}},
		{"vrid twice on one interface IPv6", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 51, vips: ["fd00::1/64"]}
  - {name: b, interface: eth0, vrid: 51, vips: ["fd00::2/64"]}
`, []string{"halb.yaml:4: vrrp[1].vrid: 51 is already used on eth0 by vrrp[0]"}},
		{"use_vmac: one VRID on two interfaces", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 51, use_vmac: true, vips: [10.0.0.1/24]}
  - {name: b, interface: eth1, vrid: 51, use_vmac: true, vips: [10.0.1.1/24]}
`, []string{"halb.yaml:4: vrrp[1].use_vmac: the virtual MAC interface vrrp.51 is already used by vrrp[0] (same VRID and family on another interface)"}},
		{"vrid reused on another interface", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 51, vips: [10.0.0.1/24]}
  - {name: b, interface: eth1, vrid: 51, vips: [10.0.1.1/24]}
`, nil},
		{"vrid reused for the other family", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 51, vips: [10.0.0.1/24]}
  - {name: a6, interface: eth0, vrid: 51, vips: ["fd00::1/64"]}
`, nil},

		// Unicast peers.
		{"unicast peers valid", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], unicast_peers: [10.0.0.2, 10.0.0.3]}
`, nil},
		{"unicast peer not an IP", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    unicast_peers:
      - 10.0.0.2
      - lb2
`, []string{`halb.yaml:9: vrrp[0].unicast_peers[1]: "lb2" is not an IP address`}},
		{"unicast peer of the other family", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], unicast_peers: ["fd00::2"]}
`, []string{`halb.yaml:3: vrrp[0].unicast_peers[0]: "fd00::2" is not ipv4 like the VIPs`}},
		{"unicast peer IPv4 for IPv6 VIPs", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: ["fd00::1/64"], unicast_peers: [10.0.0.2]}
`, []string{`halb.yaml:3: vrrp[0].unicast_peers[0]: "10.0.0.2" is not ipv6 like the VIPs`}},

		// Tracking.
		{"track interface invalid", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      interfaces: [eth1, "a/b"]
`, []string{`halb.yaml:8: vrrp[0].track.interfaces[1]: "a/b" is not a valid interface name`}},
		{"track service undefined", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      services:
        - web
`, []string{`halb.yaml:9: vrrp[0].track.services[0]: service "web" is not defined`}},
		{"track service defined", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], track: {interfaces: [eth0], services: [web], weight: -60}}
services:
  - {name: web, listen: [":80"], default_backend: www}
backends:
  - {name: www}
`, nil},
		{"track weight bounds", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], track: {weight: -254}}
  - {name: b, interface: eth0, vrid: 2, vips: [10.0.0.2/24], track: {weight: 254}}
  - {name: c, interface: eth0, vrid: 3, vips: [10.0.0.3/24], track: {weight: 0}}
`, nil},
		{"track weight too low", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      interfaces: [eth1]
      weight: -255
`, []string{"halb.yaml:9: vrrp[0].track.weight: -255 is out of range -254..254"}},
		{"track weight too high", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], track: {weight: 255}}
`, []string{"halb.yaml:3: vrrp[0].track.weight: 255 is out of range -254..254"}},

		// Tracked scripts.
		{"track scripts valid", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      weight: -20
      scripts:
        - {name: chk, command: [/usr/local/bin/check-web, --port, "80"]}
        - {name: chk2, command: [/bin/true], interval: 10ms, timeout: 5s, rise: 3, fall: 2, weight: 0}
`, nil},
		{"track script name missing and duplicate", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - {command: [/bin/true]}
        - {name: chk, command: [/bin/true]}
        - {name: chk, command: [/bin/false]}
`, []string{
			"halb.yaml:9: vrrp[0].track.scripts[0].name: is required",
			`halb.yaml:11: vrrp[0].track.scripts[2].name: "chk" is already used by vrrp[0].track.scripts[1]`,
		}},
		{"track script names are per instance", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], track: {scripts: [{name: chk, command: [/bin/true]}]}}
  - {name: b, interface: eth0, vrid: 2, vips: [10.0.0.2/24], track: {scripts: [{name: chk, command: [/bin/true]}]}}
`, nil},
		{"track script command missing", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - name: chk
`, []string{"halb.yaml:9: vrrp[0].track.scripts[0].command: is required: the program's absolute path, then its arguments"}},
		{"track script command empty", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - name: chk
          command: []
`, []string{"halb.yaml:10: vrrp[0].track.scripts[0].command: is required: the program's absolute path, then its arguments"}},
		{"track script command relative", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - name: chk
          command:
            - check-web
            - --port
`, []string{`halb.yaml:11: vrrp[0].track.scripts[0].command[0]: "check-web" is not an absolute path`}},
		{"track script command a string", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - name: chk
          command: /bin/true --x
`, []string{"halb.yaml:10: vrrp[0].track.scripts[0].command: want a list"}},
		{"track script argument with NUL", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - name: chk
          command:
            - /bin/echo
            - "a\0b"
`, []string{"halb.yaml:12: vrrp[0].track.scripts[0].command[1]: contains a NUL byte"}},
		{"track script timings out of range", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - name: chk
          command: [/bin/true]
          interval: 5ms
          timeout: 0s
          rise: 0
          fall: -1
`, []string{
			"halb.yaml:11: vrrp[0].track.scripts[0].interval: 5ms is shorter than 10ms",
			"halb.yaml:12: vrrp[0].track.scripts[0].timeout: 0s must be positive",
			"halb.yaml:13: vrrp[0].track.scripts[0].rise: 0 must be at least 1",
			"halb.yaml:14: vrrp[0].track.scripts[0].fall: -1 must be at least 1",
		}},
		{"track script weight out of range", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      scripts:
        - {name: chk, command: [/bin/true], weight: -300}
`, []string{"halb.yaml:9: vrrp[0].track.scripts[0].weight: -300 is out of range -254..254"}},

		// Notify.
		{"notify valid", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], notify: /etc/halb/notify.sh}
`, nil},
		{"notify relative", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    notify: notify.sh
`, []string{`halb.yaml:7: vrrp[0].notify: "notify.sh" is not an absolute path`}},
		{"notify a list", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], notify: [/bin/echo, x]}
`, []string{`halb.yaml:3: vrrp[0].notify: want a single value, got a list`}},

		// Announcements.
		{"garp bounds", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], garp: {repeat: 0, interval: 10ms}}
  - {name: b, interface: eth0, vrid: 2, vips: [10.0.0.2/24], garp: {repeat: 100, interval: 1m}}
`, nil},
		{"garp out of range", vrrpDoc + `
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    garp:
      repeat: 101
      interval: 5ms
  - {name: b, interface: eth0, vrid: 2, vips: [10.0.0.2/24], garp: {repeat: -1, interval: 61s}}
`, []string{
			"halb.yaml:8: vrrp[0].garp.repeat: 101 is out of range 0..100",
			"halb.yaml:9: vrrp[0].garp.interval: 5ms is out of range 10ms..1m",
			"halb.yaml:10: vrrp[1].garp.repeat: -1 is out of range 0..100",
			"halb.yaml:10: vrrp[1].garp.interval: 1m1s is out of range 10ms..1m",
		}},
		{"garp unknown key", vrrpDoc + `
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], garp: {count: 3}}
`, []string{`halb.yaml:3: vrrp[0].garp.count: unknown key "count" (known keys here: repeat, interval)`}},
	})
}

// syncDoc is the start of a config with VRRP instances a, b and c; the
// sync groups start on line 6.
const syncDoc = `node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - {name: b, interface: eth0, vrid: 2, vips: [10.0.0.2/24]}
  - {name: c, interface: eth1, vrid: 3, vips: [10.0.1.3/24]}
vrrp_sync_groups:`

func TestValidateSyncGroups(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"valid", syncDoc + `
  - {name: g1, instances: [a, b]}
`, nil},
		{"valid three members", syncDoc + `
  - name: all
    instances: [a, b, c]
`, nil},
		{"name missing", syncDoc + `
  - {instances: [a, b]}
`, []string{"halb.yaml:7: vrrp_sync_groups[0].name: is required"}},
		{"name duplicate", syncDoc + `
  - {name: g, instances: [a, b]}
  - {name: g, instances: [c, d]}
`, []string{
			`halb.yaml:8: vrrp_sync_groups[1].name: "g" is already used by vrrp_sync_groups[0]`,
			`halb.yaml:8: vrrp_sync_groups[1].instances[1]: VRRP instance "d" is not defined`,
		}},
		{"one member", syncDoc + `
  - name: g
    instances: [a]
`, []string{"halb.yaml:8: vrrp_sync_groups[0].instances: at least two instances are required (a group of one syncs nothing)"}},
		{"instances missing", syncDoc + `
  - name: g
`, []string{"halb.yaml:7: vrrp_sync_groups[0].instances: at least two instances are required (a group of one syncs nothing)"}},
		{"instance undefined", syncDoc + `
  - name: g
    instances:
      - a
      - web-b
`, []string{`halb.yaml:10: vrrp_sync_groups[0].instances[1]: VRRP instance "web-b" is not defined`}},
		{"instance in two groups", syncDoc + `
  - {name: g1, instances: [a, b]}
  - name: g2
    instances:
      - c
      - b
`, []string{`halb.yaml:11: vrrp_sync_groups[1].instances[1]: "b" is already a member of vrrp_sync_groups[0]`}},
		{"instance twice in one group", syncDoc + `
  - {name: g1, instances: [a, b, a]}
`, []string{`halb.yaml:7: vrrp_sync_groups[0].instances[2]: "a" is already a member of vrrp_sync_groups[0]`}},
		{"unknown key", syncDoc + `
  - {name: g1, instances: [a, b], notify: /bin/true}
`, []string{`halb.yaml:7: vrrp_sync_groups[0].notify: unknown key "notify" (known keys here: name, instances)`}},
		{"groups without vrrp", `
node: {name: lb1}
vrrp_sync_groups:
  - {name: g1, instances: [a, b]}
`, []string{
			`halb.yaml:3: vrrp_sync_groups[0].instances[0]: VRRP instance "a" is not defined`,
			`halb.yaml:3: vrrp_sync_groups[0].instances[1]: VRRP instance "b" is not defined`,
		}},
	})
}

// serviceDoc is the start of a config with a backend "www" whose services
// list starts on line 5.
const serviceDoc = "node: {name: lb1}\nbackends:\n  - name: www\nservices:"

func TestValidateServices(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"valid", serviceDoc + `
  - {name: web, listen: [":80"], default_backend: www}
`, nil},
		{"name missing", serviceDoc + `
  - {listen: [":80"], default_backend: www}
`, []string{"halb.yaml:5: services[0].name: is required"}},
		{"name invalid", serviceDoc + `
  - {name: "web/1", listen: [":80"], default_backend: www}
`, []string{`halb.yaml:5: services[0].name: "web/1" may hold only letters, digits, '-', '_' and '.' (at most 63)`}},
		{"name duplicate", serviceDoc + `
  - {name: web, listen: [":80"], default_backend: www}
  - {name: web, listen: [":81"], default_backend: www}
`, []string{`halb.yaml:6: services[1].name: "web" is already used by services[0]`}},

		// Listen addresses.
		{"listen missing", serviceDoc + `
  - {name: web, default_backend: www}
`, []string{"halb.yaml:5: services[0].listen: at least one host:port is required"}},
		{"listen empty", serviceDoc + `
  - name: web
    listen: []
    default_backend: www
`, []string{"halb.yaml:6: services[0].listen: at least one host:port is required"}},
		// TLS termination.
		{"tls valid", serviceDoc + `
  - name: web
    listen: [":443"]
    default_backend: www
    tls:
      certificates:
        - {name: www.example.com}
        - {name: files, cert: /etc/halb/a.pem, key: /etc/halb/a.key}
      default: files
      min_version: "1.3"
      alpn: [http/1.1]
  - name: db
    mode: tcp
    listen: [":5433"]
    default_backend: www
    tls: {certificates: [{name: db}], policy: modern}
`, nil},
		{"tls invalid", serviceDoc + `
  - name: web
    listen: [":443"]
    default_backend: www
    tls:
      certificates:
        - {name: Web}
        - {name: a, cert: /a.pem}
        - {name: a, cert: a.pem, key: /a.key}
        - {cert: /b.pem, key: /b.key}
      default: nope
      min_version: "1.1"
      policy: old
      alpn: [h2]
  - name: db
    mode: tcp
    listen: [":5433"]
    default_backend: www
    tls: {certificates: [], policy: modern, min_version: "1.2", alpn: [http/1.1]}
`, []string{
			`halb.yaml:10: services[0].tls.certificates[0].name: "Web" is not a certificate name (a-z, 0-9, '.', '_', '-'; up to 63)`,
			`halb.yaml:11: services[0].tls.certificates[1]: cert and key go together (neither: the store's certificate "a")`,
			`halb.yaml:12: services[0].tls.certificates[2].name: "a" is listed twice`,
			`halb.yaml:12: services[0].tls.certificates[2].cert: "a.pem" must be an absolute path`,
			`halb.yaml:13: services[0].tls.certificates[3].name: is required`,
			`halb.yaml:14: services[0].tls.default: "nope" is not one of the service's certificates`,
			`halb.yaml:15: services[0].tls.min_version: "1.1" is not one of 1.2, 1.3`,
			`halb.yaml:16: services[0].tls.policy: "old" is not one of intermediate, modern`,
			`halb.yaml:17: services[0].tls.alpn[0]: "h2" is not supported (only http/1.1; h2 is not implemented yet)`,
			`halb.yaml:22: services[1].tls.certificates: at least one certificate is required`,
			`halb.yaml:22: services[1].tls.min_version: policy modern is TLS 1.3 only`,
			`halb.yaml:22: services[1].tls.alpn[0]: http/1.1 needs mode: http`,
		}},
		// Client certificates and the redirect to https.
		{"client_auth and https_redirect", serviceDoc + `
  - name: web
    listen: [":443"]
    default_backend: www
    tls:
      certificates: [{name: w}]
      client_auth: {ca: ca.pem, verify: maybe}
  - name: plain
    listen: [":80"]
    default_backend: www
    https_redirect: 300
  - name: both
    listen: [":81"]
    default_backend: www
    https_redirect: 301
    tls: {certificates: [{name: w}], client_auth: {verify: optional}}
  - name: ok
    listen: [":82"]
    default_backend: www
    https_redirect: 308
`, []string{
			`halb.yaml:10: services[0].tls.client_auth.ca: "ca.pem" must be an absolute path`,
			`halb.yaml:10: services[0].tls.client_auth.verify: "maybe" is not one of required, optional`,
			`halb.yaml:14: services[1].https_redirect: 300 is not one of 301, 302, 303, 307, 308`,
			`halb.yaml:18: services[2].https_redirect: is for a plain service (this one has tls)`,
			`halb.yaml:19: services[2].tls.client_auth.ca: is required`,
		}},
		{"client_auth forward in tcp mode", serviceDoc + `
  - name: db
    mode: tcp
    listen: [":5432"]
    default_backend: www
    tls: {certificates: [{name: w}], client_auth: {ca: /ca.pem, forward: true}}
`, []string{`halb.yaml:9: services[0].tls.client_auth.forward: needs mode: http`}},
		// SNI routes.
		{"sni routes valid", serviceDoc + `
  - name: pass
    mode: tcp
    listen: [":443"]
    default_backend: www
    sni_routes:
      - {sni: www.example.com, backend: www}
      - {sni: "*.example.org", backend: www}
`, nil},
		{"sni routes invalid", serviceDoc + `
  - name: pass
    listen: [":443"]
    default_backend: www
    sni_routes:
      - {sni: "www.example.com", backend: nope}
      - {sni: "WWW.example.com", backend: www}
      - {sni: "a b", backend: www}
      - {backend: www}
`, []string{
			`halb.yaml:9: services[0].sni_routes[0]: needs mode: tcp (http services route by Host: routes)`,
			`halb.yaml:9: services[0].sni_routes[0].backend: backend "nope" is not defined`,
			`halb.yaml:10: services[0].sni_routes[1]: needs mode: tcp (http services route by Host: routes)`,
			`halb.yaml:10: services[0].sni_routes[1].sni: "WWW.example.com" is already routed by sni_routes[0]`,
			`halb.yaml:11: services[0].sni_routes[2]: needs mode: tcp (http services route by Host: routes)`,
			`halb.yaml:11: services[0].sni_routes[2].sni: "a b" is not a host name or a *.suffix wildcard`,
			`halb.yaml:12: services[0].sni_routes[3]: needs mode: tcp (http services route by Host: routes)`,
			`halb.yaml:12: services[0].sni_routes[3].sni: is required`,
		}},
		// Timeouts, limits, PROXY protocol sources.
		{"timeouts and limits valid", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: www
    timeouts: {connect: 1s, client: 1m, server: 1m, http_request: 5s, http_keep_alive: 2s, queue: 1s, tunnel: 2h}
    limits: {max_request_line: 4096, max_header_bytes: 8192, max_headers: 50, max_body_bytes: 1048576}
    accept_proxy: [10.0.0.0/8, "fd00::/8"]
    access_log: true
`, nil},
		{"timeout zero", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: www
    timeouts:
      connect: 0s
      queue: 500us
`, []string{
			"halb.yaml:9: services[0].timeouts.connect: 0s must be at least 1ms",
			"halb.yaml:10: services[0].timeouts.queue: 500µs must be at least 1ms",
		}},
		{"limits out of range", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: www
    limits:
      max_request_line: 10
      max_header_bytes: 100
      max_headers: 0
      max_body_bytes: -1
`, []string{
			"halb.yaml:9: services[0].limits.max_request_line: 10 is out of range 64..65536",
			"halb.yaml:10: services[0].limits.max_header_bytes: 100 is out of range 1024..1048576",
			"halb.yaml:11: services[0].limits.max_headers: 0 is out of range 1..1000",
			"halb.yaml:12: services[0].limits.max_body_bytes: -1 must not be negative (0: no limit)",
		}},
		{"request line longer than head", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: www
    limits: {max_request_line: 8192, max_header_bytes: 4096}
`, []string{"halb.yaml:8: services[0].limits.max_request_line: 8192 exceeds max_header_bytes 4096 (the request line is part of the head)"}},
		{"response_headers", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: www
    response_headers: {X-LB-Node: lb1, "bad name": x, X-Bad: "a\r\nb"}
`, []string{
			`halb.yaml:8: services[0].response_headers.X-Bad: the value may not hold CR, LF or NUL`,
			`halb.yaml:8: services[0].response_headers.bad name: "bad name" is not a valid field name`,
		}},
		{"min_healthy out of range", serviceDoc + `
  - {name: web, listen: [":80"], default_backend: www, min_healthy: 0}
`, []string{"halb.yaml:5: services[0].min_healthy: 0 is out of range 1..1000"}},
		{"accept_proxy not cidr", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: www
    accept_proxy: [10.0.0.1]
`, []string{`halb.yaml:8: services[0].accept_proxy[0]: "10.0.0.1" is not a network in CIDR form (e.g. 10.0.0.0/8)`}},
		{"listen forms", serviceDoc + `
  - name: web
    listen: [":80", "0.0.0.0:8080", "[::]:443", "10.0.0.1:80", "[fd00::1]:80", "10.0.0.1:65535"]
    default_backend: www
`, nil},
		{"listen without port", serviceDoc + `
  - name: web
    listen: ["80"]
    default_backend: www
`, []string{`halb.yaml:6: services[0].listen[0]: "80" is not host:port (IPv6 as [addr]:port)`}},
		{"listen IPv6 without brackets", serviceDoc + `
  - name: web
    listen: ["fd00::1:80"]
    default_backend: www
`, []string{`halb.yaml:6: services[0].listen[0]: "fd00::1:80" is not host:port (IPv6 as [addr]:port)`}},
		{"listen port 0", serviceDoc + `
  - name: web
    listen: ["10.0.0.1:0"]
    default_backend: www
`, []string{`halb.yaml:6: services[0].listen[0]: "10.0.0.1:0": port "0" is not a number in 1..65535`}},
		{"listen port too high", serviceDoc + `
  - name: web
    listen: ["10.0.0.1:65536"]
    default_backend: www
`, []string{`halb.yaml:6: services[0].listen[0]: "10.0.0.1:65536": port "65536" is not a number in 1..65535`}},
		{"listen port by name", serviceDoc + `
  - name: web
    listen: ["10.0.0.1:http"]
    default_backend: www
`, []string{`halb.yaml:6: services[0].listen[0]: "10.0.0.1:http": port "http" is not a number in 1..65535`}},
		{"listen on a host name", serviceDoc + `
  - name: web
    listen:
      - ":80"
      - "localhost:8080"
    default_backend: www
`, []string{`halb.yaml:8: services[0].listen[1]: "localhost:8080": host "localhost" is not an IP address`}},
		{"listen twice in two services", serviceDoc + `
  - {name: web, listen: [":80"], default_backend: www}
  - {name: web2, listen: [":80"], default_backend: www}
`, []string{"halb.yaml:6: services[1].listen[0]: :80 is already a listen address of services[0]"}},
		{"listen twice in one service", serviceDoc + `
  - name: web
    listen:
      - 10.0.0.1:80
      - 10.0.0.1:80
    default_backend: www
`, []string{"halb.yaml:8: services[0].listen[1]: 10.0.0.1:80 is already a listen address of services[0]"}},
		{"listen same port other address", serviceDoc + `
  - {name: web, listen: ["10.0.0.1:80", "10.0.0.1:443"], default_backend: www}
  - {name: web2, listen: ["10.0.0.2:80"], default_backend: www}
`, nil},

		// Mode and backends.
		{"mode unknown", serviceDoc + `
  - {name: web, listen: [":80"], mode: udp, default_backend: www}
`, []string{`halb.yaml:5: services[0].mode: "udp" is not one of http, tcp`}},
		{"tcp with routes", serviceDoc + `
  - name: db
    listen: [":5432"]
    mode: tcp
    default_backend: www
    routes:
      - {backend: www}
`, []string{"halb.yaml:9: services[0].routes: routes need mode: http (a tcp service has only default_backend)"}},
		{"tcp without default_backend", serviceDoc + `
  - {name: db, listen: [":5432"], mode: tcp}
`, []string{"halb.yaml:5: services[0].default_backend: is required in tcp mode"}},
		{"tcp valid", serviceDoc + `
  - {name: db, listen: [":5432"], mode: tcp, default_backend: www}
`, nil},
		{"http without default_backend or routes", serviceDoc + `
  - {name: web, listen: [":80"]}
`, []string{"halb.yaml:5: services[0].default_backend: is required when there are no routes"}},
		{"http with routes only", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - {host: www.example.com, backend: www}
`, nil},
		{"default_backend undefined", serviceDoc + `
  - name: web
    listen: [":80"]
    default_backend: nope
`, []string{`halb.yaml:7: services[0].default_backend: backend "nope" is not defined`}},

		// Routes.
		{"route hosts", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - {host: "www..example.com", backend: www}
      - {host: "*", backend: www}
      - {host: "a.*.example.com", backend: www}
      - {host: "*.example.com", backend: www}
      - {host: www.example.com, backend: www}
      - {host: "-bad.example.com", backend: www}
      - {host: ".example.com", backend: www}
      - {host: ".", backend: www}
      - {host: "..example.com", backend: www}
      - {host: ".*.example.com", backend: www}
`, []string{
			`halb.yaml:8: services[0].routes[0].host: "www..example.com" is not a host name, a *.suffix wildcard or a .domain`,
			`halb.yaml:9: services[0].routes[1].host: "*" is not a host name, a *.suffix wildcard or a .domain`,
			`halb.yaml:10: services[0].routes[2].host: "a.*.example.com" is not a host name, a *.suffix wildcard or a .domain`,
			`halb.yaml:13: services[0].routes[5].host: "-bad.example.com" is not a host name, a *.suffix wildcard or a .domain`,
			`halb.yaml:15: services[0].routes[7].host: "." is not a host name, a *.suffix wildcard or a .domain`,
			`halb.yaml:16: services[0].routes[8].host: "..example.com" is not a host name, a *.suffix wildcard or a .domain`,
			`halb.yaml:17: services[0].routes[9].host: ".*.example.com" is not a host name, a *.suffix wildcard or a .domain`,
		}},
		{"route path", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - {path: /exact, backend: www}
      - {path: /api/login, path_prefix: /api/, backend: www}
      - {path: login, backend: www}
      - {path: "/a?b=1", backend: www}
      - {path: "/a b", backend: www}
`, []string{
			`halb.yaml:10: services[0].routes[2].path: "login" must start with /`,
			`halb.yaml:11: services[0].routes[3].path: "/a?b=1" has a ?, # or white space: it is matched against the path without the query`,
			`halb.yaml:12: services[0].routes[4].path: "/a b" has a ?, # or white space: it is matched against the path without the query`,
		}},
		{"route path_prefix without slash", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - host: www.example.com
        path_prefix: api
        backend: www
`, []string{`halb.yaml:9: services[0].routes[0].path_prefix: "api" must start with /`}},
		{"route path_prefix explicitly empty", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - {path_prefix: "", backend: www}
`, []string{`halb.yaml:8: services[0].routes[0].path_prefix: "" must start with /`}},
		{"route backend missing", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - {host: www.example.com, path_prefix: /v1/}
`, []string{"halb.yaml:8: services[0].routes[0].backend: is required"}},
		{"route backend undefined", serviceDoc + `
  - name: web
    listen: [":80"]
    routes:
      - host: www.example.com
        backend: nope
`, []string{`halb.yaml:9: services[0].routes[0].backend: backend "nope" is not defined`}},
	})
}

// backendDoc is the start of a config whose backends list starts on line 3.
const backendDoc = "node: {name: lb1}\nbackends:"

func TestValidateBackends(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"valid", backendDoc + `
  - name: www
    balance: leastconn
    sticky: {cookie: SRVID}
    health: {check: https, path: /healthz, expect_status: 204, interval: 5s, timeout: 2s, rise: 1, fall: 1, port: 8443}
    servers:
      - {name: web1, address: "10.0.0.11:80", weight: 10}
      - {name: web2, address: "[fd00::12]:80"}
      - {name: web3, address: "web3.internal:80"}
`, nil},
		{"name missing", backendDoc + `
  - {balance: roundrobin}
`, []string{"halb.yaml:3: backends[0].name: is required"}},
		{"name invalid", backendDoc + `
  - {name: "w w"}
`, []string{`halb.yaml:3: backends[0].name: "w w" may hold only letters, digits, '-', '_' and '.' (at most 63)`}},
		{"name duplicate", backendDoc + `
  - {name: www}
  - {name: api}
  - {name: www}
`, []string{`halb.yaml:5: backends[2].name: "www" is already used by backends[0]`}},
		{"balance unknown", backendDoc + `
  - name: www
    balance: fastest
`, []string{`halb.yaml:4: backends[0].balance: "fastest" is not one of roundrobin, leastconn, source, uri, random`}},

		// PROXY protocol towards servers, maxconn.
		{"proxy_protocol and maxconn", backendDoc + `
  - name: www
    proxy_protocol: v2
    servers:
      - {name: s1, address: "10.0.0.1:80", maxconn: 100}
`, nil},
		{"health options for their checks", backendDoc + `
  - name: www
    health: {check: https, method: HEAD, host: "app.example:8443", expect_body: ok, verify: true}
  - name: db
    health: {check: tcp, send: "PING\\r\\n", expect: "+PONG"}
`, nil},
		{"health options for other checks", backendDoc + `
  - name: www
    health: {check: tcp, method: HEAD, verify: true}
  - name: db
    health: {check: http, send: x, expect: y, method: "GE T", host: "a b"}
`, []string{
			"halb.yaml:4: backends[0].health.method: applies to check: http or https only",
			"halb.yaml:4: backends[0].health.verify: applies to check: https only",
			"halb.yaml:6: backends[1].health.send: applies to check: tcp only",
			"halb.yaml:6: backends[1].health.expect: applies to check: tcp only",
			`halb.yaml:6: backends[1].health.method: "GE T" is not a method token`,
			`halb.yaml:6: backends[1].health.host: "a b" is not a host[:port]`,
		}},
		{"health initial", backendDoc + `
  - {name: www, health: {initial: down}}
  - {name: api, health: {initial: maybe}}
`, []string{`halb.yaml:4: backends[1].health.initial: "maybe" is not one of up, down`}},
		{"proxy_protocol unknown", backendDoc + `
  - name: www
    proxy_protocol: v3
`, []string{`halb.yaml:4: backends[0].proxy_protocol: "v3" is not one of v1, v2`}},
		{"maxconn negative", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "10.0.0.1:80", maxconn: -1}
`, []string{"halb.yaml:5: backends[0].servers[0].maxconn: -1 must not be negative (0: no limit)"}},
		{"sticky expire", backendDoc + `
  - name: www
    sticky: {source: true, expire: 48h}
  - name: api
    sticky: {cookie: SRV, expire: 1m}
`, []string{
			"halb.yaml:4: backends[0].sticky.expire: 48h0m0s is out of range 1s..24h",
			"halb.yaml:6: backends[1].sticky.expire: applies to source persistence only (sticky: {source: true})",
		}},
		// Stickiness.
		{"sticky cookie invalid", backendDoc + `
  - name: www
    sticky: {cookie: "a b"}
`, []string{`halb.yaml:4: backends[0].sticky.cookie: "a b" is not a valid cookie name`}},
		{"sticky cookie with separator", backendDoc + `
  - name: www
    sticky:
      cookie: "SRV=ID"
`, []string{`halb.yaml:5: backends[0].sticky.cookie: "SRV=ID" is not a valid cookie name`}},
		{"sticky cookie and source", backendDoc + `
  - name: www
    sticky:
      cookie: SRVID
      source: true
`, []string{"halb.yaml:4: backends[0].sticky: choose cookie or source, not both"}},
		{"sticky source", backendDoc + `
  - {name: www, sticky: {source: true}}
`, nil},

		// Health checks.
		{"check unknown", backendDoc + `
  - name: www
    health: {check: ping}
`, []string{`halb.yaml:4: backends[0].health.check: "ping" is not one of none, icmp, tcp, http, https`}},
		{"check http path without slash", backendDoc + `
  - name: www
    health:
      check: http
      path: healthz
`, []string{`halb.yaml:6: backends[0].health.path: "healthz" must start with /`}},
		{"check https path explicitly empty", backendDoc + `
  - name: www
    health: {check: https, path: ""}
`, []string{`halb.yaml:4: backends[0].health.path: "" must start with /`}},
		{"check tcp ignores path", backendDoc + `
  - name: www
    health: {check: tcp, path: healthz}
`, nil},
		{"expect_status too high", backendDoc + `
  - name: www
    health:
      check: http
      expect_status: 600
`, []string{"halb.yaml:6: backends[0].health.expect_status: 600 is out of range 100..599"}},
		{"expect_status too low", backendDoc + `
  - name: www
    health: {check: https, expect_status: 99}
`, []string{"halb.yaml:4: backends[0].health.expect_status: 99 is out of range 100..599"}},
		{"expect_status explicitly zero", backendDoc + `
  - name: www
    health: {check: http, expect_status: 0}
`, []string{"halb.yaml:4: backends[0].health.expect_status: 0 is out of range 100..599"}},
		{"expect_status bounds", backendDoc + `
  - {name: a, health: {check: http, expect_status: 100}}
  - {name: b, health: {check: http, expect_status: 599}}
`, nil},
		{"observe", backendDoc + `
  - {name: a, health: {observe: layer7}}
  - {name: b, health: {observe: none}}
  - {name: c, health: {observe: layer5}}
`, []string{`halb.yaml:5: backends[2].health.observe: "layer5" is not one of none, layer4, layer7`}},
		{"observe layer7 in tcp mode", `
node: {name: lb1}
services:
  - {name: db, listen: [":5432"], mode: tcp, default_backend: pg}
backends:
  - {name: pg, health: {observe: layer7}}
`, []string{"halb.yaml:5: backends[0].health.observe: layer7 observes HTTP responses, but service db uses this backend in mode: tcp (use layer4)"}},
		{"expect_status ranges and lists", backendDoc + `
  - {name: a, health: {check: http, expect_status: 200-399}}
  - {name: b, health: {check: http, expect_status: "200,204, 300-399"}}
  - {name: c, health: {check: https, expect_status: [200, 204, 300-399]}}
`, nil},
		{"expect_status range reversed", backendDoc + `
  - {name: a, health: {check: http, expect_status: 399-200}}
`, []string{"halb.yaml:3: backends[0].health.expect_status: range 399-200 ends before it starts"}},
		{"expect_status range out of bounds", backendDoc + `
  - {name: a, health: {check: http, expect_status: 200-600}}
`, []string{"halb.yaml:3: backends[0].health.expect_status: 600 is out of range 100..599"}},
		{"expect_status not a status", backendDoc + `
  - {name: a, health: {check: http, expect_status: "2xx"}}
`, []string{`halb.yaml:3: backends[0].health.expect_status: "2xx" is not a status, a range or a list (e.g. 200, 200-399, 200,204)`}},
		{"expect_status empty list item", backendDoc + `
  - {name: a, health: {check: http, expect_status: "200,"}}
`, []string{`halb.yaml:3: backends[0].health.expect_status: "" is not a status, a range or a list (e.g. 200, 200-399, 200,204)`}},
		{"expect_status list of mappings", backendDoc + `
  - {name: a, health: {check: http, expect_status: [200, {a: b}]}}
`, []string{`halb.yaml:3: backends[0].health.expect_status: want statuses or ranges in the list, got a mapping`}},
		{"interval negative", backendDoc + `
  - name: www
    health: {interval: -2s}
`, []string{"halb.yaml:4: backends[0].health.interval: -2s must be positive"}},
		{"timeout negative", backendDoc + `
  - name: www
    health: {timeout: -1ms}
`, []string{"halb.yaml:4: backends[0].health.timeout: -1ms must be positive"}},
		{"explicit zeros rejected", backendDoc + `
  - name: www
    health:
      interval: 0s
      timeout: 0s
      rise: 0
      fall: 0
`, []string{
			"halb.yaml:5: backends[0].health.interval: 0s must be positive",
			"halb.yaml:6: backends[0].health.timeout: 0s must be positive",
			"halb.yaml:7: backends[0].health.rise: 0 must be at least 1",
			"halb.yaml:8: backends[0].health.fall: 0 must be at least 1",
		}},
		{"rise negative", backendDoc + `
  - name: www
    health: {rise: -1}
`, []string{"halb.yaml:4: backends[0].health.rise: -1 must be at least 1"}},
		{"fall negative", backendDoc + `
  - name: www
    health: {fall: -3}
`, []string{"halb.yaml:4: backends[0].health.fall: -3 must be at least 1"}},
		{"port too high", backendDoc + `
  - name: www
    health:
      port: 70000
`, []string{"halb.yaml:5: backends[0].health.port: 70000 is out of range 0..65535"}},
		{"port negative", backendDoc + `
  - name: www
    health: {port: -1}
`, []string{"halb.yaml:4: backends[0].health.port: -1 is out of range 0..65535"}},
		{"port bounds", backendDoc + `
  - {name: a, health: {port: 0}}
  - {name: b, health: {port: 65535}}
`, nil},

		// Servers.
		{"server name missing", backendDoc + `
  - name: www
    servers:
      - {address: "10.0.0.1:80"}
`, []string{"halb.yaml:5: backends[0].servers[0].name: is required"}},
		{"server name invalid", backendDoc + `
  - name: www
    servers:
      - {name: "web 1", address: "10.0.0.1:80"}
`, []string{`halb.yaml:5: backends[0].servers[0].name: "web 1" may hold only letters, digits, '-', '_' and '.' (at most 63)`}},
		{"server name duplicate in a backend", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "10.0.0.1:80"}
      - {name: s1, address: "10.0.0.2:80"}
`, []string{`halb.yaml:6: backends[0].servers[1].name: "s1" is already used by backends[0].servers[0]`}},
		{"server name reused in another backend", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "10.0.0.1:80"}
  - name: api
    servers:
      - {name: s1, address: "10.0.0.2:80"}
`, nil},
		{"server address missing", backendDoc + `
  - name: www
    servers:
      - name: s1
`, []string{"halb.yaml:5: backends[0].servers[0].address: is required"}},
		{"server address without port", backendDoc + `
  - name: www
    servers:
      - name: s1
        address: 10.0.0.1
`, []string{`halb.yaml:6: backends[0].servers[0].address: "10.0.0.1" is not host:port (IPv6 as [addr]:port)`}},
		{"server address without host", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: ":80"}
`, []string{`halb.yaml:5: backends[0].servers[0].address: ":80" has no host`}},
		{"server address bad host name", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "bad_host:80"}
`, []string{`halb.yaml:5: backends[0].servers[0].address: "bad_host:80": host "bad_host" is not an IP address or host name`}},
		{"server address port 0", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "10.0.0.1:0"}
`, []string{`halb.yaml:5: backends[0].servers[0].address: "10.0.0.1:0": port "0" is not a number in 1..65535`}},
		{"server address host name", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "web1.internal:80"}
      - {name: s2, address: "localhost:8080"}
`, nil},
		{"server weight bounds", backendDoc + `
  - name: www
    servers:
      - {name: s0, address: "10.0.0.1:80", weight: 0}
      - {name: s1, address: "10.0.0.2:80", weight: 1}
      - {name: s2, address: "10.0.0.3:80", weight: 256}
`, nil},
		{"server weight too high", backendDoc + `
  - name: www
    servers:
      - name: s1
        address: "10.0.0.1:80"
        weight: 257
`, []string{"halb.yaml:7: backends[0].servers[0].weight: 257 is out of range 0..256"}},
		{"server weight negative", backendDoc + `
  - name: www
    servers:
      - {name: s1, address: "10.0.0.1:80", weight: -1}
`, []string{"halb.yaml:5: backends[0].servers[0].weight: -1 is out of range 0..256"}},
	})
}

// TestEnumsAccepted checks that every documented value of an enumerated
// field is accepted.
func TestEnumsAccepted(t *testing.T) {
	for _, m := range Modes {
		checkErrors(t, serviceDoc+"\n  - {name: s, listen: [\":80\"], default_backend: www, mode: "+m+"}\n", nil)
	}
	for _, b := range Balances {
		checkErrors(t, backendDoc+"\n  - {name: b, balance: "+b+"}\n", nil)
	}
	for _, c := range Checks {
		checkErrors(t, backendDoc+"\n  - {name: b, health: {check: "+c+"}}\n", nil)
	}
}

// TestValidateManyErrors checks that one run reports every problem, from the
// walker and from validation alike, sorted by line.
func TestValidateManyErrors(t *testing.T) {
	checkErrors(t, `
backends:
  - name: www
    balance: fastest
    servers:
      - {name: s1, address: "10.0.0.1"}
node:
  name: lb_1
vrrp:
  - name: a
    interface: eth0
    vrid: 300
    priority: 0
    vips: [10.0.0.1]
services:
  - name: web
    listen: ["80"]
    default_backend: nope
    bogus: 1
time:
  max_offset: soon
peers:
  - {name: lb2, address: 172.16.0.2}
  - {name: lb2, address: lb2}
`, []string{
		`halb.yaml:3: backends[0].balance: "fastest" is not one of roundrobin, leastconn, source, uri, random`,
		`halb.yaml:5: backends[0].servers[0].address: "10.0.0.1" is not host:port (IPv6 as [addr]:port)`,
		`halb.yaml:7: node.name: "lb_1" is not a valid host name`,
		`halb.yaml:11: vrrp[0].vrid: 300 is out of range 1..255`,
		`halb.yaml:12: vrrp[0].priority: 0 is out of range 1..255`,
		`halb.yaml:13: vrrp[0].vips[0]: "10.0.0.1" is not an address in CIDR form (e.g. 172.16.0.100/24)`,
		`halb.yaml:16: services[0].listen[0]: "80" is not host:port (IPv6 as [addr]:port)`,
		`halb.yaml:17: services[0].default_backend: backend "nope" is not defined`,
		`halb.yaml:18: services[0].bogus: unknown key "bogus" (known keys here: name, listen, mode, routes, default_backend, timeouts, limits, accept_proxy, response_headers, min_healthy, access_log, forward_headers, https_redirect, tls, sni_routes)`,
		`halb.yaml:20: time.max_offset: "soon" is not a duration (e.g. 200ms, 2s)`,
		`halb.yaml:23: peers[1].name: "lb2" is already used by peers[0]`,
		`halb.yaml:23: peers[1].address: "lb2" is not an IP address`,
	})
}

// TestValidateWithoutFile checks Validate on a config built in Go: errors
// have a path but no file or line.
func TestValidateWithoutFile(t *testing.T) {
	es := Validate(&Config{})
	var got []string
	for _, e := range es {
		if e.File != "" || e.Line != 0 {
			t.Errorf("error %q has a file or line", e)
		}
		got = append(got, e.Error())
	}
	want := []string{"node.name: is required", "node.peer_port: 0 is out of range 1..65535", "time.max_offset: 0s must be positive", "time.step_threshold: 0s must be positive",
		"time.min_poll: 0s is outside 1s..36h", "time.max_poll: 0s is outside 1s..36h"}
	if !slices.Equal(got, want) {
		t.Errorf("Validate(&Config{}) = %q, want %q", got, want)
	}

	cfg := mustParse(t, `
node: {name: lb1}
`)
	if es := Validate(cfg); len(es) != 0 {
		t.Errorf("Validate of a parsed config: %v", es)
	}
	cfg.VRRP = append(cfg.VRRP, VRRPInstance{Name: "a", Interface: "eth0", VRID: 1, Version: 3,
		Priority: 100, AdvertInterval: Duration(time.Second), VIPs: []string{"10.0.0.1/24"},
		GARP: GARP{Repeat: new(3), Interval: Duration(time.Second)}})
	if es := Validate(cfg); len(es) != 0 {
		t.Errorf("Validate after adding a valid instance: %v", es)
	}
	cfg.VRRP[0].VRID = 256
	if got, want := Validate(cfg).Error(), "vrrp[0].vrid: 256 is out of range 1..255"; got != want {
		t.Errorf("Validate = %q, want %q", got, want)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - {name: owner, interface: eth0, vrid: 2, address_owner: true, vips: [10.0.0.2/24]}
  - {name: v2, interface: eth0, vrid: 3, version: 2, vips: [10.0.0.3/24]}
services:
  - name: web
    listen: [":80"]
    routes:
      - {backend: www}
backends:
  - name: www
    servers:
      - {name: s1, address: "10.0.0.11:80"}
  - name: checked
    health: {check: http}
  - name: checked-s
    health: {check: https}
`)
	if got := cfg.Time.MaxOffset.D(); got != 500*time.Millisecond {
		t.Errorf("time.max_offset = %v, want 500ms", got)
	}
	if got := cfg.Time.MaxOffset.D(); got != DefaultMaxOffset {
		t.Errorf("time.max_offset = %v, want DefaultMaxOffset", got)
	}

	a := cfg.VRRP[0]
	if a.Version != 3 || a.Priority != 100 || a.AdvertInterval.D() != 200*time.Millisecond ||
		!a.PreemptOn() || a.Preempt == nil || !*a.Preempt || a.PreemptDelay != 0 || a.AddressOwner {
		t.Errorf("vrrp defaults: %+v", a)
	}
	if owner := cfg.VRRP[1]; owner.Priority != 255 {
		t.Errorf("address_owner: priority = %d, want 255", owner.Priority)
	}
	if v2 := cfg.VRRP[2]; v2.AdvertInterval.D() != time.Second || v2.Priority != 100 {
		t.Errorf("version 2: advert_interval = %v, priority = %d; want 1s, 100", v2.AdvertInterval, v2.Priority)
	}

	s := cfg.Services[0]
	if s.Mode != "http" {
		t.Errorf("mode = %q, want http", s.Mode)
	}
	if s.Routes[0].PathPrefix != "/" || s.Routes[0].Host != "" {
		t.Errorf("route defaults: %+v", s.Routes[0])
	}

	wantT := Timeouts{Connect: Duration(5 * time.Second), Client: Duration(30 * time.Second), Server: Duration(30 * time.Second),
		HTTPRequest: Duration(10 * time.Second), HTTPKeepAlive: Duration(10 * time.Second), Queue: Duration(5 * time.Second), Tunnel: Duration(time.Hour)}
	if s.Timeouts != wantT {
		t.Errorf("timeouts = %+v, want %+v", s.Timeouts, wantT)
	}
	if wantL := (Limits{MaxRequestLine: 8192, MaxHeaderBytes: 16384, MaxHeaders: 100}); s.Limits != wantL {
		t.Errorf("limits = %+v, want %+v", s.Limits, wantL)
	}
	if s.MinHealthy != 1 {
		t.Errorf("min_healthy = %d, want 1", s.MinHealthy)
	}
	if s.AcceptProxy != nil || s.AccessLog {
		t.Errorf("accept_proxy = %v, access_log = %v; want none, false", s.AcceptProxy, s.AccessLog)
	}

	b := cfg.Backends[0]
	if b.Balance != "roundrobin" {
		t.Errorf("balance = %q, want roundrobin", b.Balance)
	}
	want := Health{Check: "tcp", Interval: Duration(2 * time.Second), Timeout: Duration(time.Second), Rise: 2, Fall: 3, Observe: "layer4", Initial: "up"}
	if !reflect.DeepEqual(b.Health, want) {
		t.Errorf("tcp health = %+v, want %+v", b.Health, want)
	}
	if b.Sticky != (Sticky{}) {
		t.Errorf("sticky = %+v, want none", b.Sticky)
	}
	srv := b.Servers[0]
	if srv.Weight == nil || *srv.Weight != 1 || srv.EffectiveWeight() != 1 {
		t.Errorf("server weight = %v, want 1", srv.Weight)
	}
	for _, b := range cfg.Backends[1:] {
		want := Health{Check: b.Health.Check, Path: "/", ExpectStatus: StatusCodes{{200, 200}}, Interval: Duration(2 * time.Second),
			Timeout: Duration(time.Second), Rise: 2, Fall: 3, Observe: "layer4", Initial: "up"}
		if !reflect.DeepEqual(b.Health, want) {
			t.Errorf("%s health = %+v, want %+v", b.Name, b.Health, want)
		}
	}

	// The exported constants agree with the values above.
	if DefaultVRRPVersion != 3 || DefaultPriority != 100 || DefaultAdvertInterval != 200*time.Millisecond ||
		DefaultAdvertIntervalV2 != time.Second || DefaultMode != "http" || DefaultBalance != "roundrobin" ||
		DefaultCheck != "tcp" || DefaultCheckPath != "/" || DefaultExpectStatus != 200 ||
		DefaultCheckInterval != 2*time.Second || DefaultCheckTimeout != time.Second ||
		DefaultRise != 2 || DefaultFall != 3 || DefaultPathPrefix != "/" {
		t.Errorf("a Default constant changed; update the docs and this test")
	}
}

// TestDefaultsVRRPTracking checks the defaults of garp and track.scripts:
// a script's timeout follows its interval and its weight the instance's
// track.weight, unless given.
func TestDefaultsVRRPTracking(t *testing.T) {
	cfg := mustParse(t, `
node: {name: lb1}
vrrp:
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track:
      weight: -30
      scripts:
        - {name: plain, command: [/bin/true]}
        - {name: slow, command: [/bin/true], interval: 5s}
        - {name: given, command: [/bin/true], interval: 2s, timeout: 500ms, rise: 3, fall: 4, weight: 0}
  - name: b
    interface: eth0
    vrid: 2
    vips: [10.0.0.2/24]
    garp: {repeat: 0}
    track:
      scripts:
        - {name: plain, command: [/bin/true], weight: }
`)
	a := cfg.VRRP[0]
	if want := (GARP{Repeat: new(3), Interval: Duration(time.Second)}); !reflect.DeepEqual(a.GARP, want) {
		t.Errorf("garp = %+v, want %+v", a.GARP, want)
	}
	if a.Notify != "" {
		t.Errorf("notify = %q, want none", a.Notify)
	}
	for _, tc := range []struct {
		i                 int
		interval, timeout time.Duration
		rise, fall, wt    int
	}{
		{0, time.Second, time.Second, 1, 1, -30},
		{1, 5 * time.Second, 5 * time.Second, 1, 1, -30},
		{2, 2 * time.Second, 500 * time.Millisecond, 3, 4, 0},
	} {
		s := a.Track.Scripts[tc.i]
		if s.Interval.D() != tc.interval || s.Timeout.D() != tc.timeout || s.Rise != tc.rise || s.Fall != tc.fall ||
			s.Weight == nil || *s.Weight != tc.wt || s.EffectiveWeight(-30) != tc.wt {
			t.Errorf("script %s = %+v (weight %v), want interval %v timeout %v rise %d fall %d weight %d",
				s.Name, s, s.Weight, tc.interval, tc.timeout, tc.rise, tc.fall, tc.wt)
		}
	}
	b := cfg.VRRP[1]
	if want := (GARP{Repeat: new(0), Interval: Duration(time.Second)}); !reflect.DeepEqual(b.GARP, want) {
		t.Errorf("explicit garp.repeat 0: garp = %+v, want %+v", b.GARP, want)
	}
	if w := b.Track.Scripts[0].Weight; w == nil || *w != 0 {
		t.Errorf("script weight written without a value = %v, want the track.weight 0", w)
	}
	// Unset (a config built in Go): the track.weight.
	var s TrackScript
	if got := s.EffectiveWeight(-7); got != -7 {
		t.Errorf("EffectiveWeight of an unset weight = %d, want -7", got)
	}
	if DefaultGARPRepeat != 3 || DefaultGARPInterval != time.Second || DefaultScriptInterval != time.Second ||
		DefaultScriptRise != 1 || DefaultScriptFall != 1 || NotifyTimeout != 10*time.Second {
		t.Errorf("a Default constant changed; update the docs and this test")
	}
}

// TestDefaultsKeepExplicitValues checks that a present key keeps its value
// and that a key set to false or 0 is not replaced by the default.
func TestDefaultsKeepExplicitValues(t *testing.T) {
	cfg := mustParse(t, `
node: {name: lb1}
time: {max_offset: 2s}
vrrp:
  - {name: a, interface: eth0, vrid: 1, version: 2, priority: 50, advert_interval: 3s, preempt: false, vips: [10.0.0.1/24]}
services:
  - {name: db, listen: [":5432"], mode: tcp, default_backend: pg}
backends:
  - name: pg
    balance: source
    health: {check: none, interval: 10s, timeout: 3s, rise: 5, fall: 1}
    servers:
      - {name: s1, address: "10.0.0.1:5432", weight: 0}
`)
	if cfg.Time.MaxOffset.D() != 2*time.Second {
		t.Errorf("max_offset = %v", cfg.Time.MaxOffset)
	}
	v := cfg.VRRP[0]
	if v.Version != 2 || v.Priority != 50 || v.AdvertInterval.D() != 3*time.Second || v.PreemptOn() {
		t.Errorf("vrrp = %+v", v)
	}
	if cfg.Services[0].Mode != "tcp" {
		t.Errorf("mode = %q", cfg.Services[0].Mode)
	}
	b := cfg.Backends[0]
	want := Health{Check: "none", Interval: Duration(10 * time.Second), Timeout: Duration(3 * time.Second), Rise: 5, Fall: 1, Observe: "layer4", Initial: "up"}
	if b.Balance != "source" || !reflect.DeepEqual(b.Health, want) {
		t.Errorf("backend = %+v", b)
	}
	if w := b.Servers[0].Weight; w == nil || *w != 0 || b.Servers[0].EffectiveWeight() != 0 {
		t.Errorf("weight 0 was replaced: %v", w)
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "halb.yaml", Line: 7, Path: "vrrp[0].vrid", Msg: "300 is out of range 1..255"}, "halb.yaml:7: vrrp[0].vrid: 300 is out of range 1..255"},
		{Error{File: "halb.yaml", Msg: "config is empty"}, "halb.yaml: config is empty"},
		{Error{Path: "node.name", Msg: "is required"}, "node.name: is required"},
		{Error{Msg: "bad"}, "bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
	es := Errors{{File: "a", Line: 1, Msg: "x"}, {File: "a", Line: 2, Path: "p", Msg: "y"}}
	if got, want := es.Error(), "a:1: x\na:2: p: y"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

// TestAddressesThatLookLikeIPs: a host that looks like an IP literal but is
// not a valid one is an error naming the field, in every field that takes
// an address, and not a host name that fails only at run time.
func TestAddressesThatLookLikeIPs(t *testing.T) {
	server := func(addr string) string {
		return backendDoc + "\n  - name: www\n    servers:\n      - {name: s1, address: \"" + addr + "\"}\n"
	}
	serverErr := func(addr, msg string) []string {
		return []string{`halb.yaml:5: backends[0].servers[0].address: "` + addr + `": ` + msg}
	}
	runValidationCases(t, []validationCase{
		{"server, the issue's address", server("127.0.0.300:9002"),
			serverErr("127.0.0.300:9002", `host "127.0.0.300" looks like an IP address but is not one: IPv4 field has value >255`)},
		{"server, two numbers", server("10.1:80"),
			serverErr("10.1:80", `host "10.1" looks like an IP address but is not one: IPv4 address too short`)},
		{"server, five numbers", server("1.2.3.4.5:80"),
			serverErr("1.2.3.4.5:80", `host "1.2.3.4.5" looks like an IP address but is not one: IPv4 address too long`)},
		{"server, leading zero", server("10.0.0.010:80"),
			serverErr("10.0.0.010:80", `host "10.0.0.010" looks like an IP address but is not one: IPv4 field has octet with leading zero`)},
		{"server, one number", server("2130706433:80"),
			serverErr("2130706433:80", `host "2130706433" looks like an IP address but is not one: unable to parse IP`)},
		{"server, hex", server("0x7f.0.0.1:80"),
			serverErr("0x7f.0.0.1:80", `host "0x7f.0.0.1" looks like an IP address but is not one: unexpected character (at "x7f.0.0.1")`)},
		{"server, name ending in a number", server("web.123:80"),
			serverErr("web.123:80", `host "web.123" is not a host name (its last label is a number, which a top-level domain never is) nor an IP address`)},
		{"server, bad IPv6 in brackets", server("[fd00::g]:80"),
			serverErr("[fd00::g]:80", `host "fd00::g" looks like an IP address but is not one: each colon-separated field must have at least one digit (at "g")`)},
		{"server, name in brackets", server("[web1]:80"),
			serverErr("[web1]:80", `host "web1" is in brackets, which hold an IPv6 address`)},
		{"server, zone", server("[fe80::1%eth0]:80"),
			serverErr("[fe80::1%eth0]:80", `host "fe80::1%eth0" has a zone (%eth0): halb.yaml takes addresses without one`)},
		{"server, names that are fine", server("1web.example:80") + "      - {name: s2, address: \"3com:80\"}\n      - {name: s3, address: \"[fd00::1]:80\"}\n", nil},
		{"time server", "node: {name: lb1}\ntime: {servers: [ntp1, 127.0.0.300, ntp.123]}\n", []string{
			`halb.yaml:2: time.servers[1]: "127.0.0.300" looks like an IP address but is not one: IPv4 field has value >255`,
			`halb.yaml:2: time.servers[2]: "ntp.123" is not a host name (its last label is a number, which a top-level domain never is) nor an IP address`,
		}},
		{"listen", serviceDoc + "\n  - {name: web, listen: [\"127.0.0.300:80\", \"[::1x]:80\"], default_backend: www}\n", []string{
			`halb.yaml:5: services[0].listen[0]: "127.0.0.300:80": host "127.0.0.300" looks like an IP address but is not one: IPv4 field has value >255`,
			`halb.yaml:5: services[0].listen[1]: "[::1x]:80": host "::1x" looks like an IP address but is not one: unexpected character, want colon (at "x")`,
		}},
		{"peer", "node: {name: lb1}\npeers: [{name: lb2, address: 127.0.0.300}]\n", []string{
			`halb.yaml:2: peers[0].address: "127.0.0.300" looks like an IP address but is not one: IPv4 field has value >255`,
		}},
		{"management", "node:\n  name: lb1\n  management: {interface: eth0, address: 10.0.0.300/24, gateway: 10.0.0.256, dns: [10.0.0.1, 1.1.1]}\n", []string{
			`halb.yaml:3: node.management.address: "10.0.0.300/24" is not an address in CIDR form (e.g. 172.16.0.1/16)`,
			`halb.yaml:3: node.management.gateway: "10.0.0.256" looks like an IP address but is not one: IPv4 field has value >255`,
			`halb.yaml:3: node.management.dns[1]: "1.1.1" looks like an IP address but is not one: IPv4 address too short`,
		}},
		{"vip and unicast peer", vrrpDoc + "\n  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.300/24], unicast_peers: [10.0.0.2, 10.0.0.300]}\n", []string{
			`halb.yaml:3: vrrp[0].vips[0]: "10.0.0.300/24" is not an address in CIDR form (e.g. 172.16.0.100/24)`,
			`halb.yaml:3: vrrp[0].unicast_peers[1]: "10.0.0.300" looks like an IP address but is not one: IPv4 field has value >255`,
		}},
		{"accept_proxy", serviceDoc + "\n  - {name: web, listen: [\":80\"], default_backend: www, accept_proxy: [10.0.0.300/8]}\n", []string{
			`halb.yaml:5: services[0].accept_proxy[0]: "10.0.0.300/8" is not a network in CIDR form (e.g. 10.0.0.0/8)`,
		}},
	})
}

func TestValidateObserve(t *testing.T) {
	const hash = "$2y$10$abcdefghijklmnopqrstuu5ZhtmJz2ZpvrVSHj0wbvkRh0u4rAQ0S"
	runValidationCases(t, []validationCase{
		{"valid", `node: {name: lb1}
observe:
  listen: ":8404"
  users: [{name: prom, password_hash: "` + hash + `"}]
  allow: [10.0.0.0/8, 192.168.1.7, "fd00::/64"]
  logs:
    - {to: file, path: /var/log/halb/access.log}
    - {name: central, to: syslog, address: "logs.example.com:514", transport: tcp, facility: local3, streams: [access, daemon], tag: lb}
    - {to: journald, streams: [daemon]}
`, nil},
		{"listen on a VIP", `node: {name: lb1}
vrrp:
  - {name: web-a, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
observe: {listen: "10.0.0.100:8404"}
`, []string{`halb.yaml:4: observe.listen: 10.0.0.100 is a VIP of vrrp[0] (web-a): metrics belong on the management address`}},
		{"listen without a port", `node: {name: lb1}
observe: {listen: "10.0.0.1"}
`, []string{`halb.yaml:2: observe.listen: "10.0.0.1" is not host:port (IPv6 as [addr]:port)`}},
		{"users and networks", `node: {name: lb1}
observe:
  users:
    - {name: prom, password_hash: "secret"}
    - {name: prom, password_hash: "` + hash + `"}
  allow: [10.0.0.0/33]
`, []string{
			`halb.yaml:4: observe.users[0].password_hash: is not a bcrypt hash ("$2b$10$" and 53 characters; htpasswd -nbB makes one)`,
			`halb.yaml:5: observe.users[1].name: "prom" is already used by observe.users[0]`,
			`halb.yaml:6: observe.allow[0]: "10.0.0.0/33" is not a network (10.0.0.0/8) or an address`}},
		{"targets", `node: {name: lb1}
observe:
  logs:
    - {to: printer}
    - {to: file}
    - {to: file, path: relative.log, transport: tcp}
    - {to: syslog, streams: [audit], max_size: 10}
    - {to: syslog, address: "10.0.0.1:514", transport: sctp, facility: local9, queue: 1}
    - {to: file, path: /var/log/a.log, max_size: 100, keep: 101, tag: x}
    - {to: file, path: /var/log/a.log}
`, []string{
			`halb.yaml:4: observe.logs[0].to: "printer" is not one of file, syslog, journald`,
			`halb.yaml:5: observe.logs[1].path: is required with to: file`,
			`halb.yaml:6: observe.logs[2].transport: applies only to: syslog`,
			`halb.yaml:6: observe.logs[2].path: "relative.log" is not an absolute path`,
			`halb.yaml:7: observe.logs[3].streams[0]: "audit" is not one of access, daemon`,
			`halb.yaml:7: observe.logs[3].max_size: applies only to: file`,
			`halb.yaml:7: observe.logs[3].address: is required with to: syslog (host:port, e.g. 10.0.0.1:514)`,
			`halb.yaml:8: observe.logs[4].queue: 1 is out of range 16..1048576`,
			`halb.yaml:8: observe.logs[4].transport: "sctp" is not one of udp, tcp`,
			`halb.yaml:8: observe.logs[4].facility: "local9" is not one of kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0, local1, local2, local3, local4, local5, local6, local7`,
			`halb.yaml:9: observe.logs[5].tag: applies only to: syslog, journald`,
			`halb.yaml:9: observe.logs[5].max_size: 100 is out of range 4096..1099511627776`,
			`halb.yaml:9: observe.logs[5].keep: 101 is out of range 0..100`,
			`halb.yaml:10: observe.logs[6].path: "/var/log/a.log" is written by observe.logs[5] already`}},
	})
}
