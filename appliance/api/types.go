// Package api is halb's control API: HTTP+JSON on a unix socket, versioned
// under /v1, served by halbd and used by halbctl and the console through the
// Client in this package.
//
//	GET  /v1/status           Status: one key per component
//	GET  /v1/config           the running config, as YAML
//	PUT  /v1/config           validate, save atomically, apply (422 + errors when invalid,
//	                          409 + errors when this node cannot take it, e.g. a listen
//	                          address in use); ?name=FILE names it in messages
//	POST /v1/config/validate  validate only, and list what would change (?name= as PUT)
//	GET  /v1/config/history   the last 20 applied configs, newest first
//	GET  /v1/config/history/N version N's YAML
//	POST /v1/config/rollback  apply a version of the history again ({"version": N})
//	GET  /v1/events           a stream of JSON lines, one Event each
//	POST /v1/vrrp/handover    give up VRRP MASTER now
//	GET  /v1/maintenance      {"on": bool}
//	PUT  /v1/maintenance      turn maintenance on or off (kept across restarts)
//	GET  /v1/drain            the drained servers
//	PUT  /v1/drain            drain a server or make it ready ({"server", "drain"})
//	GET  /v1/interfaces       the node's network interfaces and the VRRP routers heard on each
//	GET  /v1/console/auth     whether a console password is set and required
//	POST /v1/console/auth     check a console password (204, 401, 429 after wrong ones)
//	PUT  /v1/console/password set or change it ({"password", "old"})
//	DELETE /v1/console/password  remove it
//	GET  /v1/logs?n=N         the daemon's newest N log records (at most 500 are kept)
//	POST /v1/system/reboot    reboot the machine (only with halbd -system-actions)
//	POST /v1/system/poweroff  power it off (idem)
//	POST /v1/system/factory-reset  remove the config and all state, then reboot ({"node_name"})
//	POST|GET|DELETE /v1/peer/pairing  make, show or end the pairing code
//	POST /v1/peer/join        pair with a node that shows a code
//	DELETE /v1/peer/{name}    unpair
//	POST /v1/peer/conflict    settle a reported conflict
//	GET  /v1/certs            the stored TLS certificates (never their keys) and what uses each
//	POST /v1/certs            add or replace one ({"name", "cert", "key", "replace"})
//	DELETE /v1/certs/{name}   remove one that nothing uses
//
// docs/api.md describes every request and answer.
package api

import (
	"encoding/json"
	"time"

	"halb/appliance/config"
	"halb/appliance/timesync"
)

// DefaultSocket is where halbd listens unless told otherwise.
const DefaultSocket = "/run/halb/halb.sock"

// Status is a snapshot of the daemon. Each component fills its own key; a
// key is null while its component is not running in this daemon.
type Status struct {
	Node   NodeStatus   `json:"node"`
	Config ConfigStatus `json:"config"`

	VRRP     json.RawMessage `json:"vrrp"`
	Services json.RawMessage `json:"services"`
	Backends json.RawMessage `json:"backends"`
	Time     json.RawMessage `json:"time"`
	Peer     json.RawMessage `json:"peer"`
	Network  json.RawMessage `json:"network"`
	// Observe is the metrics listener and the log targets
	// (daemon.ObserveStatus).
	Observe json.RawMessage `json:"observe"`
	// BGP is the BGP speaker's sessions and VIPs (BGPStatus); null when
	// bgp is off.
	BGP json.RawMessage `json:"bgp"`
}

// BGPStatus is the BGP mode's status (appliance/bgp).
type BGPStatus struct {
	ASN      uint32       `json:"asn"`
	RouterID string       `json:"router_id"`
	Sessions []BGPSession `json:"sessions"`
	VIPs     []BGPVIP     `json:"vips"`
	// Maintenance is on: VIPs drain with GRACEFUL_SHUTDOWN, then are
	// withdrawn.
	Maintenance bool `json:"maintenance,omitempty"`
	// Error is the last reconcile's failure (retried every 5s).
	Error string `json:"error,omitempty"`
}

// BGPSession is one neighbor's session.
type BGPSession struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	// State is idle, connect, active, opensent, openconfirm or
	// established.
	State string `json:"state"`
	// Since is when the session was established.
	Since time.Time `json:"since,omitzero"`
	// Received and Sent count prefixes.
	Received int `json:"received"`
	Sent     int `json:"sent"`
	// DownReason is why the session last went down from established, as
	// GoBGP says it, and LastDown when; empty and zero while it has not
	// gone down since halbd started.
	DownReason string    `json:"down_reason,omitempty"`
	LastDown   time.Time `json:"last_down,omitzero"`
	// BFD is the session's BFD state (up, down, init, admin_down; it
	// starts a second after BGP is established); empty without bfd.
	BFD string `json:"bfd,omitempty"`
}

// BGPVIP is one VIP of bgp.announce: whether it is announced and why.
type BGPVIP struct {
	VIP string `json:"vip"`
	// Mode is active_active or active_standby.
	Mode string `json:"mode"`
	// State is announced, graceful_shutdown (announced with the
	// GRACEFUL_SHUTDOWN community: maintenance drains it), handoff
	// (announced while maintenance hands new connections to the nodes of
	// bgp.drain_to) or withdrawn (not announced).
	State     string `json:"state"`
	Announced bool   `json:"announced"`
	// Prepend is how many times the AS is prepended (a standby).
	Prepend     int      `json:"prepend,omitempty"`
	Communities []string `json:"communities,omitempty"`
	Reason      string   `json:"reason"`
}

// NodeStatus describes the daemon process.
type NodeStatus struct {
	// Name is node.name of the running config; empty while unconfigured.
	Name string `json:"name"`
	// Maintenance is on: this node keeps no VIPs.
	Maintenance bool `json:"maintenance"`
	// SystemActions: reboot, poweroff and factory reset are enabled
	// (halbd -system-actions, on the appliance).
	SystemActions bool      `json:"system_actions"`
	Version       string    `json:"version"`
	PID           int       `json:"pid"`
	Started       time.Time `json:"started"`
}

// ConfigStatus describes the config in force and the last attempt to change it.
type ConfigStatus struct {
	// Path is the config file the daemon reads and saves.
	Path string `json:"path"`
	// Loaded is false while no valid config is in force (first boot, or a
	// start with an invalid file).
	Loaded bool `json:"loaded"`
	// SHA256 is the hex digest of the running config's bytes.
	SHA256 string `json:"sha256,omitempty"`
	// AppliedAt is when the running config took effect.
	AppliedAt time.Time `json:"applied_at,omitzero"`
	// Version is the running config's version in the config history.
	Version int `json:"version,omitempty"`
	// LastError is the most recent rejected reload; cleared by a successful one.
	LastError *Rejection `json:"last_error,omitempty"`
	// Pending is the change that awaits confirmation; nil when none.
	Pending *PendingChange `json:"pending,omitempty"`
}

// Rejection records a config that was refused, and why.
type Rejection struct {
	Time   time.Time     `json:"time"`
	Source string        `json:"source"` // SourceFile, SourceAPI, SourceConsole or SourceRollback
	Errors config.Errors `json:"errors"`
}

// Event is one line of the event stream.
type Event struct {
	Time time.Time `json:"time"`
	// Type is a dotted name: daemon.started, daemon.stopping,
	// config.applied, config.rejected, and "<component>.<what>" for
	// component state changes.
	Type    string `json:"type"`
	Message string `json:"message"`
	// Data carries the event's details (e.g. the changes of config.applied).
	Data any `json:"data,omitempty"`
}

// ApplyResult answers PUT /v1/config, POST /v1/config/validate and POST
// /v1/config/rollback.
type ApplyResult struct {
	// Changes lists what differs from the running config.
	Changes []config.Change `json:"changes"`
	// Version is the applied config's version in the config history (not
	// set by validate).
	Version int `json:"version,omitempty"`
	// ConfirmBy is set for a change applied with confirm_within: it
	// reverts at this time unless POST /v1/config/confirm comes first.
	ConfirmBy time.Time `json:"confirm_by,omitzero"`
}

// PendingChange is a config applied with confirm_within that awaits
// confirmation.
type PendingChange struct {
	// Version is the unconfirmed config's version in the history.
	Version int `json:"version"`
	// RevertTo is the version that comes back at Deadline.
	RevertTo int       `json:"revert_to"`
	Deadline time.Time `json:"deadline"`
}

// Where a config came from, as the config history and rejections say.
const (
	SourceFile     = "file"     // the config file, at start or on SIGHUP
	SourceAPI      = "api"      // PUT /v1/config (halbctl config apply)
	SourceConsole  = "console"  // PUT /v1/config from halb-console (header X-Halb-Client: console)
	SourceRollback = "rollback" // POST /v1/config/rollback
	SourceRevert   = "revert"   // a change applied with confirm_within and not confirmed in time
)

// HistoryEntry is one config the daemon applied (GET /v1/config/history).
type HistoryEntry struct {
	// Version numbers grow by one with every applied config, and are never
	// reused (but after a factory reset).
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	// Source is SourceFile, SourceAPI, SourceConsole, SourceRollback,
	// SourceRevert or one of the peer sources (SourcePeer, SourcePairing,
	// SourceConflict, SourceUnpair).
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
	// Summary is a line saying what changed from the config before, e.g.
	// `2 change(s): services "web" added; backends "www" added`, or
	// "rollback to 5: ..." for a rollback.
	Summary string `json:"summary"`
	// Running marks the config in force.
	Running bool `json:"running,omitempty"`
}

// HistoryList answers GET /v1/config/history.
type HistoryList struct {
	// Entries are newest first.
	Entries []HistoryEntry `json:"entries"`
}

// RollbackRequest is the body of POST /v1/config/rollback.
type RollbackRequest struct {
	Version int `json:"version"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	// Errors lists every config problem (422 responses).
	Errors config.Errors `json:"errors,omitempty"`
}

// Interface is one network interface of the node (GET /v1/interfaces).
type Interface struct {
	Name string `json:"name"`
	// Kind is device, bridge, vlan, bond, veth, dummy, loopback, ...
	Kind string `json:"kind"`
	MAC  string `json:"mac,omitempty"`
	MTU  int    `json:"mtu"`
	// Up is administratively up; Carrier is a link detected.
	Up      bool `json:"up"`
	Carrier bool `json:"carrier"`
	// Addresses are the interface's addresses in CIDR form, VIPs included.
	Addresses []string `json:"addresses"`
	// VRRP lists the VRRP routers of other nodes heard on this link.
	VRRP []HeardRouter `json:"vrrp,omitempty"`
}

// HeardRouter is a VRRP router of another node, heard on a link.
type HeardRouter struct {
	VRID     int       `json:"vrid"`
	Version  int       `json:"version"`
	Source   string    `json:"source"`
	Priority int       `json:"priority"`
	VIPs     []string  `json:"vips,omitempty"`
	LastSeen time.Time `json:"last_seen"`
}

// InterfaceList answers GET /v1/interfaces.
type InterfaceList struct {
	Interfaces []Interface `json:"interfaces"`
}

// ConsoleAuth answers GET /v1/console/auth.
type ConsoleAuth struct {
	// PasswordSet: a console admin password is set.
	PasswordSet bool `json:"password_set"`
	// Required: the running config's console.require_password (true
	// while unconfigured). The console asks for the password before every
	// action that changes state when Required and PasswordSet, and has
	// one set first when Required and not PasswordSet.
	Required bool `json:"required"`
}

// PasswordRequest is the body of PUT /v1/console/password.
type PasswordRequest struct {
	// Password is the new password, at least 8 characters.
	Password string `json:"password"`
	// Old is the current password, required when one is set.
	Old string `json:"old,omitempty"`
}

// AuthRequest is the body of POST /v1/console/auth.
type AuthRequest struct {
	Password string `json:"password"`
}

// LogRecord is one record of the daemon's log (GET /v1/logs).
type LogRecord struct {
	Time time.Time `json:"time"`
	// Level is DEBUG, INFO, WARN or ERROR.
	Level   string `json:"level"`
	Message string `json:"message"`
	// Attrs are the record's attributes as key=value text, space
	// separated, values quoted where needed (as logfmt).
	Attrs string `json:"attrs,omitempty"`
}

// LogList answers GET /v1/logs.
type LogList struct {
	// Records are oldest first.
	Records []LogRecord `json:"records"`
}

// FactoryResetRequest is the body of POST /v1/system/factory-reset.
type FactoryResetRequest struct {
	// NodeName confirms the reset: the running config's node.name, or ""
	// while the node is unconfigured.
	NodeName string `json:"node_name"`
}

// SystemResult answers the POST /v1/system/ requests (202).
type SystemResult struct {
	// Action is reboot, poweroff or factory-reset.
	Action  string `json:"action"`
	Message string `json:"message"`
}

// CheckResult is one check of the management network test.
type CheckResult struct {
	// Name says what was checked: "ping gateway 10.0.0.1",
	// "resolve ntp.example.net", "time server 10.0.0.123", "ping peer lb2".
	Name   string        `json:"name"`
	OK     bool          `json:"ok"`
	Detail string        `json:"detail"`
	Took   time.Duration `json:"took_ns"`
}

// CheckList is the body of POST /v1/network/test.
type CheckList struct {
	Checks []CheckResult `json:"checks"`
}

// TimeTestRequest is the body of POST /v1/time/test: the servers to query
// (none: the configured ones).
type TimeTestRequest struct {
	Servers []string `json:"servers"`
}

// TimeTestResult is the answer of POST /v1/time/test.
type TimeTestResult struct {
	Servers []timesync.ServerStatus `json:"servers"`
}
