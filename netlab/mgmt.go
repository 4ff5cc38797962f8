package netlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// The management network's servers, as a site runs them: Debian's dnsmasq
// (DHCP) and chronyd (NTP) on a router host, and a small NTP server of our
// own that lies about the time. halb's DHCP client and NTP client talk to
// them from a halbd node (mgmt_test.go).

// MgmtLacks says why the management network scenarios cannot run here
// (dnsmasq or chronyd missing), or "".
func MgmtLacks() string {
	for _, bin := range []string{"dnsmasq", "chronyd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Sprintf("%s is not installed (scripts/deps.sh installs dnsmasq-base and chrony)", bin)
		}
	}
	return ""
}

// Dnsmasq is Debian's dnsmasq serving DHCP on one interface of a host,
// logging every DHCP exchange (--log-dhcp) to Log.
type Dnsmasq struct {
	Proc   *Process
	Log    string
	ifname string
}

// StartDnsmasq runs dnsmasq (DHCP only: no DNS, --port=0) on the host's
// interface ifname with the options given (--dhcp-range=...,
// --dhcp-option=...), and waits until it serves.
func (h *Host) StartDnsmasq(ifname string, opts ...string) (*Dnsmasq, error) {
	dir := filepath.Join(h.lab.Dir, h.Name+"-dnsmasq")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &Dnsmasq{Log: filepath.Join(dir, "dhcp.log"), ifname: ifname}
	argv := append([]string{"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
		"--user=root", "--group=root", "--interface=" + ifname, "--bind-interfaces", "--log-dhcp",
		"--log-facility=" + d.Log, "--dhcp-leasefile=" + filepath.Join(dir, "leases"),
		"--pid-file=" + filepath.Join(dir, "pid"), "--dhcp-authoritative"}, opts...)
	p, err := h.Start("dnsmasq", argv...)
	if err != nil {
		return nil, err
	}
	d.Proc = p
	if !WaitFor(10*time.Second, func() bool { return strings.Contains(d.LogText(), "DHCP, IP range") || !p.Running() }) || !p.Running() {
		return nil, fmt.Errorf("netlab: %s: dnsmasq did not start: %s %s", h.Name, p.Log(), d.LogText())
	}
	return d, nil
}

// LogText is dnsmasq's DHCP log so far.
func (d *Dnsmasq) LogText() string {
	b, _ := os.ReadFile(d.Log)
	return string(b)
}

// Count counts the log lines of a DHCP message type (DHCPDISCOVER,
// DHCPREQUEST, DHCPACK, DHCPRELEASE, ...) from byte offset from on.
func (d *Dnsmasq) Count(from int, msg string) int {
	s := d.LogText()
	if from > len(s) {
		return 0
	}
	return strings.Count(s[from:], msg+"("+d.ifname+")")
}

// StartChronyd runs Debian's chronyd as a local stratum-8 NTP server on
// addr (port 123) of the host, never touching the clock (-x), with no
// command port and its files in the lab's directory, and waits until it
// answers.
func (h *Host) StartChronyd(addr string) (*Process, error) {
	dir := filepath.Join(h.lab.Dir, h.Name+"-chronyd-"+addr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "chrony.conf")
	body := fmt.Sprintf("local stratum 8\nallow\nbindaddress %s\nport 123\ncmdport 0\npidfile %s\ndriftfile %s\n",
		addr, filepath.Join(dir, "chronyd.pid"), filepath.Join(dir, "drift"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return nil, err
	}
	// -u root: chronyd would drop to _chrony, who cannot write dir.
	p, err := h.Start("chronyd-"+addr, "chronyd", "-f", conf, "-d", "-x", "-u", "root")
	if err != nil {
		return nil, err
	}
	var last error
	if !WaitFor(10*time.Second, func() bool {
		_, last = h.NTPStratum(addr + ":123")
		return last == nil || !p.Running()
	}) || last != nil {
		return nil, fmt.Errorf("netlab: %s: chronyd on %s does not answer: %v: %s", h.Name, addr, last, p.Log())
	}
	return p, nil
}

// ntpEpoch is 1900-01-01, where NTP era 0 starts.
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

func ntpStamp(t time.Time) uint64 {
	d := t.Sub(ntpEpoch)
	return uint64(d/time.Second)<<32 | uint64(d%time.Second)<<32/uint64(time.Second)
}

// NTPStratum sends one NTPv4 client request from the host to addr
// (host:port) and returns the stratum of the answer.
func (h *Host) NTPStratum(addr string) (int, error) {
	var stratum int
	err := h.Do(func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		req := make([]byte, 48)
		req[0] = 4<<3 | 3 // version 4, client
		binary.BigEndian.PutUint64(req[40:], ntpStamp(time.Now()))
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Write(req); err != nil {
			return err
		}
		resp := make([]byte, 128)
		n, err := c.Read(resp)
		if err != nil {
			return err
		}
		if n < 48 || resp[0]&7 != 4 || string(resp[24:32]) != string(req[40:48]) {
			return fmt.Errorf("netlab: %s: not an answer to our NTP request (%d bytes)", addr, n)
		}
		stratum = int(resp[1])
		return nil
	})
	return stratum, err
}

// ServeNTP answers NTPv4 client requests on addr:123 of the host with a
// clock skew ahead of the real one, at stratum 2: a liar for skew 3s. It
// stops when the lab ends.
func (h *Host) ServeNTP(addr string, skew time.Duration) error {
	var c *net.UDPConn
	if err := h.Do(func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 123)))
		return err
	}); err != nil {
		return fmt.Errorf("netlab: %s: NTP server on %s: %w", h.Name, addr, err)
	}
	h.mu.Lock()
	h.closers = append(h.closers, c)
	h.mu.Unlock()
	go func() { // owned by the socket: it ends when the lab closes it
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			rx := time.Now().Add(skew)
			if n < 48 || buf[0]&7 != 3 {
				continue
			}
			p := make([]byte, 48)
			p[0] = 4<<3 | 4 // no leap warning, version 4, server
			p[1] = 2        // stratum
			p[2] = 6
			p[3] = 0xec // precision 2^-20
			binary.BigEndian.PutUint32(p[8:], 0x10)
			copy(p[12:], "LIAR")
			binary.BigEndian.PutUint64(p[16:], ntpStamp(rx.Add(-time.Second)))
			copy(p[24:32], buf[40:48]) // origin: the client's transmit time
			binary.BigEndian.PutUint64(p[32:], ntpStamp(rx))
			binary.BigEndian.PutUint64(p[40:], ntpStamp(time.Now().Add(skew)))
			c.WriteToUDP(p, from)
		}
	}()
	return nil
}

// AddrEvent is one RTM_NEWADDR or RTM_DELADDR seen in a host.
type AddrEvent struct {
	At     time.Time
	New    bool
	Prefix netip.Prefix
}

// AddrWatch records every address event of a host's namespace.
type AddrWatch struct {
	mu     sync.Mutex
	events []AddrEvent
	errs   []error
	done   chan struct{}
	wg     sync.WaitGroup
}

// WatchAddrs starts recording the host's address events until Close.
func (h *Host) WatchAddrs() (*AddrWatch, error) {
	w := &AddrWatch{done: make(chan struct{})}
	ch := make(chan netlink.AddrUpdate, 1024)
	ns := h.ns
	err := netlink.AddrSubscribeWithOptions(ch, w.done, netlink.AddrSubscribeOptions{Namespace: &ns,
		ErrorCallback: func(err error) {
			select {
			case <-w.done: // Close closed the socket under the reader
				return
			default:
			}
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
		}})
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: watch addresses: %w", h.Name, err)
	}
	w.wg.Go(func() {
		for u := range ch {
			a, _ := netip.AddrFromSlice(u.LinkAddress.IP)
			bits, _ := u.LinkAddress.Mask.Size()
			w.mu.Lock()
			w.events = append(w.events, AddrEvent{At: time.Now(), New: u.NewAddr, Prefix: netip.PrefixFrom(a.Unmap(), bits)})
			w.mu.Unlock()
		}
	})
	return w, nil
}

// Events returns the events recorded so far (and the subscription's
// errors: an overrun would hide events).
func (w *AddrWatch) Events() ([]AddrEvent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]AddrEvent(nil), w.events...), errors.Join(w.errs...)
}

// Close ends the subscription.
func (w *AddrWatch) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

// Halbctl runs halbctl against the node's halbd and returns its output.
func (n *Node) Halbctl(ctx context.Context, args ...string) (string, error) {
	ctl, err := halbctl()
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, ctl, append([]string{"-socket", filepath.Join(n.Dir, "halb.sock")}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netlab: halbctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
