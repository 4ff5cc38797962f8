package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The classic topology's addresses, predictable so logs read easily:
//
//	front LAN 192.168.10.0/24, fd00:10::/64   client .10, lb1 .1, lb2 .2, VIP .100
//	back LAN  10.0.0.0/24                      lb1 .1, lb2 .2, be1 .11, be2 .12
const (
	ClassicVIP = "192.168.10.100"
	classicURL = "http://" + ClassicVIP + "/"
)

// ClassicOptions shape the classic two-node topology.
type ClassicOptions struct {
	Flavor Flavor
	// AdvertInterval of the VRRP instance. Default: 1s (keepalived's default).
	AdvertInterval time.Duration
	// Priorities of lb1 and lb2. Default: 150 and 100.
	Priorities [2]int
	// ClientOnBack also plugs the client into the back LAN (10.0.0.100),
	// so it can reach the backends directly (benchmarks).
	ClientOnBack bool
	// SingleServer puts only be1 into the backend (benchmarks).
	SingleServer bool
}

// ClassicTCPPort is where the classic config's TCP-mode service listens on
// the VIP (forwarding to the same backends).
const ClassicTCPPort = 8080

// Classic is client, lb1 (MASTER), lb2 (BACKUP), be1 and be2, with one VIP
// on the front LAN and an HTTP service balanced over both backends.
type Classic struct {
	Lab      *Lab
	Opts     ClassicOptions
	Front    *LAN
	Back     *LAN
	Client   *Host
	LB       [2]*Node
	BEHosts  [2]*Host
	Backends [2]*Backend
	VIP      netip.Addr
	URL      string
}

// Health-check settings of the classic backend: HAProxy's defaults.
const (
	ClassicCheckInterval = 2 * time.Second
	ClassicCheckTimeout  = time.Second
	ClassicCheckFall     = 3
	ClassicCheckRise     = 2
)

// ClassicConfig renders the halb config of lb1 (i=0) or lb2 (i=1).
func ClassicConfig(o ClassicOptions, i int) []byte {
	o = o.withDefaults()
	be2 := `      - {name: be2, address: "10.0.0.12:80"}` + "\n"
	if o.SingleServer {
		be2 = ""
	}
	name, peer, peerAddr := "lb1", "lb2", "192.168.10.2"
	if i == 1 {
		name, peer, peerAddr = "lb2", "lb1", "192.168.10.1"
	}
	return fmt.Appendf(nil, `node: {name: %s}
peers: [{name: %s, address: %s}]
vrrp:
  - name: front
    interface: eth0
    vrid: 51
    priority: %d
    advert_interval: %s
    preempt: true
    vips: [%s/24]
services:
  - name: web
    listen: ["%s:80"]
    mode: http
    default_backend: web
  - name: web-tcp
    listen: ["%s:%d"]
    mode: tcp
    default_backend: web-tcp
backends:
  - name: web
    balance: roundrobin
    health: {check: http, path: /healthz, interval: %s, timeout: %s, rise: %d, fall: %d}
    servers:
      - {name: be1, address: "10.0.0.11:80"}
%[14]s  - name: web-tcp
    health: {check: tcp, interval: %[10]s, timeout: %[11]s, rise: %[12]d, fall: %[13]d}
    servers:
      - {name: be1, address: "10.0.0.11:80"}
%[14]s`, name, peer, peerAddr, o.Priorities[i], o.AdvertInterval, ClassicVIP, ClassicVIP, ClassicVIP, ClassicTCPPort,
		ClassicCheckInterval, ClassicCheckTimeout, ClassicCheckRise, ClassicCheckFall, be2)
}

func (o ClassicOptions) withDefaults() ClassicOptions {
	if o.AdvertInterval == 0 {
		o.AdvertInterval = time.Second
	}
	if o.Priorities == [2]int{} {
		o.Priorities = [2]int{150, 100}
	}
	if o.Flavor == "" {
		o.Flavor = FlavorReference
	}
	return o
}

// NewClassic builds the classic topology in l and starts everything: the
// backends, then lb1 and lb2.
func NewClassic(l *Lab, o ClassicOptions) (*Classic, error) {
	o = o.withDefaults()
	c := &Classic{Lab: l, Opts: o, VIP: netip.MustParseAddr(ClassicVIP), URL: classicURL}
	var err error
	if c.Front, err = l.AddLAN("front"); err != nil {
		return nil, err
	}
	if c.Back, err = l.AddLAN("back"); err != nil {
		return nil, err
	}
	if c.Client, err = l.AddHost("client"); err != nil {
		return nil, err
	}
	if _, err := c.Client.Connect(c.Front, "eth0", "192.168.10.10/24", "fd00:10::10/64"); err != nil {
		return nil, err
	}
	if o.ClientOnBack {
		if _, err := c.Client.Connect(c.Back, "eth1", "10.0.0.100/24"); err != nil {
			return nil, err
		}
	}
	for i, name := range []string{"be1", "be2"} {
		h, err := l.AddHost(name)
		if err != nil {
			return nil, err
		}
		if _, err := h.Connect(c.Back, "eth0", fmt.Sprintf("10.0.0.%d/24", 11+i)); err != nil {
			return nil, err
		}
		c.BEHosts[i] = h
		b := NewBackend(name)
		b.SetRelisten(func(addr string) (net.Listener, error) { return h.Listen("tcp", addr) })
		ln, err := h.Listen("tcp", ":80")
		if err != nil {
			return nil, err
		}
		go b.Serve(ln)
		c.Backends[i] = b
	}
	for i, name := range []string{"lb1", "lb2"} {
		h, err := l.AddHost(name)
		if err != nil {
			return nil, err
		}
		if _, err := h.Connect(c.Front, "eth0", fmt.Sprintf("192.168.10.%d/24", 1+i), fmt.Sprintf("fd00:10::%d/64", 1+i)); err != nil {
			return nil, err
		}
		if _, err := h.Connect(c.Back, "eth1", fmt.Sprintf("10.0.0.%d/24", 1+i)); err != nil {
			return nil, err
		}
		if c.LB[i], err = l.StartNode(h, o.Flavor, ClassicConfig(o, i)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Close stops the in-process servers (the lab removes the rest).
func (c *Classic) Close() {
	for _, b := range c.Backends {
		if b != nil {
			b.Close()
		}
	}
	for _, n := range c.LB {
		if n != nil {
			n.Close()
		}
	}
}

// WaitConverged waits until lb1 alone holds the VIP and the client gets an
// answer through it.
func (c *Classic) WaitConverged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if !WaitFor(timeout, func() bool {
		return slices.Equal(c.VIPHolders(), []string{"lb1"})
	}) {
		return fmt.Errorf("netlab: VIP holders %v after %s, want [lb1]", c.VIPHolders(), timeout)
	}
	var last error
	if !WaitFor(time.Until(deadline), func() bool {
		_, last = c.Get()
		return last == nil
	}) {
		return fmt.Errorf("netlab: no answer through the VIP: %v", last)
	}
	return nil
}

// Get makes one request through the VIP from the client and returns the
// name of the backend that answered.
func (c *Classic) Get() (string, error) {
	tr := &http.Transport{DialContext: c.Client.Dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	resp, err := hc.Get(c.URL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return resp.Header.Get("X-Backend"), nil
}

// VIPHolders names the nodes whose host has the VIP configured.
func (c *Classic) VIPHolders() []string {
	var out []string
	for _, n := range c.LB {
		if n.HoldsVIP(c.VIP) {
			out = append(out, n.Host.Name)
		}
	}
	return out
}

// LiveVIPHolders names the VIP holders whose daemons are running (a node
// killed by SIGKILL keeps a stale VIP: nothing cleaned it up).
func (c *Classic) LiveVIPHolders() []string {
	var out []string
	for _, n := range c.LB {
		if n.Running() && n.HoldsVIP(c.VIP) {
			out = append(out, n.Host.Name)
		}
	}
	return out
}

// ARPOwner names the node whose MAC the client's ARP entry for the VIP
// holds ("none" without an entry, the MAC itself when it is nobody's).
func (c *Classic) ARPOwner() string {
	mac, _, err := c.Client.Neighbor("eth0", c.VIP)
	if err != nil || len(mac) == 0 {
		return "none"
	}
	for _, n := range c.LB {
		if n.Host.Iface("eth0").MAC.String() == mac.String() {
			return n.Host.Name
		}
	}
	return strings.ToLower(mac.String())
}

// StartProbe starts the client's probe against the VIP: new connections,
// 200 requests/s, 1s timeout.
func (c *Classic) StartProbe(ctx context.Context, keepAlive bool) *Probe {
	return StartProbe(ctx, ProbeConfig{URL: c.URL, Rate: 200, KeepAlive: keepAlive, Timeout: time.Second, Dial: c.Client.Dial})
}

// MasterDownInterval is RFC 5798's 3 x advert + skew for a backup of the
// given priority: how long a backup waits before taking over.
func MasterDownInterval(advert time.Duration, priority int) time.Duration {
	skew := time.Duration(256-priority) * advert / 256
	return 3*advert + skew
}
