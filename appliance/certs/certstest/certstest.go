// Package certstest makes certificates for tests: a root CA, intermediates
// and leaves with ECDSA P-256, RSA 2048 or Ed25519 keys, as PEM. Only
// tests import it.
package certstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority: a root or an intermediate.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte // Cert as a PEM block
}

// Options describe a certificate to make; zero values take defaults.
type Options struct {
	CN string // default "test"
	// Key is "ecdsa" (default, P-256), "rsa" (2048 bits) or "ed25519".
	Key string
	// PKCS8 writes the key as PRIVATE KEY; otherwise RSA keys are
	// written as RSA PRIVATE KEY (PKCS#1), ECDSA keys as EC PRIVATE KEY
	// (SEC1) and Ed25519 keys as PRIVATE KEY (their only form).
	PKCS8 bool
	DNS   []string
	IPs   []net.IP
	// NotBefore defaults to an hour ago, NotAfter to 90 days from now.
	NotBefore, NotAfter time.Time
}

// Pair is a leaf: its certificate and key as PEM.
type Pair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

var serial atomic.Int64

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "", "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("certstest: unknown key type %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// KeyPEM encodes k as Options.PKCS8 says.
func KeyPEM(t testing.TB, k crypto.Signer, pkcs8 bool) []byte {
	t.Helper()
	var b *pem.Block
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if !pkcs8 {
			b = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case *ecdsa.PrivateKey:
		if !pkcs8 {
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			b = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		}
	}
	if b == nil {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		b = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(b)
}

func issue(t testing.TB, o Options, isCA bool, parent *CA) (*x509.Certificate, crypto.Signer, []byte) {
	t.Helper()
	if o.CN == "" {
		o.CN = "test"
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	key := newKey(t, o.Key)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: o.CN, Organization: []string{"halb test"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		DNSNames:     o.DNS,
		IPAddresses:  o.IPs,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.ExtKeyUsage = nil
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Root makes a self-signed root CA with an ECDSA P-256 key, valid for ten
// years from an hour ago.
func Root(t testing.TB, cn string) *CA {
	t.Helper()
	c, k, p := issue(t, Options{CN: cn, NotAfter: time.Now().AddDate(10, 0, 0)}, true, nil)
	return &CA{Cert: c, Key: k, PEM: p}
}

// Intermediate makes a CA signed by ca.
func (ca *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	c, k, p := issue(t, Options{CN: cn, NotAfter: time.Now().AddDate(5, 0, 0)}, true, ca)
	return &CA{Cert: c, Key: k, PEM: p}
}

// Leaf makes a server certificate signed by ca.
func (ca *CA) Leaf(t testing.TB, o Options) Pair {
	t.Helper()
	c, k, p := issue(t, o, false, ca)
	return Pair{Cert: c, CertPEM: p, KeyPEM: KeyPEM(t, k, o.PKCS8)}
}

// SelfSigned makes a self-signed server certificate.
func SelfSigned(t testing.TB, o Options) Pair {
	t.Helper()
	c, k, p := issue(t, o, false, nil)
	return Pair{Cert: c, CertPEM: p, KeyPEM: KeyPEM(t, k, o.PKCS8)}
}

// Cat joins PEM files, as cat does.
func Cat(files ...[]byte) []byte {
	var out []byte
	for _, f := range files {
		out = append(out, f...)
	}
	return out
}
