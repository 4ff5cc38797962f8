package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs"
	"halb/appliance/certs/certstest"
)

func TestCertTable(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.Local)
	day := 24 * time.Hour
	l := []api.CertInfo{
		{Info: certs.Info{Name: "api", Subject: "CN=api.example.com", SANs: []string{"api.example.com", "a.example.com", "b.example.com", "192.0.2.1"},
			NotAfter: now.Add(42*day + time.Hour), KeyType: "RSA 2048", Chain: 2}, InUseBy: []string{}},
		{Info: certs.Info{Name: "old", Subject: "CN=old.example.com", SANs: []string{"old.example.com"}, NotAfter: now.Add(-3*day - time.Hour), KeyType: "Ed25519", Chain: 1,
			Error: "certificate 1 (CN=old.example.com) expired on 2026-12-02"}},
		{Info: certs.Info{Name: "soon", Subject: "CN=soon.example.com", NotAfter: now.Add(5*day + time.Hour), KeyType: "ECDSA P-256", Chain: 3},
			InUseBy: []string{"service web", "service shop"}},
		{Info: certs.Info{Name: "broken", Error: "the key does not match certificate 1 (CN=x)"}, InUseBy: []string{"service b"}},
	}
	var b bytes.Buffer
	printCerts(&b, l, now)
	lines := strings.Split(b.String(), "\n")
	for i, want := range [][]string{
		{"NAME", "SUBJECT", "SANS", "EXPIRES", "KEY", "CHAIN", "IN-USE"},
		{"api", "CN=api.example.com", "api.example.com,a.example.com +2", now.Add(42*day).Format(time.DateOnly) + " (in 42 days)", "RSA 2048", "2", "-"},
		{"old", "EXPIRED 3 days ago", "Ed25519", "1"},
		{"soon", "NONE (CN only)", "(expires in 5 days!)", "ECDSA P-256", "3", "service web, service shop"},
		{"broken", "ERROR (below)", "service b"},
		{"ERROR old: certificate 1 (CN=old.example.com) expired on 2026-12-02"},
		{"ERROR broken: the key does not match certificate 1 (CN=x)"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q:\n%s", i, w, b.String())
			}
		}
	}
	b.Reset()
	printCerts(&b, nil, now)
	if !strings.Contains(b.String(), "no certificate stored") {
		t.Errorf("empty list: %q", b.String())
	}
}

// serveCerts runs an API server that serves only a certificate store in
// dir (no daemon behind it) and returns its socket.
func serveCerts(t *testing.T, dir string, users func(string) []string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "halb.sock")
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := api.NewServerWith(nil, slog.New(slog.DiscardHandler), api.Options{Certs: &certs.Store{Dir: dir}, CertUsers: users})
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

// TestCertCommands: add, list and remove through a server; errors are
// Parse's, and the key is never printed.
func TestCertCommands(t *testing.T) {
	root := certstest.Root(t, "Example Root")
	web := root.Leaf(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	other := root.Leaf(t, certstest.Options{CN: "api.example.com", DNS: []string{"api.example.com"}})
	dir := t.TempDir()
	files := filepath.Join(dir, "in")
	os.Mkdir(files, 0o700)
	write := func(name string, data []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crt := write("web.crt", certstest.Cat(web.CertPEM, root.PEM))
	key := write("web.key", web.KeyPEM)
	otherKey := write("other.key", other.KeyPEM)
	sock := serveCerts(t, filepath.Join(dir, "certs"), func(name string) []string {
		if name == "shop" {
			return []string{"service shop"}
		}
		return nil
	})
	var all strings.Builder
	ctl := func(args ...string) (int, string, string) {
		code, out, errOut := runCtl(append([]string{"-socket", sock}, args...)...)
		all.WriteString(out + errOut)
		return code, out, errOut
	}

	code, out, errOut := ctl("cert", "add", "web", "--cert", crt, "--key", key)
	if code != 0 || !strings.Contains(out, "certificate web added: CN=www.example.com,O=halb test, www.example.com") ||
		!strings.Contains(out, "ECDSA P-256, chain of 2, issued by CN=Example Root") || !strings.Contains(out, "sha256 ") {
		t.Fatalf("cert add: exit %d\n%s%s", code, out, errOut)
	}
	// Flags before NAME work as well.
	if code, out, errOut := ctl("cert", "add", "--cert", crt, "--key", key, "shop"); code != 0 {
		t.Fatalf("cert add with NAME last: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := ctl("cert", "add", "web", "--cert", crt, "--key", key); code != 1 || !strings.Contains(errOut, `certificate "web" exists`) {
		t.Errorf("cert add of an existing name: exit %d: %s", code, errOut)
	}
	if code, _, errOut := ctl("cert", "add", "web", "--cert", crt, "--key", otherKey, "--replace"); code != 1 ||
		!strings.Contains(errOut, "halbctl: halbd: the key does not match certificate 1 (CN=www.example.com,O=halb test) (400)") {
		t.Errorf("cert add with the wrong key: exit %d: %s", code, errOut)
	}
	if code, out, errOut := ctl("cert", "add", "web", "--cert", crt, "--key", key, "--replace"); code != 0 || !strings.Contains(out, "certificate web stored") {
		t.Errorf("cert add --replace: exit %d\n%s%s", code, out, errOut)
	}

	code, out, _ = ctl("cert", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "shop") || !strings.Contains(out, "service shop") ||
		!strings.Contains(out, "(in 89 days)") {
		t.Errorf("cert list: exit %d\n%s", code, out)
	}

	if code, _, errOut := ctl("cert", "remove", "shop"); code != 1 || !strings.Contains(errOut, `certificate "shop" is in use by service shop`) {
		t.Errorf("cert remove in use: exit %d: %s", code, errOut)
	}
	if code, _, errOut := ctl("cert", "remove", "nope"); code != 1 || !strings.Contains(errOut, `certificate "nope" is not in the store`) {
		t.Errorf("cert remove unknown: exit %d: %s", code, errOut)
	}
	if code, out, _ := ctl("cert", "remove", "web"); code != 0 || out != "certificate web removed\n" {
		t.Errorf("cert remove: exit %d: %s", code, out)
	}

	// Nothing printed holds the key or a line of it.
	keyLines := strings.Split(strings.TrimSpace(string(web.KeyPEM)), "\n")
	for _, l := range append(keyLines[1:len(keyLines)-1], "PRIVATE KEY") {
		if strings.Contains(all.String(), l) {
			t.Errorf("halbctl printed %q of the key:\n%s", l, all.String())
		}
	}
}

func TestCertUsage(t *testing.T) {
	for _, args := range [][]string{{"cert"}, {"cert", "frob"}, {"cert", "list", "x"}, {"cert", "remove"}, {"cert", "remove", "a", "b"},
		{"cert", "add"}, {"cert", "add", "web"}, {"cert", "add", "web", "--cert", "c"}, {"cert", "add", "--cert", "c", "--key", "k"},
		{"cert", "add", "web", "extra", "--cert", "c", "--key", "k"}, {"cert", "add", "web", "--bogus"}} {
		if code, _, errOut := runCtl(append([]string{"-socket", "/nonexistent.sock"}, args...)...); code != 2 || !strings.Contains(errOut, "usage: halbctl") {
			t.Errorf("halbctl %q: exit %d, want 2 (usage)\n%s", args, code, errOut)
		}
	}
	if code, out, _ := runCtl("cert", "add", "-h"); code != 0 || !strings.Contains(out, "cert add NAME --cert FILE --key FILE [--replace]") {
		t.Errorf("cert add -h: exit %d\n%s", code, out)
	}
}
