package config

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNodeKeys(t *testing.T) {
	want := []string{"node", "time.set_clock", "peers", "vrrp[].priority", "vrrp[].address_owner", "vrrp[].unicast_peers", "observe.listen", "bgp.router_id", "bgp.active", "bgp.drain_to"}
	if got := NodeKeys(); !slices.Equal(got, want) {
		t.Fatalf("NodeKeys() = %q, want %q", got, want)
	}
}

const lb1Config = `node: {name: lb1, management: {interface: eth0, address: 10.0.0.1/24}}
time: {servers: [10.0.0.254], set_clock: true}
peers: [{name: lb2, address: 10.0.0.2, fingerprint: "sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}]
vrrp:
  - {name: web-a, interface: eth0, vrid: 51, priority: 150, vips: [10.0.0.100/24], unicast_peers: [10.0.0.2]}
services:
  - {name: web, listen: ["10.0.0.100:80"], default_backend: www}
backends:
  - name: www
    servers: [{name: web1, address: "10.0.1.11:80"}]
`

const lb2Config = `node: {name: lb2, management: {interface: eth0, dhcp: true}}
peers: [{name: lb1, address: 10.0.0.1}]
vrrp:
  - {name: web-a, interface: eth0, vrid: 51, priority: 90, vips: [10.0.0.100/24], unicast_peers: [10.0.0.1]}
`

func mustDecode(t *testing.T, s string) *Config {
	t.Helper()
	if _, err := Parse("t.yaml", []byte(s)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	c, err := Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMergeKeepsNodeParts(t *testing.T) {
	lb1, lb2 := mustDecode(t, lb1Config), mustDecode(t, lb2Config)
	m := Merge(lb2, lb1, "10.0.0.1")
	if m.Node.Name != "lb2" || !m.Node.Management.DHCP || m.Node.Management.Address != "" {
		t.Errorf("node = %+v, want lb2's", m.Node)
	}
	if m.Time.SetClock {
		t.Error("time.set_clock copied from the peer")
	}
	if !slices.Equal(m.Time.Servers, []string{"10.0.0.254"}) {
		t.Errorf("time.servers = %q, want the peer's (a cluster part)", m.Time.Servers)
	}
	if len(m.Peers) != 1 || m.Peers[0].Name != "lb1" {
		t.Errorf("peers = %+v, want lb2's own", m.Peers)
	}
	if v := m.VRRP[0]; v.Priority != 90 || !slices.Equal(v.UnicastPeers, []string{"10.0.0.1"}) {
		t.Errorf("vrrp[0] priority %d unicast %q, want lb2's 90 and [10.0.0.1]", v.Priority, v.UnicastPeers)
	}
	if len(m.Services) != 1 || len(m.Backends) != 1 {
		t.Errorf("services/backends not taken from the peer: %+v %+v", m.Services, m.Backends)
	}
	raw, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("merged", raw); err != nil {
		t.Fatalf("merged config does not parse: %v\n%s", err, raw)
	}
	if ClusterDigest(parseRaw(t, raw)) != ClusterDigest(parseRaw(t, []byte(lb1Config))) {
		t.Errorf("merged cluster parts differ from lb1's:\n%s", raw)
	}
}

func parseRaw(t *testing.T, raw []byte) *Config {
	t.Helper()
	c, err := Parse("t.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMergeSeedsNewInstance(t *testing.T) {
	lb1 := mustDecode(t, lb1Config)
	fresh := mustDecode(t, "node: {name: lb2}\n")
	m := Merge(fresh, lb1, "10.0.0.1")
	if v := m.VRRP[0]; v.Priority != 100 || !slices.Equal(v.UnicastPeers, []string{"10.0.0.1"}) {
		t.Errorf("new instance: priority %d unicast %q, want 150-50=100 and the peer's address", v.Priority, v.UnicastPeers)
	}
	if m.Node.Name != "lb2" || len(m.Peers) != 0 {
		t.Errorf("node parts of the fresh node lost: %+v", m)
	}
	low := mustDecode(t, strings.Replace(lb1Config, "priority: 150", "priority: 20", 1))
	if p := Merge(fresh, low, "").VRRP[0].Priority; p != 1 {
		t.Errorf("priority 20 - 50 = %d, want clamped to 1", p)
	}
}

func TestClusterDigestIgnoresNodePartsAndDefaults(t *testing.T) {
	a := parseRaw(t, []byte(lb1Config))
	b := parseRaw(t, []byte(strings.NewReplacer("priority: 150", "priority: 10", "name: lb1,", "name: lbx,", "set_clock: true", "set_clock: false").Replace(lb1Config)))
	if ClusterDigest(a) != ClusterDigest(b) {
		t.Error("node parts changed the cluster digest")
	}
	c := parseRaw(t, []byte(strings.Replace(lb1Config, `servers: [{name: web1, address: "10.0.1.11:80"}]`, `servers: [{name: web1, address: "10.0.1.11:80", weight: 1}]`, 1)))
	if ClusterDigest(a) != ClusterDigest(c) {
		t.Error("a default written out changed the cluster digest")
	}
	d := parseRaw(t, []byte(strings.Replace(lb1Config, "10.0.1.11:80", "10.0.1.12:80", 1)))
	if ClusterDigest(a) == ClusterDigest(d) {
		t.Error("a server address change did not change the cluster digest")
	}
}

// TestNodePartsDocumented: docs/config.md's table of node parts is
// NodeKeys.
func TestNodePartsDocumented(t *testing.T) {
	documented := docTableKeys(t, "Cluster parts and node parts", "(?m)^\\| `([a-z_.\\[\\]]+)`")
	if !slices.Equal(documented, NodeKeys()) {
		t.Errorf("docs/config.md lists node parts %q, NodeKeys is %q", documented, NodeKeys())
	}
}

// richConfig sets fields of every kind a Config holds: maps, pointers to
// values and to slices, slices of structs.
const richConfig = lb1Config + `vrrp_sync_groups: [{name: g, instances: [web-a, web-b]}]
` + `console: {require_password: false}
`

func richServices(s string) string {
	s = strings.Replace(s, "vips: [10.0.0.100/24], unicast_peers: [10.0.0.2]}\n",
		"vips: [10.0.0.100/24], unicast_peers: [10.0.0.2]}\n  - {name: web-b, interface: eth0, vrid: 52, vips: [10.0.0.101/24], preempt: false}\n", 1)
	return strings.Replace(s, `  - {name: web, listen: ["10.0.0.100:80"], default_backend: www}`,
		`  - {name: web, listen: ["10.0.0.100:80"], default_backend: www, response_headers: {X-A: b}, forward_headers: [x-forwarded-for],
     routes: [{host: a.example, backend: www}]}`, 1)
}

// TestCloneIsDeep: a clone equals its source and shares nothing with it:
// changing the clone's maps, pointers and slices leaves the source as it
// was.
func TestCloneIsDeep(t *testing.T) {
	src := parseRaw(t, []byte(richServices(richConfig)))
	before, err := Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	c := clone(src)
	if !reflect.DeepEqual(c, src) {
		t.Fatalf("clone differs from its source:\n%+v\n%+v", c, src)
	}
	c.Services[0].ResponseHeaders["X-A"] = "changed"
	(*c.Services[0].ForwardHeaders)[0] = "forwarded"
	c.Services[0].Routes[0].Host = "changed.example"
	c.Services[0].Listen[0] = "10.0.0.1:1"
	*c.VRRP[0].Preempt = !*c.VRRP[0].Preempt
	c.VRRP[0].VIPs[0] = "10.9.9.9/24"
	*c.Backends[0].Servers[0].Weight = 77
	c.Backends[0].Servers[0].Address = "10.9.9.9:1"
	*c.Console.RequirePassword = true
	c.VRRPSyncGroups[0].Instances[0] = "other"
	after, _ := Marshal(src)
	if string(after) != string(before) {
		t.Fatalf("changing the clone changed its source:\n%s\nwas\n%s", after, before)
	}
}

// TestClusterDigestStable: the digest of a config is the one earlier
// builds computed (peers of different builds compare digests).
func TestClusterDigestStable(t *testing.T) {
	const want = "6b467036e0ca0a86fb9616ab901e7654632f5c99290c32e961954020efb54655"
	if got := ClusterDigest(parseRaw(t, []byte(richServices(richConfig)))); got != want {
		t.Fatalf("ClusterDigest = %s, want %s", got, want)
	}
}

// TestClusterYAML: the cluster part's YAML that the digest hashes, put
// together from the YAML of each service and backend and reused across
// calls, is Marshal's, byte for byte: for configs with and without
// services, backends, console and observe keys, and after a change of
// every server, a renamed backend, an added service, and a service
// removed from the middle of the list.
func TestClusterYAML(t *testing.T) {
	rich := richServices(richConfig) + "observe: {listen: \":9100\"}\n"
	big := func(w int) string {
		var b strings.Builder
		b.WriteString("node: {name: lb1}\nservices:\n")
		for i := range 30 {
			fmt.Fprintf(&b, "  - {name: s%d, listen: [\"10.0.0.1:%d\"], default_backend: b%d, response_headers: {X-N: \"%d\"}}\n", i, 8000+i, i, i)
		}
		b.WriteString("backends:\n")
		for i := range 30 {
			fmt.Fprintf(&b, "  - name: b%d\n    health: {check: http, path: /h}\n    servers:\n", i)
			for j := range 3 {
				fmt.Fprintf(&b, "      - {name: s%d, address: \"10.1.%d.%d:80\", weight: %d}\n", j, i, j, w)
			}
		}
		return b.String()
	}
	// Long lists (rendered in chunks): n routes of one service and n
	// servers of one backend; hosts and paths long enough to reach the
	// emitter's width when nested take the path that renders them whole.
	long := func(n int, host, path string) string {
		var b strings.Builder
		b.WriteString("node: {name: lb1}\nservices:\n  - name: web\n    listen: [\"10.0.0.1:80\"]\n    default_backend: b0\n    routes:\n")
		for i := range n {
			fmt.Fprintf(&b, "      - {host: %q, path_prefix: %q, backend: b%d}\n", fmt.Sprintf(host, i), "/"+fmt.Sprintf(path, i), i%3)
		}
		b.WriteString("    access_log: true\nbackends:\n")
		for k := range 3 {
			fmt.Fprintf(&b, "  - name: b%d\n    servers:\n", k)
			for j := range n {
				fmt.Fprintf(&b, "      - {name: s%d, address: \"10.%d.%d.%d:80\"}\n", j, k, j/250, j%250+1)
			}
			b.WriteString("    balance: leastconn\n")
		}
		return b.String()
	}
	for _, want := range []string{"r300.example.com", "s301, address: \"10.1.1.52:80\"", "      - {host: \"r5.example.com\", path_prefix: \"/p5\", backend: b2}\n"} {
		if !strings.Contains(long(600, "r%d.example.com", "p%d"), want) {
			t.Fatalf("the long config lacks %q, which a case below changes", want)
		}
	}
	for i, raw := range []string{
		lb1Config, lb2Config, rich, big(1), big(2), big(2),
		strings.NewReplacer("  - name: b7\n", "  - name: b7x\n", "default_backend: b7,", "default_backend: b8,").Replace(big(2)),
		strings.Replace(big(2), "services:\n", "services:\n  - {name: new, listen: [\"10.0.0.1:99\"], default_backend: b1}\n", 1),
		strings.NewReplacer("  - {name: s3, listen: [\"10.0.0.1:8003\"], default_backend: b3, response_headers: {X-N: \"3\"}}\n", "",
			"  - name: b3\n", "  - name: b3\n    servers: []\n  - name: gone\n").Replace(big(2)),
		"node: {name: x}\nconsole: {require_password: false}\nbackends:\n  - {name: b, servers: []}\n",
		"node: {name: x}\nservices: []\n",
		long(600, "r%d.example.com", "p%d"),
		// One route and one server changed in the second chunk, then one
		// of the first chunk gone (every chunk after it shifts).
		strings.NewReplacer("r300.example.com", "changed.example.com", "s301, address: \"10.1.1.52:80\"", "s301, address: \"10.9.9.9:80\"").Replace(long(600, "r%d.example.com", "p%d")),
		strings.Replace(long(600, "r%d.example.com", "p%d"), "      - {host: \"r5.example.com\", path_prefix: \"/p5\", backend: b2}\n", "", 1),
		long(longList+1, "host-%d-"+strings.Repeat("x", 40)+"."+strings.Repeat("z", 30)+".example", "p%d"),
		long(longList+1, "h%d.example", "/a/long path with spaces %d "+strings.Repeat("y", 50)),
	} {
		cp := ClusterPart(parseRaw(t, []byte(raw)))
		want, err := Marshal(cp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := clusterYAML(cp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("config %d: clusterYAML\n%s\nwant Marshal's\n%s", i, got, want)
		}
	}
}

// TestExplicitZerosSurviveMerge: a value whose 0 differs from its default
// (garp.repeat, observe.logs[].keep, bgp hold_time) reaches the peer as 0 through the
// merge and Marshal, and the two nodes' cluster digests agree; left out,
// the default holds on both.
func TestExplicitZerosSurviveMerge(t *testing.T) {
	const bgp = "bgp: {asn: 65001, neighbors: [{address: 10.0.0.254, asn: 65000%s}], announce: [{vip: 10.0.0.200/32, when: always}]}\n"
	zeros := strings.Replace(lb1Config, "unicast_peers: [10.0.0.2]}", "unicast_peers: [10.0.0.2], garp: {repeat: 0}}", 1) +
		"observe: {logs: [{to: file, path: /var/log/halb/a.log, keep: 0}]}\n" + fmt.Sprintf(bgp, ", hold_time: 0s")
	for _, c := range []struct {
		remote       string
		repeat, keep int
		hold         time.Duration
	}{
		{zeros, 0, 0, 0},
		{lb1Config + "observe: {logs: [{to: file, path: /var/log/halb/a.log}]}\n" + fmt.Sprintf(bgp, ""), DefaultGARPRepeat, DefaultLogKeep, DefaultBGPHoldTime},
	} {
		raw, err := Marshal(Merge(mustDecode(t, lb2Config), mustDecode(t, c.remote), "10.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		m := parseRaw(t, raw)
		if r, k, h := m.VRRP[0].GARP.Repeats(), m.Observe.Logs[0].Kept(), m.BGP.Neighbors[0].Hold(); r != c.repeat || k != c.keep || h != c.hold {
			t.Errorf("merged: garp.repeat %d, keep %d, hold_time %s; want %d, %d, %s\n%s", r, k, h, c.repeat, c.keep, c.hold, raw)
		}
		if ClusterDigest(m) != ClusterDigest(parseRaw(t, []byte(c.remote))) {
			t.Errorf("the merged config's cluster digest differs from the peer's:\n%s", raw)
		}
	}
}
