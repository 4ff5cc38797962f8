package netlab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/template"
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
	// IPv6 puts the VIP and the services on fd00:10::100 instead.
	IPv6 bool
	// Unicast sends adverts to the peer's address instead of multicast.
	Unicast bool
	// Version is the VRRP version (2 or 3). Default: 3.
	Version int
	// UseVMAC gives the VIP the virtual MAC 00:00:5e:00:01:33 (VRID 51)
	// on a macvlan (use_vmac).
	UseVMAC bool
	// DualMaster adds a second instance (VIP2, vrid 52) with the
	// priorities swapped: each node is MASTER of one VIP.
	DualMaster bool
	// TrackServices makes the VRRP instance track the http service "web"
	// (weight -60): a node whose checks see no healthy backend drops to
	// 90 and the peer (100) takes over.
	TrackServices bool
	// TrackBackLink makes the VRRP instance track the link to the
	// backends, eth1 (keepalived's track_interface, weight 0): a node
	// whose back link goes down enters FAULT and the peer takes over
	// (not with TrackServices, which takes its place).
	TrackBackLink bool
	// ObserveLayer7 makes the http backend observe responses (health
	// observe: layer7; HAProxy's observe layer7 error-limit fall
	// on-error mark-down).
	ObserveLayer7 bool
	// NodeFlavors overrides Flavor per node (interoperability: one halb
	// node and one keepalived node).
	NodeFlavors [2]Flavor
	// ObserveListen is observe.listen of both nodes (":8404"; benchmarks
	// scrape it). Default: off.
	ObserveListen string
	// AccessLogTo turns on the access log of both services and sends it
	// to this UDP syslog server (host:port; benchmarks). Default: off.
	AccessLogTo string
	// Servers, when > 0, gives the http backend "web" this many servers,
	// s1..sN, all at be1's address (benchmarks: the cost of balancing
	// over many servers, not of more backend processes). Default: 0, the
	// classic be1 and be2 (be1 alone with SingleServer).
	Servers int
	// Routes adds this many exact host routes to the http service, host
	// r<i>.bench to backend "rb<i mod RouteBackends>" (each with be1 as
	// its one server); other hosts go to "web" (benchmarks: the cost of
	// routing). Default: none.
	Routes int
	// NoChecks turns the http backends' health checks off (check: none):
	// a benchmark of routing and balancing measures those alone.
	NoChecks bool
	// TLSDir, when set, adds two https services over the http backend
	// "web": web-tls on VIP:ClassicTLSPort with the ECDSA P-256
	// certificate TLSDir/ecdsa.crt and .key, web-tls-rsa on
	// VIP:ClassicTLSRSAPort with the RSA 2048 one TLSDir/rsa.crt and .key
	// (WriteBenchCerts makes them; benchmarks). Default: none.
	TLSDir string
	// Backups adds to the http backend "web", after be1 and be2, the
	// backup servers bk1 (be1's host, port 81) and bk2 (be2's host, port
	// 81) and the disabled server off (be1's host, port 82), each a
	// backend of its own in Classic.Extra. Default: none.
	Backups bool
}

// The https services' ports (ClassicOptions.TLSDir).
const (
	ClassicTLSPort    = 443
	ClassicTLSRSAPort = 8443
)

// RouteBackends is how many backends the Routes share.
const RouteBackends = 10

// RouteHost is the host of route i (ClassicOptions.Routes).
func RouteHost(i int) string { return fmt.Sprintf("r%d.bench", i) }

// flavor of node i.
func (o ClassicOptions) flavor(i int) Flavor {
	if o.NodeFlavors[i] != "" {
		return o.NodeFlavors[i]
	}
	return o.Flavor
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
	// Extra are the servers of ClassicOptions.Backups by name.
	Extra map[string]*Backend
	VIP   netip.Addr
	URL   string
}

// Health-check settings of the classic backend: HAProxy's defaults.
const (
	ClassicCheckInterval = 2 * time.Second
	ClassicCheckTimeout  = time.Second
	ClassicCheckFall     = 3
	ClassicCheckRise     = 2
)

// ClassicVIP2 is the second VIP of the dual-master variant, MASTER on lb2.
const ClassicVIP2 = "192.168.10.101"

// ClassicVIP6 is the VIP of the IPv6 variant.
const ClassicVIP6 = "fd00:10::100"

var classicTemplate = template.Must(template.New("halb.yaml").Parse(`node: {name: {{.Name}}}
peers: [{name: {{.Peer}}, address: {{.PeerAddr}}}]
vrrp:
  - name: front
    interface: eth0
    vrid: 51
    version: {{.Version}}
    priority: {{.Priority}}
    advert_interval: {{.Advert}}
    preempt: true
    vips: ["{{.VIP}}/{{.Bits}}"]
{{- if .Unicast}}
    unicast_peers: [{{.PeerAddr}}]
{{- end}}
{{- if .UseVMAC}}
    use_vmac: true
{{- end}}
{{- if .TrackServices}}
    track: {services: [web], weight: -60}
{{- else if .TrackBackLink}}
    track: {interfaces: [eth1]}
{{- end}}
{{- if .Dual}}
  - name: front-b
    interface: eth0
    vrid: 52
    priority: {{.Priority2}}
    advert_interval: {{.Advert}}
    preempt: true
    vips: ["{{.VIP2}}/24"]
{{- end}}
services:
  - name: web
    listen: ["{{.Listen}}:80"{{if .Dual}}, "{{.VIP2}}:80"{{end}}]
    mode: http
    default_backend: web
    response_headers: {X-LB-Node: {{.Name}}}
{{- if .Routes}}
    routes:
{{- range .Routes}}
      - {host: {{.Host}}, backend: {{.Backend}}}
{{- end}}
{{- end}}
{{- if .AccessLogTo}}
    access_log: true
{{- end}}
  - name: web-tcp
    listen: ["{{.Listen}}:{{.TCPPort}}"]
    mode: tcp
    default_backend: web-tcp
{{- if .AccessLogTo}}
    access_log: true
{{- end}}
{{- range .TLS}}
  - name: {{.Name}}
    listen: ["{{$.Listen}}:{{.Port}}"]
    mode: http
    default_backend: web
    tls: {certificates: [{name: {{.Cert}}, cert: {{.Dir}}/{{.Cert}}.crt, key: {{.Dir}}/{{.Cert}}.key}]}
{{- end}}
backends:
{{- range $b := .Backends}}
  - name: {{$b.Name}}
    health: {check: {{$b.Check}}{{if ne $b.Check "none"}}{{if eq $b.Check "http"}}, path: /healthz{{end}}, interval: {{$.Check.Interval}}, timeout: {{$.Check.Timeout}}, rise: {{$.Check.Rise}}, fall: {{$.Check.Fall}}{{if and $.Observe7 (eq $b.Check "http")}}, observe: layer7{{end}}{{end}}}
    servers:
{{- range $b.Servers}}
      - {name: {{.Name}}, address: "{{.Addr}}"{{if .Backup}}, backup: true{{end}}{{if .Disabled}}, disabled: true{{end}}}
{{- end}}
{{- end}}
{{- if or .ObserveListen .AccessLogTo}}
observe:
{{- if .ObserveListen}}
  listen: "{{.ObserveListen}}"
{{- end}}
{{- if .AccessLogTo}}
  logs: [{name: access, to: syslog, address: "{{.AccessLogTo}}", transport: udp}]
{{- end}}
{{- end}}
`))

// ClassicConfig renders the halb config of lb1 (i=0) or lb2 (i=1).
func ClassicConfig(o ClassicOptions, i int) []byte {
	o = o.withDefaults()
	type server struct {
		Name, Addr       string
		Backup, Disabled bool
	}
	type backend struct {
		Name, Check string
		Servers     []server
	}
	type route struct{ Host, Backend string }
	servers := []server{{Name: "be1", Addr: "10.0.0.11:80"}, {Name: "be2", Addr: "10.0.0.12:80"}}
	if o.SingleServer {
		servers = servers[:1]
	}
	httpCheck := "http"
	if o.NoChecks {
		httpCheck = "none"
	}
	backends := []backend{{"web", httpCheck, servers}, {"web-tcp", "tcp", servers}}
	if o.Backups {
		backends[0].Servers = append(slices.Clip(servers), server{Name: "bk1", Addr: "10.0.0.11:81", Backup: true},
			server{Name: "bk2", Addr: "10.0.0.12:81", Backup: true}, server{Name: "off", Addr: "10.0.0.11:82", Disabled: true})
	}
	if o.Servers > 0 {
		backends[0].Servers = nil
		for k := range o.Servers {
			backends[0].Servers = append(backends[0].Servers, server{Name: fmt.Sprintf("s%d", k+1), Addr: servers[0].Addr})
		}
	}
	var routes []route
	if o.Routes > 0 {
		for k := range RouteBackends {
			backends = append(backends, backend{fmt.Sprintf("rb%d", k), httpCheck, servers[:1]})
		}
		for k := range o.Routes {
			routes = append(routes, route{RouteHost(k), fmt.Sprintf("rb%d", k%RouteBackends)})
		}
	}
	d := map[string]any{
		"Name": "lb1", "Peer": "lb2", "PeerAddr": "192.168.10.2",
		"Priority": o.Priorities[i], "Advert": o.AdvertInterval, "Version": o.Version,
		"VIP": ClassicVIP, "Bits": 24, "Listen": ClassicVIP, "Unicast": o.Unicast, "UseVMAC": o.UseVMAC, "TrackServices": o.TrackServices,
		"TrackBackLink": o.TrackBackLink,
		"Observe7":      o.ObserveLayer7,
		"Dual":          o.DualMaster, "VIP2": ClassicVIP2, "Priority2": o.Priorities[1-i],
		"TCPPort":  ClassicTCPPort,
		"Backends": backends, "Routes": routes,
		"Check": map[string]any{"Interval": ClassicCheckInterval, "Timeout": ClassicCheckTimeout,
			"Rise": ClassicCheckRise, "Fall": ClassicCheckFall},
		"ObserveListen": o.ObserveListen, "AccessLogTo": o.AccessLogTo,
	}
	if i == 1 {
		d["Name"], d["Peer"], d["PeerAddr"] = "lb2", "lb1", "192.168.10.1"
	}
	if o.IPv6 {
		d["VIP"], d["Bits"], d["Listen"] = ClassicVIP6, 64, "["+ClassicVIP6+"]"
		if i == 0 {
			d["PeerAddr"] = "fd00:10::2"
		} else {
			d["PeerAddr"] = "fd00:10::1"
		}
	}
	type tlsService struct {
		Name, Cert, Dir string
		Port            int
	}
	if o.TLSDir != "" {
		d["TLS"] = []tlsService{{"web-tls", "ecdsa", o.TLSDir, ClassicTLSPort}, {"web-tls-rsa", "rsa", o.TLSDir, ClassicTLSRSAPort}}
	}
	var b bytes.Buffer
	if err := classicTemplate.Execute(&b, d); err != nil {
		panic(err) // the template and its data are fixed
	}
	return b.Bytes()
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
	if o.Version == 0 {
		o.Version = 3
	}
	return o
}

// NewClassic builds the classic topology in l and starts everything: the
// backends, then lb1 and lb2.
func NewClassic(l *Lab, o ClassicOptions) (*Classic, error) {
	o = o.withDefaults()
	c := &Classic{Lab: l, Opts: o, VIP: netip.MustParseAddr(ClassicVIP), URL: classicURL}
	if o.IPv6 {
		c.VIP, c.URL = netip.MustParseAddr(ClassicVIP6), "http://["+ClassicVIP6+"]/"
	}
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
		if c.Backends[i], err = h.ServeBackend(name, ":80"); err != nil {
			return nil, err
		}
	}
	if o.Backups {
		c.Extra = map[string]*Backend{}
		for _, x := range []struct {
			name string
			host int
			addr string
		}{{"bk1", 0, ":81"}, {"bk2", 1, ":81"}, {"off", 0, ":82"}} {
			if c.Extra[x.name], err = c.BEHosts[x.host].ServeBackend(x.name, x.addr); err != nil {
				return nil, err
			}
		}
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
		if c.LB[i], err = l.StartNode(h, o.flavor(i), ClassicConfig(o, i)); err != nil {
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
	for _, b := range c.Extra {
		b.Close()
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
func (c *Classic) Get() (string, error) { return c.Client.GetBackend(c.URL) }

// VIPHolders names the nodes whose host has the VIP configured.
func (c *Classic) VIPHolders() []string { return c.HoldersOf(c.VIP) }

// HoldersOf names the nodes whose host has vip configured.
func (c *Classic) HoldersOf(vip netip.Addr) []string {
	var out []string
	for _, n := range c.LB {
		if n.HoldsVIP(vip) {
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
