package config

import (
	"reflect"
	"strings"
	"testing"
)

func loadExample(t *testing.T, name string) *Config {
	t.Helper()
	cfg, _, err := Load("../../examples/" + name)
	if err != nil {
		t.Fatalf("load example %s: %v", name, err)
	}
	return cfg
}

func checkDiff(t *testing.T, got, want []Change) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff =\n\t%s\nwant\n\t%s", changeList(got), changeList(want))
	}
}

func changeList(cs []Change) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, "\n\t")
}

const diffBase = `
node: {name: lb1}
vrrp:
  - {name: web-a, interface: eth1, vrid: 51, priority: 150, vips: [192.168.10.100/24]}
  - {name: web-b, interface: eth1, vrid: 52, priority: 100, vips: [192.168.10.101/24]}
services:
  - {name: web, listen: [":80"], default_backend: www}
backends:
  - name: www
    servers:
      - {name: web1, address: "10.0.0.11:80"}
  - name: api
    servers:
      - {name: api1, address: "10.0.0.21:80"}
`

// edit parses diffBase with old replaced by new, once.
func edit(t *testing.T, old, new string) *Config {
	t.Helper()
	if strings.Count(diffBase, old) != 1 {
		t.Fatalf("%q is not in diffBase exactly once", old)
	}
	return mustParse(t, strings.Replace(diffBase, old, new, 1))
}

func TestDiffFromNil(t *testing.T) {
	cfg := loadExample(t, "lb1.yaml")
	checkDiff(t, Diff(nil, cfg), []Change{
		{Section: "node", Kind: "changed", Fields: []string{"name"}},
		{Section: "vrrp", Name: "web-a", Kind: "added"},
		{Section: "services", Name: "web", Kind: "added"},
		{Section: "services", Name: "db", Kind: "added"},
		{Section: "backends", Name: "www", Kind: "added"},
		{Section: "backends", Name: "api", Kind: "added"},
		{Section: "backends", Name: "pg", Kind: "added"},
		{Section: "observe", Kind: "changed", Fields: []string{"listen", "logs"}},
	})
	checkDiff(t, Diff(cfg, nil), []Change{
		{Section: "node", Kind: "changed", Fields: []string{"name"}},
		{Section: "vrrp", Name: "web-a", Kind: "removed"},
		{Section: "services", Name: "web", Kind: "removed"},
		{Section: "services", Name: "db", Kind: "removed"},
		{Section: "backends", Name: "www", Kind: "removed"},
		{Section: "backends", Name: "api", Kind: "removed"},
		{Section: "backends", Name: "pg", Kind: "removed"},
		{Section: "observe", Kind: "changed", Fields: []string{"listen", "logs"}},
	})
	checkDiff(t, Diff(nil, nil), nil)

	// Keys left out are at their defaults, not changes from an empty file.
	checkDiff(t, Diff(nil, mustParse(t, "node: {name: lb1}\n")), []Change{
		{Section: "node", Kind: "changed", Fields: []string{"name"}},
	})
	checkDiff(t, Diff(nil, mustParse(t, "node: {name: lb1}\ntime: {max_offset: 1s}\n")), []Change{
		{Section: "node", Kind: "changed", Fields: []string{"name"}},
		{Section: "time", Kind: "changed", Fields: []string{"max_offset"}},
	})
}

func TestDiffIdentical(t *testing.T) {
	a, b := mustParse(t, diffBase), mustParse(t, diffBase)
	checkDiff(t, Diff(a, b), nil)
	checkDiff(t, Diff(a, a), nil)
	for _, name := range []string{"lb1.yaml", "lb2.yaml", "dual-master.yaml", "minimal.yaml"} {
		checkDiff(t, Diff(loadExample(t, name), loadExample(t, name)), nil)
	}
}

// TestDiffSameMeaning checks that two files that differ only in how they
// write the same config have no changes: defaults written out, flow or block
// style, and an empty list versus no list.
func TestDiffSameMeaning(t *testing.T) {
	a := mustParse(t, diffBase)
	b := mustParse(t, `
node:
  name: lb1
time: {max_offset: 500ms}
peers: []
vrrp:
  - name: web-a
    interface: eth1
    vrid: 51
    version: 3
    priority: 150
    advert_interval: 200ms
    preempt: true
    vips: [192.168.10.100/24]
    unicast_peers: []
    track: {interfaces: [], services: []}
  - {name: web-b, interface: eth1, vrid: 52, vips: [192.168.10.101/24]}
services:
  - {name: web, listen: [":80"], mode: http, routes: [], default_backend: www}
backends:
  - name: www
    balance: roundrobin
    health: {check: tcp, interval: 2s, timeout: 1s, rise: 2, fall: 3}
    servers:
      - {name: web1, address: "10.0.0.11:80", weight: 1}
  - name: api
    servers:
      - {name: api1, address: "10.0.0.21:80"}
`)
	checkDiff(t, Diff(a, b), nil)
	checkDiff(t, Diff(b, a), nil)
}

func TestDiffChanges(t *testing.T) {
	base := mustParse(t, diffBase)
	for _, tc := range []struct {
		name     string
		old, new string
		want     []Change
	}{
		{"vrrp priority", "vrid: 52, priority: 100", "vrid: 52, priority: 120",
			[]Change{{Section: "vrrp", Name: "web-b", Kind: "changed", Fields: []string{"priority"}}}},
		{"vrrp priority and vips", "priority: 150, vips: [192.168.10.100/24]", "priority: 200, vips: [192.168.10.100/24, 192.168.10.110/24]",
			[]Change{{Section: "vrrp", Name: "web-a", Kind: "changed", Fields: []string{"priority", "vips"}}}},
		{"vrrp track", "vrid: 51, priority: 150,", "vrid: 51, priority: 150, track: {interfaces: [eth1]},",
			[]Change{{Section: "vrrp", Name: "web-a", Kind: "changed", Fields: []string{"track"}}}},
		{"backend removed", `  - name: api
    servers:
      - {name: api1, address: "10.0.0.21:80"}
`, "",
			[]Change{{Section: "backends", Name: "api", Kind: "removed"}}},
		{"service added", `services:
`, `services:
  - {name: api, listen: [":8080"], default_backend: api}
`,
			[]Change{{Section: "services", Name: "api", Kind: "added"}}},
		{"node name", "node: {name: lb1}", "node: {name: lb2}",
			[]Change{{Section: "node", Kind: "changed", Fields: []string{"name"}}}},
		{"node management", "node: {name: lb1}", "node: {name: lb1, management: {interface: eth0, dhcp: true}}",
			[]Change{{Section: "node", Kind: "changed", Fields: []string{"management"}}}},
		{"node name and management", "node: {name: lb1}", "node: {name: lb2, management: {interface: eth0, dhcp: true}}",
			[]Change{{Section: "node", Kind: "changed", Fields: []string{"name", "management"}}}},
		{"time", "node: {name: lb1}", "node: {name: lb1}\ntime: {servers: [172.16.0.254]}",
			[]Change{{Section: "time", Kind: "changed", Fields: []string{"servers"}}}},
		{"peer added", "node: {name: lb1}", "node: {name: lb1}\npeers: [{name: lb2, address: 172.16.0.2}]",
			[]Change{{Section: "peers", Name: "lb2", Kind: "added"}}},
		{"server weight", `{name: web1, address: "10.0.0.11:80"}`, `{name: web1, address: "10.0.0.11:80", weight: 0}`,
			[]Change{{Section: "backends", Name: "www", Kind: "changed", Fields: []string{"servers"}}}},
		{"backend health", "  - name: www\n", "  - name: www\n    health: {check: http}\n",
			[]Change{{Section: "backends", Name: "www", Kind: "changed", Fields: []string{"health"}}}},
		{"sync group added", "services:\n", "vrrp_sync_groups: [{name: g, instances: [web-a, web-b]}]\nservices:\n",
			[]Change{{Section: "vrrp_sync_groups", Name: "g", Kind: "added"}}},
		{"vrrp notify", "vrid: 51, priority: 150,", "vrid: 51, priority: 150, notify: /bin/true,",
			[]Change{{Section: "vrrp", Name: "web-a", Kind: "changed", Fields: []string{"notify"}}}},
		{"rename is remove and add", "name: web-b", "name: web-c",
			[]Change{
				{Section: "vrrp", Name: "web-c", Kind: "added"},
				{Section: "vrrp", Name: "web-b", Kind: "removed"},
			}},
		{"console password off", "node: {name: lb1}", "node: {name: lb1}\nconsole: {require_password: false}",
			[]Change{{Section: "console", Kind: "changed", Fields: []string{"require_password"}}}},
		{"console password default written out", "node: {name: lb1}", "node: {name: lb1}\nconsole: {require_password: true}", nil},
		{"console empty", "node: {name: lb1}", "node: {name: lb1}\nconsole: {}", nil},
		{"reorder is no change", `  - {name: web-a, interface: eth1, vrid: 51, priority: 150, vips: [192.168.10.100/24]}
  - {name: web-b, interface: eth1, vrid: 52, priority: 100, vips: [192.168.10.101/24]}
`, `  - {name: web-b, interface: eth1, vrid: 52, priority: 100, vips: [192.168.10.101/24]}
  - {name: web-a, interface: eth1, vrid: 51, priority: 150, vips: [192.168.10.100/24]}
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDiff(t, Diff(base, edit(t, tc.old, tc.new)), tc.want)
		})
	}
}

// TestDiffExamples compares the two nodes of the example pair.
func TestDiffExamples(t *testing.T) {
	checkDiff(t, Diff(loadExample(t, "lb1.yaml"), loadExample(t, "lb2.yaml")), []Change{
		{Section: "node", Kind: "changed", Fields: []string{"name"}},
		{Section: "vrrp", Name: "web-a", Kind: "changed", Fields: []string{"priority"}},
		{Section: "services", Name: "web", Kind: "changed", Fields: []string{"response_headers"}},
	})
}

// TestDiffDoesNotModify checks that Diff leaves its arguments alone.
func TestDiffDoesNotModify(t *testing.T) {
	a, b := mustParse(t, diffBase), edit(t, "priority: 100", "priority: 120")
	a0, b0 := mustParse(t, diffBase), edit(t, "priority: 100", "priority: 120")
	Diff(a, b)
	if !reflect.DeepEqual(a, a0) || !reflect.DeepEqual(b, b0) {
		t.Errorf("Diff modified its arguments")
	}
}

func TestChangeString(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Section: "vrrp", Name: "web-a", Kind: "changed", Fields: []string{"priority"}}, `vrrp "web-a" changed: priority`},
		{Change{Section: "vrrp", Name: "web-a", Kind: "changed", Fields: []string{"priority", "vips"}}, `vrrp "web-a" changed: priority, vips`},
		{Change{Section: "backends", Name: "pg", Kind: "removed"}, `backends "pg" removed`},
		{Change{Section: "services", Name: "web", Kind: "added"}, `services "web" added`},
		{Change{Section: "node", Kind: "changed", Fields: []string{"name", "management"}}, `node changed: name, management`},
		{Change{Section: "time", Kind: "changed", Fields: []string{"max_offset"}}, `time changed: max_offset`},
		{Change{Section: "time", Kind: "changed", Fields: []string{"max_offset"}, Inactive: []string{"time"}},
			`time changed: max_offset (not active in this build: time)`},
		{Change{Section: "node", Kind: "changed", Fields: []string{"name", "management"}, Inactive: []string{"node.management"}},
			`node changed: name, management (not active in this build: node.management)`},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}

// TestDiffCoversEverySection: a change to any top-level section of the
// config is reported (a section added to Config without a line in Diff
// would change silently: reviews and the history would not show it).
func TestDiffCoversEverySection(t *testing.T) {
	base := &Config{Node: Node{Name: "lb1"}}
	changed := map[string]func(c *Config){
		"node":             func(c *Config) { c.Node.Name = "lb2" },
		"time":             func(c *Config) { c.Time.Servers = []string{"10.0.0.1"} },
		"peers":            func(c *Config) { c.Peers = []Peer{{Name: "p"}} },
		"vrrp":             func(c *Config) { c.VRRP = []VRRPInstance{{Name: "v"}} },
		"vrrp_sync_groups": func(c *Config) { c.VRRPSyncGroups = []VRRPSyncGroup{{Name: "g"}} },
		"services":         func(c *Config) { c.Services = []Service{{Name: "s"}} },
		"backends":         func(c *Config) { c.Backends = []Backend{{Name: "b"}} },
		"console":          func(c *Config) { b := false; c.Console.RequirePassword = &b },
		"observe":          func(c *Config) { c.Observe.Listen = ":8404" },
		"bgp":              func(c *Config) { c.BGP.ASN = 65001 },
	}
	ty := reflect.TypeOf(Config{})
	for i := range ty.NumField() {
		section := yamlName(ty.Field(i))
		edit := changed[section]
		if edit == nil {
			t.Errorf("section %q: no case in this test", section)
			continue
		}
		c := *base
		edit(&c)
		got := Diff(base, &c)
		if len(got) != 1 || got[0].Section != section {
			t.Errorf("a change of %s: Diff = %v", section, got)
		}
	}
}
