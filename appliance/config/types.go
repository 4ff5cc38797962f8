// Package config holds halb's configuration: the types of halb.yaml, their
// defaults, strict decoding with line numbers, validation that reports every
// problem at once with its field path and line, atomic saving, and a diff of
// two configs.
//
// The pipeline is raw → checked: Parse decodes strictly (an unknown key is an
// error naming it and its line), fills defaults for keys that are absent, and
// validates without side effects. Only a config that passed Parse is handed
// to the daemon's components.
package config

import (
	"fmt"
	"slices"
	"time"
)

// Config is the whole of halb.yaml. Every field has a safe default; the zero
// Config is not valid because node.name is required.
type Config struct {
	// Node describes this machine. Required: node.name. A node part:
	// never copied to a peer (cluster.go).
	Node Node `yaml:"node" json:"node" halb:"node"`
	// Time configures clock synchronisation (used by the timesync component).
	Time Time `yaml:"time,omitempty" json:"time"`
	// Peers are the other halb nodes of this cluster; pairing (halbctl
	// pair) adds them. A node part: each node lists the others. Default:
	// none.
	Peers []Peer `yaml:"peers,omitempty" json:"peers" halb:"node"`
	// VRRP lists the floating-address instances. Default: none.
	VRRP []VRRPInstance `yaml:"vrrp,omitempty" json:"vrrp"`
	// VRRPSyncGroups are sets of VRRP instances that change state together
	// (keepalived's vrrp_sync_group): a FAULT in one member puts every
	// member in FAULT, members become MASTER only together, and a member
	// that steps down to BACKUP takes the others with it. Default: none.
	VRRPSyncGroups []VRRPSyncGroup `yaml:"vrrp_sync_groups,omitempty" json:"vrrp_sync_groups"`
	// Services are the listeners that accept client traffic. Default: none.
	Services []Service `yaml:"services,omitempty" json:"services"`
	// Backends are the pools of servers that services forward to. Default: none.
	Backends []Backend `yaml:"backends,omitempty" json:"backends"`
	// Console configures the console on the node's screen and serial
	// port. Default: see Console.
	Console Console `yaml:"console,omitempty" json:"console"`
	// Observe configures the metrics and stats listener and where logs go.
	// Default: no listener, logs only to the journal (or stderr).
	Observe Observe `yaml:"observe,omitempty" json:"observe"`
	// BGP announces VIPs to routers (active/standby or active/active ECMP
	// over N nodes) instead of, or beside, VRRP. Default: off (no asn).
	BGP BGP `yaml:"bgp,omitempty" json:"bgp"`
}

// BGP configures the BGP speaker that announces VIPs as host routes
// (appliance/bgp, built on GoBGP).
type BGP struct {
	// ASN is this node's autonomous system number, 1..4294967294.
	// Required when bgp is set.
	ASN int `yaml:"asn,omitempty" json:"asn,omitempty"`
	// RouterID is this node's BGP identifier, an IPv4 address unique
	// among the speakers. A node part. Required when bgp is set.
	RouterID string `yaml:"router_id,omitempty" json:"router_id,omitempty" halb:"node"`
	// ListenPort is the TCP port on which halb accepts sessions; 0 does
	// not listen (halb dials its neighbors). Default: 0.
	ListenPort int `yaml:"listen_port,omitempty" json:"listen_port,omitempty"`
	// Active makes this node the one preferred for the active_standby
	// VIPs: the others announce them with a longer AS path. A node part.
	// Default: false.
	Active bool `yaml:"active,omitempty" json:"active,omitempty" halb:"node"`
	// Neighbors are the routers halb peers with. At least one is required.
	Neighbors []BGPNeighbor `yaml:"neighbors,omitempty" json:"neighbors"`
	// Announce lists the VIPs announced and when. Default: none.
	Announce []BGPAnnounce `yaml:"announce,omitempty" json:"announce"`
	// DrainTime bounds a maintenance drain: how long the VIPs stay
	// announced (with GRACEFUL_SHUTDOWN, or while new connections are
	// handed to drain_to) before they are withdrawn. Default: 30s.
	DrainTime Duration `yaml:"drain_time,omitempty" json:"drain_time"`
	// DrainTo lists other halb nodes on this node's segment (their
	// addresses) that take this node's new connections while it drains,
	// and the connections the router moves back to it after the drain,
	// so that no open connection is reset. A node part. Default: none
	// (drain with GRACEFUL_SHUTDOWN).
	DrainTo []string `yaml:"drain_to,omitempty" json:"drain_to,omitempty" halb:"node"`
}

// Enabled reports whether the config sets bgp at all.
func (b *BGP) Enabled() bool {
	return b.ASN != 0 || b.RouterID != "" || b.ListenPort != 0 || b.Active || len(b.Neighbors) > 0 || len(b.Announce) > 0 ||
		b.DrainTime != 0 || len(b.DrainTo) > 0
}

// BGPNeighbor is one BGP peer (a router).
type BGPNeighbor struct {
	// Address is the neighbor's IP address. Required, unique.
	Address string `yaml:"address" json:"address"`
	// ASN is the neighbor's AS number, 1..4294967294 (equal to bgp.asn
	// for iBGP). Required.
	ASN int `yaml:"asn" json:"asn"`
	// Password is the TCP MD5 signature key (RFC 2385), at most 80
	// bytes. Default: none.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// HoldTime is the hold time offered, whole seconds: 0 (no keepalives)
	// or 3s..65535s. Default: 9s.
	// (nil: not set, so that an explicit 0s is kept when a config is
	// written back; Hold reads it).
	HoldTime *Duration `yaml:"hold_time,omitempty" json:"hold_time"`
	// Keepalive is the keepalive interval, whole seconds, less than the
	// hold time (0 with a hold time of 0). Default: a third of hold_time.
	Keepalive Duration `yaml:"keepalive,omitempty" json:"keepalive"`
	// Multihop is the TTL of the session's packets, 1..255; 1 is a
	// directly connected neighbor. Default: 1.
	Multihop int `yaml:"multihop,omitempty" json:"multihop"`
	// BFD runs a BFD session (RFC 5880/5881, single hop) beside the BGP
	// session: a neighbor that stops answering is down after
	// bfd_interval * bfd_multiplier instead of the hold time. Default:
	// false.
	BFD bool `yaml:"bfd,omitempty" json:"bfd,omitempty"`
	// BFDInterval is the interval between two BFD packets, sent and
	// expected, 10ms..60s. Default: 300ms.
	BFDInterval Duration `yaml:"bfd_interval,omitempty" json:"bfd_interval,omitempty"`
	// BFDMultiplier is how many packets missed make BFD down, 2..255.
	// Default: 3.
	BFDMultiplier int `yaml:"bfd_multiplier,omitempty" json:"bfd_multiplier,omitempty"`
}

// BGPAnnounce is one VIP announced by BGP.
type BGPAnnounce struct {
	// VIP is the host prefix announced (192.168.10.100/32 or
	// 2001:db8::1/128); halbd puts its address on the loopback. Not a
	// VRRP VIP. Required, unique.
	VIP string `yaml:"vip" json:"vip"`
	// Mode is active_active (every node announces the same path; routers
	// spread flows by ECMP) or active_standby (the node with bgp.active
	// announces the best path, the others a longer one). Default:
	// active_active.
	Mode string `yaml:"mode,omitempty" json:"mode"`
	// When is when_healthy (announce while every service in Services has
	// its min_healthy servers up) or always. Default: when_healthy.
	When string `yaml:"when,omitempty" json:"when"`
	// Services are the services whose health the VIP follows. Default:
	// every service listening on the VIP.
	Services []string `yaml:"services,omitempty" json:"services"`
	// StandbyPrepend is how many times a standby node (active_standby,
	// bgp.active false) prepends its ASN, 1..10. Default: 3.
	StandbyPrepend int `yaml:"standby_prepend,omitempty" json:"standby_prepend"`
}

// Observe configures what an operator watches: Prometheus metrics, the
// stats page and the log targets.
type Observe struct {
	// Listen is the host:port of the read-only HTTP listener serving
	// /metrics, /stats and /stats;json. An empty host (":8404") listens on
	// every address of the node but refuses connections to a VIP. A node
	// part: each node has its own management address. Default: "" (off).
	Listen string `yaml:"listen,omitempty" json:"listen,omitempty" halb:"node"`
	// Users may read the listener with HTTP basic auth; when there are
	// none, no authentication is asked. Default: none.
	Users []ObserveUser `yaml:"users,omitempty" json:"users"`
	// Allow lists the client networks (CIDR, or a single address) that may
	// connect; others get 403. Default: none (any client).
	Allow []string `yaml:"allow,omitempty" json:"allow"`
	// Logs are the log targets: files, syslog servers, the journal. Each
	// gets the streams it names. Default: none.
	Logs []LogTarget `yaml:"logs,omitempty" json:"logs"`
}

// ObserveUser is a user of the observe listener.
type ObserveUser struct {
	// Name is the basic-auth user name. Required, unique.
	Name string `yaml:"name" json:"name"`
	// PasswordHash is the bcrypt hash of the password ("$2a$", "$2b$" or
	// "$2y$"; `htpasswd -nbB` or `halbctl observe hash` make one).
	// Required.
	PasswordHash string `yaml:"password_hash" json:"password_hash"`
}

// LogTarget is one place logs are written to.
type LogTarget struct {
	// Name identifies the target in status and metrics. Default: its
	// position ("log0", "log1", ...).
	Name string `yaml:"name,omitempty" json:"name"`
	// To is file, syslog or journald. Required.
	To string `yaml:"to" json:"to"`
	// Streams are what the target gets: "access" (one line per request
	// or tcp connection of services with access_log) and "daemon" (halbd's
	// own log: VRRP, checks, config). Default: [access].
	Streams []string `yaml:"streams,omitempty" json:"streams"`
	// Path is the file written (to: file). Required there.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// MaxSize is the size in bytes at which the file is rotated to
	// PATH.1 (PATH.1 to PATH.2, ...). Default: 10485760 (10 MiB).
	MaxSize int64 `yaml:"max_size,omitempty" json:"max_size,omitempty"`
	// Keep is how many rotated files are kept. Default: 5 (nil: not set,
	// so that an explicit 0 is kept when a config is written back; Kept
	// reads it).
	Keep *int `yaml:"keep,omitempty" json:"keep,omitempty"`
	// Address is the syslog server's host:port (to: syslog); port 514 by
	// custom. Required there.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Transport is udp or tcp (RFC 5425-style octet counting over TCP,
	// RFC 6587). Default: udp.
	Transport string `yaml:"transport,omitempty" json:"transport,omitempty"`
	// Facility is the syslog facility: kern, user, daemon, local0..local7
	// and the other RFC 5424 names. Default: local0.
	Facility string `yaml:"facility,omitempty" json:"facility,omitempty"`
	// Tag is the syslog APP-NAME (and the journal's SYSLOG_IDENTIFIER).
	// Default: halb.
	Tag string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Queue is how many lines wait for a slow target before new ones are
	// dropped (and counted): logging never blocks traffic. 16..1048576.
	// Default: 4096.
	Queue int `yaml:"queue,omitempty" json:"queue,omitempty"`
}

// Console configures the console (halb-console on tty1 and ttyS0).
type Console struct {
	// RequirePassword makes every console action that changes state ask
	// for the console admin password (set by the console's setup wizard or
	// `halbctl console password`); false is for labs. Viewing never asks.
	// Default: true (nil: absent).
	RequirePassword *bool `yaml:"require_password,omitempty" json:"require_password,omitempty"`
}

// PasswordRequired reports whether console actions ask for the console
// password: require_password, true when absent.
func (c Console) PasswordRequired() bool { return c.RequirePassword == nil || *c.RequirePassword }

// Node describes this machine.
type Node struct {
	// Name is this node's name, unique within the cluster. Required.
	Name string `yaml:"name" json:"name"`
	// Management is the management network interface. Default: unset (the
	// interface is left as the operating system configured it; with
	// manage_system, every wired interface takes DHCP until it is set).
	Management Management `yaml:"management,omitempty" json:"management"`
	// ManageSystem lets halbd set the host name from name, write
	// /etc/hosts (this node and its peers) and /etc/resolv.conf. The image
	// sets it; leave it false on a dev machine or in a lab, where the
	// host's files are not halbd's. Default: false.
	ManageSystem bool `yaml:"manage_system,omitempty" json:"manage_system,omitempty"`
	// PeerPort is the TCP port of the peer link (pairing, then mutual TLS
	// with the paired nodes) on every address of this node. It is open
	// only while a pairing code is active or a peer is paired. Default:
	// 7900.
	PeerPort int `yaml:"peer_port,omitempty" json:"peer_port"`
}

// Management configures the management interface: DHCP or a static address.
type Management struct {
	// Interface is the management link, e.g. eth0. Required when dhcp or
	// address is set.
	Interface string `yaml:"interface,omitempty" json:"interface,omitempty"`
	// DHCP takes the address from a DHCP server. Default: false.
	DHCP bool `yaml:"dhcp,omitempty" json:"dhcp,omitempty"`
	// Address is a static address in CIDR form, e.g. 172.16.0.1/16. Not
	// together with dhcp. Default: none.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Gateway is the default gateway for a static address. Default: none.
	Gateway string `yaml:"gateway,omitempty" json:"gateway,omitempty"`
	// DNS lists name servers for a static address. Default: none.
	DNS []string `yaml:"dns,omitempty" json:"dns,omitempty"`
}

// Time configures clock synchronisation.
type Time struct {
	// Servers are NTP servers (addresses or host names). Default: none.
	Servers []string `yaml:"servers,omitempty" json:"servers"`
	// MaxOffset is the clock offset above which the node raises the clock
	// alarm. Default: 500ms.
	MaxOffset Duration `yaml:"max_offset,omitempty" json:"max_offset"`
	// SetClock lets halbd correct the system clock (step or slew). The
	// image sets it; leave it false on a dev machine or in a lab: the
	// offset is then only measured. Default: false.
	SetClock bool `yaml:"set_clock,omitempty" json:"set_clock,omitempty" halb:"node"`
	// StepThreshold is the offset above which the clock is stepped at
	// once; below it the clock is slewed. Default: 128ms (ntpd's).
	StepThreshold Duration `yaml:"step_threshold,omitempty" json:"step_threshold"`
	// MinPoll and MaxPoll bound the poll interval: it starts at min_poll
	// and doubles up to max_poll while the clock stays stable. 1s..36h.
	// Defaults: 64s and 1024s.
	MinPoll Duration `yaml:"min_poll,omitempty" json:"min_poll"`
	MaxPoll Duration `yaml:"max_poll,omitempty" json:"max_poll"`
}

// Peer is another halb node of this cluster.
type Peer struct {
	// Name is the peer's node.name. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Address is the peer's management IP address. Required.
	Address string `yaml:"address" json:"address"`
	// Port is the peer's peer_port. Default: 7900.
	Port int `yaml:"port,omitempty" json:"port"`
	// Fingerprint pins the peer's certificate: "sha256:" and the hex
	// SHA-256 of its DER bytes. Pairing sets it; a peer without one is
	// not paired and nothing is exchanged with it. Default: none.
	Fingerprint string `yaml:"fingerprint,omitempty" json:"fingerprint,omitempty"`
}

// VRRPInstance is one virtual router: a VRID on an interface holding VIPs.
type VRRPInstance struct {
	// Name identifies the instance in status, logs and tracking. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Interface carries the adverts and the VIPs. Required.
	Interface string `yaml:"interface" json:"interface"`
	// VRID is the virtual router id, 1..255, unique per interface. Required.
	VRID int `yaml:"vrid" json:"vrid"`
	// Version is the VRRP version: 3 (RFC 5798) or 2 (RFC 3768). Default: 3.
	Version int `yaml:"version,omitempty" json:"version"`
	// Priority is 1..254; 255 only with address_owner. A node part: each
	// node keeps its own (an instance that a peer's change brings in
	// takes the peer's priority less 50, at least 1). Default: 100.
	Priority int `yaml:"priority,omitempty" json:"priority" halb:"node"`
	// AddressOwner marks this node as owning the VIPs as its real addresses
	// (RFC 5798 priority 255). Default: false.
	AddressOwner bool `yaml:"address_owner,omitempty" json:"address_owner,omitempty" halb:"node"`
	// AdvertInterval is the advertisement interval, 10ms..40.95s in steps of
	// 10ms (VRRPv3); whole seconds 1s..255s for version 2. Default: 200ms
	// for version 3, 1s for version 2.
	AdvertInterval Duration `yaml:"advert_interval,omitempty" json:"advert_interval"`
	// Preempt lets a higher-priority backup take over from a lower master.
	// Default: true.
	Preempt *bool `yaml:"preempt,omitempty" json:"preempt"`
	// PreemptDelay waits this long after start before preempting. Default: 0.
	PreemptDelay Duration `yaml:"preempt_delay,omitempty" json:"preempt_delay"`
	// VIPs are the virtual addresses in CIDR form. At least one is required.
	VIPs []string `yaml:"vips" json:"vips"`
	// UnicastPeers sends adverts to these addresses instead of multicast.
	// A node part (each node names the others; an instance that a peer's
	// change brings in unicasts to that peer's address). Default: none
	// (multicast 224.0.0.18 / ff02::12).
	UnicastPeers []string `yaml:"unicast_peers,omitempty" json:"unicast_peers" halb:"node"`
	// Track lowers the priority when tracked objects fail. Default: nothing tracked.
	Track Track `yaml:"track,omitempty" json:"track"`
	// Notify is the absolute path of a program run on every state change
	// as `program NAME STATE PRIORITY` (NAME the instance's name; STATE
	// MASTER, BACKUP, FAULT or STOP; PRIORITY the effective priority). It
	// runs without a shell, at most one at a time per instance and in the
	// order of the changes, and is killed after 10s. Default: none.
	Notify string `yaml:"notify,omitempty" json:"notify,omitempty"`
	// GARP sets the announcements (gratuitous ARP / unsolicited NA) sent on
	// becoming MASTER. Default: the first at once, then 3 more 1s apart.
	GARP GARP `yaml:"garp,omitempty" json:"garp"`
	// UseVMAC gives the VIPs the RFC 5798 virtual MAC (00:00:5e:00:01:VRID,
	// 00:00:5e:00:02:VRID for IPv6) on a macvlan interface "vrrp.VRID"
	// ("vrrp6.VRID" for IPv6) over Interface, as keepalived's use_vmac:
	// clients' ARP / neighbor entries stay valid across a failover.
	// Default: false.
	UseVMAC bool `yaml:"use_vmac,omitempty" json:"use_vmac,omitempty"`
}

// GARP configures the announcements of a new MASTER: one at once, then
// Repeat more, Interval apart.
type GARP struct {
	// Repeat is how many announcements follow the first one, 0..100.
	// Default: 3 (nil: not set, so that an explicit 0 is kept when a
	// config is written back; Repeats reads it).
	Repeat *int `yaml:"repeat,omitempty" json:"repeat"`
	// Interval is the time between two announcements, 10ms..1m. Default: 1s.
	Interval Duration `yaml:"interval,omitempty" json:"interval"`
}

// VRRPSyncGroup is a set of VRRP instances that change state together.
type VRRPSyncGroup struct {
	// Name identifies the group in status and logs. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Instances are the names of the members, at least two; an instance
	// belongs to at most one group. Required.
	Instances []string `yaml:"instances" json:"instances"`
}

// PreemptOn reports whether preemption is enabled (the default).
func (v *VRRPInstance) PreemptOn() bool { return v.Preempt == nil || *v.Preempt }

// Track lists what a VRRP instance watches.
type Track struct {
	// Interfaces whose link going down applies Weight. Default: none.
	Interfaces []string `yaml:"interfaces,omitempty" json:"interfaces"`
	// Services (by name) whose having no healthy backend applies Weight.
	// Default: none.
	Services []string `yaml:"services,omitempty" json:"services"`
	// Scripts are check programs run periodically; one fails while its
	// program exits non-zero or times out. Default: none.
	Scripts []TrackScript `yaml:"scripts,omitempty" json:"scripts"`
	// Weight is added to the priority while a tracked object fails,
	// -254..254; 0 means a failure forces the FAULT state (as keepalived
	// does for tracking without weight). The effective priority is
	// clamped to 1..254 while anything fails. Default: 0.
	Weight int `yaml:"weight,omitempty" json:"weight"`
}

// TrackScript is a check program tracked by a VRRP instance (keepalived's
// vrrp_script). Runs do not overlap: the next starts at the first interval
// tick after the previous one ended. Until its first run ends the script
// counts as passing; the first result sets its state at once, later ones
// need Rise passes or Fall failures in a row to change it.
type TrackScript struct {
	// Name identifies the script in status and logs. Required, unique
	// within the instance.
	Name string `yaml:"name" json:"name"`
	// Command is the program and its arguments, run without a shell; the
	// first element is an absolute path. Exit status 0 passes. Required.
	Command []string `yaml:"command" json:"command"`
	// Interval is the time between two runs, at least 10ms. Default: 1s.
	Interval Duration `yaml:"interval,omitempty" json:"interval"`
	// Timeout kills a run that takes longer (a failure). Default: the
	// interval.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout"`
	// Rise is the number of passes in a row that make a failing script
	// pass. Default: 1.
	Rise int `yaml:"rise,omitempty" json:"rise"`
	// Fall is the number of failures in a row that make a passing script
	// fail. Default: 1.
	Fall int `yaml:"fall,omitempty" json:"fall"`
	// Weight is added to the priority while the script fails, -254..254;
	// 0 forces FAULT. Default: the instance's track.weight.
	Weight *int `yaml:"weight,omitempty" json:"weight"`
}

// EffectiveWeight is the script's weight, or trackWeight when unset.
func (s *TrackScript) EffectiveWeight(trackWeight int) int {
	if s.Weight == nil {
		return trackWeight
	}
	return *s.Weight
}

// Service is a listener that accepts client connections.
type Service struct {
	// Name identifies the service. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Listen are host:port addresses. At least one is required.
	Listen []string `yaml:"listen" json:"listen"`
	// Mode is http or tcp. Default: http.
	Mode string `yaml:"mode,omitempty" json:"mode"`
	// Routes pick a backend by Host and path (http mode only); first match
	// wins. Default: none.
	Routes []Route `yaml:"routes,omitempty" json:"routes"`
	// DefaultBackend serves requests no route matched. Required in tcp
	// mode; in http mode required when there are no routes.
	DefaultBackend string `yaml:"default_backend,omitempty" json:"default_backend"`
	// Timeouts bound each phase of a connection, as HAProxy's "timeout"
	// settings. Default: see Timeouts.
	Timeouts Timeouts `yaml:"timeouts,omitempty" json:"timeouts"`
	// Limits bound request heads and bodies (http mode). Default: see Limits.
	Limits Limits `yaml:"limits,omitempty" json:"limits"`
	// AcceptProxy lists client networks (CIDR) that are trusted to start
	// every connection with a PROXY protocol header (v1 or v2) giving the
	// real client address, as HAProxy's accept-proxy; a connection from such
	// a network without a valid header is closed. Connections from other
	// addresses are served as they come. Default: none.
	AcceptProxy []string `yaml:"accept_proxy,omitempty" json:"accept_proxy"`
	// ResponseHeaders are fields set on every response of an http-mode
	// service, the proxy's own error responses included (HAProxy's
	// http-after-response set-header), replacing fields of the same name
	// from the server; e.g. {X-LB-Node: lb1}. Default: none.
	ResponseHeaders map[string]string `yaml:"response_headers,omitempty" json:"response_headers,omitempty"`
	// MinHealthy is how many servers (up, weight above 0) the service's
	// backends need for vrrp[].track.services to count it as healthy,
	// 1..1000. Default: 1.
	MinHealthy int `yaml:"min_healthy,omitempty" json:"min_healthy"`
	// AccessLog logs one structured line per request (http mode) or
	// connection (tcp mode). Default: false.
	AccessLog bool `yaml:"access_log,omitempty" json:"access_log,omitempty"`
	// ForwardHeaders lists the fields the proxy adds to every request in
	// http mode, from x-forwarded-for (HAProxy's option forwardfor),
	// x-forwarded-proto (a client's own is removed first) and forwarded
	// (RFC 7239, HAProxy's option forwarded); [] adds none. Default: all
	// three in http mode (nil: absent).
	ForwardHeaders *[]string `yaml:"forward_headers,omitempty" json:"forward_headers,omitempty"`
	// HTTPSRedirect answers every request of a plain http service with a
	// redirect of this status (301, 302, 303, 307 or 308) to the same
	// host and path over https (HAProxy's "http-request redirect scheme
	// https"). Default: 0 (off).
	HTTPSRedirect int `yaml:"https_redirect,omitempty" json:"https_redirect,omitempty"`
	// TLS terminates TLS on the service's listen addresses (HAProxy's
	// "bind ... ssl crt"): the proxy handshakes with the client, then serves
	// the decrypted stream in the service's mode. Absent: plain TCP.
	TLS *TLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// SNIRoutes pick a backend by the server name of the client's TLS
	// ClientHello (tcp mode; HAProxy's req.ssl_sni): without tls, the
	// proxy reads the hello without terminating TLS and replays it to the
	// server; with tls, the handshake's name routes. An exact name wins over
	// a wildcard; no name or no match: default_backend. Default: none.
	SNIRoutes []SNIRoute `yaml:"sni_routes,omitempty" json:"sni_routes,omitempty"`
}

// BackendNames lists the backends service s uses: default_backend, then
// those of routes and sni_routes, each once.
func (s *Service) BackendNames() []string {
	var out []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	add(s.DefaultBackend)
	for _, r := range s.Routes {
		add(r.Backend)
	}
	for _, r := range s.SNIRoutes {
		add(r.Backend)
	}
	return out
}

// BackendTLS is how a backend talks TLS to its servers.
type BackendTLS struct {
	// Verify is "full": a server's certificate must chain to CA and hold
	// ServerName (or, without it, the server's IP address); or "none":
	// any certificate passes (encryption without authentication, marked in
	// status). Default: full.
	Verify string `yaml:"verify,omitempty" json:"verify"`
	// CA is the path of a PEM bundle of the CAs that sign the servers'
	// certificates. Default: the system roots.
	CA string `yaml:"ca,omitempty" json:"ca,omitempty"`
	// ServerName is sent as SNI and verified. Default: none (the server's
	// IP address is verified).
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
}

// BackendVerifies are the values of backends[].tls.verify.
var BackendVerifies = []string{"full", "none"}

// SNIRoute is a tcp service's route by TLS server name.
type SNIRoute struct {
	// SNI is a host name or a *.suffix wildcard (one label). Required.
	SNI string `yaml:"sni" json:"sni"`
	// Backend takes the connections with that name. Required.
	Backend string `yaml:"backend" json:"backend"`
}

// TLS is a service's TLS termination (docs/tls.md).
type TLS struct {
	// Certificates are the certificates the service can serve; the client's
	// SNI name picks one: a certificate whose DNS names hold the name
	// exactly wins over a wildcard match; among several (an ECDSA and an
	// RSA one for the same names) the first the client supports. At least
	// one is required.
	Certificates []TLSCertificate `yaml:"certificates" json:"certificates"`
	// Default names the certificate served when the client sends no SNI or
	// one no certificate matches. Default: the first.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// MinVersion is the lowest protocol version accepted, "1.2" or "1.3".
	// Default: "1.2" ("1.3" with policy modern).
	MinVersion string `yaml:"min_version,omitempty" json:"min_version"`
	// Policy is the cipher and curve policy, Mozilla's "intermediate" (TLS
	// 1.2 with ECDHE and AEAD ciphers only, and TLS 1.3) or "modern" (TLS
	// 1.3 only). Default: intermediate.
	Policy string `yaml:"policy,omitempty" json:"policy"`
	// ALPN lists the protocols offered by ALPN; only "http/1.1" for now
	// (h2 is not supported yet). Default: [http/1.1] in http mode, none in
	// tcp mode.
	ALPN *[]string `yaml:"alpn,omitempty" json:"alpn,omitempty"`
	// ClientAuth asks clients for certificates (mutual TLS). Absent: none
	// is asked for.
	ClientAuth *ClientAuth `yaml:"client_auth,omitempty" json:"client_auth,omitempty"`
}

// ClientAuth is a TLS service's check of client certificates.
type ClientAuth struct {
	// CA is the path of a PEM bundle of the CAs client certificates must
	// chain to. Required.
	CA string `yaml:"ca" json:"ca"`
	// Verify is "required" (a client without a valid certificate fails
	// the handshake) or "optional" (one it sends must be valid).
	// Default: required.
	Verify string `yaml:"verify,omitempty" json:"verify"`
	// Forward passes the client certificate to the servers (http mode):
	// X-SSL-Client-Verify (SUCCESS or NONE), X-SSL-Client-DN (the
	// subject) and X-SSL-Client-SHA256 (the certificate's fingerprint),
	// replacing any the client sent. Default: false.
	Forward bool `yaml:"forward,omitempty" json:"forward,omitempty"`
}

// ClientVerifies are the values of services[].tls.client_auth.verify.
var ClientVerifies = []string{"required", "optional"}

// TLSCertificate is one certificate of a service: a certificate of the
// store (halbctl cert add) by name, or a pair of PEM files.
type TLSCertificate struct {
	// Name is the certificate's name in the store, or, with Cert and Key,
	// the name the service knows the files by. Required, unique in the
	// service.
	Name string `yaml:"name" json:"name"`
	// Cert is the path of a PEM file with the certificate chain, leaf
	// first. Absent: the store's certificate Name.
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	// Key is the path of the PEM private key of Cert; required with Cert.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
}

// TLS versions and policies of services[].tls.
var (
	TLSVersions = []string{"1.2", "1.3"}
	TLSPolicies = []string{"intermediate", "modern"}
)

// Forwards reports whether the proxy adds field f (ForwardFor,
// ForwardProto or Forwarded) to the service's requests: when
// forward_headers lists it, or, when forward_headers is absent, in http
// mode.
func (s *Service) Forwards(f string) bool {
	if s.ForwardHeaders == nil {
		return s.Mode != "tcp"
	}
	return slices.Contains(*s.ForwardHeaders, f)
}

// The fields services[].forward_headers may list.
const (
	ForwardFor   = "x-forwarded-for"
	ForwardProto = "x-forwarded-proto"
	Forwarded    = "forwarded"
)

// Timeouts are a service's time limits. Each is at least 1ms.
type Timeouts struct {
	// Connect bounds one connection attempt to a server when no other
	// server could take the request; while another is left to try, an
	// attempt is given up after at most 500ms. Default: 5s.
	Connect Duration `yaml:"connect,omitempty" json:"connect"`
	// Client is the longest the client may stay silent while the proxy
	// waits for it (a body, or the next bytes in tcp mode). Default: 30s.
	Client Duration `yaml:"client,omitempty" json:"client"`
	// Server is the longest a server may stay silent while the proxy waits
	// for its response or the next bytes. Default: 30s.
	Server Duration `yaml:"server,omitempty" json:"server"`
	// HTTPRequest is the time a client has to send a complete request head
	// (slowloris defence); after it the client gets 408. Default: 10s.
	HTTPRequest Duration `yaml:"http_request,omitempty" json:"http_request"`
	// HTTPKeepAlive is how long an idle keep-alive client connection waits
	// for its next request. Default: 10s.
	HTTPKeepAlive Duration `yaml:"http_keep_alive,omitempty" json:"http_keep_alive"`
	// Queue is the longest a request waits for a server below its maxconn;
	// after it the client gets 503. Default: 5s.
	Queue Duration `yaml:"queue,omitempty" json:"queue"`
	// Tunnel is the idle limit of an upgraded (WebSocket) connection.
	// Default: 1h.
	Tunnel Duration `yaml:"tunnel,omitempty" json:"tunnel"`
}

// Limits bound what a client may send in http mode.
type Limits struct {
	// MaxRequestLine is the longest request line in bytes, 64..65536;
	// longer gets 414. Default: 8192.
	MaxRequestLine int `yaml:"max_request_line,omitempty" json:"max_request_line"`
	// MaxHeaderBytes is the largest request head in bytes, 1024..1048576;
	// larger gets 431. Default: 16384.
	MaxHeaderBytes int `yaml:"max_header_bytes,omitempty" json:"max_header_bytes"`
	// MaxHeaders is the most header fields in a request, 1..1000; more get
	// 431. Default: 100.
	MaxHeaders int `yaml:"max_headers,omitempty" json:"max_headers"`
	// MaxBodyBytes is the largest request body in bytes; larger gets 413
	// (a chunked body is cut when it passes the limit). 0 means no limit.
	// Default: 0.
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty" json:"max_body_bytes"`
}

// Route sends matching HTTP requests to a backend.
type Route struct {
	// Host is an exact host name, a "*.suffix" wildcard (every name under
	// suffix, at any depth, not suffix itself: nginx's *.suffix) or a
	// ".domain" (the domain and every name under it: nginx's .domain).
	// Default: any host.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// PathPrefix must start with "/". Default: "/".
	PathPrefix string `yaml:"path_prefix,omitempty" json:"path_prefix"`
	// Path, when set, must equal the request path without the query
	// (HAProxy's path); with PathPrefix, both must hold. It must start
	// with "/". Default: any path.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Backend names the backend. Required.
	Backend string `yaml:"backend" json:"backend"`
}

// Backend is a pool of servers.
type Backend struct {
	// Name identifies the backend. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Balance is roundrobin, leastconn, source, uri or random. Default: roundrobin.
	Balance string `yaml:"balance,omitempty" json:"balance"`
	// Sticky enables persistence. Default: none.
	Sticky Sticky `yaml:"sticky,omitempty" json:"sticky"`
	// Health configures the server checks.
	Health Health `yaml:"health,omitempty" json:"health"`
	// ProxyProtocol sends a PROXY protocol header (v1 or v2) with the
	// client's address at the start of every server connection, as
	// HAProxy's send-proxy / send-proxy-v2. Default: none.
	ProxyProtocol string `yaml:"proxy_protocol,omitempty" json:"proxy_protocol,omitempty"`
	// TLS encrypts the connections to the servers (HAProxy's "server ...
	// ssl verify required ca-file ... sni ..."); http checks use it too.
	// Absent: plain TCP.
	TLS *BackendTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// SlowStart ramps a server's weight up from almost nothing to its
	// configured weight over this time when it comes back up after its
	// health checks failed, or leaves drain (HAProxy's slowstart). Applies to
	// roundrobin, leastconn and random; source and uri are static (a weight
	// change would move keys). 0..1h. Default: 0 (off).
	SlowStart Duration `yaml:"slowstart,omitempty" json:"slowstart,omitempty"`
	// Servers are the real servers. Default: none (requests get 503).
	Servers []Server `yaml:"servers,omitempty" json:"servers"`
	// AllBackups balances new sessions over every usable backup server
	// (by the backend's balance) while no other server is usable;
	// otherwise only the first usable backup in config order takes them
	// (HAProxy's option allbackups). Default: false.
	AllBackups bool `yaml:"all_backups,omitempty" json:"all_backups,omitempty"`
}

// Sticky is session persistence: a cookie or the client's source address.
type Sticky struct {
	// Cookie inserts a cookie of this name naming the server. Default: none.
	Cookie string `yaml:"cookie,omitempty" json:"cookie,omitempty"`
	// Source keeps a client address on one server. Default: false.
	Source bool `yaml:"source,omitempty" json:"source,omitempty"`
	// Expire forgets a source address idle this long (source only), 1s..24h.
	// Default: 30m.
	Expire Duration `yaml:"expire,omitempty" json:"expire,omitempty"`
}

// Health configures the active checks of a backend's servers.
type Health struct {
	// Check is none, icmp, tcp, http or https. Default: tcp.
	Check string `yaml:"check,omitempty" json:"check"`
	// Path is the request path of http(s) checks. Default: "/".
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// ExpectStatus are the statuses a passing http(s) check gets: "200",
	// "200-399" or "200,204,300-399", each within 100..599. Default: 200.
	ExpectStatus StatusCodes `yaml:"expect_status,omitempty" json:"expect_status,omitempty"`
	// Interval between checks. Default: 2s.
	Interval Duration `yaml:"interval,omitempty" json:"interval"`
	// Timeout of one check. Default: 1s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout"`
	// Rise is the number of passed checks that bring a server up. Default: 2.
	Rise int `yaml:"rise,omitempty" json:"rise"`
	// Fall is the number of failed checks that take a server down. Default: 3.
	Fall int `yaml:"fall,omitempty" json:"fall"`
	// Port checks this port instead of the server's. Default: the server's port.
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
	// Method is the request method of http(s) checks. Default: GET.
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	// Host is the Host header of http(s) checks. Default: the server's
	// host.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// ExpectBody must occur in the first 16 KiB of an http(s) check's
	// response. Default: none.
	ExpectBody string `yaml:"expect_body,omitempty" json:"expect_body,omitempty"`
	// Verify checks an https server's certificate against the system
	// roots. Default: false (any certificate passes).
	Verify bool `yaml:"verify,omitempty" json:"verify,omitempty"`
	// Send is written after a tcp check connects (YAML escapes such as
	// "\r\n" in double quotes). Default: nothing.
	Send string `yaml:"send,omitempty" json:"send,omitempty"`
	// Expect must occur in the first 4 KiB a tcp check reads back.
	// Default: none (the connect is enough).
	Expect string `yaml:"expect,omitempty" json:"expect,omitempty"`
	// Observe is what real traffic tells the checks (HAProxy's observe):
	// layer4 counts failed connections to a server, layer7 also 5xx
	// responses (but 501 and 505), response timeouts and invalid
	// responses; fall of them in a row take the server down before its
	// next active check (only active checks bring it back). none ignores
	// traffic. Default: layer4.
	Observe string `yaml:"observe,omitempty" json:"observe,omitempty"`
	// Initial is the state of a server until its first check results: up
	// (HAProxy's behaviour) or down (no traffic before rise passed
	// checks). Default: up.
	Initial string `yaml:"initial,omitempty" json:"initial,omitempty"`
}

// Server is one real server of a backend.
type Server struct {
	// Name identifies the server within its backend. Required, unique there.
	Name string `yaml:"name" json:"name"`
	// Address is host:port. Required.
	Address string `yaml:"address" json:"address"`
	// Weight is 0..256; 0 drains the server. Default: 1.
	Weight *int `yaml:"weight,omitempty" json:"weight"`
	// MaxConn is the most concurrent connections (tcp) or requests (http)
	// sent to this server; more wait in the service's queue up to
	// timeouts.queue. 0 means no limit. Default: 0.
	MaxConn int `yaml:"maxconn,omitempty" json:"maxconn,omitempty"`
	// Backup servers get new sessions only while no other server of the
	// backend is usable (up, weight above 0, not drained, not disabled);
	// then the first usable backup in config order takes them all, or
	// with backends[].all_backups every usable backup (HAProxy's backup).
	// A persistence cookie or stick entry naming an up backup is honoured
	// even while other servers are usable. Default: false.
	Backup bool `yaml:"backup,omitempty" json:"backup,omitempty"`
	// Disabled servers are in maintenance: no traffic (persistence
	// included) and no checks (HAProxy's disabled). Default: false.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}

// EffectiveWeight is the configured weight, or 1 when unset.
func (s *Server) EffectiveWeight() int {
	if s.Weight == nil {
		return 1
	}
	return *s.Weight
}

// Duration is a time.Duration written as a Go duration string ("100ms", "2s")
// in YAML and JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string such as "200ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 200ms, 2s)", b)
	}
	*d = Duration(v)
	return nil
}

// Values accepted by enumerated fields.
var (
	Modes    = []string{"http", "tcp"}
	Balances = []string{"roundrobin", "leastconn", "source", "uri", "random"}
	Checks   = []string{"none", "icmp", "tcp", "http", "https"}
	// ProxyProtocols are the values of backends[].proxy_protocol.
	ProxyProtocols = []string{"", "v1", "v2"}
	// Observes are the values of backends[].health.observe.
	Observes = []string{"none", "layer4", "layer7"}
	// InitialStates are the values of backends[].health.initial.
	InitialStates = []string{"up", "down"}
	// BGPModes are the values of bgp.announce[].mode.
	BGPModes = []string{"active_active", "active_standby"}
	// BGPWhens are the values of bgp.announce[].when.
	BGPWhens = []string{"when_healthy", "always"}
	// LogTargets are the values of observe.logs[].to.
	LogTargets = []string{"file", "syslog", "journald"}
	// LogStreams are the values of observe.logs[].streams.
	LogStreams = []string{"access", "daemon"}
	// LogTransports are the values of observe.logs[].transport.
	LogTransports = []string{"udp", "tcp"}
	// SyslogFacilities are the RFC 5424 facility names, in code order
	// (kern is 0, local7 is 23).
	SyslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
		"authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}
)

// Defaults, exported so docs and tests name them once.
const (
	DefaultVRRPVersion      = 3
	DefaultPriority         = 100
	DefaultPeerPort         = 7900
	DefaultAdvertInterval   = 200 * time.Millisecond
	DefaultAdvertIntervalV2 = time.Second
	DefaultMaxOffset        = 500 * time.Millisecond
	DefaultStepThreshold    = 128 * time.Millisecond
	DefaultMinPoll          = 64 * time.Second
	DefaultMaxPoll          = 1024 * time.Second
	DefaultMode             = "http"
	DefaultBalance          = "roundrobin"
	DefaultCheck            = "tcp"
	DefaultCheckPath        = "/"
	DefaultExpectStatus     = 200
	DefaultCheckInterval    = 2 * time.Second
	DefaultCheckTimeout     = time.Second
	DefaultRise             = 2
	DefaultFall             = 3
	DefaultPathPrefix       = "/"
	DefaultConnectTimeout   = 5 * time.Second
	DefaultClientTimeout    = 30 * time.Second
	DefaultServerTimeout    = 30 * time.Second
	DefaultHTTPRequest      = 10 * time.Second
	DefaultHTTPKeepAlive    = 10 * time.Second
	DefaultQueueTimeout     = 5 * time.Second
	DefaultTunnelTimeout    = time.Hour
	DefaultMaxRequestLine   = 8192
	DefaultMaxHeaderBytes   = 16384
	DefaultMaxHeaders       = 100
	DefaultStickyExpire     = 30 * time.Minute
	DefaultGARPRepeat       = 3
	DefaultGARPInterval     = time.Second
	DefaultScriptInterval   = time.Second
	DefaultScriptRise       = 1
	DefaultScriptFall       = 1
	DefaultLogMaxSize       = 10 << 20
	DefaultLogKeep          = 5
	DefaultLogTransport     = "udp"
	DefaultLogFacility      = "local0"
	DefaultLogTag           = "halb"
	DefaultLogQueue         = 4096
	DefaultBGPHoldTime      = 9 * time.Second
	DefaultBGPMultihop      = 1
	DefaultBGPMode          = "active_active"
	DefaultBGPWhen          = "when_healthy"
	DefaultBGPPrepend       = 3
	DefaultBGPDrainTime     = 30 * time.Second
	DefaultBFDInterval      = 300 * time.Millisecond
	DefaultBFDMultiplier    = 3
	// NotifyTimeout bounds one run of a vrrp[].notify program.
	NotifyTimeout = 10 * time.Second
)

// Repeats is g.Repeat, or its default when not set.
func (g GARP) Repeats() int {
	if g.Repeat == nil {
		return DefaultGARPRepeat
	}
	return *g.Repeat
}

// Kept is l.Keep, or its default when not set.
func (l LogTarget) Kept() int {
	if l.Keep == nil {
		return DefaultLogKeep
	}
	return *l.Keep
}

// Hold is n.HoldTime, or its default when not set.
func (n BGPNeighbor) Hold() time.Duration {
	if n.HoldTime == nil {
		return DefaultBGPHoldTime
	}
	return n.HoldTime.D()
}
