package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/proxy"
	"halb/internal/testutil"
)

// TestTLSFromProxy: what a running proxy reports of a TLS service reaches
// /metrics: a handshake, a connection closed without a hello (failed,
// "empty"), the certificate's expiry (5 days away: the alarm is on) and
// the backend's verify none (0).
func TestTLSFromProxy(t *testing.T) {
	dir := t.TempDir()
	notAfter := time.Now().Add(5 * 24 * time.Hour).Truncate(time.Second)
	crt, key := selfSigned(t, dir, "www.example.com", notAfter)
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(origin.Close)
	listen := testutil.ReservedAddr(t)
	cfg, err := config.Parse("halb.yaml", []byte(fmt.Sprintf(`node: {name: lb1}
services:
  - name: web
    listen: [%q]
    default_backend: b
    tls: {certificates: [{name: www, cert: %s, key: %s}]}
backends:
  - name: b
    tls: {verify: none}
    servers: [{name: s1, address: %q}]
`, listen, crt, key, origin.Listener.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	comp := proxy.New(quiet())
	comp.Apply(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { comp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var c net.Conn
	testutil.WaitFor(t, "the service to listen", func() bool { c, err = net.Dial("tcp", listen); return err == nil })
	c.Close() // no hello: a failed handshake, "empty"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "www.example.com"}}}
	resp, err := client.Get("https://" + listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	if string(body) != "ok" {
		t.Fatalf("through the proxy: %d %q", resp.StatusCode, body)
	}

	s := New(func() Snapshot { return Snapshot{Services: comp.Status().([]proxy.ServiceStatus)} }, quiet())
	want := []struct {
		name   string
		labels []string
		v      float64
	}{
		{"halb_frontend_tls_handshakes_total", []string{"proxy", "web"}, 1},
		{"halb_frontend_tls_version_handshakes_total", []string{"proxy", "web", "version", "TLSv1.3"}, 1},
		{"halb_frontend_tls_version_handshakes_total", []string{"proxy", "web", "version", "TLSv1.2"}, 0},
		{"halb_frontend_tls_resumed_total", []string{"proxy", "web"}, 0},
		{"halb_frontend_tls_failed_handshakes_total", []string{"proxy", "web", "reason", "empty"}, 1},
		{"halb_frontend_tls_certificate_not_after_timestamp_seconds", []string{"proxy", "web", "certificate", "www"}, float64(notAfter.Unix())},
		{"halb_frontend_tls_certificate_alarm", []string{"proxy", "web", "certificate", "www"}, 1},
		{"halb_backend_tls_verify", []string{"proxy", "b"}, 0},
	}
	testutil.WaitFor(t, "the proxy to count the handshakes", func() bool {
		fams := scrape(t, s)
		for _, w := range want {
			if v, ok := value(fams, w.name, w.labels...); !ok || v != w.v {
				t.Logf("%s%v = %v (%v), want %v", w.name, w.labels, v, ok, w.v)
				return false
			}
		}
		return true
	})
}

// selfSigned writes a self-signed ECDSA certificate for name, valid until
// notAfter, and its key to dir.
func selfSigned(t *testing.T, dir, name string, notAfter time.Time) (crt, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	crt, key = filepath.Join(dir, "www.crt"), filepath.Join(dir, "www.key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

// TestServerMaintAndBackup: a disabled server is MAINT (not checked,
// weight 0, not active) and a backup is flagged, from the proxy's status
// and the checks' alike.
func TestServerMaintAndBackup(t *testing.T) {
	be := proxyBackend(proxy.BackendStatus{Name: "web", Servers: []proxy.ServerStatus{
		{Name: "a", Up: true, Weight: 1},
		{Name: "b", Up: true, Weight: 1, Backup: true},
		{Name: "off", Up: false, Disabled: true, Weight: 1},
	}})
	mergeHealth(&be, health.BackendHealth{Name: "web", Check: "tcp", Servers: []health.ServerHealth{
		{Name: "a", State: "up", Checks: 3}, {Name: "b", State: "up", Checks: 3}, {Name: "off", State: "disabled"}}})
	finishBackend(&be)
	want := []struct {
		state           string
		checked, backup bool
		weight          int
	}{{StateUp, true, false, 1}, {StateUp, true, true, 1}, {StateMaint, false, false, 0}}
	for i, w := range want {
		s := be.Servers[i]
		if s.State != w.state || s.Checked != w.checked || s.Backup != w.backup || s.Weight != w.weight {
			t.Errorf("%s: state %s checked %v backup %v weight %d; want %+v", s.Name, s.State, s.Checked, s.Backup, s.Weight, w)
		}
	}
	if be.Active != 2 {
		t.Errorf("%d active servers, want 2 (the disabled one is not)", be.Active)
	}
}
