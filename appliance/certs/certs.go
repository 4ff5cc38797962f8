// Package certs validates TLS certificates and keeps them in a store: one
// job, so that the API can refuse a bad certificate when it is added and
// the proxy load only certificates that were checked (docs/tls.md).
//
// Parse checks a PEM chain and its key: the key matches the leaf, the leaf
// is valid now, each certificate is signed by the next one in the file and
// the last one is self-signed or issued by a system root. Store keeps
// named pairs as NAME.crt and NAME.key in one directory.
//
//	go test -race ./appliance/certs/
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// Info describes a certificate (chain) without its key.
type Info struct {
	Name        string    `json:"name"`    // store name ("" for files given by path)
	Subject     string    `json:"subject"` // leaf subject, RFC 2253 string
	SANs        []string  `json:"sans"`    // DNS names, then IP addresses, of the leaf
	Issuer      string    `json:"issuer"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	KeyType     string    `json:"key_type"` // "ECDSA P-256", "RSA 2048", "Ed25519"
	Fingerprint string    `json:"sha256"`   // hex SHA-256 of the leaf DER
	Chain       int       `json:"chain"`    // certificates in the file, leaf included
	// Warnings are what is accepted but worth fixing: a leaf without DNS
	// or IP names (modern clients ignore the CN and refuse it).
	Warnings []string `json:"warnings,omitempty"`
	// Error is why a stored entry cannot be used (Store.List only). The
	// other fields describe its chain when the cert file decodes, else
	// only Name is set.
	Error string `json:"error,omitempty"`
}

// ErrInvalid marks a certificate, key or name that Parse or the Store
// refuses as given (the API answers 400).
var ErrInvalid = errors.New("invalid certificate")

// ErrNotFound marks a store name that holds no certificate (404).
var ErrNotFound = errors.New("no such certificate")

// ErrExists marks an Add without replace of a name in use (409).
var ErrExists = errors.New("certificate exists")

// kindError is an error that errors.Is matches with kind, without kind's
// text in its message.
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

// SoonWindow is how close to its end a certificate counts as expiring soon.
const SoonWindow = 14 * 24 * time.Hour

// ExpiresSoon reports whether the certificate i describes ends within
// SoonWindow of now (or has ended): for status alarms. It is not an error.
func ExpiresSoon(i Info, now time.Time) bool {
	return !i.NotAfter.IsZero() && i.NotAfter.Sub(now) < SoonWindow
}

// MinRSABits is the smallest RSA key Parse takes.
const MinRSABits = 2048

// systemRoots is x509.SystemCertPool; tests replace it.
var systemRoots = x509.SystemCertPool

// Parse validates a PEM chain (leaf first) and its PEM private key
// (PKCS#1, PKCS#8 or SEC1) at time now and returns them ready for
// crypto/tls with their description:
//   - the cert file holds only CERTIFICATE blocks, the key file one
//     unencrypted key (and at most an EC PARAMETERS block, as openssl
//     ecparam writes it); anything else is refused;
//   - the key is RSA (at least 2048 bits), ECDSA or Ed25519 and matches
//     the leaf;
//   - the leaf is valid at now (not expired, not before NotBefore);
//   - each certificate is signed by the next one in the file, and the last
//     one is self-signed or issued by a system root.
//
// A leaf without DNS or IP names is taken with a warning in Info. Every
// error matches ErrInvalid and names the certificate by its place in the
// file and its subject.
func Parse(certPEM, keyPEM []byte, now time.Time) (tls.Certificate, Info, error) {
	tc, info, err := parse(certPEM, keyPEM, now)
	if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	return tc, info, nil
}

// parse is Parse that also describes a chain it refuses, as long as the
// cert file decodes: Store.List shows what an unusable entry is.
func parse(certPEM, keyPEM []byte, now time.Time) (tls.Certificate, Info, error) {
	chain, err := parseChain(certPEM)
	if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	info := describeLeaf(chain)
	key, err := parseKey(keyPEM)
	if err != nil {
		return tls.Certificate{}, info, err
	}
	leaf := chain[0]
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return tls.Certificate{}, info, errorf(ErrInvalid, "the key does not match %s", describe(chain, 0))
	}
	switch {
	case now.Before(leaf.NotBefore):
		return tls.Certificate{}, info, errorf(ErrInvalid, "%s is not valid yet: not before %s", describe(chain, 0), stamp(leaf.NotBefore))
	case now.After(leaf.NotAfter):
		return tls.Certificate{}, info, errorf(ErrInvalid, "%s expired on %s", describe(chain, 0), stamp(leaf.NotAfter))
	}
	if err := checkChain(chain, now); err != nil {
		return tls.Certificate{}, info, err
	}
	tc := tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, info, nil
}

// LoadFiles reads and Parses a pair of files given by path.
func LoadFiles(certPath, keyPath string, now time.Time) (tls.Certificate, Info, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	tc, info, err := Parse(certPEM, keyPEM, now)
	if err != nil {
		return tls.Certificate{}, Info{}, fmt.Errorf("%s: %w", certPath, err)
	}
	return tc, info, nil
}

// stamp is how errors write a time: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// describe names certificate i of chain: "certificate 2 (CN=Example CA)".
func describe(chain []*x509.Certificate, i int) string {
	return fmt.Sprintf("certificate %d (%s)", i+1, subjectOf(chain[i]))
}

func subjectOf(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "no subject"
}

// pemBlocks decodes the PEM blocks of data; rest says whether something
// other than space follows the last.
func pemBlocks(data []byte) (blocks []*pem.Block, rest bool) {
	for {
		b, more := pem.Decode(data)
		if b == nil {
			return blocks, len(bytes.TrimSpace(data)) > 0
		}
		blocks, data = append(blocks, b), more
	}
}

// parseChain decodes the cert file: CERTIFICATE blocks only, at least one.
func parseChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	blocks, rest := pemBlocks(data)
	for i, b := range blocks {
		n := i + 1
		if b.Type != "CERTIFICATE" {
			return nil, errorf(ErrInvalid, "cert file: PEM block %d is %s, want CERTIFICATE only (the key goes in the key file)", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errorf(ErrInvalid, "certificate %d: %v", n, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errorf(ErrInvalid, "cert file: no PEM certificate found")
	}
	if rest {
		return nil, errorf(ErrInvalid, "cert file: data after certificate %d is not PEM", len(chain))
	}
	return chain, nil
}

// parseKey decodes the key file: one unencrypted private key usable for
// TLS, and at most an EC PARAMETERS block beside it.
func parseKey(data []byte) (crypto.Signer, error) {
	var keyBlock *pem.Block
	blocks, rest := pemBlocks(data)
	for i, b := range blocks {
		n := i + 1
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "ENCRYPTED PRIVATE KEY":
			return nil, errorf(ErrInvalid, "key file: the key is encrypted; give it decrypted (openssl pkey -in KEY -out PLAIN)")
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		default:
			return nil, errorf(ErrInvalid, "key file: PEM block %d is %s, want one PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", n, b.Type)
		}
		if b.Headers["Proc-Type"] != "" || b.Headers["DEK-Info"] != "" {
			return nil, errorf(ErrInvalid, "key file: the key is encrypted; give it decrypted (openssl pkey -in KEY -out PLAIN)")
		}
		if keyBlock != nil {
			return nil, errorf(ErrInvalid, "key file: more than one private key")
		}
		keyBlock = b
	}
	if keyBlock == nil {
		return nil, errorf(ErrInvalid, "key file: no PEM private key found")
	}
	if rest {
		return nil, errorf(ErrInvalid, "key file: data after the key is not PEM")
	}
	var key any
	var err error
	switch keyBlock.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(keyBlock.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	}
	if err != nil {
		return nil, errorf(ErrInvalid, "key file: %s: %v", keyBlock.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, errorf(ErrInvalid, "key file: RSA key of %d bits, want at least %d", bits, MinRSABits)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, errorf(ErrInvalid, "key file: a %T cannot sign for TLS; want RSA, ECDSA or Ed25519", key)
}

// checkChain checks that each certificate is signed by the next and that
// the last is self-signed or issued by a system root.
func checkChain(chain []*x509.Certificate, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		err := chain[i].CheckSignatureFrom(chain[i+1])
		if err == nil {
			continue
		}
		var cv x509.ConstraintViolationError
		hint := ""
		if errors.As(err, &cv) {
			hint = fmt.Sprintf(" (certificate %d is not a CA)", i+2)
		} else if !bytes.Equal(chain[i].RawIssuer, chain[i+1].RawSubject) {
			hint = fmt.Sprintf(" (it is issued by %s)", chain[i].Issuer)
		}
		for j, c := range chain {
			if j != i+1 && j != i && bytes.Equal(c.RawSubject, chain[i].RawIssuer) {
				hint = fmt.Sprintf(" (its issuer is certificate %d: wrong order? the leaf comes first, then each issuer)", j+1)
			}
		}
		return errorf(ErrInvalid, "%s is not signed by certificate %d%s", describe(chain, i), i+2, hint)
	}
	last := chain[len(chain)-1]
	if bytes.Equal(last.RawIssuer, last.RawSubject) && last.CheckSignature(last.SignatureAlgorithm, last.RawTBSCertificate, last.Signature) == nil {
		return nil
	}
	roots, err := systemRoots()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := last.Verify(opts); err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return errorf(ErrInvalid, "%s is issued by %s, which is neither in the file nor a system root (add the missing certificate after it)", describe(chain, len(chain)-1), last.Issuer)
		}
		return errorf(ErrInvalid, "%s: %v", describe(chain, len(chain)-1), err)
	}
	return nil
}

// describeLeaf is the Info of a checked chain.
func describeLeaf(chain []*x509.Certificate) Info {
	leaf := chain[0]
	sum := sha256.Sum256(leaf.Raw)
	info := Info{
		Subject:     leaf.Subject.String(),
		SANs:        append([]string{}, leaf.DNSNames...),
		Issuer:      leaf.Issuer.String(),
		NotBefore:   leaf.NotBefore,
		NotAfter:    leaf.NotAfter,
		KeyType:     keyType(leaf.PublicKey),
		Fingerprint: hex.EncodeToString(sum[:]),
		Chain:       len(chain),
	}
	for _, ip := range leaf.IPAddresses {
		info.SANs = append(info.SANs, ip.String())
	}
	if len(info.SANs) == 0 {
		info.Warnings = append(info.Warnings, "no DNS or IP names (subjectAltName): modern clients ignore the CN and refuse it")
	}
	return info
}

func keyType(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
