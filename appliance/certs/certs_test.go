package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"halb/appliance/certs/certstest"
)

// noSystemRoots makes the system root pool empty for the test, so that
// results do not depend on the machine's CA bundle.
func noSystemRoots(t *testing.T) {
	old := systemRoots
	systemRoots = func() (*x509.CertPool, error) { return x509.NewCertPool(), nil }
	t.Cleanup(func() { systemRoots = old })
}

// pki is a root, an intermediate under it and leaves of each key type.
type pki struct {
	root, inter             *certstest.CA
	ecdsa, rsa, ed, pkcs8EC certstest.Pair
}

func newPKI(t *testing.T) pki {
	root := certstest.Root(t, "Example Root")
	inter := root.Intermediate(t, "Example Intermediate")
	return pki{
		root: root, inter: inter,
		ecdsa:   inter.Leaf(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com", "example.com"}, IPs: []net.IP{net.ParseIP("192.0.2.10")}}),
		rsa:     inter.Leaf(t, certstest.Options{CN: "rsa.example.com", Key: "rsa", DNS: []string{"rsa.example.com"}}),
		ed:      inter.Leaf(t, certstest.Options{CN: "ed.example.com", Key: "ed25519", DNS: []string{"ed.example.com"}}),
		pkcs8EC: inter.Leaf(t, certstest.Options{CN: "p8.example.com", PKCS8: true, DNS: []string{"p8.example.com"}}),
	}
}

var cat = certstest.Cat

func TestParse(t *testing.T) {
	noSystemRoots(t)
	p := newPKI(t)
	now := time.Now()
	other := p.inter.Leaf(t, certstest.Options{DNS: []string{"other.example.com"}})
	expired := p.inter.Leaf(t, certstest.Options{CN: "old.example.com", DNS: []string{"old.example.com"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-72 * time.Hour)})
	future := p.inter.Leaf(t, certstest.Options{CN: "new.example.com", DNS: []string{"new.example.com"}, NotBefore: now.Add(48 * time.Hour)})
	noSAN := p.inter.Leaf(t, certstest.Options{CN: "cn-only.example.com"})
	self := certstest.SelfSigned(t, certstest.Options{CN: "self.example.com", DNS: []string{"self.example.com"}})
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x00}})
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})

	full := func(l certstest.Pair) []byte { return cat(l.CertPEM, p.inter.PEM, p.root.PEM) }
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string // error text; "" = valid
		keyType   string
		chain     int
		warn      bool
	}{
		{name: "ECDSA P-256 leaf, intermediate, root", cert: full(p.ecdsa), key: p.ecdsa.KeyPEM, keyType: "ECDSA P-256", chain: 3},
		{name: "RSA 2048 PKCS#1", cert: full(p.rsa), key: p.rsa.KeyPEM, keyType: "RSA 2048", chain: 3},
		{name: "Ed25519 PKCS#8", cert: full(p.ed), key: p.ed.KeyPEM, keyType: "Ed25519", chain: 3},
		{name: "ECDSA PKCS#8", cert: full(p.pkcs8EC), key: p.pkcs8EC.KeyPEM, keyType: "ECDSA P-256", chain: 3},
		{name: "EC PARAMETERS before the key (openssl ecparam -genkey)", cert: full(p.ecdsa), key: cat(ecParams, p.ecdsa.KeyPEM), keyType: "ECDSA P-256", chain: 3},
		{name: "self-signed leaf", cert: self.CertPEM, key: self.KeyPEM, keyType: "ECDSA P-256", chain: 1},
		{name: "leaf without SANs is taken with a warning", cert: full(noSAN), key: noSAN.KeyPEM, keyType: "ECDSA P-256", chain: 3, warn: true},

		{name: "key of another certificate", cert: full(p.ecdsa), key: other.KeyPEM,
			want: "the key does not match certificate 1 (CN=www.example.com,O=halb test)"},
		{name: "RSA key for an ECDSA certificate", cert: full(p.ecdsa), key: p.rsa.KeyPEM, want: "the key does not match certificate 1"},
		{name: "expired", cert: full(expired), key: expired.KeyPEM,
			want: "certificate 1 (CN=old.example.com,O=halb test) expired on " + stampOf(expired.Cert.NotAfter)},
		{name: "not yet valid", cert: full(future), key: future.KeyPEM,
			want: "certificate 1 (CN=new.example.com,O=halb test) is not valid yet: not before " + stampOf(future.Cert.NotBefore)},
		{name: "intermediate and root swapped", cert: cat(p.ecdsa.CertPEM, p.root.PEM, p.inter.PEM), key: p.ecdsa.KeyPEM,
			want: "certificate 1 (CN=www.example.com,O=halb test) is not signed by certificate 2 (its issuer is certificate 3: wrong order? the leaf comes first, then each issuer)"},
		{name: "intermediate first", cert: cat(p.inter.PEM, p.ecdsa.CertPEM, p.root.PEM), key: p.ecdsa.KeyPEM,
			want: "the key does not match certificate 1 (CN=Example Intermediate,O=halb test)"},
		{name: "missing intermediate, root given", cert: cat(p.ecdsa.CertPEM, p.root.PEM), key: p.ecdsa.KeyPEM,
			want: "certificate 1 (CN=www.example.com,O=halb test) is not signed by certificate 2 (it is issued by CN=Example Intermediate,O=halb test)"},
		{name: "leaf alone, issuer unknown", cert: p.ecdsa.CertPEM, key: p.ecdsa.KeyPEM,
			want: "certificate 1 (CN=www.example.com,O=halb test) is issued by CN=Example Intermediate,O=halb test, which is neither in the file nor a system root"},
		{name: "chain without the root, root not a system root", cert: cat(p.ecdsa.CertPEM, p.inter.PEM), key: p.ecdsa.KeyPEM,
			want: "certificate 2 (CN=Example Intermediate,O=halb test) is issued by CN=Example Root,O=halb test, which is neither"},
		{name: "a leaf as issuer", cert: cat(p.ecdsa.CertPEM, other.CertPEM), key: p.ecdsa.KeyPEM,
			want: "is not signed by certificate 2"},
		{name: "garbage cert", cert: []byte("hello\n"), key: p.ecdsa.KeyPEM, want: "cert file: no PEM certificate found"},
		{name: "garbage after the chain", cert: cat(full(p.ecdsa), []byte("trailing\n")), key: p.ecdsa.KeyPEM, want: "cert file: data after certificate 3 is not PEM"},
		{name: "bad DER", cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), key: p.ecdsa.KeyPEM, want: "certificate 1: x509: "},
		{name: "key in the cert file", cert: cat(full(p.ecdsa), p.ecdsa.KeyPEM), key: p.ecdsa.KeyPEM,
			want: "cert file: PEM block 4 is EC PRIVATE KEY, want CERTIFICATE only"},
		{name: "certificate in the key file", cert: full(p.ecdsa), key: cat(p.ecdsa.KeyPEM, p.ecdsa.CertPEM),
			want: "key file: PEM block 2 is CERTIFICATE, want one PRIVATE KEY"},
		{name: "two keys", cert: full(p.ecdsa), key: cat(p.ecdsa.KeyPEM, other.KeyPEM), want: "key file: more than one private key"},
		{name: "garbage key", cert: full(p.ecdsa), key: []byte("not a key"), want: "key file: no PEM private key found"},
		{name: "empty key", cert: full(p.ecdsa), key: nil, want: "key file: no PEM private key found"},
		{name: "encrypted PKCS#8 key", cert: full(p.ecdsa), key: encrypted, want: "key file: the key is encrypted; give it decrypted"},
		{name: "encrypted legacy PEM key", cert: full(p.ecdsa), key: legacyEncrypted, want: "key file: the key is encrypted"},
		{name: "key block of the wrong type", cert: full(p.ecdsa), key: relabel(p.ecdsa.KeyPEM, "RSA PRIVATE KEY"), want: "key file: RSA PRIVATE KEY: x509: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsCert, info, err := Parse(tc.cert, tc.key, now)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v\nwant one containing %q", err, tc.want)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("err %v does not match ErrInvalid", err)
				}
				if info.Subject != "" || tlsCert.Leaf != nil {
					t.Errorf("refused pair returned %+v", info)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.KeyType != tc.keyType || info.Chain != tc.chain || len(tlsCert.Certificate) != tc.chain {
				t.Errorf("info = %+v, want key %q chain %d", info, tc.keyType, tc.chain)
			}
			if (len(info.Warnings) > 0) != tc.warn {
				t.Errorf("warnings = %q, want some: %v", info.Warnings, tc.warn)
			}
			if tlsCert.Leaf == nil || tlsCert.PrivateKey == nil {
				t.Errorf("tls.Certificate lacks leaf or key: %+v", tlsCert)
			}
		})
	}
}

func stampOf(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func relabel(p []byte, typ string) []byte {
	b, _ := pem.Decode(p)
	b.Type = typ
	return pem.EncodeToMemory(b)
}

// TestParseInfo: Info describes the leaf; the parsed pair serves a TLS
// handshake that a client trusting only the root verifies.
func TestParseInfo(t *testing.T) {
	noSystemRoots(t)
	p := newPKI(t)
	tc, info, err := Parse(cat(p.ecdsa.CertPEM, p.inter.PEM, p.root.PEM), p.ecdsa.KeyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if info.Subject != "CN=www.example.com,O=halb test" || info.Issuer != "CN=Example Intermediate,O=halb test" ||
		strings.Join(info.SANs, " ") != "www.example.com example.com 192.0.2.10" || len(info.Fingerprint) != 64 ||
		!info.NotAfter.Equal(p.ecdsa.Cert.NotAfter) || info.Name != "" || len(info.Warnings) != 0 {
		t.Errorf("info = %+v", info)
	}

	roots := x509.NewCertPool()
	roots.AddCert(p.root.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{tc}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "example.com"})
	if err != nil {
		t.Fatalf("handshake with the parsed pair: %v", err)
	}
	c.Close()
}

func TestRSAKeyTooSmall(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Parse(certstest.SelfSigned(t, certstest.Options{}).CertPEM, certstest.KeyPEM(t, k, false), time.Now())
	if err == nil || !strings.Contains(err.Error(), "key file: RSA key of 1024 bits, want at least 2048") {
		t.Errorf("err = %v", err)
	}
}

func TestExpiresSoon(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left time.Duration
		want bool
	}{{-time.Hour, true}, {13 * 24 * time.Hour, true}, {14*24*time.Hour - time.Second, true}, {14 * 24 * time.Hour, false}, {60 * 24 * time.Hour, false}} {
		if got := ExpiresSoon(Info{NotAfter: now.Add(tc.left)}, now); got != tc.want {
			t.Errorf("ExpiresSoon with %v left = %v, want %v", tc.left, got, tc.want)
		}
	}
	if ExpiresSoon(Info{Error: "broken"}, now) {
		t.Error("an entry without NotAfter expires soon")
	}
}

// TestParseSystemRoot: a chain that ends below a system root is complete
// without the root.
func TestParseSystemRoot(t *testing.T) {
	p := newPKI(t)
	old := systemRoots
	systemRoots = func() (*x509.CertPool, error) {
		pool := x509.NewCertPool()
		pool.AddCert(p.root.Cert)
		return pool, nil
	}
	t.Cleanup(func() { systemRoots = old })
	if _, info, err := Parse(cat(p.ecdsa.CertPEM, p.inter.PEM), p.ecdsa.KeyPEM, time.Now()); err != nil || info.Chain != 2 {
		t.Errorf("chain below a system root: %+v, %v", info, err)
	}
	if _, _, err := Parse(p.ecdsa.CertPEM, p.ecdsa.KeyPEM, time.Now()); err == nil || !strings.Contains(err.Error(), "is issued by CN=Example Intermediate") {
		t.Errorf("leaf alone below a system root's intermediate: %v", err)
	}
}
