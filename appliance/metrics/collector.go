package metrics

import (
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"halb/appliance/api"
	"halb/appliance/proxy"
	"halb/appliance/proxy/hello"
)

// descs lists every metric the collector emits (Describe sends them all;
// docs/metrics.md has a row for each, a test checks it).
var descs []*metricDesc

// metricDesc is a metric's name, help and label names, with its
// client_golang Desc (for the registry) and the order of its labels by
// name (for the families built directly, see famSink).
type metricDesc struct {
	name, help string
	labels     []string
	sorted     []int // indices of labels in name order
	pd         *prometheus.Desc
}

func desc(name, help string, labels ...string) *metricDesc {
	d := &metricDesc{name: name, help: help, labels: labels, pd: prometheus.NewDesc(name, help, labels, nil)}
	for i := range labels {
		d.sorted = append(d.sorted, i)
	}
	sort.SliceStable(d.sorted, func(i, j int) bool { return labels[d.sorted[i]] < labels[d.sorted[j]] })
	descs = append(descs, d)
	return d
}

var (
	fe  = []string{"proxy"}
	sv  = []string{"proxy", "server"}
	vr  = []string{"instance", "interface", "vrid"}
	cls = []string{"code"}
)

func with(a []string, b ...string) []string { return append(append([]string{}, a...), b...) }

// The metrics; names mirror HAProxy's built-in exporter (haproxy_ →
// halb_) and keepalived exporters where they have an equivalent.
var (
	mUp          = desc("halb_up", "1: halbd answers this scrape.")
	mBuild       = desc("halb_build_info", "Always 1; the build's version as a label.", "version")
	mNode        = desc("halb_node_info", "Always 1; node.name as a label.", "node")
	mStart       = desc("halb_start_time_seconds", "When halbd started, Unix time.")
	mMaintenance = desc("halb_maintenance", "1: this node is in maintenance (keeps no VIPs).")

	mFeUp       = desc("halb_frontend_up", "1: the service listens on every listen address.", fe...)
	mFeCur      = desc("halb_frontend_current_sessions", "Client connections open now.", fe...)
	mFeMax      = desc("halb_frontend_max_sessions", "The most client connections open at once since start.", fe...)
	mFeTotal    = desc("halb_frontend_sessions_total", "Client connections accepted.", fe...)
	mFeIn       = desc("halb_frontend_bytes_in_total", "Bytes received from clients.", fe...)
	mFeOut      = desc("halb_frontend_bytes_out_total", "Bytes sent to clients.", fe...)
	mFeReq      = desc("halb_frontend_http_requests_total", "HTTP requests received (mode http).", fe...)
	mFeResp     = desc("halb_frontend_http_responses_total", "HTTP responses sent to clients by class (mode http).", with(fe, cls...)...)
	mFeReqErr   = desc("halb_frontend_request_errors_total", "Invalid or incomplete requests (HAProxy's ereq).", fe...)
	mFeRespErr  = desc("halb_frontend_response_errors_total", "Requests whose server failed or sent an invalid response (HAProxy's eresp).", fe...)
	mFeTimeouts = desc("halb_frontend_timeouts_total", "Requests or connections ended by a client or server timeout.", fe...)
	mFeNoServer = desc("halb_frontend_no_server_total", "Requests or connections no server could take (503).", fe...)
	mFeRetries  = desc("halb_frontend_retries_total", "Connection attempts beyond a request's first.", fe...)
	mFeTime     = desc("halb_frontend_total_time_seconds", "Whole requests (http: HAProxy's Ta) and connections (tcp: Tt).", fe...)

	mFeTLSHandshakes = desc("halb_frontend_tls_handshakes_total", "TLS handshakes completed with clients (services with tls).", fe...)
	mFeTLSResumed    = desc("halb_frontend_tls_resumed_total", "Completed TLS handshakes that resumed a session.", fe...)
	mFeTLSVersion    = desc("halb_frontend_tls_version_handshakes_total", "Completed TLS handshakes by protocol version.", with(fe, "version")...)
	mFeTLSFailed     = desc("halb_frontend_tls_failed_handshakes_total", "Failed TLS handshakes by reason.", with(fe, "reason")...)
	mFeCertExpiry    = desc("halb_frontend_tls_certificate_not_after_timestamp_seconds", "When the certificate expires, Unix time (absent when it is not loaded).", with(fe, "certificate")...)
	mFeCertAlarm     = desc("halb_frontend_tls_certificate_alarm", "1: the certificate expires within 14 days (or has expired), or could not be loaded.", with(fe, "certificate")...)
	mFeSNIRouted     = desc("halb_frontend_sni_routed_total", "Connections routed by an sni_route (services with sni_routes).", fe...)
	mFeSNIDefault    = desc("halb_frontend_sni_default_total", "Connections sent to default_backend: no server name, or no route for it.", fe...)
	mFeSNIRefused    = desc("halb_frontend_sni_refused_total", "ClientHellos refused (not read or not TLS), by reason.", with(fe, "reason")...)

	mBeUp        = desc("halb_backend_up", "1: at least one server is UP.", fe...)
	mBeActive    = desc("halb_backend_active_servers", "Servers taking new sessions (UP, not drained, weight > 0).", fe...)
	mBeWeight    = desc("halb_backend_weight", "Sum of the effective weights of the active servers.", fe...)
	mBeQCur      = desc("halb_backend_current_queue", "Requests waiting for a server slot now.", fe...)
	mBeQMax      = desc("halb_backend_max_queue", "The longest queue since start.", fe...)
	mBeQTimeouts = desc("halb_backend_queue_timeouts_total", "Requests that waited timeouts.queue and got 503.", fe...)
	mBeCur       = desc("halb_backend_current_sessions", "Sessions (server connections) open now.", fe...)
	mBeTotal     = desc("halb_backend_sessions_total", "Sessions since start.", fe...)
	mBeLast      = desc("halb_backend_last_session_seconds", "Seconds since a server of the backend was last given a session (absent before the first).", fe...)
	mBeIn        = desc("halb_backend_bytes_in_total", "Bytes received from clients for this backend.", fe...)
	mBeOut       = desc("halb_backend_bytes_out_total", "Bytes sent to clients from this backend.", fe...)
	mBeReq       = desc("halb_backend_http_requests_total", "HTTP requests routed to the backend.", fe...)
	mBeResp      = desc("halb_backend_http_responses_total", "HTTP responses from the backend's servers by class.", with(fe, cls...)...)
	mBeConnErr   = desc("halb_backend_connection_errors_total", "Failed connection attempts to the backend's servers.", fe...)
	mBeRetry     = desc("halb_backend_retry_warnings_total", "Connection attempts beyond a session's first.", fe...)
	mBeRedisp    = desc("halb_backend_redispatch_warnings_total", "Retries that went to another server.", fe...)
	mBeNoServer  = desc("halb_backend_no_server_total", "Requests or connections for which no server was available.", fe...)
	mBeQTime     = desc("halb_backend_queue_time_seconds", "Time waiting for a server slot (HAProxy's Tw).", fe...)
	mBeCTime     = desc("halb_backend_connect_time_seconds", "Time to connect to the server (Tc).", fe...)
	mBeRTime     = desc("halb_backend_response_time_seconds", "Time from the request sent to the response head (Tr, http).", fe...)
	mBeTTime     = desc("halb_backend_total_time_seconds", "Whole request (Ta) or connection (Tt).", fe...)
	mBeTLSVerify = desc("halb_backend_tls_verify", "Backends with tls: 1 the servers' certificates are verified, 0 verify none (not checked).", fe...)

	mSvUp        = desc("halb_server_up", "1: the server is up (checks passing, or unchecked); 0: down.", sv...)
	mSvDrain     = desc("halb_server_drained", "1: the server is drained (by the operator, or weight 0): no new sessions.", sv...)
	mSvMaint     = desc("halb_server_maintenance", "1: the server is disabled (servers[].disabled): no traffic, not checked.", sv...)
	mSvBackup    = desc("halb_server_backup", "1: a backup server (servers[].backup): used only while no other server is.", sv...)
	mSvWeight    = desc("halb_server_weight", "Effective weight: 0 when drained, scaled during slow start.", sv...)
	mSvUWeight   = desc("halb_server_uweight", "Configured weight.", sv...)
	mSvCur       = desc("halb_server_current_sessions", "Sessions open now.", sv...)
	mSvMax       = desc("halb_server_max_sessions", "The most sessions open at once since start.", sv...)
	mSvLimit     = desc("halb_server_limit_sessions", "maxconn (absent when unlimited).", sv...)
	mSvTotal     = desc("halb_server_sessions_total", "Sessions since start.", sv...)
	mSvLast      = desc("halb_server_last_session_seconds", "Seconds since the server was last given a session (absent before the first).", sv...)
	mSvIdle      = desc("halb_server_idle_connections_current", "Idle pooled connections to the server.", sv...)
	mSvIn        = desc("halb_server_bytes_in_total", "Bytes received from clients for this server.", sv...)
	mSvOut       = desc("halb_server_bytes_out_total", "Bytes sent to clients from this server.", sv...)
	mSvResp      = desc("halb_server_http_responses_total", "HTTP responses from the server by class.", with(sv, cls...)...)
	mSvConnErr   = desc("halb_server_connection_errors_total", "Failed connection attempts to the server.", sv...)
	mSvRetry     = desc("halb_server_retry_warnings_total", "Connection attempts to the server beyond a session's first.", sv...)
	mSvRedisp    = desc("halb_server_redispatch_warnings_total", "Sessions that left the server for another after a failure.", sv...)
	mSvCheckUp   = desc("halb_server_check_up", "1: the last health check passed; 0: it failed (absent before the first, and for check: none).", sv...)
	mSvCheckDur  = desc("halb_server_check_duration_seconds", "Duration of the last health check.", sv...)
	mSvChecks    = desc("halb_server_checks_total", "Health checks run.", sv...)
	mSvUpDown    = desc("halb_server_check_up_down_total", "Times the server went down.", sv...)
	mSvLastChg   = desc("halb_server_check_last_change_seconds", "Seconds since the server's last state change.", sv...)
	mSvDowntime  = desc("halb_server_downtime_seconds_total", "Seconds the server was down since halbd started.", sv...)
	mSvSlowStart = desc("halb_server_slowstart_ratio", "Share of its weight a server in slow start gets (1 when not in slow start).", sv...)

	mVState    = desc("halb_vrrp_state", "State: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.", vr...)
	mVPrio     = desc("halb_vrrp_priority", "Configured priority.", vr...)
	mVEffPrio  = desc("halb_vrrp_effective_priority", "Priority after tracking.", vr...)
	mVHeld     = desc("halb_vrrp_vips_held", "VIPs this node holds now.", vr...)
	mVVIPs     = desc("halb_vrrp_vips", "VIPs of the instance.", vr...)
	mVSent     = desc("halb_vrrp_advertisements_sent_total", "Advertisements sent.", vr...)
	mVRecv     = desc("halb_vrrp_advertisements_received_total", "Advertisements received and accepted.", vr...)
	mVDropped  = desc("halb_vrrp_dropped_total", "Packets dropped by reason.", with(vr, "reason")...)
	mVTrans    = desc("halb_vrrp_transitions_total", "State changes.", vr...)
	mVLastTran = desc("halb_vrrp_last_transition_timestamp_seconds", "When the state last changed, Unix time (absent before the first).", vr...)

	mTimeOffset = desc("halb_time_offset_seconds", "The chosen NTP server's time minus the local clock.")
	mTimeSync   = desc("halb_time_synchronized", "1: a server was chosen recently and the offset is within time.max_offset.")
	mTimeCorr   = desc("halb_time_corrections_total", "Clock corrections by kind (step, slew).", "kind")

	mPeerUp      = desc("halb_peer_up", "1: the last exchange with the peer (at most 3 s ago) worked.", "peer")
	mPeerSeen    = desc("halb_peer_last_seen_seconds", "Seconds since the peer was last heard (absent before the first).", "peer")
	mPeerInSync  = desc("halb_peer_config_in_sync", "1: the peer runs the same cluster config version.", "peer")
	mPeerSkew    = desc("halb_peer_clock_skew_seconds", "The peer's clock minus ours.", "peer")
	mBGPUp       = desc("halb_bgp_session_up", "1: the BGP session with the neighbor is established.", "neighbor", "asn")
	mBGPUptime   = desc("halb_bgp_session_uptime_seconds", "Seconds the session has been established (0 while it is not).", "neighbor", "asn")
	mBGPReceived = desc("halb_bgp_prefixes_received", "Prefixes received from the neighbor.", "neighbor")
	mBGPSent     = desc("halb_bgp_prefixes_sent", "Prefixes advertised to the neighbor.", "neighbor")
	mBGPVIP      = desc("halb_bgp_vip_announced", "1: the VIP is announced (with GRACEFUL_SHUTDOWN or not); 0: withdrawn.", "vip", "mode")
	mBGPGShut    = desc("halb_bgp_vip_graceful_shutdown", "1: the VIP is announced with the GRACEFUL_SHUTDOWN community (maintenance drains it).", "vip")
	mBGPHandoff  = desc("halb_bgp_vip_handoff", "1: the VIP is announced while maintenance hands its new connections to bgp.drain_to.", "vip")
	mConfVersion = desc("halb_config_version", "Sum of the cluster config's version vector: grows with every change, wherever made.")

	mLogLines   = desc("halb_log_lines_total", "Log lines written to the target.", "target", "to")
	mLogDropped = desc("halb_log_dropped_total", "Log lines dropped because the target was slow or gone.", "target", "to")
	mLogErrors  = desc("halb_log_errors_total", "Write errors of the target.", "target", "to")

	mObsServed  = desc("halb_observe_requests_total", "Requests the observe listener served.")
	mObsRefused = desc("halb_observe_refused_total", "Requests and connections the observe listener refused, by reason.", "reason")
)

// RefuseReasons are the reasons the listener refuses a client.
var RefuseReasons = []string{"forbidden", "unauthorized", "method", "vip", "busy"}

// collector turns one Snapshot per scrape into const metrics: the
// registry's way (Registry, the tests); /metrics builds the same families
// directly (gatherer).
type collector struct {
	srv *Server
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d.pd
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	emit(chanSink(ch), c.srv.stats())
}

// sink takes the samples emit makes.
type sink interface {
	sample(d *metricDesc, t dto.MetricType, v float64, labels []string)
	histogram(d *metricDesc, count uint64, sum float64, bounds []float64, cum []uint64, labels []string)
}

// chanSink makes client_golang const metrics of the samples.
type chanSink chan<- prometheus.Metric

func (ch chanSink) sample(d *metricDesc, t dto.MetricType, v float64, labels []string) {
	vt := prometheus.GaugeValue
	if t == dto.MetricType_COUNTER {
		vt = prometheus.CounterValue
	}
	ch <- prometheus.MustNewConstMetric(d.pd, vt, v, labels...)
}

func (ch chanSink) histogram(d *metricDesc, count uint64, sum float64, bounds []float64, cum []uint64, labels []string) {
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		buckets[b] = cum[i]
	}
	ch <- prometheus.MustNewConstHistogram(d.pd, count, sum, buckets, labels...)
}

func gauge(sk sink, d *metricDesc, v float64, l ...string) {
	sk.sample(d, dto.MetricType_GAUGE, v, l)
}

func counter(sk sink, d *metricDesc, v float64, l ...string) {
	sk.sample(d, dto.MetricType_COUNTER, v, l)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// histogram turns a proxy histogram (non-cumulative counts, the last
// above every bound) into a Prometheus one.
func histogram(sk sink, d *metricDesc, h proxy.Histogram, l ...string) {
	cum := make([]uint64, len(h.Bounds))
	var c uint64
	for i := range h.Bounds {
		if i < len(h.Counts) {
			c += h.Counts[i]
		}
		cum[i] = c
	}
	for i := len(h.Bounds); i < len(h.Counts); i++ {
		c += h.Counts[i]
	}
	sk.histogram(d, c, h.Sum, h.Bounds, cum, l)
}

func responses(sk sink, d *metricDesc, m map[string]int64, l ...string) {
	for _, c := range classes {
		counter(sk, d, float64(m[c]), with(l, c)...)
	}
}

func since(now, t time.Time) float64 { return max(now.Sub(t).Seconds(), 0) }

// emitTLS emits a TLS service's handshakes and certificates.
func emitTLS(ch sink, t *FrontendTLS, n string) {
	counter(ch, mFeTLSHandshakes, float64(t.Handshakes), n)
	counter(ch, mFeTLSResumed, float64(t.Resumed), n)
	for _, v := range TLSVersions {
		counter(ch, mFeTLSVersion, float64(t.Versions[v]), n, v)
	}
	for _, r := range proxy.HandshakeFailures {
		counter(ch, mFeTLSFailed, float64(t.Failed[r]), n, r)
	}
	for _, c := range t.Certificates {
		if c.Error == "" && !c.NotAfter.IsZero() {
			gauge(ch, mFeCertExpiry, float64(c.NotAfter.Unix()), n, c.Name)
		}
		gauge(ch, mFeCertAlarm, b2f(c.Alarm), n, c.Name)
	}
}

func emit(ch sink, st *Stats) {
	now := st.Now
	gauge(ch, mUp, 1)
	gauge(ch, mBuild, 1, st.Version)
	if st.Node != "" {
		gauge(ch, mNode, 1, st.Node)
	}
	if !st.Started.IsZero() {
		gauge(ch, mStart, float64(st.Started.UnixNano())/1e9)
	}
	gauge(ch, mMaintenance, b2f(st.Maintenance))
	for _, f := range st.Frontends {
		n := f.Name
		gauge(ch, mFeUp, b2f(f.Up), n)
		gauge(ch, mFeCur, float64(f.Sessions.Cur), n)
		gauge(ch, mFeMax, float64(f.Sessions.Max), n)
		counter(ch, mFeTotal, float64(f.Sessions.Total), n)
		counter(ch, mFeIn, float64(f.BytesIn), n)
		counter(ch, mFeOut, float64(f.BytesOut), n)
		if f.Mode == "http" {
			counter(ch, mFeReq, float64(f.Requests), n)
			responses(ch, mFeResp, f.Responses, n)
		}
		counter(ch, mFeReqErr, float64(f.RequestErrors), n)
		counter(ch, mFeRespErr, float64(f.ResponseErrors), n)
		counter(ch, mFeTimeouts, float64(f.Timeouts), n)
		counter(ch, mFeNoServer, float64(f.NoServer), n)
		counter(ch, mFeRetries, float64(f.Retries), n)
		histogram(ch, mFeTime, f.totalTime, n)
		if t := f.TLS; t != nil {
			emitTLS(ch, t, n)
		}
		if s := f.SNI; s != nil {
			counter(ch, mFeSNIRouted, float64(s.Routed), n)
			counter(ch, mFeSNIDefault, float64(s.Default), n)
			for _, r := range hello.Reasons() {
				counter(ch, mFeSNIRefused, float64(s.Refused[r]), n, r)
			}
		}
	}
	for _, b := range st.Backends {
		n := b.Name
		gauge(ch, mBeUp, b2f(b.Up), n)
		gauge(ch, mBeActive, float64(b.Active), n)
		gauge(ch, mBeWeight, float64(b.Weight), n)
		if b.TLS != "" {
			gauge(ch, mBeTLSVerify, b2f(verifies(b.TLS)), n)
		}
		if b.hasProxy {
			gauge(ch, mBeQCur, float64(b.QueueCur), n)
			gauge(ch, mBeQMax, float64(b.QueueMax), n)
			counter(ch, mBeQTimeouts, float64(b.QueueTimeouts), n)
			gauge(ch, mBeCur, float64(b.Sessions.Cur), n)
			counter(ch, mBeTotal, float64(b.Sessions.Total), n)
			if !b.LastSession.IsZero() {
				gauge(ch, mBeLast, since(now, b.LastSession), n)
			}
			counter(ch, mBeIn, float64(b.BytesIn), n)
			counter(ch, mBeOut, float64(b.BytesOut), n)
			if b.HTTP {
				counter(ch, mBeReq, float64(b.Requests), n)
				responses(ch, mBeResp, b.Responses, n)
				histogram(ch, mBeRTime, b.responseTime, n)
			}
			counter(ch, mBeConnErr, float64(b.ConnectErrors), n)
			counter(ch, mBeRetry, float64(b.Retries), n)
			counter(ch, mBeRedisp, float64(b.Redispatches), n)
			counter(ch, mBeNoServer, float64(b.NoServer), n)
			histogram(ch, mBeQTime, b.queueTime, n)
			histogram(ch, mBeCTime, b.connectTime, n)
			histogram(ch, mBeTTime, b.totalTime, n)
		}
		for _, s := range b.Servers {
			l := []string{n, s.Name}
			gauge(ch, mSvUp, b2f(s.up), l...)
			gauge(ch, mSvDrain, b2f(s.State == StateDrain), l...)
			gauge(ch, mSvMaint, b2f(s.State == StateMaint), l...)
			gauge(ch, mSvBackup, b2f(s.Backup), l...)
			gauge(ch, mSvWeight, float64(s.Weight), l...)
			if s.hasProxy {
				gauge(ch, mSvUWeight, float64(s.ConfigWeight), l...)
				ratio := 1.0
				if s.SlowStart > 0 && s.SlowStart < 100 {
					ratio = float64(s.SlowStart) / 100
				}
				gauge(ch, mSvSlowStart, ratio, l...)
				gauge(ch, mSvCur, float64(s.Sessions.Cur), l...)
				gauge(ch, mSvMax, float64(s.Sessions.Max), l...)
				if s.Sessions.Limit > 0 {
					gauge(ch, mSvLimit, float64(s.Sessions.Limit), l...)
				}
				counter(ch, mSvTotal, float64(s.Sessions.Total), l...)
				if !s.LastSession.IsZero() {
					gauge(ch, mSvLast, since(now, s.LastSession), l...)
				}
				gauge(ch, mSvIdle, float64(s.Idle), l...)
				counter(ch, mSvIn, float64(s.BytesIn), l...)
				counter(ch, mSvOut, float64(s.BytesOut), l...)
				if b.HTTP {
					responses(ch, mSvResp, s.Responses, l...)
				}
				counter(ch, mSvConnErr, float64(s.ConnectErrors), l...)
				counter(ch, mSvRetry, float64(s.Retries), l...)
				counter(ch, mSvRedisp, float64(s.Redispatches), l...)
			}
			if s.hasHealth {
				if s.CheckOK != nil {
					gauge(ch, mSvCheckUp, b2f(*s.CheckOK), l...)
				}
				if s.Checked {
					gauge(ch, mSvCheckDur, s.CheckDuration, l...)
				}
				counter(ch, mSvChecks, float64(s.Checks), l...)
				counter(ch, mSvUpDown, float64(s.Downs), l...)
				if !s.LastChange.IsZero() {
					gauge(ch, mSvLastChg, since(now, s.LastChange), l...)
				}
				counter(ch, mSvDowntime, s.Downtime, l...)
			}
		}
	}
	for _, v := range st.VRRP {
		l := []string{v.Name, v.Interface, strconv.Itoa(v.VRID)}
		gauge(ch, mVState, float64(v.state), l...)
		gauge(ch, mVPrio, float64(v.Priority), l...)
		gauge(ch, mVEffPrio, float64(v.EffectivePriority), l...)
		gauge(ch, mVHeld, float64(len(v.HeldVIPs)), l...)
		gauge(ch, mVVIPs, float64(len(v.VIPs)), l...)
		counter(ch, mVSent, float64(v.AdvertsSent), l...)
		counter(ch, mVRecv, float64(v.AdvertsReceived), l...)
		counter(ch, mVTrans, float64(v.Transitions), l...)
		for _, r := range sortedKeys(v.Drops) {
			counter(ch, mVDropped, float64(v.Drops[r]), with(l, r)...)
		}
		if !v.LastTransition.IsZero() {
			gauge(ch, mVLastTran, float64(v.LastTransition.UnixNano())/1e9, l...)
		}
	}
	if t := st.Time; t != nil {
		gauge(ch, mTimeOffset, t.Offset)
		gauge(ch, mTimeSync, b2f(t.Synchronized))
		counter(ch, mTimeCorr, float64(t.Steps), "step")
		counter(ch, mTimeCorr, float64(t.Slews), "slew")
	}
	if p := st.Peer; p != nil {
		gauge(ch, mConfVersion, float64(p.ConfigChanges))
		for _, n := range p.Peers {
			gauge(ch, mPeerUp, b2f(n.Reachable), n.Name)
			if !n.LastSeen.IsZero() {
				gauge(ch, mPeerSeen, since(now, n.LastSeen), n.Name)
			}
			gauge(ch, mPeerInSync, b2f(n.InSync), n.Name)
			gauge(ch, mPeerSkew, n.ClockSkew, n.Name)
		}
	}
	if b := st.BGP; b != nil {
		emitBGP(ch, b, now)
	}
	for _, t := range st.Logs {
		counter(ch, mLogLines, float64(t.Lines), t.Name, t.To)
		counter(ch, mLogDropped, float64(t.Dropped), t.Name, t.To)
		counter(ch, mLogErrors, float64(t.Errors), t.Name, t.To)
	}
	counter(ch, mObsServed, float64(st.Listener.Served))
	for _, r := range RefuseReasons {
		counter(ch, mObsRefused, float64(st.Listener.Refused[r]), r)
	}
}

// emitBGP emits the BGP sessions and VIPs.
func emitBGP(ch sink, b *api.BGPStatus, now time.Time) {
	for _, s := range b.Sessions {
		asn := strconv.FormatUint(uint64(s.ASN), 10)
		up := s.State == "established"
		gauge(ch, mBGPUp, b2f(up), s.Address, asn)
		uptime := 0.0
		if up && !s.Since.IsZero() {
			uptime = since(now, s.Since)
		}
		gauge(ch, mBGPUptime, uptime, s.Address, asn)
		gauge(ch, mBGPReceived, float64(s.Received), s.Address)
		gauge(ch, mBGPSent, float64(s.Sent), s.Address)
	}
	for _, v := range b.VIPs {
		gauge(ch, mBGPVIP, b2f(v.Announced), v.VIP, v.Mode)
		gauge(ch, mBGPGShut, b2f(v.State == "graceful_shutdown"), v.VIP)
		gauge(ch, mBGPHandoff, b2f(v.State == "handoff"), v.VIP)
	}
}

// runtimeCollectors are the Go runtime's and the process's collectors
// (the process figures at most once per processEvery).
func runtimeCollectors() []prometheus.Collector {
	return []prometheus.Collector{collectors.NewGoCollector(),
		&cachedCollector{c: collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), every: processEvery, now: time.Now}}
}

// newRegistry is the listener's registry: the snapshot collector and the
// runtime ones.
func newRegistry(s *Server, runtime []prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{srv: s})
	reg.MustRegister(runtime...)
	return reg
}
