package netlab

// The TLS termination scenario (issue 18), halb beside HAProxy 2.6 (with
// Debian's OpenSSL 3.0) on the solo topology: interop with the clients
// people use, testssl.sh's audit of both flavors side by side, and a
// certificate replaced under load.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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

	"halb/appliance/certs/certstest"
	"halb/appliance/proxy"
)

// tlsPort is where the TLS service of the scenario listens.
const tlsPort = 443

// tlsCerts are the scenario's certificates, as files in one directory that
// both flavors read: a root, and leaves signed by it, each file the leaf
// then the root (halb wants the chain up to a root it knows).
type tlsCerts struct {
	dir  string
	root *certstest.CA
	// pairs by name: www (ECDSA P-256, www.example.com), www-rsa (RSA
	// 2048, www.example.com), org (ECDSA, *.example.org), default
	// (ECDSA, default.example.net and SoloAddr), www-next (ECDSA,
	// www.example.com: www's replacement).
	pairs map[string]certstest.Pair
}

func newTLSCerts(t *testing.T) *tlsCerts {
	t.Helper()
	c := &tlsCerts{dir: t.TempDir(), root: certstest.Root(t, "halb netlab root"), pairs: map[string]certstest.Pair{}}
	for name, o := range map[string]certstest.Options{
		"www":      {CN: "www.example.com", DNS: []string{"www.example.com"}},
		"www-rsa":  {CN: "www.example.com", DNS: []string{"www.example.com"}, Key: "rsa"},
		"org":      {CN: "*.example.org", DNS: []string{"*.example.org"}},
		"default":  {CN: "default.example.net", DNS: []string{"default.example.net"}, IPs: []net.IP{net.ParseIP(SoloAddr)}},
		"www-next": {CN: "www.example.com", DNS: []string{"www.example.com"}},
	} {
		p := c.root.Leaf(t, o)
		c.pairs[name] = p
		if err := os.WriteFile(c.crt(name), certstest.Cat(p.CertPEM, c.root.PEM), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.key(name), p.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.rootFile(), c.root.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *tlsCerts) crt(name string) string    { return filepath.Join(c.dir, name+".crt") }
func (c *tlsCerts) key(name string) string    { return filepath.Join(c.dir, name+".key") }
func (c *tlsCerts) rootFile() string          { return filepath.Join(c.dir, "root.pem") }
func (c *tlsCerts) serial(name string) string { return c.pairs[name].Cert.SerialNumber.Text(16) }

// nameOf names the certificate with serial (hex), or says it is unknown.
func (c *tlsCerts) nameOf(serial string) string {
	for name := range c.pairs {
		if c.serial(name) == serial {
			return name
		}
	}
	return "unknown certificate (serial " + serial + ")"
}

// pool holds the root.
func (c *tlsCerts) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.root.Cert)
	return p
}

// mapping is the service's tls mapping for flavor fl: halb takes www from
// its store (added by halbctl cert add, replaced by --replace); the
// reference cannot read halb's store and gets www's files.
func (c *tlsCerts) mapping(fl Flavor) string {
	files := func(name string) string {
		return fmt.Sprintf("{name: %s, cert: %s, key: %s}", name, c.crt(name), c.key(name))
	}
	www := "{name: www}"
	if fl == FlavorReference {
		www = files("www")
	}
	return fmt.Sprintf("certificates: [%s, %s, %s, %s], default: default", www, files("www-rsa"), files("org"), files("default"))
}

// tlsBase is the solo config both flavors start from; tlsConfig adds the
// TLS service.
func tlsBase() SoloConfig {
	return SoloConfig{
		Services: []SoloService{{Name: "web", Port: 80, Backend: "web"}},
		Backends: []SoloBackend{{Name: "web", Servers: []SoloServer{{Name: "s1"}, {Name: "s2"}}}},
	}
}

// startTLSSolo starts the solo topology of flavor fl with the plain
// service, then turns TLS on as an operator would: halb adds www to its
// store (halbctl cert add) and applies the config naming it (halbctl
// config apply); HAProxy is reloaded with the new haproxy.cfg and crt files.
func startTLSSolo(t *testing.T, fl Flavor, c *tlsCerts) *Solo {
	t.Helper()
	l := New(t)
	s, err := NewSolo(l, fl, 2, tlsBase())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.WaitServing(80, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if fl == FlavorHalb {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.LB.Halbctl(ctx, "cert", "add", "www", "--cert", c.crt("www"), "--key", c.key("www")); err != nil {
			t.Fatal(err)
		}
	}
	next := tlsBase()
	next.Services = append(next.Services, SoloService{Name: "secure", Port: tlsPort, Backend: "web", TLS: c.mapping(fl)})
	if _, err := s.Apply(next, false); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitServing(tlsPort, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTLS: TLS termination, halb beside HAProxy. For each flavor, from the
// client's namespace:
//   - interop: curl, openssl s_client, python3's ssl module and Go's
//     crypto/tls, over TLS 1.2 and 1.3, with SNI (exact, wildcard) and
//     without (the default certificate), an RSA-only client (the RSA
//     certificate), and resumption (openssl -reconnect, Go's session
//     cache); each request must reach a backend;
//   - a certificate replaced while a client makes 100 new TLS connections
//     a second: halb by `halbctl cert add www --replace`, HAProxy by its
//     runtime API (set ssl cert + commit ssl cert); no handshake or
//     request may fail, and every handshake begun after the replacement
//     returned gets the new certificate;
//   - testssl.sh's audit (the checks of testsslChecks; NETLAB_TESTSSL=full
//     runs them all): no finding rated HIGH or CRITICAL or saying
//     vulnerable, TLS 1.2 and 1.3 offered and nothing else; the two
//     flavors' findings side by side in report.md.
//
// The interop checks and the replacement under load run one flavor at a
// time (scenario "tls"); the two audits then run at once, each flavor on a
// lab of its own (scenario "tls-testssl").
func TestTLS(t *testing.T) {
	SkipUnlessRoot(t)
	for _, tool := range []string{"curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (scripts/deps.sh installs it): %v", tool, err)
		}
	}
	c := newTLSCerts(t)
	for _, fl := range Flavors {
		t.Run(string(fl), func(t *testing.T) {
			row := reportRow(t, "tls", string(fl))
			s := startTLSSolo(t, fl, c)
			t.Run("interop", func(t *testing.T) { tlsInterop(t, s, c, row) })
			t.Run("swap-under-load", func(t *testing.T) { tlsSwapUnderLoad(t, s, c, row) })
			tlsCounters(t, s, row)
		})
	}
	var mu sync.Mutex
	audits := map[Flavor][]TestsslFinding{}
	t.Run("testssl", func(t *testing.T) {
		if _, err := exec.LookPath("testssl"); err != nil {
			t.Skipf("testssl is missing (scripts/deps.sh installs Debian's testssl.sh): %v", err)
		}
		for _, fl := range Flavors {
			t.Run(string(fl), func(t *testing.T) {
				t.Parallel()
				row := reportRow(t, "tls-testssl", string(fl))
				fs := runTestssl(t, startTLSSolo(t, fl, c), c, row)
				mu.Lock()
				audits[fl] = fs
				mu.Unlock()
			})
		}
	})
	if len(audits) > 0 {
		report.AddSection("TLS audit (testssl.sh)", testsslSection(t, audits))
	}
}

// tlsCase is one interop check: a client and what it must get.
type tlsCase struct {
	name string
	sni  string // "": none
	// want is the certificate the server must present.
	want string
	run  func(ctx context.Context) (tlsGot, error)
}

// tlsGot is what a client saw.
type tlsGot struct {
	serial  string // of the leaf, hex
	backend string // X-Backend of the answer
	detail  string // version, cipher, resumption: for the log
}

func tlsInterop(t *testing.T, s *Solo, c *tlsCerts, row *Row) {
	py, pyErr := pythonPath()
	var cases []tlsCase
	add := func(name, sni, want string, run func(ctx context.Context) (tlsGot, error)) {
		cases = append(cases, tlsCase{name, sni, want, run})
	}
	for _, v := range []string{"1.2", "1.3"} {
		for _, k := range []struct{ sni, want string }{{"www.example.com", "www"}, {"api.example.org", "org"}, {"", "default"}} {
			label := k.sni
			if label == "" {
				label = "no-sni"
			}
			add("curl-tls"+v+"-"+label, k.sni, k.want, func(ctx context.Context) (tlsGot, error) { return curlTLS(ctx, s, c, v, k.sni) })
			add("openssl-tls"+v+"-"+label, k.sni, k.want, func(ctx context.Context) (tlsGot, error) {
				return sClient(ctx, s, c, k.sni, "-tls"+strings.ReplaceAll(v, ".", "_"))
			})
			add("go-tls"+v+"-"+label, k.sni, k.want, func(ctx context.Context) (tlsGot, error) { return goTLS(ctx, s, c, v, k.sni, nil) })
			add("python-tls"+v+"-"+label, k.sni, k.want, func(ctx context.Context) (tlsGot, error) { return pythonTLS(ctx, s, c, py, v, k.sni) })
		}
	}
	// Old clients that take RSA only get the RSA certificate.
	add("openssl-tls1.3-rsa-sigalgs", "www.example.com", "www-rsa", func(ctx context.Context) (tlsGot, error) {
		return sClient(ctx, s, c, "www.example.com", "-tls1_3", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
	})
	add("openssl-tls1.2-rsa-sigalgs", "www.example.com", "www-rsa", func(ctx context.Context) (tlsGot, error) {
		return sClient(ctx, s, c, "www.example.com", "-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
	})
	add("openssl-tls1.2-rsa-cipher", "www.example.com", "www-rsa", func(ctx context.Context) (tlsGot, error) {
		return sClient(ctx, s, c, "www.example.com", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
	})
	add("go-tls1.2-rsa-only", "www.example.com", "www-rsa", func(ctx context.Context) (tlsGot, error) {
		return goTLS(ctx, s, c, "1.2", "www.example.com", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256})
	})
	// An SNI name no certificate has: the default.
	add("openssl-tls1.3-unknown-sni", "unknown.example.com", "default", func(ctx context.Context) (tlsGot, error) {
		return sClient(ctx, s, c, "unknown.example.com", "-tls1_3")
	})

	var passed, skipped, findings []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.name, "python-") && pyErr != nil {
				skipped = append(skipped, tc.name)
				t.Skipf("python3 is not installed: %v", pyErr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			got, err := tc.run(ctx)
			if err != nil {
				t.Fatalf("sni %q: %v", tc.sni, err)
			}
			if served := c.nameOf(got.serial); served != tc.want {
				// HAProxy's choice is a finding about it, recorded;
				// halb's must be the documented one.
				if s.Flavor == FlavorReference {
					findings = append(findings, fmt.Sprintf("%s served %s, not %s", tc.name, served, tc.want))
				} else {
					t.Errorf("sni %q: served %s, want %s", tc.sni, served, tc.want)
				}
			}
			if !slices.Contains([]string{"s1", "s2"}, got.backend) {
				t.Errorf("sni %q: the request reached no backend (X-Backend %q)", tc.sni, got.backend)
			}
			if !t.Failed() && !slices.ContainsFunc(findings, func(f string) bool { return strings.HasPrefix(f, tc.name+" ") }) {
				passed = append(passed, tc.name)
			}
			t.Logf("%s: served %s, backend %s; %s", tc.name, c.nameOf(got.serial), got.backend, got.detail)
		})
	}
	// Resumption: openssl -reconnect (five reconnections on the first
	// one's session) and Go's session cache. OpenSSL 3.0's s_client
	// -reconnect does not wait for a TLS 1.3 ticket, which comes after
	// the handshake: it resumes none with either flavor, so over TLS 1.3
	// s_client saves the session of a connection that read a whole
	// response (-sess_out) and five more connections resume it
	// (-sess_in).
	for _, v := range []string{"1.2", "1.3"} {
		t.Run("openssl-tls"+v+"-reconnect", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			n, out, err := sClientReconnect(ctx, s, c, "-tls"+strings.ReplaceAll(v, ".", "_"))
			if err != nil {
				t.Fatal(err)
			}
			if v == "1.3" {
				t.Logf("s_client -reconnect -tls1_3: %d of 5 resumed", n)
				n, out, err = sClientSessIn(ctx, s, c)
				if err != nil {
					t.Fatal(err)
				}
			}
			if n != 5 {
				t.Errorf("%d of 5 reconnections resumed the session:\n%s", n, out)
			} else {
				passed = append(passed, "openssl-tls"+v+"-reconnect")
			}
		})
		t.Run("go-tls"+v+"-resume", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := goResume(ctx, s, c, v); err != nil {
				t.Error(err)
			} else {
				passed = append(passed, "go-tls"+v+"-resume")
			}
		})
	}
	row.Notef("interop: %d checks as halb documents them (curl, openssl s_client, python3 ssl, Go crypto/tls; TLS 1.2 and 1.3; exact, wildcard, unknown and no SNI; RSA-only clients; resumption)%s",
		len(passed), skippedNote(skipped))
	if len(findings) > 0 {
		row.Notef("certificate choice differs from halb's (a finding about %s, not a failure): %s", s.Flavor, strings.Join(findings, "; "))
	}
}

func skippedNote(skipped []string) string {
	if len(skipped) == 0 {
		return ""
	}
	return fmt.Sprintf("; skipped %d: %s", len(skipped), strings.Join(skipped, ", "))
}

// request is the HTTP request the raw clients send.
func request(sni string) string {
	host := sni
	if host == "" {
		host = SoloAddr
	}
	return "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
}

// firstCertSerial is the serial (hex) of the first PEM certificate in out.
func firstCertSerial(out []byte) (string, error) {
	for {
		var b *pem.Block
		b, out = pem.Decode(out)
		if b == nil {
			return "", errors.New("no certificate in the output")
		}
		if b.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return "", err
			}
			return cert.SerialNumber.Text(16), nil
		}
	}
}

// headerValue finds "Name: value" in an HTTP response head within out.
func headerValue(out []byte, name string) string {
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// gotFrom reads the leaf's serial and X-Backend from a client's output.
func gotFrom(out []byte, detail string) (tlsGot, error) {
	serial, err := firstCertSerial(out)
	if err != nil {
		return tlsGot{}, fmt.Errorf("%w:\n%s", err, out)
	}
	return tlsGot{serial: serial, backend: headerValue(out, "X-Backend"), detail: detail}, nil
}

// curlTLS: curl with --tlsv1.2 --tls-max 1.2 (or 1.3), verifying against
// the root; SNI by --resolve, none by the IP address (the default
// certificate holds it).
func curlTLS(ctx context.Context, s *Solo, c *tlsCerts, v, sni string) (tlsGot, error) {
	args := []string{"curl", "-sS", "--max-time", "5", "--cacert", c.rootFile(), "--tlsv" + v, "--tls-max", v,
		"-o", "/dev/null", "-D", "-", "-w", "%{certs}"}
	url := s.URL(tlsPort)
	if sni != "" {
		args = append(args, "--resolve", fmt.Sprintf("%s:%d:%s", sni, tlsPort, SoloAddr))
		url = fmt.Sprintf("https://%s:%d/", sni, tlsPort)
	}
	out, errOut, err := s.Client.Run(ctx, nil, append(args, url)...)
	if err != nil {
		return tlsGot{}, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, errOut)
	}
	return gotFrom(out, "curl --tlsv"+v)
}

// sClient: openssl s_client with the given options, verifying against the
// root, sending one request.
func sClient(ctx context.Context, s *Solo, c *tlsCerts, sni string, opts ...string) (tlsGot, error) {
	args := []string{"openssl", "s_client", "-connect", fmt.Sprintf("%s:%d", SoloAddr, tlsPort), "-CAfile", c.rootFile(),
		"-verify_return_error", "-ign_eof"}
	if sni != "" {
		args = append(args, "-servername", sni)
	} else {
		args = append(args, "-noservername")
	}
	args = append(args, opts...)
	out, errOut, err := s.Client.Run(ctx, []byte(request(sni)), args...)
	if err != nil {
		return tlsGot{}, fmt.Errorf("%s: %w: %s%s", strings.Join(args, " "), err, out, errOut)
	}
	detail := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "New, ") {
			detail = strings.TrimSpace(l)
		}
	}
	return gotFrom(out, detail)
}

// sClientReconnect runs openssl s_client -reconnect (a connection, then
// five more resuming its session) and counts the "Reused" ones.
func sClientReconnect(ctx context.Context, s *Solo, c *tlsCerts, version string) (int, string, error) {
	args := []string{"openssl", "s_client", "-connect", fmt.Sprintf("%s:%d", SoloAddr, tlsPort), "-CAfile", c.rootFile(),
		"-verify_return_error", "-servername", "www.example.com", "-reconnect", version}
	out, errOut, err := s.Client.Run(ctx, nil, args...)
	if err != nil {
		return 0, string(out), fmt.Errorf("%s: %w: %s%s", strings.Join(args, " "), err, out, errOut)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Reused, ") {
			n++
		}
	}
	return n, string(out), nil
}

// sClientSessIn: s_client over TLS 1.3 saves the session of one request
// (-sess_out), then five connections resume it (-sess_in); it counts the
// "Reused" ones.
func sClientSessIn(ctx context.Context, s *Solo, c *tlsCerts) (int, string, error) {
	sess := filepath.Join(s.Lab.Dir, "tls13.sess")
	base := []string{"openssl", "s_client", "-connect", fmt.Sprintf("%s:%d", SoloAddr, tlsPort), "-CAfile", c.rootFile(),
		"-verify_return_error", "-servername", "www.example.com", "-tls1_3", "-ign_eof"}
	var all strings.Builder
	n := 0
	for i := range 6 {
		args := append(slices.Clone(base), "-sess_out", sess)
		if i > 0 {
			args = append(slices.Clone(base), "-sess_in", sess)
		}
		out, errOut, err := s.Client.Run(ctx, []byte(request("www.example.com")), args...)
		all.Write(out)
		if err != nil {
			return n, all.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, errOut)
		}
		if i > 0 && strings.Contains(string(out), "\nReused, TLSv1.3") {
			n++
		}
	}
	return n, all.String(), nil
}

// pythonScript connects with python3's ssl module (argv: address, port,
// SNI or "", version, CA file), sends one request and prints the version,
// the leaf as PEM and the response head.
const pythonScript = `
import socket, ssl, sys
addr, port, sni, ver, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[ver]
ctx.minimum_version = ctx.maximum_version = v
host = sni or addr
with socket.create_connection((addr, port), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname=host) as s:
        der = s.getpeercert(binary_form=True)
        s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        print(s.version(), s.cipher()[0])
        print(ssl.DER_cert_to_PEM_cert(der))
        print(data.split(b"\r\n\r\n")[0].decode())
`

// pythonTLS: python3's ssl module (OpenSSL underneath, its own defaults).
// Without SNI it connects by address (python sends no SNI for an address)
// and verifies it against the default certificate's IP SAN.
func pythonTLS(ctx context.Context, s *Solo, c *tlsCerts, py, v, sni string) (tlsGot, error) {
	args := []string{py, "-c", pythonScript, SoloAddr, fmt.Sprint(tlsPort), sni, v, c.rootFile()}
	out, errOut, err := s.Client.Run(ctx, nil, args...)
	if err != nil {
		return tlsGot{}, fmt.Errorf("python3 ssl: %w: %s%s", err, out, errOut)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return gotFrom(out, "python3 "+first)
}

// pythonPath is Debian's python3 (what CI has; quicker to start than a
// version manager's shim), else the first in PATH.
func pythonPath() (string, error) {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3", nil
	}
	return exec.LookPath("python3")
}

// goTLSConfig is a Go client's config for version v ("1.2", "1.3").
func goTLSConfig(c *tlsCerts, v, sni string) *tls.Config {
	ver := map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}[v]
	cfg := &tls.Config{RootCAs: c.pool(), ServerName: sni, MinVersion: ver, MaxVersion: ver}
	if sni == "" {
		cfg.ServerName = SoloAddr // verified against the IP SAN; an IP is never sent as SNI
	}
	return cfg
}

// goTLS: Go's crypto/tls from the test process, in the client's namespace.
func goTLS(ctx context.Context, s *Solo, c *tlsCerts, v, sni string, suites []uint16) (tlsGot, error) {
	cfg := goTLSConfig(c, v, sni)
	cfg.CipherSuites = suites
	st, backend, err := goRequest(ctx, s, cfg, sni)
	if err != nil {
		return tlsGot{}, err
	}
	return tlsGot{serial: st.PeerCertificates[0].SerialNumber.Text(16), backend: backend,
		detail: tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)}, nil
}

// goRequest makes one request on a new TLS connection from the client.
func goRequest(ctx context.Context, s *Solo, cfg *tls.Config, sni string) (tls.ConnectionState, string, error) {
	raw, err := s.Client.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", SoloAddr, tlsPort))
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, "", fmt.Errorf("go crypto/tls handshake: %w", err)
	}
	if _, err := conn.Write([]byte(request(sni))); err != nil {
		return tls.ConnectionState{}, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tls.ConnectionState{}, "", fmt.Errorf("status %s", resp.Status)
	}
	// Reading to the end takes in a TLS 1.3 session ticket sent after the
	// handshake.
	if _, err := bufio.NewReader(resp.Body).WriteTo(discard{}); err != nil {
		return tls.ConnectionState{}, "", err
	}
	return conn.ConnectionState(), resp.Header.Get("X-Backend"), nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// goResume: a second connection with Go's session cache resumes the first.
func goResume(ctx context.Context, s *Solo, c *tlsCerts, v string) error {
	cfg := goTLSConfig(c, v, "www.example.com")
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 3 {
		st, _, err := goRequest(ctx, s, cfg, "www.example.com")
		if err != nil {
			return err
		}
		if st.DidResume != (i > 0) {
			return fmt.Errorf("TLS %s connection %d: resumed %v, want %v", v, i+1, st.DidResume, i > 0)
		}
	}
	return nil
}

// tlsSwapUnderLoad replaces www while a client makes 100 new connections a
// second (a full handshake and a request each) and checks that none fails
// and that every handshake begun after the replacement returned got the
// new certificate.
func tlsSwapUnderLoad(t *testing.T, s *Solo, c *tlsCerts, row *Row) {
	const rate = 100
	p := StartProbe(context.Background(), ProbeConfig{URL: fmt.Sprintf("https://%s:%d/", SoloAddr, tlsPort), Rate: rate,
		Timeout: 2 * time.Second, Dial: s.Client.Dial, StampSent: true,
		TLS: &tls.Config{RootCAs: c.pool(), ServerName: "www.example.com"}})
	time.Sleep(2 * time.Second)
	start := time.Now()
	how, err := swapCert(s, c)
	applied := time.Now()
	if err != nil {
		p.Stop()
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	r := p.Stop()
	row.Sent, row.Failed = r.Sent, r.Failed
	old, next, late := 0, 0, 0
	for _, sm := range r.Samples {
		switch sm.CertSerial {
		case c.serial("www"):
			old++
			if sm.Sent.After(applied) {
				late++
			}
		case c.serial("www-next"):
			next++
		}
	}
	row.Notef("certificate swap under load (%d new TLS connections/s) by %s, applied in %s: %d/%d failed; %d got the old certificate, %d the new; %d begun after the swap returned got the old one",
		rate, how, ms(applied.Sub(start)), r.Failed, r.Sent, old, next, late)
	if r.Failed > 0 {
		t.Errorf("%d of %d handshakes/requests failed across the swap: %s", r.Failed, r.Sent, errorKinds(r))
	}
	if late > 0 {
		t.Errorf("%d handshakes begun after the swap returned got the old certificate", late)
	}
	if next == 0 || old == 0 {
		t.Errorf("old certificate served %d times, new %d: both must be", old, next)
	}
}

// swapCert replaces www by www-next as an operator of the flavor would.
func swapCert(s *Solo, c *tlsCerts) (string, error) {
	switch s.Flavor {
	case FlavorHalb:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.LB.Halbctl(ctx, "cert", "add", "www", "--cert", c.crt("www-next"), "--key", c.key("www-next"), "--replace")
		return "halbctl cert add www --replace", err
	default:
		how := "HAProxy runtime API (set ssl cert, commit ssl cert)"
		p := RefPaths{Dir: s.LB.Dir}
		file := p.CertPEM("secure", "www")
		crt, err := os.ReadFile(c.crt("www-next"))
		if err != nil {
			return how, err
		}
		pemFile := certstest.Cat(crt, c.pairs["www-next"].KeyPEM)
		out, err := HAProxyCommand(p.HAProxySocket(), "set ssl cert "+file+" <<\n"+string(pemFile))
		if err != nil || !strings.Contains(out, "Transaction created") && !strings.Contains(out, "Transaction updated") {
			return how, fmt.Errorf("set ssl cert %s: %v: %s", file, err, out)
		}
		out, err = HAProxyCommand(p.HAProxySocket(), "commit ssl cert "+file)
		if err != nil || !strings.Contains(out, "Success!") {
			return how, fmt.Errorf("commit ssl cert %s: %v: %s", file, err, out)
		}
		// The crt file too, so that a reload or restart keeps it.
		return how, writeAtomic(file, pemFile)
	}
}

// tlsCounters notes the proxy's own handshake counters.
func tlsCounters(t *testing.T, s *Solo, row *Row) {
	switch s.Flavor {
	case FlavorHalb:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl := s.LB.API()
		defer cl.Close()
		st, err := cl.Status(ctx)
		if err != nil {
			t.Errorf("status: %v", err)
			return
		}
		var svcs []proxy.ServiceStatus
		if err := json.Unmarshal(st.Services, &svcs); err != nil {
			t.Errorf("status services: %v", err)
			return
		}
		for _, sv := range svcs {
			if sv.Name == "secure" && sv.Stats.TLS != nil {
				k := sv.Stats.TLS
				row.Notef("halb's counters (status services[].stats.tls): %d handshakes (TLS 1.2 %d, 1.3 %d, resumed %d), failed %v",
					k.Handshakes, k.TLS12, k.TLS13, k.Resumed, k.Failed)
			}
		}
	default:
		out, err := HAProxyCommand(RefPaths{Dir: s.LB.Dir}.HAProxySocket(), "show info")
		if err != nil {
			t.Errorf("show info: %v", err)
			return
		}
		var kept []string
		for _, l := range strings.Split(out, "\n") {
			for _, k := range []string{"CumSslConns:", "SslFrontendSessionReuse_pct:", "SslCacheLookups:", "SslCacheMisses:"} {
				if strings.HasPrefix(l, k) {
					kept = append(kept, l)
				}
			}
		}
		row.Notef("HAProxy's counters (show info): %s", strings.Join(kept, ", "))
	}
}

// testsslChecks are the checks of the lab's audit: protocols, the
// standard cipher categories, forward secrecy (the ciphers and curves
// offered), the server's defaults (certificates, tickets, resumption,
// extensions) and every vulnerability check (-U), with --fast. They take
// about a minute a run; testssl's default run (532 s against openssl
// s_server on this machine) adds the server's cipher order and the
// ciphers one by one per protocol (-P, -E), HTTP headers (-h), GREASE
// (-g) and client simulation (-c), which NETLAB_TESTSSL=full runs.
var testsslChecks = []string{"--protocols", "--std", "--fs", "--server-defaults", "--vulnerable"}

// testsslLeftOut says what the lab's audit leaves out of testssl's default run.
const testsslLeftOut = "server cipher order (-P), each cipher per protocol (-E), HTTP headers (-h), GREASE (-g), client simulation (-c)"

// testsslSelection is the checks NETLAB_TESTSSL asks for, and how to
// name them: unset, the lab's (testsslChecks with --fast); "full",
// testssl's whole default run; or testssl options of one's own
// ("--protocols --fs").
func testsslSelection(t *testing.T) (opts []string, label string, full bool) {
	switch v := strings.TrimSpace(os.Getenv("NETLAB_TESTSSL")); {
	case v == "":
		opts = append([]string{"--fast"}, testsslChecks...)
		return opts, strings.Join(opts, " "), false
	case v == "full":
		return nil, "testssl's whole default run (NETLAB_TESTSSL=full)", true
	case strings.HasPrefix(v, "-"):
		return strings.Fields(v), v + " (NETLAB_TESTSSL)", false
	default:
		t.Fatalf("NETLAB_TESTSSL=%q: want \"full\" or testssl options", v)
		return nil, "", false
	}
}

// testsslExcused are findings that are about the lab's test certificates,
// not about the proxy: by id (without testssl's " <hostCert#N>" suffix),
// why.
var testsslExcused = map[string]string{
	"cert_revocation": "the lab's certificates carry no CRL or OCSP URI",
}

// runTestssl audits the TLS service from the client with testssl.sh and
// checks its findings.
func runTestssl(t *testing.T, s *Solo, c *tlsCerts, row *Row) []TestsslFinding {
	jsonFile := filepath.Join(s.Lab.Dir, "testssl.json")
	args := []string{"testssl", "--quiet", "--color", "0", "--warnings", "batch", "--nodns", "none", "--sneaky",
		"--add-ca", c.rootFile(), "--ip", SoloAddr, "--jsonfile", jsonFile}
	opts, what, full := testsslSelection(t)
	args = append(args, opts...)
	timeout := 5 * time.Minute
	if full {
		timeout = 20 * time.Minute
	}
	args = append(args, fmt.Sprintf("www.example.com:%d", tlsPort))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	out, errOut, runErr := s.Client.Run(ctx, nil, args...)
	took := time.Since(start)
	t.Logf("%s: %s, exit %v", strings.Join(args, " "), took.Round(time.Second), runErr)
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatalf("testssl wrote no JSON (%v): %v\n%s%s", runErr, err, out, errOut)
	}
	fs, err := ParseTestssl(b)
	if err != nil {
		t.Fatal(err)
	}
	var offered, bad, excused []string
	for _, f := range fs {
		id, _, _ := strings.Cut(f.ID, " ")
		switch {
		case slices.Contains([]string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"}, id) && f.Offered():
			offered = append(offered, id)
		case f.Severity == "FATAL" || id == "scanProblem":
			t.Errorf("testssl could not finish: %s %s: %s", f.Severity, f.ID, f.Finding)
		case f.Bad() && testsslExcused[id] != "":
			excused = append(excused, fmt.Sprintf("%s (%s: %s)", f.ID, f.Severity, testsslExcused[id]))
		case f.Bad():
			bad = append(bad, fmt.Sprintf("%s %s: %s", f.Severity, f.ID, f.Finding))
		}
	}
	if !slices.Equal(offered, []string{"TLS1_2", "TLS1_3"}) {
		t.Errorf("testssl: protocols offered %v, want exactly TLS1_2 and TLS1_3", offered)
	}
	for _, f := range bad {
		t.Errorf("testssl finding: %s", f)
	}
	row.Notef("testssl.sh %s: %s, %d findings, %d HIGH/CRITICAL/vulnerable%s; protocols offered %s; excused: %s",
		what, took.Round(time.Second), len(fs), len(bad), firstOf(bad), strings.Join(offered, " "), strings.Join(excused, "; "))
	return fs
}

// testsslNoise are findings left out of the side-by-side table: they
// differ by certificate or run, not by proxy.
var testsslNoise = []string{"cert", "cert_fingerprintSHA1", "cert_fingerprintSHA256", "cert_serialNumber", "cert_notBefore",
	"cert_notAfter", "scanTime", "DNS_CAArecord", "service"}

// testsslSection puts the flavors' testssl findings side by side.
func testsslSection(t *testing.T, audits map[Flavor][]TestsslFinding) string {
	var b strings.Builder
	_, checks, full := testsslSelection(t)
	if !full {
		checks += "; left out of testssl's default run (NETLAB_TESTSSL=full runs it all): " + testsslLeftOut
	}
	fmt.Fprintf(&b, "testssl.sh %s from the client against the TLS service (SNI www.example.com, both an ECDSA and an RSA certificate), by flavor. Checks: %s. A cell is testssl's severity and finding; rows that differ by certificate or run (fingerprints, serials, dates) are left out.\n\n", testsslVersion(), checks)
	b.WriteString("| finding | reference (HAProxy 2.6, OpenSSL 3.0) | halb |\n|---|---|---|\n")
	var ids []string
	cells := map[string]map[Flavor]string{}
	for _, fl := range Flavors {
		for _, f := range audits[fl] {
			id, _, _ := strings.Cut(f.ID, " ")
			if slices.Contains(testsslNoise, id) {
				continue
			}
			if cells[f.ID] == nil {
				cells[f.ID] = map[Flavor]string{}
				ids = append(ids, f.ID)
			}
			cell := f.Severity + " " + f.Finding
			if len(cell) > 160 {
				cell = cell[:160] + "…"
			}
			cells[f.ID][fl] = strings.ReplaceAll(cell, "|", "\\|")
		}
	}
	for _, id := range ids {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", id, cells[id][FlavorReference], cells[id][FlavorHalb])
	}
	return b.String()
}

// testsslVersion is testssl's version, e.g. "3.0.8".
func testsslVersion() string {
	out, _ := exec.Command("testssl", "--version").CombinedOutput()
	if m := regexp.MustCompile(`testssl\s+(\d[\w.]*)`).FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}
