package netcfg

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// dhcpLab is two namespaces joined by a veth pair: "srv" with dnsmasq
// (Debian's) serving 10.77.0.0/24 on vs0, and "cli" where the client
// manages mgmt0. Everything is removed at the test's end, even on failure.
type dhcpLab struct {
	t        *testing.T
	srv, cli string // namespace names (ip netns)
	dir      string
	args     []string
	dnsmasq  *exec.Cmd
	log      string // dnsmasq's log file
}

const (
	labIf     = "mgmt0"
	labServer = "10.77.0.1"
)

func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth, dnsmasq")
	}
	for _, bin := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// newDHCPLab builds the namespaces and starts dnsmasq with the extra
// options given (e.g. --dhcp-option=option:T1,2).
func newDHCPLab(t *testing.T, extra ...string) *dhcpLab {
	skipUnlessRoot(t)
	id := fmt.Sprintf("%04x", rand.Uint32()&0xffff)
	l := &dhcpLab{t: t, srv: "halb-ds-" + id, cli: "halb-dc-" + id, dir: t.TempDir()}
	l.log = filepath.Join(l.dir, "dnsmasq.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dnsmasq's log:\n%s", l.logText())
		}
		l.stop()
		exec.Command("ip", "netns", "del", l.srv).Run()
		exec.Command("ip", "netns", "del", l.cli).Run()
	})
	run(t, "ip", "netns", "add", l.srv)
	run(t, "ip", "netns", "add", l.cli)
	run(t, "ip", "-n", l.srv, "link", "add", "vs0", "type", "veth", "peer", "name", labIf, "netns", l.cli)
	run(t, "ip", "-n", l.srv, "addr", "add", labServer+"/24", "dev", "vs0")
	for _, c := range [][]string{{"-n", l.srv, "link", "set", "vs0", "up"}, {"-n", l.srv, "link", "set", "lo", "up"},
		{"-n", l.cli, "link", "set", labIf, "up"}, {"-n", l.cli, "link", "set", "lo", "up"}} {
		run(t, "ip", c...)
	}
	l.args = append([]string{"netns", "exec", l.srv, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--user=root", "--group=root", "--interface=vs0", "--bind-interfaces", "--log-dhcp",
		"--log-facility=" + l.log, "--dhcp-leasefile=" + filepath.Join(l.dir, "leases"),
		"--pid-file=" + filepath.Join(l.dir, "pid"), "--dhcp-authoritative",
		"--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router," + labServer, "--dhcp-option=option:dns-server,10.77.0.53",
		"--dhcp-option=option:ntp-server,10.77.0.123", "--domain=lab.test"}, extra...)
	l.start()
	return l
}

func (l *dhcpLab) start() {
	l.t.Helper()
	l.dnsmasq = exec.Command("ip", l.args...)
	var errb bytes.Buffer
	l.dnsmasq.Stderr = &errb
	if err := l.dnsmasq.Start(); err != nil {
		l.t.Fatalf("dnsmasq: %v", err)
	}
	testutil.WaitFor(l.t, "dnsmasq started", func() bool { return strings.Contains(l.logText(), "DHCP, IP range") })
}

// stop kills the dnsmasq this lab started (by its PID) and waits for it.
func (l *dhcpLab) stop() {
	if l.dnsmasq == nil {
		return
	}
	l.dnsmasq.Process.Kill()
	l.dnsmasq.Wait()
	l.dnsmasq = nil
}

func (l *dhcpLab) logText() string {
	b, _ := os.ReadFile(l.log)
	return string(b)
}

// count counts dnsmasq log lines of a message type (e.g. "DHCPREQUEST(")
// after byte offset from.
func (l *dhcpLab) count(from int, what string) int {
	s := l.logText()
	if from > len(s) {
		return 0
	}
	return strings.Count(s[from:], what+"(vs0)")
}

func (l *dhcpLab) nsPath(name string) string { return "/run/netns/" + name }

// srvNS is the server namespace's handle, closed at the test's end.
func (l *dhcpLab) srvNS() netns.NsHandle {
	l.t.Helper()
	ns, err := netns.GetFromName(l.srv)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { ns.Close() })
	return ns
}

// manager makes a Manager for the client namespace and runs it until the
// returned stop is called (or the test ends).
func (l *dhcpLab) manager(m config.Management, o Options) (*Manager, func()) {
	l.t.Helper()
	o.NetNS = l.nsPath(l.cli)
	if o.StateDir == "" {
		o.StateDir = filepath.Join(l.dir, "state")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(testWriter{l.t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if o.timing.Backoff == nil {
		// Retransmit fast: the lab's server is one veth away.
		o.timing.Backoff = func(a int) time.Duration { return 500 * time.Millisecond << min(a, 2) }
		o.timing.MinRenewRetry = time.Second
		o.timing.MaxRenewRetry = 2 * time.Second
	}
	mg, err := New(m, o)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mg.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				l.t.Errorf("Run: %v", err)
			}
		})
	}
	l.t.Cleanup(stop)
	return mg, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// handle is a netlink handle in the client namespace.
func (l *dhcpLab) handle() *netlink.Handle {
	l.t.Helper()
	ns, err := netns.GetFromName(l.cli)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(h.Close)
	return h
}

// addrs lists mgmt0's IPv4 addresses in the client namespace.
func (l *dhcpLab) addrs(h *netlink.Handle) []string {
	lk, err := h.LinkByName(labIf)
	if err != nil {
		l.t.Fatal(err)
	}
	as, err := h.AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	slices.Sort(out)
	return out
}

func (l *dhcpLab) defaultRoutes(h *netlink.Handle) []string {
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}, netlink.RT_FILTER_DST)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("via %v proto %d", r.Gw, r.Protocol))
	}
	return out
}

// inNS runs f on a thread in the named namespace (sockets stay there).
func inNS(t testing.TB, name string, f func()) {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	f()
}

// bound waits until the client holds a lease in BOUND and returns it.
func bound(t *testing.T, mg *Manager) *Lease {
	t.Helper()
	var ls *Lease
	testutil.WaitFor(t, "a lease in BOUND", func() bool {
		st := mg.Status()
		if len(st.Interfaces) == 1 && st.Interfaces[0].Lease != nil && st.Interfaces[0].Lease.State == stBound && st.Interfaces[0].Lease.Address != "" {
			ls = st.Interfaces[0].Lease
			return true
		}
		return false
	})
	return ls
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
