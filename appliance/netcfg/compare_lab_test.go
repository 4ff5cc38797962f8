package netcfg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// networkdPath is Debian's systemd-networkd.
const networkdPath = "/lib/systemd/systemd-networkd"

// TestDHCPLabLinkUpToAddress is a report, not a check: the time from
// "link up" to the leased address on the link, halb's client against
// systemd-networkd, on the same dnsmasq (--no-ping, so its address probe
// does not dominate), in alternating rounds, each client starting fresh
// (no saved lease) and waiting for the carrier. systemd-networkd runs
// in the client namespace in a private mount namespace (its own /run,
// /etc/systemd/network and a read-only /sys so it does not wait for udev)
// without D-Bus. Run: NETLAB_DHCP_COMPARE=10 (rounds) go test -run
// TestDHCPLabLinkUpToAddress -v ./appliance/netcfg/
func TestDHCPLabLinkUpToAddress(t *testing.T) {
	s := os.Getenv("NETLAB_DHCP_COMPARE")
	if s == "" {
		t.Skip("a measurement: set NETLAB_DHCP_COMPARE=<rounds> to run it")
	}
	rounds, err := strconv.Atoi(s)
	if err != nil || rounds < 1 {
		t.Fatalf("NETLAB_DHCP_COMPARE=%q: want a round count", s)
	}
	if _, err := os.Stat(networkdPath); err != nil {
		t.Skipf("no systemd-networkd: %v", err)
	}
	l := newDHCPLab(t, "--no-ping")
	h := l.handle()
	netfile := filepath.Join(l.dir, "mgmt0.network")
	if err := os.WriteFile(netfile, []byte("[Match]\nName="+labIf+"\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n[DHCPv4]\nClientIdentifier=mac\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// "Link up" is the cable: the server side of the veth pair (vs0) goes
	// up, and mgmt0 (administratively up all along) gets its carrier.
	// Both clients wait for the carrier; neither is timed on setting the
	// link up itself.
	srvNS := l.srvNS()
	srvLink := func() (netlink.Link, *netlink.Handle) {
		sh, err := netlink.NewHandleAt(srvNS)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := sh.LinkByName("vs0")
		if err != nil {
			t.Fatal(err)
		}
		return lk, sh
	}
	reset := func() {
		run(t, "ip", "-n", l.srv, "link", "set", "vs0", "down")
		run(t, "ip", "-n", l.cli, "-4", "addr", "flush", "dev", labIf)
		run(t, "ip", "-n", l.cli, "link", "set", labIf, "up")
		os.RemoveAll(filepath.Join(l.dir, "state"))
	}
	// linkUp gives mgmt0 its carrier and returns the time until an IPv4
	// address is on it.
	linkUp := func() time.Duration {
		lk, sh := srvLink()
		defer sh.Close()
		start := time.Now()
		if err := sh.LinkSetUp(lk); err != nil {
			t.Fatal(err)
		}
		for len(l.addrs(h)) == 0 {
			if time.Since(start) > 30*time.Second {
				t.Fatal("no address 30 s after link up")
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	halb := func() time.Duration {
		reset()
		mg, stop := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{StateDir: filepath.Join(l.dir, "state")})
		defer stop()
		testutil.WaitFor(t, "halb's client waiting for the link", func() bool {
			st := mg.Status()
			return len(st.Interfaces) == 1 && st.Interfaces[0].Lease != nil && st.Interfaces[0].Lease.State == stLinkDown
		})
		return linkUp()
	}
	networkd := func() time.Duration {
		reset()
		var out testutil.SyncBuffer
		cmd := exec.Command("ip", "netns", "exec", l.cli, "unshare", "-m", "sh", "-c",
			"mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/network /run/systemd/netif && "+
				"chown systemd-network: /run/systemd/netif && cp "+netfile+" /run/systemd/network/ && "+
				"mount -t tmpfs tmpfs /etc/systemd/network && mount -o remount,ro /sys && exec "+networkdPath)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		testutil.WaitFor(t, "systemd-networkd enumerated the links", func() bool { return strings.Contains(out.String(), "Enumeration completed") })
		d := linkUp()
		if !strings.Contains(out.String(), "DHCPv4 address") {
			testutil.WaitFor(t, "systemd-networkd's DHCPv4 log line", func() bool { return strings.Contains(out.String(), "DHCPv4 address") })
		}
		return d
	}
	var hs, ns []time.Duration
	for i := range rounds {
		if i%2 == 0 {
			hs = append(hs, halb())
			ns = append(ns, networkd())
		} else {
			ns = append(ns, networkd())
			hs = append(hs, halb())
		}
	}
	t.Logf("link up → address, %d rounds each: halb %s; systemd-networkd %s", rounds, summary(hs), summary(ns))
}

// summary is the median with min, p90 and max.
func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(int(p*float64(len(s))), len(s)-1)] }
	r := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("median %s (min %s, p90 %s, max %s)", r(q(0.5)), r(s[0]), r(q(0.9)), r(s[len(s)-1]))
}
