package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"halb/appliance/api"
	"halb/appliance/certs/certstest"
	"halb/appliance/config"
	"halb/internal/testutil"
)

// TestCertStoreThroughAPI: halbd keeps the certificates added through its
// API in <state-dir>/certs, the key readable by root only.
func TestCertStoreThroughAPI(t *testing.T) {
	dir := t.TempDir()
	startDaemon(t, dir, "")
	c := api.NewClient(filepath.Join(dir, "halb.sock"))
	defer c.Close()
	p := certstest.SelfSigned(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	if _, err := c.CertAdd(context.Background(), "web", p.CertPEM, p.KeyPEM, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "state", "certs", "web.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("web.key: %v, %v", fi, err)
	}
	if l, err := c.CertList(context.Background()); err != nil || len(l) != 1 || l[0].Name != "web" {
		t.Errorf("CertList = %+v, %v", l, err)
	}
}

// TestStoredCertServed: a service serves a certificate of the store by
// name; replacing it through the API changes what new handshakes get;
// removing it is refused while the service uses it; a config naming a
// certificate the store lacks is refused at its line.
func TestStoredCertServed(t *testing.T) {
	dir := t.TempDir()
	x := testutil.ReservedAddr(t)
	srv := namer(t, "srv")
	td := startDaemon(t, dir, "")
	c := api.NewClient(filepath.Join(dir, "halb.sock"))
	defer c.Close()
	ctx := context.Background()
	root := certstest.Root(t, "test root")
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	first := root.Leaf(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	if _, err := c.CertAdd(ctx, "web", certstest.Cat(first.CertPEM, root.PEM), first.KeyPEM, false); err != nil {
		t.Fatal(err)
	}
	cfg := configOf(strings.Replace(service("web", x, "b", 1), "}", ", tls: {certificates: [{name: web}]}}", 1), backend("b", "s1="+srv))
	if _, err := td.Apply("api", []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", x, &tls.Config{RootCAs: pool, ServerName: "www.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if line != "srv\n" {
			t.Fatalf("through TLS: %q", line)
		}
		return conn.ConnectionState().PeerCertificates[0]
	}
	if got := served(); !got.Equal(first.Cert) {
		t.Fatalf("served %v, want the stored one", got.SerialNumber)
	}
	second := root.Leaf(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	if _, err := c.CertAdd(ctx, "web", certstest.Cat(second.CertPEM, root.PEM), second.KeyPEM, true); err != nil {
		t.Fatal(err)
	}
	if got := served(); !got.Equal(second.Cert) {
		t.Fatalf("after replace: served %v, want the new one", got.SerialNumber)
	}
	if err := c.CertRemove(ctx, "web"); err == nil || !strings.Contains(err.Error(), "service web") {
		t.Errorf("removing a certificate in use: %v", err)
	}
	unknown := strings.Replace(cfg, "{name: web}", "{name: nope}", 1)
	_, err := td.Apply("unknown.yaml", []byte(unknown))
	if es := config.AsErrors(err); len(es) != 1 || !strings.HasPrefix(es[0].Error(), "unknown.yaml:3: services[0].tls.certificates[0]: ") {
		t.Errorf("a config naming an unknown certificate: %v", err)
	}
}
