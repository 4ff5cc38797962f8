package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"halb/appliance/certs/certstest"
	"halb/appliance/config"
)

// refExamples are the shipped examples the reference must express.
var refExamples = []string{"lb1.yaml", "lb2.yaml", "dual-master.yaml", "minimal.yaml"}

func loadExample(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, _, err := config.Load(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return cfg
}

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, yaml)
	}
	return cfg
}

func renderBoth(t *testing.T, cfg *config.Config, p RefPaths) (keepalived, haproxy string) {
	t.Helper()
	k, err := KeepalivedConfig(cfg, p)
	if err != nil {
		t.Fatalf("KeepalivedConfig: %v", err)
	}
	h, err := HAProxyConfig(cfg, p)
	if err != nil {
		t.Fatalf("HAProxyConfig: %v", err)
	}
	return string(k), string(h)
}

// block returns the trimmed lines of the section that starts with the line
// header: up to the closing "}" of a keepalived block, or up to the next
// unindented line of haproxy.cfg.
func block(t *testing.T, conf, header string) []string {
	t.Helper()
	lines := strings.Split(conf, "\n")
	start := slices.Index(lines, header)
	if start < 0 {
		t.Fatalf("no line %q in:\n%s", header, conf)
	}
	var out []string
	depth := 0
	for _, l := range lines[start+1:] {
		if strings.HasSuffix(header, "{") {
			if l == "}" && depth == 0 {
				break
			}
			depth += strings.Count(l, "{") - strings.Count(l, "}")
		} else if l == "" || !strings.HasPrefix(l, " ") {
			break
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// wantLines checks that every line of want is in got, in this order.
func wantLines(t *testing.T, where string, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, w := range want {
		j := slices.Index(got[i:], w)
		if j < 0 {
			t.Errorf("%s: missing (or out of order) %q in:\n  %s", where, w, strings.Join(got, "\n  "))
			return
		}
		i += j + 1
	}
}

func noLine(t *testing.T, where string, got []string, prefix string) {
	t.Helper()
	for _, l := range got {
		if strings.HasPrefix(l, prefix) {
			t.Errorf("%s: unexpected line %q", where, l)
		}
	}
}

func TestKeepalivedConfigLB1(t *testing.T) {
	cfg := loadExample(t, "lb1.yaml")
	p := RefPaths{Dir: "/run/netlab/lb1"}
	k, _ := renderBoth(t, cfg, p)

	wantLines(t, "global_defs", block(t, k, "global_defs {"), "router_id lb1", "script_user root", "enable_script_security")
	inst := block(t, k, "vrrp_instance web-a {")
	wantLines(t, "web-a", inst,
		"state BACKUP",
		"interface eth1",
		"virtual_router_id 51",
		"version 3",
		"priority 150",
		"advert_int 0.1",
		"preempt_delay 2",
		"virtual_ipaddress {",
		"192.168.10.100/24 dev eth1",
		"}",
		"track_interface {",
		"eth2 weight -60",
		"}",
		"track_script {",
		"track_web weight -60",
		"}",
	)
	noLine(t, "web-a", inst, "nopreempt")
	noLine(t, "web-a", inst, "unicast_peer")
	// keepalived always tracks the instance's own interface and refuses a
	// track_interface entry for it.
	noLine(t, "web-a", inst, "eth1 weight")
	wantLines(t, "vrrp_script", block(t, k, "vrrp_script track_web {"),
		`script "/usr/bin/curl --silent --fail --output /dev/null --max-time 1 --unix-socket /run/netlab/lb1/track-web.sock http://localhost/halb-track"`,
		"interval 1", "timeout 2", "rise 1", "fall 1")

	// Without track.services there is no script and no script tracking.
	c2 := *cfg
	c2.VRRP = slices.Clone(cfg.VRRP)
	c2.VRRP[0].Track.Services = nil
	k2, h2 := renderBoth(t, &c2, p)
	if strings.Contains(k2, "vrrp_script") || strings.Contains(k2, "track_script") {
		t.Errorf("track_script without track.services:\n%s", k2)
	}
	if strings.Contains(h2, "frontend track:") {
		t.Errorf("track frontend without track.services:\n%s", h2)
	}
	wantLines(t, "web-a without services", block(t, k2, "vrrp_instance web-a {"), "track_interface {", "eth2 weight -60", "}")
}

func TestHAProxyConfigLB1(t *testing.T) {
	cfg := loadExample(t, "lb1.yaml")
	p := RefPaths{Dir: "/run/netlab/lb1"}
	_, h := renderBoth(t, cfg, p)

	wantLines(t, "global", block(t, h, "global"),
		"stats socket /run/netlab/lb1/haproxy.sock mode 600 level admin")
	defaults := block(t, h, "defaults")
	wantLines(t, "defaults", defaults,
		"timeout connect 5000ms", "timeout client 30000ms", "timeout server 30000ms",
		"timeout http-request 10000ms", "timeout http-keep-alive 2000ms",
		// As halb: a failed connect is retried on another server.
		"retries 3", "option redispatch 1")
	// HAProxy's defaults stand, as in halb: no other reuse or retry policy.
	noLine(t, "defaults", defaults, "http-reuse")
	noLine(t, "defaults", defaults, "retry-on")
	noLine(t, "defaults", defaults, "option abortonclose")

	web := block(t, h, "frontend web")
	wantLines(t, "frontend web", web,
		"mode http",
		"bind 192.168.10.100:80",
		"option forwardfor",
		"http-after-response set-header X-LB-Node lb1",
		"acl r0_host req.hdr(host),host_only -m str -i www.example.com",
		"acl r1_host req.hdr(host),host_only -m end -i .api.example.com",
		"acl r1_path path_beg /v1/",
		"use_backend www if r0_host",
		"use_backend api if r1_host r1_path",
		"default_backend www",
	)
	noLine(t, "frontend web", web, "acl r0_path") // path_prefix "/" matches all

	db := block(t, h, "frontend db")
	wantLines(t, "frontend db", db, "mode tcp", "bind 192.168.10.100:5432", "default_backend pg")
	noLine(t, "frontend db", db, "option forwardfor")
	noLine(t, "frontend db", db, "http-")

	wantLines(t, "track frontend", block(t, h, "frontend track:web"),
		"mode http",
		"bind unix@/run/netlab/lb1/track-web.sock mode 600",
		"monitor-uri /halb-track",
		"monitor fail if { nbsrv(www) lt 1 } { nbsrv(api) lt 1 }",
	)

	wantLines(t, "backend www", block(t, h, "backend www"),
		"mode http",
		"balance roundrobin",
		"cookie SRVID insert indirect nocache",
		"option httpchk GET /healthz",
		"http-check expect status 200",
		"timeout check 1000ms",
		// halb's default observe (layer4): HAProxy's, marking the server down at fall errors in a row.
		"server web1 10.0.0.11:80 weight 10 cookie web1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
		"server web2 10.0.0.12:80 weight 10 cookie web2 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
	)
	api := block(t, h, "backend api")
	wantLines(t, "backend api", api,
		"mode http",
		"balance leastconn",
		"timeout check 1000ms",
		"server api1 10.0.0.21:8080 weight 1 slowstart 30000ms check inter 2000ms fall 3 rise 2 observe layer7 error-limit 3 on-error mark-down",
	)
	noLine(t, "backend api", api, "option httpchk") // default check: tcp
	noLine(t, "backend api", api, "cookie")
	wantLines(t, "backend pg", block(t, h, "backend pg"),
		"mode tcp",
		"balance source",
		"hash-type consistent",
		"timeout check 1000ms",
		"server pg1 10.0.0.31:5432 weight 1 check inter 1000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
		"server pg2 10.0.0.32:5432 weight 0 check inter 1000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
	)
}

func TestReferenceDualMaster(t *testing.T) {
	cfg := loadExample(t, "dual-master.yaml")
	k, h := renderBoth(t, cfg, RefPaths{Dir: "/run/netlab/lb1"})

	wantLines(t, "site-a", block(t, k, "vrrp_instance site-a {"),
		"state BACKUP", "interface eth1", "virtual_router_id 61", "version 3", "priority 150", "advert_int 0.2",
		"192.168.10.101/24 dev eth1")
	wantLines(t, "site-b", block(t, k, "vrrp_instance site-b {"),
		"virtual_router_id 62", "priority 100", "192.168.10.102/24 dev eth1")
	a6 := block(t, k, "vrrp_instance site-a6 {")
	wantLines(t, "site-a6", a6, "virtual_router_id 61", "version 3", "priority 150", "fd00:10::101/64 dev eth1")
	noLine(t, "site-a6", a6, "track_")
	if strings.Contains(k, "vrrp_script") {
		t.Errorf("vrrp_script without track.services")
	}

	wantLines(t, "frontend web", block(t, h, "frontend web"),
		"mode http",
		"bind 192.168.10.101:80",
		"bind 192.168.10.102:80",
		"bind [fd00:10::101]:80",
		"http-after-response set-header X-LB-Node lb1",
		"default_backend www",
	)
	noLine(t, "frontend web", block(t, h, "frontend web"), "use_backend")
	wantLines(t, "backend www", block(t, h, "backend www"),
		"mode http",
		"balance random(2)",
		"stick-table type ipv6 size 100k expire 1800000ms",
		"stick on src",
		"option httpchk GET /healthz",
		"http-check expect status 200",
		"server web1 10.0.0.11:80 weight 1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
		"server web2 [fd00:20::12]:80 weight 1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
	)
}

// refRich exercises every translation rule the examples do not.
const refRich = `
node: {name: n1}
vrrp:
  - name: owner
    interface: eth1
    vrid: 1
    address_owner: true
    vips: [10.1.0.1/24]
  - name: v2
    interface: eth1
    vrid: 2
    version: 2
    priority: 90
    preempt: false
    unicast_peers: [10.1.0.3, 10.1.0.4]
    vips: [10.1.0.2/24]
    track: {interfaces: [eth2, eth3], services: [up, tcp], weight: 20}
  - name: v3
    interface: eth2
    vrid: 3
    advert_interval: 1500ms
    preempt_delay: 250ms
    vips: ["fd00:1::3/64"]
    track: {interfaces: [eth3]}
  - name: vm
    interface: eth3
    vrid: 4
    use_vmac: true
    vips: [10.1.3.4/24]
  - name: vm6
    interface: eth3
    vrid: 5
    use_vmac: true
    unicast_peers: ["fd00:3::9"]
    vips: ["fd00:3::5/64"]
services:
  - name: up
    listen: [":8080", "[::]:8081", "0.0.0.0:8082"]
    routes:
      - {backend: plain}
  - name: tcp
    listen: ["10.1.0.2:9000"]
    mode: tcp
    default_backend: raw
  - name: hosts
    listen: ["10.1.0.2:80"]
    routes:
      - {path_prefix: /static/, backend: hashed}
      - {host: "*.example.org", backend: plain}
backends:
  - name: plain
    health: {check: none}
    slowstart: 30s
    servers:
      - {name: s1, address: "10.2.0.1:80"}
  - name: hashed
    balance: uri
    health: {check: https, observe: layer7, path: "/ready?full=1", expect_status: "204,300-399", port: 8443, interval: 250ms, timeout: 100ms, rise: 1, fall: 5}
    servers:
      - {name: h1, address: "localhost:8080", weight: 256}
  - name: raw
    health: {check: icmp, observe: none}
    servers:
      - {name: r1, address: "10.2.0.3:22"}
`

func TestReferenceRules(t *testing.T) {
	cfg := parseConfig(t, refRich)
	k, h := renderBoth(t, cfg, RefPaths{Dir: "/run/netlab/n1"})

	owner := block(t, k, "vrrp_instance owner {")
	wantLines(t, "owner", owner, "state MASTER", "version 3", "priority 255", "advert_int 0.2")
	noLine(t, "owner", owner, "nopreempt")
	noLine(t, "owner", owner, "preempt_delay")

	// Versions mix per instance; preempt false; unicast; a positive halb
	// weight (added while failing) is keepalived's negative reverse weight.
	v2 := block(t, k, "vrrp_instance v2 {")
	wantLines(t, "v2", v2,
		"state BACKUP", "version 2", "priority 90", "advert_int 1", "nopreempt",
		"unicast_peer {", "10.1.0.3", "10.1.0.4", "}",
		"track_interface {", "eth2 weight -20 reverse", "eth3 weight -20 reverse", "}",
		"track_script {", "track_up weight -20 reverse", "track_tcp weight -20 reverse", "}")
	noLine(t, "v2", v2, "preempt_delay")

	// Weight 0: FAULT on failure, i.e. no weight.
	v3 := block(t, k, "vrrp_instance v3 {")
	wantLines(t, "v3", v3, "advert_int 1.5", "preempt_delay 0.25", "fd00:1::3/64 dev eth2", "track_interface {", "eth3", "}")
	noLine(t, "v3", v3, "nopreempt")

	// use_vmac: keepalived's, with halb's macvlan name; the VIPs go on it
	// (no dev); unicast adverts leave from the interface.
	vm := block(t, k, "vrrp_instance vm {")
	wantLines(t, "vm", vm, "use_vmac vrrp.4", "virtual_ipaddress {", "10.1.3.4/24", "}")
	noLine(t, "vm", vm, "vmac_xmit_base")
	vm6 := block(t, k, "vrrp_instance vm6 {")
	wantLines(t, "vm6", vm6, "use_vmac vrrp6.5", "vmac_xmit_base", "unicast_peer {", "fd00:3::9", "}", "virtual_ipaddress {", "fd00:3::5/64", "}")
	if !strings.Contains(k, "vrrp_script track_up {") || !strings.Contains(k, "vrrp_script track_tcp {") {
		t.Errorf("missing vrrp_script for up or tcp:\n%s", k)
	}
	if strings.Index(k, "vrrp_script track_up {") > strings.Index(k, "vrrp_script track_tcp {") {
		t.Errorf("vrrp_scripts not in service order")
	}

	wantLines(t, "frontend up", block(t, h, "frontend up"),
		"bind [::]:8080 v4v6", "bind [::]:8081 v4v6", "bind 0.0.0.0:8082", "use_backend plain if TRUE")
	wantLines(t, "frontend hosts", block(t, h, "frontend hosts"),
		"acl r0_path path_beg /static/",
		"acl r1_host req.hdr(host),host_only -m end -i .example.org",
		"use_backend hashed if r0_path",
		"use_backend plain if r1_host")
	noLine(t, "frontend hosts", block(t, h, "frontend hosts"), "default_backend")
	wantLines(t, "track up", block(t, h, "frontend track:up"), "monitor fail if { nbsrv(plain) lt 1 }")
	wantLines(t, "track tcp", block(t, h, "frontend track:tcp"), "monitor fail if { nbsrv(raw) lt 1 }")

	plain := block(t, h, "backend plain")
	wantLines(t, "backend plain", plain, "mode http", "balance roundrobin", "server s1 10.2.0.1:80 weight 1 slowstart 30000ms")
	noLine(t, "backend plain", plain, "timeout check")
	noLine(t, "backend plain", plain, "option httpchk")
	wantLines(t, "backend hashed", block(t, h, "backend hashed"),
		"mode http",
		"balance uri",
		"hash-type consistent",
		"option httpchk GET /ready?full=1",
		"http-check expect status 204,300-399",
		"timeout check 100ms",
		"server h1 localhost:8080 weight 256 check inter 250ms fall 5 rise 1 port 8443 check-ssl verify none observe layer7 error-limit 5 on-error mark-down")
	wantLines(t, "backend raw", block(t, h, "backend raw"),
		"mode tcp",
		"# health.check icmp: HAProxy has no ICMP check; a TCP connect check to the server's port stands in.",
		"server r1 10.2.0.3:22 weight 1 check inter 2000ms fall 3 rise 2")
}

// refBackups has issue 19's keys: backup and disabled servers,
// all_backups, exact paths and .domain hosts.
const refBackups = `
node: {name: n1}
services:
  - name: web
    listen: ["10.1.0.2:80"]
    routes:
      - {host: www.example.com, path: /login, backend: first}
      - {host: ".example.com", path_prefix: /api/, path: /api/health, backend: all}
      - {host: ".example.org", backend: all}
    default_backend: first
backends:
  - name: first
    health: {check: tcp}
    servers:
      - {name: a1, address: "10.2.0.1:80"}
      - {name: b1, address: "10.2.0.3:80", backup: true}
      - {name: b2, address: "10.2.0.4:80", backup: true}
      - {name: off, address: "10.2.0.5:80", disabled: true}
  - name: all
    all_backups: true
    health: {check: none}
    servers:
      - {name: a1, address: "10.2.0.1:80"}
      - {name: b1, address: "10.2.0.3:80", backup: true}
`

func TestReferenceBackups(t *testing.T) {
	_, h := renderBoth(t, parseConfig(t, refBackups), RefPaths{Dir: "/run/netlab/n1"})
	wantLines(t, "frontend web", block(t, h, "frontend web"),
		"acl r0_host req.hdr(host),host_only -m str -i www.example.com",
		"acl r0_exact path /login",
		"acl r1_host req.hdr(host),host_only -m str -i example.com",
		"acl r1_host req.hdr(host),host_only -m end -i .example.com",
		"acl r1_path path_beg /api/",
		"acl r1_exact path /api/health",
		"acl r2_host req.hdr(host),host_only -m str -i example.org",
		"acl r2_host req.hdr(host),host_only -m end -i .example.org",
		"use_backend first if r0_host r0_exact",
		"use_backend all if r1_host r1_path r1_exact",
		"use_backend all if r2_host",
		"default_backend first")
	first := block(t, h, "backend first")
	wantLines(t, "backend first", first,
		"server a1 10.2.0.1:80 weight 1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down",
		"server b1 10.2.0.3:80 weight 1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down backup",
		"server b2 10.2.0.4:80 weight 1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down backup",
		"server off 10.2.0.5:80 weight 1 check inter 2000ms fall 3 rise 2 observe layer4 error-limit 3 on-error mark-down disabled")
	noLine(t, "backend first", first, "option allbackups")
	wantLines(t, "backend all", block(t, h, "backend all"), "option allbackups", "server b1 10.2.0.3:80 weight 1 backup")
}

// TestReferenceObserve: the bench's classic config with the access log
// sent to UDP syslog and observe.listen on becomes what an HAProxy user
// writes for the same: global log lines sending RFC 5424 (what halb sends)
// with the node's name and tag, httplog (with the Host halb's line carries)
// and tcplog on the services, and the Prometheus exporter and stats page
// on a frontend that refuses the VIP, as halb's listener does.
func TestReferenceObserve(t *testing.T) {
	o := ClassicOptions{SingleServer: true, ObserveListen: ":8404", AccessLogTo: "192.168.10.10:5514"}
	_, h := renderBoth(t, parseConfig(t, string(ClassicConfig(o, 1))), RefPaths{Dir: "/run/netlab/lb2"})
	wantLines(t, "global", block(t, h, "global"),
		"log-send-hostname lb2", "log-tag halb", "log 192.168.10.10:5514 len 2048 format rfc5424 local0")
	wantLines(t, "frontend web", block(t, h, "frontend web"),
		"log global", "option httplog", "capture request header Host len 64", "option dontlognull")
	tcp := block(t, h, "frontend web-tcp")
	wantLines(t, "frontend web-tcp", tcp, "log global", "option tcplog", "option dontlognull")
	noLine(t, "frontend web-tcp", tcp, "capture")
	wantLines(t, "observe", block(t, h, "frontend observe:listen"),
		"mode http", "bind [::]:8404 v4v6",
		"tcp-request connection reject if { dst 192.168.10.100 }",
		"http-request use-service prometheus-exporter if { path /metrics }",
		"stats uri /stats")

	// Without them: no log line, no listener (the bench's other rows).
	_, plain := renderBoth(t, parseConfig(t, string(ClassicConfig(ClassicOptions{SingleServer: true}, 0))), RefPaths{Dir: "/run/netlab/lb1"})
	for _, l := range []string{"log", "option httplog", "observe:listen"} {
		if strings.Contains(plain, l) {
			t.Errorf("config without observe has %q:\n%s", l, plain)
		}
	}
	// A target of the daemon stream alone, and a service without
	// access_log, log nothing; facilities keep their codes.
	_, h = renderBoth(t, parseConfig(t, `
node: {name: n1}
services:
  - {name: a, listen: ["10.0.0.1:80"], default_backend: b, access_log: true}
  - {name: q, listen: ["10.0.0.1:81"], default_backend: b}
backends:
  - {name: b, servers: [{name: s, address: "10.0.0.9:80"}]}
observe:
  logs:
    - {to: syslog, address: "10.0.0.1:514", streams: [daemon]}
    - {to: syslog, address: "[fd00::1]:514", facility: authpriv, tag: lb, streams: [access, daemon]}
`), RefPaths{Dir: "/run/netlab/n1"})
	g := block(t, h, "global")
	wantLines(t, "global", g, "log-send-hostname n1", "log-tag lb", "log [fd00::1]:514 len 2048 format rfc5424 auth2")
	noLine(t, "global", g, "log 10.0.0.1")
	wantLines(t, "frontend a", block(t, h, "frontend a"), "log global", "option httplog")
	noLine(t, "frontend q", block(t, h, "frontend q"), "log")
	if len(refFacilities) != len(config.SyslogFacilities) {
		t.Errorf("%d HAProxy facilities for %d syslog ones", len(refFacilities), len(config.SyslogFacilities))
	}
}

func TestReferenceDeterministic(t *testing.T) {
	for _, name := range refExamples {
		cfg := loadExample(t, name)
		p := RefPaths{Dir: "/run/netlab/x"}
		k1, h1 := renderBoth(t, cfg, p)
		for range 5 {
			k2, h2 := renderBoth(t, loadExample(t, name), p)
			if k1 != k2 || h1 != h2 {
				t.Fatalf("%s: two renderings differ", name)
			}
		}
	}
}

func TestReferenceErrors(t *testing.T) {
	p := RefPaths{Dir: "/run/netlab/n1"}
	cases := []struct {
		name, yaml string
		render     func(*config.Config, RefPaths) ([]byte, error)
		want       []string
	}{
		{
			name: "weight beyond keepalived",
			yaml: `
node: {name: n1}
vrrp:
  - {name: big, interface: eth1, vrid: 1, vips: [10.0.0.1/24], track: {interfaces: [eth2], weight: -254}}
  - {name: fine, interface: eth1, vrid: 2, vips: [10.0.0.2/24], track: {interfaces: [eth2], weight: 254}}
`,
			render: KeepalivedConfig,
			want:   []string{`vrrp "big": track.weight -254 is outside keepalived's -253..253`, `vrrp "fine": track.weight 254`},
		},
		{
			name: "owner without preempt",
			yaml: `
node: {name: n1}
vrrp:
  - {name: own, interface: eth1, vrid: 1, address_owner: true, preempt: false, vips: [10.0.0.1/24]}
`,
			render: KeepalivedConfig,
			want:   []string{`vrrp "own": an address owner always preempts`},
		},
		{
			name: "backend in two modes",
			yaml: `
node: {name: n1}
services:
  - {name: h, listen: ["10.0.0.1:80"], default_backend: b}
  - {name: t, listen: ["10.0.0.1:81"], mode: tcp, default_backend: b}
backends:
  - {name: b, servers: [{name: s, address: "10.0.0.9:80"}]}
`,
			render: HAProxyConfig,
			want:   []string{`backend "b": used by http service "h" and tcp service "t"`},
		},
		{
			name: "cookie and uri in tcp",
			yaml: `
node: {name: n1}
services:
  - {name: t, listen: ["10.0.0.1:81"], mode: tcp, default_backend: b}
backends:
  - {name: b, balance: uri, sticky: {cookie: C}, servers: [{name: s, address: "10.0.0.9:80"}]}
`,
			render: HAProxyConfig,
			want:   []string{`backend "b": balance uri needs an http service, but tcp service "t" uses it`, `backend "b": sticky.cookie needs an http service`},
		},
		{
			name: "unwritable interface",
			yaml: `
node: {name: n1}
vrrp:
  - {name: odd, interface: "e!1", vrid: 1, vips: [10.0.0.1/24], track: {interfaces: ["e{2"]}}
`,
			render: KeepalivedConfig,
			want:   []string{`vrrp "odd": interface "e!1" cannot be written`, `vrrp "odd": track.interfaces: "e{2" cannot be written`},
		},
		{
			name: "unwritable paths",
			yaml: `
node: {name: n1}
services:
  - {name: h, listen: ["10.0.0.1:80"], routes: [{path_prefix: "/a#b", backend: b}]}
backends:
  - {name: b, health: {check: http, path: "/x y"}, servers: [{name: s, address: "10.0.0.9:80"}]}
`,
			render: HAProxyConfig,
			want:   []string{`service "h": routes[0].path_prefix "/a#b" cannot be written`, `backend "b": health.path "/x y" cannot be written`},
		},
		{
			name: "log targets HAProxy cannot take",
			yaml: `
node: {name: n1}
observe:
  listen: "127.0.0.1:8404"
  users: [{name: u, password_hash: "$2b$10$abcdefghijklmnopqrstuuKQ8E0bKqwnKNh7vW7vJWvOe8Ui6jGfe"}]
  logs:
    - {name: f, to: file, path: /var/log/a.log}
    - {name: t, to: syslog, address: "10.0.0.1:514", transport: tcp}
    - {name: j, to: journald}
    - {name: byname, to: syslog, address: "logs.example.com:514"}
    - {name: u1, to: syslog, address: "10.0.0.1:514", tag: one}
    - {name: u2, to: syslog, address: "10.0.0.2:514", tag: two}
    - {name: d, to: file, path: /var/log/d.log, streams: [daemon]}
`,
			render: HAProxyConfig,
			want: []string{`observe.logs[0] (f): to file has no HAProxy translation`, `observe.logs[1] (t): transport tcp has no HAProxy translation`, `observe.logs[2] (j): to journald has`,
				`observe.logs[3] (byname): address "logs.example.com:514"`, `observe.logs[5] (u2): tag "two" differs from another target's "one"`,
				`observe.users and observe.allow have no HAProxy translation`},
		},
		{
			name: "sub-millisecond durations",
			yaml: `
node: {name: n1}
backends:
  - {name: b, health: {interval: 1500us, timeout: 10ns}, servers: [{name: s, address: "10.0.0.9:80"}]}
`,
			render: HAProxyConfig,
			want:   []string{`backend "b": health.interval 1.5ms is not a whole number of milliseconds`, `backend "b": health.timeout 10ns`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := c.render(parseConfig(t, c.yaml), p)
			if err == nil {
				t.Fatalf("no error; rendered:\n%s", out)
			}
			if out != nil {
				t.Errorf("output with an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}

	cfg := loadExample(t, "lb1.yaml")
	for _, dir := range []string{"relative/dir", "/tmp/with space", "/tmp/quote\"d"} {
		for name, render := range map[string]func(*config.Config, RefPaths) ([]byte, error){"keepalived": KeepalivedConfig, "haproxy": HAProxyConfig} {
			if _, err := render(cfg, RefPaths{Dir: dir}); err == nil || !strings.Contains(err.Error(), "directory") {
				t.Errorf("%s with Dir %q: err = %v, want a directory error", name, dir, err)
			}
		}
	}
	long := RefPaths{Dir: "/" + strings.Repeat("d", 100)}
	if _, err := HAProxyConfig(cfg, long); err == nil || !strings.Contains(err.Error(), "longer than 107 bytes") {
		t.Errorf("HAProxyConfig with a long Dir: err = %v", err)
	}
}

// TestReferenceMixedVersions: keepalived 2.2 sets the VRRP version per
// instance ("version"; the global vrrp_version is only its default), so a
// config mixing versions needs no error.
func TestReferenceMixedVersions(t *testing.T) {
	cfg := parseConfig(t, `
node: {name: n1}
vrrp:
  - {name: old, interface: eth1, vrid: 1, version: 2, vips: [10.0.0.1/24]}
  - {name: new, interface: eth1, vrid: 2, version: 3, advert_interval: 50ms, vips: [10.0.0.2/24]}
`)
	k, _ := renderBoth(t, cfg, RefPaths{Dir: "/run/netlab/n1"})
	wantLines(t, "old", block(t, k, "vrrp_instance old {"), "version 2", "advert_int 1")
	wantLines(t, "new", block(t, k, "vrrp_instance new {"), "version 3", "advert_int 0.05")
	if strings.Contains(k, "vrrp_version") {
		t.Errorf("global vrrp_version rendered:\n%s", k)
	}
}

func TestReferenceArgs(t *testing.T) {
	p := RefPaths{Dir: "/run/netlab/n1"}
	for _, f := range []string{p.KeepalivedConf(), p.HAProxyCfg(), p.KeepalivedPID(), p.VRRPPID(), p.CheckersPID(), p.HAProxyPID(), p.HAProxySocket(), p.TrackSocket("web")} {
		if filepath.Dir(f) != p.Dir {
			t.Errorf("%s is not in %s", f, p.Dir)
		}
	}
	if got, want := strings.Join(KeepalivedArgs(p), " "), "--dont-fork --log-console --log-detail --no-syslog --vrrp --use-file /run/netlab/n1/keepalived.conf --pid /run/netlab/n1/keepalived.pid --vrrp_pid /run/netlab/n1/keepalived-vrrp.pid --checkers_pid /run/netlab/n1/keepalived-checkers.pid"; got != want {
		t.Errorf("KeepalivedArgs = %s\nwant %s", got, want)
	}
	if got, want := strings.Join(HAProxyArgs(p), " "), "-W -db -f /run/netlab/n1/haproxy.cfg -p /run/netlab/n1/haproxy.pid"; got != want {
		t.Errorf("HAProxyArgs = %s\nwant %s", got, want)
	}
}

// lookTools returns the paths of the named programs, skipping t when one is
// missing.
func lookTools(t *testing.T, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Skipf("%s is not installed (apt-get install keepalived haproxy curl util-linux iproute2): %v", n, err)
		}
		paths[n] = p
	}
	return paths
}

func writeRef(t *testing.T, cfg *config.Config) RefPaths {
	t.Helper()
	p := RefPaths{Dir: t.TempDir()}
	k, h := renderBoth(t, cfg, p)
	if err := os.WriteFile(p.KeepalivedConf(), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.HAProxyCfg(), []byte(h), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, m := range HAProxyMaps(cfg, p) {
		if err := os.WriteFile(path, m, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func refTestConfigs(t *testing.T) map[string]*config.Config {
	cfgs := map[string]*config.Config{"rich": parseConfig(t, refRich),
		"bench-observe":       parseConfig(t, string(ClassicConfig(ClassicOptions{SingleServer: true, ObserveListen: ":8404", AccessLogTo: "192.168.10.10:5514"}, 0))),
		"bench-scale":         parseConfig(t, string(ClassicConfig(ClassicOptions{SingleServer: true, Servers: 50, Routes: 40, NoChecks: true}, 0))),
		"host-map-no-default": parseConfig(t, refHostMapNoDefault),
		"backups":             parseConfig(t, refBackups),
		"classic-backups":     parseConfig(t, string(ClassicConfig(ClassicOptions{Backups: true}, 0))),
		"tls":                 parseConfig(t, refTLSConfig(t)),
		"bench-tls":           parseConfig(t, string(ClassicConfig(ClassicOptions{SingleServer: true, TLSDir: benchCertsDir(t)}, 0)))}
	for _, name := range refExamples {
		cfgs[name] = loadExample(t, name)
	}
	return cfgs
}

// TestHAProxyAcceptsReference: haproxy -c, with warnings fatal (-dW),
// accepts what we render. It binds nothing, so it needs no root.
func TestHAProxyAcceptsReference(t *testing.T) {
	tools := lookTools(t, "haproxy")
	for name, cfg := range refTestConfigs(t) {
		t.Run(name, func(t *testing.T) {
			p := writeRef(t, cfg)
			out, err := exec.Command(tools["haproxy"], "-c", "-dW", "-f", p.HAProxyCfg()).CombinedOutput()
			if err != nil || bytes.Contains(out, []byte("[WARNING]")) || bytes.Contains(out, []byte("[ALERT]")) {
				cfgText, _ := os.ReadFile(p.HAProxyCfg())
				t.Errorf("haproxy -c: %v\n%s\nconfig:\n%s", err, out, cfgText)
			}
		})
	}
}

// refInterfaces lists every interface a config names for keepalived.
func refInterfaces(cfg *config.Config) []string {
	var ifs []string
	for _, v := range cfg.VRRP {
		for _, i := range append([]string{v.Interface}, v.Track.Interfaces...) {
			if !slices.Contains(ifs, i) {
				ifs = append(ifs, i)
			}
		}
	}
	return ifs
}

// inNetns runs a shell script as root in a fresh network namespace
// (unshare --net) that has lo up and a veth pair for each interface name.
func inNetns(t *testing.T, ifaces []string, script string) (string, error) {
	t.Helper()
	var pre strings.Builder
	pre.WriteString("set -u\nip link set lo up\n")
	for i, n := range ifaces {
		fmt.Fprintf(&pre, "ip link add %s type veth peer name peer%d && ip link set %s up && ip link set peer%d up\n", n, i, n, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "unshare", "--net", "sh", "-c", pre.String()+script).CombinedOutput()
	return string(out), err
}

// TestKeepalivedAcceptsReference: keepalived's config test (-t) accepts
// what we render without a single warning. keepalived checks that the
// interfaces exist, so it runs in a namespace that has them.
func TestKeepalivedAcceptsReference(t *testing.T) {
	SkipUnlessRoot(t)
	tools := lookTools(t, "keepalived", "unshare", "ip")
	for name, cfg := range refTestConfigs(t) {
		t.Run(name, func(t *testing.T) {
			p := writeRef(t, cfg)
			out, err := inNetns(t, refInterfaces(cfg), fmt.Sprintf("%s --config-test --use-file %s", tools["keepalived"], p.KeepalivedConf()))
			// keepalived -t exits non-zero on warnings too; say what it said.
			if err != nil || strings.TrimSpace(out) != "" {
				cfgText, _ := os.ReadFile(p.KeepalivedConf())
				t.Errorf("keepalived -t: %v\n%s\nconfig:\n%s", err, out, cfgText)
			}
		})
	}
}

// TestReferenceDaemonsRun starts keepalived and HAProxy with KeepalivedArgs
// and HAProxyArgs in a namespace: both write their pid files, the single
// node becomes MASTER and holds the VIP, and the track.services scripts
// exactly as keepalived runs them pass for a service with a usable server
// and fail for one whose only server is down.
func TestReferenceDaemonsRun(t *testing.T) {
	SkipUnlessRoot(t)
	tools := lookTools(t, "keepalived", "haproxy", "curl", "unshare", "ip")
	cfg := parseConfig(t, `
node: {name: solo}
vrrp:
  - name: vi
    interface: eth1
    vrid: 7
    advert_interval: 50ms
    vips: [10.9.0.100/24]
    track: {services: [up, down], weight: -10}
services:
  - {name: up, listen: ["10.9.0.100:8080"], default_backend: ok}
  - {name: down, listen: ["10.9.0.100:8081"], mode: tcp, default_backend: dead}
backends:
  - name: ok
    health: {check: none}
    servers: [{name: s1, address: "127.0.0.1:9"}]
  - name: dead
    health: {check: tcp, interval: 100ms, timeout: 100ms, rise: 1, fall: 1}
    servers: [{name: s1, address: "127.0.0.1:9"}]
`)
	p := writeRef(t, cfg)
	k, _ := os.ReadFile(p.KeepalivedConf())
	script := regexp.MustCompile(`vrrp_script (track_\w+) \{\n\s*script "([^"]*)"`).FindAllSubmatch(k, -1)
	if len(script) != 2 {
		t.Fatalf("want 2 vrrp_scripts, found %d in:\n%s", len(script), k)
	}
	q := func(args []string) string { return strings.Join(args, " ") }
	var sh strings.Builder
	fmt.Fprintf(&sh, `
ip addr add 10.9.0.1/24 dev eth1
sysctl -qw net.ipv4.ip_nonlocal_bind=1
%s %s >%s/haproxy.log 2>&1 &
HP=$!
%s %s >%s/keepalived.log 2>&1 &
KP=$!
wait_for() { i=0; while ! eval "$1"; do i=$((i+1)); if [ $i -ge 300 ]; then echo "TIMEOUT $1"; return 1; fi; sleep 0.1; done; }
wait_for '[ -s %s ] && [ -s %s ] && [ -s %s ]'
wait_for 'ip -o addr show dev eth1 | grep -q 10.9.0.100/24' && echo VIP held
`, tools["haproxy"], q(HAProxyArgs(p)), p.Dir, tools["keepalived"], q(KeepalivedArgs(p)), p.Dir,
		p.HAProxyPID(), p.KeepalivedPID(), p.VRRPPID())
	// track_down fails once HAProxy's first check of its server fails.
	want := map[string]int{"track_up": 0, "track_down": 22} // curl --fail: 22 on 503
	for _, m := range script {
		fmt.Fprintf(&sh, "wait_for '%s; [ $? -eq %d ]'\n%s; echo SCRIPT %s $?\n", m[2], want[string(m[1])], m[2], m[1])
	}
	fmt.Fprintf(&sh, `[ "$(cat %s)" = "$HP" ] && echo HAPROXY_PID_OK
[ "$(cat %s)" = "$KP" ] && echo KEEPALIVED_PID_OK
kill -TERM $HP $KP
wait
`, p.HAProxyPID(), p.KeepalivedPID())

	out, err := inNetns(t, []string{"eth1"}, sh.String())
	logs := func() string {
		h, _ := os.ReadFile(filepath.Join(p.Dir, "haproxy.log"))
		kl, _ := os.ReadFile(filepath.Join(p.Dir, "keepalived.log"))
		return fmt.Sprintf("script output:\n%s\nhaproxy.log:\n%s\nkeepalived.log:\n%s", out, h, kl)
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run: %v\n%s", err, logs())
		}
	}
	for _, want := range []string{"VIP held", "SCRIPT track_up 0", "SCRIPT track_down 22", "HAPROXY_PID_OK", "KEEPALIVED_PID_OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the run", want)
		}
	}
	if strings.Contains(out, "TIMEOUT") || t.Failed() {
		t.Fatalf("%s", logs())
	}
	kl, _ := os.ReadFile(filepath.Join(p.Dir, "keepalived.log"))
	for _, bad := range []string{"WARNING", "SECURITY VIOLATION", "Disabling track script"} {
		if bytes.Contains(kl, []byte(bad)) {
			t.Errorf("keepalived logged %q:\n%s", bad, kl)
		}
	}
	if !bytes.Contains(kl, []byte("(vi) Entering MASTER STATE")) {
		t.Errorf("keepalived never became MASTER:\n%s", kl)
	}
}

// refHostMapNoDefault: a service of 16 host routes (a map file) and no
// default backend.
var refHostMapNoDefault = func() string {
	var b strings.Builder
	b.WriteString("node: {name: n1}\nservices:\n  - name: a\n    listen: [\"10.0.0.1:80\"]\n    routes:\n")
	for i := range refHostMapMin {
		fmt.Fprintf(&b, "      - {host: H%d.example, backend: b}\n", i)
	}
	b.WriteString("backends:\n  - {name: b, servers: [{name: s, address: \"10.0.0.9:80\"}]}\n")
	return b.String()
}()

// TestReferenceHostMap: the bench's scaling configs become what an HAProxy
// user writes: many exact host routes are one map lookup (hosts lowercased,
// the first route of a host winning, the default backend as the map's
// default), not an ACL a host; N servers at one address; no checks with
// check: none. Fewer routes, or a wildcard or path among them, stay ACLs.
func TestReferenceHostMap(t *testing.T) {
	o := ClassicOptions{SingleServer: true, Servers: 3, Routes: 20, NoChecks: true}
	p := RefPaths{Dir: "/run/netlab/lb1"}
	cfg := parseConfig(t, string(ClassicConfig(o, 0)))
	_, h := renderBoth(t, cfg, p)
	fe := block(t, h, "frontend web")
	wantLines(t, "frontend web", fe, "use_backend %[req.hdr(host),host_only,lower,map(/run/netlab/lb1/hosts-web.map,web)]", "default_backend web")
	noLine(t, "frontend web", fe, "acl")
	wantLines(t, "backend web", block(t, h, "backend web"), "server s1 10.0.0.11:80 weight 1", "server s3 10.0.0.11:80 weight 1")
	noLine(t, "backend web", block(t, h, "backend web"), "check")
	files := HAProxyMaps(cfg, p)
	m := string(files["/run/netlab/lb1/hosts-web.map"])
	if len(files) != 1 || !strings.Contains(m, "\nr0.bench rb0\n") || !strings.Contains(m, "\nr19.bench rb9\n") || strings.Count(m, "\n") != 21 {
		t.Errorf("maps %v, want hosts-web.map with 20 routes:\n%s", slices.Collect(maps.Keys(files)), m)
	}

	cfg = parseConfig(t, refHostMapNoDefault)
	cfg.Services[0].Routes = append(cfg.Services[0].Routes, cfg.Services[0].Routes[0])
	cfg.Services[0].Routes[len(cfg.Services[0].Routes)-1].Backend = "other"
	_, h = renderBoth(t, parseConfig(t, refHostMapNoDefault), p)
	key := "req.hdr(host),host_only,lower,map(/run/netlab/lb1/hosts-a.map)"
	wantLines(t, "frontend a", block(t, h, "frontend a"), "use_backend %["+key+"] if { "+key+" -m found }")
	if m := string(HAProxyMaps(cfg, p)["/run/netlab/lb1/hosts-a.map"]); !strings.Contains(m, "\nh0.example b\n") || strings.Contains(m, "other") {
		t.Errorf("map with a host twice (the first wins, lowercased):\n%s", m)
	}

	for name, edit := range map[string]func(*config.Service){
		"few":      func(s *config.Service) { s.Routes = s.Routes[:refHostMapMin-1] },
		"wildcard": func(s *config.Service) { s.Routes[3].Host = "*.example" },
		"path":     func(s *config.Service) { s.Routes[5].PathPrefix = "/api" },
	} {
		cfg := parseConfig(t, refHostMapNoDefault)
		edit(&cfg.Services[0])
		_, h := renderBoth(t, cfg, p)
		if fe := strings.Join(block(t, h, "frontend a"), "\n"); strings.Contains(fe, "map(") || !strings.Contains(fe, "acl r0_host") {
			t.Errorf("%s: routes became a map:\n%s", name, fe)
		}
		if len(HAProxyMaps(cfg, p)) != 0 {
			t.Errorf("%s: a map file", name)
		}
	}
}

// refTLSConfig is a config with TLS services (http and tcp) whose
// certificates it writes to a temporary directory.
func refTLSConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := certstest.Root(t, "ref root")
	write := func(name string, o certstest.Options) (string, string) {
		p := root.Leaf(t, o)
		crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		os.WriteFile(crt, certstest.Cat(p.CertPEM, root.PEM), 0o644)
		os.WriteFile(key, p.KeyPEM, 0o600)
		return crt, key
	}
	wc, wk := write("www", certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	rc, rk := write("www-rsa", certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}, Key: "rsa"})
	dc, dk := write("db", certstest.Options{CN: "db.example.com", DNS: []string{"db.example.com"}})
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, root.PEM, 0o644)
	return fmt.Sprintf(`
node: {name: lb1}
services:
  - name: web
    listen: ["192.168.10.100:443"]
    default_backend: b
    tls:
      certificates:
        - {name: www, cert: %s, key: %s}
        - {name: www-rsa, cert: %s, key: %s}
      default: www-rsa
  - name: db
    mode: tcp
    listen: ["192.168.10.100:5433"]
    default_backend: t
    tls: {certificates: [{name: db, cert: %s, key: %s}], policy: modern}
    sni_routes: [{sni: db.example.com, backend: t}]
  - name: pass
    mode: tcp
    listen: ["192.168.10.100:8443"]
    default_backend: t
    sni_routes:
      - {sni: www.example.com, backend: b2}
      - {sni: "*.example.org", backend: t}
backends:
  - name: b
    health: {check: none}
    servers: [{name: s1, address: "10.0.0.11:80"}]
  - name: t
    health: {check: none}
    servers: [{name: s1, address: "10.0.0.11:5432"}]
  - name: b2
    health: {check: none}
    servers: [{name: s1, address: "10.0.0.12:443"}]
  - name: up
    tls: {ca: %s, server_name: origin.test}
    health: {check: http}
    servers: [{name: s1, address: "10.0.0.12:8443"}]
  - name: loose
    tls: {verify: none}
    health: {check: none}
    servers: [{name: s1, address: "10.0.0.12:8444"}]
`, wc, wk, rc, rk, dc, dk, caFile)
}

// TestReferenceTLS: a TLS service becomes a bind with ssl and its crt
// files (the default first), Mozilla's intermediate ciphers without DHE,
// the version floor and ALPN; X-Forwarded-Proto says https.
func TestReferenceTLS(t *testing.T) {
	cfg := parseConfig(t, refTLSConfig(t))
	p := RefPaths{Dir: "/run/netlab/lb1"}
	_, h := renderBoth(t, cfg, p)
	wantLines(t, "frontend web", block(t, h, "frontend web"),
		"bind 192.168.10.100:443 ssl crt /run/netlab/lb1/crt-web-www-rsa.pem crt /run/netlab/lb1/crt-web-www.pem ssl-min-ver TLSv1.2 ciphers "+
			refMozillaIntermediate+" ciphersuites "+refTLS13Suites+" curves X25519:P-256:P-384 alpn http/1.1",
		"http-request set-header X-Forwarded-Proto https", `http-request add-header Forwarded "for=%[src];proto=https"`)
	wantLines(t, "frontend db", block(t, h, "frontend db"),
		"bind 192.168.10.100:5433 ssl crt /run/netlab/lb1/crt-db-db.pem ssl-min-ver TLSv1.3 ciphers "+refMozillaIntermediate+" ciphersuites "+refTLS13Suites+" curves X25519:P-256:P-384")
	wantLines(t, "frontend db", block(t, h, "frontend db"), "use_backend t if { ssl_fc_sni -i db.example.com }", "default_backend t")
	wantLines(t, "frontend pass", block(t, h, "frontend pass"), "tcp-request inspect-delay 10000ms",
		"tcp-request content reject if !{ req.ssl_hello_type 1 }", "use_backend b2 if { req.ssl_sni -i www.example.com }",
		`use_backend t if { req.ssl_sni -m reg -i ^[^.]+\.example\.org$ }`, "default_backend t")
	up := strings.Join(block(t, h, "backend up"), "\n")
	if !strings.Contains(up, "server s1 10.0.0.12:8443 weight 1 ssl verify required ca-file "+cfg.Backends[3].TLS.CA+" sni str(origin.test) verifyhost origin.test check") {
		t.Errorf("backend up:\n%s", up)
	}
	wantLines(t, "backend loose", block(t, h, "backend loose"), "server s1 10.0.0.12:8444 weight 1 ssl verify none")
	files := HAProxyMaps(cfg, p)
	pemFile := string(files["/run/netlab/lb1/crt-web-www.pem"])
	if len(files) != 3 || strings.Count(pemFile, "BEGIN CERTIFICATE") != 2 || !strings.Contains(pemFile, "PRIVATE KEY") {
		t.Errorf("crt files %v; www:\n%s", slices.Collect(maps.Keys(files)), pemFile)
	}
	cfg.Services[0].TLS.Certificates[0].Cert, cfg.Services[0].TLS.Certificates[0].Key = "", ""
	if _, err := HAProxyConfig(cfg, p); err == nil || !strings.Contains(err.Error(), `tls certificate "www" is in halb's store`) {
		t.Errorf("a store certificate: %v", err)
	}
}
