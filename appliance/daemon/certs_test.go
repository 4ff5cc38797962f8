package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"halb/appliance/api"
	"halb/appliance/certs/certstest"
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
