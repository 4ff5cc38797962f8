package netcfg

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// waitLong polls cond every 100 ms for up to limit (for states bound to a
// lease's real times, beyond testutil.WaitFor's 10 s).
func waitLong(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDHCPLabObtainAndRenew: dnsmasq hands out a lease (T1 2 s, T2 4 s,
// lease 2 min, dnsmasq's minimum); the client applies address, default
// route, resolv.conf and reports NTP; at T1 it renews by unicast and
// dnsmasq logs the REQUEST; the address is extended in place.
func TestDHCPLabObtainAndRenew(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t, "--dhcp-option=option:T1,2", "--dhcp-option=option:T2,4")
	h := l.handle()
	resolv := filepath.Join(l.dir, "resolv.conf")
	var events testutil.SyncBuffer
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true},
		Options{ManageSystem: true, ResolvConf: resolv, Events: func(k, m string) { events.Write([]byte(k + ": " + m + "\n")) }})
	ls := bound(t, mg)
	p := mustPrefix(t, ls.Address)
	if p.Bits() != 24 || !netip.MustParsePrefix("10.77.0.0/24").Contains(p.Addr()) || ls.Server != labServer || ls.Router != labServer {
		t.Fatalf("lease %+v", ls)
	}
	if got := l.addrs(h); !slices.Contains(got, p.String()) {
		t.Fatalf("%v not on %s: %v", p, labIf, got)
	}
	if rs := l.defaultRoutes(h); len(rs) != 1 || rs[0] != "via 10.77.0.1 proto 16" {
		t.Fatalf("default routes %v, want one via %s proto dhcp", rs, labServer)
	}
	st := mg.Status()
	if st.Mode != "dhcp" || st.Gateway != labServer || !slices.Equal(st.DNS, []string{"10.77.0.53"}) || !slices.Equal(st.NTP, []string{"10.77.0.123"}) || ls.Domain != "lab.test" {
		t.Fatalf("status %+v lease %+v", st, ls)
	}
	waitLong(t, "resolv.conf from the lease", 10*time.Second, func() bool {
		b, _ := os.ReadFile(resolv)
		return strings.Contains(string(b), "nameserver 10.77.0.53\n") && strings.Contains(string(b), "search lab.test\n")
	})
	if t1 := ls.T1.Sub(ls.Obtained); t1 < time.Second || t1 > 4*time.Second || ls.Expiry.Sub(ls.Obtained) != 2*time.Minute {
		t.Fatalf("T1 %v expiry %v after obtained", ls.T1.Sub(ls.Obtained), ls.Expiry.Sub(ls.Obtained))
	}
	from := len(l.logText())
	obtained := ls.Obtained
	waitLong(t, "a renewal", 15*time.Second, func() bool {
		s := mg.Status().Interfaces[0].Lease
		return s.Renewals >= 1 && s.State == stBound
	})
	renewedAt := time.Now()
	if renewedAt.Before(ls.T1) {
		t.Fatalf("renewed %v after the ACK, before T1", renewedAt.Sub(obtained))
	}
	waitLog(t, l, from, "DHCPACK", 1)
	if n := l.count(from, "DHCPDISCOVER"); n != 0 {
		t.Fatalf("renewal went through DISCOVER (%d)", n)
	}
	if !slices.Contains(l.addrs(h), p.String()) || mg.Status().Interfaces[0].Lease.Address != ls.Address {
		t.Fatal("address changed by the renewal")
	}
	if ev := events.String(); !strings.Contains(ev, "dhcp: mgmt0: bound "+p.String()+" from 10.77.0.1, lease 2m0s\n") {
		t.Fatalf("events %q", ev)
	}
}

func waitLog(t *testing.T, l *dhcpLab, from int, what string, n int) {
	t.Helper()
	waitLong(t, "dnsmasq to log "+what, 10*time.Second, func() bool { return l.count(from, what) >= n })
}

// TestDHCPLabServerOutage: dnsmasq stops; the client renews, then
// rebinds by broadcast, and keeps the address; dnsmasq comes back and the
// REBINDING broadcast is answered (no DISCOVER); dnsmasq stops again and
// the address stays until the lease's expiry, then goes.
func TestDHCPLabServerOutage(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t, "--dhcp-option=option:T1,2", "--dhcp-option=option:T2,4")
	h := l.handle()
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{})
	ls := bound(t, mg)
	l.stop()
	waitLong(t, "REBINDING", 15*time.Second, func() bool { return mg.Status().Interfaces[0].Lease.State == stRebinding })
	if !slices.Contains(l.addrs(h), ls.Address) {
		t.Fatal("address removed while rebinding, before expiry")
	}
	from := len(l.logText())
	renewals := mg.Status().Interfaces[0].Lease.Renewals
	l.start()
	waitLong(t, "rebound", 15*time.Second, func() bool {
		s := mg.Status().Interfaces[0].Lease
		return s.State == stBound && s.Renewals > renewals
	})
	if n := l.count(from, "DHCPDISCOVER"); n != 0 || l.count(from, "DHCPREQUEST") == 0 {
		t.Fatalf("rebinding: %d DISCOVER, %d REQUEST in dnsmasq's log", n, l.count(from, "DHCPREQUEST"))
	}
	// Second outage: held until expiry, not a moment before.
	l.stop()
	expiry := mg.Status().Interfaces[0].Lease.Expiry
	var lastSeen time.Time
	waitLong(t, "the address removed at expiry", time.Until(expiry)+15*time.Second, func() bool {
		if slices.Contains(l.addrs(h), ls.Address) {
			lastSeen = time.Now()
			return false
		}
		return true
	})
	if d := expiry.Sub(lastSeen); d > 500*time.Millisecond {
		t.Fatalf("address gone %v before expiry %v", d, expiry)
	}
	if rs := l.defaultRoutes(h); len(rs) != 0 {
		t.Fatalf("default route left after expiry: %v", rs)
	}
	t.Logf("address last seen %v after expiry", lastSeen.Sub(expiry))
}

// TestDHCPLabRestartInitReboot: halbd stops (no release) and a new
// manager on the same state dir confirms the saved lease with a REQUEST
// and no DISCOVER; the address never left.
func TestDHCPLabRestartInitReboot(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	h := l.handle()
	state := filepath.Join(l.dir, "state")
	mg, stop := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{StateDir: state})
	ls := bound(t, mg)
	stop()
	if !slices.Contains(l.addrs(h), ls.Address) {
		t.Fatal("orderly stop removed the address (no release was asked)")
	}
	if _, err := os.Stat(leasePath(state, labIf)); err != nil {
		t.Fatalf("lease file: %v", err)
	}
	from := len(l.logText())
	mg2, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{StateDir: state})
	ls2 := bound(t, mg2)
	waitLog(t, l, from, "DHCPACK", 1)
	if ls2.Address != ls.Address || l.count(from, "DHCPDISCOVER") != 0 || l.count(from, "DHCPREQUEST") != 1 {
		t.Fatalf("restart: address %s (was %s), dnsmasq saw %d DISCOVER %d REQUEST", ls2.Address, ls.Address,
			l.count(from, "DHCPDISCOVER"), l.count(from, "DHCPREQUEST"))
	}
}

// TestDHCPLabStaticToDHCP: a static address applied, then DHCP by Apply:
// the static address and route go, the lease's come; then back to static:
// the lease is released (dnsmasq logs it) and its address goes. A VIP the
// test added survives every step.
func TestDHCPLabStaticToDHCP(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	h := l.handle()
	run(t, "ip", "-n", l.cli, "addr", "add", "10.77.0.250/32", "dev", labIf)
	vip := "10.77.0.250/32"
	static := config.Management{Interface: labIf, Address: "10.77.0.9/24", Gateway: labServer, DNS: []string{"10.77.0.53"}}
	mg, _ := l.manager(static, Options{})
	staticRoute := []string{"via 10.77.0.1 proto 4"}
	waitLong(t, "the static address and route", 10*time.Second, func() bool {
		return slices.Contains(l.addrs(h), "10.77.0.9/24") && slices.Equal(l.defaultRoutes(h), staticRoute)
	})
	if err := mg.Apply(config.Management{Interface: labIf, DHCP: true}); err != nil {
		t.Fatal(err)
	}
	ls := bound(t, mg)
	got := l.addrs(h)
	if want := []string{vip, ls.Address}; !sameSet(got, want) {
		t.Fatalf("after static→dhcp: addresses %v, want %v", got, want)
	}
	waitLong(t, "after static→dhcp: the default route via 10.77.0.1 proto 16", 10*time.Second, func() bool {
		rs := l.defaultRoutes(h)
		return len(rs) == 1 && rs[0] == "via 10.77.0.1 proto 16"
	})
	from := len(l.logText())
	if err := mg.Apply(static); err != nil {
		t.Fatal(err)
	}
	waitLog(t, l, from, "DHCPRELEASE", 1)
	waitLong(t, "static again, the lease's address and route gone", 10*time.Second, func() bool {
		return sameSet(l.addrs(h), []string{vip, "10.77.0.9/24"}) && slices.Equal(l.defaultRoutes(h), staticRoute)
	})
	if err := mg.Apply(config.Management{}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "unmanaged: only the VIP left, no default route", 10*time.Second, func() bool {
		return sameSet(l.addrs(h), []string{vip}) && len(l.defaultRoutes(h)) == 0
	})
	if st := mg.Status(); st.Mode != "unmanaged" {
		t.Fatalf("mode %s", st.Mode)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestDHCPLabFirstBoot: no management config and FirstBoot: DHCP on every
// wired link (here the test counts veth as wired: a namespace has no PCI
// NIC); then the operator's config names that link with dhcp: the lease
// carries over (no RELEASE, no DISCOVER).
func TestDHCPLabFirstBoot(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	o := Options{FirstBoot: true}
	o.wired = func(lk netlink.Link) bool { return lk.Type() == "veth" }
	mg, _ := l.manager(config.Management{}, o)
	ls := bound(t, mg)
	if st := mg.Status(); st.Mode != "first-boot" || st.Interfaces[0].Name != labIf || st.Interfaces[0].MAC == "" || !st.Interfaces[0].Carrier {
		t.Fatalf("status %+v", st)
	}
	from := len(l.logText())
	if err := mg.Apply(config.Management{Interface: labIf, DHCP: true}); err != nil {
		t.Fatal(err)
	}
	ls2 := bound(t, mg)
	waitLog(t, l, from, "DHCPACK", 1)
	if ls2.Address != ls.Address || l.count(from, "DHCPRELEASE") != 0 || l.count(from, "DHCPDISCOVER") != 0 || mg.Status().Mode != "dhcp" {
		t.Fatalf("first-boot → dhcp: %s → %s, dnsmasq: %d RELEASE %d DISCOVER", ls.Address, ls2.Address,
			l.count(from, "DHCPRELEASE"), l.count(from, "DHCPDISCOVER"))
	}
}

// TestDHCPLabFirstBootLateLink: at first boot a wired link that shows up
// after the start (a NIC whose driver udev loads after halbd started) gets
// DHCP too. The lab's link is parked in the server's namespace while the
// manager starts, then moved back.
func TestDHCPLabFirstBootLateLink(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "netns", l.srv)
	o := Options{FirstBoot: true}
	o.wired = func(lk netlink.Link) bool { return lk.Type() == "veth" }
	mg, _ := l.manager(config.Management{}, o)
	testutil.WaitFor(t, "first boot with no wired link", func() bool {
		return strings.Contains(mg.Status().Error, "no wired interface")
	})
	run(t, "ip", "-n", l.srv, "link", "set", labIf, "netns", l.cli)
	bound(t, mg)
	if st := mg.Status(); st.Mode != "first-boot" || st.Interfaces[0].Name != labIf || strings.Contains(st.Error, "no wired interface") {
		t.Fatalf("status %+v", st)
	}
}

// TestStaticLateLink: a static config whose link shows up after the start
// (administratively down, as a NIC whose driver udev loads after halbd
// started) is applied then: the link set up, the address and route added.
func TestStaticLateLink(t *testing.T) {
	t.Parallel() // own namespaces
	l := newDHCPLab(t)
	h := l.handle()
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "netns", l.srv)
	static := config.Management{Interface: labIf, Address: "10.77.0.9/24", Gateway: labServer}
	mg, _ := l.manager(static, Options{})
	testutil.WaitFor(t, "the static config failing on the missing link", func() bool { return mg.Status().Error != "" })
	run(t, "ip", "-n", l.srv, "link", "set", labIf, "down")
	run(t, "ip", "-n", l.srv, "link", "set", labIf, "netns", l.cli)
	waitLong(t, "the static address and route on the late link", 10*time.Second, func() bool {
		return slices.Contains(l.addrs(h), "10.77.0.9/24") && slices.Equal(l.defaultRoutes(h), []string{"via 10.77.0.1 proto 4"})
	})
	testutil.WaitFor(t, "no error in status once the link came", func() bool { return mg.Status().Error == "" })
}

func TestPhysicalLinks(t *testing.T) {
	skipUnlessRoot(t)
	k, err := newKernel("")
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	lo, err := k.link("lo")
	if err != nil {
		t.Fatal(err)
	}
	if k.physical(lo) {
		t.Fatal("lo counted as wired")
	}
}

// TestDHCPLabLinkFlap: the link goes down and up; the client re-confirms
// its lease by INIT-REBOOT (a REQUEST, no DISCOVER), keeps the address and
// puts back the default route the administrative down flushed.
func TestDHCPLabLinkFlap(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	h := l.handle()
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{})
	ls := bound(t, mg)
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "down")
	waitLong(t, "LINK-DOWN", 10*time.Second, func() bool { return mg.Status().Interfaces[0].Lease.State == stLinkDown })
	from := len(l.logText())
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "up")
	waitLog(t, l, from, "DHCPACK", 1)
	ls2 := bound(t, mg)
	if ls2.Address != ls.Address || l.count(from, "DHCPDISCOVER") != 0 || l.count(from, "DHCPREQUEST") != 1 {
		t.Fatalf("after the flap: %s (was %s); dnsmasq: %d DISCOVER, %d REQUEST", ls2.Address, ls.Address,
			l.count(from, "DHCPDISCOVER"), l.count(from, "DHCPREQUEST"))
	}
	waitLong(t, "the default route back", 10*time.Second, func() bool { return len(l.defaultRoutes(h)) == 1 })
	if !slices.Contains(l.addrs(h), ls.Address) {
		t.Fatalf("address gone after the flap: %v", l.addrs(h))
	}
}

// TestDHCPLabInitRebootNak: the saved lease names an address dnsmasq
// (authoritative) does not give: INIT-REBOOT is NAKed, the adopted
// address is removed and DISCOVER gets a new one.
func TestDHCPLabInitRebootNak(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	h := l.handle()
	state := filepath.Join(l.dir, "state")
	now := time.Now()
	stale := &dhcpLease{Address: netip.MustParsePrefix("10.77.0.99/24"), Server: netip.MustParseAddr(labServer),
		Obtained: now, T1: now.Add(30 * time.Minute), T2: now.Add(50 * time.Minute), Expiry: now.Add(time.Hour)}
	if err := saveLease(state, labIf, stale); err != nil {
		t.Fatal(err)
	}
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{StateDir: state})
	waitLog(t, l, 0, "DHCPNAK", 1)
	ls := bound(t, mg)
	if ls.Address == stale.Address.String() || !sameSet(l.addrs(h), []string{ls.Address}) {
		t.Fatalf("after NAK: lease %s, addresses %v (stale %v must be gone)", ls.Address, l.addrs(h), stale.Address)
	}
	if l.count(0, "DHCPDISCOVER") == 0 {
		t.Fatal("no DISCOVER after the NAK")
	}
}

// TestDHCPLabReleaseOnStop: with ReleaseOnStop the orderly stop sends
// RELEASE (dnsmasq logs it), removes the address and the lease file.
func TestDHCPLabReleaseOnStop(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	h := l.handle()
	state := filepath.Join(l.dir, "state")
	mg, stop := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{StateDir: state, ReleaseOnStop: true})
	bound(t, mg)
	from := len(l.logText())
	stop()
	waitLog(t, l, from, "DHCPRELEASE", 1)
	if got := l.addrs(h); len(got) != 0 {
		t.Fatalf("addresses after release: %v", got)
	}
	if _, err := os.Stat(leasePath(state, labIf)); !os.IsNotExist(err) {
		t.Fatalf("lease file after release: %v", err)
	}
}

// TestDHCPLabStartWithLinkDown: the client starts while its link is down
// (a box booting before its cable is plugged in); when the link comes up
// it obtains a lease by DISCOVER at once; after a flap while bound it
// confirms the lease. (A client whose link was administratively down at
// start once lost its raw socket's reader and never got a lease; netcfg
// now sets the link up itself and reopens the socket on every link up,
// which TestDHCPLabLinkFlap and TestDHCPLabSetsLinkUp hold.)
func TestDHCPLabStartWithLinkDown(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	// The cable is out: the far end of the veth is down, so the client's
	// link (which netcfg sets administratively up) has no carrier.
	run(t, "ip", "-n", l.srv, "link", "set", "vs0", "down")
	// The daemon follows the lease by these events (its NTP servers go
	// to the clock): the status must show the lease when they come.
	var mgp atomic.Pointer[Manager]
	var mu sync.Mutex
	var seen []string
	events := func(kind, msg string) {
		if m := mgp.Load(); m != nil && kind == "dhcp" {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s: status ntp %v", msg, m.Status().NTP))
			mu.Unlock()
		}
	}
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{Events: events})
	mgp.Store(mg)
	waitLong(t, "the client to see the link down", 10*time.Second, func() bool {
		st := mg.Status()
		return len(st.Interfaces) == 1 && !st.Interfaces[0].Carrier && st.Interfaces[0].Lease != nil
	})
	run(t, "ip", "-n", l.srv, "link", "set", "vs0", "up")
	ls := bound(t, mg)
	if l.count(0, "DHCPDISCOVER") == 0 {
		t.Fatalf("lease %+v without a DISCOVER in dnsmasq's log", ls)
	}
	mu.Lock()
	if len(seen) != 1 || !strings.HasSuffix(seen[0], "status ntp [10.77.0.123]") {
		t.Errorf("dhcp events %q, want one, with the lease's NTP server in the status", seen)
	}
	mu.Unlock()
	// A flap while bound: the lease is re-confirmed (REQUEST, ACK), the
	// same address kept.
	from := len(l.logText())
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "down")
	waitLong(t, "the link down in status", 10*time.Second, func() bool { return !mg.Status().Interfaces[0].Carrier })
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "up")
	waitLog(t, l, from, "DHCPACK", 1)
	if ls2 := bound(t, mg); ls2.Address != ls.Address || l.count(from, "DHCPDISCOVER") != 0 {
		t.Fatalf("after the flap: lease %s (was %s), %d DISCOVER", ls2.Address, ls.Address, l.count(from, "DHCPDISCOVER"))
	}
}

// TestDHCPLabSubnetVIPSurvivesStatic: a VIP in the lease's subnet with the
// same prefix length (10.77.0.250/24, as keepalived users write them) is
// a secondary address of the leased one; removing the leased (primary)
// address flushes its secondaries unless the link promotes them. Leaving
// DHCP for static keeps the VIP.
func TestDHCPLabSubnetVIPSurvivesStatic(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	h := l.handle()
	run(t, "ip", "netns", "exec", l.cli, "sysctl", "-qw", "net.ipv4.conf."+labIf+".promote_secondaries=0")
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{})
	ls := bound(t, mg)
	const vip = "10.77.0.250/24"
	run(t, "ip", "-n", l.cli, "addr", "add", vip, "dev", labIf)
	if err := mg.Apply(config.Management{Interface: labIf, Address: "10.77.0.9/24", Gateway: labServer}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the lease gone", 10*time.Second, func() bool { return !slices.Contains(l.addrs(h), ls.Address) })
	waitLong(t, "the static address and the VIP", 10*time.Second, func() bool { return sameSet(l.addrs(h), []string{vip, "10.77.0.9/24"}) })
}
