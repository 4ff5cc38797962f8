package netlab

import (
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseBenchRows(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", BenchRows},
		{"all", BenchRows},
		{"conn", []string{"conn"}},
		{" scale,http ,scale", []string{"scale", "http"}},
	} {
		got, err := ParseBenchRows(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseBenchRows(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	defs := BenchRowDefinitions(BenchOptions{Rows: []string{"conn", "mem"}}.withDefaults())
	if len(defs) != 1 || !strings.HasPrefix(defs[0], "-conn: ") {
		t.Errorf("definitions of conn and mem: %q", defs)
	}
	if defs := BenchRowDefinitions(BenchOptions{}.withDefaults()); len(defs) != 10 {
		t.Errorf("definitions of every row: %d, want 10", len(defs))
	}
	for _, bad := range []string{"http,bogus", ",", "HTTP"} {
		if _, err := ParseBenchRows(bad); err == nil {
			t.Errorf("ParseBenchRows(%q) took it", bad)
		}
	}
}

// TestJudgeRoundRows: a conn round needs a new connection per request at
// both ends; a slow round every slow client served, none failed.
func TestJudgeRoundRows(t *testing.T) {
	for _, c := range []struct {
		r   BenchRound
		why string
	}{
		{BenchRound{Requests: 1000, ConnPerRequest: true, NewConns: 1064, Accepted: 1064}, ""},
		{BenchRound{Requests: 1000, ConnPerRequest: true, NewConns: 64, Accepted: 64}, "1000 requests over 64 new connections from the client, 64 accepted: not one a request"},
		{BenchRound{Requests: 1000, ConnPerRequest: true, NewConns: 1000, Accepted: 999}, "1000 requests over 1000 new connections from the client, 999 accepted: not one a request"},
		{BenchRound{Requests: 1000, ConnPerRequest: true}, "1000 requests over 0 new connections from the client, 0 accepted: not one a request"},
		{BenchRound{Requests: 1000, SlowClients: 1000, SlowServed: 1500}, ""},
		{BenchRound{Requests: 1000, RouteCheck: true, Routed: 1064}, ""},
		{BenchRound{Requests: 1000, RouteCheck: true, Routed: 999}, "1000 requests, 999 to the routes' backends, 0 to the default: not routed by host"},
		{BenchRound{Requests: 1000, RouteCheck: true, Routed: 1000, Unrouted: 3}, "1000 requests, 1000 to the routes' backends, 3 to the default: not routed by host"},
		{BenchRound{Requests: 1000, SlowClients: 1000, SlowServed: 999}, "1000 slow clients: 999 requests served, 0 failed"},
		{BenchRound{Requests: 1000, SlowClients: 1000, SlowServed: 2000, SlowFailed: 1, SlowErr: "EOF"}, "1000 slow clients: 2000 requests served, 1 failed (EOF)"},
	} {
		r := c.r
		judgeRound(&r)
		if r.Why != c.why || r.Rejected != (c.why != "") {
			t.Errorf("%+v: rejected %v %q, want %q", c.r, r.Rejected, r.Why, c.why)
		}
	}
}

// TestBenchRowsSummary: MB/s medians and spreads; conn and slow counts
// summed over every round; each row's ratio to its own direct row; halb
// against HAProxy for every mode both have.
func TestBenchRowsSummary(t *testing.T) {
	res := []BenchResult{
		summarizeRounds("direct", "", []BenchRound{{RPS: 1000, P99MS: 1}}),
		summarizeRounds("direct-16k", "", []BenchRound{{RPS: 800, P99MS: 1, MBps: 800 * 0.016384}}),
		summarizeRounds("haproxy-http-16k", "", []BenchRound{{RPS: 400, P99MS: 2, MBps: 4}, {RPS: 200, P99MS: 2, MBps: 2}}),
		summarizeRounds("halb-http-16k", "", []BenchRound{{RPS: 400, P99MS: 1, MBps: 400 * 0.016384}, {RPS: 100, P99MS: 9, MBps: 9, Rejected: true}}),
		summarizeRounds("haproxy-http-conn", "", []BenchRound{{RPS: 100, P99MS: 1, Requests: 300, NewConns: 310, Accepted: 311}, {RPS: 120, P99MS: 1, Requests: 360, NewConns: 370, Accepted: 372}}),
		summarizeRounds("halb-http-slow", "", []BenchRound{{RPS: 50, P99MS: 4, SlowClients: 1000, SlowServed: 1200}, {RPS: 60, P99MS: 5, SlowClients: 1000, SlowServed: 1100, SlowFailed: 2, Rejected: true}}),
		summarizeRounds("haproxy-http-slow", "", []BenchRound{{RPS: 100, P99MS: 2, SlowClients: 1000, SlowServed: 1000}, {RPS: 100, P99MS: 2, SlowClients: 1000, SlowServed: 1000}}),
		summarizeRounds("halb-http-servers10", "", []BenchRound{{RPS: 500, P99MS: 2}}),
	}
	vs, _ := ratios(res)
	h := res[2]
	if h.MBps != 3 || h.MBpsSpread != (Spread{2, 4}) {
		t.Errorf("haproxy-http-16k MB/s %v %v", h.MBps, h.MBpsSpread)
	}
	if h.Ratio != 300.0/800 || res[3].Ratio != 0.5 || res[4].Ratio != 0.11 || res[7].Ratio != 0.5 {
		t.Errorf("ratios to direct: %v %v %v %v, want 0.375 (to direct-16k), 0.5, 0.11, 0.5 (to direct)", h.Ratio, res[3].Ratio, res[4].Ratio, res[7].Ratio)
	}
	if c := res[4]; c.NewConns != 680 || c.Accepted != 683 || c.Requests != 660 {
		t.Errorf("conn sums %+v", c)
	}
	if s := res[5]; s.SlowClients != 1000 || s.SlowServed != 2300 || s.SlowFailed != 2 || s.RPS != 50 {
		t.Errorf("slow %+v", s)
	}
	var modes []string
	for _, r := range vs {
		modes = append(modes, r.Mode)
	}
	if !slices.Equal(modes, []string{"http-16k", "http-slow"}) {
		t.Fatalf("halb/HAProxy modes %v, want http-16k, http-slow", modes)
	}
	if vs[0].RPS != 400.0/300 || vs[0].RPSSpread != (Spread{1, 1}) || vs[1].RPS != 0.5 || vs[1].P99 != 2 {
		t.Errorf("ratios %+v", vs)
	}

	rep := &BenchReport{Rounds: 5, Duration: 5 * time.Second, RowRounds: 3, RowDuration: 3 * time.Second, Throughput: res, Ratios: vs,
		Definitions: BenchRowDefinitions(BenchOptions{}.withDefaults())}
	var b strings.Builder
	if err := WriteBench(&b, t.TempDir(), rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"3 rounds of 3s per target",
		"haproxy-http-16k         300 (200-400)          0.00 (0.00-0.00)     2.00 (2.00-2.00)     3 (2-4)                  0     2/2        -   0.38",
		"haproxy-http-conn: 660 requests over 680 new connections from the client, 683 accepted by the target",
		"halb-http-slow: 1000 slow clients held in each round: 2300 slow requests served, 2 clients failed",
		"halb/HAProxy http-16k          requests/s 1.33 (rounds 1.00-1.00), p99 0.50 (= MB/s)",
		"halb/HAProxy http-slow         requests/s 0.50 (rounds 0.50-0.50), p99 2.00 (normal clients)",
		"1000 slow clients held through the run, each on its own connection sending GET /bytes?n=16384 one byte every 100ms (4.4s a head)",
		"map(file,web)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchSlowClients: slow clients on loopback against a Backend get every
// request answered, a byte at a time, and finish the one under way when
// stopped; against a server that hangs up, they fail and say why.
func TestBenchSlowClients(t *testing.T) {
	b, addr := startBackend(t, "be1")
	direct := func(f func() error) error { return f() }
	head := slowHeadFor(3000)
	s, err := startSlowClients(direct, addr, head, 20, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "20 slow requests served", func() bool { return b.Served() >= 20 })
	served, failed, first := s.Stop()
	if served < 20 || failed != 0 || first != nil {
		t.Errorf("served %d, failed %d (%v); want >= 20, 0", served, failed, first)
	}
	if got := b.Served(); got != served {
		t.Errorf("backend answered %d, clients read %d: a request left unfinished", got, served)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	s, err = startSlowClients(direct, ln.Addr().String(), head, 5, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 slow clients to fail", func() bool { return s.failed.Load() == 5 })
	served, failed, first = s.Stop()
	ln.Close()
	wg.Wait()
	if served != 0 || failed != 5 || first == nil {
		t.Errorf("against a server that hangs up: served %d, failed %d (%v); want 0, 5, an error", served, failed, first)
	}
}

// TestHostsLua: wrk runs the scale row's script and sends the requests to
// host after host of RouteHost's.
func TestHostsLua(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (scripts/deps.sh):", err)
	}
	var mu sync.Mutex
	hosts := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts[r.Host]++
		mu.Unlock()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	lua := filepath.Join(t.TempDir(), "hosts.lua")
	if err := os.WriteFile(lua, []byte(hostsLua(10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("wrk", "-t1", "-c1", "-d1s", "-s", lua, "http://"+ln.Addr().String()+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	valid := regexp.MustCompile(`^r\d+\.bench$`)
	for h := range hosts {
		if !valid.MatchString(h) {
			t.Errorf("host %q is not a route's", h)
		}
	}
	counts := slices.Collect(maps.Values(hosts))
	if len(hosts) < 2 || slices.Max(counts)-slices.Min(counts) > 1 {
		t.Errorf("%d hosts, each %d to %d times; want host after host, in turn:\n%s", len(hosts), slices.Min(counts), slices.Max(counts), out)
	}
}

func TestParseBackendRequests(t *testing.T) {
	text := `# HELP haproxy_backend_http_requests_total Total number of HTTP requests received
# TYPE haproxy_backend_http_requests_total counter
haproxy_backend_http_requests_total{proxy="rb0"} 1234
haproxy_backend_http_requests_total{proxy="web"} 2
haproxy_frontend_http_requests_total{proxy="web"} 99999
halb_backend_http_requests_total{proxy="rb1"} 1.5e+06
`
	got, err := parseBackendRequests(text)
	want := map[string]int64{"rb0": 1234, "web": 2, "rb1": 1500000}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("parseBackendRequests = %v, %v; want %v", got, err, want)
	}
	if _, err := parseBackendRequests("haproxy_frontend_http_requests_total{proxy=\"web\"} 1\n"); err == nil {
		t.Error("no backend series: parsed")
	}
}
