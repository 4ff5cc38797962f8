package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ClientConfig is the TLS client config of connections to a backend's
// servers (backends[].tls): with verify "full", a server's certificate
// must chain to the CA bundle caPath (the system roots when "") and hold
// serverName, or, without serverName, the server's IP address (the caller
// sets ServerName per server then); with "none" any certificate passes.
// serverName is sent as SNI. TLS 1.2 at least.
func ClientConfig(verify, caPath, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: verify == "none"}
	if caPath == "" || verify == "none" {
		return cfg, nil
	}
	pool, err := LoadPool(caPath)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// LoadPool reads a PEM bundle of CA certificates (other blocks are
// skipped); one at least.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
