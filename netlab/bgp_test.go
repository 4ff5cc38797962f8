package netlab

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"halb/appliance/api"
	"halb/appliance/config"
)

// The BGP scenario (issue 20): FRR (Debian's frr: zebra + bgpd) is the
// upstream router in its own namespace, with a client behind it; lb1 and
// lb2 run halbd and announce one VIP active_active by eBGP (AS 65001 to the
// router's AS 65000); the router spreads flows over both by ECMP
// (maximum-paths 4, fib_multipath_hash_policy=1: L4 hashing, so flows from
// different source ports of one client go to different nodes).
//
//	client 192.168.1.10 ── cli ── router (FRR) ── up ── lb1 10.1.0.1, lb2 10.1.0.2 ── back ── be1 10.0.0.11
//
// Each node proxies to its own server on be1 (lb1 to s1, lb2 to s2), so the
// X-Backend of an answer names the node that served it; in
// TestBGPSourcePersistence both balance over s1..s4 and name themselves in
// X-LB-Node.

const (
	bgpVIP       = "192.168.10.100"
	frrDir       = "/usr/lib/frr"
	bgpHoldTime  = 9 * time.Second
	bgpRequests  = 200
	bgpAfterKill = 50
)

// frrReason is why FRR cannot run here, or "".
func frrReason() string {
	for _, p := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat(filepath.Join(frrDir, p)); err != nil {
			return "FRR is not installed (scripts/deps.sh installs frr)"
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		return "vtysh is not installed (scripts/deps.sh installs frr)"
	}
	return ""
}

// bgpLab is the topology above.
type bgpLab struct {
	lab            *Lab
	router, client *Host
	lb             []*Host
	nodes          []*Node
	frr            string              // FRR's directory: configs, pid files, vty sockets
	servers        map[string]*Backend // s1..s4 on be1
}

// newBGPLab builds the topology; the nodes announce the VIP in mode
// (active_active, or active_standby with lb1 active), each proxying to its
// own server (ownServer).
func newBGPLab(t *testing.T, mode string) *bgpLab {
	t.Helper()
	return newBGPLabWith(t, mode, ownServer, nil)
}

// ownServer is node i's (1, 2) services and backends for newBGPLabWith: the
// VIP's port 80 proxied to server s<i> on be1 alone.
func ownServer(i int) string {
	return fmt.Sprintf(`services:
  - {name: web, listen: ["%[2]s:80"], mode: http, default_backend: www}
backends:
  - name: www
    servers: [{name: s%[1]d, address: "10.0.0.11:800%[1]d"}]
`, i, bgpVIP)
}

// newBGPLabWith is newBGPLab with node i's (1, 2) services and backends
// from www(i), and more of its bgp section from bgpMore(i) (nil: none);
// be1 serves s1..s4 on ports 8001..8004.
func newBGPLabWith(t *testing.T, mode string, www, bgpMore func(i int) string) *bgpLab {
	t.Helper()
	return newBGPLabOpts(t, bgpOpts{nodes: 2, mode: mode, www: www, more: bgpMore})
}

// bgpOpts are the knobs of newBGPLabOpts.
type bgpOpts struct {
	nodes int    // 1..4, lb<i> at 10.1.0.<i>
	mode  string // of the VIP
	www   func(i int) string
	more  func(i int) string // more of node i's bgp section; nil: none
	// routerPassword is the TCP MD5 key of every session at the
	// router, nodePassword(i) node i's ("": none).
	routerPassword string
	nodePassword   func(i int) string
	// bfd runs FRR's bfdd and BFD on every session, both sides, at
	// 300ms x 3 (both sides' default).
	bfd bool
	// noBGP(i): node i starts without a bgp section (nil: all have one).
	noBGP func(i int) bool
}

// newBGPLabN is newBGPLabWith with n nodes.
func newBGPLabN(t *testing.T, n int, mode string, www, bgpMore func(i int) string) *bgpLab {
	t.Helper()
	return newBGPLabOpts(t, bgpOpts{nodes: n, mode: mode, www: www, more: bgpMore})
}

func newBGPLabOpts(t *testing.T, o bgpOpts) *bgpLab {
	t.Helper()
	n, mode, www, bgpMore := o.nodes, o.mode, o.www, o.more
	l := New(t)
	if r := frrReason(); r != "" {
		t.Skip(r)
	}
	b := &bgpLab{lab: l, servers: map[string]*Backend{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	host := func(name string) *Host {
		h, err := l.AddHost(name)
		must(err)
		return h
	}
	lan := func(name string) *LAN {
		n, err := l.AddLAN(name)
		must(err)
		return n
	}
	connect := func(h *Host, n *LAN, ifname, addr string) {
		_, err := h.Connect(n, ifname, addr)
		must(err)
	}
	up, cli, back := lan("up"), lan("cli"), lan("back")
	b.router, b.client = host("router"), host("client")
	be := host("be1")
	connect(b.router, up, "eth0", "10.1.0.254/24")
	connect(b.router, cli, "eth1", "192.168.1.254/24")
	connect(b.client, cli, "eth0", "192.168.1.10/24")
	must(b.client.AddRoute("default", "192.168.1.254"))
	connect(be, back, "eth0", "10.0.0.11/24")
	must(b.router.Sysctl("net/ipv4/ip_forward", "1"))
	must(b.router.Sysctl("net/ipv4/fib_multipath_hash_policy", "1"))
	for i := range 4 {
		name := fmt.Sprintf("s%d", i+1)
		srv, err := be.ServeBackend(name, fmt.Sprintf(":%d", 8001+i))
		must(err)
		t.Cleanup(func() { srv.Close() })
		b.servers[name] = srv
	}
	b.startFRR(t, n, o.routerPassword, o.bfd)
	for i := range n {
		h := host(fmt.Sprintf("lb%d", i+1))
		connect(h, up, "eth0", fmt.Sprintf("10.1.0.%d/24", i+1))
		connect(h, back, "eth1", fmt.Sprintf("10.0.0.%d/24", i+1))
		must(h.AddRoute("192.168.1.0/24", "10.1.0.254"))
		b.lb = append(b.lb, h)
		active := "false"
		if i == 0 {
			active = "true"
		}
		more := ""
		if bgpMore != nil {
			more = bgpMore(i + 1)
		}
		password := ""
		if o.nodePassword != nil {
			password = fmt.Sprintf(", password: %q", o.nodePassword(i+1))
		}
		if o.bfd {
			password += ", bfd: true"
		}
		conf := fmt.Sprintf(`node: {name: lb%[1]d}
%[5]sbgp:
  asn: 65001
  router_id: 10.1.0.%[1]d
  active: %[4]s
  neighbors: [{address: 10.1.0.254, asn: 65000%[7]s}]
  announce: [{vip: %[2]s/32, mode: %[3]s}]
%[6]s`, i+1, bgpVIP, mode, active, www(i+1), more, password)
		if o.noBGP != nil && o.noBGP(i+1) {
			conf, _, _ = strings.Cut(conf, "bgp:\n")
		}
		node, err := l.StartNode(h, FlavorHalb, []byte(conf))
		must(err)
		b.nodes = append(b.nodes, node)
	}
	return b
}

// startFRR runs zebra and bgpd in the router's namespace, peering with n
// nodes, their files in a directory of their own (they drop to the frr
// user, which cannot enter the test's private temporary directory).
func (b *bgpLab) startFRR(t *testing.T, n int, password string, bfd bool) {
	t.Helper()
	dir, err := os.MkdirTemp("", "netlab-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b.frr = dir
	conf := map[string]string{
		"zebra.conf": "hostname router\n",
		"bgpd.conf": `frr defaults datacenter
hostname router
router bgp 65000
 bgp router-id 10.1.0.254
 no bgp ebgp-requires-policy
%s address-family ipv4 unicast
  maximum-paths 4
 exit-address-family
`,
	}
	var nbs strings.Builder
	for i := range n {
		fmt.Fprintf(&nbs, " neighbor 10.1.0.%[1]d remote-as 65001\n neighbor 10.1.0.%[1]d timers 3 9\n", i+1)
		if password != "" {
			fmt.Fprintf(&nbs, " neighbor 10.1.0.%d password %s\n", i+1, password)
		}
		if bfd {
			fmt.Fprintf(&nbs, " neighbor 10.1.0.%d bfd\n", i+1)
		}
	}
	conf["bgpd.conf"] = fmt.Sprintf(conf["bgpd.conf"], nbs.String())
	daemons := []string{"zebra", "bgpd"}
	if bfd {
		conf["bfdd.conf"] = "hostname router\n"
		daemons = []string{"zebra", "bfdd", "bgpd"}
	}
	for name, text := range conf {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ns := filepath.Base(dir) // FRR's pathspace: unique per lab
	for _, d := range daemons {
		argv := []string{filepath.Join(frrDir, d), "-N", ns, "-u", "frr", "-g", "frr",
			"-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"),
			"-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "-P", "0", "--log", "stdout"}
		if d == "bfdd" {
			argv = append(argv, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		if _, err := b.router.Start(d, argv...); err != nil {
			t.Fatal(err)
		}
		if d == "zebra" && !WaitFor(10*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, "zserv.api"))
			return err == nil
		}) {
			t.Fatal("zebra did not open its socket")
		}
	}
}

// vtysh runs a vtysh command against the router's FRR.
func (b *bgpLab) vtysh(cmd string) string {
	var out []byte
	b.router.Do(func() error {
		out, _ = exec.Command("vtysh", "--vty_socket", b.frr, "-c", cmd).CombinedOutput()
		return nil
	})
	return string(out)
}

// nextHops returns the gateways of the router's kernel route to the VIP,
// sorted.
// waitPaths waits until the router has n paths to the VIP installed.
func (b *bgpLab) waitPaths(t *testing.T, n int) {
	t.Helper()
	if !WaitFor(30*time.Second, func() bool { return len(b.nextHops()) == n }) {
		t.Fatalf("the router has %v, want %d paths to %s\n%s", b.nextHops(), n, bgpVIP, b.vtysh("show bgp summary"))
	}
}

func (b *bgpLab) nextHops() []string {
	_, dst, _ := net.ParseCIDR(bgpVIP + "/32")
	rs, err := b.router.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst}, netlink.RT_FILTER_DST)
	if err != nil || len(rs) == 0 {
		return nil
	}
	var out []string
	for _, r := range rs {
		if r.Gw != nil {
			out = append(out, r.Gw.String())
		}
		for _, nh := range r.MultiPath {
			out = append(out, nh.Gw.String())
		}
	}
	slices.Sort(out)
	return out
}

// split makes n requests from the client, each on a new connection (a
// new source port), and counts the answers per server and the failures.
func (b *bgpLab) split(n int) (map[string]int, int) {
	got := map[string]int{}
	failed := 0
	for range n {
		be, err := b.client.GetBackend("http://" + bgpVIP + "/")
		if err != nil {
			failed++
			continue
		}
		got[be]++
	}
	return got, failed
}

// probe makes a request on a new connection every 20ms (1s timeout) until
// the function it returns is called, which returns the failed and sent.
func (b *bgpLab) probe() func() (failed, sent int64) {
	var failed, sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			sent.Add(1)
			if _, err := b.client.GetBackend("http://" + bgpVIP + "/"); err != nil {
				failed.Add(1)
			}
		}
	})
	return func() (int64, int64) {
		close(stop)
		wg.Wait()
		return failed.Load(), sent.Load()
	}
}

// TestBGPActiveActive: two halb nodes announce one VIP to FRR; the
// router's ECMP spreads new connections over both. Then lb1 fails, and
// the router withdraws its path within the hold time, after which every
// request goes to lb2:
//   - killed: SIGKILL of halbd closes its TCP session (the kernel sends
//     the FIN), so the router withdraws at once;
//   - frozen: SIGSTOP of halbd keeps the session open and silent, so only
//     the router's hold timer (9s) notices; requests hashed to lb1 fail
//     until then;
//   - servers: lb1's only server refuses connections; its health check
//     fails (3 x 2s) and the VIP (when_healthy) is withdrawn; requests
//     hashed to lb1 fail until then.
func TestBGPActiveActive(t *testing.T) {
	concurrent(t)
	for _, tc := range []struct {
		name  string
		fault func(b *bgpLab) error
	}{
		{"killed", func(b *bgpLab) error { return b.nodes[0].Kill() }},
		{"frozen", func(b *bgpLab) error { return b.nodes[0].Freeze() }},
		{"servers", func(b *bgpLab) error { b.servers["s1"].SetMode(ModeRefuse); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labSlot(t)
			bgpFailover(t, newBGPLab(t, "active_active"), tc.fault)
		})
	}
}

// TestBGPActiveStandby: lb1 (bgp.active) announces the VIP with the
// shorter AS path, lb2 prepends 3 times: the router sends everything to
// lb1 while keeping lb2's path; lb1's halbd killed, lb2's path takes
// over.
func TestBGPActiveStandby(t *testing.T) {
	concurrent(t)
	labSlot(t)
	bgpFailover(t, newBGPLab(t, "active_standby"), func(b *bgpLab) error { return b.nodes[0].Kill() })
}

func bgpFailover(t *testing.T, b *bgpLab, fault func(b *bgpLab) error) {
	// Precondition: both sessions up and both paths at the router; with
	// active_active both installed (ECMP), else lb1's only.
	ecmp := b.nodes[0].Config.BGP.Announce[0].Mode == "active_active"
	want := []string{"10.1.0.1"}
	if ecmp {
		want = []string{"10.1.0.1", "10.1.0.2"}
	}
	if !WaitFor(30*time.Second, func() bool {
		return slices.Equal(b.nextHops(), want) && strings.Contains(b.vtysh("show ip bgp "+bgpVIP+"/32"), "(2 available")
	}) {
		t.Fatalf("the router has not two paths to %s with next hops %v: %v\n%s\n%s", bgpVIP, want, b.nextHops(),
			b.vtysh("show bgp summary"), b.vtysh("show ip bgp "+bgpVIP+"/32"))
	}
	t.Logf("router:\n%s", b.vtysh("show ip bgp "+bgpVIP+"/32"))
	st, err := b.nodes[0].API().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lb1 status bgp: %s", st.BGP)

	// Control: the client's requests reach both nodes (ECMP), or lb1 only.
	got, failed := b.split(bgpRequests)
	t.Logf("split of %d new connections over 2 nodes: lb1 (s1) %d, lb2 (s2) %d, failed %d", bgpRequests, got["s1"], got["s2"], failed)
	if ecmp && (failed > 0 || got["s1"] == 0 || got["s2"] == 0) {
		t.Errorf("requests did not reach both nodes: %v, %d failed", got, failed)
	}
	if !ecmp && (failed > 0 || got["s1"] != bgpRequests) {
		t.Errorf("requests did not all reach the active lb1: %v, %d failed", got, failed)
	}

	// Fault on lb1; a probe (a new connection every 20ms, 1s timeout)
	// counts what fails meanwhile.
	stopProbe := b.probe()
	faulted := time.Now()
	if err := fault(b); err != nil {
		t.Fatal(err)
	}
	withdrawn := WaitFor(bgpHoldTime+5*time.Second, func() bool {
		nh := b.nextHops()
		return len(nh) == 1 && nh[0] == "10.1.0.2"
	})
	took := time.Since(faulted)
	time.Sleep(time.Second) // the probe sees the converged path
	probeFailed, probeSent := stopProbe()
	if !withdrawn {
		t.Fatalf("the router still has %v %s after the fault\n%s", b.nextHops(), took, b.vtysh("show bgp summary"))
	}
	t.Logf("lb1's path withdrawn %s after the fault (bound: hold time %s + 1s); probe: %d of %d requests failed",
		took.Truncate(time.Millisecond), bgpHoldTime, probeFailed, probeSent)
	if took > bgpHoldTime+time.Second {
		t.Errorf("withdrawal took %s, more than the hold time %s + 1s", took, bgpHoldTime)
	}
	got, failed = b.split(bgpAfterKill)
	t.Logf("after: lb1 (s1) %d, lb2 (s2) %d, failed %d", got["s1"], got["s2"], failed)
	if failed > 0 || got["s2"] != bgpAfterKill {
		t.Errorf("after lb1 failed: %v, %d failed; want all %d on s2", got, failed, bgpAfterKill)
	}
}

// drainToOther is node i's (1, 2) bgp.drain_to: the other node.
func drainToOther(i int) string { return fmt.Sprintf("  drain_to: [10.1.0.%d]\n", 3-i) }

// TestBGPMaintenance (a drain without resets): lb1 and lb2 name each other
// in bgp.drain_to. Keep-alive connections are open to both nodes when
// `halbctl maintenance on` goes on lb1: lb1 keeps its path while it hands
// every new connection to lb2 and serves its own open ones; once the last
// of them is closed it withdraws (long before drain_time). Coming back,
// lb1 announces again and the router's rehash moves some of lb2's open
// connections to it: lb1 hands their packets back to lb2. No request of
// the probe (a new connection every 20ms) fails and no open connection is
// reset, on the way out or back.
func TestBGPMaintenance(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabWith(t, "active_active", ownServer, drainToOther)
	b.waitPaths(t, 2)
	// Open connections on both nodes (s1 answers on lb1, s2 on lb2).
	var held []*keptConn
	on := map[string]int{}
	for len(held) < 64 && (len(held) < 16 || on["s1"] < 4 || on["s2"] < 4) {
		c := b.keepT(t)
		held = append(held, c)
		on[c.server]++
	}
	if on["s1"] < 4 || on["s2"] < 4 {
		t.Fatalf("the router's ECMP put %v of %d connections on the servers", on, len(held))
	}
	stopProbe := b.probe()
	stopEvents := followEvents(t, b.nodes[0])
	start := time.Now()
	if err := b.nodes[0].API().SetMaintenance(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	vip := func(n *Node) api.BGPVIP {
		var b api.BGPStatus
		st, err := n.API().Status(context.Background())
		if err != nil || json.Unmarshal(st.BGP, &b) != nil || len(b.VIPs) != 1 {
			return api.BGPVIP{}
		}
		return b.VIPs[0]
	}
	if !WaitFor(5*time.Second, func() bool { return vip(b.nodes[0]).State == "handoff" }) {
		t.Fatalf("lb1's VIP is %+v, want handoff", vip(b.nodes[0]))
	}
	t.Logf("lb1 draining: %s", vip(b.nodes[0]).Reason)
	// New connections go to lb2 whichever node the router picks, while
	// lb1 keeps its path and serves its open connections.
	got, failed := b.split(40)
	if failed > 0 || got["s2"] != 40 {
		t.Errorf("new connections while lb1 hands off: %v, %d failed; want all 40 on s2", got, failed)
	}
	if hops := b.nextHops(); len(hops) != 2 {
		t.Errorf("the router has %v while lb1 hands off, want both paths", hops)
	}
	useKept(t, "during the handoff", held, "")
	// lb1's connections close: it withdraws.
	var onLB2 []*keptConn
	for _, c := range held {
		if c.server == "s1" {
			c.Close()
		} else {
			onLB2 = append(onLB2, c)
		}
	}
	closed := time.Now()
	if !WaitFor(10*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.2"}) }) {
		t.Fatalf("the router still has %v %s after lb1's last connection closed; lb1: %+v", b.nextHops(), time.Since(closed), vip(b.nodes[0]))
	}
	t.Logf("lb1 withdrew %s after its last connection closed (%s after maintenance on)",
		time.Since(closed).Truncate(time.Millisecond), time.Since(start).Truncate(time.Millisecond))
	useKept(t, "after lb1 withdrew", onLB2, "")
	// More connections while lb2 has them all, then lb1 comes back.
	onLB2 = append(onLB2, b.keepN(t, 16)...)
	if err := b.nodes[0].API().SetMaintenance(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(10*time.Second, func() bool { return len(b.nextHops()) == 2 }) {
		t.Fatalf("lb1's path not back: %v", b.nextHops())
	}
	// The rehash has moved some of lb2's connections to lb1, which hands
	// their packets back: each must still be answered by s2.
	for range 3 {
		useKept(t, "after lb1 came back", onLB2, "")
		time.Sleep(200 * time.Millisecond)
	}
	// lb1's rule counted the packets it handed back (the rehash did move
	// some of lb2's connections to it).
	var rules []byte
	b.lb[0].Do(func() (err error) {
		rules, err = exec.Command("nft", "list", "table", "ip", "halb_bgp").CombinedOutput()
		return err
	})
	m := regexp.MustCompile(`ct state new counter packets (\d+)`).FindSubmatch(rules)
	if m == nil || string(m[1]) == "0" {
		t.Errorf("lb1 handed back no packet after it came back (%d connections on lb2):\n%s", len(onLB2), rules)
	} else {
		t.Logf("lb1 handed back %s packets of lb2's %d connections after it came back", m[1], len(onLB2))
	}
	got, failed = b.split(40)
	if failed > 0 || got["s1"] == 0 || got["s2"] == 0 {
		t.Errorf("new connections after lb1 came back: %v, %d failed; want both nodes", got, failed)
	}
	probeFailed, probeSent := stopProbe()
	t.Logf("probe: %d of %d requests failed", probeFailed, probeSent)
	if probeFailed > 0 {
		t.Errorf("%d requests of the probe failed around a planned drain", probeFailed)
	}
	var bgpEvents []string
	for _, ev := range stopEvents() {
		if strings.HasPrefix(ev.Type, "bgp.vip_") {
			bgpEvents = append(bgpEvents, ev.Type)
		}
	}
	if want := []string{"bgp.vip_handoff", "bgp.vip_withdrawn", "bgp.vip_announced"}; !slices.Equal(bgpEvents, want) {
		t.Errorf("lb1's bgp events %q, want %q", bgpEvents, want)
	}
}

// TestBGPMaintenanceGracefulShutdown: without bgp.drain_to, maintenance
// on lb1 announces the VIP with GRACEFUL_SHUTDOWN (65535:0), which FRR
// honours by giving the path local-pref 0: new flows go to lb2 at once,
// and after drain_time lb1 withdraws. What was open on lb1 when the router
// moved its flows is reset by lb2 (the rehash the handoff avoids): the
// probe's failures are reported, not asserted.
func TestBGPMaintenanceGracefulShutdown(t *testing.T) {
	concurrent(t)
	labSlot(t)
	const drain = 3 * time.Second
	b := newBGPLabWith(t, "active_active", ownServer, func(int) string { return fmt.Sprintf("  drain_time: %s\n", drain) })
	b.waitPaths(t, 2)
	stopProbe := b.probe()
	stopEvents := followEvents(t, b.nodes[0])
	on := time.Now()
	if err := b.nodes[0].API().SetMaintenance(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	moved := WaitFor(drain, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.2"}) })
	tookMove := time.Since(on)
	gshut := b.vtysh("show ip bgp " + bgpVIP + "/32")
	if !moved {
		t.Errorf("the router still has %v %s after maintenance on lb1", b.nextHops(), tookMove)
	}
	if !strings.Contains(gshut, "graceful-shutdown") {
		t.Errorf("the router's path from lb1 has no GRACEFUL_SHUTDOWN community:\n%s", gshut)
	}
	got, failed := b.split(20)
	if failed > 0 || got["s2"] != 20 {
		t.Errorf("new connections during the drain: %v, %d failed; want all 20 on s2", got, failed)
	}
	withdrawn := WaitFor(drain+5*time.Second, func() bool { return strings.Contains(b.vtysh("show ip bgp "+bgpVIP+"/32"), "(1 available") })
	tookWithdraw := time.Since(on)
	probeFailed, probeSent := stopProbe()
	t.Logf("maintenance on lb1: new flows moved to lb2 after %s, path withdrawn after %s; probe: %d of %d requests failed (connections open on lb1 when the router moved its flows)",
		tookMove.Truncate(time.Millisecond), tookWithdraw.Truncate(time.Millisecond), probeFailed, probeSent)
	if !withdrawn || tookWithdraw < drain {
		t.Errorf("lb1's path withdrawn: %v after %s, want after drain_time %s", withdrawn, tookWithdraw, drain)
	}
	var bgpEvents []string
	for _, ev := range stopEvents() {
		if strings.HasPrefix(ev.Type, "bgp.vip_") {
			bgpEvents = append(bgpEvents, ev.Type+": "+ev.Message)
		}
	}
	t.Logf("lb1's bgp events: %q", bgpEvents)
	if len(bgpEvents) != 2 || !strings.HasPrefix(bgpEvents[0], "bgp.vip_graceful_shutdown: ") ||
		!strings.HasPrefix(bgpEvents[1], "bgp.vip_withdrawn: ") || !strings.Contains(bgpEvents[1], "maintenance") {
		t.Errorf("lb1's bgp events %q, want the VIP draining with GRACEFUL_SHUTDOWN, then withdrawn for maintenance", bgpEvents)
	}
}

// keptConn is a keep-alive HTTP/1.1 connection from the client to the VIP;
// server is the server that answered its first request, last the latest.
type keptConn struct {
	net.Conn
	r            *bufio.Reader
	server, last string
}

// keep opens a keptConn and makes its first request.
func (b *bgpLab) keep() (*keptConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := b.client.Dial(ctx, "tcp", bgpVIP+":80")
	if err != nil {
		return nil, err
	}
	k := &keptConn{Conn: c, r: bufio.NewReader(c)}
	if err := k.Use(); err != nil {
		c.Close()
		return nil, err
	}
	k.server = k.last
	return k, nil
}

// keepT opens a keptConn (failing the test if it cannot) that is closed
// when the test ends.
func (b *bgpLab) keepT(t *testing.T) *keptConn {
	t.Helper()
	c, err := b.keep()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keepN opens n keptConns, as keepT.
func (b *bgpLab) keepN(t *testing.T, n int) []*keptConn {
	t.Helper()
	out := make([]*keptConn, n)
	for i := range out {
		out[i] = b.keepT(t)
	}
	return out
}

// useKept makes a request on each connection, each of which must be
// answered by server, or by the server that answered its first request
// when server is "".
func useKept(t *testing.T, what string, conns []*keptConn, server string) {
	t.Helper()
	for _, c := range conns {
		want := cmp.Or(server, c.server)
		if err := c.Use(); err != nil {
			t.Errorf("%s: a connection first answered by %s: %v", what, c.server, err)
		} else if c.last != want {
			t.Errorf("%s: a connection first answered by %s now answered by %s, want %s", what, c.server, c.last, want)
		}
	}
}

// Use makes one request on the connection (1s bound).
func (k *keptConn) Use() error {
	k.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(k, "GET / HTTP/1.1\r\nHost: "+bgpVIP+"\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	k.last = resp.Header.Get("X-Backend")
	return nil
}

// followEvents follows n's event stream from now (it returns once
// subscribed) until the returned function is called, which returns the
// events seen.
func followEvents(t *testing.T, n *Node) func() []api.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cl := n.API()
	var mu sync.Mutex
	var evs []api.Event
	live, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		cl.Events(ctx, func(ev api.Event) error {
			once.Do(func() { close(live) })
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
			return nil
		})
	}()
	select {
	case <-live:
	case <-done:
		t.Fatal("cannot follow the event stream")
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream did not start")
	}
	return func() []api.Event {
		cancel()
		<-done
		cl.Close()
		mu.Lock()
		defer mu.Unlock()
		return evs
	}
}

// sourceBalanced is node i's (1, 2) services and backends for
// TestBGPSourcePersistence: the same four servers by `balance: source` on
// both nodes, each answer naming its node in X-LB-Node.
func sourceBalanced(i int) string {
	return fmt.Sprintf(`services:
  - {name: web, listen: ["%[2]s:80"], mode: http, default_backend: www, response_headers: {X-LB-Node: lb%[1]d}}
backends:
  - name: www
    balance: source
    servers:
      - {name: s1, address: "10.0.0.11:8001"}
      - {name: s2, address: "10.0.0.11:8002"}
      - {name: s3, address: "10.0.0.11:8003"}
      - {name: s4, address: "10.0.0.11:8004"}
`, i, bgpVIP)
}

const (
	bgpClients      = 20 // client addresses of TestBGPSourcePersistence
	bgpPerClientMax = 32 // requests of one address to see both nodes
	bgpPerClientMin = 4
)

// TestBGPSourcePersistence (issue 20, persistence across the nodes): with
// `balance: source` every node hashes a client address to the same server,
// so a client keeps its server whichever node the router's ECMP hands its
// flow to. lb1 and lb2 balance over the same four servers; 20 client
// addresses each make requests on new connections (new source ports, which
// the router's L4 hash spreads over both nodes) until both nodes have
// answered it: each address must get one server from both. Then lb1's
// halbd is killed, the router sends every flow to lb2, and each address
// must still get the server it had.
func TestBGPSourcePersistence(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabWith(t, "active_active", sourceBalanced, nil)
	b.waitPaths(t, 2)
	srcs := make([]netip.Addr, bgpClients)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{192, 168, 1, byte(100 + i)})
	}
	if err := b.client.AddAddrs("eth0", srcs, 24); err != nil {
		t.Fatal(err)
	}
	url := "http://" + bgpVIP + "/"
	// get is the server and the node that answered src.
	get := func(src netip.Addr) (server, node string, err error) {
		h, err := b.client.HeaderFrom(src, url, "")
		if err != nil {
			return "", "", err
		}
		return h.Get("X-Backend"), h.Get("X-LB-Node"), nil
	}

	// Both nodes up: each address until both nodes have answered it.
	server := map[netip.Addr]string{}
	spread := map[string]int{}
	bothNodes, oneServer, failed, sent := 0, 0, 0, 0
	for _, src := range srcs {
		servers, nodes := map[string]int{}, map[string]int{}
		for n := 0; n < bgpPerClientMax && (n < bgpPerClientMin || len(nodes) < 2); n++ {
			sent++
			s, node, err := get(src)
			if err != nil {
				failed++
				continue
			}
			servers[s]++
			nodes[node]++
		}
		if len(nodes) == 2 {
			bothNodes++
		}
		if len(servers) == 1 {
			oneServer++
			for s := range servers {
				server[src] = s
				spread[s]++
			}
		} else {
			t.Errorf("%s got servers %v from nodes %v", src, servers, nodes)
		}
	}
	t.Logf("both nodes up: %d of %d client addresses answered by both nodes, %d got one server from both; %d of %d requests failed; addresses per server %v",
		bothNodes, len(srcs), oneServer, failed, sent, spread)
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, sent)
	}
	if bothNodes != len(srcs) {
		t.Errorf("control: only %d of %d addresses reached both nodes in %d requests", bothNodes, len(srcs), bgpPerClientMax)
	}
	if len(spread) < 2 {
		t.Errorf("control: the %d addresses all hash to one server: %v", len(srcs), spread)
	}

	// lb1 killed: the router sends everything to lb2.
	if err := b.nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(bgpHoldTime+5*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.2"}) }) {
		t.Fatalf("the router still has %v after lb1 was killed\n%s", b.nextHops(), b.vtysh("show bgp summary"))
	}
	kept := 0
	for _, src := range srcs {
		same := true
		for range bgpPerClientMin {
			s, node, err := get(src)
			if err != nil || node != "lb2" || s != server[src] {
				same = false
				t.Errorf("%s after lb1 was killed: server %q (had %q), node %q, error %v", src, s, server[src], node, err)
			}
		}
		if same {
			kept++
		}
	}
	t.Logf("lb1 killed, every flow on lb2: %d of %d client addresses kept their server", kept, len(srcs))
}

// TestBGPRestart: halbd restarted on lb1 (SIGTERM, then started again, as
// `systemctl restart halbd` does), the nodes naming each other in
// bgp.drain_to. Its path goes while it is down and comes back once its
// server passes its check: one withdrawal and one announcement at the
// router, no more. Stopping, halbd hands new connections to lb2 until its
// own are done, withdraws, and serves a second more; starting, it hands
// back to lb2 the connections the router's rehash moves to it. The
// probe loses nothing (without drain_to, a connection in flight when the
// router rehashes is reset: TestBGPMaintenanceGracefulShutdown).
func TestBGPRestart(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabWith(t, "active_active", ownServer, drainToOther)
	b.waitPaths(t, 2)
	// Keep-alive connections on lb2, opened before the restart and while
	// lb1 is down: the rehash when lb1 comes back moves some of the
	// latter to lb1 (the former hash as they did), which must hand them
	// back.
	var onLB2 []*keptConn
	for tries := 0; len(onLB2) < 8 && tries < 64; tries++ {
		c := b.keepT(t)
		if c.server != "s2" {
			c.Close()
			continue
		}
		onLB2 = append(onLB2, c)
	}
	// Watch the router's routes: each change of its next hops.
	var changes []string
	stopWatch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		last := strings.Join(b.nextHops(), ",")
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if now := strings.Join(b.nextHops(), ","); now != last {
				changes = append(changes, now)
				last = now
			}
		}
	})
	stopProbe := b.probe()
	start := time.Now()
	for _, p := range b.nodes[0].Processes() {
		if err := p.Terminate(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	stopped := time.Since(start)
	// halbd withdrew before it stopped serving: the path is gone by now.
	if hops := b.nextHops(); !slices.Equal(hops, []string{"10.1.0.2"}) {
		t.Errorf("the router has %v once lb1's halbd stopped, want lb2's path alone", hops)
	}
	onLB2 = append(onLB2, b.keepN(t, 16)...)
	if err := b.nodes[0].Start(); err != nil {
		t.Fatal(err)
	}
	back := WaitFor(30*time.Second, func() bool { return len(b.nextHops()) == 2 })
	tookBack := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	reset := 0
	for _, c := range onLB2 {
		if err := c.Use(); err != nil || c.last != "s2" {
			reset++
		}
	}
	failed, sent := stopProbe()
	close(stopWatch)
	wg.Wait()
	t.Logf("lb1's halbd stopped in %s, its path back %s after SIGTERM; router next hops: %q; probe: %d of %d failed; %d of lb2's %d open connections reset or moved",
		stopped.Truncate(time.Millisecond), tookBack.Truncate(time.Millisecond), changes, failed, sent, reset, len(onLB2))
	if reset > 0 {
		t.Errorf("%d of lb2's open connections were reset or moved when lb1 came back", reset)
	}
	if !back {
		t.Fatalf("lb1's path not back: %v", b.nextHops())
	}
	if want := []string{"10.1.0.2", "10.1.0.1,10.1.0.2"}; !slices.Equal(changes, want) {
		t.Errorf("the router's next hops went %q, want %q (one withdrawal, one announcement)", changes, want)
	}
	if failed > 0 {
		t.Errorf("%d requests failed around a restart", failed)
	}
}

// TestBGPFourNodes: four halb nodes announce the VIP active_active; the
// router spreads new connections over all four (the split is reported),
// and when lb3's halbd is killed its path goes and its share goes to the
// other three, with no failure once the path is gone.
func TestBGPFourNodes(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabN(t, 4, "active_active", ownServer, nil)
	b.waitPaths(t, 4)
	const n = 400
	got, failed := b.split(n)
	t.Logf("four nodes: %d new connections split %v, %d failed", n, got, failed)
	for i := range 4 {
		// Each of four paths gets a quarter; below a tenth is no spread.
		if s := fmt.Sprintf("s%d", i+1); got[s] < n/10 {
			t.Errorf("lb%d answered %d of %d: %v", i+1, got[s], n, got)
		}
	}
	if failed > 0 {
		t.Errorf("%d failed with four nodes up", failed)
	}
	killed := time.Now()
	if err := b.nodes[2].Kill(); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.0.1", "10.1.0.2", "10.1.0.4"}
	if !WaitFor(2*bgpHoldTime, func() bool { return slices.Equal(b.nextHops(), want) }) {
		t.Fatalf("the router has %v %s after lb3 was killed, want %v", b.nextHops(), time.Since(killed), want)
	}
	took := time.Since(killed)
	got, failed = b.split(n)
	t.Logf("lb3 killed: withdrawn after %s; %d new connections split %v, %d failed", took.Truncate(time.Millisecond), n, got, failed)
	if failed > 0 || got["s3"] > 0 || got["s1"] == 0 || got["s2"] == 0 || got["s4"] == 0 {
		t.Errorf("after lb3's path went: %v, %d failed; want all on the other three", got, failed)
	}
}

// TestBGPPassword: the router signs its sessions with a TCP MD5 key (RFC
// 2385); lb1 has the same key in bgp.neighbors[].password and its session
// comes up, lb2 has another and its session does not.
func TestBGPPassword(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabOpts(t, bgpOpts{nodes: 2, mode: "active_active", www: ownServer, routerPassword: "halb-md5-key",
		nodePassword: func(i int) string { return map[int]string{1: "halb-md5-key", 2: "not-the-key"}[i] }})
	session := func(n *Node) string {
		var bs api.BGPStatus
		st, err := n.API().Status(context.Background())
		if err != nil || json.Unmarshal(st.BGP, &bs) != nil || len(bs.Sessions) != 1 {
			return ""
		}
		return bs.Sessions[0].State
	}
	if !WaitFor(20*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.1"}) }) {
		t.Fatalf("the router has %v, want lb1's path (same key)\n%s", b.nextHops(), b.vtysh("show bgp summary"))
	}
	// lb2 dials every few seconds: give it the time of several tries.
	time.Sleep(6 * time.Second)
	if hops := b.nextHops(); !slices.Equal(hops, []string{"10.1.0.1"}) {
		t.Errorf("the router has %v, want lb1's path alone (lb2's key is wrong)", hops)
	}
	if s1, s2 := session(b.nodes[0]), session(b.nodes[1]); s1 != "established" || s2 == "established" {
		t.Errorf("sessions: lb1 %q, lb2 %q; want lb1 established, lb2 not", s1, s2)
	}
}

// TestBGPPeerSync: lb2 starts without bgp and pairs with lb1 (halbctl
// pair show / join, as an operator does): the bgp section reaches it,
// it takes its own router id (its address toward the router: router_id
// is a node part) and announces; then a change made on lb2 (the VIP
// becomes active_standby) reaches lb1, and the router prefers lb1
// (bgp.active, a node part) over lb2, which prepends.
func TestBGPPeerSync(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabOpts(t, bgpOpts{nodes: 2, mode: "active_active", www: ownServer, noBGP: func(i int) bool { return i == 2 }})
	if !WaitFor(30*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.1"}) }) {
		t.Fatalf("the router has %v, want lb1's path alone\n%s", b.nextHops(), b.vtysh("show bgp summary"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pairByHalbctl(t, ctx, b.nodes[0], b.nodes[1])
	if !WaitFor(30*time.Second, func() bool { return len(b.nextHops()) == 2 }) {
		t.Fatalf("lb2 does not announce after pairing: the router has %v\n%s", b.nextHops(), b.vtysh("show bgp summary"))
	}
	var st api.BGPStatus
	if s, err := b.nodes[1].API().Status(ctx); err != nil || json.Unmarshal(s.BGP, &st) != nil || st.RouterID != "10.1.0.2" {
		t.Errorf("lb2's bgp status %+v (%v), want router id 10.1.0.2 (its own address)", st, err)
	}
	editRunning(t, b.nodes[1], func(c *config.Config) { c.BGP.Announce[0].Mode = "active_standby" })
	if !WaitFor(10*time.Second, func() bool {
		raw, err := b.nodes[0].API().Config(ctx)
		return err == nil && strings.Contains(string(raw), "active_standby")
	}) {
		t.Fatal("lb2's change did not reach lb1")
	}
	if !WaitFor(10*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.1"}) }) {
		t.Errorf("the router has %v after the VIP became active_standby, want lb1 (active) alone\n%s", b.nextHops(), b.vtysh("show ip bgp "+bgpVIP+"/32"))
	}
	if out := b.vtysh("show ip bgp " + bgpVIP + "/32"); !strings.Contains(out, "65001 65001 65001 65001") {
		t.Errorf("lb2's path is not prepended 3 times:\n%s", out)
	}
}

// vrrpBeside is node i's config for TestBGPBesideVRRP: the BGP VIP's
// service, and a VRRP instance on the routers' segment holding
// 10.1.0.100 (lb1 preferred) with a service of its own; both proxy to
// the node's own server.
func vrrpBeside(i int) string {
	return fmt.Sprintf(`vrrp:
  - {name: lan, interface: eth0, vrid: 61, priority: %[3]d, advert_interval: 200ms, preempt: true, vips: ["%[4]s/24"]}
services:
  - {name: web, listen: ["%[2]s:80"], mode: http, default_backend: www}
  - {name: lan, listen: ["%[4]s:80"], mode: http, default_backend: www}
backends:
  - name: www
    servers: [{name: s%[1]d, address: "10.0.0.11:800%[1]d"}]
`, i, bgpVIP, 200-50*i, bgpBesideVIP)
}

const bgpBesideVIP = "10.1.0.100"

// TestBGPBesideVRRP (migration): one node runs a VRRP VIP and a BGP VIP
// side by side. The client reaches the BGP VIP over both nodes (ECMP)
// and the VRRP VIP on its master lb1; lb1's halbd killed, its BGP path
// goes and lb2 becomes VRRP master: both VIPs answer from lb2.
func TestBGPBesideVRRP(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabWith(t, "active_active", vrrpBeside, nil)
	b.waitPaths(t, 2)
	lan := netip.MustParseAddr(bgpBesideVIP)
	if !WaitFor(10*time.Second, func() bool { return b.nodes[0].HoldsVIP(lan) && !b.nodes[1].HoldsVIP(lan) }) {
		t.Fatalf("VRRP: lb1 holds %s %v, lb2 %v; want lb1 alone", lan, b.nodes[0].HoldsVIP(lan), b.nodes[1].HoldsVIP(lan))
	}
	splitOf := func(url string) (map[string]int, int) {
		got, failed := map[string]int{}, 0
		for range 40 {
			be, err := b.client.GetBackend(url)
			if err != nil {
				failed++
				continue
			}
			got[be]++
		}
		return got, failed
	}
	got, failed := splitOf("http://" + bgpVIP + "/")
	if failed > 0 || got["s1"] == 0 || got["s2"] == 0 {
		t.Errorf("BGP VIP: %v, %d failed; want both nodes", got, failed)
	}
	got, failed = splitOf("http://" + bgpBesideVIP + "/")
	if failed > 0 || got["s1"] != 40 {
		t.Errorf("VRRP VIP: %v, %d failed; want all on lb1 (master)", got, failed)
	}
	if err := b.nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(bgpHoldTime, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.2"}) && b.nodes[1].HoldsVIP(lan) }) {
		t.Fatalf("after lb1 was killed: router %v, lb2 holds %s: %v", b.nextHops(), lan, b.nodes[1].HoldsVIP(lan))
	}
	for _, url := range []string{"http://" + bgpVIP + "/", "http://" + bgpBesideVIP + "/"} {
		if !WaitFor(5*time.Second, func() bool { be, err := b.client.GetBackend(url); return err == nil && be == "s2" }) {
			t.Fatalf("%s does not answer from lb2", url)
		}
		if got, failed := splitOf(url); failed > 0 || got["s2"] != 40 {
			t.Errorf("%s after lb1 was killed: %v, %d failed; want all on lb2", url, got, failed)
		}
	}
}

// TestBGPMaintenanceStandby (a planned handover in active_standby): lb1
// (bgp.active) carries every flow, lb2 announces a prepended path; the
// nodes name each other in bgp.drain_to. Maintenance on lb1 hands new
// connections to lb2 while lb1's open ones finish, then withdraws: the
// router's best path becomes lb2's. Coming back, lb1 is the best path
// again and the router moves every flow to it: lb1 hands back the
// connections lb2 opened meanwhile. No probe request fails and no open
// connection is reset.
func TestBGPMaintenanceStandby(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabWith(t, "active_standby", ownServer, drainToOther)
	if !WaitFor(30*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.1"}) }) {
		t.Fatalf("the router has %v, want lb1 (active) alone\n%s", b.nextHops(), b.vtysh("show ip bgp "+bgpVIP+"/32"))
	}
	if !WaitFor(10*time.Second, func() bool { return strings.Contains(b.vtysh("show ip bgp "+bgpVIP+"/32"), "(2 available") }) {
		t.Fatalf("the router has not lb2's standby path:\n%s", b.vtysh("show ip bgp "+bgpVIP+"/32"))
	}
	onLB1 := b.keepN(t, 8)
	useKept(t, "before", onLB1, "s1")
	stopProbe := b.probe()
	if err := b.nodes[0].API().SetMaintenance(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(5*time.Second, func() bool { got, _ := b.split(1); return got["s2"] == 1 }) {
		t.Fatal("new connections do not go to lb2 after maintenance on lb1")
	}
	useKept(t, "lb1 handing off", onLB1, "s1")
	for _, c := range onLB1 {
		c.Close()
	}
	if !WaitFor(10*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.2"}) }) {
		t.Fatalf("the router has %v after lb1's connections closed, want lb2", b.nextHops())
	}
	onLB2 := b.keepN(t, 8)
	useKept(t, "lb2 carries all", onLB2, "s2")
	if err := b.nodes[0].API().SetMaintenance(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(10*time.Second, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.1"}) }) {
		t.Fatalf("the router has %v after maintenance off, want lb1 (active) again", b.nextHops())
	}
	for range 3 {
		useKept(t, "lb1 back: lb2's connections handed back", onLB2, "s2")
		time.Sleep(200 * time.Millisecond)
	}
	if got, failed := b.split(20); failed > 0 || got["s1"] != 20 {
		t.Errorf("new connections with lb1 back: %v, %d failed; want all on lb1", got, failed)
	}
	failed, sent := stopProbe()
	t.Logf("planned handover and back in active_standby: probe %d of %d failed; 8 connections on lb1 finished there, 8 opened on lb2 meanwhile kept", failed, sent)
	if failed > 0 {
		t.Errorf("%d probe requests failed around a planned handover", failed)
	}
}
