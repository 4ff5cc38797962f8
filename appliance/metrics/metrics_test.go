package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"halb/appliance/health"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// scrape GETs /metrics from h and parses it with Prometheus' text parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want
// ("k", "v" pairs); ok false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsEqualSnapshot(t *testing.T) {
	s := New(fullSnapshot, quiet())
	fams := scrape(t, s)
	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"halb_up", nil, 1},
		{"halb_build_info", []string{"version", "1.2.3"}, 1},
		{"halb_node_info", []string{"node", "lb1"}, 1},
		{"halb_start_time_seconds", nil, float64(t0.Unix() - 26*3600)},
		{"halb_frontend_current_sessions", []string{"proxy", "web"}, 44},
		{"halb_frontend_max_sessions", []string{"proxy", "web"}, 120},
		{"halb_frontend_sessions_total", []string{"proxy", "web"}, 5000},
		{"halb_frontend_sessions_total", []string{"proxy", "db"}, 900},
		{"halb_frontend_bytes_in_total", []string{"proxy", "web"}, 1239567},
		{"halb_frontend_bytes_out_total", []string{"proxy", "web"}, 98835432},
		{"halb_frontend_http_requests_total", []string{"proxy", "web"}, 12945},
		{"halb_frontend_http_responses_total", []string{"proxy", "web", "code", "2xx"}, 12590},
		{"halb_frontend_http_responses_total", []string{"proxy", "web", "code", "5xx"}, 55},
		{"halb_frontend_http_responses_total", []string{"proxy", "web", "code", "1xx"}, 0},
		{"halb_frontend_request_errors_total", []string{"proxy", "web"}, 3},
		{"halb_frontend_response_errors_total", []string{"proxy", "web"}, 6},
		{"halb_frontend_total_time_seconds", []string{"proxy", "web"}, 1500 + 9000 + 2500 + 300 + 45},
		{"halb_frontend_up", []string{"proxy", "web"}, 1},
		{"halb_backend_current_queue", []string{"proxy", "www"}, 3},
		{"halb_backend_max_queue", []string{"proxy", "www"}, 17},
		{"halb_backend_current_sessions", []string{"proxy", "www"}, 42},
		{"halb_backend_sessions_total", []string{"proxy", "www"}, 23456},
		{"halb_backend_retry_warnings_total", []string{"proxy", "www"}, 7},
		{"halb_backend_redispatch_warnings_total", []string{"proxy", "www"}, 5},
		{"halb_backend_connection_errors_total", []string{"proxy", "www"}, 5},
		{"halb_backend_http_responses_total", []string{"proxy", "www", "code", "4xx"}, 200},
		{"halb_backend_connect_time_seconds", []string{"proxy", "www"}, 23456},
		{"halb_backend_last_session_seconds", []string{"proxy", "www"}, 1},
		{"halb_backend_active_servers", []string{"proxy", "www"}, 2},
		{"halb_backend_active_servers", []string{"proxy", "api"}, 0},
		{"halb_backend_up", []string{"proxy", "api"}, 1}, // api2 is up, though drained
		{"halb_backend_weight", []string{"proxy", "www"}, 14},
		{"halb_server_up", []string{"proxy", "www", "server", "web1"}, 1},
		{"halb_server_up", []string{"proxy", "api", "server", "api1"}, 0},
		{"halb_server_drained", []string{"proxy", "api", "server", "api2"}, 1},
		{"halb_server_weight", []string{"proxy", "www", "server", "web2"}, 4},
		{"halb_server_weight", []string{"proxy", "api", "server", "api2"}, 0},
		{"halb_server_uweight", []string{"proxy", "www", "server", "web2"}, 10},
		{"halb_server_slowstart_ratio", []string{"proxy", "www", "server", "web2"}, 0.4},
		{"halb_server_current_sessions", []string{"proxy", "www", "server", "web1"}, 30},
		{"halb_server_max_sessions", []string{"proxy", "www", "server", "web1"}, 77},
		{"halb_server_limit_sessions", []string{"proxy", "www", "server", "web1"}, 100},
		{"halb_server_sessions_total", []string{"proxy", "www", "server", "web1"}, 15000},
		{"halb_server_bytes_out_total", []string{"proxy", "www", "server", "web1"}, 60000000},
		{"halb_server_connection_errors_total", []string{"proxy", "api", "server", "api1"}, 9},
		{"halb_server_http_responses_total", []string{"proxy", "www", "server", "web1", "code", "5xx"}, 40},
		{"halb_server_last_session_seconds", []string{"proxy", "www", "server", "web1"}, 2},
		{"halb_server_check_up", []string{"proxy", "api", "server", "api1"}, 0},
		{"halb_server_check_up", []string{"proxy", "www", "server", "web1"}, 1},
		{"halb_server_check_duration_seconds", []string{"proxy", "www", "server", "web2"}, 0.00225},
		{"halb_server_check_up_down_total", []string{"proxy", "www", "server", "web2"}, 3},
		{"halb_server_check_last_change_seconds", []string{"proxy", "api", "server", "api1"}, 180},
		{"halb_server_downtime_seconds_total", []string{"proxy", "www", "server", "web2"}, 600},
		{"halb_vrrp_state", []string{"instance", "web-a", "interface", "eth1", "vrid", "51"}, 2},
		{"halb_vrrp_state", []string{"instance", "web-b"}, 1},
		{"halb_vrrp_effective_priority", []string{"instance", "web-b"}, 40},
		{"halb_vrrp_advertisements_sent_total", []string{"instance", "web-a"}, 6000},
		{"halb_vrrp_advertisements_received_total", []string{"instance", "web-b"}, 6100},
		{"halb_vrrp_dropped_total", []string{"instance", "web-a", "reason", "ttl"}, 2},
		{"halb_vrrp_dropped_total", []string{"instance", "web-a", "reason", "auth"}, 0},
		{"halb_vrrp_transitions_total", []string{"instance", "web-a"}, 2},
		{"halb_vrrp_vips_held", []string{"instance", "web-b"}, 0},
		{"halb_vrrp_vips", []string{"instance", "web-b"}, 2},
		{"halb_time_offset_seconds", nil, 0.0015},
		{"halb_time_synchronized", nil, 1},
		{"halb_peer_up", []string{"peer", "lb2"}, 1},
		{"halb_peer_config_in_sync", []string{"peer", "lb2"}, 1},
		{"halb_peer_clock_skew_seconds", []string{"peer", "lb2"}, -0.002},
		{"halb_peer_last_seen_seconds", []string{"peer", "lb2"}, 0.5},
		{"halb_config_version", nil, 8},
		{"halb_log_lines_total", []string{"target", "access"}, 13845},
		{"halb_log_dropped_total", []string{"target", "remote"}, 847},
		{"halb_log_errors_total", []string{"target", "remote"}, 3},
	}
	for _, c := range cases {
		got, ok := value(fams, c.name, c.labels...)
		if !ok {
			t.Errorf("%s%v: missing", c.name, c.labels)
			continue
		}
		if diff := got - c.want; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// tcp services and backends have no HTTP series.
	if _, ok := value(fams, "halb_frontend_http_requests_total", "proxy", "db"); ok {
		t.Error("tcp service db has halb_frontend_http_requests_total")
	}
	if _, ok := value(fams, "halb_server_http_responses_total", "proxy", "pg"); ok {
		t.Error("tcp backend pg has halb_server_http_responses_total")
	}
	// An unchecked server has no check result.
	if _, ok := value(fams, "halb_server_check_up", "server", "pg1"); ok {
		t.Error("unchecked pg1 has halb_server_check_up")
	}
	// A histogram's buckets are cumulative and in seconds.
	var h *dto.Histogram
	for _, m := range fams["halb_backend_connect_time_seconds"].Metric {
		if m.Label[0].GetValue() == "www" {
			h = m.Histogram
		}
	}
	var got []uint64
	for _, b := range h.Bucket {
		got = append(got, b.GetCumulativeCount())
	}
	if want := []uint64{20000, 23000, 23400, 23450, 23456}; !slices.Equal(got, want) || h.Bucket[1].GetUpperBound() != 0.01 {
		t.Errorf("connect time buckets %v (le %v), want %v", got, h.Bucket, want)
	}
	for _, f := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[f] == nil {
			t.Errorf("%s missing: the Go and process collectors are registered", f)
		}
	}
}

// TestMetricsDocumented fails when the collector can emit a metric that
// docs/metrics.md does not list, or the doc lists one it cannot emit.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(halb_[a-z_]+)`").FindAllSubmatch(doc, -1) {
		documented[string(m[1])] = true
	}
	s := New(fullSnapshot, quiet())
	fams, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	emitted := map[string]bool{}
	for _, f := range fams {
		name := f.GetName()
		if !strings.HasPrefix(name, "halb_") {
			continue
		}
		emitted[name] = true
		if !documented[name] {
			t.Errorf("%s is emitted but not in docs/metrics.md's table", name)
		}
	}
	// The full snapshot must reach every metric the collector describes,
	// or this test would not see them.
	for _, d := range descs {
		name := d.name
		if !emitted[name] {
			t.Errorf("%s is described but fullSnapshot does not make the collector emit it", name)
		}
	}
	for name := range documented {
		if !emitted[name] {
			t.Errorf("docs/metrics.md lists %s, which the collector never emits", name)
		}
	}
}

// TestMetricsHEAD: HEAD is served (read-only methods).
func TestMetricsHEAD(t *testing.T) {
	s := New(fullSnapshot, quiet())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("HEAD", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("HEAD /metrics: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", strings.NewReader("x")))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /metrics: %d %q Allow %q, want 405", rec.Code, body, rec.Header().Get("Allow"))
	}
}

// TestSharedAndCheckOnlyBackends: a backend two services use is reported
// once; one only the checks know (no service uses it) has its servers'
// check figures and no proxy figures.
func TestSharedAndCheckOnlyBackends(t *testing.T) {
	snap := fullSnapshot()
	snap.Services[1].Backends = append(snap.Services[1].Backends, snap.Services[0].Backends[0]) // db uses www too
	snap.Health = append(snap.Health, health.BackendHealth{Name: "spare", Check: "tcp", Servers: []health.ServerHealth{
		{Name: "s1", Address: "10.0.0.99:80", State: "down", Checks: 4, LastError: "refused", Downs: 1}}})
	s := New(func() Snapshot { return snap }, quiet())
	if _, err := s.Registry().Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	fams := scrape(t, s)
	if n := len(fams["halb_backend_sessions_total"].Metric); n != 3 {
		t.Errorf("%d halb_backend_sessions_total series, want 3 (www once, api, pg)", n)
	}
	if v, ok := value(fams, "halb_server_up", "proxy", "spare", "server", "s1"); !ok || v != 0 {
		t.Errorf("spare/s1 up = %v (%v), want 0", v, ok)
	}
	if v, ok := value(fams, "halb_server_check_up", "proxy", "spare", "server", "s1"); !ok || v != 0 {
		t.Errorf("spare/s1 check_up = %v (%v), want 0", v, ok)
	}
	if _, ok := value(fams, "halb_server_sessions_total", "proxy", "spare"); ok {
		t.Error("spare, which no service uses, has session figures")
	}
	if _, ok := value(fams, "halb_backend_sessions_total", "proxy", "spare"); ok {
		t.Error("spare, which no service uses, has backend session figures")
	}
	if v, ok := value(fams, "halb_backend_up", "proxy", "spare"); !ok || v != 0 {
		t.Errorf("spare up = %v (%v), want 0", v, ok)
	}
}

// TestStatsJSONDocumented: every key /stats;json can have is named in
// docs/metrics.md's JSON shape.
func TestStatsJSONDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(doc, []byte("## /stats;json"))
	if i < 0 {
		t.Fatal("docs/metrics.md has no /stats;json section")
	}
	shape := string(doc[i:])
	st := buildStats(fullSnapshot(), t0)
	st.Listener = Status{Listen: ":8404", Listening: "[::]:8404", Error: "x", Refused: map[string]uint64{"vip": 1}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	// Maps whose keys are data, not names.
	dataKeys := map[string]bool{"responses": true, "drops": true, "refused": true, "failed": true, "versions": true}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if dataKeys[key] {
				return
			}
			for k, e := range x {
				if !strings.Contains(shape, `"`+k+`"`) {
					t.Errorf("/stats;json key %q (in %q) is not in docs/metrics.md", k, key)
				}
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		}
	}
	walk("", v)
}

// TestEmptySnapshot: an unconfigured daemon (nothing running) still
// answers every path.
func TestEmptySnapshot(t *testing.T) {
	s := New(func() Snapshot { return Snapshot{} }, quiet())
	fams := scrape(t, s)
	if v, ok := value(fams, "halb_up"); !ok || v != 1 {
		t.Errorf("halb_up = %v %v", v, ok)
	}
	if fams["halb_node_info"] != nil || fams["halb_time_synchronized"] != nil {
		t.Error("node or time metrics without a node name or time sync")
	}
	for _, path := range []string{"/stats", "/stats;json"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		if path == "/stats;json" && !strings.Contains(rec.Body.String(), `"frontends": []`) {
			t.Errorf("empty lists are not [] in JSON: %.300s", rec.Body)
		}
	}
}

// TestTLSMetricsText: the TLS and SNI series of the fixture, exactly as
// /metrics writes them: every failure and refusal reason and both
// versions (0 when none happened), each certificate's expiry (none for
// the one not loaded) and alarm, and the backends' verify gauge (0 for
// verify none).
func TestTLSMetricsText(t *testing.T) {
	s := New(fullSnapshot, quiet())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var got []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.Contains(l, "halb_frontend_tls_") || strings.Contains(l, "halb_frontend_sni_") || strings.Contains(l, "halb_backend_tls_") {
			got = append(got, l)
		}
	}
	if want := strings.TrimSpace(tlsMetricsText); strings.Join(got, "\n") != want {
		t.Errorf("TLS series:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}

const tlsMetricsText = `
# HELP halb_backend_tls_verify Backends with tls: 1 the servers' certificates are verified, 0 verify none (not checked).
# TYPE halb_backend_tls_verify gauge
halb_backend_tls_verify{proxy="api"} 0
halb_backend_tls_verify{proxy="www"} 1
# HELP halb_frontend_sni_default_total Connections sent to default_backend: no server name, or no route for it.
# TYPE halb_frontend_sni_default_total counter
halb_frontend_sni_default_total{proxy="db"} 40
# HELP halb_frontend_sni_refused_total ClientHellos refused (not read or not TLS), by reason.
# TYPE halb_frontend_sni_refused_total counter
halb_frontend_sni_refused_total{proxy="db",reason="eof"} 0
halb_frontend_sni_refused_total{proxy="db",reason="io"} 0
halb_frontend_sni_refused_total{proxy="db",reason="malformed"} 0
halb_frontend_sni_refused_total{proxy="db",reason="not_tls"} 6
halb_frontend_sni_refused_total{proxy="db",reason="short"} 0
halb_frontend_sni_refused_total{proxy="db",reason="timeout"} 4
halb_frontend_sni_refused_total{proxy="db",reason="too_long"} 0
# HELP halb_frontend_sni_routed_total Connections routed by an sni_route (services with sni_routes).
# TYPE halb_frontend_sni_routed_total counter
halb_frontend_sni_routed_total{proxy="db"} 850
# HELP halb_frontend_tls_certificate_alarm 1: the certificate expires within 14 days (or has expired), or could not be loaded.
# TYPE halb_frontend_tls_certificate_alarm gauge
halb_frontend_tls_certificate_alarm{certificate="broken",proxy="web"} 1
halb_frontend_tls_certificate_alarm{certificate="main",proxy="web"} 0
halb_frontend_tls_certificate_alarm{certificate="old",proxy="web"} 1
# HELP halb_frontend_tls_certificate_not_after_timestamp_seconds When the certificate expires, Unix time (absent when it is not loaded).
# TYPE halb_frontend_tls_certificate_not_after_timestamp_seconds gauge
halb_frontend_tls_certificate_not_after_timestamp_seconds{certificate="main",proxy="web"} 1.8042408e+09
halb_frontend_tls_certificate_not_after_timestamp_seconds{certificate="old",proxy="web"} 1.7970732e+09
# HELP halb_frontend_tls_failed_handshakes_total Failed TLS handshakes by reason.
# TYPE halb_frontend_tls_failed_handshakes_total counter
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="alert"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="alpn"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="cipher"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="closed"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="empty"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="no_certificate"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="not_tls"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="other"} 0
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="timeout"} 9
halb_frontend_tls_failed_handshakes_total{proxy="web",reason="version"} 3
# HELP halb_frontend_tls_handshakes_total TLS handshakes completed with clients (services with tls).
# TYPE halb_frontend_tls_handshakes_total counter
halb_frontend_tls_handshakes_total{proxy="web"} 4980
# HELP halb_frontend_tls_resumed_total Completed TLS handshakes that resumed a session.
# TYPE halb_frontend_tls_resumed_total counter
halb_frontend_tls_resumed_total{proxy="web"} 1200
# HELP halb_frontend_tls_version_handshakes_total Completed TLS handshakes by protocol version.
# TYPE halb_frontend_tls_version_handshakes_total counter
halb_frontend_tls_version_handshakes_total{proxy="web",version="TLSv1.2"} 480
halb_frontend_tls_version_handshakes_total{proxy="web",version="TLSv1.3"} 4500
`

// TestBGPMetrics: the BGP families from the status snapshot (sessions up
// and not, uptime, prefixes, VIPs announced and draining), absent when
// bgp is off; the stats page has the BGP tables.
func TestBGPMetrics(t *testing.T) {
	s := New(fullSnapshot, quiet())
	fams := scrape(t, s)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"halb_bgp_session_up", []string{"neighbor", "10.0.0.254", "asn", "65000"}, 1},
		{"halb_bgp_session_up", []string{"neighbor", "10.0.1.254", "asn", "65000"}, 0},
		{"halb_bgp_session_uptime_seconds", []string{"neighbor", "10.0.0.254"}, 90},
		{"halb_bgp_session_uptime_seconds", []string{"neighbor", "10.0.1.254"}, 0},
		{"halb_bgp_prefixes_received", []string{"neighbor", "10.0.0.254"}, 2},
		{"halb_bgp_prefixes_sent", []string{"neighbor", "10.0.0.254"}, 2},
		{"halb_bgp_vip_announced", []string{"vip", "192.168.10.200/32", "mode", "active_active"}, 1},
		{"halb_bgp_vip_announced", []string{"vip", "192.168.10.201/32", "mode", "active_standby"}, 1},
		{"halb_bgp_vip_graceful_shutdown", []string{"vip", "192.168.10.200/32"}, 0},
		{"halb_bgp_vip_graceful_shutdown", []string{"vip", "192.168.10.201/32"}, 1},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
	for _, want := range []string{`<table id="bgp-sessions">`, "10.0.1.254", "1h0m ago (hold-timer-expired)", "graceful_shutdown (prepend 3)"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/stats lacks %q", want)
		}
	}
	snap := fullSnapshot()
	snap.BGP = nil
	fams = scrape(t, New(func() Snapshot { return snap }, quiet()))
	if _, ok := fams["halb_bgp_session_up"]; ok {
		t.Error("bgp off: halb_bgp_session_up is there")
	}
}
