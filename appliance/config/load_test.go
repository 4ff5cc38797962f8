package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnknownKeys(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"top level", `
node: {name: lb1}
nodes: {name: lb2}
`, []string{`halb.yaml:2: nodes: unknown key "nodes"; did you mean "node"? (known keys here: node, time, peers, vrrp, vrrp_sync_groups, services, backends, console, observe, bgp)`}},
		{"node.management", `
node:
  name: lb1
  management:
    interface: eth0
    dhcp: true
    mtu: 9000
`, []string{`halb.yaml:6: node.management.mtu: unknown key "mtu" (known keys here: interface, dhcp, address, gateway, dns)`}},
		{"vrrp[1].track", `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - name: b
    interface: eth0
    vrid: 2
    vips: [10.0.0.2/24]
    track:
      interfaces: [eth0]
      wieght: -10
`, []string{`halb.yaml:10: vrrp[1].track.wieght: unknown key "wieght"; did you mean "weight"? (known keys here: interfaces, services, scripts, weight)`}},
		{"backends[0].servers[0]", `
node: {name: lb1}
backends:
  - name: www
    servers:
      - name: s1
        address: 10.0.0.1:80
        wieght: 5
`, []string{`halb.yaml:7: backends[0].servers[0].wieght: unknown key "wieght"; did you mean "weight"? (known keys here: name, address, weight, maxconn, backup, disabled)`}},
		{"several at once", `
node:
  name: lb1
  hostname: lb1
time:
  server: [172.16.0.254]
backends:
  - name: www
    health: {check: http, url: /}
    servers:
      - {name: s1, address: "10.0.0.1:80", spare: true}
lb: 1
`, []string{
			`halb.yaml:3: node.hostname: unknown key "hostname" (known keys here: name, management, manage_system, peer_port)`,
			`halb.yaml:5: time.server: unknown key "server"; did you mean "servers"? (known keys here: servers, max_offset, set_clock, step_threshold, min_poll, max_poll)`,
			`halb.yaml:8: backends[0].health.url: unknown key "url" (known keys here: check, path, expect_status, interval, timeout, rise, fall, port, method, host, expect_body, verify, send, expect, observe, initial)`,
			`halb.yaml:10: backends[0].servers[0].spare: unknown key "spare" (known keys here: name, address, weight, maxconn, backup, disabled)`,
			`halb.yaml:11: lb: unknown key "lb" (known keys here: node, time, peers, vrrp, vrrp_sync_groups, services, backends, console, observe, bgp)`,
		}},
		{"suggestions", `
node:
  Name: lb1
  managment: {}
backends:
  - name: www
    heath: {}
    balanse: leastconn
    sticky: {cokie: x, expires: 1m}
    servers:
      - {name: s1, adress: "10.0.0.1:80", maxcon: 5, w: 1}
servises: []
`, []string{
			`halb.yaml:1: node.name: is required`,
			`halb.yaml:2: node.Name: unknown key "Name"; did you mean "name"? (known keys here: name, management, manage_system, peer_port)`,
			`halb.yaml:3: node.managment: unknown key "managment"; did you mean "management"? (known keys here: name, management, manage_system, peer_port)`,
			`halb.yaml:6: backends[0].heath: unknown key "heath"; did you mean "health"? (known keys here: name, balance, sticky, health, proxy_protocol, tls, slowstart, servers, all_backups)`,
			`halb.yaml:7: backends[0].balanse: unknown key "balanse"; did you mean "balance"? (known keys here: name, balance, sticky, health, proxy_protocol, tls, slowstart, servers, all_backups)`,
			`halb.yaml:8: backends[0].sticky.cokie: unknown key "cokie"; did you mean "cookie"? (known keys here: cookie, source, expire)`,
			`halb.yaml:8: backends[0].sticky.expires: unknown key "expires"; did you mean "expire"? (known keys here: cookie, source, expire)`,
			`halb.yaml:10: backends[0].servers[0].adress: unknown key "adress"; did you mean "address"? (known keys here: name, address, weight, maxconn, backup, disabled)`,
			`halb.yaml:10: backends[0].servers[0].maxcon: unknown key "maxcon"; did you mean "maxconn"? (known keys here: name, address, weight, maxconn, backup, disabled)`,
			`halb.yaml:10: backends[0].servers[0].w: unknown key "w" (known keys here: name, address, weight, maxconn, backup, disabled)`,
			`halb.yaml:10: backends[0].servers[0].address: is required`,
			`halb.yaml:11: servises: unknown key "servises"; did you mean "services"? (known keys here: node, time, peers, vrrp, vrrp_sync_groups, services, backends, console, observe, bgp)`,
		}},
		{"with validation errors too", `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: 0, vips: [10.0.0.1/24], prio: 100}
`, []string{
			`halb.yaml:3: vrrp[0].prio: unknown key "prio" (known keys here: name, interface, vrid, version, priority, address_owner, advert_interval, preempt, preempt_delay, vips, unicast_peers, track, notify, garp, use_vmac)`,
			`halb.yaml:3: vrrp[0].vrid: 0 is out of range 1..255`,
		}},
		{"merge key", `
base: &b {name: lb1}
node:
  <<: *b
`, []string{
			`halb.yaml:1: base: unknown key "base" (known keys here: node, time, peers, vrrp, vrrp_sync_groups, services, backends, console, observe, bgp)`,
			`halb.yaml:2: node.name: is required`,
			`halb.yaml:3: node.<<: unknown key "<<" (known keys here: name, management, manage_system, peer_port)`,
		}},
		{"known key of another section", `
node: {name: lb1, vrid: 5}
`, []string{`halb.yaml:1: node.vrid: unknown key "vrid" (known keys here: name, management, manage_system, peer_port)`}},
		{"key case matters", `
node: {Name: lb1}
`, []string{
			`halb.yaml:1: node.Name: unknown key "Name"; did you mean "name"? (known keys here: name, management, manage_system, peer_port)`,
			`halb.yaml:1: node.name: is required`,
		}},
	})
}

func TestWrongTypes(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"string for int", `
node: {name: lb1}
vrrp:
  - name: a
    interface: eth0
    vrid: fifty
    vips: [10.0.0.1/24]
`, []string{`halb.yaml:5: vrrp[0].vrid: want a whole number, got "fifty"`}},
		{"quoted number for int", `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: "51", vips: [10.0.0.1/24]}
`, []string{`halb.yaml:3: vrrp[0].vrid: want a whole number, got "51"`}},
		{"float for int", `
node: {name: lb1}
backends:
  - name: www
    health: {rise: 1.5}
`, []string{`halb.yaml:4: backends[0].health.rise: want a whole number, got "1.5"`}},
		{"int too large", `
node: {name: lb1}
backends:
  - name: www
    health: {port: 99999999999999999999999}
`, []string{`halb.yaml:4: backends[0].health.port: want a whole number, got "99999999999999999999999"`}},
		{"tagged int that is not one", `
node: {name: lb1}
backends:
  - name: www
    health: {check: http, rise: !!int abc}
`, []string{`halb.yaml:4: backends[0].health.rise: want a whole number, got "abc"`}},
		{"list for int", `
node: {name: lb1}
backends:
  - name: www
    servers:
      - {name: s1, address: "10.0.0.1:80", weight: [1]}
`, []string{`halb.yaml:5: backends[0].servers[0].weight: want a whole number, got a list`}},
		{"list for string", `
node:
  name: [lb1]
`, []string{`halb.yaml:2: node.name: want a single value, got a list`}},
		{"mapping for string", `
node: {name: lb1}
vrrp:
  - name: a
    interface: {name: eth0}
    vrid: 1
    vips: [10.0.0.1/24]
`, []string{`halb.yaml:4: vrrp[0].interface: want a single value, got a mapping`}},
		{"scalar for mapping", `
node: lb1
`, []string{`halb.yaml:1: node: want a mapping of keys (name, management, manage_system, peer_port)`}},
		{"list for mapping", `
node: {name: lb1}
vrrp:
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    track: [eth0]
`, []string{`halb.yaml:7: vrrp[0].track: want a mapping of keys (interfaces, services, scripts, weight)`}},
		{"scalar for list", `
node: {name: lb1}
vrrp: web-a
`, []string{`halb.yaml:2: vrrp: want a list`}},
		{"scalar for list of strings", `
node: {name: lb1}
vrrp:
  - name: a
    interface: eth0
    vrid: 1
    vips: 10.0.0.1/24
`, []string{`halb.yaml:6: vrrp[0].vips: want a list`}},
		{"scalar for list item", `
node: {name: lb1}
vrrp: [5]
`, []string{`halb.yaml:2: vrrp[0]: want a mapping of keys (name, interface, vrid, version, priority, address_owner, advert_interval, preempt, preempt_delay, vips, unicast_peers, track, notify, garp, use_vmac)`}},
		{"yes for bool", `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], preempt: yes}
`, []string{`halb.yaml:3: vrrp[0].preempt: want true or false, got "yes"`}},
		{"number for bool", `
node:
  name: lb1
  management: {interface: eth0, dhcp: 1}
`, []string{`halb.yaml:3: node.management.dhcp: want true or false, got "1"`}},
		{"tagged bool that is not one", `
node:
  name: lb1
  management: {interface: eth0, dhcp: !!bool maybe}
`, []string{`halb.yaml:3: node.management.dhcp: want true or false, got "maybe"`}},
		{"number for duration", `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24], advert_interval: 100}
`, []string{`halb.yaml:3: vrrp[0].advert_interval: "100" is not a duration (e.g. 200ms, 2s)`}},
		{"list for duration", `
node: {name: lb1}
backends:
  - name: www
    health:
      interval: [1s]
`, []string{`halb.yaml:5: backends[0].health.interval: want a single value`}},
		{"long value is shortened", `
node: {name: lb1}
vrrp:
  - {name: a, interface: eth0, vrid: ` + strings.Repeat("x", 50) + `, vips: [10.0.0.1/24]}
`, []string{`halb.yaml:3: vrrp[0].vrid: want a whole number, got "` + strings.Repeat("x", 40) + `..."`}},
		{"several at once", `
node:
  name: [lb1]
vrrp:
  - name: a
    interface: eth0
    vrid: one
    priority: high
    vips: [10.0.0.1/24]
    track: {interfaces: eth0}
`, []string{
			`halb.yaml:2: node.name: want a single value, got a list`,
			`halb.yaml:6: vrrp[0].vrid: want a whole number, got "one"`,
			`halb.yaml:7: vrrp[0].priority: want a whole number, got "high"`,
			`halb.yaml:9: vrrp[0].track.interfaces: want a list`,
		}},
		{"null values", `
node: {name: lb1}
vrrp:
  - name: a
    interface: eth0
    vrid: 1
    vips: [10.0.0.1/24]
    preempt: ~
    priority:
`, []string{`halb.yaml:8: vrrp[0].priority: 0 is out of range 1..255`}},
	})
}

func TestDuplicateKeys(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"in node", `
node:
  name: lb1
  name: lb2
`, []string{`halb.yaml:3: node.name: is already set on line 2`}},
		{"top level", `
node: {name: lb1}
vrrp: []
node: {name: lb2}
`, []string{`halb.yaml:3: node: is already set on line 1`}},
		{"quoted and plain", `
node: {name: lb1, "name": lb2}
`, []string{`halb.yaml:1: node.name: is already set on line 1`}},
		// The rest of the mapping is still decoded and checked.
		{"with other errors", `
node: {name: lb1}
backends:
  - name: www
    balance: fastest
    balance: roundrobin
    health: {rise: 0}
`, []string{
			`halb.yaml:4: backends[0].balance: "fastest" is not one of roundrobin, leastconn, source, uri, random`,
			`halb.yaml:5: backends[0].balance: is already set on line 4`,
			`halb.yaml:6: backends[0].health.rise: 0 must be at least 1`,
		}},
	})
}

func TestAliasesRejected(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"scalar value", `
node: {name: &n lb1}
peers:
  - {name: lb2, address: 172.16.0.2}
  - {name: *n, address: 172.16.0.3}
`, []string{`halb.yaml:4: peers[1].name: YAML aliases are not supported in halb.yaml`}},
		{"mapping value", `
node: {name: lb1}
backends:
  - name: www
    health: &h {check: http}
  - name: api
    health: *h
`, []string{`halb.yaml:6: backends[1].health: YAML aliases are not supported in halb.yaml`}},
		{"list item", `
node: {name: lb1}
vrrp:
  - &v {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1/24]}
  - *v
`, []string{`halb.yaml:4: vrrp[1]: YAML aliases are not supported in halb.yaml`}},
		{"key", `
node: {&k name: lb1}
peers:
  - {*k : lb2, address: 172.16.0.2}
`, []string{
			`halb.yaml:3: peers[0]: YAML aliases are not supported in halb.yaml`,
			`halb.yaml:3: peers[0].name: is required`,
		}},
	})

	// A "billion laughs" document is refused without expanding it.
	var b strings.Builder
	b.WriteString("node: {name: lb1}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("vrrp: *a29\n")
	_, err := Parse("halb.yaml", []byte(b.String()))
	es := AsErrors(err)
	if len(es) != 31 || es[30].Error() != "halb.yaml:32: vrrp: YAML aliases are not supported in halb.yaml" {
		t.Errorf("billion laughs: got %d errors:\n%v", len(es), err)
	}
}

// syntaxCases are YAML syntax errors of every common kind, each with the
// line and column of the offending token or character as the parser found
// it: the same place PyYAML reports (TestSyntaxErrorsMatchPyYAML checks).
var syntaxCases = []struct {
	name      string
	yaml      string
	line, col int
	msg       string
}{
	{"key less indented than its siblings", "node:\n  name: lb1\n vrrp: [\n", 3, 2,
		"did not find expected key (while parsing a block mapping that starts at line 1, column 1)"},
	{"key more indented than its siblings", "node:\n  name: lb1\n   vrrp: x\n", 3, 8,
		"mapping values are not allowed in this context"},
	{"list item among mapping keys", "node:\n  name: lb1\n  - x\n", 3, 3,
		"did not find expected key (while parsing a block mapping that starts at line 2, column 3)"},
	{"mapping key among list items", "node:\n  name: lb1\nvrrp:\n  - a\n  b: 1\n", 5, 3,
		"did not find expected '-' indicator (while parsing a block collection that starts at line 4, column 3)"},
	{"list item less indented than the list", "node:\n  name: lb1\n  dns:\n    - 1\n   - 2\n", 5, 4,
		"did not find expected key (while parsing a block mapping that starts at line 2, column 3)"},
	{"unclosed bracket, more keys follow", "node:\n  name: lb1\nvrrp: [a, b\nservices: []\n", 4, 9,
		"did not find expected ',' or ']' (while parsing a flow sequence that starts at line 3, column 7)"},
	{"unclosed bracket at the end", "node: {name: lb1}\nvrrp: [\n", 3, 1,
		"did not find expected node content at the end of the file"},
	{"unclosed brace", "node:\n  name: lb1\nfoo: {a: 1\nbar: 2\n", 4, 4,
		"did not find expected ',' or '}' (while parsing a flow mapping that starts at line 3, column 6)"},
	{"bracket closed by a brace", "node: {name: lb1}\nvrrp: {a: [b, c}\n", 2, 16,
		"did not find expected ',' or ']' (while parsing a flow sequence that starts at line 2, column 11)"},
	{"unclosed double quote", "node:\n  name: \"lb1\nvrrp: []\n", 4, 1,
		"found unexpected end of stream (while scanning a quoted scalar that starts at line 2, column 9)"},
	{"unclosed single quote", "node:\n  name: 'it''s\n", 3, 1,
		"found unexpected end of stream (while scanning a quoted scalar that starts at line 2, column 9)"},
	{"tab indentation", "node:\n\tname: lb1\n", 2, 1,
		"found character '\\t' (a tab) that cannot start any token; indent with spaces, not tabs"},
	{"tab indenting a later key", "node:\n  name: lb1\n\tvrrp: []\n", 3, 1,
		"found a tab character that violates indentation; indent with spaces, not tabs (while scanning a plain scalar that starts at line 2, column 9)"},
	{"key without its colon", "node:\n  name: lb1\n  vrrp\nservices: []\n", 4, 1,
		"could not find expected ':' (while scanning a simple key that starts at line 3, column 3)"},
	{"top-level line without a colon", "node:\n  name: lb1\nkey with no colon\n", 4, 1,
		"could not find expected ':' at the end of the file (while scanning a simple key that starts at line 3, column 1)"},
	{"colon in a plain value", "node:\n  name: lb1: x\n", 2, 12,
		"mapping values are not allowed in this context"},
	{"character that cannot start a token", "node: {name: lb1}\n@foo\n", 2, 1,
		"found character '@' that cannot start any token"},
	{"alias of an unknown anchor", "node: {name: lb1}\nvrrp: *nope\n", 2, 7,
		"unknown anchor 'nope' referenced"},
	{"broken second document", "node: {name: lb1}\n---\nfoo: [\n", 4, 1,
		"did not find expected node content at the end of the file"},
	{"control character", "node:\n  name: lb1\x01\n", 2, 12,
		"control characters are not allowed (found '\\x01' (U+0001))"},
	{"invalid UTF-8", "node:\n  name: lé\xff1\n", 2, 11,
		"invalid leading UTF-8 octet (found byte 0xff)"},
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range syntaxCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("halb.yaml", []byte(tc.yaml))
			es := AsErrors(err)
			if len(es) != 1 {
				t.Fatalf("Parse(%q): want one error, got %v", tc.yaml, err)
			}
			want := fmt.Sprintf("halb.yaml:%d:%d: yaml: %s", tc.line, tc.col, tc.msg)
			if got := es[0].Error(); got != want || es[0].Line != tc.line || es[0].Column != tc.col {
				t.Errorf("Parse(%q):\n got %q\nwant %q", tc.yaml, got, want)
			}
		})
	}
}

// TestSyntaxErrorsMatchPyYAML checks the positions in syntaxCases against
// PyYAML's problem mark (python3-yaml; skipped without it). PyYAML reports
// the control character and the invalid UTF-8 as reader errors with an
// offset, which the script turns into a line and column.
func TestSyntaxErrorsMatchPyYAML(t *testing.T) {
	if err := exec.Command("python3", "-c", "import yaml").Run(); err != nil {
		t.Skipf("python3 with the yaml module is needed (apt-get install python3-yaml): %v", err)
	}
	const script = `
import json, sys, yaml
for doc in json.load(sys.stdin):
    data = bytes.fromhex(doc)
    try:
        list(yaml.safe_load_all(data))
        print("ok")
    except yaml.MarkedYAMLError as e:
        print(e.problem_mark.line + 1, e.problem_mark.column + 1)
    except yaml.reader.ReaderError as e:
        if e.encoding:  # a decoding error, at a byte offset
            text = data[:e.position].decode("utf-8")
        else:  # an unacceptable character, at a character offset
            text = data.decode("utf-8")[:e.position]
        print(text.count("\n") + 1, len(text) - text.rfind("\n"))
`
	docs := make([]string, len(syntaxCases))
	for i, tc := range syntaxCases {
		docs[i] = hex.EncodeToString([]byte(tc.yaml))
	}
	in, _ := json.Marshal(docs)
	cmd := exec.Command("python3", "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(syntaxCases) {
		t.Fatalf("python3 printed %d lines for %d cases:\n%s", len(lines), len(syntaxCases), out)
	}
	for i, tc := range syntaxCases {
		if want := fmt.Sprintf("%d %d", tc.line, tc.col); lines[i] != want {
			t.Errorf("%s: PyYAML reports line and column %s, the table %s", tc.name, lines[i], want)
		}
	}
}

func TestEmptyConfig(t *testing.T) {
	const want = "halb.yaml: config is empty: at least node.name is required"
	for _, src := range []string{
		"",
		"\n",
		" \n\t\n   ",
		"# only a comment\n",
		"# a comment\n\n   # another one\n",
		"---\n",
		"---\n# comment\n",
		"~\n",
		"null\n",
	} {
		cfg, err := Parse("halb.yaml", []byte(src))
		if cfg != nil || err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v, %v; want %q", src, cfg, err, want)
		}
		if es := AsErrors(err); len(es) != 1 || es[0].Line != 0 {
			t.Errorf("Parse(%q): errors %#v", src, es)
		}
	}
	// A node without name is not empty, but fails for the same reason.
	checkErrors(t, "node: {}\n", []string{"halb.yaml:1: node.name: is required"})
	checkErrors(t, "time: {}\n", []string{"halb.yaml: node.name: is required"})
}

func TestTopLevelNotMapping(t *testing.T) {
	const msg = "the top level must be a mapping (node:, vrrp:, services:, ...)"
	checkErrors(t, "- node: {name: lb1}\n", []string{"halb.yaml:1: " + msg})
	checkErrors(t, "# comment\n\nlb1\n", []string{"halb.yaml:3: " + msg})
	checkErrors(t, "[a, b]\n", []string{"halb.yaml:1: " + msg})
}

func TestMultipleDocuments(t *testing.T) {
	const msg = "only one YAML document is allowed (remove the second ---)"
	checkErrors(t, "node: {name: lb1}\n---\nnode: {name: lb2}\n", []string{"halb.yaml:2: " + msg})
	checkErrors(t, "---\nnode: {name: lb1}\n---\n", []string{"halb.yaml:3: " + msg})
	// An explicit start and end of the one document are fine.
	mustParse(t, "---\nnode: {name: lb1}\n...\n")
	mustParse(t, "# comment\n---\nnode: {name: lb1}\n")
}

// validPadded is a valid config padded with a comment to exactly size bytes.
func validPadded(t *testing.T, size int) []byte {
	t.Helper()
	head := []byte("node: {name: lb1}\n#")
	if size < len(head)+1 {
		t.Fatalf("size %d too small", size)
	}
	b := make([]byte, size)
	copy(b, head)
	for i := len(head); i < size-1; i++ {
		b[i] = 'x'
	}
	b[size-1] = '\n'
	return b
}

func TestTooLarge(t *testing.T) {
	if MaxSize != 4<<20 {
		t.Errorf("MaxSize = %d, want 4 MiB", MaxSize)
	}
	tooLarge := fmt.Sprintf("halb.yaml: config is larger than %d bytes", MaxSize)

	if _, err := Parse("halb.yaml", validPadded(t, MaxSize)); err != nil {
		t.Errorf("Parse of exactly MaxSize bytes: %v", err)
	}
	_, err := Parse("halb.yaml", validPadded(t, MaxSize+1))
	if err == nil || err.Error() != tooLarge || len(AsErrors(err)) != 1 {
		t.Errorf("Parse of MaxSize+1 bytes: %v, want %q", err, tooLarge)
	}
	// Over the limit, even garbage is refused for its size alone.
	big := bytes.Repeat([]byte("{[:"), MaxSize)
	if _, err := Parse("halb.yaml", big); err == nil || err.Error() != tooLarge {
		t.Errorf("Parse of 12 MiB of garbage: %v, want %q", err, tooLarge)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := os.WriteFile(path, validPadded(t, MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := Load(path); cfg != nil || err == nil || err.Error() != tooLarge {
		t.Errorf("Load of MaxSize+1 bytes: %v, want %q", err, tooLarge)
	}

	// Load reads no more than the limit: a 1 GiB (sparse) file is refused
	// after MaxSize+1 bytes.
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, data, err := Load(huge)
	if cfg != nil || err == nil || !strings.HasPrefix(err.Error(), "huge.yaml: config is larger than") {
		t.Errorf("Load of 1 GiB: %v", err)
	}
	if len(data) > MaxSize+1 {
		t.Errorf("Load of 1 GiB read %d bytes, more than MaxSize+1", len(data))
	}
}

// TestDeepNesting checks that a deeply nested document within the size limit
// is refused rather than overflowing a stack.
func TestDeepNesting(t *testing.T) {
	for _, key := range []string{"x", "vrrp", "node"} {
		src := "node: {name: lb1}\n" + key + ": " + strings.Repeat("[", 1<<20) + "\n"
		if _, err := Parse("halb.yaml", []byte(src)); len(AsErrors(err)) == 0 {
			t.Errorf("%s: nested 1M deep: err = %v, want Errors", key, err)
		}
	}
}

func TestAsErrors(t *testing.T) {
	_, err := Parse("halb.yaml", []byte("node: {name: lb_1}\nvrrp: [{}]\n"))
	es := AsErrors(err)
	if len(es) != 5 {
		t.Fatalf("AsErrors: %d errors: %v", len(es), err)
	}
	e := es[0]
	if e.File != "halb.yaml" || e.Line != 1 || e.Path != "node.name" || e.Msg != `"lb_1" is not a valid host name` {
		t.Errorf("first error = %#v", e)
	}
	for _, e := range es[1:] {
		if e.Line != 2 || !strings.HasPrefix(e.Path, "vrrp[0].") {
			t.Errorf("error %#v", e)
		}
	}
	wrapped := fmt.Errorf("reload: %w", err)
	if got := AsErrors(wrapped); len(got) != len(es) || got[0] != es[0] {
		t.Errorf("AsErrors(wrapped) = %v", got)
	}
	if !errors.As(wrapped, new(Errors)) {
		t.Errorf("errors.As(wrapped, *Errors) = false")
	}
	if got := AsErrors(errors.New("other")); got != nil {
		t.Errorf("AsErrors(other) = %v, want nil", got)
	}
	if got := AsErrors(nil); got != nil {
		t.Errorf("AsErrors(nil) = %v, want nil", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	src := doc(`
node: {name: lb1}
services:
  - {name: echo, listen: [":7000"], mode: tcp, default_backend: echo}
backends:
  - name: echo
    servers:
      - {name: e1, address: "127.0.0.1:7001"}
`)
	path := filepath.Join(dir, "lb.yaml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, data, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !bytes.Equal(data, src) {
		t.Errorf("Load returned other bytes than the file's")
	}
	if cfg.Node.Name != "lb1" || len(cfg.Services) != 1 || cfg.Backends[0].Servers[0].Address != "127.0.0.1:7001" {
		t.Errorf("Load = %+v", cfg)
	}

	// Errors name the file by its base name.
	if err := os.WriteFile(path, []byte("node: {name: lb1}\nvrrp: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, data, err = Load(path)
	if cfg != nil || err == nil || err.Error() != "lb.yaml:2: vrrp: want a list" {
		t.Errorf("Load of an invalid file = %v, %v", cfg, err)
	}
	if string(data) != "node: {name: lb1}\nvrrp: 1\n" {
		t.Errorf("Load of an invalid file returned data %q", data)
	}
}

func TestLoadMissing(t *testing.T) {
	cfg, _, err := Load(filepath.Join(t.TempDir(), "halb.yaml"))
	if cfg != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, %v; want fs.ErrNotExist", cfg, err)
	}
	if AsErrors(err) != nil {
		t.Errorf("a missing file is not a config error: %v", err)
	}
}

func TestLoadDirectory(t *testing.T) {
	cfg, _, err := Load(t.TempDir())
	if cfg != nil || err == nil || AsErrors(err) != nil {
		t.Errorf("Load of a directory = %v, %v; want a read error", cfg, err)
	}
}

// TestParseExamplesStable checks that parsing is deterministic and that a
// parsed example has its defaults filled.
func TestParseExamplesStable(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		a, data, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, err := Parse(filepath.Base(f), data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d := Diff(a, b); len(d) != 0 {
			t.Errorf("%s: two parses differ: %v", f, d)
		}
		for _, v := range a.VRRP {
			if v.Version == 0 || v.Priority == 0 || v.AdvertInterval == 0 || v.Preempt == nil {
				t.Errorf("%s: vrrp %q lacks defaults: %+v", f, v.Name, v)
			}
		}
		for _, be := range a.Backends {
			if be.Balance == "" || be.Health.Check == "" || be.Health.Interval == 0 {
				t.Errorf("%s: backend %q lacks defaults: %+v", f, be.Name, be)
			}
		}
	}
}

// TestDocumentedExample checks the example of docs/config.md, section Errors.
func TestDocumentedExample(t *testing.T) {
	checkErrors(t, `
node:                                   # 1
  name: lb1                             # 2
  managment: {interface: eth0}          # 3  misspelt key
peers:                                  # 4
  - {name: lb1, address: 172.16.0.2}    # 5
time: {max_offset: 5 seconds}           # 6
vrrp:                                   # 7
  - name: web-a                         # 8
    interface: eth1                     # 9
    priority: 255                       # 10
    advert_interval: 105ms              # 11
    vips: [192.168.10.100/24, "fd00::1/64"]  # 12
    track: {services: [mail]}           # 13
    vrid: 300                           # 14
services:                               # 15
  - {name: web, listen: ["192.168.10.100:80"], mode: tcp}  # 16
backends:                               # 17
  - name: www                           # 18
    health: {check: http, interval: 0s, rise: two}  # 19
    servers:                            # 20
      - {name: web1, address: "10.0.0.11", weight: 300}  # 21
`, []string{
		`halb.yaml:3: node.managment: unknown key "managment"; did you mean "management"? (known keys here: name, management, manage_system, peer_port)`,
		`halb.yaml:5: peers[0].name: "lb1" is this node's own name`,
		`halb.yaml:6: time.max_offset: "5 seconds" is not a duration (e.g. 200ms, 2s)`,
		`halb.yaml:10: vrrp[0].priority: 255 is reserved for the address owner (set address_owner: true), use 1..254`,
		`halb.yaml:11: vrrp[0].advert_interval: 105ms is not a multiple of 10ms`,
		`halb.yaml:12: vrrp[0].vips[1]: "fd00::1/64" is ipv6 but this instance's first VIP is ipv4; use one instance per family`,
		`halb.yaml:13: vrrp[0].track.services[0]: service "mail" is not defined`,
		`halb.yaml:14: vrrp[0].vrid: 300 is out of range 1..255`,
		`halb.yaml:16: services[0].default_backend: is required in tcp mode`,
		`halb.yaml:19: backends[0].health.rise: want a whole number, got "two"`,
		`halb.yaml:19: backends[0].health.interval: 0s must be positive`,
		`halb.yaml:21: backends[0].servers[0].address: "10.0.0.11" is not host:port (IPv6 as [addr]:port)`,
		`halb.yaml:21: backends[0].servers[0].weight: 300 is out of range 0..256`,
	})
}

// TestManyProblemsAreCapped: a file with millions of bad values is rejected
// with the first MaxErrors problems and a line saying there are more, not
// with millions of messages.
func TestManyProblemsAreCapped(t *testing.T) {
	data := "node: {name: lb1}\nvrrp: [" + strings.Repeat("1,", 200000) + "1]\n"
	_, err := Parse("halb.yaml", []byte(data))
	es := AsErrors(err)
	if len(es) != MaxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(es), MaxErrors+1)
	}
	if last := es[MaxErrors].Error(); !strings.Contains(last, "only the first 100 are shown") {
		t.Errorf("last error %q", last)
	}
	if es[0].Path != "vrrp[0]" || es[0].Line != 2 {
		t.Errorf("first error %q", es[0])
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"name", "name", 0},
		{"nmae", "name", 1}, {"adress", "address", 1}, {"maxconn", "maxcon", 1},
		{"heath", "health", 1}, {"servises", "services", 1}, {"ca", "abc", 3},
		{"kitten", "sitting", 3}, {"géne", "gène", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestSyntaxErrorFallback: without the parser's marks (a yaml version that
// moved them), the line of the message is used.
func TestSyntaxErrorFallback(t *testing.T) {
	e := syntaxError("halb.yaml", []byte("a\nb\nc\n"), nil, errors.New("yaml: line 3: did not find expected key"))
	if got, want := e.Error(), "halb.yaml:3: yaml: did not find expected key"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
