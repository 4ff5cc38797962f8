package certs

import (
	"testing"
	"time"

	"halb/appliance/certs/certstest"
)

// FuzzParse: Parse takes any bytes without panicking, and what it accepts
// is described consistently.
//
//	go test -fuzz FuzzParse -fuzztime 30s ./appliance/certs/
func FuzzParse(f *testing.F) {
	root := certstest.Root(f, "Fuzz Root")
	leaf := root.Leaf(f, certstest.Options{DNS: []string{"fuzz.example.com"}})
	now := time.Now()
	f.Add(cat(leaf.CertPEM, root.PEM), leaf.KeyPEM)
	f.Add(leaf.CertPEM, leaf.KeyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		tc, info, err := Parse(certPEM, keyPEM, now)
		if err != nil {
			return
		}
		if info.Chain != len(tc.Certificate) || tc.Leaf == nil || tc.PrivateKey == nil || len(info.Fingerprint) != 64 {
			t.Fatalf("accepted pair described as %+v", info)
		}
	})
}
