package netlab

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const wrkClean = `Running 5s test @ http://10.0.0.11/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms  512.34us  15.23ms   85.12%
    Req/Sec    30.12k     1.23k   33.45k    70.00%
  Latency Distribution
     50%  970.00us
     75%    1.20ms
     90%    1.50ms
     99%   11.60ms
  304000 requests in 5.00s, 40.00MB read
Requests/sec:  60800.00
Transfer/sec:      8.00MB
`

const wrkErrorsOut = `Running 5s test @ http://192.168.10.100/
  2 threads and 64 connections
  Latency Distribution
     50%    1.83ms
     75%    2.20ms
     90%    3.50ms
     99%    1.20s
  159500 requests in 5.00s, 20.00MB read
  Socket errors: connect 0, read 12, write 1, timeout 3
  Non-2xx or 3xx responses: 42
Requests/sec:  31900.50
Transfer/sec:      4.00MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkClean)
	if err != nil {
		t.Fatal(err)
	}
	want := BenchRound{RPS: 60800, P50MS: 0.97, P99MS: 11.6, Requests: 304000}
	if math.Abs(r.P50MS-want.P50MS) > 1e-9 || r.RPS != want.RPS || r.P99MS != want.P99MS || r.Requests != want.Requests || r.Rejected || r.SocketErrors != 0 || r.Non2xx != 0 {
		t.Errorf("clean run = %+v, want %+v", r, want)
	}
	r, err = parseWrk(wrkErrorsOut)
	if err != nil {
		t.Fatal(err)
	}
	if r.SocketErrors != 16 || r.Non2xx != 42 || !r.Rejected || r.P99MS != 1200 || r.RPS != 31900.5 || r.Requests != 159500 || r.Why != "16 socket errors, 42 non-2xx/3xx" {
		t.Errorf("run with errors = %+v, want 16 socket errors, 42 non-2xx, rejected, p99 1200 ms", r)
	}
	for _, bad := range []string{"", "Requests/sec: 1\n", strings.Replace(wrkClean, "99%", "98%", 1), strings.Replace(wrkClean, "304000 requests in", "requests in", 1)} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestSummarizeRounds(t *testing.T) {
	rounds := []BenchRound{
		{RPS: 100, P50MS: 1.0, P99MS: 9, RSSBytes: 10},
		{RPS: 300, P50MS: 3.0, P99MS: 5, RSSBytes: 30},
		{RPS: 900, P50MS: 0.1, P99MS: 1, SocketErrors: 5, Non2xx: 2, Rejected: true},
		{RPS: 200, P50MS: 2.0, P99MS: 7, RSSBytes: 20},
		{RPS: 400, P50MS: 4.0, P99MS: 3, RSSBytes: 40},
	}
	r := summarizeRounds("halb-http", "http://x/", rounds)
	// Medians of the four accepted rounds; the rejected one counts in
	// errors only.
	if r.RPS != 250 || r.RPSSpread != (Spread{100, 400}) {
		t.Errorf("rps %v %v, want 250 (100-400)", r.RPS, r.RPSSpread)
	}
	if r.P50MS != 2.5 || r.P50Spread != (Spread{1, 4}) || r.P99MS != 6 || r.P99Spread != (Spread{3, 9}) {
		t.Errorf("p50 %v %v p99 %v %v, want 2.5 (1-4), 6 (3-9)", r.P50MS, r.P50Spread, r.P99MS, r.P99Spread)
	}
	if r.Errors != 7 || r.Runs != 4 || r.RoundsRun != 5 || r.RSSBytes != 25 {
		t.Errorf("errors %d runs %d/%d rss %d, want 7, 4/5, 25", r.Errors, r.Runs, r.RoundsRun, r.RSSBytes)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if none := summarizeRounds("x", "", []BenchRound{{RPS: 5, Rejected: true}}); none.RPS != 0 || none.Runs != 0 {
		t.Errorf("all rejected: %+v", none)
	}
}

func TestBenchRatios(t *testing.T) {
	res := []BenchResult{
		summarizeRounds("direct", "", []BenchRound{{RPS: 1000, P99MS: 1}, {RPS: 1000, P99MS: 1}}),
		summarizeRounds("haproxy-http", "", []BenchRound{{RPS: 500, P99MS: 2}, {RPS: 400, P99MS: 2}}),
		summarizeRounds("halb-http", "", []BenchRound{{RPS: 450, P99MS: 3}, {RPS: 600, P99MS: 1, Non2xx: 1, Rejected: true}}),
	}
	rs, costs := ratios(res)
	if len(costs) != 0 {
		t.Errorf("costs %+v without log or scrape rows", costs)
	}
	if len(rs) != 1 || rs[0].Mode != "http" || rs[0].Of != "halb-http" || rs[0].To != "haproxy-http" {
		t.Fatalf("ratios %+v, want http only", rs)
	}
	// Medians 450 / 450; per round only the first counts (the second
	// halb round was rejected): 450/500.
	if rs[0].RPS != 1 || rs[0].RPSSpread != (Spread{0.9, 0.9}) || rs[0].P99 != 1.5 {
		t.Errorf("ratio %+v, want rps 1 (0.9-0.9), p99 1.5", rs[0])
	}
	if res[1].Ratio != 0.45 {
		t.Errorf("haproxy ratio to direct %v, want 0.45", res[1].Ratio)
	}
}

// TestBenchCosts: each flavor's log, scrape and conntrack rows against its
// plain row, round by round, and halb against HAProxy with logging on and
// with conntrack (against HAProxy's plain rows).
func TestBenchCosts(t *testing.T) {
	rows := func(name string, rps ...float64) BenchResult {
		var rs []BenchRound
		for _, x := range rps {
			rs = append(rs, BenchRound{RPS: x, P99MS: x / 1000})
		}
		return summarizeRounds(name, "", rs)
	}
	res := []BenchResult{
		rows("direct", 1000, 1000, 1000),
		rows("haproxy-http", 500, 400, 600),
		rows("halb-http", 400, 500, 300),
		rows("haproxy-http-log", 450, 400, 480),
		rows("halb-http-log", 400, 450, 300),
		rows("halb-http-scrape", 200, 250, 300),
		rows("halb-http-ct", 360, 450, 300),
		rows("haproxy-http-conn", 100, 100, 100),
		rows("halb-http-conn", 120, 100, 80),
		rows("halb-http-conn-ct", 60, 90, 80),
	}
	vs, costs := ratios(res)
	byMode := map[string]BenchRatio{}
	for _, r := range vs {
		byMode[r.Mode] = r
	}
	if r := byMode["http-log"]; r.Of != "halb-http-log" || r.To != "haproxy-http-log" || r.RPS != 400.0/450 || r.RPSSpread != (Spread{300.0 / 480, 450.0 / 400}) {
		t.Errorf("halb/HAProxy http-log %+v", r)
	}
	// halb's own conntrack rows against HAProxy's rows of the same kind.
	if r := byMode["http-ct"]; r.Of != "halb-http-ct" || r.To != "haproxy-http" || r.RPS != 360.0/500 {
		t.Errorf("halb/HAProxy http-ct %+v", r)
	}
	if r := byMode["http-conn-ct"]; r.Of != "halb-http-conn-ct" || r.To != "haproxy-http-conn" || r.RPS != 0.8 {
		t.Errorf("halb/HAProxy http-conn-ct %+v", r)
	}
	if _, ok := byMode["http-scrape"]; ok {
		t.Errorf("http-scrape compared without an HAProxy row: %+v", vs)
	}
	want := []BenchRatio{
		{Mode: "access-log", Of: "haproxy-http-log", To: "haproxy-http", RPS: 450.0 / 500, RPSSpread: Spread{0.8, 1}, P99: 450.0 / 500},
		{Mode: "access-log", Of: "halb-http-log", To: "halb-http", RPS: 1, RPSSpread: Spread{0.9, 1}, P99: 1},
		{Mode: "scrape", Of: "halb-http-scrape", To: "halb-http", RPS: 250.0 / 400, RPSSpread: Spread{0.5, 1}, P99: 250.0 / 400},
		{Mode: "conntrack", Of: "halb-http-ct", To: "halb-http", RPS: 360.0 / 400, RPSSpread: Spread{0.9, 1}, P99: 360.0 / 400},
		{Mode: "conntrack", Of: "halb-http-conn-ct", To: "halb-http-conn", RPS: 0.8, RPSSpread: Spread{0.5, 1}, P99: 0.8},
	}
	if len(costs) != len(want) {
		t.Fatalf("costs %+v, want %+v", costs, want)
	}
	for i := range want {
		if math.Abs(costs[i].RPS-want[i].RPS) > 1e-9 || math.Abs(costs[i].P99-want[i].P99) > 1e-9 || costs[i].Mode != want[i].Mode || costs[i].Of != want[i].Of || costs[i].To != want[i].To ||
			math.Abs(costs[i].RPSSpread.Min-want[i].RPSSpread.Min) > 1e-9 || math.Abs(costs[i].RPSSpread.Max-want[i].RPSSpread.Max) > 1e-9 {
			t.Errorf("cost %d = %+v, want %+v", i, costs[i], want[i])
		}
	}
}

// TestJudgeRound: a log round needs 9 access lines in 10 requests, a scrape
// round every scrape good.
func TestJudgeRound(t *testing.T) {
	for _, c := range []struct {
		r   BenchRound
		why string
	}{
		{BenchRound{Requests: 1000, LogLines: 1000}, ""},
		{BenchRound{Requests: 1000, LogLines: 1040}, ""}, // answered as wrk stopped
		{BenchRound{Requests: 1000, LogLines: 900}, ""},
		{BenchRound{Requests: 1000, LogLines: 899}, "syslog got 899 access lines for 1000 requests"},
		{BenchRound{Requests: 1000, Scrapes: 50}, ""},
		{BenchRound{Requests: 1000, Scrapes: 49, ScrapeErrors: 1}, "1 scrapes failed"},
		{BenchRound{Requests: 1000, Non2xx: 2, LogLines: 10}, "0 socket errors, 2 non-2xx/3xx; syslog got 10 access lines for 1000 requests"},
	} {
		r := c.r
		judgeRound(&r)
		if r.Why != c.why || r.Rejected != (c.why != "") {
			t.Errorf("%+v: rejected %v %q, want %q", c.r, r.Rejected, r.Why, c.why)
		}
	}
}

func TestWriteBench(t *testing.T) {
	rep := &BenchReport{
		Command: "make bench: bin/netlab bench -out out/bench", Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Elapsed: 200 * time.Second, Rounds: 5, Duration: 5 * time.Second, Connections: 64, Threads: 2,
		ScrapeEvery: 100 * time.Millisecond,
		Throughput: []BenchResult{summarizeRounds("halb-http", "http://x/", []BenchRound{{RPS: 100, P50MS: 1, P99MS: 5}, {RPS: 50, Non2xx: 3, Rejected: true}}),
			summarizeRounds("halb-http-log", "http://x/", []BenchRound{{RPS: 90, P99MS: 6, Requests: 1000, LogLines: 990}}),
			summarizeRounds("halb-http-scrape", "http://x/", []BenchRound{{RPS: 80, P99MS: 7, Requests: 1000, Scrapes: 100, ScrapeBytes: 2048, ScrapeMS: 1.5}}),
		},
	}
	rep.Ratios, rep.Costs = ratios(rep.Throughput)
	// Three rounds of memory: the median round's growth, not the mean,
	// and the rounds' spread.
	rep.Memory = []MemResult{summarizeMem([]MemResult{
		{Name: "halb-http", State: "idle-keepalive", Conns: 1000, RSSBefore: 10 << 20, RSSAfter: 11 << 20, PerConnBytes: 1048.576},
		{Name: "halb-http", State: "idle-keepalive", Conns: 1000, RSSBefore: 12 << 20, RSSAfter: 15 << 20, PerConnBytes: 3145.728},
		{Name: "halb-http", State: "idle-keepalive", Conns: 1000, RSSBefore: 11 << 20, RSSAfter: 13 << 20, PerConnBytes: 2097.152},
	})}
	if m := rep.Memory[0]; m.PerConnBytes != 2097.152 || m.PerConnSpread != (Spread{1048.576, 3145.728}) || m.RSSBefore != 11<<20 || m.RSSAfter != 13<<20 || len(m.RoundBytes) != 3 {
		t.Errorf("memory summary %+v, want the median round (11 → 13 MiB, 2.00 KiB) and 1.00-3.00 KiB", m)
	}
	var b strings.Builder
	dir := t.TempDir()
	if err := WriteBench(&b, dir, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"netlab bench: make bench: bin/netlab bench -out out/bench",
		"5 rounds of 5s per target",
		"rejected",
		"halb-http                100 (100-100)          1.00 (1.00-1.00)     5.00 (5.00-5.00)     -                        3     1/2",
		"halb-http-log: the syslog receiver got 990 access lines for 1000 requests (0.990 per request)",
		"halb-http-scrape: 100 scrapes of /metrics (every 100ms), 0 failed; 2.0 KiB in 1.5 ms (medians)",
		"cost of access-log: halb-http-log       / halb-http    requests/s 0.90 (rounds 0.90-0.90), p99 1.20",
		"halb-http      idle-keepalive       1000       11.0 M       13.0 M     2.05 KiB  3 (1.02-3.07)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back BenchReport
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Command != rep.Command || len(back.Throughput) != 3 || len(back.Throughput[0].Rounds) != 2 || !back.Throughput[0].Rounds[1].Rejected ||
		back.Throughput[1].LogLines != 990 || back.Throughput[2].Scrapes != 100 || len(back.Costs) != 2 ||
		len(back.Memory) != 1 || len(back.Memory[0].RoundBytes) != 3 || back.Memory[0].PerConnSpread.Max != 3145.728 {
		t.Errorf("report.json round trip: %+v", back)
	}
}
