package netlab

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchCertsDir writes the bench certificates into a temporary directory.
func benchCertsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteBenchCerts(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBenchTLSConfig: with TLSDir the classic config has the two https
// services over backend web, ECDSA on 443 and RSA on 8443, and the
// reference binds them with ssl and their crt files (haproxy -c accepts
// it: TestHAProxyAcceptsReference's bench-tls).
func TestBenchTLSConfig(t *testing.T) {
	dir := benchCertsDir(t)
	cfg := parseConfig(t, string(ClassicConfig(ClassicOptions{SingleServer: true, TLSDir: dir}, 0)))
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
		if s.TLS == nil {
			continue
		}
		if s.DefaultBackend != "web" || s.Mode != "http" || len(s.TLS.Certificates) != 1 {
			t.Errorf("service %s: %+v", s.Name, s)
		}
	}
	if strings.Join(names, ",") != "web,web-tls,web-tls-rsa,web-tcp" && strings.Join(names, ",") != "web,web-tcp,web-tls,web-tls-rsa" {
		t.Errorf("services %v", names)
	}
	p := RefPaths{Dir: "/run/netlab/lb1"}
	_, h := renderBoth(t, cfg, p)
	wantLines(t, "frontend web-tls", block(t, h, "frontend web-tls"),
		"bind 192.168.10.100:443 ssl crt /run/netlab/lb1/crt-web-tls-ecdsa.pem ssl-min-ver TLSv1.2 ciphers "+
			refMozillaIntermediate+" ciphersuites "+refTLS13Suites+" curves X25519:P-256:P-384 alpn http/1.1")
	wantLines(t, "frontend web-tls-rsa", block(t, h, "frontend web-tls-rsa"),
		"bind 192.168.10.100:8443 ssl crt /run/netlab/lb1/crt-web-tls-rsa-rsa.pem ssl-min-ver TLSv1.2 ciphers "+
			refMozillaIntermediate+" ciphersuites "+refTLS13Suites+" curves X25519:P-256:P-384 alpn http/1.1")
	for kind, want := range map[string]func(any) bool{
		"ecdsa": func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok },
		"rsa":   func(k any) bool { k2, ok := k.(*rsa.PrivateKey); return ok && k2.N.BitLen() == 2048 },
	} {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, kind+".crt"), filepath.Join(dir, kind+".key"))
		if err != nil || !want(c.PrivateKey) || len(c.Certificate) != 2 || c.Leaf.DNSNames[0] != BenchTLSName {
			t.Errorf("%s: %v, chain of %d", kind, err, len(c.Certificate))
		}
	}
}

// TestTLSLoad: the handshake client against a Go TLS server on loopback:
// without a session cache every handshake is full, with one all but each
// client's first resume; the report reads as wrk's.
func TestTLSLoad(t *testing.T) {
	dir := benchCertsDir(t)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "ecdsa.crt"), filepath.Join(dir, "ecdsa.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "https://" + ln.Addr().(*net.TCPAddr).String() + "/"
	for _, resume := range []bool{false, true} {
		var b strings.Builder
		if err := TLSLoad(TLSLoadOptions{URL: url, Connections: 4, Duration: 300 * time.Millisecond, Resume: resume}, &b); err != nil {
			t.Fatal(err)
		}
		r, err := parseTLSLoad(b.String())
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || r.Rejected || r.ClientFull+r.ClientResumed != r.Requests || r.Negotiated != "TLS1.3 TLS_AES_128_GCM_SHA256 X25519" {
			t.Errorf("resume %v: %+v\n%s", resume, r, b.String())
		}
		if resume && r.ClientFull > 4 || !resume && r.ClientResumed > 0 {
			t.Errorf("resume %v: %d full, %d resumed", resume, r.ClientFull, r.ClientResumed)
		}
	}
	if err := TLSLoad(TLSLoadOptions{URL: "http://x/"}, new(strings.Builder)); err == nil {
		t.Error("an http URL was taken")
	}
}

// TestTLSCounters: the handshakes each flavor reports, from halb's status
// and HAProxy's show stat.
func TestTLSCounters(t *testing.T) {
	st := json.RawMessage(`[{"name":"web","stats":{"requests":5}},{"name":"web-tls","stats":{"tls":{"handshakes":120,"resumed":100,"failed":{}}}}]`)
	if f, r, err := halbTLSCounters(st, "web-tls"); f != 20 || r != 100 || err != nil {
		t.Errorf("halb: %d %d %v", f, r, err)
	}
	if _, _, err := halbTLSCounters(st, "web"); err == nil {
		t.Error("halb: a service without tls stats")
	}
	csv := "# pxname,svname,qcur,ssl_sess,ssl_reused_sess,ssl_failed_handshake\nweb-tls,FRONTEND,,816,1108,0\nweb,be1,0,,,\n\n"
	if f, r, err := haproxySSLCounters(csv, "web-tls"); f != 816 || r != 1108 || err != nil {
		t.Errorf("haproxy: %d %d %v", f, r, err)
	}
	if _, _, err := haproxySSLCounters(csv, "web"); err == nil {
		t.Error("haproxy: no FRONTEND row")
	}
	if _, _, err := haproxySSLCounters("# pxname,svname\n", "web"); err == nil {
		t.Error("haproxy: no ssl columns")
	}
}

// TestJudgeRoundTLS: a full-handshake round counts only when nothing
// resumed and the proxy made a full handshake a request; a resumed one
// when 99 in 100 resumed at both ends. TLS rows have no direct row and
// are compared flavor with flavor.
func TestJudgeRoundTLS(t *testing.T) {
	for _, c := range []struct {
		r      BenchRound
		reject bool
	}{
		{BenchRound{Requests: 1000, WantHandshakes: "full", ClientFull: 1000, ServerFull: 1001}, false},
		{BenchRound{Requests: 1000, WantHandshakes: "full", ClientFull: 999, ClientResumed: 1, ServerFull: 1000}, true},
		{BenchRound{Requests: 1000, WantHandshakes: "full", ClientFull: 1000, ServerFull: 900, ServerResumed: 100}, true},
		{BenchRound{Requests: 1000, WantHandshakes: "resumed", FirstFull: 64, ClientFull: 64, ClientResumed: 936, ServerFull: 64, ServerResumed: 936}, false},
		{BenchRound{Requests: 1000, WantHandshakes: "resumed", FirstFull: 64, ClientFull: 8, ClientResumed: 992, ServerFull: 500, ServerResumed: 500}, true},
		{BenchRound{Requests: 1000, WantHandshakes: "resumed", FirstFull: 64, ClientFull: 65, ClientResumed: 935, ServerFull: 65, ServerResumed: 935}, true},
		{BenchRound{Requests: 1000, WantHandshakes: "resumed", FirstFull: 64, ClientFull: 8, ClientResumed: 992, ServerFull: 8, ServerResumed: 900}, true},
		{BenchRound{Requests: 1000, ServerFull: 5}, false},
	} {
		r := c.r
		judgeRound(&r)
		if r.Rejected != c.reject {
			t.Errorf("%+v: rejected %v (%s)", c.r, r.Rejected, r.Why)
		}
	}
	res := []BenchResult{
		summarizeRounds("direct", "", []BenchRound{{RPS: 1000, P99MS: 1}}),
		summarizeRounds("haproxy-https-conn-ecdsa", "", []BenchRound{{RPS: 400, P99MS: 2, Requests: 1200, ProxyUS: 300, ProxyCPU: 0.5, ClientCPU: 0.9, ServerFull: 1200, Negotiated: "TLS1.3 TLS_AES_128_GCM_SHA256 X25519"}}),
		summarizeRounds("halb-https-conn-ecdsa", "", []BenchRound{{RPS: 500, P99MS: 1, Requests: 1500, ProxyUS: 200, ProxyCPU: 0.4, ClientCPU: 1.1, ServerFull: 1500}}),
	}
	vs, _ := ratios(res)
	if res[1].Ratio != 0 || len(vs) != 1 || vs[0].Mode != "https-conn-ecdsa" || vs[0].RPS != 1.25 {
		t.Errorf("ratios %+v; to direct %v", vs, res[1].Ratio)
	}
	var b strings.Builder
	if err := WriteBench(&b, t.TempDir(), &BenchReport{Throughput: res, Ratios: vs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"haproxy-https-conn-ecdsa: TLS1.3 TLS_AES_128_GCM_SHA256 X25519; handshakes at the proxy: 1200 full, 0 resumed",
		"halb-https-conn-ecdsa: proxy 200.0 µs of CPU a request, 0.40 cores; client 1.10 cores (medians)",
		"halb/HAProxy https-conn-ecdsa  requests/s 1.25 (rounds 1.25-1.25), p99 0.50, proxy CPU a request 0.67",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPIDTree: a child started from any thread is in its parent's tree,
// and its memory counts in rssTree.
func TestPIDTree(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	self := os.Getpid()
	if got := pidTree(self); !slices.Contains(got, cmd.Process.Pid) || got[0] != self {
		t.Errorf("pidTree(%d) = %v, want it and %d", self, got, cmd.Process.Pid)
	}
	if rssTree(self) <= rss(self) || rss(cmd.Process.Pid) <= 0 {
		t.Errorf("rssTree %d, rss %d, child %d", rssTree(self), rss(self), rss(cmd.Process.Pid))
	}
}

// TestProxyCPU: a round's proxy figures count the CPU of the proxy's
// children (HAProxy's worker under its master; here a busy child of a
// shell that itself idles), and a round without a proxy gets none.
func TestProxyCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done & exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() {
		for _, p := range pidTree(pid)[1:] {
			syscall.Kill(p, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}()
	cpu0 := cpuTree(pid)
	deadline := time.Now().Add(10 * time.Second)
	for cpuTree(pid)-cpu0 < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("the busy child used %v of CPU in 10 s", cpuTree(pid)-cpu0)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if own := cpuTree(pid) - cpuTree(pidTree(pid)[1]); own > 50*time.Millisecond {
		t.Fatalf("the idle shell itself used %v", own)
	}
	r := BenchRound{Requests: 1000}
	proxyCPU(&r, pid, cpu0, time.Second)
	if r.ProxyUS < 200 || r.ProxyCPU < 0.2 || math.Abs(r.ProxyUS-r.ProxyCPU*1e3) > 1e-6 {
		t.Errorf("proxy %.1f µs a request, %.2f cores: want at least 200 µs (0.2 s over 1000 requests) and 0.2 cores over 1 s", r.ProxyUS, r.ProxyCPU)
	}
	var none BenchRound
	none.Requests = 1000
	proxyCPU(&none, 0, cpu0, time.Second)
	if none.ProxyUS != 0 || none.ProxyCPU != 0 {
		t.Errorf("no proxy: %+v", none)
	}
}
