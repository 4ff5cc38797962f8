package netlab

import (
	"bufio"
	"bytes"
	"cmp"
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
	Throughput []BenchResult `json:"throughput"`
	// Ratios compare halb with HAProxy in each mode.
	Ratios []BenchRatio `json:"ratios"`
	Memory []MemResult  `json:"memory"`
	// Skipped names what was not measured, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// BenchRatio is halb / HAProxy for one mode: requests/s and p99 latency.
type BenchRatio struct {
	Mode string  `json:"mode"`
	RPS  float64 `json:"rps_ratio"`
	P99  float64 `json:"p99_ratio"`
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

// BenchResult is one wrk run: a target measured from the client host.
type BenchResult struct {
	// Name is direct, haproxy-http, haproxy-tcp, halb-http or halb-tcp.
	Name     string  `json:"name"`
	URL      string  `json:"url"`
	RPS      float64 `json:"rps"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	Errors   int     `json:"errors"`
	RSSBytes int64   `json:"rss_bytes,omitempty"`
	// Runs is how many wrk runs the figures are the median of.
	Runs int `json:"runs"`
	// Ratio is RPS relative to direct.
	Ratio float64 `json:"ratio_to_direct"`
}

// BenchOptions shape a benchmark run.
type BenchOptions struct {
	Duration    time.Duration // per wrk run; default 5s
	Connections int           // default 64
	Threads     int           // default 2
	Rounds      int           // wrk runs per target, taking turns; default 3
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
	rep = &BenchReport{}
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
		o.Rounds = 3
	}
	if o.MemConns == 0 {
		o.MemConns = 9000
	}
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
	runs := make([][]BenchResult, len(targets))
	for round := range o.Rounds {
		for i, tg := range targets {
			logf("bench: round %d/%d: %s (%s) for %s", round+1, o.Rounds, tg.name, tg.url, o.Duration)
			r, err := tg.c.wrk(tg.url, o)
			if err != nil {
				return rep, fmt.Errorf("bench %s: %w", tg.name, err)
			}
			r.Name = tg.name
			if tg.pid > 0 {
				r.RSSBytes = rssTree(tg.pid) // with children (HAProxy's worker)
			}
			logf("bench:   %.0f requests/s, p99 %.2f ms", r.RPS, r.P99MS)
			runs[i] = append(runs[i], r)
		}
	}
	for _, rs := range runs {
		rep.Throughput = append(rep.Throughput, medianResult(rs))
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
	res := rep.Throughput
	byName := map[string]BenchResult{}
	for i := range res {
		if res[0].RPS > 0 {
			res[i].Ratio = res[i].RPS / res[0].RPS
		}
		byName[res[i].Name] = res[i]
	}
	for _, mode := range []string{"http", "tcp"} {
		h, r := byName["halb-"+mode], byName["haproxy-"+mode]
		if h.RPS > 0 && r.RPS > 0 && r.P99MS > 0 {
			rep.Ratios = append(rep.Ratios, BenchRatio{Mode: mode, RPS: h.RPS / r.RPS, P99: h.P99MS / r.P99MS})
		}
	}
	return rep, nil
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

// medianResult is the run with the median requests/s, its p99 replaced by
// the median p99 of the runs.
func medianResult(rs []BenchResult) BenchResult {
	byRPS := slices.Clone(rs)
	slices.SortFunc(byRPS, func(a, b BenchResult) int { return cmp.Compare(a.RPS, b.RPS) })
	m := byRPS[len(byRPS)/2]
	p99 := make([]float64, len(rs))
	for i, r := range rs {
		p99[i] = r.P99MS
	}
	slices.Sort(p99)
	m.P99MS = p99[len(p99)/2]
	m.Runs = len(rs)
	return m
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	rssPattern = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)
)

// wrk runs wrk inside the client host and parses its report.
func (c *Classic) wrk(url string, o BenchOptions) (BenchResult, error) {
	cmd := exec.Command("wrk", "--latency", "-t", strconv.Itoa(o.Threads), "-c", strconv.Itoa(o.Connections),
		"-d", fmt.Sprintf("%ds", int(o.Duration.Seconds())), url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := c.Client.Do(cmd.Run); err != nil {
		return BenchResult{}, fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	return parseWrk(url, out.String())
}

func parseWrk(url, s string) (BenchResult, error) {
	r := BenchResult{URL: url}
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", s)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
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
	}
	if m := wrkErrors.FindStringSubmatch(s); m != nil {
		for _, n := range m[1:] {
			v, _ := strconv.Atoi(n)
			r.Errors += v
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		v, _ := strconv.Atoi(m[1])
		r.Errors += v
	}
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
	if len(rep.Throughput) > 0 {
		fmt.Fprintf(w, "medians of %d wrk runs per target, the targets taking turns\n", rep.Throughput[0].Runs)
	}
	fmt.Fprintf(w, "%-14s %12s %9s %9s %8s %10s %7s\n", "target", "requests/s", "p50 ms", "p99 ms", "errors", "rss MiB", "ratio")
	for _, r := range rep.Throughput {
		mem := "-"
		if r.RSSBytes > 0 {
			mem = fmt.Sprintf("%.1f", float64(r.RSSBytes)/(1<<20))
		}
		fmt.Fprintf(w, "%-14s %12.0f %9.2f %9.2f %8d %10s %7.2f\n", r.Name, r.RPS, r.P50MS, r.P99MS, r.Errors, mem, r.Ratio)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Ratios {
		fmt.Fprintf(w, "halb/HAProxy %-4s requests/s %.2f, p99 %.2f\n", r.Mode, r.RPS, r.P99)
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
