package keepalived

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// run maps src (with the given haproxy services already imported) and
// checks that halb's validation accepts the result.
func run(t *testing.T, src string, services ...string) *source.Builder {
	t.Helper()
	b := source.NewBuilder()
	for i, s := range services {
		b.Config.Services = append(b.Config.Services, config.Service{Name: s, Listen: []string{fmt.Sprintf("10.9.9.%d:80", i+1)}, DefaultBackend: "be"})
	}
	if len(services) > 0 {
		b.Config.Backends = []config.Backend{{Name: "be"}}
	}
	stmts, warns, err := Parse("k.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(stmts, warns, b); err != nil {
		t.Fatal(err)
	}
	c := *b.Config
	if c.Node.Name == "" {
		c.Node.Name = "lb1"
	}
	raw, err := config.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("halb.yaml", raw); err != nil {
		t.Fatalf("result does not validate: %v\n%s", err, raw)
	}
	return b
}

// finding returns the finding whose directive starts with d.
func finding(t *testing.T, b *source.Builder, k source.Kind, d string) source.Finding {
	t.Helper()
	for _, f := range b.Report.Findings {
		if f.Kind == k && strings.HasPrefix(f.Directive, d) {
			return f
		}
	}
	t.Fatalf("no %s finding for %q in:\n%s", k, d, b.Report)
	return source.Finding{}
}

const inst = `vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 51
	priority 100
	virtual_ipaddress {
		192.168.1.100/24
	}
	%s
}
`

func TestInstance(t *testing.T) {
	b := run(t, `global_defs {
  router_id lb-a
}
vrrp_instance VI_1 {
	state MASTER
	interface eth1
	virtual_router_id 51
	priority 120
	advert_int 2
	nopreempt
	preempt_delay 12.5
	virtual_ipaddress {
		192.168.1.100/24 dev eth1
		192.168.1.101
	}
	unicast_src_ip 192.168.1.11
	unicast_peer {
		192.168.1.12
	}
	use_vmac
}`)
	v := b.Config.VRRP[0]
	want := config.VRRPInstance{Name: "VI_1", Interface: "eth1", VRID: 51, Version: 2, Priority: 120,
		AdvertInterval: config.Duration(2 * time.Second), PreemptDelay: config.Duration(12500 * time.Millisecond),
		VIPs: []string{"192.168.1.100/24", "192.168.1.101/32"}, UnicastPeers: []string{"192.168.1.12"}, UseVMAC: true}
	if v.Preempt == nil || *v.Preempt {
		t.Errorf("preempt %v, want false", v.Preempt)
	}
	v.Preempt = nil
	if fmt.Sprintf("%+v", v) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", v, want)
	}
	if b.Config.Node.Name != "lb-a" {
		t.Errorf("node name %q", b.Config.Node.Name)
	}
	if b.Origins["vrrp[0]"] != "from k.conf:4:1 vrrp_instance VI_1" {
		t.Errorf("origin %q", b.Origins["vrrp[0]"])
	}
	finding(t, b, source.Note, "state MASTER")
	finding(t, b, source.Note, "unicast_src_ip")
	finding(t, b, source.Note, "vrrp_instance VI_1")
	if b.Report.Partial() {
		t.Errorf("an exact import is partial:\n%s", b.Report)
	}
}

func TestVersionAndAdvert(t *testing.T) {
	b := run(t, fmt.Sprintf(inst, "advert_int 0.25"))
	v := b.Config.VRRP[0]
	if v.Version != 3 || v.AdvertInterval.D() != 250*time.Millisecond {
		t.Errorf("version %d advert %s, want 3 and 250ms", v.Version, v.AdvertInterval)
	}
	finding(t, b, source.Changed, "advert_int 0.25")

	b = run(t, "global_defs {\n vrrp_version 3\n}\n"+fmt.Sprintf(inst, ""))
	if v := b.Config.VRRP[0]; v.Version != 3 || v.AdvertInterval.D() != time.Second {
		t.Errorf("version %d advert %s, want 3 and keepalived's 1s", v.Version, v.AdvertInterval)
	}
	b = run(t, strings.Replace(fmt.Sprintf(inst, ""), "192.168.1.100/24", "fd00::100/64", 1))
	if v := b.Config.VRRP[0]; v.Version != 3 {
		t.Errorf("IPv6 instance with version %d", v.Version)
	}
}

func TestPriority255(t *testing.T) {
	b := run(t, strings.Replace(fmt.Sprintf(inst, ""), "priority 100", "priority 255", 1))
	if v := b.Config.VRRP[0]; !v.AddressOwner || v.Priority != 255 {
		t.Errorf("owner %v priority %d", v.AddressOwner, v.Priority)
	}
	finding(t, b, source.Note, "priority 255")
}

func TestHAProxyScriptBecomesServiceTracking(t *testing.T) {
	src := `vrrp_script chk_haproxy {
	script "/usr/bin/killall -0 haproxy"
	interval 2
	weight -20
}
` + fmt.Sprintf(inst, "track_script {\n chk_haproxy\n}")
	b := run(t, src, "web", "api")
	tr := b.Config.VRRP[0].Track
	if strings.Join(tr.Services, ",") != "web,api" || tr.Weight != -20 || len(tr.Scripts) != 0 {
		t.Errorf("track %+v", tr)
	}
	// Two services: HAProxy down fails both, and halb applies the weight
	// per service.
	f := finding(t, b, source.Changed, "track_script chk_haproxy")
	if !strings.Contains(f.Why, "web, api") {
		t.Errorf("%q does not name the services", f.Why)
	}
	b = run(t, src, "web")
	finding(t, b, source.Note, "track_script chk_haproxy")
	if b.Report.Partial() {
		t.Errorf("one service is exact:\n%s", b.Report)
	}
	// Without services there is nothing to track: dropped, not kept as a
	// script checking a HAProxy that is gone.
	b = run(t, src)
	if len(b.Config.VRRP[0].Track.Scripts) != 0 {
		t.Error("the HAProxy check stayed a script")
	}
	finding(t, b, source.Dropped, "track_script chk_haproxy")
}

func TestScripts(t *testing.T) {
	b := run(t, `vrrp_script chk_gw {
	script "ping -c1 -W1 192.168.1.1"
	interval 3
	timeout 2
	rise 2
	fall 4
	weight 10
	user nobody
}
vrrp_script chk_disk {
	script "test -d /data && test -w /data"
}
`+fmt.Sprintf(inst, "track_script {\n chk_gw\n chk_disk weight -30\n}"))
	v := b.Config.VRRP[0]
	if v.Priority != 110 {
		t.Errorf("priority %d, want 100 + the positive weight 10", v.Priority)
	}
	s := v.Track.Scripts
	if len(s) != 2 {
		t.Fatalf("scripts %+v", s)
	}
	if strings.Join(s[0].Command, " ") != "/usr/bin/ping -c1 -W1 192.168.1.1" || s[0].Interval.D() != 3*time.Second ||
		s[0].Timeout.D() != 2*time.Second || s[0].Rise != 2 || s[0].Fall != 4 || *s[0].Weight != -10 {
		t.Errorf("chk_gw %+v weight %d", s[0], *s[0].Weight)
	}
	if strings.Join(s[1].Command, "|") != "/bin/sh|-c|test -d /data && test -w /data" || *s[1].Weight != -30 {
		t.Errorf("chk_disk %+v", s[1])
	}
	if b.Origins["vrrp[0].track.scripts[1]"] != "from k.conf:10:1 vrrp_script chk_disk" {
		t.Errorf("origins %v", b.Origins)
	}
	finding(t, b, source.Changed, "script ping")
	finding(t, b, source.Changed, "script test -d")
	finding(t, b, source.Dropped, "user nobody")
	finding(t, b, source.Note, "chk_gw")
}

func TestTrackInterfaces(t *testing.T) {
	b := run(t, fmt.Sprintf(inst, "track_interface {\n eth1 weight -10\n eth2 weight -10\n}"))
	if tr := b.Config.VRRP[0].Track; strings.Join(tr.Interfaces, ",") != "eth1,eth2" || tr.Weight != -10 {
		t.Errorf("track %+v", tr)
	}
	if b.Report.Partial() {
		t.Errorf("equal weights are exact:\n%s", b.Report)
	}
	b = run(t, fmt.Sprintf(inst, "track_interface {\n eth1\n eth2 weight -10\n}"))
	if tr := b.Config.VRRP[0].Track; tr.Weight != 0 {
		t.Errorf("weight %d, want the first's 0", tr.Weight)
	}
	finding(t, b, source.Changed, "eth2 weight -10")
}

func TestNotify(t *testing.T) {
	b := run(t, fmt.Sprintf(inst, "notify /etc/keepalived/notify.sh\nnotify_master \"/etc/keepalived/m.sh\""))
	if n := b.Config.VRRP[0].Notify; n != "/etc/keepalived/notify.sh" {
		t.Errorf("notify %q", n)
	}
	if f := finding(t, b, source.Changed, "notify /etc"); !strings.Contains(f.Why, "INSTANCE NAME STATE PRIORITY") {
		t.Errorf("why %q", f.Why)
	}
	finding(t, b, source.Dropped, "notify_master")
}

func TestDrops(t *testing.T) {
	b := run(t, `global_defs {
	notification_email {
		a@example.net
	}
	smtp_server 10.0.0.25
	frobnicate yes
}
static_routes {
	10.0.0.0/8 via 192.168.1.1
}
`+fmt.Sprintf(inst, `authentication {
		auth_type PASS
		auth_pass x
	}
	virtual_routes {
		0.0.0.0/0 via 192.168.1.1
	}
	virtual_ipaddress {
		10.5.0.1/24 dev eth9
	}
	mystery 1
	track_script {
		nope
	}`))
	for _, d := range []string{"notification_email", "smtp_server", "frobnicate yes", "static_routes", "authentication", "virtual_routes", "10.5.0.1/24 dev eth9", "mystery 1", "nope"} {
		finding(t, b, source.Dropped, d)
	}
	if f := finding(t, b, source.Dropped, "frobnicate"); f.Why != "unknown directive" || f.Pos.String() != "k.conf:6:2" {
		t.Errorf("%+v", f)
	}
}

func TestUnknownSection(t *testing.T) {
	stmts, _, err := Parse("k.conf", []byte("vrrp_instanse X {\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = apply(stmts, nil, source.NewBuilder())
	if err == nil || err.Error() != `k.conf:1:1: unknown keepalived section "vrrp_instanse"` {
		t.Errorf("error %v", err)
	}
}

func TestNamesAndConditionals(t *testing.T) {
	b := run(t, strings.Replace(fmt.Sprintf(inst, "@lb2 priority 50"), "VI_1", `"web vip"`, 1))
	if n := b.Config.VRRP[0].Name; n != "web_vip" {
		t.Errorf("name %q", n)
	}
	finding(t, b, source.Note, "vrrp_instance web vip")
	finding(t, b, source.Dropped, "@lb2 priority 50")
}

func TestSyncGroup(t *testing.T) {
	two := fmt.Sprintf(inst, "") + strings.NewReplacer("VI_1", "VI_2", "51", "52", "1.100", "1.200").Replace(fmt.Sprintf(inst, ""))
	b := run(t, two+"vrrp_sync_group G {\n group {\n  VI_1\n  VI_2 VI_3\n }\n notify_master /x\n}\n")
	g := b.Config.VRRPSyncGroups
	if len(g) != 1 || strings.Join(g[0].Instances, ",") != "VI_1,VI_2" {
		t.Fatalf("groups %+v", g)
	}
	finding(t, b, source.Dropped, "VI_3")
	finding(t, b, source.Dropped, "notify_master")
	if b.Origins["vrrp_sync_groups[0]"] == "" {
		t.Error("no origin for the group")
	}
	b = run(t, fmt.Sprintf(inst, "")+"vrrp_sync_group G {\n group {\n  VI_1\n }\n}\n")
	if len(b.Config.VRRPSyncGroups) != 0 {
		t.Error("a group of one was imported")
	}
	finding(t, b, source.Dropped, "vrrp_sync_group G")
}

func TestGARP(t *testing.T) {
	b := run(t, "global_defs {\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 1\n}\n"+fmt.Sprintf(inst, ""))
	if g := b.Config.VRRP[0].GARP; g.Repeats() != 1 || g.Interval.D() != 2*time.Second {
		t.Errorf("garp %+v", g)
	}
	if b.Report.Partial() {
		t.Errorf("repeat 1 is exact:\n%s", b.Report)
	}
	b = run(t, fmt.Sprintf(inst, "garp_master_repeat 5"))
	if g := b.Config.VRRP[0].GARP; g.Repeats() != 1 || g.Interval.D() != 5*time.Second {
		t.Errorf("garp %+v", g)
	}
	finding(t, b, source.Changed, "garp_master_repeat 5")
	// No second burst: one set at once, garp.repeat 0 (written out, not
	// left to the default of 3).
	b = run(t, "global_defs {\n vrrp_garp_master_delay 0\n vrrp_garp_master_repeat 1\n}\n"+fmt.Sprintf(inst, ""))
	if g := b.Config.VRRP[0].GARP; g.Repeat == nil || *g.Repeat != 0 || b.Report.Partial() {
		t.Errorf("garp %+v, report:\n%s", g, b.Report)
	}
	b = run(t, "global_defs {\n vrrp_min_garp true\n}\n"+fmt.Sprintf(inst, ""))
	if g := b.Config.VRRP[0].GARP; g.Repeat == nil || *g.Repeat != 0 || b.Report.Partial() {
		t.Errorf("vrrp_min_garp: garp %+v, report:\n%s", g, b.Report)
	}
	raw, err := config.Marshal(b.Config)
	if err != nil || !strings.Contains(string(raw), "repeat: 0") {
		t.Errorf("the result does not say repeat: 0 (%v):\n%s", err, raw)
	}
}

func TestLVS(t *testing.T) {
	b := run(t, fmt.Sprintf(inst, "")+`
virtual_server 192.168.1.100 8080 {
	delay_loop 4
	lb_algo lc
	persistence_timeout 60
	real_server 10.0.0.1 8080 {
		weight 2
		TCP_CHECK {
			connect_timeout 2
		}
	}
	real_server 10.0.0.2 8080 {
		weight 500
		HTTP_GET {
			url {
				path /x
			}
		}
	}
	sorry_server 10.0.0.9 8080
}
virtual_server 192.168.1.100 53 {
	protocol UDP
	real_server 10.0.0.1 53 {
	}
}
`)
	if len(b.Config.Services) != 1 || len(b.Config.Backends) != 1 {
		t.Fatalf("services %+v backends %+v", b.Config.Services, b.Config.Backends)
	}
	s, be := b.Config.Services[0], b.Config.Backends[0]
	if s.Mode != "tcp" || s.Listen[0] != "192.168.1.100:8080" || s.DefaultBackend != be.Name {
		t.Errorf("service %+v", s)
	}
	if be.Balance != "leastconn" || !be.Sticky.Source || be.Sticky.Expire.D() != time.Minute ||
		be.Health.Check != "tcp" || be.Health.Interval.D() != 4*time.Second || be.Health.Timeout.D() != 2*time.Second || be.Health.Rise != 1 {
		t.Errorf("backend %+v", be)
	}
	if len(be.Servers) != 3 || *be.Servers[0].Weight != 2 || *be.Servers[1].Weight != 256 || !be.Servers[2].Backup || be.Servers[2].Address != "10.0.0.9:8080" {
		t.Errorf("servers %+v", be.Servers)
	}
	for _, p := range []string{"services[0]", "backends[0]", "backends[0].servers[0]", "backends[0].servers[2]"} {
		if b.Origins[p] == "" {
			t.Errorf("no origin for %s", p)
		}
	}
	finding(t, b, source.Changed, "virtual_server 192.168.1.100 8080") // lb_kind NAT by default
	finding(t, b, source.Changed, "lb_algo lc")                        // weights
	finding(t, b, source.Changed, "weight 500")
	finding(t, b, source.Changed, "HTTP_GET")
	finding(t, b, source.Dropped, "virtual_server 192.168.1.100 53")
}

func TestVIPDeviceBeforeInterface(t *testing.T) {
	b := run(t, `vrrp_instance V {
	virtual_ipaddress {
		10.0.0.1/24 dev eth1
		10.0.1.1/24 dev eth2
	}
	interface eth1
	virtual_router_id 9
}`)
	if v := b.Config.VRRP[0]; strings.Join(v.VIPs, ",") != "10.0.0.1/24" {
		t.Errorf("vips %v", v.VIPs)
	}
	finding(t, b, source.Dropped, "10.0.1.1/24 dev eth2")
}

func TestClashes(t *testing.T) {
	b := run(t, `vrrp_instance A {
	interface eth0
	virtual_router_id 1
	use_vmac
	virtual_ipaddress {
		10.0.0.1/24
		10.0.0.1/24
	}
}
vrrp_instance B {
	interface eth0
	virtual_router_id 1
	virtual_ipaddress {
		10.0.0.2/24
	}
}
vrrp_instance C {
	interface eth1
	virtual_router_id 1
	use_vmac
	virtual_ipaddress {
		10.0.0.1/24
		10.0.1.1/24
	}
}`)
	if n := len(b.Config.VRRP); n != 2 || b.Config.VRRP[1].UseVMAC || strings.Join(b.Config.VRRP[1].VIPs, ",") != "10.0.1.1/24" {
		t.Errorf("instances %+v", b.Config.VRRP)
	}
	finding(t, b, source.Dropped, "vrrp_instance B")
	finding(t, b, source.Dropped, "use_vmac")
	finding(t, b, source.Dropped, "10.0.0.1/24")
}
