package certs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestStoreAddLoadListRemove(t *testing.T) {
	noSystemRoots(t)
	p := newPKI(t)
	now := time.Now()
	s := &Store{Dir: filepath.Join(t.TempDir(), "state", "certs")}
	if l, err := s.List(now); err != nil || len(l) != 0 {
		t.Fatalf("List of a store not made yet = %v, %v", l, err)
	}
	chain := cat(p.ecdsa.CertPEM, p.inter.PEM, p.root.PEM)
	info, err := s.Add("web", chain, p.ecdsa.KeyPEM, now, false)
	if err != nil || info.Name != "web" || info.Chain != 3 {
		t.Fatalf("Add = %+v, %v", info, err)
	}
	for path, want := range map[string]fs.FileMode{s.Dir: 0o700, filepath.Join(s.Dir, "web.crt"): 0o644, filepath.Join(s.Dir, "web.key"): 0o600} {
		if got := mode(t, path); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir, "web.key")); !bytes.Equal(b, p.ecdsa.KeyPEM) {
		t.Error("web.key is not the key given")
	}

	// Adding again without replace is refused and changes nothing.
	if _, err := s.Add("web", cat(p.rsa.CertPEM, p.inter.PEM, p.root.PEM), p.rsa.KeyPEM, now, false); !errors.Is(err, ErrExists) {
		t.Errorf("Add of an existing name: %v, want ErrExists", err)
	}
	// An invalid pair is refused before anything is written.
	if _, err := s.Add("web", chain, p.rsa.KeyPEM, now, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("Add of a mismatched pair: %v, want ErrInvalid", err)
	}
	if _, info, err := s.Load("web", now); err != nil || info.KeyType != "ECDSA P-256" {
		t.Fatalf("Load after refused adds = %+v, %v", info, err)
	}
	// Replace puts the new pair in place and leaves no temporary file.
	if info, err := s.Add("web", cat(p.rsa.CertPEM, p.inter.PEM, p.root.PEM), p.rsa.KeyPEM, now, true); err != nil || info.KeyType != "RSA 2048" {
		t.Fatalf("replace = %+v, %v", info, err)
	}
	if _, info, err := s.Load("web", now); err != nil || info.KeyType != "RSA 2048" || info.Name != "web" {
		t.Fatalf("Load after replace = %+v, %v", info, err)
	}
	if got := mode(t, filepath.Join(s.Dir, "web.key")); got != 0o600 {
		t.Errorf("replaced key: mode %o", got)
	}
	ents, _ := os.ReadDir(s.Dir)
	if len(ents) != 2 {
		t.Errorf("store holds %d files after replace, want web.crt and web.key", len(ents))
	}

	if _, err := s.Add("api.example-2", cat(p.ed.CertPEM, p.inter.PEM, p.root.PEM), p.ed.KeyPEM, now, false); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(now)
	if err != nil || len(l) != 2 || l[0].Name != "api.example-2" || l[1].Name != "web" || l[0].Error != "" {
		t.Fatalf("List = %+v, %v", l, err)
	}

	if err := s.Remove("web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Load("web", now); !errors.Is(err, ErrNotFound) || err.Error() != `certificate "web": not in the store` {
		t.Errorf("Load of a removed name: %v", err)
	}
}

func TestStoreNames(t *testing.T) {
	noSystemRoots(t)
	p := newPKI(t)
	s := &Store{Dir: t.TempDir()}
	chain := cat(p.ecdsa.CertPEM, p.inter.PEM, p.root.PEM)
	for _, name := range []string{"web", "a", "0", "www.example.com", "a_b-c.d", strings.Repeat("x", 63)} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "Web", ".hidden", "-x", "_x", "a/b", "../etc", "a b", "é", strings.Repeat("x", 64)} {
		if _, err := s.Add(name, chain, p.ecdsa.KeyPEM, time.Now(), false); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "want 1 to 63 of a-z 0-9 . _ -") {
			t.Errorf("Add(%q) = %v, want ErrInvalid", name, err)
		}
		if err := s.Remove(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("Remove(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if ents, _ := os.ReadDir(s.Dir); len(ents) != 0 {
		t.Errorf("bad names wrote %d files", len(ents))
	}
}

// TestStoreListBrokenEntries: entries that cannot be used are listed with
// their error beside the good ones; files that are no entries are not.
func TestStoreListBrokenEntries(t *testing.T) {
	noSystemRoots(t)
	p := newPKI(t)
	now := time.Now()
	s := &Store{Dir: t.TempDir()}
	chain := cat(p.ecdsa.CertPEM, p.inter.PEM, p.root.PEM)
	if _, err := s.Add("good", chain, p.ecdsa.KeyPEM, now, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("soon-old", chain, p.ecdsa.KeyPEM, now, false); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("garbage.crt", "junk")
	write("garbage.key", "junk")
	write("lonely.key", string(p.ecdsa.KeyPEM))
	write("keyless.crt", string(chain))
	write("mismatch.crt", string(chain))
	write("mismatch.key", string(p.rsa.KeyPEM))
	write(".web.crt.tmp-123", "left by a crash")
	write("README", "not an entry")
	write("UPPER.crt", "not a store name")

	l, err := s.List(now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"garbage":  "cert file: no PEM certificate found",
		"good":     "",
		"keyless":  "keyless.key is missing (the certificate is there)",
		"lonely":   "lonely.crt is missing (the key is there)",
		"mismatch": "the key does not match certificate 1",
		"soon-old": "",
	}
	var names []string
	for _, i := range l {
		names = append(names, i.Name)
		if w, ok := want[i.Name]; !ok || (w == "") != (i.Error == "") || !strings.Contains(i.Error, w) {
			t.Errorf("entry %s: error %q, want %q", i.Name, i.Error, w)
		}
		// The chain is described when its file decodes.
		if described := i.Subject != ""; described != (i.Name == "mismatch" || i.Error == "") {
			t.Errorf("entry %s: described %v: %+v", i.Name, described, i)
		}
	}
	if strings.Join(names, " ") != "garbage good keyless lonely mismatch soon-old" {
		t.Errorf("List names = %q", names)
	}
	// After the leaf's end the entry is listed as expired.
	later, err := s.List(p.ecdsa.Cert.NotAfter.Add(time.Hour))
	if err != nil || !strings.Contains(later[1].Error, "expired on") || !later[1].NotAfter.Equal(p.ecdsa.Cert.NotAfter) {
		t.Errorf("List after expiry: %+v, %v", later, err)
	}
}

// TestOpenSSL: pairs made by Debian's openssl parse: an ECDSA P-256
// self-signed one from `openssl req -x509`, and an RSA leaf signed by an
// intermediate with `openssl x509 -req`.
func TestOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: apt-get install openssl to run this test")
	}
	noSystemRoots(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	writeExt := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
		"-subj", "/CN=ec.example.com", "-addext", "subjectAltName=DNS:ec.example.com,IP:192.0.2.1",
		"-keyout", "ec.key", "-out", "ec.crt")
	_, info, err := Parse(read("ec.crt"), read("ec.key"), time.Now())
	if err != nil {
		t.Fatalf("openssl ECDSA pair: %v", err)
	}
	if info.KeyType != "ECDSA P-256" || strings.Join(info.SANs, " ") != "ec.example.com 192.0.2.1" || info.Chain != 1 {
		t.Errorf("openssl ECDSA pair: %+v", info)
	}

	writeExt("ca.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
	writeExt("leaf.ext", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:rsa.example.com\n")
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=Test Root", "-keyout", "root.key", "-out", "root.crt")
	run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Test Intermediate", "-keyout", "inter.key", "-out", "inter.csr")
	run("x509", "-req", "-in", "inter.csr", "-CA", "root.crt", "-CAkey", "root.key", "-CAcreateserial", "-days", "100", "-extfile", "ca.ext", "-out", "inter.crt")
	run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rsa.example.com", "-keyout", "leaf.key", "-out", "leaf.csr")
	run("x509", "-req", "-in", "leaf.csr", "-CA", "inter.crt", "-CAkey", "inter.key", "-CAcreateserial", "-days", "30", "-extfile", "leaf.ext", "-out", "leaf.crt")
	// openssl 3 writes PKCS#8; -traditional gives the PKCS#1 form too.
	run("rsa", "-in", "leaf.key", "-traditional", "-out", "leaf-pkcs1.key")

	for _, key := range []string{"leaf.key", "leaf-pkcs1.key"} {
		_, info, err := Parse(cat(read("leaf.crt"), read("inter.crt"), read("root.crt")), read(key), time.Now())
		if err != nil {
			t.Fatalf("openssl RSA chain with %s: %v", key, err)
		}
		if info.KeyType != "RSA 2048" || info.Chain != 3 || info.Subject != "CN=rsa.example.com" || info.Issuer != "CN=Test Intermediate" {
			t.Errorf("openssl RSA chain with %s: %+v", key, info)
		}
	}
	_, _, err = Parse(cat(read("leaf.crt"), read("root.crt")), read("leaf.key"), time.Now())
	if err == nil || !strings.Contains(err.Error(), "certificate 1 (CN=rsa.example.com) is not signed by certificate 2 (it is issued by CN=Test Intermediate)") {
		t.Errorf("openssl chain without its intermediate: %v", err)
	}

	// An encrypted key, as openssl writes it with -aes256, is refused.
	run("pkey", "-in", "ec.key", "-aes256", "-passout", "pass:secret", "-out", "ec-enc.key")
	if _, _, err := Parse(read("ec.crt"), read("ec-enc.key"), time.Now()); err == nil || !strings.Contains(err.Error(), "the key is encrypted") {
		t.Errorf("encrypted openssl key: %v", err)
	}
}
