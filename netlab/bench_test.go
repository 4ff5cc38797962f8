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
	want := BenchRound{RPS: 60800, P50MS: 0.97, P99MS: 11.6}
	if math.Abs(r.P50MS-want.P50MS) > 1e-9 || r.RPS != want.RPS || r.P99MS != want.P99MS || r.Rejected || r.SocketErrors != 0 || r.Non2xx != 0 {
		t.Errorf("clean run = %+v, want %+v", r, want)
	}
	r, err = parseWrk(wrkErrorsOut)
	if err != nil {
		t.Fatal(err)
	}
	if r.SocketErrors != 16 || r.Non2xx != 42 || !r.Rejected || r.P99MS != 1200 || r.RPS != 31900.5 {
		t.Errorf("run with errors = %+v, want 16 socket errors, 42 non-2xx, rejected, p99 1200 ms", r)
	}
	for _, bad := range []string{"", "Requests/sec: 1\n", strings.Replace(wrkClean, "99%", "98%", 1)} {
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
	rs := ratios(res)
	if len(rs) != 1 || rs[0].Mode != "http" {
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

func TestWriteBench(t *testing.T) {
	rep := &BenchReport{
		Command: "make bench: bin/netlab bench -out out/bench", Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Elapsed: 200 * time.Second, Rounds: 5, Duration: 5 * time.Second, Connections: 64, Threads: 2,
		Throughput: []BenchResult{summarizeRounds("halb-http", "http://x/", []BenchRound{{RPS: 100, P50MS: 1, P99MS: 5}, {RPS: 50, Non2xx: 3, Rejected: true}})},
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
		"halb-http     100 (100-100)          1.00 (1.00-1.00)   5.00 (5.00-5.00)         3     1/2",
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
	if back.Command != rep.Command || len(back.Throughput) != 1 || len(back.Throughput[0].Rounds) != 2 || !back.Throughput[0].Rounds[1].Rejected {
		t.Errorf("report.json round trip: %+v", back)
	}
}
