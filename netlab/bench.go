package netlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BenchReport is what make bench measures in one lab run.
type BenchReport struct {
	// Command is the command line that produced the report.
	Command string `json:"command"`
	// Started is when the run began; Elapsed how long it took, in all.
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Rounds, Duration, Connections and Threads are the wrk settings:
	// every target ran Rounds times for Duration, the targets taking
	// turns round after round.
	Rounds      int           `json:"rounds"`
	Duration    time.Duration `json:"duration_ns"`
	Connections int           `json:"connections"`
	Threads     int           `json:"threads"`
	// Rows are the rows run (BenchRows); RowRounds and RowDuration the
	// wrk rounds of the conn, size, slow and scale rows; SlowClients and
	// SlowByteEvery the slow row's crowd.
	Rows          []string      `json:"rows"`
	RowRounds     int           `json:"row_rounds"`
	RowDuration   time.Duration `json:"row_duration_ns"`
	SlowClients   int           `json:"slow_clients"`
	SlowByteEvery time.Duration `json:"slow_byte_every_ns"`
	// Definitions say what each row measures.
	Definitions []string `json:"row_definitions"`

	Throughput []BenchResult `json:"throughput"`
	// Ratios compare halb with HAProxy in each mode: http, tcp, http-log
	// (the access log on, to UDP syslog) and http-scrape (/metrics
	// scraped every ScrapeEvery).
	Ratios []BenchRatio `json:"ratios"`
	// Costs compare each flavor's http-log and http-scrape rows with its
	// http row: what the access log and a scrape cost it.
	Costs       []BenchRatio  `json:"costs"`
	ScrapeEvery time.Duration `json:"scrape_every_ns"`
	Memory      []MemResult   `json:"memory"`
	// Skipped names what was not measured, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// BenchRatio is row Of / row To (halb / HAProxy in one mode, or a
// flavor's row with logging or scraping / its row without): the ratios of
// the medians of requests/s and p99 latency, and the spread of the
// per-round requests/s ratios (rounds in which both runs were accepted;
// the two ran in the same round).
type BenchRatio struct {
	Mode      string  `json:"mode"`
	Of        string  `json:"of"`
	To        string  `json:"to"`
	RPS       float64 `json:"rps_ratio"`
	RPSSpread Spread  `json:"rps_ratio_rounds"`
	P99       float64 `json:"p99_ratio"`
	// ProxyUS is the ratio of the proxies' CPU per request (medians;
	// rows that measure it), which a client sharing the machine does not
	// compress as it does requests/s.
	ProxyUS float64 `json:"proxy_us_ratio,omitempty"`
}

// Spread is the lowest and highest figure over the accepted rounds.
type Spread struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// MemResult is the memory a proxy holds for client connections: RSS (with
// children) before and after Conns connections were opened and left in
// State: "idle-keepalive" (after one request) or "unfinished-head". Each
// round is a fresh topology; the figures are the medians of the rounds,
// RoundBytes each round's growth a connection.
type MemResult struct {
	Name          string    `json:"name"`
	State         string    `json:"state"`
	Conns         int       `json:"connections"`
	RSSBefore     int64     `json:"rss_before_bytes"`
	RSSAfter      int64     `json:"rss_after_bytes"`
	PerConnBytes  float64   `json:"per_connection_bytes"`
	PerConnSpread Spread    `json:"per_connection_spread"`
	RoundBytes    []float64 `json:"rounds_per_connection_bytes"`
}

// summarizeMem folds the rounds of one proxy and state into their medians.
func summarizeMem(rs []MemResult) MemResult {
	m := MemResult{Name: rs[0].Name, State: rs[0].State, Conns: rs[0].Conns}
	var before, after []float64
	for _, r := range rs {
		before, after = append(before, float64(r.RSSBefore)), append(after, float64(r.RSSAfter))
		m.RoundBytes = append(m.RoundBytes, r.PerConnBytes)
	}
	m.RSSBefore, m.RSSAfter = int64(median(before)), int64(median(after))
	m.PerConnBytes, m.PerConnSpread = median(m.RoundBytes), spread(m.RoundBytes)
	return m
}

// BenchRound is one wrk run of one target.
type BenchRound struct {
	RPS          float64 `json:"rps"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
	SocketErrors int     `json:"socket_errors"` // connect, read, write and timeout errors
	Non2xx       int     `json:"non_2xx_3xx"`   // responses other than 2xx and 3xx
	RSSBytes     int64   `json:"rss_bytes,omitempty"`
	// Requests is wrk's count of completed requests.
	Requests int64 `json:"requests"`
	// LogLines (log rows) is how many access lines of the round the
	// syslog receiver got.
	LogLines int64 `json:"log_lines,omitempty"`
	// Scrapes and ScrapeErrors (scrape rows) count the good and the
	// failed scrapes during the round; ScrapeBytes and ScrapeMS are the
	// medians of the good ones' sizes and durations.
	Scrapes      int     `json:"scrapes,omitempty"`
	ScrapeErrors int     `json:"scrape_errors,omitempty"`
	ScrapeBytes  float64 `json:"scrape_bytes,omitempty"`
	ScrapeMS     float64 `json:"scrape_ms,omitempty"`
	// MBps (size rows) is requests/s x the body's bytes / 10^6.
	MBps float64 `json:"mb_per_s,omitempty"`
	// ConnPerRequest (conn rows): every request must come on a new
	// connection; NewConns counts the client's TCP active opens during
	// the run, Accepted the target host's passive opens.
	ConnPerRequest bool  `json:"-"`
	NewConns       int64 `json:"new_connections,omitempty"`
	Accepted       int64 `json:"accepted_connections,omitempty"`
	// SlowClients (slow rows) were held during the run; SlowServed
	// counts their answered requests, SlowFailed the clients whose
	// request failed (SlowErr: the first failure).
	SlowClients int    `json:"slow_clients,omitempty"`
	SlowServed  int64  `json:"slow_served,omitempty"`
	SlowFailed  int64  `json:"slow_failed,omitempty"`
	SlowErr     string `json:"slow_error,omitempty"`
	// RouteCheck (routes rows): the route backends must have got at
	// least the requests wrk completed (Routed, from the proxy's
	// /metrics), and the default backend none (Unrouted).
	RouteCheck bool  `json:"-"`
	Routed     int64 `json:"routed,omitempty"`
	Unrouted   int64 `json:"unrouted,omitempty"`
	// Rejected: the run had errors or non-2xx/3xx responses, a log
	// row's receiver got fewer than 9 lines in 10 requests, a scrape
	// failed, a conn row's requests shared connections, or a slow
	// client was not served; it is left out of the medians (a proxy
	// answering errors fast is not fast, one that loses its log lines
	// did not log).
	Rejected bool   `json:"rejected,omitempty"`
	Why      string `json:"rejected_why,omitempty"`
	// ClientCPU and ProxyCPU are the cores the client (wrk or tlsload,
	// user and system) and the proxy (with its children) kept busy
	// during the run; ProxyUS the proxy's CPU microseconds per
	// completed request.
	ClientCPU float64 `json:"client_cores,omitempty"`
	ProxyCPU  float64 `json:"proxy_cores,omitempty"`
	ProxyUS   float64 `json:"proxy_us_per_request,omitempty"`
	// TLS rows: Negotiated is the version, cipher and key exchange the
	// client got; ClientFull and ClientResumed (tlsload) its full and
	// resumed handshakes, ServerFull and ServerResumed the proxy's
	// count of the same over the round (halb's status, HAProxy's
	// ssl_sess and ssl_reused_sess). WantHandshakes: "full" (no
	// handshake may resume) or "resumed" (none may be full but each
	// client's first: at most FirstFull, at both ends).
	Negotiated     string `json:"negotiated,omitempty"`
	ClientFull     int64  `json:"client_full_handshakes,omitempty"`
	ClientResumed  int64  `json:"client_resumed_handshakes,omitempty"`
	ServerFull     int64  `json:"server_full_handshakes,omitempty"`
	ServerResumed  int64  `json:"server_resumed_handshakes,omitempty"`
	WantHandshakes string `json:"-"`
	FirstFull      int64  `json:"-"`
}

// BenchResult is a target measured from the client host: the medians over
// its accepted rounds, each figure with its spread. p50 and p99 are the
// medians of the rounds' own percentiles, over the same rounds as
// requests/s.
type BenchResult struct {
	// Name is direct, haproxy-http, haproxy-tcp, halb-http or halb-tcp.
	Name      string  `json:"name"`
	URL       string  `json:"url"`
	RPS       float64 `json:"rps"`
	RPSSpread Spread  `json:"rps_rounds"`
	P50MS     float64 `json:"p50_ms"`
	P50Spread Spread  `json:"p50_ms_rounds"`
	P99MS     float64 `json:"p99_ms"`
	P99Spread Spread  `json:"p99_ms_rounds"`
	// Errors counts socket errors and non-2xx/3xx responses over every
	// round, the rejected ones included.
	Errors   int   `json:"errors"`
	RSSBytes int64 `json:"rss_bytes,omitempty"`
	// Runs is how many rounds the figures are the median of (the
	// accepted ones); RoundsRun how many ran.
	Runs      int `json:"runs"`
	RoundsRun int `json:"rounds_run"`
	// LogLines and Requests sum a log row's rounds (all of them): the
	// access lines the syslog receiver got, the requests wrk completed.
	LogLines int64 `json:"log_lines,omitempty"`
	Requests int64 `json:"requests"`
	// Scrapes and ScrapeErrors sum a scrape row's rounds; ScrapeBytes and
	// ScrapeMS are the medians of the accepted rounds' medians.
	Scrapes      int     `json:"scrapes,omitempty"`
	ScrapeErrors int     `json:"scrape_errors,omitempty"`
	ScrapeBytes  float64 `json:"scrape_bytes,omitempty"`
	ScrapeMS     float64 `json:"scrape_ms,omitempty"`
	// BodyBytes (size rows) is the response body's size; MBps the median
	// of the accepted rounds' MB/s.
	BodyBytes  int64   `json:"body_bytes,omitempty"`
	MBps       float64 `json:"mb_per_s,omitempty"`
	MBpsSpread Spread  `json:"mb_per_s_rounds,omitzero"`
	// NewConns and Accepted sum a conn row's rounds (all of them).
	NewConns int64 `json:"new_connections,omitempty"`
	Accepted int64 `json:"accepted_connections,omitempty"`
	// Routed and Unrouted sum a routes row's rounds (all of them).
	Routed   int64 `json:"routed,omitempty"`
	Unrouted int64 `json:"unrouted,omitempty"`
	// SlowClients is a slow row's crowd; SlowServed and SlowFailed sum
	// its rounds (all of them).
	SlowClients int   `json:"slow_clients,omitempty"`
	SlowServed  int64 `json:"slow_served,omitempty"`
	SlowFailed  int64 `json:"slow_failed,omitempty"`
	// ClientCPU, ProxyCPU and ProxyUS are the medians of the accepted
	// rounds' (BenchRound); ServerFull and ServerResumed sum the rounds'
	// handshakes at the proxy (all of them), Negotiated is the last
	// round's.
	ClientCPU     float64 `json:"client_cores,omitempty"`
	ProxyCPU      float64 `json:"proxy_cores,omitempty"`
	ProxyUS       float64 `json:"proxy_us_per_request,omitempty"`
	ServerFull    int64   `json:"server_full_handshakes,omitempty"`
	ServerResumed int64   `json:"server_resumed_handshakes,omitempty"`
	Negotiated    string  `json:"negotiated,omitempty"`
	// Ratio is RPS relative to direct (the direct row of the same kind,
	// direct-conn for -conn rows, when there is one).
	Ratio  float64      `json:"ratio_to_direct"`
	Rounds []BenchRound `json:"per_round"`
}

// BenchOptions shape a benchmark run.
type BenchOptions struct {
	Duration    time.Duration // per wrk run; default 5s
	Connections int           // default 64
	Threads     int           // default 2
	Rounds      int           // wrk runs per target, taking turns; default 5
	// ScrapeEvery is how often the scrape rows GET /metrics; default
	// 100ms.
	ScrapeEvery time.Duration
	// MemConns is the number of client connections held open through
	// each HTTP proxy for the memory figures; default 9000 (the hard
	// open-file limit here is 20000 per process, and HAProxy derives its
	// maxconn from it at about half). 0 after defaults: skip.
	MemConns int
	// MemRounds is how many times each memory figure is taken, the
	// proxies and states taking turns, each in a fresh topology; default
	// (and for 0 or less) 3.
	MemRounds int
	// Rows to run (BenchRows); default all.
	Rows []string
	// RowDuration and RowRounds are the wrk runs of the conn, size, slow
	// and scale rows; default 3s and 3.
	RowDuration time.Duration
	RowRounds   int
	// SlowClients is the slow row's crowd, sending a byte every
	// SlowByteEvery; default 1000 and 100ms.
	SlowClients   int
	SlowByteEvery time.Duration
	// PerfDir, when set, has perf record each round of the tls row's
	// targets (the proxy's CPU, 999 Hz) into PerfDir/TARGET-rN.data.
	PerfDir string
}

func (o BenchOptions) withDefaults() BenchOptions {
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Connections == 0 {
		o.Connections = 64
	}
	if o.Threads == 0 {
		o.Threads = 2
	}
	if o.Rounds == 0 {
		o.Rounds = 5
	}
	if o.MemConns == 0 {
		o.MemConns = 9000
	}
	if o.MemRounds <= 0 {
		o.MemRounds = 3
	}
	if o.ScrapeEvery == 0 {
		o.ScrapeEvery = 100 * time.Millisecond
	}
	if len(o.Rows) == 0 {
		o.Rows = slices.Clone(BenchRows)
	}
	if o.RowDuration == 0 {
		o.RowDuration = 3 * time.Second
	}
	if o.RowRounds == 0 {
		o.RowRounds = 3
	}
	if o.SlowClients == 0 {
		o.SlowClients = 1000
	}
	if o.SlowByteEvery == 0 {
		o.SlowByteEvery = 100 * time.Millisecond
	}
	return o
}

func (o BenchOptions) row(name string) bool { return slices.Contains(o.Rows, name) }

// Bench measures, in one lab run, wrk from the client against a backend
// directly and against each flavor's proxy in front of the same backend.
// Flavors whose proxy does not exist yet are left out and named in skipped.
func Bench(l *Lab, o BenchOptions, logf func(string, ...any)) (rep *BenchReport, err error) {
	rep = &BenchReport{Started: time.Now()}
	defer func() { rep.Elapsed = time.Since(rep.Started).Round(time.Second) }()
	o = o.withDefaults()
	rep.Rounds, rep.Duration, rep.Connections, rep.Threads = o.Rounds, o.Duration, o.Connections, o.Threads
	rep.ScrapeEvery = o.ScrapeEvery
	rep.Rows, rep.RowRounds, rep.RowDuration = o.Rows, o.RowRounds, o.RowDuration
	rep.SlowClients, rep.SlowByteEvery = o.SlowClients, o.SlowByteEvery
	rep.Definitions = BenchRowDefinitions(o)
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("netlab bench needs wrk (scripts/deps.sh installs it): %w", err)
	}
	// One server only, so direct and proxied runs load the same backend.
	opts := ClassicOptions{ClientOnBack: true, SingleServer: true}
	type target struct {
		c         *Classic
		name, url string
		pid       int
		// log: the access log goes to this receiver; scrape: the
		// bench GETs this URL every o.ScrapeEvery during the run.
		log    *AccessCounter
		scrape string
	}
	// Each flavor gets its own topology in its own lab, one after the
	// other, on this same machine.
	pidOf := func(c *Classic, name string) int {
		for _, p := range c.LB[0].Processes() {
			if p.Name == name {
				return p.Cmd.Process.Pid
			}
		}
		return 0
	}
	// The topologies (each flavor plain and with the access log) run at
	// once (separate labs, separate namespaces) and the targets take
	// turns round after round, so that a slow spell of this shared
	// machine does not land on one row only; each figure is the median
	// of its rounds.
	start := func(lab *Lab, fl Flavor, co ClassicOptions) (*Classic, error) {
		co.Flavor = fl
		c, err := NewClassic(lab, co)
		if err != nil {
			return nil, err
		}
		if err := c.WaitConverged(15 * time.Second); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	// The plain rows' topologies have observe.listen on (idle but for
	// the scrape rows: the counters behind /metrics are kept either
	// way); the log rows' have the access log of both services on, sent
	// to a UDP syslog receiver on their client.
	plain := opts
	plain.ObserveListen = ":" + benchObservePort
	logged := opts
	logged.AccessLogTo = benchSyslogAddr
	labs := map[string]*Classic{}
	type topo struct {
		name string
		fl   Flavor
		co   ClassicOptions
	}
	var topos []topo
	if o.row("tls") {
		plain.TLSDir = filepath.Join(l.Dir, "certs")
		if err := WriteBenchCerts(plain.TLSDir); err != nil {
			return rep, err
		}
	}
	if o.row("http") || o.row("tcp") || o.row("scrape") || o.row("conn") || o.row("size") || o.row("slow") || o.row("tls") {
		topos = append(topos, topo{"", FlavorReference, plain}, topo{"halb", FlavorHalb, plain})
	}
	if o.row("log") {
		topos = append(topos, topo{"reference-log", FlavorReference, logged}, topo{"halb-log", FlavorHalb, logged})
	}
	if o.row("ct") {
		topos = append(topos, topo{"halb-ct", FlavorHalb, plain})
	}
	for _, tp := range topos {
		lab := l
		if tp.name != "" {
			if lab, err = subLab(l, tp.name); err != nil {
				return rep, err
			}
			defer lab.Close()
		}
		c, err := start(lab, tp.fl, tp.co)
		if err != nil {
			return rep, err
		}
		defer c.Close()
		labs[tp.name] = c
	}
	ref, hc := labs[""], labs["halb"]
	if ct := labs["halb-ct"]; ct != nil {
		if err := trackVIP(ct); err != nil {
			return rep, err
		}
	}
	var rcv [2]*AccessCounter
	for i, name := range []string{"reference-log", "halb-log"} {
		if labs[name] == nil {
			continue
		}
		if rcv[i], err = labs[name].Client.ListenAccessCounter(benchSyslogAddr); err != nil {
			return rep, err
		}
		defer rcv[i].Close()
	}
	refLog, hcLog := labs["reference-log"], labs["halb-log"]
	httpURL := "http://" + ClassicVIP + "/"
	tcpURL := "http://" + ClassicVIP + ":" + strconv.Itoa(ClassicTCPPort) + "/"
	// lb1's listener, on its front address.
	metricsURL := "http://192.168.10.1:" + benchObservePort + "/metrics"
	var targets []target
	if o.row("http") || o.row("tcp") || o.row("scrape") {
		targets = append(targets, target{c: ref, name: "direct", url: "http://10.0.0.11/"})
	} else if o.row("log") {
		targets = append(targets, target{c: refLog, name: "direct", url: "http://10.0.0.11/"})
	} else if o.row("ct") {
		targets = append(targets, target{c: labs["halb-ct"], name: "direct", url: "http://10.0.0.11/"})
	}
	if o.row("http") {
		targets = append(targets, target{c: ref, name: "haproxy-http", url: httpURL, pid: pidOf(ref, "haproxy")})
	}
	if o.row("tcp") {
		targets = append(targets, target{c: ref, name: "haproxy-tcp", url: tcpURL, pid: pidOf(ref, "haproxy")})
	}
	if o.row("http") {
		targets = append(targets, target{c: hc, name: "halb-http", url: httpURL, pid: pidOf(hc, "halbd")})
	}
	if o.row("tcp") {
		targets = append(targets, target{c: hc, name: "halb-tcp", url: tcpURL, pid: pidOf(hc, "halbd")})
	}
	if o.row("log") {
		targets = append(targets,
			target{c: refLog, name: "haproxy-http-log", url: httpURL, pid: pidOf(refLog, "haproxy"), log: rcv[0]},
			target{c: hcLog, name: "halb-http-log", url: httpURL, pid: pidOf(hcLog, "halbd"), log: rcv[1]})
	}
	if ct := labs["halb-ct"]; ct != nil {
		targets = append(targets, target{c: ct, name: "halb-http-ct", url: httpURL, pid: pidOf(ct, "halbd")})
	}
	if o.row("scrape") {
		targets = append(targets,
			target{c: ref, name: "haproxy-http-scrape", url: httpURL, pid: pidOf(ref, "haproxy"), scrape: metricsURL},
			target{c: hc, name: "halb-http-scrape", url: httpURL, pid: pidOf(hc, "halbd"), scrape: metricsURL})
	}
	runs := make([][]BenchRound, len(targets))
	for round := range o.Rounds {
		for i, tg := range targets {
			logf("bench: round %d/%d: %s (%s) for %s", round+1, o.Rounds, tg.name, tg.url, o.Duration)
			var lines0 int64
			if tg.log != nil {
				lines0 = tg.log.Lines()
			}
			var st scrapeStats
			ctx, stop := context.WithCancel(context.Background())
			scraped := make(chan struct{})
			go func() {
				defer close(scraped)
				if tg.scrape != "" {
					st = scrapeEvery(ctx, tg.c.Client.Dial, tg.scrape, "_frontend_http_requests_total", o.ScrapeEvery)
				}
			}()
			cpu0 := cpuTree(tg.pid)
			r, err := tg.c.wrk(tg.url, o)
			proxyCPU(&r, tg.pid, cpu0, o.Duration)
			stop()
			<-scraped
			if err != nil {
				return rep, fmt.Errorf("bench %s: %w", tg.name, err)
			}
			if tg.pid > 0 {
				r.RSSBytes = rssTree(tg.pid) // with children (HAProxy's worker)
			}
			if tg.log != nil {
				// Lines of requests answered as wrk stopped may come
				// after it; a proxy that sends none measures nothing.
				r.LogLines = tg.log.WaitLines(lines0, r.Requests, 500*time.Millisecond, 5*time.Second)
				if r.LogLines == 0 {
					return rep, fmt.Errorf("bench %s: round %d: the syslog receiver on %s got no access line for %d requests (%d other messages): the row would measure no logging",
						tg.name, round+1, benchSyslogAddr, r.Requests, tg.log.Other())
				}
			}
			if tg.scrape != "" {
				if st.OK == 0 {
					return rep, fmt.Errorf("bench %s: round %d: no good scrape of %s (%d failed: %v)", tg.name, round+1, tg.scrape, st.Failed, st.FirstErr)
				}
				r.Scrapes, r.ScrapeErrors = st.OK, st.Failed
				r.ScrapeBytes, r.ScrapeMS = median(st.Bytes), median(st.MS)
			}
			judgeRound(&r)
			msg := ""
			if r.ProxyUS > 0 {
				msg += fmt.Sprintf(", proxy %.1f µs CPU a request (%.2f cores), client %.2f cores", r.ProxyUS, r.ProxyCPU, r.ClientCPU)
			}
			if tg.log != nil {
				msg += fmt.Sprintf(", %d access lines for %d requests", r.LogLines, r.Requests)
			}
			if tg.scrape != "" {
				msg += fmt.Sprintf(", %d scrapes of %.0f KiB in %.1f ms", r.Scrapes, r.ScrapeBytes/1024, r.ScrapeMS)
				if st.Failed > 0 {
					msg += fmt.Sprintf(", %d failed: %v", st.Failed, st.FirstErr)
				}
			}
			if r.Rejected {
				msg += " — rejected: " + r.Why
			}
			logf("bench:   %.0f requests/s, p50 %.2f ms, p99 %.2f ms%s", r.RPS, r.P50MS, r.P99MS, msg)
			runs[i] = append(runs[i], r)
		}
	}
	for i, name := range []string{"haproxy", "halb"} {
		if rcv[i] != nil {
			logf("bench: %s's access line at the receiver: %s", name, rcv[i].Sample())
		}
	}
	for i, rs := range runs {
		rep.Throughput = append(rep.Throughput, summarizeRounds(targets[i].name, targets[i].url, rs))
	}

	// The conn, size and slow rows on the same topologies, the scale row
	// on topologies of its own: shorter rounds, the targets of a row
	// group taking turns as above.
	extra := extraTargets(o.Rows, ref, hc, labs["halb-ct"], pidOf)
	if o.row("slow") {
		extra = append(extra, slowTargets(o, ref, hc, pidOf)...)
	}
	if o.row("tls") {
		extra = append(extra, tlsTargets(ref, hc, pidOf)...)
	}
	if len(extra) > 0 {
		res, err := runRows(extra, o, logf)
		if err != nil {
			return rep, err
		}
		rep.Throughput = append(rep.Throughput, res...)
	}
	if ct := labs["halb-ct"]; ct != nil {
		// The rows measured conntrack only if it tracked their
		// connections.
		n, err := trackedConns(ct.LB[0].Host)
		if err != nil {
			return rep, err
		}
		if n == 0 {
			return rep, fmt.Errorf("bench halb-http-ct: lb1's conntrack table is empty after the row: the rules tracked nothing")
		}
		logf("bench: halb-ct's lb1 tracks %d connections after the ct rows", n)
	}
	if o.row("scale") {
		res, err := benchScale(l, o, pidOf, logf)
		rep.Throughput = append(rep.Throughput, res...)
		if err != nil {
			return rep, err
		}
	}

	if o.MemConns > 0 && o.row("mem") {
		ms, err := benchMemory(l, opts, o, pidOf, logf)
		if err != nil {
			return rep, err
		}
		rep.Memory = ms
	}
	rep.Ratios, rep.Costs = ratios(rep.Throughput)
	return rep, nil
}

// benchMemory takes each proxy's memory per held connection in each state
// MemRounds times, the proxies and states taking turns round after round
// and each figure in a fresh topology, so that no figure reuses memory a
// previous one left in the proxy's allocator.
func benchMemory(l *Lab, opts ClassicOptions, o BenchOptions, pidOf func(*Classic, string) int, logf func(string, ...any)) ([]MemResult, error) {
	type key struct {
		fl    Flavor
		state string
	}
	var order []key
	for _, state := range []string{"idle-keepalive", "unfinished-head"} {
		for _, fl := range []Flavor{FlavorReference, FlavorHalb} {
			order = append(order, key{fl, state})
		}
	}
	rounds := map[key][]MemResult{}
	for round := 1; round <= o.MemRounds; round++ {
		for _, k := range order {
			name := map[Flavor]string{FlavorReference: "haproxy-http", FlavorHalb: "halb-http"}[k.fl]
			ml, err := subLab(l, fmt.Sprintf("mem-%s-%s-r%d", k.fl, k.state, round))
			if err != nil {
				return nil, err
			}
			var m MemResult
			err = func() error {
				defer ml.Close()
				co := opts
				co.Flavor = k.fl
				c, err := NewClassic(ml, co)
				if err != nil {
					return err
				}
				defer c.Close()
				if err := c.WaitConverged(15 * time.Second); err != nil {
					return err
				}
				proc := map[Flavor]string{FlavorReference: "haproxy", FlavorHalb: "halbd"}[k.fl]
				m, err = c.connMemory(ClassicVIP+":80", pidOf(c, proc), o.MemConns, k.state)
				return err
			}()
			if err != nil {
				return nil, fmt.Errorf("bench %s memory, %s, round %d: %w", name, k.state, round, err)
			}
			m.Name = name
			logf("bench: %s memory, %s, round %d: %d connections, rss %.1f → %.1f MiB, %.2f KiB a connection",
				name, k.state, round, m.Conns, float64(m.RSSBefore)/(1<<20), float64(m.RSSAfter)/(1<<20), m.PerConnBytes/1024)
			rounds[k] = append(rounds[k], m)
		}
	}
	var res []MemResult
	for _, fl := range []Flavor{FlavorReference, FlavorHalb} {
		for _, state := range []string{"idle-keepalive", "unfinished-head"} {
			res = append(res, summarizeMem(rounds[key{fl, state}]))
		}
	}
	return res, nil
}

// judgeRound rejects a round that had socket errors or non-2xx/3xx
// responses, whose syslog receiver got fewer than 9 access lines in 10
// requests (log rows: LogLines > 0), in which a scrape failed, whose
// requests were fewer than the new connections from the client or
// accepted by the target (conn rows), whose requests did not all reach
// the routes' backends (routes rows), or in which a slow client failed or
// was never served (slow rows), and says why.
func judgeRound(r *BenchRound) {
	var why []string
	if r.SocketErrors > 0 || r.Non2xx > 0 {
		why = append(why, fmt.Sprintf("%d socket errors, %d non-2xx/3xx", r.SocketErrors, r.Non2xx))
	}
	if r.LogLines > 0 && r.LogLines*10 < r.Requests*9 {
		why = append(why, fmt.Sprintf("syslog got %d access lines for %d requests", r.LogLines, r.Requests))
	}
	if r.ScrapeErrors > 0 {
		why = append(why, fmt.Sprintf("%d scrapes failed", r.ScrapeErrors))
	}
	if r.ConnPerRequest && (r.NewConns < r.Requests || r.Accepted < r.Requests) {
		why = append(why, fmt.Sprintf("%d requests over %d new connections from the client, %d accepted: not one a request", r.Requests, r.NewConns, r.Accepted))
	}
	if r.RouteCheck && (r.Routed < r.Requests || r.Unrouted > 0) {
		why = append(why, fmt.Sprintf("%d requests, %d to the routes' backends, %d to the default: not routed by host", r.Requests, r.Routed, r.Unrouted))
	}
	switch r.WantHandshakes {
	case "full":
		if r.ClientResumed > 0 || r.ServerResumed > 0 || r.ServerFull < r.Requests {
			why = append(why, fmt.Sprintf("%d requests: the client made %d full and %d resumed handshakes, the proxy %d and %d: not a full handshake each", r.Requests, r.ClientFull, r.ClientResumed, r.ServerFull, r.ServerResumed))
		}
	case "resumed":
		if r.ClientFull > r.FirstFull || r.ServerFull > r.FirstFull || r.ClientFull+r.ClientResumed < r.Requests || r.ServerFull+r.ServerResumed < r.Requests {
			why = append(why, fmt.Sprintf("%d requests: the client made %d full and %d resumed handshakes, the proxy %d and %d: more full ones than the %d clients' first", r.Requests, r.ClientFull, r.ClientResumed, r.ServerFull, r.ServerResumed, r.FirstFull))
		}
	}
	if r.SlowClients > 0 && (r.SlowFailed > 0 || r.SlowServed < int64(r.SlowClients)) {
		w := fmt.Sprintf("%d slow clients: %d requests served, %d failed", r.SlowClients, r.SlowServed, r.SlowFailed)
		if r.SlowErr != "" {
			w += " (" + r.SlowErr + ")"
		}
		why = append(why, w)
	}
	r.Rejected, r.Why = len(why) > 0, strings.Join(why, "; ")
}

// ratios sets each result's ratio to direct (directOf) and returns
// halb / HAProxy per mode (every halb-MODE with a haproxy-MODE, in the
// order of res), and each flavor's cost of the access log (mode
// access-log: FLAVOR-http-log / FLAVOR-http) and of scraping (mode scrape:
// FLAVOR-http-scrape / FLAVOR-http).
func ratios(res []BenchResult) (vs, costs []BenchRatio) {
	byName := map[string]BenchResult{}
	for _, r := range res {
		byName[r.Name] = r
	}
	for i := range res {
		if d, ok := byName[directOf(res[i].Name, byName)]; ok && d.RPS > 0 {
			res[i].Ratio = res[i].RPS / d.RPS
		}
	}
	for _, r := range res {
		mode, ok := strings.CutPrefix(r.Name, "halb-")
		if !ok {
			continue
		}
		// A row of halb's own (-ct) is compared with HAProxy's row of
		// the same kind.
		if br, ok := compare(mode, r, byName["haproxy-"+strings.TrimSuffix(mode, "-ct")]); ok {
			vs = append(vs, br)
		}
	}
	for _, fl := range []string{"haproxy", "halb"} {
		for _, c := range []struct{ mode, row, base string }{
			{"access-log", "-http-log", "-http"}, {"scrape", "-http-scrape", "-http"},
			{"conntrack", "-http-ct", "-http"}, {"conntrack", "-http-conn-ct", "-http-conn"},
		} {
			if br, ok := compare(c.mode, byName[fl+c.row], byName[fl+c.base]); ok {
				costs = append(costs, br)
			}
		}
	}
	return vs, costs
}

// directOf names the direct row a result is compared with: direct-KIND
// for FLAVOR-http-KIND and FLAVOR-tcp-KIND when there is one (direct-conn,
// direct-16k), else direct.
func directOf(name string, byName map[string]BenchResult) string {
	if strings.Contains(name, "https") {
		return "" // no direct TLS backend
	}
	for _, p := range []string{"haproxy-http-", "haproxy-tcp-", "halb-http-", "halb-tcp-", "direct-"} {
		if kind, ok := strings.CutPrefix(name, p); ok {
			if _, ok := byName["direct-"+kind]; ok {
				return "direct-" + kind
			}
		}
	}
	return "direct"
}

// compare is a / b: the ratios of the medians, and the spread of the
// per-round requests/s ratios over the rounds both had accepted; ok is
// false when either has no figure.
func compare(mode string, a, b BenchResult) (_ BenchRatio, ok bool) {
	if a.RPS <= 0 || b.RPS <= 0 || b.P99MS <= 0 {
		return BenchRatio{}, false
	}
	br := BenchRatio{Mode: mode, Of: a.Name, To: b.Name, RPS: a.RPS / b.RPS, P99: a.P99MS / b.P99MS}
	if a.ProxyUS > 0 && b.ProxyUS > 0 {
		br.ProxyUS = a.ProxyUS / b.ProxyUS
	}
	var per []float64
	for i := range min(len(a.Rounds), len(b.Rounds)) {
		if ar, bf := a.Rounds[i], b.Rounds[i]; !ar.Rejected && !bf.Rejected && bf.RPS > 0 {
			per = append(per, ar.RPS/bf.RPS)
		}
	}
	br.RPSSpread = spread(per)
	return br, true
}

// summarizeRounds turns a target's rounds into its result: medians and spreads
// over the accepted rounds, errors over all.
func summarizeRounds(name, url string, rounds []BenchRound) BenchResult {
	res := BenchResult{Name: name, URL: url, RoundsRun: len(rounds), Rounds: rounds}
	var rps, p50, p99, mem, sBytes, sMS, mbps, ccpu, pcpu, pus []float64
	for _, r := range rounds {
		res.Errors += r.SocketErrors + r.Non2xx
		res.LogLines += r.LogLines
		res.Requests += r.Requests
		res.Scrapes += r.Scrapes
		res.ScrapeErrors += r.ScrapeErrors
		res.NewConns += r.NewConns
		res.Routed += r.Routed
		res.Unrouted += r.Unrouted
		res.Accepted += r.Accepted
		res.SlowClients = max(res.SlowClients, r.SlowClients)
		res.SlowServed += r.SlowServed
		res.SlowFailed += r.SlowFailed
		res.ServerFull += r.ServerFull
		res.ServerResumed += r.ServerResumed
		if r.Negotiated != "" {
			res.Negotiated = r.Negotiated
		}
		if r.Rejected {
			continue
		}
		rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50MS), append(p99, r.P99MS)
		if r.MBps > 0 {
			mbps = append(mbps, r.MBps)
		}
		if r.RSSBytes > 0 {
			mem = append(mem, float64(r.RSSBytes))
		}
		if r.ProxyUS > 0 {
			ccpu, pcpu, pus = append(ccpu, r.ClientCPU), append(pcpu, r.ProxyCPU), append(pus, r.ProxyUS)
		}
		if r.Scrapes > 0 {
			sBytes, sMS = append(sBytes, r.ScrapeBytes), append(sMS, r.ScrapeMS)
		}
	}
	res.ScrapeBytes, res.ScrapeMS = median(sBytes), median(sMS)
	res.Runs = len(rps)
	res.RPS, res.RPSSpread = median(rps), spread(rps)
	res.P50MS, res.P50Spread = median(p50), spread(p50)
	res.P99MS, res.P99Spread = median(p99), spread(p99)
	res.RSSBytes = int64(median(mem))
	res.MBps, res.MBpsSpread = median(mbps), spread(mbps)
	res.ClientCPU, res.ProxyCPU, res.ProxyUS = median(ccpu), median(pcpu), median(pus)
	return res
}

// median of xs (the mean of the middle two for an even count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	return Spread{Min: slices.Min(xs), Max: slices.Max(xs)}
}

// connMemory opens n connections from the client to addr, leaves them in
// state, and reports how much the proxy's resident memory (pid and its
// children) grew. The connections are closed before it returns.
func (c *Classic) connMemory(addr string, pid, n int, state string) (MemResult, error) {
	m := MemResult{State: state}
	time.Sleep(time.Second) // let the previous run's connections go
	m.RSSBefore = rssTree(pid)
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	err := c.Client.Do(func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		for range n {
			cn, err := d.Dial("tcp", addr)
			if err != nil {
				return fmt.Errorf("after %d connections: %w", len(conns), err)
			}
			conns = append(conns, cn)
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	work := make(chan net.Conn)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cn := range work {
				cn.SetDeadline(time.Now().Add(10 * time.Second))
				var err error
				if state == "idle-keepalive" {
					if _, err = io.WriteString(cn, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err == nil {
						var resp *http.Response
						if resp, err = http.ReadResponse(bufio.NewReader(cn), nil); err == nil {
							_, err = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}
				} else {
					_, err = io.WriteString(cn, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: netlab-bench\r\nX-Unfinished: ")
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, cn := range conns {
		work <- cn
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return m, fmt.Errorf("%s: %w", state, err)
	default:
	}
	time.Sleep(time.Second) // settle; well within the head and keep-alive timeouts
	m.RSSAfter = rssTree(pid)
	m.Conns = len(conns)
	m.PerConnBytes = float64(m.RSSAfter-m.RSSBefore) / float64(m.Conns)
	return m, nil
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkCount   = regexp.MustCompile(`(?m)^\s+(\d+) requests in `)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	rssPattern = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)
)

// wrk runs wrk inside the client host, with extra arguments (-H, -s)
// before the URL, and parses its report.
func (c *Classic) wrk(url string, o BenchOptions, extra ...string) (BenchRound, error) {
	args := []string{"--latency", "-t", strconv.Itoa(o.Threads), "-c", strconv.Itoa(o.Connections),
		"-d", fmt.Sprintf("%ds", int(o.Duration.Seconds()))}
	return c.runLoad("wrk", exec.Command("wrk", append(append(args, extra...), url)...), o.Duration, parseWrk)
}

// runLoad runs a load client (wrk, tlsload) for d inside the client host,
// parses its report and adds the cores it kept busy.
func (c *Classic) runLoad(name string, cmd *exec.Cmd, d time.Duration, parse func(string) (BenchRound, error)) (BenchRound, error) {
	out, err := c.runClient(cmd)
	if err != nil {
		return BenchRound{}, fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	r, err := parse(out)
	r.ClientCPU = cmdCPU(cmd) / d.Seconds()
	return r, err
}

// runClient runs cmd inside the client host and returns its output.
func (c *Classic) runClient(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := c.Client.Do(cmd.Run)
	return out.String(), err
}

// parseWrk reads a wrk --latency report: requests/s, the 50% and 99%
// latencies, "Socket errors" and "Non-2xx or 3xx responses" (lines wrk
// prints only when there are any). A round with either is rejected.
func parseWrk(s string) (BenchRound, error) {
	var r BenchRound
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", s)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkCount.FindStringSubmatch(s); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	} else {
		return r, fmt.Errorf("no request count (N requests in) in wrk output:\n%s", s)
	}
	seen := map[string]bool{}
	for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.P50MS = v
		} else {
			r.P99MS = v
		}
		seen[m[1]] = true
	}
	if !seen["50"] || !seen["99"] {
		return r, fmt.Errorf("no 50%% and 99%% latencies in wrk output (wrk --latency):\n%s", s)
	}
	if m := wrkErrors.FindStringSubmatch(s); m != nil {
		for _, n := range m[1:] {
			v, _ := strconv.Atoi(n)
			r.SocketErrors += v
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		r.Non2xx, _ = strconv.Atoi(m[1])
	}
	judgeRound(&r)
	return r, nil
}

// rssTree sums the resident memory of pid and all its descendants.
func rssTree(pid int) int64 {
	var total int64
	for _, p := range pidTree(pid) {
		total += rss(p)
	}
	return total
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := rssPattern.FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024
}

// WriteBench prints the tables to w and writes dir/report.json.
func WriteBench(w io.Writer, dir string, rep *BenchReport) error {
	fmt.Fprintf(w, "netlab bench: %s\n", rep.Command)
	fmt.Fprintf(w, "started %s, %s in all; wrk -t%d -c%d, %d rounds of %s per target, the targets taking turns\n",
		rep.Started.UTC().Format(time.RFC3339), rep.Elapsed, rep.Threads, rep.Connections, rep.Rounds, rep.Duration)
	fmt.Fprintln(w, "medians over the accepted rounds (min-max); a round with socket errors or non-2xx/3xx responses is rejected,")
	fmt.Fprintln(w, "and so is a -log round whose syslog receiver got under 9 access lines in 10 requests, a -scrape round with a failed scrape;")
	fmt.Fprintln(w, "p50 and p99 are the medians of the same rounds' own percentiles")
	if rep.RowRounds > 0 {
		fmt.Fprintf(w, "the -conn, -16k, -1m, -slow and scale (-servers, -routes) rows: %d rounds of %s per target; ratio: to direct-KIND where there is one, else to direct\n",
			rep.RowRounds, rep.RowDuration)
	}
	fmt.Fprintf(w, "%-24s %-22s %-20s %-20s %-18s %7s %7s %8s %6s\n", "target", "requests/s", "p50 ms", "p99 ms", "MB/s", "errors", "rounds", "rss MiB", "ratio")
	for _, r := range rep.Throughput {
		mem, mb, ratio := "-", "-", "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		if r.RSSBytes > 0 {
			mem = fmt.Sprintf("%.1f", float64(r.RSSBytes)/(1<<20))
		}
		if r.MBps > 0 {
			mb = fmt.Sprintf("%.0f (%.0f-%.0f)", r.MBps, r.MBpsSpread.Min, r.MBpsSpread.Max)
		}
		fmt.Fprintf(w, "%-24s %-22s %-20s %-20s %-18s %7d %7s %8s %6s\n", r.Name,
			fmt.Sprintf("%.0f (%.0f-%.0f)", r.RPS, r.RPSSpread.Min, r.RPSSpread.Max),
			fmt.Sprintf("%.2f (%.2f-%.2f)", r.P50MS, r.P50Spread.Min, r.P50Spread.Max),
			fmt.Sprintf("%.2f (%.2f-%.2f)", r.P99MS, r.P99Spread.Min, r.P99Spread.Max),
			mb, r.Errors, fmt.Sprintf("%d/%d", r.Runs, r.RoundsRun), mem, ratio)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Throughput {
		if strings.HasSuffix(r.Name, "-log") {
			fmt.Fprintf(w, "%s: the syslog receiver got %d access lines for %d requests (%.3f per request)\n",
				r.Name, r.LogLines, r.Requests, float64(r.LogLines)/float64(max(r.Requests, 1)))
		}
		if strings.HasSuffix(r.Name, "-scrape") {
			fmt.Fprintf(w, "%s: %d scrapes of /metrics (every %s), %d failed; %.1f KiB in %.1f ms (medians)\n",
				r.Name, r.Scrapes, rep.ScrapeEvery, r.ScrapeErrors, r.ScrapeBytes/1024, r.ScrapeMS)
		}
		if strings.HasSuffix(r.Name, "-conn") || (strings.Contains(r.Name, "-conn-") && r.NewConns > 0) {
			fmt.Fprintf(w, "%s: %d requests over %d new connections from the client, %d accepted by the target\n",
				r.Name, r.Requests, r.NewConns, r.Accepted)
		}
		if strings.Contains(r.Name, "-routes") {
			fmt.Fprintf(w, "%s: %d requests, %d to the routes' backends and %d to the default backend (the proxy's /metrics)\n",
				r.Name, r.Requests, r.Routed, r.Unrouted)
		}
		if r.Negotiated != "" {
			fmt.Fprintf(w, "%s: %s; handshakes at the proxy: %d full, %d resumed\n", r.Name, r.Negotiated, r.ServerFull, r.ServerResumed)
		}
		if r.ProxyUS > 0 {
			fmt.Fprintf(w, "%s: proxy %.1f µs of CPU a request, %.2f cores; client %.2f cores (medians)\n", r.Name, r.ProxyUS, r.ProxyCPU, r.ClientCPU)
		}
		if r.SlowClients > 0 {
			fmt.Fprintf(w, "%s: %d slow clients held in each round: %d slow requests served, %d clients failed; requests/s and p99 are wrk's normal clients'\n",
				r.Name, r.SlowClients, r.SlowServed, r.SlowFailed)
		}
	}
	for _, r := range rep.Ratios {
		mb := ""
		if strings.HasSuffix(r.Mode, "-16k") || strings.HasSuffix(r.Mode, "-1m") {
			mb = " (= MB/s)"
		}
		if strings.HasSuffix(r.Mode, "-slow") {
			mb = " (normal clients)"
		}
		if r.ProxyUS > 0 {
			mb += fmt.Sprintf(", proxy CPU a request %.2f", r.ProxyUS)
		}
		fmt.Fprintf(w, "halb/HAProxy %-17s requests/s %.2f (rounds %.2f-%.2f), p99 %.2f%s\n", r.Mode, r.RPS, r.RPSSpread.Min, r.RPSSpread.Max, r.P99, mb)
	}
	for _, r := range rep.Costs {
		fmt.Fprintf(w, "cost of %-10s %-19s / %-12s requests/s %.2f (rounds %.2f-%.2f), p99 %.2f\n", r.Mode+":", r.Of, r.To, r.RPS, r.RPSSpread.Min, r.RPSSpread.Max, r.P99)
	}
	if len(rep.Memory) > 0 {
		fmt.Fprintf(w, "\n%-14s %-16s %8s %12s %12s %12s  %s\n", "proxy", "connections", "count", "rss before", "rss after", "per conn", "rounds")
		for _, m := range rep.Memory {
			fmt.Fprintf(w, "%-14s %-16s %8d %10.1f M %10.1f M %8.2f KiB  %d (%.2f-%.2f)\n", m.Name, m.State, m.Conns,
				float64(m.RSSBefore)/(1<<20), float64(m.RSSAfter)/(1<<20), m.PerConnBytes/1024,
				len(m.RoundBytes), m.PerConnSpread.Min/1024, m.PerConnSpread.Max/1024)
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "not measured: %s\n", s)
	}
	if len(rep.Definitions) > 0 {
		fmt.Fprintln(w, "\nwhat the rows measure:")
		for _, d := range rep.Definitions {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644)
}
