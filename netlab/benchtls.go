package netlab

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"halb/appliance/certs/certstest"
)

// The tls row: https services (ClassicOptions.TLSDir) beside the plain
// ones, halb's Go crypto/tls against HAProxy 2.6 on OpenSSL 3.0.

// BenchTLSName is the DNS name of the bench certificates; clients send it
// as SNI.
const BenchTLSName = "bench.example"

// WriteBenchCerts writes the https services' certificates into dir
// (ClassicOptions.TLSDir): ecdsa.crt and .key (P-256), rsa.crt and .key
// (RSA 2048), leaves for BenchTLSName and the VIP, each .crt the leaf then
// the root (ECDSA P-256) that signed it, made with certstest.
func WriteBenchCerts(dir string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(certsFailed)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("bench certificates: %s", string(f))
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var t certsTB
	root := certstest.Root(t, "netlab bench root")
	for _, k := range []string{"ecdsa", "rsa"} {
		p := root.Leaf(t, certstest.Options{CN: BenchTLSName, DNS: []string{BenchTLSName}, IPs: []net.IP{net.ParseIP(ClassicVIP)}, Key: k})
		if err := os.WriteFile(filepath.Join(dir, k+".crt"), certstest.Cat(p.CertPEM, root.PEM), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, k+".key"), p.KeyPEM, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// certsTB lets certstest run outside a test: a failure panics with
// certsFailed, which WriteBenchCerts returns as its error.
type certsTB struct{ testing.TB }

type certsFailed string

func (certsTB) Helper()                   {}
func (certsTB) Fatal(a ...any)            { panic(certsFailed(fmt.Sprint(a...))) }
func (certsTB) Fatalf(f string, a ...any) { panic(certsFailed(fmt.Sprintf(f, a...))) }

// TLSLoadOptions shape a TLSLoad run.
type TLSLoadOptions struct {
	URL         string // https://host[:port]/path
	Connections int    // concurrent clients
	Duration    time.Duration
	// Resume keeps one session cache for all clients: every connection
	// after a client's first offers a ticket. Without, none does.
	Resume bool
}

// TLSLoad is the handshake rows' client (netlab tlsload): Connections
// clients, each opening a TLS connection, sending one GET with
// Connection: close, reading the whole answer and closing, again and
// again for Duration. Go's crypto/tls on the client side, X25519 only
// (what OpenSSL 3.0 clients such as wrk offer first, and all HAProxy 2.6
// can do), TLS 1.3, the chain not verified (as wrk), the server's
// handshake signature verified (TLS always does). It writes a report in
// wrk's --latency format (parseWrk reads it) with a line of its own:
// "handshakes: N full, M resumed; VERSION CIPHER CURVE".
func TLSLoad(o TLSLoadOptions, w io.Writer) error {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "https" {
		return fmt.Errorf("tlsload: want an https URL, not %q (%v)", o.URL, err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	cfg := &tls.Config{ServerName: BenchTLSName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519}, NextProtos: []string{"http/1.1"}}
	if o.Resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4 * o.Connections)
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + BenchTLSName + "\r\nConnection: close\r\n\r\n"
	type result struct {
		lat                                       []time.Duration
		full, resumed, non2xx                     int64
		connectErr, readErr, writeErr, timeoutErr int
		version, cipher                           uint16
		curve                                     tls.CurveID
	}
	res := make([]result, o.Connections)
	start := time.Now()
	end := start.Add(o.Duration)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			d := net.Dialer{Timeout: 2 * time.Second}
			for time.Now().Before(end) {
				t0 := time.Now()
				c, err := d.Dial("tcp", addr)
				if err != nil {
					r.connectErr++
					continue
				}
				c.SetDeadline(t0.Add(5 * time.Second))
				tc := tls.Client(c, cfg)
				err = tc.Handshake()
				if err == nil {
					_, err = io.WriteString(tc, req)
					if err != nil {
						r.writeErr++
					}
				} else {
					r.readErr++
				}
				if err != nil {
					c.Close()
					continue
				}
				resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				c.Close()
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						r.timeoutErr++
					} else {
						r.readErr++
					}
					continue
				}
				r.lat = append(r.lat, time.Since(t0))
				if resp.StatusCode >= 400 {
					r.non2xx++
				}
				cs := tc.ConnectionState()
				if cs.DidResume {
					r.resumed++
				} else {
					r.full++
				}
				r.version, r.cipher, r.curve = cs.Version, cs.CipherSuite, cs.CurveID
			}
		}(&res[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all result
	for _, r := range res {
		all.lat = append(all.lat, r.lat...)
		all.full += r.full
		all.resumed += r.resumed
		all.non2xx += r.non2xx
		all.connectErr += r.connectErr
		all.readErr += r.readErr
		all.writeErr += r.writeErr
		all.timeoutErr += r.timeoutErr
		if r.version != 0 {
			all.version, all.cipher, all.curve = r.version, r.cipher, r.curve
		}
	}
	slices.Sort(all.lat)
	pct := func(p float64) float64 {
		if len(all.lat) == 0 {
			return 0
		}
		return float64(all.lat[min(len(all.lat)-1, int(p*float64(len(all.lat))))].Microseconds()) / 1000
	}
	n := len(all.lat)
	fmt.Fprintf(w, "Running %s test @ %s (netlab tlsload, resume %v)\n  %d connections\n", o.Duration, o.URL, o.Resume, o.Connections)
	fmt.Fprintf(w, "  Latency Distribution\n     50%%    %.2fms\n     99%%    %.2fms\n", pct(0.50), pct(0.99))
	fmt.Fprintf(w, "  %d requests in %.2fs\n", n, elapsed.Seconds())
	if errs := all.connectErr + all.readErr + all.writeErr + all.timeoutErr; errs > 0 {
		fmt.Fprintf(w, "  Socket errors: connect %d, read %d, write %d, timeout %d\n", all.connectErr, all.readErr, all.writeErr, all.timeoutErr)
	}
	if all.non2xx > 0 {
		fmt.Fprintf(w, "  Non-2xx or 3xx responses: %d\n", all.non2xx)
	}
	fmt.Fprintf(w, "Requests/sec: %.2f\n", float64(n)/elapsed.Seconds())
	fmt.Fprintf(w, "handshakes: %d full, %d resumed; %s %s %s\n", all.full, all.resumed,
		strings.ReplaceAll(tls.VersionName(all.version), " ", ""), tls.CipherSuiteName(all.cipher), all.curve)
	return nil
}

var tlsLoadHandshakes = regexp.MustCompile(`(?m)^handshakes: (\d+) full, (\d+) resumed; (.*)$`)

// parseTLSLoad reads a TLSLoad report: wrk's figures, and the client's
// count of full and resumed handshakes.
func parseTLSLoad(s string) (BenchRound, error) {
	r, err := parseWrk(s)
	if err != nil {
		return r, err
	}
	m := tlsLoadHandshakes.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no handshakes line in tlsload output:\n%s", s)
	}
	r.ClientFull, _ = strconv.ParseInt(m[1], 10, 64)
	r.ClientResumed, _ = strconv.ParseInt(m[2], 10, 64)
	r.Negotiated = m[3]
	return r, nil
}

// tlsLoad runs TLSLoad as its own process (this binary's tlsload
// command, so its CPU is measured apart from the in-process backends)
// inside the client host.
func (c *Classic) tlsLoad(url string, resume bool, o BenchOptions) (BenchRound, error) {
	self, err := os.Executable()
	if err != nil {
		return BenchRound{}, err
	}
	args := []string{"tlsload", "-c", strconv.Itoa(o.Connections), "-d", o.Duration.String()}
	if resume {
		args = append(args, "-resume")
	}
	return c.runLoad("tlsload", exec.Command(self, append(args, url)...), o.Duration, parseTLSLoad)
}

// tlsCounters reads a flavor's handshakes of service so far: full and
// resumed (halb: services[].stats.tls of its status; HAProxy: the
// frontend's ssl_sess, new sessions, and ssl_reused_sess of show stat).
func (c *Classic) tlsCounters(service string) (full, resumed int64, err error) {
	n := c.LB[0]
	if n.Flavor == FlavorHalb {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		api := n.API()
		defer api.Close()
		st, err := api.Status(ctx)
		if err != nil {
			return 0, 0, err
		}
		return halbTLSCounters(st.Services, service)
	}
	out, err := haproxyCommand(RefPaths{Dir: n.Dir}.HAProxySocket(), "show stat")
	if err != nil {
		return 0, 0, err
	}
	return haproxySSLCounters(out, service)
}

// halbTLSCounters finds service's handshakes in halb's status services.
func halbTLSCounters(services json.RawMessage, service string) (full, resumed int64, err error) {
	var ss []struct {
		Name  string `json:"name"`
		Stats struct {
			TLS *struct {
				Handshakes int64 `json:"handshakes"`
				Resumed    int64 `json:"resumed"`
			} `json:"tls"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(services, &ss); err != nil {
		return 0, 0, fmt.Errorf("halb status services: %w", err)
	}
	for _, s := range ss {
		if s.Name == service && s.Stats.TLS != nil {
			return s.Stats.TLS.Handshakes - s.Stats.TLS.Resumed, s.Stats.TLS.Resumed, nil
		}
	}
	return 0, 0, fmt.Errorf("halb status: no tls stats of service %q", service)
}

// haproxySSLCounters reads frontend service's ssl_sess and ssl_reused_sess
// from show stat's CSV.
func haproxySSLCounters(csv, service string) (full, resumed int64, err error) {
	lines := strings.Split(csv, "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		return 0, 0, fmt.Errorf("show stat: no header in %q", csv)
	}
	head := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	is, ir := slices.Index(head, "ssl_sess"), slices.Index(head, "ssl_reused_sess")
	if is < 0 || ir < 0 {
		return 0, 0, fmt.Errorf("show stat: no ssl_sess and ssl_reused_sess columns")
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > max(is, ir) && f[0] == service && f[1] == "FRONTEND" {
			full, _ = strconv.ParseInt(f[is], 10, 64)
			resumed, _ = strconv.ParseInt(f[ir], 10, 64)
			return full, resumed, nil
		}
	}
	return 0, 0, fmt.Errorf("show stat: no FRONTEND row of %q", service)
}

// haproxyCommand sends one command to HAProxy's admin socket and returns
// its answer.
func haproxyCommand(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// tlsTargets are the tls row's targets on ref and hc (plain topologies
// with TLSDir), each flavor beside the other.
func tlsTargets(ref, hc *Classic, pidOf func(*Classic, string) int) []rowTarget {
	vip := "https://" + ClassicVIP
	rsa := vip + ":" + strconv.Itoa(ClassicTLSRSAPort)
	lb1 := func(c *Classic) *Host { return c.LB[0].Host }
	var ts []rowTarget
	for _, k := range []struct {
		kind, url, service string
		load               tlsLoadKind
		size               int64
		wrk                []string
	}{
		{"https", vip + "/", "web-tls", 0, 0, nil},
		{"https-conn-ecdsa", vip + "/", "web-tls", tlsLoadFull, 0, nil},
		{"https-conn-rsa", rsa + "/", "web-tls-rsa", tlsLoadFull, 0, nil},
		{"https-resume", vip + "/", "web-tls", tlsLoadResume, 0, nil},
		{"https-conn-wrk", vip + "/", "web-tls", 0, 0, []string{"-H", "Connection: close"}},
		{"https-1m", vip + BytesPath + "?n=" + strconv.Itoa(benchLargeBody), "web-tls", 0, benchLargeBody, nil},
	} {
		for _, fl := range []struct {
			c          *Classic
			name, proc string
		}{{ref, "haproxy", "haproxy"}, {hc, "halb", "halbd"}} {
			tg := rowTarget{c: fl.c, name: fl.name + "-" + k.kind, url: k.url, pid: pidOf(fl.c, fl.proc),
				wrk: k.wrk, size: k.size, tlsLoad: k.load, tlsService: k.service}
			if k.load != 0 || k.wrk != nil {
				tg.accepts = lb1(fl.c)
			}
			ts = append(ts, tg)
		}
	}
	return ts
}

// tlsLoadKind says whether a target's client is TLSLoad, and with which
// sessions.
type tlsLoadKind int

const (
	tlsLoadFull   tlsLoadKind = 1 + iota // TLSLoad, no session cache
	tlsLoadResume                        // TLSLoad with a session cache
)

// cmdCPU is the CPU seconds (user and system) a finished command used.
func cmdCPU(cmd *exec.Cmd) float64 {
	if cmd.ProcessState == nil {
		return 0
	}
	return (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
}

// pidTree is pid and its descendants alive now (the children of each of
// its threads).
func pidTree(pid int) []int {
	out := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		kids, _ := os.ReadFile(t)
		for _, k := range strings.Fields(string(kids)) {
			if child, err := strconv.Atoi(k); err == nil {
				out = append(out, pidTree(child)...)
			}
		}
	}
	return out
}

// perfRecord samples the CPU of pid and its descendants with perf for d
// into file (BenchOptions.PerfDir); the caller waits for the returned
// function.
func perfRecord(pid int, d time.Duration, file string) (wait func() error) {
	var ps []string
	for _, p := range pidTree(pid) {
		ps = append(ps, strconv.Itoa(p))
	}
	cmd := exec.Command("perf", "record", "-q", "-F", "999", "-o", file, "-p", strings.Join(ps, ","),
		"--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
	out, err := os.Create(file + ".log")
	if err != nil {
		return func() error { return err }
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return func() error { return err }
	}
	return func() error {
		defer out.Close()
		return cmd.Wait()
	}
}

var sClientBrief = regexp.MustCompile(`(?m)^(Protocol version|Ciphersuite|Peer Temp Key): ([^,\n]+)`)

// negotiated sets r.Negotiated to what an OpenSSL client (openssl
// s_client, the library and defaults of wrk) gets from url's service:
// version, cipher and key exchange; a failure says so instead.
func (c *Classic) negotiated(rawURL string, r *BenchRound) {
	u, err := url.Parse(rawURL)
	if err != nil {
		r.Negotiated = err.Error()
		return
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	cmd := exec.Command("openssl", "s_client", "-brief", "-connect", addr, "-servername", BenchTLSName)
	cmd.Stdin = strings.NewReader("")
	out, _ := c.runClient(cmd)
	var parts []string
	for _, m := range sClientBrief.FindAllStringSubmatch(out, -1) {
		parts = append(parts, m[2])
	}
	if len(parts) == 0 {
		r.Negotiated = "openssl s_client: no handshake: " + strings.TrimSpace(out)
		return
	}
	r.Negotiated = "OpenSSL client (as wrk): " + strings.Join(parts, " ")
}
