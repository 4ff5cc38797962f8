package proxy

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// testCA signs the test's certificates.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "halb test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a leaf for names (RSA when rsaKey) to dir and returns the
// paths of its chain and key files.
func (ca *testCA) issue(t *testing.T, dir, file string, rsaKey bool, notAfter time.Time, names ...string) (string, string) {
	t.Helper()
	var key crypto.Signer
	if rsaKey {
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	crt, kf := filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	if err := os.WriteFile(crt, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, kf
}

// tlsSetup is a TLS-terminating http service with three certificates:
// www (ECDSA, www.example.com), www-rsa (RSA, the same name), wild (ECDSA,
// *.example.org) and def (the default, default.test).
type tlsSetup struct {
	ca     *testCA
	dir    string
	addr   string
	comp   *Component
	origin *origin
}

func tlsCertsYAML(s *tlsSetup, extra string) string {
	var b strings.Builder
	b.WriteString("    tls:\n      certificates:\n")
	for _, n := range []string{"www", "www-rsa", "wild", "def"} {
		fmt.Fprintf(&b, "        - {name: %s, cert: %s, key: %s}\n", n, filepath.Join(s.dir, n+".crt"), filepath.Join(s.dir, n+".key"))
	}
	b.WriteString("      default: def\n" + extra)
	return b.String()
}

func newTLSSetup(t *testing.T, extra string) *tlsSetup {
	t.Helper()
	s := &tlsSetup{ca: newTestCA(t), dir: t.TempDir(), addr: freePort(t), origin: newOrigin(t, "o1")}
	day := time.Now().Add(24 * time.Hour)
	s.ca.issue(t, s.dir, "www", false, day, "www.example.com")
	s.ca.issue(t, s.dir, "www-rsa", true, day, "www.example.com")
	s.ca.issue(t, s.dir, "wild", false, day, "*.example.org")
	s.ca.issue(t, s.dir, "def", false, day, "default.test")
	cfg := mustConfig(t, httpConfig(s.addr, "    access_log: true\n"+tlsCertsYAML(s, extra), servers(s.origin.addr())))
	s.comp = run(t, cfg)
	// Status lists the service once Run has put the config in force (the
	// socket accepts into its backlog before).
	testutil.WaitFor(t, "the proxy to run the config", func() bool { return s.comp.runs(cfg) })
	waitListening(t, s.addr)
	return s
}

func (s *tlsSetup) client(name string, cfg *tls.Config) *http.Client {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.RootCAs, cfg.ServerName = s.ca.pool, name
	if name == "" {
		cfg.InsecureSkipVerify = true // no name to verify against
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}}
}

func TestTLSTerminatesHTTP(t *testing.T) {
	s := newTLSSetup(t, "")
	logged := &captureLog{}
	s.comp.SetAccessLog(logged)
	for _, tc := range []struct {
		sni  string
		opts *tls.Config
		want string // the served leaf's first DNS name
		rsa  bool
	}{
		{"www.example.com", nil, "www.example.com", false},
		{"WWW.Example.COM", nil, "www.example.com", false},
		{"www.example.com", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, "www.example.com", true},
		{"a.example.org", nil, "*.example.org", false},
		{"b.a.example.org", nil, "default.test", false}, // a wildcard is one label
		{"other.test", nil, "default.test", false},
		{"", nil, "default.test", false},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			c := s.client(tc.sni, tc.opts)
			if tc.want != "default.test" && tc.sni != "" && tc.want != tc.sni && !strings.HasPrefix(tc.want, "*.") && !strings.EqualFold(tc.want, tc.sni) {
				t.Fatal("bad case")
			}
			if tc.want == "default.test" && tc.sni != "" {
				c.Transport.(*http.Transport).TLSClientConfig.ServerName = tc.sni
				c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
			}
			resp, body := get(t, c, "https://"+s.addr+"/x")
			if resp.StatusCode != 200 || field(body, "server") != "o1" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			leaf := resp.TLS.PeerCertificates[0]
			if leaf.DNSNames[0] != tc.want {
				t.Errorf("served %v, want %s", leaf.DNSNames, tc.want)
			}
			if _, isRSA := leaf.PublicKey.(*rsa.PublicKey); isRSA != tc.rsa {
				t.Errorf("served an RSA key: %v, want %v", isRSA, tc.rsa)
			}
			if got := field(body, "xfp"); got != "https" {
				t.Errorf("X-Forwarded-Proto %q, want https", got)
			}
			if got := field(body, "fwd"); !strings.HasSuffix(got, ";proto=https") {
				t.Errorf("Forwarded %q, want proto=https", got)
			}
		})
	}
	st := s.comp.Status().([]ServiceStatus)[0]
	if st.TLS == nil || len(st.TLS.Certificates) != 4 || st.TLS.Default != "def" || st.Stats.TLS == nil {
		t.Fatalf("status: %+v", st)
	}
	if st.Stats.TLS.Handshakes != 7 || st.Stats.TLS.TLS12 != 1 || st.Stats.TLS.TLS13 != 6 {
		t.Errorf("handshakes %+v, want 7: 1 TLS 1.2, 6 TLS 1.3", st.Stats.TLS)
	}
	recs := logged.wait(t, 7)
	var v12, www, noSNI int
	for _, r := range recs {
		switch {
		case r.TLSVersion == "TLSv1.2":
			v12++
			if r.TLSCipher != "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" || r.SNI != "www.example.com" {
				t.Errorf("TLS 1.2 record: %q %q", r.TLSCipher, r.SNI)
			}
		case r.TLSVersion != "TLSv1.3" || !strings.HasPrefix(r.TLSCipher, "TLS_") || r.Handshake <= 0:
			t.Errorf("record's TLS fields: %q %q %q %v", r.TLSVersion, r.TLSCipher, r.SNI, r.Handshake)
		case r.SNI == "www.example.com":
			www++
		case r.SNI == "":
			noSNI++
		}
	}
	if v12 != 1 || www != 1 || noSNI != 1 {
		t.Errorf("records: %d TLS 1.2, %d TLS 1.3 for www.example.com, %d without SNI; want 1 each", v12, www, noSNI)
	}
}

// TestTLSStream holds the decrypted stream to the plain one: keep-alive,
// pipelined requests in one record, a head sent a byte per record and
// parked, an idle connection parked and resumed, large bodies both ways.
func TestTLSStream(t *testing.T) {
	s := newTLSSetup(t, "")
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	held := &holdConn{Conn: nc}
	conn := tls.Client(held, &tls.Config{RootCAs: s.ca.pool, ServerName: "www.example.com"})
	defer conn.Close()
	br := bufio.NewReader(conn)
	read := func(what string) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v", what, resp.StatusCode, err)
		}
		return string(body)
	}
	req := "GET /a HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
	// Three pipelined requests in one write (one record).
	io.WriteString(conn, req+req+req)
	for i := range 3 {
		if b := read(fmt.Sprintf("pipelined %d", i)); field(b, "uri") != "/a" {
			t.Fatalf("pipelined %d: %q", i, b)
		}
	}
	// Records that arrive together: the second one waits in tlsRaw, not
	// in the socket.
	held.mu.Lock()
	held.hold = true
	held.mu.Unlock()
	io.WriteString(conn, req)
	io.WriteString(conn, req)
	held.flush()
	read("together 1")
	read("together 2")
	// A record with more plaintext than the head buffer takes.
	big := "GET /b HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 3000) + "\r\n\r\n"
	io.WriteString(conn, big+big+big)
	for i := range 3 {
		if b := read(fmt.Sprintf("large record %d", i)); field(b, "uri") != "/b" {
			t.Fatalf("large record %d: %q", i, b)
		}
	}
	// Idle past parkAfter: the connection parks (attached) and resumes.
	time.Sleep(5 * parkAfter)
	io.WriteString(conn, req)
	read("after idle")
	// A head a byte per record, slower than parkAfter.
	for i := range len(req) {
		io.WriteString(conn, req[i:i+1])
		if i%8 == 0 {
			time.Sleep(2 * parkAfter)
		}
	}
	read("slow head")
	// A 1 MB body up, and down.
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	fmt.Fprintf(conn, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
	conn.Write(body)
	sum := sha256.Sum256(body)
	if b := read("upload"); field(b, "sha") != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload arrived as %q", b)
	}
	io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	if b := read("download"); len(b) != 1000000 {
		t.Fatalf("downloaded %d bytes", len(b))
	}
}

func TestTLSResumption(t *testing.T) {
	s := newTLSSetup(t, "")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(4)
		for i := range 2 {
			c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.pool, ServerName: "www.example.com", MaxVersion: v, ClientSessionCache: cache})
			if err != nil {
				t.Fatal(err)
			}
			// TLS 1.3 tickets come after the handshake: read a response.
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			io.ReadAll(c)
			if got := c.ConnectionState().DidResume; got != (i == 1) {
				t.Errorf("version %x connection %d resumed: %v", v, i, got)
			}
			c.Close()
		}
	}
	if tc := s.comp.Status().([]ServiceStatus)[0].Stats.TLS; tc.Resumed != 2 {
		t.Errorf("resumed %d, want 2", tc.Resumed)
	}
}

func TestTLSHandshakeFailures(t *testing.T) {
	s := newTLSSetup(t, "      min_version: \"1.3\"\n")
	// Plain HTTP to the TLS port.
	c, _ := net.Dial("tcp", s.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.ReadAll(c)
	c.Close()
	// TLS 1.2 only against min_version 1.3.
	if _, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.pool, ServerName: "www.example.com", MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was served")
	}
	// A client that stops in the middle of its hello.
	c, _ = net.Dial("tcp", s.addr)
	c.Write([]byte{22, 3, 1, 0, 200, 1})
	c.Close()
	want := map[string]int64{"not_tls": 1, "version": 1, "closed": 1}
	var got map[string]int64
	defer func() {
		if t.Failed() {
			t.Logf("failures counted: %v", got)
		}
	}()
	testutil.WaitFor(t, "the failures counted", func() bool {
		got = s.comp.Status().([]ServiceStatus)[0].Stats.TLS.Failed
		delete(got, "empty") // waitListening's connections
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
}

func TestTLSHandshakeTimeout(t *testing.T) {
	s := newTLSSetup(t, "")
	cfg := s.comp.latest.Get()
	cfg2 := *cfg
	cfg2.Services = append([]config.Service(nil), cfg.Services...)
	cfg2.Services[0].Timeouts.HTTPRequest = config.Duration(200 * time.Millisecond)
	apply(t, s.comp, &cfg2)
	c, _ := net.Dial("tcp", s.addr)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a silent client got %v, want EOF after the handshake timeout", err)
	}
	if got := s.comp.Status().([]ServiceStatus)[0].Stats.TLS.Failed["timeout"]; got != 1 {
		t.Errorf("timeouts counted %d, want 1", got)
	}
}

// TestTLSCertSwap replaces a certificate's files: new handshakes get the
// new one after ReloadCerts, an open connection keeps working.
func TestTLSCertSwap(t *testing.T) {
	s := newTLSSetup(t, "")
	cfg := &tls.Config{RootCAs: s.ca.pool, ServerName: "www.example.com"}
	open, err := tls.Dial("tcp", s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	before := open.ConnectionState().PeerCertificates[0].SerialNumber
	s.ca.issue(t, s.dir, "www", false, time.Now().Add(48*time.Hour), "www.example.com")
	s.comp.ReloadCerts()
	c, err := tls.Dial("tcp", s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if after := c.ConnectionState().PeerCertificates[0].SerialNumber; after.Cmp(before) == 0 {
		t.Error("the old certificate is still served")
	}
	io.WriteString(open, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(open); err != nil || !bytes.Contains(b, []byte("server=o1")) {
		t.Errorf("the open connection: %q %v", b, err)
	}
}

// TestPreparedCertsApplied: a config Prepare checked is put in force with
// the certificates Prepare loaded (each pair read once per reload, not
// twice), unless the store changed in between: then they are loaded
// afresh, and the new certificate is served.
func TestPreparedCertsApplied(t *testing.T) {
	s := newTLSSetup(t, "")
	var loads atomic.Int32
	s.comp.SetCertLoaders(nil, func(crt, key string, now time.Time) (tls.Certificate, error) {
		loads.Add(1)
		return loadFiles(crt, key, now)
	})
	cfg := s.comp.latest.Get()
	n := int32(len(cfg.Services[0].TLS.Certificates))
	next := func(d time.Duration) *config.Config {
		c := *cfg
		c.Services = slices.Clone(cfg.Services)
		c.Services[0].Timeouts.HTTPRequest = config.Duration(d)
		return &c
	}
	serial := func() string {
		c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.pool, ServerName: "www.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	c2 := next(7 * time.Second)
	if err := s.comp.Prepare(c2); err != nil {
		t.Fatal(err)
	}
	apply(t, s.comp, c2)
	if got := loads.Load(); got != n {
		t.Errorf("Prepare and the apply read the %d certificates %d times, want once each", n, got)
	}
	before := serial()
	loads.Store(0)
	c3 := next(8 * time.Second)
	if err := s.comp.Prepare(c3); err != nil {
		t.Fatal(err)
	}
	s.ca.issue(t, s.dir, "www", false, time.Now().Add(48*time.Hour), "www.example.com")
	s.comp.ReloadCerts()
	apply(t, s.comp, c3)
	if got := loads.Load(); got != 3*n {
		t.Errorf("Prepare, ReloadCerts and the apply read the certificates %d times, want %d", got, 3*n)
	}
	if serial() == before {
		t.Error("the apply after a store change serves the certificate Prepare loaded before it")
	}
}

func TestTLSCertErrorsRefuseConfig(t *testing.T) {
	s := newTLSSetup(t, "")
	s.ca.issue(t, s.dir, "old", false, time.Now().Add(-time.Minute), "old.test")
	bad := strings.Replace(s.comp.latest.Get().Services[0].TLS.Certificates[3].Cert, "def", "old", 1)
	y := httpConfig(s.addr, fmt.Sprintf("    tls:\n      certificates:\n        - {name: old, cert: %s, key: %s}\n        - {name: gone, cert: /nonexistent.crt, key: /nonexistent.key}\n        - {name: store}\n", bad, strings.Replace(bad, ".crt", ".key", 1)), servers(s.origin.addr()))
	err := s.comp.Prepare(mustConfig(t, y))
	if err == nil {
		t.Fatal("a config with unloadable certificates was prepared")
	}
	for _, want := range []string{`service "web" certificate "old": ` + bad + `: certificate 1 (CN=old.test) expired on`, `certificate "gone": open /nonexistent.crt`, `certificate "store": no certificate store`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var ce *CertError
	if !errors.As(err, &ce) || ce.Service != "web" || ce.Index != 0 {
		t.Errorf("not a CertError of certificates[0]: %#v", ce)
	}
}

// TestTLSTCPMode terminates TLS in tcp mode: the server gets plaintext,
// both directions and the client's half-close pass.
func TestTLSTCPMode(t *testing.T) {
	s := &tlsSetup{ca: newTestCA(t), dir: t.TempDir(), addr: freePort(t)}
	crt, key := s.ca.issue(t, s.dir, "db", false, time.Now().Add(time.Hour), "db.example.com")
	server := namer(t, "s0")
	y := tcpConfig(s.addr, server)
	y = strings.Replace(y, "default_backend: b}", fmt.Sprintf("default_backend: b, tls: {certificates: [{name: db, cert: %s, key: %s}]}}", crt, key), 1)
	run(t, mustConfig(t, y))
	waitListening(t, s.addr)
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.pool, ServerName: "db.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "" {
		t.Errorf("ALPN %q in tcp mode", p)
	}
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); line != "s0\n" {
		t.Fatalf("got %q", line)
	}
	io.WriteString(c, "echo me")
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(br); string(rest) != "echo me" || err != nil {
		t.Fatalf("echo %q %v", rest, err)
	}
}

// TestTLSOpenSSL talks to the service with Debian's openssl s_client:
// TLS 1.2 and 1.3, with and without SNI, and a resumed session.
func TestTLSOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	s := newTLSSetup(t, "")
	caFile := filepath.Join(s.dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.cert.Raw}), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-tls1_3", "-servername", "www.example.com"}, []string{"Verify return code: 0 (ok)", "TLSv1.3", "server=o1", "CN = www.example.com"}},
		{[]string{"-tls1_2", "-servername", "a.example.org"}, []string{"Verify return code: 0 (ok)", "TLSv1.2", "server=o1", "CN = *.example.org"}},
		{[]string{"-tls1_2", "-noservername"}, []string{"CN = default.test", "server=o1"}},
		{[]string{"-tls1_2", "-servername", "www.example.com", "-reconnect"}, []string{"Reused, TLSv1.2"}},
	} {
		args := append([]string{"s_client", "-connect", s.addr, "-CAfile", caFile, "-ign_eof"}, tc.args...)
		cmd := exec.Command("openssl", args...)
		cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		out, _ := cmd.CombinedOutput()
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("openssl %v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}

func TestTLSRawScan(t *testing.T) {
	// Records of 3, 0 and 2 bytes, fed in every split.
	stream := []byte{23, 3, 3, 0, 3, 'a', 'b', 'c', 21, 3, 3, 0, 0, 23, 3, 3, 0, 2, 'd', 'e'}
	ends := []int{8, 13, 20}
	for split := 1; split < len(stream); split++ {
		var r tlsRaw
		var got []int
		pos := 0
		for pos < len(stream) {
			chunk := stream[pos:min(len(stream), pos+split)]
			cut := r.scan(chunk)
			if cut < len(chunk) {
				// Where a record ends inside the chunk; resume after it.
				got = append(got, pos+cut)
				pos += cut
				continue
			}
			pos += len(chunk)
			if r.body == 0 && r.hdrN == 0 {
				got = append(got, pos)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(ends) {
			t.Errorf("split %d: records end at %v, want %v", split, got, ends)
		}
	}
}

// holdConn keeps what is written while hold is set, until flush sends it
// in one write.
type holdConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (h *holdConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

func (h *holdConn) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	h.Conn.Write(h.buf)
	h.buf = nil
}

// tlsNamer is a TLS server (not terminated by the proxy) that sends its
// name after the handshake.
func tlsNamer(t *testing.T, ca *testCA, dir, name string) string {
	t.Helper()
	crt, key := ca.issue(t, dir, "srv-"+name, false, time.Now().Add(time.Hour), name+".backend")
	cert, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return serveConns(t, func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() == nil {
			fmt.Fprintf(tc, "%s %s\n", name, tc.ConnectionState().ServerName)
		}
	})
}

// TestSNIRoutes routes TLS it does not terminate by the ClientHello's
// name, replaying the hello: the client's handshake completes with the
// server.
func TestSNIRoutes(t *testing.T) {
	ca, dir := newTestCA(t), t.TempDir()
	addr, quick := freePort(t), freePort(t)
	y := fmt.Sprintf(`node: {name: lb1}
services:
  - name: pass
    mode: tcp
    listen: ["%s"]
    default_backend: def
    accept_proxy: [127.0.0.2/32]
    access_log: true
    sni_routes:
      - {sni: www.example.com, backend: www}
      - {sni: "*.example.org", backend: org}
  - name: quick
    mode: tcp
    listen: ["%s"]
    default_backend: def
    timeouts: {http_request: 200ms}
    sni_routes: [{sni: www.example.com, backend: www}]
backends:
  - {name: def, servers: [{name: d, address: "%s"}]}
  - {name: www, servers: [{name: w, address: "%s"}]}
  - {name: org, servers: [{name: o, address: "%s"}]}
`, addr, quick, tlsNamer(t, ca, dir, "def"), tlsNamer(t, ca, dir, "www"), tlsNamer(t, ca, dir, "org"))
	cfg := mustConfig(t, y)
	comp := run(t, cfg)
	logged := &captureLog{}
	comp.SetAccessLog(logged)
	testutil.WaitFor(t, "the proxy to run the config", func() bool { return comp.runs(cfg) })
	waitListening(t, addr)
	say := func(nc net.Conn, sni string) string {
		t.Helper()
		c := tls.Client(nc, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("sni %q: %v", sni, err)
		}
		return strings.TrimSpace(line)
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for sni, want := range map[string]string{"www.example.com": "www www.example.com", "WWW.EXAMPLE.COM": "www WWW.EXAMPLE.COM",
		"a.example.org": "org a.example.org", "a.b.example.org": "def a.b.example.org", "other.test": "def other.test", "": "def"} {
		if got := say(dial(), sni); got != want {
			t.Errorf("sni %q reached %q, want %q", sni, got, want)
		}
	}
	// A hello a few bytes per write.
	slow := &dribble{Conn: dial(), n: 7, pause: time.Millisecond}
	if got := say(slow, "www.example.com"); got != "www www.example.com" {
		t.Errorf("a dribbled hello reached %q", got)
	}
	// From a trusted PROXY source: the header, then the hello in one write.
	pc, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	held := &holdConn{Conn: pc, hold: true}
	io.WriteString(held, "PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n")
	go func() { time.Sleep(50 * time.Millisecond); held.flush() }()
	if got := say(held, "x.example.org"); got != "org x.example.org" {
		t.Errorf("after a PROXY header: %q", got)
	}
	// Refused: plain HTTP, and half a hello that never completes.
	c := dial()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.ReadAll(c)
	c.Close()
	c, err = net.Dial("tcp", quick)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{22, 3, 1, 0, 100, 1, 0})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("half a hello: %v, want EOF after http_request", err)
	}
	c.Close()
	testutil.WaitFor(t, "the counters", func() bool {
		sni, q := comp.Status().([]ServiceStatus)[0].Stats.SNI, comp.Status().([]ServiceStatus)[1].Stats.SNI
		return sni != nil && sni.Routed == 5 && sni.Default == 3 && sni.Refused["not_tls"] == 1 && q.Refused["timeout"] == 1
	})
	var www, proxied int
	for _, r := range logged.wait(t, 9) {
		if r.SNI == "www.example.com" && r.Backend == "www" && r.Handshake == -1 {
			www++
		}
		if r.Client.Addr().String() == "192.0.2.7" && r.SNI == "x.example.org" {
			proxied++
		}
	}
	if www != 3 || proxied != 1 {
		t.Errorf("access records: %d for www.example.com (want 3), %d from the PROXY client (want 1)", www, proxied)
	}
}

// dribble writes n bytes at a time with a pause between.
type dribble struct {
	net.Conn
	n     int
	pause time.Duration
}

func (d *dribble) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i += d.n {
		if _, err := d.Conn.Write(p[i:min(len(p), i+d.n)]); err != nil {
			return i, err
		}
		time.Sleep(d.pause)
	}
	return len(p), nil
}

// tlsOrigin is an HTTPS server with a certificate of ca for names, that
// answers "tls <version> <sni>".
func tlsOrigin(t *testing.T, ca *testCA, dir string, names ...string) string {
	t.Helper()
	crt, key := ca.issue(t, dir, "origin-"+names[0], false, time.Now().Add(time.Hour), names...)
	cert, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %x %s", r.TLS.Version, r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the wrong-CA case's refusals
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestBackendTLS: backends[].tls encrypts to the servers and verifies
// them against its CA and server name (or IP address); a wrong CA fails
// the connect with the reason; verify: none passes any certificate.
func TestBackendTLS(t *testing.T) {
	ca, other, dir := newTestCA(t), newTestCA(t), t.TempDir()
	caFile, otherFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644)
	os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.cert.Raw}), 0o644)
	named := tlsOrigin(t, ca, dir, "origin.test")
	byIP := tlsOrigin(t, ca, dir, "127.0.0.1")
	addr := freePort(t)
	y := fmt.Sprintf(`node: {name: lb1}
services:
  - name: web
    listen: ["%[1]s"]
    default_backend: named
    routes:
      - {host: ip, backend: ip}
      - {host: wrong, backend: wrong}
      - {host: none, backend: none}
backends:
  - name: named
    tls: {ca: %[2]s, server_name: origin.test}
    servers: [{name: s, address: "%[4]s"}]
  - name: ip
    tls: {ca: %[2]s}
    servers: [{name: s, address: "%[5]s"}]
  - name: wrong
    tls: {ca: %[3]s, server_name: origin.test}
    servers: [{name: s, address: "%[4]s"}]
  - name: none
    tls: {verify: none, server_name: origin.test}
    servers: [{name: s, address: "%[4]s"}]
`, addr, caFile, otherFile, named, byIP)
	comp := New(slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	connectErrs := map[string]string{}
	comp.ObserveConnects(func(be, srv string, err error) {
		if err != nil {
			mu.Lock()
			connectErrs[be] = err.Error()
			mu.Unlock()
		}
	})
	runComponent(t, comp, mustConfig(t, y))
	waitListening(t, addr)
	client := &http.Client{}
	for host, want := range map[string]string{"x": "tls 304 origin.test", "ip": "tls 304 ", "none": "tls 304 origin.test"} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("host %s: %d %q, want %q", host, resp.StatusCode, b, want)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "wrong"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	werr := connectErrs["wrong"]
	mu.Unlock()
	if resp.StatusCode != 503 || !strings.Contains(werr, "tls handshake with "+named) || !strings.Contains(werr, "certificate signed by unknown authority") {
		t.Errorf("a server with a certificate of another CA: status %d, connect error %q", resp.StatusCode, werr)
	}
	// A CA file that cannot be read refuses the config.
	bad := strings.Replace(y, otherFile, "/nonexistent-ca.pem", 1)
	var ce *CertError
	if err := comp.Prepare(mustConfig(t, bad)); !errors.As(err, &ce) || ce.Backend != "wrong" || !strings.Contains(err.Error(), "/nonexistent-ca.pem") {
		t.Errorf("a missing CA file: %v", err)
	}
}

// TestBackendTLSTCPMode tunnels plaintext from the client to a TLS
// server, both ways, with the client's half-close.
func TestBackendTLSTCPMode(t *testing.T) {
	ca, dir := newTestCA(t), t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644)
	crt, key := ca.issue(t, dir, "echo", false, time.Now().Add(time.Hour), "echo.test")
	cert, _ := tls.LoadX509KeyPair(crt, key)
	echo := serveConns(t, func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		io.Copy(tc, tc)
		tc.CloseWrite()
	})
	addr := freePort(t)
	y := strings.Replace(tcpConfig(addr, echo), "  - name: b\n", fmt.Sprintf("  - name: b\n    tls: {ca: %s, server_name: echo.test}\n", caFile), 1)
	run(t, mustConfig(t, y))
	waitListening(t, addr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "through TLS")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "through TLS" || err != nil {
		t.Errorf("echo %q %v", b, err)
	}
}

// clientCert makes a client certificate of ca.
func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSClientAuth: with client_auth required a client needs a
// certificate of the CA; optional also serves a client without one.
func TestTLSClientAuth(t *testing.T) {
	clientCA := newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCA.cert.Raw}), 0o644)
	for _, verify := range []string{"required", "optional"} {
		t.Run(verify, func(t *testing.T) {
			s := newTLSSetup(t, fmt.Sprintf("      client_auth: {ca: %s, verify: %s}\n", caFile, verify))
			try := func(certs ...tls.Certificate) error {
				c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.pool, ServerName: "www.example.com", Certificates: certs})
				if err != nil {
					return err
				}
				defer c.Close()
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, err := io.ReadAll(c)
				if err == nil && !bytes.Contains(b, []byte("server=o1")) {
					err = fmt.Errorf("response %q", b)
				}
				return err
			}
			if err := try(clientCA.clientCert(t, "alice")); err != nil {
				t.Errorf("a client with a certificate of the CA: %v", err)
			}
			if err := try(newTestCA(t).clientCert(t, "mallory")); err == nil {
				t.Error("a client with another CA's certificate was served")
			}
			err := try()
			if verify == "required" && err == nil {
				t.Error("a client without a certificate was served")
			}
			if verify == "optional" && err != nil {
				t.Errorf("optional: a client without a certificate: %v", err)
			}
		})
	}
}

// TestHTTPSRedirect: a plain http service with https_redirect answers
// every request with a redirect to the same host (without its port) and
// path.
func TestHTTPSRedirect(t *testing.T) {
	o := newOrigin(t, "o1")
	addr := freePort(t)
	run(t, mustConfig(t, httpConfig(addr, "    https_redirect: 308\n    response_headers: {X-LB: lb1}\n", servers(o.addr()))))
	waitListening(t, addr)
	for host, want := range map[string]string{"www.example.com": "https://www.example.com/a?b=c", "www.example.com:8080": "https://www.example.com/a?b=c",
		"[2001:db8::1]:80": "https://[2001:db8::1]/a?b=c"} {
		got := exchangeRaw(t, addr, "GET /a?b=c HTTP/1.1\r\nHost: "+host+"\r\n\r\n", nil)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
		if err != nil {
			t.Fatalf("%s: %v: %q", host, err, got)
		}
		if resp.StatusCode != 308 || resp.Header.Get("Location") != want || resp.Header.Get("X-LB") != "lb1" {
			t.Errorf("Host %s: %d Location %q, want 308 %q: %q", host, resp.StatusCode, resp.Header.Get("Location"), want, got)
		}
	}
	if o.reqs.Load() != 0 {
		t.Errorf("the server got %d requests", o.reqs.Load())
	}
}

// TestTLSTicketsAcrossNodes: a session ticket from one node resumes on the
// other once they share ticket keys (as paired nodes do), not before.
func TestTLSTicketsAcrossNodes(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		a := newTLSSetup(t, "")
		b := &tlsSetup{ca: a.ca, dir: a.dir, addr: freePort(t), origin: a.origin}
		b.comp = run(t, mustConfig(t, httpConfig(b.addr, tlsCertsYAML(b, ""), servers(a.origin.addr()))))
		waitListening(t, b.addr)
		resumes := func(first, then string) bool {
			t.Helper()
			cache := tls.NewLRUClientSessionCache(4)
			var resumed bool
			for _, addr := range []string{first, then} {
				c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: a.ca.pool, ServerName: "www.example.com", MaxVersion: v, ClientSessionCache: cache})
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				io.ReadAll(c) // TLS 1.3 tickets come after the handshake
				resumed = c.ConnectionState().DidResume
				c.Close()
			}
			return resumed
		}
		if resumes(a.addr, b.addr) {
			t.Fatalf("version %x: resumed on a node with other keys", v)
		}
		b.comp.MergeTicketKeys(a.comp.TicketKeys())
		if !resumes(a.addr, b.addr) {
			t.Errorf("version %x: a ticket of node a did not resume on node b after the merge", v)
		}
		a.comp.MergeTicketKeys(b.comp.TicketKeys())
		if !resumes(b.addr, a.addr) {
			t.Errorf("version %x: a ticket of node b did not resume on node a after both merged", v)
		}
	}
}

// TestTLSClientCertForward: with client_auth.forward the servers get the
// client's certificate subject and fingerprint (NONE without one), and a
// client's own X-SSL-Client-* fields never reach them.
func TestTLSClientCertForward(t *testing.T) {
	clientCA := newTestCA(t)
	s := &tlsSetup{ca: newTestCA(t), dir: t.TempDir(), addr: freePort(t)}
	caFile := filepath.Join(s.dir, "clients.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCA.cert.Raw}), 0o644)
	day := time.Now().Add(24 * time.Hour)
	for _, n := range []string{"www", "www-rsa", "wild", "def"} {
		s.ca.issue(t, s.dir, n, false, day, n+".example.com")
	}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "verify=%q dn=%q sha=%q", r.Header.Values("X-Ssl-Client-Verify"), r.Header.Values("X-Ssl-Client-Dn"), r.Header.Values("X-Ssl-Client-Sha256"))
	}))
	t.Cleanup(echo.Close)
	cfg := mustConfig(t, httpConfig(s.addr, tlsCertsYAML(s, fmt.Sprintf("      client_auth: {ca: %s, verify: optional, forward: true}\n", caFile)), servers(echo.Listener.Addr().String())))
	comp := run(t, cfg)
	testutil.WaitFor(t, "the proxy to run the config", func() bool { return comp.runs(cfg) })
	ask := func(certs ...tls.Certificate) string {
		c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true, Certificates: certs})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-DN: CN=admin\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		_, body, _ := strings.Cut(string(b), "\r\n\r\n")
		return body
	}
	cert := clientCA.clientCert(t, "alice\r\nX-Evil: 1")
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	sum := sha256.Sum256(leaf.Raw)
	want := fmt.Sprintf("verify=[\"SUCCESS\"] dn=[\"CN=alice??X-Evil: 1\"] sha=[%q]", hex.EncodeToString(sum[:]))
	if got := ask(cert); got != want {
		t.Errorf("with a certificate:\n got %s\nwant %s", got, want)
	}
	if got := ask(); got != `verify=["NONE"] dn=[] sha=[]` {
		t.Errorf("without a certificate: %s", got)
	}
}

// TestApplyBeforeRunReconcilesOnce: a config applied before Run is put in
// force once. Run's first reconcile takes it, and the change Apply
// signalled must not reconcile it again: that reloaded every certificate
// and dropped the certificates a Prepare had loaded meanwhile (which made
// TestPreparedCertsApplied count twice the loads, now and then).
func TestApplyBeforeRunReconcilesOnce(t *testing.T) {
	s := newTLSSetup(t, "") // for its certificates and config
	cfg := s.comp.latest.Get()
	n := int32(len(cfg.Services[0].TLS.Certificates))
	c := New(slog.New(slog.DiscardHandler))
	var loads atomic.Int32
	c.SetCertLoaders(nil, func(crt, key string, now time.Time) (tls.Certificate, error) {
		loads.Add(1)
		return loadFiles(crt, key, now)
	})
	other := *cfg
	other.Services = slices.Clone(cfg.Services)
	other.Services[0].Listen = []string{freePort(t)}
	runComponent(t, c, &other)
	testutil.WaitFor(t, "the proxy to run the config", func() bool { return c.runs(&other) })
	time.Sleep(200 * time.Millisecond) // a second reconcile comes at once if it comes
	if got := loads.Load(); got != n {
		t.Fatalf("the %d certificates loaded %d times, want once each", n, got)
	}
}
