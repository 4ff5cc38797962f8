package metrics

import (
	"strconv"
	"strings"
	"time"

	"halb/appliance/api"
	"halb/appliance/health"
	"halb/appliance/proxy"
	"halb/appliance/proxy/hello"
	"halb/appliance/vrrp"
)

// Stats is what /stats shows and /stats;json returns (docs/metrics.md,
// "The stats page"): the Snapshot merged into one tree, services as
// HAProxy's frontends, each backend once with its servers' proxy and
// check state side by side, and rates.
type Stats struct {
	Node        string    `json:"node"`
	Version     string    `json:"version"`
	Now         time.Time `json:"now"`
	Started     time.Time `json:"started,omitzero"`
	Uptime      float64   `json:"uptime_s"`
	Maintenance bool      `json:"maintenance"`
	// RateWindow is the time in seconds the rates were measured over; 0
	// when there was no earlier sample (the first view): rates are null.
	RateWindow float64        `json:"rate_window_s"`
	Frontends  []Frontend     `json:"frontends"`
	Backends   []Backend      `json:"backends"`
	VRRP       []Instance     `json:"vrrp"`
	Time       *TimeStats     `json:"time,omitempty"`
	Peer       *PeerStats     `json:"peer,omitempty"`
	BGP        *api.BGPStatus `json:"bgp,omitempty"`
	Logs       []LogTarget    `json:"logs"`
	Listener   ListenerStats  `json:"listener"`
}

// Sessions are HAProxy's session columns: open now, the most open at
// once, the limit (0: none), since start, and per second (nil: unknown).
type Sessions struct {
	Cur   int64    `json:"cur"`
	Max   int64    `json:"max"`
	Limit int64    `json:"limit,omitempty"`
	Total int64    `json:"total"`
	Rate  *float64 `json:"rate"`
}

// Frontend is one service.
type Frontend struct {
	Name      string   `json:"name"`
	Mode      string   `json:"mode"`
	Listen    []string `json:"listen"`
	Listening []string `json:"listening"`
	// Up: every listen address is bound.
	Up       bool     `json:"up"`
	Error    string   `json:"error,omitempty"`
	Backends []string `json:"backends"`
	Sessions Sessions `json:"sessions"`
	// Requests (http) and their rate per second.
	Requests    int64            `json:"requests"`
	RequestRate *float64         `json:"request_rate"`
	Responses   map[string]int64 `json:"responses"`
	BytesIn     int64            `json:"bytes_in"`
	BytesOut    int64            `json:"bytes_out"`
	// RequestErrors: bad requests (HAProxy's ereq); ResponseErrors:
	// invalid or failed server responses (eresp); Timeouts: client or
	// server timeouts; NoServer: no server could take the request.
	RequestErrors  int64 `json:"request_errors"`
	ResponseErrors int64 `json:"response_errors"`
	Timeouts       int64 `json:"timeouts"`
	NoServer       int64 `json:"no_server"`
	Retries        int64 `json:"retries"`
	// TLS: the service terminates TLS (services[].tls); SNI: it routes
	// by the ClientHello's server name (sni_routes).
	TLS *FrontendTLS `json:"tls,omitempty"`
	SNI *FrontendSNI `json:"sni,omitempty"`

	totalTime proxy.Histogram
}

// FrontendTLS is a service's TLS termination: its settings, handshakes
// and certificates.
type FrontendTLS struct {
	Policy     string `json:"policy"`
	MinVersion string `json:"min_version"`
	Default    string `json:"default"`
	// Handshakes completed, of them Resumed, and by Version (TLSv1.2,
	// TLSv1.3); Failed handshakes by reason (every reason of
	// proxy.HandshakeFailures, 0 when none happened), FailedTotal their sum.
	Handshakes   int64            `json:"handshakes"`
	Resumed      int64            `json:"resumed"`
	Versions     map[string]int64 `json:"versions"`
	Failed       map[string]int64 `json:"failed"`
	FailedTotal  int64            `json:"failed_total"`
	Certificates []Certificate    `json:"certificates"`
}

// Certificate is one certificate of a service as the proxy loaded it.
// Alarm: it expires within 14 days (or has expired), or it could not be
// loaded (Error).
type Certificate struct {
	proxy.CertStatus
	Alarm bool `json:"alarm"`
}

// FrontendSNI is a service's routing by TLS server name: connections
// Routed by an sni_route, sent to the Default backend (no name or no
// route for it), and ClientHellos Refused by reason (every reason of
// hello.Reasons, 0 when none happened).
type FrontendSNI struct {
	Routed  int64            `json:"routed"`
	Default int64            `json:"default"`
	Refused map[string]int64 `json:"refused"`
}

// TLSVersions are the TLS versions handshakes are counted by.
var TLSVersions = []string{"TLSv1.2", "TLSv1.3"}

// Backend is one backend with its servers.
type Backend struct {
	Name        string `json:"name"`
	Balance     string `json:"balance,omitempty"`
	Persistence string `json:"persistence,omitempty"`
	Check       string `json:"check,omitempty"`
	// TLS is how the backend talks to its servers (backends[].tls): ""
	// plain TCP, "verify full against ...", "verify NONE: ..." or
	// "ERROR: ..." (the settings could not be loaded: every dial fails).
	TLS string `json:"tls,omitempty"`
	// HTTP: a service in mode http uses the backend (its response
	// counters mean something).
	HTTP bool `json:"http"`
	// Up: at least one server is UP; Active counts the servers that take
	// new sessions (UP, not drained, weight > 0); Weight is their
	// effective weights' sum.
	Up            bool             `json:"up"`
	Active        int              `json:"active_servers"`
	Weight        int              `json:"weight"`
	QueueCur      int64            `json:"queue_cur"`
	QueueMax      int64            `json:"queue_max"`
	QueueTimeouts int64            `json:"queue_timeouts"`
	Sessions      Sessions         `json:"sessions"`
	LastSession   time.Time        `json:"last_session,omitzero"`
	Requests      int64            `json:"requests"`
	Responses     map[string]int64 `json:"responses"`
	BytesIn       int64            `json:"bytes_in"`
	BytesOut      int64            `json:"bytes_out"`
	ConnectErrors int64            `json:"connect_errors"`
	Retries       int64            `json:"retries"`
	Redispatches  int64            `json:"redispatches"`
	NoServer      int64            `json:"no_server"`
	StickEntries  int              `json:"stick_entries,omitempty"`
	Servers       []BackendServer  `json:"servers"`
	hasProxy      bool
	queueTime     proxy.Histogram
	connectTime   proxy.Histogram
	responseTime  proxy.Histogram
	totalTime     proxy.Histogram
}

// Server states, as on HAProxy's stats page.
const (
	StateUp    = "UP"
	StateDown  = "DOWN"
	StateDrain = "DRAIN" // drained by the operator, or weight 0
	StateMaint = "MAINT" // servers[].disabled: maintenance, not checked
)

// BackendServer is one server of a backend.
type BackendServer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// State is UP, DOWN, DRAIN or MAINT (disabled); Checked is false for
	// check: none ("unchecked": always UP for the checks) and disabled
	// servers; SlowStart is the percent of its weight a server in slow
	// start gets (0: not in slow start). Backup: servers[].backup.
	State     string `json:"state"`
	Checked   bool   `json:"checked"`
	Backup    bool   `json:"backup,omitempty"`
	SlowStart int64  `json:"slowstart_pct,omitempty"`
	// Weight is the effective weight (0 drained, scaled in slow start);
	// ConfigWeight the configured one.
	Weight        int              `json:"weight"`
	ConfigWeight  int              `json:"config_weight"`
	Sessions      Sessions         `json:"sessions"`
	LastSession   time.Time        `json:"last_session,omitzero"`
	Idle          int              `json:"idle_connections"`
	BytesIn       int64            `json:"bytes_in"`
	BytesOut      int64            `json:"bytes_out"`
	Responses     map[string]int64 `json:"responses"`
	ConnectErrors int64            `json:"connect_errors"`
	Retries       int64            `json:"retries"`
	Redispatches  int64            `json:"redispatches"`
	// The last check: when, passed or not (nil: none yet), how long it
	// took and why it failed; Checks counts them, Downs the times the
	// server went down.
	LastCheck     time.Time `json:"last_check,omitzero"`
	CheckOK       *bool     `json:"check_ok"`
	CheckDuration float64   `json:"check_duration_s"`
	CheckError    string    `json:"check_error,omitempty"`
	Checks        int64     `json:"checks"`
	Downs         int64     `json:"downs"`
	// Downtime is the seconds down since halbd started; LastChange the
	// last state change and Reason why.
	Downtime   float64   `json:"downtime_s"`
	LastChange time.Time `json:"last_change,omitzero"`
	Reason     string    `json:"reason,omitempty"`

	up, drained, disabled, hasProxy, hasHealth bool
}

// Instance is one VRRP instance.
type Instance struct {
	Name              string   `json:"name"`
	Interface         string   `json:"interface"`
	VRID              int      `json:"vrid"`
	State             string   `json:"state"`
	Priority          int      `json:"priority"`
	EffectivePriority int      `json:"effective_priority"`
	Master            string   `json:"master,omitempty"`
	VIPs              []string `json:"vips"`
	HeldVIPs          []string `json:"held_vips"`
	// LastTransition is when the state last changed and Reason why.
	LastTransition   time.Time         `json:"last_transition,omitzero"`
	TransitionReason string            `json:"transition_reason,omitempty"`
	AdvertsSent      uint64            `json:"adverts_sent"`
	AdvertsReceived  uint64            `json:"adverts_received"`
	Transitions      uint64            `json:"transitions"`
	Dropped          uint64            `json:"dropped"`
	Drops            map[string]uint64 `json:"drops"`
	FaultReasons     []string          `json:"fault_reasons,omitempty"`
	Error            string            `json:"error,omitempty"`

	state vrrp.State
}

// TimeStats is the clock.
type TimeStats struct {
	Synchronized bool      `json:"synchronized"`
	Offset       float64   `json:"offset_s"`
	Server       string    `json:"server,omitempty"`
	LastSync     time.Time `json:"last_sync,omitzero"`
	Steps        int       `json:"steps"`
	Slews        int       `json:"slews"`
	Alarm        string    `json:"alarm,omitempty"`
}

// PeerStats is the peer link.
type PeerStats struct {
	// ConfigVersion is the running cluster parts' version ("lb1:5
	// lb2:3"); ConfigChanges the sum of its counts.
	ConfigVersion string     `json:"config_version"`
	ConfigChanges uint64     `json:"config_changes"`
	Peers         []PeerNode `json:"peers"`
	Alarms        []string   `json:"alarms,omitempty"`
}

// PeerNode is one peer.
type PeerNode struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Paired    bool      `json:"paired"`
	Reachable bool      `json:"reachable"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	InSync    bool      `json:"in_sync"`
	ClockSkew float64   `json:"clock_skew_s"`
	Error     string    `json:"error,omitempty"`
}

// classes are the response classes in the order shown.
var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// buildStats merges a snapshot into the tree both /metrics and /stats
// read. Backends come in the order the services name them, then those
// only the checks know.
func buildStats(s Snapshot, now time.Time) *Stats {
	st := &Stats{Node: s.Node, Version: s.Version, Now: now, Started: s.Started, Maintenance: s.Maintenance,
		Frontends: []Frontend{}, Backends: []Backend{}, VRRP: []Instance{}, Logs: append([]LogTarget{}, s.Logs...)}
	if !s.Started.IsZero() {
		st.Uptime = now.Sub(s.Started).Seconds()
	}
	idx := map[string]int{}
	for _, svc := range s.Services {
		c := svc.Stats
		f := Frontend{Name: svc.Name, Mode: svc.Mode, Listen: svc.Listen, Listening: svc.Listening, Error: svc.Error,
			Up: svc.Error == "" && len(svc.Listening) >= len(svc.Listen) && len(svc.Listening) > 0, Backends: []string{},
			Sessions: Sessions{Cur: c.ActiveConnections, Max: c.MaxActive, Total: c.Connections},
			Requests: c.Requests, Responses: classes6(c.Responses), BytesIn: c.BytesIn, BytesOut: c.BytesOut,
			RequestErrors: c.BadRequests, ResponseErrors: c.ServerErrors, Timeouts: c.Timeouts, NoServer: c.NoServer,
			Retries: c.Retries, totalTime: c.TotalTime, TLS: frontendTLS(svc), SNI: frontendSNI(c.SNI)}
		for _, b := range svc.Backends {
			f.Backends = append(f.Backends, b.Name)
			i, ok := idx[b.Name]
			if !ok {
				i = len(st.Backends)
				idx[b.Name] = i
				st.Backends = append(st.Backends, proxyBackend(b))
			}
			if svc.Mode == "http" {
				st.Backends[i].HTTP = true
			}
		}
		st.Frontends = append(st.Frontends, f)
	}
	for _, h := range s.Health {
		i, ok := idx[h.Name]
		if !ok {
			i = len(st.Backends)
			idx[h.Name] = i
			st.Backends = append(st.Backends, Backend{Name: h.Name, Servers: []BackendServer{}, Responses: classes6(nil)})
		}
		mergeHealth(&st.Backends[i], h)
	}
	for i := range st.Backends {
		finishBackend(&st.Backends[i])
	}
	for _, in := range s.VRRP {
		v := Instance{Name: in.Name, Interface: in.Interface, VRID: in.VRID, State: in.State.String(), state: in.State,
			Priority: in.Priority, EffectivePriority: in.EffectivePriority, Master: in.Master,
			VIPs: nonNil(in.VIPs), HeldVIPs: nonNil(in.HeldVIPs), AdvertsSent: in.Counters.AdvertsSent,
			AdvertsReceived: in.Counters.AdvertsReceived, Transitions: in.Counters.Transitions, Dropped: in.Counters.Dropped,
			Drops: map[string]uint64{}, FaultReasons: in.FaultReasons, Error: in.Error}
		if t := in.LastTransition; t != nil {
			v.LastTransition, v.TransitionReason = t.At, t.Reason
		}
		for _, r := range DropReasons {
			v.Drops[r] = 0
		}
		for r, n := range in.Drops {
			v.Drops[r] = uint64(n)
		}
		st.VRRP = append(st.VRRP, v)
	}
	if t := s.Time; t != nil {
		st.Time = &TimeStats{Synchronized: t.Synchronized, Offset: t.Offset.Seconds(), Server: t.Server, LastSync: t.LastSync,
			Steps: t.Steps, Slews: t.Slews, Alarm: t.Alarm}
	}
	if p := s.Peer; p != nil {
		ps := &PeerStats{ConfigVersion: p.ConfigVersion, ConfigChanges: versionSum(p.ConfigVersion), Peers: []PeerNode{}, Alarms: p.Alarms}
		for _, n := range p.Peers {
			ps.Peers = append(ps.Peers, PeerNode{Name: n.Name, Address: n.Address, Paired: n.Paired, Reachable: n.Reachable,
				LastSeen: n.LastSeen, InSync: n.InSync, ClockSkew: n.ClockSkew.Seconds(), Error: n.Error})
		}
		st.Peer = ps
	}
	st.BGP = s.BGP
	return st
}

// DropReasons are the reasons VRRP counts a dropped packet under
// (vrrp.DropReason and the receive checks): each instance reports all of
// them, 0 when none happened, so the label set is fixed.
var DropReasons = []string{"short", "version", "type", "length", "addr_count", "checksum", "family", "interval", "auth",
	"ttl", "unknown_peer", "other"}

// frontendTLS is a service's TLS, nil when it terminates none.
func frontendTLS(svc proxy.ServiceStatus) *FrontendTLS {
	t := svc.TLS
	if t == nil {
		return nil
	}
	f := &FrontendTLS{Policy: t.Policy, MinVersion: t.MinVersion, Default: t.Default, Versions: map[string]int64{},
		Failed: map[string]int64{}, Certificates: []Certificate{}}
	c := svc.Stats.TLS
	if c == nil {
		c = &proxy.TLSCounters{}
	}
	f.Handshakes, f.Resumed = c.Handshakes, c.Resumed
	f.Versions[TLSVersions[0]], f.Versions[TLSVersions[1]] = c.TLS12, c.TLS13
	for _, r := range proxy.HandshakeFailures {
		f.Failed[r] = c.Failed[r]
		f.FailedTotal += c.Failed[r]
	}
	for _, cs := range t.Certificates {
		f.Certificates = append(f.Certificates, Certificate{CertStatus: cs, Alarm: cs.ExpiresSoon || cs.Error != ""})
	}
	return f
}

// frontendSNI is a service's routing by server name, nil without
// sni_routes.
func frontendSNI(c *proxy.SNICounters) *FrontendSNI {
	if c == nil {
		return nil
	}
	f := &FrontendSNI{Routed: c.Routed, Default: c.Default, Refused: map[string]int64{}}
	for _, r := range hello.Reasons() {
		f.Refused[r] = c.Refused[r]
	}
	return f
}

// verifies: a backend's TLS is not "verify none" (plain backends have no
// TLS to verify; an ERROR dials nothing).
func verifies(tls string) bool { return !strings.HasPrefix(tls, "verify NONE") }

func proxyBackend(b proxy.BackendStatus) Backend {
	be := Backend{Name: b.Name, TLS: b.TLS, Balance: b.Balance, Persistence: b.Persistence, hasProxy: true,
		QueueCur: b.Queued, QueueMax: b.QueueMax, QueueTimeouts: b.QueueTimeouts,
		Sessions: Sessions{Cur: b.Active, Total: b.Total}, Requests: b.Requests, Responses: classes6(b.Responses),
		BytesIn: b.BytesIn, BytesOut: b.BytesOut, Retries: b.Retries, Redispatches: b.Redispatches, NoServer: b.NoServer,
		StickEntries: b.StickEntries, Servers: []BackendServer{},
		queueTime: b.QueueTime, connectTime: b.ConnectTime, responseTime: b.ResponseTime, totalTime: b.TotalTime}
	for _, s := range b.Servers {
		sv := BackendServer{Name: s.Name, Address: s.Address, ConfigWeight: s.Weight, SlowStart: s.SlowStartPct,
			Sessions: Sessions{Cur: s.Active, Max: s.MaxActive, Limit: s.MaxConn, Total: s.Total}, LastSession: s.LastSession,
			Idle: s.Idle, BytesIn: s.BytesIn, BytesOut: s.BytesOut, Responses: classes6(s.Responses),
			ConnectErrors: s.ConnectErrors, Retries: s.Retries, Redispatches: s.Redispatches,
			up: s.Up, drained: s.Drained, disabled: s.Disabled, Backup: s.Backup, hasProxy: true, Checked: !s.Disabled}
		be.ConnectErrors += s.ConnectErrors
		if s.LastSession.After(be.LastSession) {
			be.LastSession = s.LastSession
		}
		be.Servers = append(be.Servers, sv)
	}
	return be
}

func mergeHealth(be *Backend, h health.BackendHealth) {
	be.Check = h.Check
	for _, hs := range h.Servers {
		i := -1
		for j := range be.Servers {
			if be.Servers[j].Name == hs.Name {
				i = j
				break
			}
		}
		if i < 0 {
			be.Servers = append(be.Servers, BackendServer{Name: hs.Name, Address: hs.Address, Responses: classes6(nil), up: true})
			i = len(be.Servers) - 1
		}
		sv := &be.Servers[i]
		sv.hasHealth = true
		sv.Checked = hs.State != "unchecked" && hs.State != "disabled"
		if hs.State == "disabled" {
			sv.disabled = true
		}
		if !sv.hasProxy {
			sv.up = hs.State != "down"
		}
		sv.LastCheck, sv.CheckDuration, sv.CheckError = hs.LastCheck, hs.LatencyMS/1000, hs.LastError
		if hs.Checks > 0 && sv.Checked {
			ok := hs.LastError == ""
			sv.CheckOK = &ok
		}
		sv.Checks, sv.Downs, sv.Downtime = hs.Checks, hs.Downs, hs.Downtime.Seconds()
		sv.LastChange, sv.Reason = hs.LastChange, hs.Reason
	}
}

// finishBackend derives each server's state and effective weight and the
// backend's totals from them.
func finishBackend(be *Backend) {
	for i := range be.Servers {
		sv := &be.Servers[i]
		switch {
		case sv.disabled:
			sv.State = StateMaint
		case !sv.up:
			sv.State = StateDown
		case sv.drained || (sv.hasProxy && sv.ConfigWeight == 0):
			sv.State = StateDrain
		default:
			sv.State = StateUp
		}
		sv.Weight = sv.ConfigWeight
		if sv.drained || sv.disabled {
			sv.Weight = 0
		} else if sv.SlowStart > 0 && sv.SlowStart < 100 {
			sv.Weight = max(int(int64(sv.ConfigWeight)*sv.SlowStart/100), 1)
		}
		if sv.up {
			be.Up = true
		}
		if sv.State == StateUp {
			be.Active++
			be.Weight += sv.Weight
		}
	}
}

// classes6 is a response map with every class present.
func classes6(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(classes))
	for _, c := range classes {
		out[c] = m[c]
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// versionSum is the sum of a version vector's counts ("lb1:5 lb2:3" is
// 8): it grows with every change to the cluster parts wherever made.
func versionSum(v string) uint64 {
	var n uint64
	for _, f := range strings.Fields(v) {
		if i := strings.LastIndexByte(f, ':'); i >= 0 {
			if c, err := strconv.ParseUint(f[i+1:], 10, 64); err == nil {
				n += c
			}
		}
	}
	return n
}
