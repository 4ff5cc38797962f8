package netlab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// BenchResult is one wrk run: a target measured from the client host.
type BenchResult struct {
	// Name is direct, haproxy-http, haproxy-tcp (later halb-http, halb-tcp).
	Name     string  `json:"name"`
	URL      string  `json:"url"`
	RPS      float64 `json:"rps"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	Errors   int     `json:"errors"`
	RSSBytes int64   `json:"rss_bytes,omitempty"`
	// Ratio is RPS relative to direct.
	Ratio float64 `json:"ratio_to_direct"`
}

// BenchOptions shape a benchmark run.
type BenchOptions struct {
	Duration    time.Duration // per target; default 10s
	Connections int           // default 50
	Threads     int           // default 2
}

// Bench measures, in one lab run, wrk from the client against a backend
// directly and against each flavor's proxy in front of the same backend.
// Flavors whose proxy does not exist yet are left out and named in skipped.
func Bench(l *Lab, o BenchOptions, logf func(string, ...any)) (results []BenchResult, skipped []string, err error) {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Connections == 0 {
		o.Connections = 50
	}
	if o.Threads == 0 {
		o.Threads = 2
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, nil, fmt.Errorf("netlab bench needs wrk (scripts/deps.sh installs it): %w", err)
	}
	// One server only, so direct and proxied runs load the same backend.
	opts := ClassicOptions{ClientOnBack: true, SingleServer: true}
	type target struct {
		name, url string
		pid       int
	}
	// Each flavor gets its own topology in its own lab, one after the
	// other, on this same machine.
	measure := func(lab *Lab, fl Flavor, targets func(c *Classic) []target) error {
		co := opts
		co.Flavor = fl
		c, err := NewClassic(lab, co)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.WaitConverged(15 * time.Second); err != nil {
			return err
		}
		for _, tg := range targets(c) {
			logf("bench: %s (%s) for %s", tg.name, tg.url, o.Duration)
			r, err := c.wrk(tg.url, o)
			if err != nil {
				return fmt.Errorf("bench %s: %w", tg.name, err)
			}
			r.Name = tg.name
			if tg.pid > 0 {
				r.RSSBytes = rssTree(tg.pid) // with children (HAProxy's worker)
			}
			results = append(results, r)
		}
		return nil
	}
	pidOf := func(c *Classic, name string) int {
		for _, p := range c.LB[0].Processes() {
			if p.Name == name {
				return p.Cmd.Process.Pid
			}
		}
		return 0
	}
	tcpURL := "http://" + ClassicVIP + ":" + strconv.Itoa(ClassicTCPPort) + "/"
	err = measure(l, FlavorReference, func(c *Classic) []target {
		pid := pidOf(c, "haproxy")
		return []target{
			{"direct", "http://10.0.0.11/", 0},
			{"haproxy-http", "http://" + ClassicVIP + "/", pid},
			{"haproxy-tcp", tcpURL, pid},
		}
	})
	if err != nil {
		return results, skipped, err
	}
	hl, err := NewLab(filepath.Join(l.Dir, "halb"))
	if err != nil {
		return results, skipped, err
	}
	defer hl.Close()
	err = measure(hl, FlavorHalb, func(c *Classic) []target {
		return []target{{"halb-tcp", tcpURL, pidOf(c, "halbd")}}
	})
	if err != nil {
		return results, skipped, err
	}
	for i := range results {
		if results[0].RPS > 0 {
			results[i].Ratio = results[i].RPS / results[0].RPS
		}
	}
	skipped = append(skipped, "halb-http: halbd has no HTTP engine yet (issue 5 adds it)")
	return results, skipped, nil
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

// WriteBench prints the table to w and writes dir/report.json.
func WriteBench(w io.Writer, dir string, results []BenchResult, skipped []string) error {
	fmt.Fprintf(w, "%-14s %12s %9s %9s %8s %10s %7s\n", "target", "requests/s", "p50 ms", "p99 ms", "errors", "rss MiB", "ratio")
	for _, r := range results {
		mem := "-"
		if r.RSSBytes > 0 {
			mem = fmt.Sprintf("%.1f", float64(r.RSSBytes)/(1<<20))
		}
		fmt.Fprintf(w, "%-14s %12.0f %9.2f %9.2f %8d %10s %7.2f\n", r.Name, r.RPS, r.P50MS, r.P99MS, r.Errors, mem, r.Ratio)
	}
	for _, s := range skipped {
		fmt.Fprintf(w, "not measured: %s\n", s)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644)
}
