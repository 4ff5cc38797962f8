package netlab

import (
	"bufio"
	"bytes"
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

	Throughput []BenchResult `json:"throughput"`
	// Ratios compare halb with HAProxy in each mode.
	Ratios []BenchRatio `json:"ratios"`
	Memory []MemResult  `json:"memory"`
	// Skipped names what was not measured, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// BenchRatio is halb / HAProxy for one mode: the ratios of the medians of
// requests/s and p99 latency, and the spread of the per-round requests/s
// ratios (rounds in which both runs were accepted; the two ran one right
// after the other).
type BenchRatio struct {
	Mode      string  `json:"mode"`
	RPS       float64 `json:"rps_ratio"`
	RPSSpread Spread  `json:"rps_ratio_rounds"`
	P99       float64 `json:"p99_ratio"`
}

// Spread is the lowest and highest figure over the accepted rounds.
type Spread struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// MemResult is the memory a proxy holds for client connections: RSS (with
// children) before and after Conns connections were opened and left in
// State: "idle-keepalive" (after one request) or "unfinished-head".
type MemResult struct {
	Name         string  `json:"name"`
	State        string  `json:"state"`
	Conns        int     `json:"connections"`
	RSSBefore    int64   `json:"rss_before_bytes"`
	RSSAfter     int64   `json:"rss_after_bytes"`
	PerConnBytes float64 `json:"per_connection_bytes"`
}

// BenchRound is one wrk run of one target.
type BenchRound struct {
	RPS          float64 `json:"rps"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
	SocketErrors int     `json:"socket_errors"` // connect, read, write and timeout errors
	Non2xx       int     `json:"non_2xx_3xx"`   // responses other than 2xx and 3xx
	RSSBytes     int64   `json:"rss_bytes,omitempty"`
	// Rejected: the run had errors or non-2xx/3xx responses; it is left
	// out of the medians (a proxy answering errors fast is not fast).
	Rejected bool `json:"rejected,omitempty"`
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
	// Ratio is RPS relative to direct.
	Ratio  float64      `json:"ratio_to_direct"`
	Rounds []BenchRound `json:"per_round"`
}

// BenchOptions shape a benchmark run.
type BenchOptions struct {
	Duration    time.Duration // per wrk run; default 5s
	Connections int           // default 64
	Threads     int           // default 2
	Rounds      int           // wrk runs per target, taking turns; default 5
	// MemConns is the number of client connections held open through
	// each HTTP proxy for the memory figures; default 9000 (the hard
	// open-file limit here is 20000 per process, and HAProxy derives its
	// maxconn from it at about half). 0 after defaults: skip.
	MemConns int
}

// Bench measures, in one lab run, wrk from the client against a backend
// directly and against each flavor's proxy in front of the same backend.
// Flavors whose proxy does not exist yet are left out and named in skipped.
func Bench(l *Lab, o BenchOptions, logf func(string, ...any)) (rep *BenchReport, err error) {
	rep = &BenchReport{Started: time.Now()}
	defer func() { rep.Elapsed = time.Since(rep.Started).Round(time.Second) }()
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
	rep.Rounds, rep.Duration, rep.Connections, rep.Threads = o.Rounds, o.Duration, o.Connections, o.Threads
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("netlab bench needs wrk (scripts/deps.sh installs it): %w", err)
	}
	// One server only, so direct and proxied runs load the same backend.
	opts := ClassicOptions{ClientOnBack: true, SingleServer: true}
	type target struct {
		c         *Classic
		name, url string
		pid       int
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
	// Both topologies run at once (separate labs, separate namespaces) and
	// the targets take turns round after round, so that a slow spell of
	// this shared machine does not land on one flavor only; each figure
	// is the median of its rounds.
	start := func(lab *Lab, fl Flavor) (*Classic, error) {
		co := opts
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
	ref, err := start(l, FlavorReference)
	if err != nil {
		return rep, err
	}
	defer ref.Close()
	hl, err := NewLab(filepath.Join(l.Dir, "halb"))
	if err != nil {
		return rep, err
	}
	defer hl.Close()
	hc, err := start(hl, FlavorHalb)
	if err != nil {
		return rep, err
	}
	defer hc.Close()
	tcpURL := "http://" + ClassicVIP + ":" + strconv.Itoa(ClassicTCPPort) + "/"
	targets := []target{
		{ref, "direct", "http://10.0.0.11/", 0},
		{ref, "haproxy-http", "http://" + ClassicVIP + "/", pidOf(ref, "haproxy")},
		{ref, "haproxy-tcp", tcpURL, pidOf(ref, "haproxy")},
		{hc, "halb-http", "http://" + ClassicVIP + "/", pidOf(hc, "halbd")},
		{hc, "halb-tcp", tcpURL, pidOf(hc, "halbd")},
	}
	runs := make([][]BenchRound, len(targets))
	for round := range o.Rounds {
		for i, tg := range targets {
			logf("bench: round %d/%d: %s (%s) for %s", round+1, o.Rounds, tg.name, tg.url, o.Duration)
			r, err := tg.c.wrk(tg.url, o)
			if err != nil {
				return rep, fmt.Errorf("bench %s: %w", tg.name, err)
			}
			if tg.pid > 0 {
				r.RSSBytes = rssTree(tg.pid) // with children (HAProxy's worker)
			}
			msg := ""
			if r.Rejected {
				msg = fmt.Sprintf(" — rejected: %d socket errors, %d non-2xx/3xx", r.SocketErrors, r.Non2xx)
			}
			logf("bench:   %.0f requests/s, p50 %.2f ms, p99 %.2f ms%s", r.RPS, r.P50MS, r.P99MS, msg)
			runs[i] = append(runs[i], r)
		}
	}
	for i, rs := range runs {
		rep.Throughput = append(rep.Throughput, summarizeRounds(targets[i].name, targets[i].url, rs))
	}

	// Memory: each state in a fresh topology, so that no figure reuses
	// memory a previous run left in the proxy's allocator.
	for _, fl := range []Flavor{FlavorReference, FlavorHalb} {
		for _, state := range []string{"idle-keepalive", "unfinished-head"} {
			if o.MemConns <= 0 {
				break
			}
			name := map[Flavor]string{FlavorReference: "haproxy-http", FlavorHalb: "halb-http"}[fl]
			ml, err := NewLab(filepath.Join(l.Dir, "mem-"+string(fl)+"-"+state))
			if err != nil {
				return rep, err
			}
			logf("bench: %s memory with %d connections, %s", name, o.MemConns, state)
			var m MemResult
			err = func() error {
				defer ml.Close()
				co := opts
				co.Flavor = fl
				c, err := NewClassic(ml, co)
				if err != nil {
					return err
				}
				defer c.Close()
				if err := c.WaitConverged(15 * time.Second); err != nil {
					return err
				}
				proc := map[Flavor]string{FlavorReference: "haproxy", FlavorHalb: "halbd"}[fl]
				m, err = c.connMemory(ClassicVIP+":80", pidOf(c, proc), o.MemConns, state)
				return err
			}()
			if err != nil {
				return rep, fmt.Errorf("bench %s memory: %w", name, err)
			}
			m.Name = name
			rep.Memory = append(rep.Memory, m)
		}
	}
	rep.Ratios = ratios(rep.Throughput)
	return rep, nil
}

// ratios sets each result's ratio to direct (the first) and returns
// halb / HAProxy per mode.
func ratios(res []BenchResult) []BenchRatio {
	byName := map[string]BenchResult{}
	for i := range res {
		if res[0].RPS > 0 {
			res[i].Ratio = res[i].RPS / res[0].RPS
		}
		byName[res[i].Name] = res[i]
	}
	var out []BenchRatio
	for _, mode := range []string{"http", "tcp"} {
		h, r := byName["halb-"+mode], byName["haproxy-"+mode]
		if h.RPS <= 0 || r.RPS <= 0 || r.P99MS <= 0 {
			continue
		}
		br := BenchRatio{Mode: mode, RPS: h.RPS / r.RPS, P99: h.P99MS / r.P99MS}
		var per []float64
		for i := range min(len(h.Rounds), len(r.Rounds)) {
			if hr, rr := h.Rounds[i], r.Rounds[i]; !hr.Rejected && !rr.Rejected && rr.RPS > 0 {
				per = append(per, hr.RPS/rr.RPS)
			}
		}
		br.RPSSpread = spread(per)
		out = append(out, br)
	}
	return out
}

// summarizeRounds turns a target's rounds into its result: medians and spreads
// over the accepted rounds, errors over all.
func summarizeRounds(name, url string, rounds []BenchRound) BenchResult {
	res := BenchResult{Name: name, URL: url, RoundsRun: len(rounds), Rounds: rounds}
	var rps, p50, p99, mem []float64
	for _, r := range rounds {
		res.Errors += r.SocketErrors + r.Non2xx
		if r.Rejected {
			continue
		}
		rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50MS), append(p99, r.P99MS)
		if r.RSSBytes > 0 {
			mem = append(mem, float64(r.RSSBytes))
		}
	}
	res.Runs = len(rps)
	res.RPS, res.RPSSpread = median(rps), spread(rps)
	res.P50MS, res.P50Spread = median(p50), spread(p50)
	res.P99MS, res.P99Spread = median(p99), spread(p99)
	res.RSSBytes = int64(median(mem))
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
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	rssPattern = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)
)

// wrk runs wrk inside the client host and parses its report.
func (c *Classic) wrk(url string, o BenchOptions) (BenchRound, error) {
	cmd := exec.Command("wrk", "--latency", "-t", strconv.Itoa(o.Threads), "-c", strconv.Itoa(o.Connections),
		"-d", fmt.Sprintf("%ds", int(o.Duration.Seconds())), url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := c.Client.Do(cmd.Run); err != nil {
		return BenchRound{}, fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	return parseWrk(out.String())
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
	r.Rejected = r.SocketErrors > 0 || r.Non2xx > 0
	return r, nil
}

// rssTree sums the resident memory of pid and all its descendants.
func rssTree(pid int) int64 {
	total := rss(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			total += rssTree(child)
		}
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
	fmt.Fprintln(w, "medians over the accepted rounds (min-max); a round with socket errors or non-2xx/3xx responses is rejected;")
	fmt.Fprintln(w, "p50 and p99 are the medians of the same rounds' own percentiles")
	fmt.Fprintf(w, "%-13s %-22s %-18s %-18s %7s %7s %8s %6s\n", "target", "requests/s", "p50 ms", "p99 ms", "errors", "rounds", "rss MiB", "ratio")
	for _, r := range rep.Throughput {
		mem := "-"
		if r.RSSBytes > 0 {
			mem = fmt.Sprintf("%.1f", float64(r.RSSBytes)/(1<<20))
		}
		fmt.Fprintf(w, "%-13s %-22s %-18s %-18s %7d %7s %8s %6.2f\n", r.Name,
			fmt.Sprintf("%.0f (%.0f-%.0f)", r.RPS, r.RPSSpread.Min, r.RPSSpread.Max),
			fmt.Sprintf("%.2f (%.2f-%.2f)", r.P50MS, r.P50Spread.Min, r.P50Spread.Max),
			fmt.Sprintf("%.2f (%.2f-%.2f)", r.P99MS, r.P99Spread.Min, r.P99Spread.Max),
			r.Errors, fmt.Sprintf("%d/%d", r.Runs, r.RoundsRun), mem, r.Ratio)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Ratios {
		fmt.Fprintf(w, "halb/HAProxy %-4s requests/s %.2f (rounds %.2f-%.2f), p99 %.2f\n", r.Mode, r.RPS, r.RPSSpread.Min, r.RPSSpread.Max, r.P99)
	}
	if len(rep.Memory) > 0 {
		fmt.Fprintf(w, "\n%-14s %-16s %8s %12s %12s %12s\n", "proxy", "connections", "count", "rss before", "rss after", "per conn")
		for _, m := range rep.Memory {
			fmt.Fprintf(w, "%-14s %-16s %8d %10.1f M %10.1f M %8.2f KiB\n", m.Name, m.State, m.Conns,
				float64(m.RSSBefore)/(1<<20), float64(m.RSSAfter)/(1<<20), m.PerConnBytes/1024)
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "not measured: %s\n", s)
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
