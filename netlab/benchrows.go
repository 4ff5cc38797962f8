package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"halb/appliance/bgp"
)

// BenchRows are the rows `netlab bench -rows` can choose, in the order
// they run:
//
//	http, tcp  keep-alive requests/s through each proxy (and direct)
//	log        the http row with the access log on, to UDP syslog
//	scrape     the http row with /metrics scraped every ScrapeEvery
//	conn       a new connection per request (connections/s), http and tcp
//	size       16 KiB and 1 MiB responses (MB/s), http and tcp
//	ct         the http and conn rows of halb with bgp.drain_to's
//	           connection tracking on (the nftables rules halb loads)
//	slow       1000 slow clients held while wrk measures normal clients
//	tls        https: keep-alive requests, full handshakes (ECDSA P-256,
//	           RSA 2048), resumed handshakes, 1 MiB responses
//	scale      1, 10, 100 and 1000 servers, and 10 000 host routes
//	mem        memory per held connection
var BenchRows = []string{"http", "tcp", "log", "scrape", "conn", "size", "ct", "slow", "tls", "scale", "mem"}

// ParseBenchRows reads a comma-separated list of BenchRows ("" or "all":
// every row).
func ParseBenchRows(s string) ([]string, error) {
	if s == "" || s == "all" {
		return slices.Clone(BenchRows), nil
	}
	var rows []string
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(BenchRows, r) {
			return nil, fmt.Errorf("bench row %q: not one of %s", r, strings.Join(BenchRows, ","))
		}
		if !slices.Contains(rows, r) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("bench rows: none in %q", s)
	}
	return rows, nil
}

// Body sizes of the size rows.
const (
	benchSmallBody = 16 << 10
	benchLargeBody = 1 << 20
)

// benchScales are the scale row's configs: servers in the http backend,
// or host routes.
var benchScales = []struct {
	name    string
	servers int
	routes  int
}{{"servers1", 1, 0}, {"servers10", 10, 0}, {"servers100", 100, 0}, {"servers1000", 1000, 0}, {"routes10000", 1, 10000}}

// rowTarget is one target of the conn, size, slow and scale rows.
type rowTarget struct {
	c         *Classic
	name, url string
	pid       int
	// wrk: extra wrk arguments (-H, -s).
	wrk []string
	// size: the response body's bytes (MB/s).
	size int64
	// accepts: the host whose accepted connections (TCP passive opens)
	// must be at least one per request (conn rows).
	accepts *Host
	// slow: slow clients held during the run.
	slow int
	// routes: /metrics to read, before and after the run, the requests
	// the route backends (rb*) and the default backend got.
	routes string
	// tlsService: the https service whose handshakes the proxy counts
	// (tls rows); tlsLoad: the client is TLSLoad, not wrk.
	tlsService string
	tlsLoad    tlsLoadKind
}

// BenchRowDefinitions says what each row of o.Rows measures (log, scrape
// and mem are said in the table's header and footer).
func BenchRowDefinitions(o BenchOptions) []string {
	defs := []struct {
		rows []string
		def  string
	}{
		{[]string{"http", "tcp"}, "http, tcp: wrk keep-alive GET / (a 4-byte body) through each proxy's http and tcp service and directly to the backend"},
		{[]string{"conn"}, "-conn: wrk -H 'Connection: close': every request on a new connection, so requests/s is connections/s; a round counts only when the client's TCP active opens and the target's passive opens (lb1, or be1 for direct) are each at least wrk's completed requests"},
		{[]string{"size"}, fmt.Sprintf("-16k, -1m: wrk keep-alive GET /bytes?n=%d or %d from the backend, which writes the same bytes from memory; MB/s is requests/s x body bytes / 10^6 (headers not counted)", benchSmallBody, benchLargeBody)},
		{[]string{"ct"}, "halb-http-ct, halb-http-conn-ct: the http and -conn rows on a halb topology of its own whose lb1 and lb2 have the nftables rules halb loads while bgp.drain_to is set (appliance/bgp.HandoffRuleset, track phase: conntrack on the VIP's packets, notrack for all else); costs: against halb's http and -conn rows of the same run (taking turns with them), ratios: against HAProxy's, which tracks nothing"},
		{[]string{"slow"}, fmt.Sprintf("-slow: %d slow clients held through the run, each on its own connection sending GET /bytes?n=%d one byte every %s (%s a head) and reading the answer %d bytes every %s, then the next request; requests/s and p99 are wrk -c%d's (normal clients) meanwhile; after wrk, every slow client finishes its request, and a round counts only when each was served at least once and none failed",
			o.SlowClients, benchSmallBody, o.SlowByteEvery, time.Duration(len(slowHeadFor(benchSmallBody)))*o.SlowByteEvery, SlowReadChunk, SlowReadEvery, o.Connections)},
		{[]string{"tls"}, fmt.Sprintf("https-*: an https service (service web-tls on :%d, ECDSA P-256 certificate; web-tls-rsa on :%d, RSA 2048) over the same backend, certificates made at start (leaf and root in the chain); halb's Go crypto/tls against HAProxy's OpenSSL 3.0 bind ssl crt with Mozilla's intermediate ciphers; clients offer X25519 (OpenSSL 3.0 has no ML-KEM)", ClassicTLSPort, ClassicTLSRSAPort)},
		{[]string{"tls"}, "https, https-1m: wrk (OpenSSL) keep-alive GET / and /bytes?n=1048576 (MB/s) over TLS; -conn-wrk: wrk -H 'Connection: close' over TLS (wrk keeps each connection's session for the next: resumed handshakes, an OpenSSL client)"},
		{[]string{"tls"}, "https-conn-ecdsa, https-conn-rsa, https-resume: netlab tlsload (Go crypto/tls client, its own process), -c connections each doing handshake, GET / with Connection: close, read, close: requests/s is handshakes/s; -conn-*: no session cache, a round counts only when no handshake resumed at either end; -resume: one session cache (TLS 1.3 tickets), a round counts only when no handshake but each client's first was full, at both ends; all -conn rows count only with at least one new TCP connection a request at both ends"},
		{[]string{"scale"}, "-servers<N>: the http backend has N servers, all the same backend process (be1:80), balanced roundrobin, health checks off (check: none) in both flavors: the cost of balancing over N"},
		{[]string{"scale"}, fmt.Sprintf("-routes10000: 10 000 exact host routes r<i>.bench over %d backends of one server (be1:80), checks off; wrk's Lua script sends each request to the next host in turn; HAProxy looks the host up in a map file (use_backend %%[req.hdr(host),host_only,lower,map(file,web)]), as its users write many hosts, not 10 000 ACLs; a round counts only when the routes' backends got at least wrk's completed requests and the default backend none (each proxy's /metrics)", RouteBackends)},
	}
	var out []string
	for _, d := range defs {
		if slices.ContainsFunc(d.rows, o.row) {
			out = append(out, d.def)
		}
	}
	return out
}

// slowHeadFor is the head a slow client sends for a body of n bytes.
func slowHeadFor(n int) string {
	return "GET " + BytesPath + "?n=" + strconv.Itoa(n) + " HTTP/1.1\r\nHost: bench\r\n\r\n"
}

// extraTargets lists the conn and size rows' targets on the plain
// topologies ref and hc, and the ct row's -conn target on ct (with the
// conn row only: its cost is against halb-http-conn).
func extraTargets(rows []string, ref, hc, ct *Classic, pidOf func(*Classic, string) int) []rowTarget {
	if !slices.Contains(rows, "conn") && !slices.Contains(rows, "size") {
		return nil // ref and hc may not exist
	}
	vip := "http://" + ClassicVIP
	tcp := vip + ":" + strconv.Itoa(ClassicTCPPort)
	direct := "http://10.0.0.11"
	hp, hb := pidOf(ref, "haproxy"), pidOf(hc, "halbd")
	be1 := func(c *Classic) *Host { return c.BEHosts[0] }
	lb1 := func(c *Classic) *Host { return c.LB[0].Host }
	var ts []rowTarget
	if slices.Contains(rows, "conn") {
		cl := []string{"-H", "Connection: close"}
		ts = append(ts,
			rowTarget{c: ref, name: "direct-conn", url: direct + "/", wrk: cl, accepts: be1(ref)},
			rowTarget{c: ref, name: "haproxy-http-conn", url: vip + "/", pid: hp, wrk: cl, accepts: lb1(ref)},
			rowTarget{c: hc, name: "halb-http-conn", url: vip + "/", pid: hb, wrk: cl, accepts: lb1(hc)},
			rowTarget{c: ref, name: "haproxy-tcp-conn", url: tcp + "/", pid: hp, wrk: cl, accepts: lb1(ref)},
			rowTarget{c: hc, name: "halb-tcp-conn", url: tcp + "/", pid: hb, wrk: cl, accepts: lb1(hc)})
	}
	if slices.Contains(rows, "ct") && ct != nil {
		ts = append(ts, rowTarget{c: ct, name: "halb-http-conn-ct", url: vip + "/", pid: pidOf(ct, "halbd"), wrk: []string{"-H", "Connection: close"}, accepts: lb1(ct)})
	}
	if slices.Contains(rows, "size") {
		for _, sz := range []struct {
			tag string
			n   int64
		}{{"16k", benchSmallBody}, {"1m", benchLargeBody}} {
			path := BytesPath + "?n=" + strconv.FormatInt(sz.n, 10)
			ts = append(ts,
				rowTarget{c: ref, name: "direct-" + sz.tag, url: direct + path, size: sz.n},
				rowTarget{c: ref, name: "haproxy-http-" + sz.tag, url: vip + path, pid: hp, size: sz.n},
				rowTarget{c: hc, name: "halb-http-" + sz.tag, url: vip + path, pid: hb, size: sz.n},
				rowTarget{c: ref, name: "haproxy-tcp-" + sz.tag, url: tcp + path, pid: hp, size: sz.n},
				rowTarget{c: hc, name: "halb-tcp-" + sz.tag, url: tcp + path, pid: hb, size: sz.n})
		}
	}
	return ts
}

// proxyCPU sets r's proxy figures from the CPU pid and its children used
// since cpu0 (cpuTree) over a load run of d: the cores it kept busy and
// its CPU per request. A round without a proxy (pid 0) keeps none.
func proxyCPU(r *BenchRound, pid int, cpu0, d time.Duration) {
	if pid <= 0 {
		return
	}
	used := (cpuTree(pid) - cpu0).Seconds()
	r.ProxyCPU = used / d.Seconds()
	if r.Requests > 0 {
		r.ProxyUS = used * 1e6 / float64(r.Requests)
	}
}

// runRows runs the targets' rounds, the targets taking turns, and returns
// each one's result.
func runRows(ts []rowTarget, o BenchOptions, logf func(string, ...any)) ([]BenchResult, error) {
	ro := o
	ro.Duration, ro.Rounds = o.RowDuration, o.RowRounds
	runs := make([][]BenchRound, len(ts))
	for round := range ro.Rounds {
		for i, tg := range ts {
			logf("bench: round %d/%d: %s (%s) for %s", round+1, ro.Rounds, tg.name, tg.url, ro.Duration)
			r, err := tg.round(ro, round+1)
			if err != nil {
				return nil, fmt.Errorf("bench %s: round %d: %w", tg.name, round+1, err)
			}
			msg := ""
			if tg.size > 0 {
				msg += fmt.Sprintf(", %.0f MB/s", r.MBps)
			}
			if tg.accepts != nil {
				msg += fmt.Sprintf(", %d new connections from the client, %d accepted", r.NewConns, r.Accepted)
			}
			if r.ProxyUS > 0 {
				msg += fmt.Sprintf(", proxy %.1f µs CPU a request (%.2f cores), client %.2f cores", r.ProxyUS, r.ProxyCPU, r.ClientCPU)
			}
			if tg.tlsService != "" {
				msg += fmt.Sprintf(", handshakes: client %d full %d resumed, proxy %d full %d resumed",
					r.ClientFull, r.ClientResumed, r.ServerFull, r.ServerResumed)
				if r.Negotiated != "" {
					msg += ", " + r.Negotiated
				}
			}
			if tg.slow > 0 {
				msg += fmt.Sprintf(", %d slow clients: %d requests served, %d failed", r.SlowClients, r.SlowServed, r.SlowFailed)
			}
			if r.Rejected {
				msg += " — rejected: " + r.Why
			}
			logf("bench:   %.0f requests/s, p50 %.2f ms, p99 %.2f ms%s", r.RPS, r.P50MS, r.P99MS, msg)
			runs[i] = append(runs[i], r)
		}
	}
	var res []BenchResult
	for i, rs := range runs {
		b := summarizeRounds(ts[i].name, ts[i].url, rs)
		b.BodyBytes = ts[i].size
		res = append(res, b)
	}
	return res, nil
}

// round is one wrk run of the target, with what its row counts around it.
func (tg rowTarget) round(o BenchOptions, roundNo int) (BenchRound, error) {
	var r0 BenchRound
	var active0, passive0, active1, passive1 int64
	var err error
	if tg.accepts != nil {
		if active0, _, err = tcpOpens(tg.c.Client); err != nil {
			return BenchRound{}, err
		}
		if _, passive0, err = tcpOpens(tg.accepts); err != nil {
			return BenchRound{}, err
		}
	}
	var slow *slowClients
	if tg.slow > 0 {
		u, err := url.Parse(tg.url)
		if err != nil {
			return BenchRound{}, err
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
		if slow, err = startSlowClients(tg.c.Client.Do, addr, slowHeadFor(benchSmallBody), tg.slow, o.SlowByteEvery); err != nil {
			return BenchRound{}, err
		}
	}
	var routed0, default0 int64
	if tg.routes != "" {
		if routed0, default0, err = routeCounts(tg.c.Client, tg.routes); err != nil {
			return BenchRound{}, err
		}
	}
	var full0, resumed0 int64
	if tg.tlsService != "" {
		if tg.tlsLoad == 0 {
			tg.c.negotiated(tg.url, &r0)
		}
		if full0, resumed0, err = tg.c.tlsCounters(tg.tlsService); err != nil {
			return BenchRound{}, err
		}
	}
	var perfWait func() error
	if o.PerfDir != "" && tg.tlsService != "" && tg.pid > 0 {
		perfWait = perfRecord(tg.pid, o.Duration, filepath.Join(o.PerfDir, fmt.Sprintf("%s-r%d.data", tg.name, roundNo)))
	}
	cpu0 := cpuTree(tg.pid)
	var r BenchRound
	if tg.tlsLoad != 0 {
		r, err = tg.c.tlsLoad(tg.url, tg.tlsLoad == tlsLoadResume, o)
	} else {
		r, err = tg.c.wrk(tg.url, o, tg.wrk...)
	}
	proxyCPU(&r, tg.pid, cpu0, o.Duration)
	if perfWait != nil {
		if err := perfWait(); err != nil {
			return r, fmt.Errorf("perf record: %w", err)
		}
	}
	if r0.Negotiated != "" {
		r.Negotiated = r0.Negotiated
	}
	if slow != nil {
		served, failed, first := slow.Stop()
		r.SlowClients, r.SlowServed, r.SlowFailed = tg.slow, served, failed
		if first != nil {
			r.SlowErr = first.Error()
		}
	}
	if err != nil {
		return r, err
	}
	if tg.accepts != nil {
		if active1, _, err = tcpOpens(tg.c.Client); err != nil {
			return r, err
		}
		if _, passive1, err = tcpOpens(tg.accepts); err != nil {
			return r, err
		}
		r.ConnPerRequest, r.NewConns, r.Accepted = true, active1-active0, passive1-passive0
	}
	if tg.tlsService != "" {
		full, resumed, err := tg.c.tlsCounters(tg.tlsService)
		if err != nil {
			return r, err
		}
		r.ServerFull, r.ServerResumed = full-full0, resumed-resumed0
		r.WantHandshakes = map[tlsLoadKind]string{tlsLoadFull: "full", tlsLoadResume: "resumed"}[tg.tlsLoad]
		r.FirstFull = int64(o.Connections)
	}
	if tg.routes != "" {
		routed, def, err := routeCounts(tg.c.Client, tg.routes)
		if err != nil {
			return r, err
		}
		r.RouteCheck, r.Routed, r.Unrouted = true, routed-routed0, def-default0
	}
	if tg.size > 0 {
		r.MBps = r.RPS * float64(tg.size) / 1e6
	}
	if tg.pid > 0 {
		r.RSSBytes = rssTree(tg.pid)
	}
	judgeRound(&r)
	return r, nil
}

// slowTargets are the slow row's targets on ref and hc.
func slowTargets(o BenchOptions, ref, hc *Classic, pidOf func(*Classic, string) int) []rowTarget {
	url := "http://" + ClassicVIP + "/"
	return []rowTarget{
		{c: ref, name: "haproxy-http-slow", url: url, pid: pidOf(ref, "haproxy"), slow: o.SlowClients},
		{c: hc, name: "halb-http-slow", url: url, pid: pidOf(hc, "halbd"), slow: o.SlowClients},
	}
}

// benchScale runs the scale row: for each config, both flavors in labs of
// their own (started together, closed before the next config), taking
// turns round after round.
func benchScale(l *Lab, o BenchOptions, pidOf func(*Classic, string) int, logf func(string, ...any)) ([]BenchResult, error) {
	var out []BenchResult
	lua := filepath.Join(l.Dir, "hosts.lua")
	if err := os.WriteFile(lua, []byte(hostsLua(10000)), 0o644); err != nil {
		return nil, err
	}
	for _, sc := range benchScales {
		co := ClassicOptions{ClientOnBack: true, SingleServer: true, NoChecks: true, Servers: sc.servers, Routes: sc.routes}
		if sc.routes > 0 {
			co.ObserveListen = ":" + benchObservePort
		}
		logf("bench: scale %s: starting both flavors", sc.name)
		res, err := func() ([]BenchResult, error) {
			var ts []rowTarget
			for _, fl := range []struct {
				f          Flavor
				name, proc string
			}{{FlavorReference, "haproxy", "haproxy"}, {FlavorHalb, "halb", "halbd"}} {
				lab, err := subLab(l, "scale-"+sc.name+"-"+string(fl.f))
				if err != nil {
					return nil, err
				}
				defer lab.Close()
				co.Flavor = fl.f
				c, err := NewClassic(lab, co)
				if err != nil {
					return nil, err
				}
				defer c.Close()
				if err := c.WaitConverged(60 * time.Second); err != nil {
					return nil, fmt.Errorf("scale %s, %s: %w", sc.name, fl.name, err)
				}
				tg := rowTarget{c: c, name: fl.name + "-http-" + sc.name, url: classicURL, pid: pidOf(c, fl.proc)}
				if sc.routes > 0 {
					tg.wrk = []string{"-s", lua}
					tg.routes = "http://192.168.10.1:" + benchObservePort + "/metrics"
				}
				ts = append(ts, tg)
			}
			return runRows(ts, o, logf)
		}()
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// hostsLua is a wrk script that sends each request to the next of n hosts
// (RouteHost), per thread.
func hostsLua(n int) string {
	return fmt.Sprintf(`-- netlab bench: each request to the next of %[1]d hosts r<i>.bench.
local n = %[1]d
local i = 0
request = function()
  i = (i + 1) %% n
  return wrk.format(nil, nil, { ["Host"] = "r" .. i .. ".bench" })
end
`, n)
}

// routeCounts reads the requests the route backends (rb*) and the default
// backend (web) got, from the proxy's /metrics at url (HAProxy's exporter
// and halb name the series alike).
func routeCounts(h *Host, url string) (routed, def int64, err error) {
	tr := &http.Transport{DialContext: h.Dial}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return 0, 0, fmt.Errorf("route counts: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("route counts: GET %s: %s %v", url, resp.Status, err)
	}
	per, err := parseBackendRequests(string(b))
	if err != nil {
		return 0, 0, fmt.Errorf("route counts: %s: %w", url, err)
	}
	for be, n := range per {
		if strings.HasPrefix(be, "rb") {
			routed += n
		}
	}
	return routed, per["web"], nil
}

// backendRequests matches a backend's HTTP request counter in Prometheus
// text: haproxy_ or halb_backend_http_requests_total{proxy="NAME"} VALUE.
var backendRequests = regexp.MustCompile(`(?m)^(?:haproxy|halb)_backend_http_requests_total\{(?:[^}]*,)?proxy="([^"]+)"[^}]*\} ([0-9.e+]+)$`)

// parseBackendRequests reads each backend's HTTP request counter; none is
// an error.
func parseBackendRequests(text string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, m := range backendRequests.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %q: %w", m[1], m[2], err)
		}
		out[m[1]] = int64(v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no backend_http_requests_total series")
	}
	return out, nil
}

// trackVIP loads, on c's balancers, the nftables rules halb loads while
// bgp.drain_to is set (the track phase: conntrack for the VIP only), as
// the ct row measures their cost.
func trackVIP(c *Classic) error {
	vips := []netip.Prefix{netip.MustParsePrefix(ClassicVIP + "/32")}
	for i, n := range c.LB {
		// drain_to names the other node (front LAN .1 and .2).
		other := netip.AddrFrom4([4]byte{192, 168, 10, byte(2 - i)})
		rules := bgp.HandoffRuleset(bgp.HandoffTrack, vips, []netip.Addr{other})
		if !strings.Contains(rules, "notrack") {
			return fmt.Errorf("bench ct: no tracking rules for %s: %q", n.Host.Name, rules)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, stderr, err := n.Host.Run(ctx, []byte(rules), "nft", "-f", "-")
		cancel()
		if err != nil {
			return fmt.Errorf("bench ct: nft on %s: %w: %s", n.Host.Name, err, stderr)
		}
	}
	return nil
}

// trackedConns is the number of entries in h's conntrack table.
func trackedConns(h *Host) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _, err := h.Run(ctx, nil, "cat", "/proc/sys/net/netfilter/nf_conntrack_count")
	if err != nil {
		return 0, fmt.Errorf("bench ct: conntrack count on %s: %w", h.Name, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}
