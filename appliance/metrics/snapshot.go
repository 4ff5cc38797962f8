// Package metrics serves what an operator watches on the observe listener
// (config observe.listen): Prometheus metrics at /metrics, a self-contained
// HTML stats page at /stats and the same data as JSON at /stats;json (or
// /stats?format=json). docs/metrics.md lists every metric and the JSON shape.
//
// The daemon hands New a function that returns a Snapshot of its
// components' status; every scrape and page view takes one, so nothing of
// this package runs on the proxy's hot path. Apply starts, rebinds or stops
// the listener and swaps its users and allowed networks. The listener is
// read-only (GET and HEAD), asks for basic auth (bcrypt hashes) when users
// are configured, refuses clients outside observe.allow, and with an empty
// host (":8404") refuses connections that arrive at a VIP.
//
// Wiring (the daemon):
//
//	obs := metrics.New(d.metricsSnapshot, log)    // once
//	err := obs.Apply(cfg.Observe, metrics.VIPs(cfg)) // at start and on every reload
//	g.Go(func() error { return obs.Run(ctx) })    // serves until ctx ends
//
// where metricsSnapshot fills a Snapshot from the components' Status()
// (proxy: []proxy.ServiceStatus, health: []health.BackendHealth, vrrp:
// []vrrp.InstanceStatus, the clock: timesync.Status, the peer link:
// api.PeerStatus, bgp: *api.BGPStatus) and the log targets' counters.
//
// Tests: go test ./appliance/metrics (the browser test needs Debian's
// chromium and skips without it); the scrape cost: go test -run '^$'
// -bench Scrape ./appliance/metrics.
package metrics

import (
	"time"

	"halb/appliance/api"
	"halb/appliance/health"
	"halb/appliance/proxy"
	"halb/appliance/timesync"
	"halb/appliance/vrrp"
)

// Snapshot is the node's state at one moment, as the daemon's components
// report it. A nil or empty part is simply not shown.
type Snapshot struct {
	// Node is node.name; Version the build (halbd -version); Started when
	// halbd started (uptime); Maintenance: this node keeps no VIPs.
	Node        string
	Version     string
	Started     time.Time
	Maintenance bool
	// Services is proxy.Component.Status(), Health health's, VRRP vrrp's.
	Services []proxy.ServiceStatus
	Health   []health.BackendHealth
	VRRP     []vrrp.InstanceStatus
	// Time is the clock's status (nil: time sync is not running).
	Time *timesync.Status
	// Peer is the peer link's status (nil: no peer link).
	Peer *api.PeerStatus
	// BGP is the BGP speaker's sessions and VIPs (nil: bgp is off).
	BGP *api.BGPStatus
	// Logs are the log targets' counters (logs.Manager.Status()).
	Logs []LogTarget
	// At is when the snapshot was taken; zero: when the Server got it.
	At time.Time
}

// LogTarget is one log target's counters since it was configured.
type LogTarget struct {
	Name string `json:"name"`
	To   string `json:"to"` // file, syslog or journald
	// Lines written, lines Dropped because the target was slow or gone,
	// and write Errors.
	Lines   uint64 `json:"lines"`
	Dropped uint64 `json:"dropped"`
	Errors  uint64 `json:"errors"`
}
