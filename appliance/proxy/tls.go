package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/certs"
	"halb/appliance/config"
	"halb/appliance/logs"
	"halb/appliance/proxy/hello"
)

// TLS termination (services[].tls, docs/tls.md). The handshake is Go's
// crypto/tls on the connection's own goroutine; the decrypted stream is
// then served by the same http and tcp code as a plain one, through a
// tlsClient. Two things make a tls.Conn fit that code, which parks idle
// connections on their socket's readiness and reads what the kernel holds
// without waiting:
//   - tlsRaw, under the tls.Conn, hands it at most one TLS record per read
//     and keeps what follows in the socket's bytes for later, so the
//     tls.Conn never holds bytes of a record it has not decrypted: when
//     tlsRaw has nothing pending, the socket's readiness is the stream's.
//   - tlsClient reads a record's whole plaintext at once (into a buffer of
//     its own when the caller's is smaller), so the tls.Conn never holds
//     decrypted bytes either.
//
// A TLS connection parks attached (its tls.Conn stays), never detached.

// maxPlain is the most plaintext one TLS record carries (RFC 8446 5.1).
const maxPlain = 16384

// tlsRaw is the socket under a tls.Conn (see above), a rawStream whose
// reads hand over one record at a time.
type tlsRaw struct {
	*rawStream
	more   []byte  // read from the socket past the record being handed over
	hdr    [5]byte // the record header being read
	hdrN   int     // bytes of hdr seen
	body   int     // bytes of the current record's body not handed over yet
	got    bool    // some byte came
	closed atomic.Bool
}

// Read hands over the socket's bytes up to the end of the current record.
func (r *tlsRaw) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	if len(r.more) > 0 {
		n = copy(p, r.more)
		r.more = r.more[n:]
		if len(r.more) == 0 {
			r.more = nil
		}
	} else {
		var err error
		n, err = r.rawStream.Read(p)
		if n == 0 {
			return 0, err
		}
	}
	r.got = true
	cut := r.scan(p[:n])
	if cut < n {
		r.more = append(append([]byte(nil), p[cut:n]...), r.more...)
	}
	return cut, nil
}

// scan follows the record framing over b and returns where the record it
// is in ends (len(b) if not within b).
func (r *tlsRaw) scan(b []byte) int {
	for i := 0; i < len(b); {
		if r.body > 0 {
			k := min(r.body, len(b)-i)
			i += k
			r.body -= k
			if r.body == 0 {
				return i
			}
			continue
		}
		r.hdr[r.hdrN] = b[i]
		r.hdrN++
		i++
		if r.hdrN == len(r.hdr) {
			r.hdrN = 0
			r.body = int(r.hdr[3])<<8 | int(r.hdr[4])
			if r.body == 0 {
				return i
			}
		}
	}
	return len(b)
}

// tlsClient is a client connection with TLS terminated.
type tlsClient struct {
	raw   *tlsRaw
	tc    *tls.Conn
	stage *[]byte // plaintext read ahead of a small read: stage[so:sn]
	so    int
	sn    int
	info  tlsInfo
}

// tlsInfo is what the access log and counters learn of a handshake.
type tlsInfo struct {
	version, cipher uint16
	sni             string
	resumed         bool
	handshake       time.Duration
	// The client's certificate (client_auth), for client_auth.forward:
	// its subject and SHA-256 fingerprint; "" when it sent none.
	clientDN, clientSHA string
}

// pending reports whether bytes of the stream are here without the socket
// being readable.
func (t *tlsClient) pending() bool { return t.sn > t.so || len(t.raw.more) > 0 }

func (t *tlsClient) Read(p []byte) (int, error) {
	if t.sn > t.so {
		n := copy(p, (*t.stage)[t.so:t.sn])
		t.so += n
		if t.so == t.sn {
			putBuf(t.stage)
			t.stage, t.so, t.sn = nil, 0, 0
		}
		return n, nil
	}
	if len(p) >= maxPlain {
		return t.tc.Read(p)
	}
	bp := getBuf(maxPlain)
	n, err := t.tc.Read((*bp)[:maxPlain])
	k := copy(p, (*bp)[:n])
	if k < n {
		t.stage, t.so, t.sn = bp, k, n
	} else {
		putBuf(bp)
	}
	if k > 0 && err != nil && t.sn > t.so {
		err = nil // the rest first
	}
	return k, err
}

func (t *tlsClient) Write(p []byte) (int, error) { return t.tc.Write(p) }

// Close sends close_notify (when the connection is not broken) and closes
// the socket.
func (t *tlsClient) Close() error {
	if t.stage != nil {
		putBuf(t.stage)
		t.stage, t.so, t.sn = nil, 0, 0
	}
	if t.raw.closed.Swap(true) {
		return nil
	}
	t.raw.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	return t.tc.Close()
}

// CloseWrite sends close_notify and shuts the socket's write side.
func (t *tlsClient) CloseWrite() error {
	if err := t.tc.CloseWrite(); err != nil {
		return err
	}
	return t.raw.CloseWrite()
}

func (t *tlsClient) SetReadDeadline(at time.Time) error  { return t.raw.SetReadDeadline(at) }
func (t *tlsClient) SetWriteDeadline(at time.Time) error { return t.raw.SetWriteDeadline(at) }
func (t *tlsClient) SetDeadline(at time.Time) error      { return t.raw.SetDeadline(at) }

// readNow reads what is here without waiting for the socket: n is 0 and
// err nil when nothing is. A record that has begun to arrive is waited
// for (within the read deadline).
func (t *tlsClient) readNow(b []byte) (int, error) {
	if !t.pending() {
		rc, err := t.raw.SyscallConn()
		if err != nil {
			return 0, err
		}
		ready := false
		if err := rc.Control(func(fd uintptr) {
			var one [1]byte
			_, _, e := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			ready = e != unix.EAGAIN
		}); err != nil {
			return 0, err
		}
		if !ready {
			return 0, nil
		}
	}
	n, err := t.Read(b)
	if n == 0 && err == nil {
		return 0, nil
	}
	return n, err
}

// streamConn is a client or server stream: a *net.TCPConn or a tlsClient.
type streamConn interface {
	io.ReadWriteCloser
	CloseWrite() error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	SetDeadline(time.Time) error
}

// TLS configuration.

// intermediateSuites are Mozilla's "intermediate" TLS 1.2 ciphers that Go
// implements (the DHE ones it does not): ECDHE key exchange, AEAD ciphers.
// TLS 1.3's are Go's (all AEAD).
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// curves: the post-quantum hybrid first (Go's default), then Mozilla's
// intermediate list.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// loadedCert is one certificate of a service as loaded at the last
// (re)load.
type loadedCert struct {
	name string
	cert *tls.Certificate // nil when it could not be loaded
	err  error
}

// certSet picks a service's certificate by SNI.
type certSet struct {
	list  []loadedCert
	exact map[string][]*tls.Certificate // by DNS name, lower case
	wild  map[string][]*tls.Certificate // "*.example.com" by "example.com"
	def   *tls.Certificate
}

func newCertSet(list []loadedCert, def string) *certSet {
	cs := &certSet{list: list, exact: map[string][]*tls.Certificate{}, wild: map[string][]*tls.Certificate{}}
	for _, lc := range list {
		if lc.cert == nil {
			continue
		}
		if cs.def == nil || lc.name == def {
			cs.def = lc.cert
		}
		for _, n := range lc.cert.Leaf.DNSNames {
			n = strings.ToLower(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				cs.wild[rest] = append(cs.wild[rest], lc.cert)
			} else {
				cs.exact[n] = append(cs.exact[n], lc.cert)
			}
		}
	}
	return cs
}

// pick chooses the certificate for hello: an exact name before a wildcard,
// among several the first the client supports; the default otherwise.
func (cs *certSet) pick(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	choose := func(l []*tls.Certificate) *tls.Certificate {
		for _, c := range l {
			if hello.SupportsCertificate(c) == nil {
				return c
			}
		}
		if len(l) > 0 {
			return l[0]
		}
		return nil
	}
	if name != "" {
		if c := choose(cs.exact[name]); c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := choose(cs.wild[name[i+1:]]); c != nil {
				return c, nil
			}
		}
	}
	if cs.def == nil {
		return nil, errNoCertificate
	}
	return cs.def, nil
}

var errNoCertificate = errors.New("no certificate could be loaded")

// tlsTerm is a service's TLS termination, kept across reloads of the
// service: its config is rebuilt when the certificates, the settings or
// the session ticket keys change.
type tlsTerm struct {
	cfg     atomic.Pointer[tls.Config]
	certs   atomic.Pointer[certSet]
	sc      atomic.Pointer[config.TLS]
	clients atomic.Pointer[x509.CertPool] // client_auth.ca
}

// build makes the tls.Config of settings t with certificates cs, the CAs
// of client certificates and the session ticket keys.
func buildTLS(t *config.TLS, mode string, cs *certSet, clients *x509.CertPool, keys [][32]byte) *tls.Config {
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     intermediateSuites,
		CurvePreferences: curves,
		GetCertificate:   cs.pick,
	}
	if ca := t.ClientAuth; ca != nil {
		if clients == nil {
			clients = x509.NewCertPool() // the CA could not be read: no client passes
		}
		cfg.ClientCAs, cfg.ClientAuth = clients, tls.RequireAndVerifyClientCert
		if ca.Verify == "optional" {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	if t.MinVersion == "1.3" || t.Policy == "modern" {
		cfg.MinVersion = tls.VersionTLS13
	}
	switch {
	case t.ALPN != nil:
		cfg.NextProtos = *t.ALPN
	case mode != "tcp":
		cfg.NextProtos = []string{"http/1.1"}
	}
	if len(keys) > 0 {
		cfg.SetSessionTicketKeys(keys)
	}
	return cfg
}

// ticketKeys are the session ticket keys of every service: a new one every
// ticketRotate, ticketKeep kept to resume the sessions of their tickets.
// With a peer, both nodes use the union of theirs (MergeTicketKeys): the
// newest of either encrypts, any decrypts.
type ticketKeys struct {
	mu   sync.Mutex
	keys []TicketKey // newest first: it encrypts new tickets
}

// TicketKey is a session ticket key and when it was made.
type TicketKey struct {
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"` // 32 bytes
}

const (
	ticketRotate = time.Hour
	ticketKeep   = 12
)

// current returns the keys, rotating them first when due; changed: a new
// key was made.
func (k *ticketKeys) current(now time.Time) (keys [][32]byte, changed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 || now.Sub(k.keys[0].Created) >= ticketRotate {
		key := make([]byte, 32)
		rand.Read(key)
		k.keys = append([]TicketKey{{Created: now, Key: key}}, k.keys[:min(len(k.keys), ticketKeep-1)]...)
		changed = true
	}
	return k.raw(), changed
}

func (k *ticketKeys) raw() [][32]byte {
	out := make([][32]byte, len(k.keys))
	for i, t := range k.keys {
		copy(out[i][:], t.Key)
	}
	return out
}

// merge adds keys it does not have, keeping the newest ticketKeep;
// changed: the set changed.
func (k *ticketKeys) merge(in []TicketKey) (keys [][32]byte, changed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range in {
		if len(t.Key) != 32 || slices.ContainsFunc(k.keys, func(o TicketKey) bool { return bytes.Equal(o.Key, t.Key) }) {
			continue
		}
		k.keys = append(k.keys, TicketKey{Created: t.Created, Key: bytes.Clone(t.Key)})
		changed = true
	}
	if !changed {
		return nil, false
	}
	slices.SortStableFunc(k.keys, func(a, b TicketKey) int { return b.Created.Compare(a.Created) })
	k.keys = k.keys[:min(len(k.keys), ticketKeep)]
	return k.raw(), true
}

// TicketKeys lists the session ticket keys (for the peer).
func (c *Component) TicketKeys() []TicketKey {
	c.tickets.current(time.Now())
	c.tickets.mu.Lock()
	defer c.tickets.mu.Unlock()
	out := make([]TicketKey, len(c.tickets.keys))
	for i, t := range c.tickets.keys {
		out[i] = TicketKey{Created: t.Created, Key: bytes.Clone(t.Key)}
	}
	return out
}

// MergeTicketKeys takes the peer's session ticket keys: from then on a
// ticket either node issued resumes here.
func (c *Component) MergeTicketKeys(in []TicketKey) {
	if keys, changed := c.tickets.merge(in); changed {
		c.rebuildTLS(keys)
	}
}

// CertError is a certificate of a service that could not be loaded, or
// (Backend set) a backend's CA bundle.
type CertError struct {
	Service string // the service's name
	Index   int    // in services[].tls.certificates; -1: the client_auth CA
	Name    string
	Backend string // the backend's name: its tls.ca
	Err     error
}

func (e *CertError) Error() string {
	if e.Backend != "" {
		return fmt.Sprintf("backend %q tls: %v", e.Backend, e.Err)
	}
	if e.Index < 0 {
		return fmt.Sprintf("service %q client_auth: %v", e.Service, e.Err)
	}
	return fmt.Sprintf("service %q certificate %q: %v", e.Service, e.Name, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// CertLoader loads a certificate of the store by name.
type CertLoader func(name string, now time.Time) (tls.Certificate, error)

// FileLoader loads a certificate from a pair of PEM files.
type FileLoader func(certPath, keyPath string, now time.Time) (tls.Certificate, error)

// loadFiles is the FileLoader until SetCertLoaders gives another: the
// store's checks (the pair matches, the chain is complete, valid now).
func loadFiles(certPath, keyPath string, now time.Time) (tls.Certificate, error) {
	c, _, err := certs.LoadFiles(certPath, keyPath, now)
	return c, err
}

// SetCertLoaders sets how certificates are loaded: store by name (nil: a
// service naming one is refused), files by path (nil: loadFiles).
// Call before Run.
func (c *Component) SetCertLoaders(store CertLoader, files FileLoader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadStore, c.loadFiles = store, files
}

// loadCerts loads the certificates of service sc.
func (c *Component) loadCerts(sc *config.Service, now time.Time) []loadedCert {
	c.mu.Lock()
	store, files := c.loadStore, c.loadFiles
	c.mu.Unlock()
	if files == nil {
		files = loadFiles
	}
	out := make([]loadedCert, 0, len(sc.TLS.Certificates))
	for _, tc := range sc.TLS.Certificates {
		var cert tls.Certificate
		var err error
		switch {
		case tc.Cert != "":
			cert, err = files(tc.Cert, tc.Key, now)
		case store == nil:
			err = errors.New("no certificate store")
		default:
			cert, err = store(tc.Name, now)
		}
		lc := loadedCert{name: tc.Name, err: err}
		if err == nil {
			if cert.Leaf == nil && len(cert.Certificate) > 0 {
				cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0])
			}
			if err == nil {
				lc.cert = &cert
			}
			lc.err = err
		}
		out = append(out, lc)
	}
	return out
}

// preparedCerts are the certificates of cfg's TLS services, by service,
// as Prepare loaded them.
type preparedCerts struct {
	cfg   *config.Config
	certs map[string][]loadedCert
}

// certErrors lists what could not be loaded of cfg's certificates; it
// returns what it loaded, by service.
func (c *Component) certErrors(cfg *config.Config, now time.Time) (map[string][]loadedCert, error) {
	var errs []error
	loaded := map[string][]loadedCert{}
	for _, b := range cfg.Backends {
		if b.TLS != nil {
			if _, err := certs.ClientConfig(b.TLS.Verify, b.TLS.CA, b.TLS.ServerName); err != nil {
				errs = append(errs, &CertError{Backend: b.Name, Err: err})
			}
		}
	}
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		if sc.TLS == nil {
			continue
		}
		list := c.loadCerts(sc, now)
		for j, lc := range list {
			if lc.err != nil {
				errs = append(errs, &CertError{Service: sc.Name, Index: j, Name: lc.name, Err: lc.err})
			}
		}
		loaded[sc.Name] = list
		if ca := sc.TLS.ClientAuth; ca != nil {
			if _, err := certs.LoadPool(ca.CA); err != nil {
				errs = append(errs, &CertError{Service: sc.Name, Index: -1, Err: err})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return loaded, nil
}

// termFor returns the TLS termination of service s under sc (nil when sc
// has no tls), with the certificates in list, or loaded afresh when list
// is nil.
func (c *Component) termFor(t *tlsTerm, sc *config.Service, list []loadedCert, now time.Time) *tlsTerm {
	if sc.TLS == nil {
		return nil
	}
	if t == nil {
		t = &tlsTerm{}
	}
	if list == nil {
		list = c.loadCerts(sc, now)
	}
	for _, lc := range list {
		if lc.err != nil {
			c.log.Error("certificate not loaded", "service", sc.Name, "certificate", lc.name, "err", lc.err)
		}
	}
	tc := *sc.TLS
	t.sc.Store(&tc)
	cs := newCertSet(list, tc.Default)
	t.certs.Store(cs)
	var pool *x509.CertPool
	if ca := tc.ClientAuth; ca != nil {
		var err error
		if pool, err = certs.LoadPool(ca.CA); err != nil {
			c.log.Error("client CA not loaded: no client certificate passes", "service", sc.Name, "err", err)
		}
	}
	t.clients.Store(pool)
	keys, _ := c.tickets.current(now)
	t.cfg.Store(buildTLS(&tc, sc.Mode, cs, pool, keys))
	return t
}

// ReloadCerts loads every service's certificates afresh (after the store
// changed): handshakes from then on get the new ones; open connections
// keep theirs.
func (c *Component) ReloadCerts() {
	cfg := c.latest.Get()
	if cfg == nil {
		return
	}
	now := time.Now()
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	c.prepared = preparedCerts{} // loaded before the store changed
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		c.mu.Lock()
		s := c.services[sc.Name]
		c.mu.Unlock()
		if s == nil || sc.TLS == nil {
			continue
		}
		if st := s.state.Load(); st.tls != nil {
			c.termFor(st.tls, sc, nil, now)
		}
	}
}

// rotateTickets rebuilds every service's tls.Config with new session
// ticket keys when they are due.
func (c *Component) rotateTickets(now time.Time) {
	if keys, changed := c.tickets.current(now); changed {
		c.rebuildTLS(keys)
	}
}

// rebuildTLS gives every service's TLS config the ticket keys.
func (c *Component) rebuildTLS(keys [][32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.services {
		if t := s.state.Load().tls; t != nil {
			if sc, cs := t.sc.Load(), t.certs.Load(); sc != nil && cs != nil {
				t.cfg.Store(buildTLS(sc, s.mode, cs, t.clients.Load(), keys))
			}
		}
	}
}

// handshake terminates TLS on c (pre: bytes already read from it) by
// deadline.
func (s *service) handshake(c *net.TCPConn, pre []byte, t *tlsTerm, deadline time.Time) (*tlsClient, error) {
	raw := &tlsRaw{rawStream: newRawStream(c)}
	if len(pre) > 0 {
		raw.more = append([]byte(nil), pre...)
	}
	start := time.Now()
	tc := tls.Server(raw, t.cfg.Load())
	c.SetDeadline(deadline)
	err := tc.Handshake()
	c.SetDeadline(time.Time{})
	if err != nil {
		if !raw.got && !errors.Is(err, os.ErrDeadlineExceeded) {
			err = &emptyError{err}
		}
		return nil, err
	}
	cs := tc.ConnectionState()
	info := tlsInfo{version: cs.Version, cipher: cs.CipherSuite, sni: cs.ServerName, resumed: cs.DidResume, handshake: time.Since(start)}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		info.clientDN, info.clientSHA = headerSafe(leaf.Subject.String()), hex.EncodeToString(sum[:])
	}
	return &tlsClient{raw: raw, tc: tc, info: info}, nil
}

// emptyError is a handshake that failed because the client closed
// without sending a byte: a TCP check or a port scan, not a TLS client
// (counted as "empty", not logged).
type emptyError struct{ error }

func (e *emptyError) Unwrap() error { return e.error }

// headerSafe replaces the bytes a header value may not hold (controls,
// DEL) with '?'.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// handshakeFailure names the cause of a failed handshake for the counters.
func handshakeFailure(err error) string {
	var ae tls.AlertError
	var re tls.RecordHeaderError
	var ee *emptyError
	msg := err.Error()
	switch {
	case errors.As(err, &ee):
		return "empty"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, unix.ECONNRESET):
		return "closed"
	case errors.As(err, &re):
		return "not_tls"
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version"):
		return "version"
	case strings.Contains(msg, "cipher suite"), strings.Contains(msg, "no ECDHE curve"), strings.Contains(msg, "no mutually supported"):
		return "cipher"
	case strings.Contains(msg, "application protocol"):
		return "alpn"
	case errors.Is(err, errNoCertificate):
		return "no_certificate"
	case errors.As(err, &ae):
		return "alert"
	}
	return "other"
}

// HandshakeFailures are the reasons failed handshakes are counted by.
var HandshakeFailures = []string{"timeout", "closed", "not_tls", "version", "cipher", "alpn", "no_certificate", "alert", "other", "empty"}

// TLSCounters count a service's TLS handshakes.
type TLSCounters struct {
	Handshakes int64            `json:"handshakes"`
	Resumed    int64            `json:"resumed"`
	TLS12      int64            `json:"tls12"`
	TLS13      int64            `json:"tls13"`
	Failed     map[string]int64 `json:"failed"` // by reason (HandshakeFailures)
}

func (s *serviceStats) tlsFailed(why string) {
	for i, r := range HandshakeFailures {
		if r == why {
			s.tlsFail[i].Add(1)
		}
	}
}

func (s *serviceStats) tlsDone(i *tlsInfo) {
	s.tlsOK.Add(1)
	if i.resumed {
		s.tlsResumed.Add(1)
	}
	if i.version == tls.VersionTLS13 {
		s.tlsVersions[1].Add(1)
	} else {
		s.tlsVersions[0].Add(1)
	}
}

func (s *serviceStats) tlsSnapshot() *TLSCounters {
	c := &TLSCounters{Handshakes: s.tlsOK.Load(), Resumed: s.tlsResumed.Load(),
		TLS12: s.tlsVersions[0].Load(), TLS13: s.tlsVersions[1].Load(), Failed: map[string]int64{}}
	for i, r := range HandshakeFailures {
		if n := s.tlsFail[i].Load(); n > 0 {
			c.Failed[r] = n
		}
	}
	return c
}

// record puts the handshake in an access record.
func (i *tlsInfo) record(r *logs.Access) {
	r.TLSVersion = versionName(i.version)
	r.TLSCipher = tls.CipherSuiteName(i.cipher)
	r.SNI = i.sni
	r.Handshake = i.handshake
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// CertStatus is one certificate of a service as loaded.
type CertStatus struct {
	Name     string    `json:"name"`
	Subject  string    `json:"subject,omitempty"`
	DNSNames []string  `json:"dns_names,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	// ExpiresSoon: within 14 days (or expired): an alarm.
	ExpiresSoon bool   `json:"expires_soon,omitempty"`
	Error       string `json:"error,omitempty"`
}

// TLSStatus is a service's TLS termination.
type TLSStatus struct {
	MinVersion   string       `json:"min_version"`
	Policy       string       `json:"policy"`
	Default      string       `json:"default"`
	Certificates []CertStatus `json:"certificates"`
}

// expirySoon is how close to its expiry a certificate raises an alarm.
const expirySoon = 14 * 24 * time.Hour

func (t *tlsTerm) status(now time.Time) *TLSStatus {
	sc, cs := t.sc.Load(), t.certs.Load()
	if sc == nil || cs == nil {
		return nil
	}
	out := &TLSStatus{MinVersion: sc.MinVersion, Policy: sc.Policy, Default: sc.Default, Certificates: []CertStatus{}}
	for _, lc := range cs.list {
		c := CertStatus{Name: lc.name, Error: errString(lc.err)}
		if lc.cert != nil {
			l := lc.cert.Leaf
			c.Subject, c.DNSNames, c.NotAfter = l.Subject.String(), l.DNSNames, l.NotAfter
			c.ExpiresSoon = l.NotAfter.Sub(now) < expirySoon
		}
		out.Certificates = append(out.Certificates, c)
	}
	return out
}

// SNICounters count a tcp service's routing by TLS server name.
type SNICounters struct {
	Routed  int64            `json:"routed"`  // by a route
	Default int64            `json:"default"` // no name, or no route for it
	Refused map[string]int64 `json:"refused"` // ClientHellos refused, by reason
}

func (s *serviceStats) sniRouted(byRoute bool) {
	if byRoute {
		s.sniRoutedN.Add(1)
	} else {
		s.sniDefault.Add(1)
	}
}

func (s *serviceStats) helloFailed(why string) {
	for i, r := range hello.Reasons() {
		if r == why && i < len(s.helloFail) {
			s.helloFail[i].Add(1)
		}
	}
}

func (s *serviceStats) sniSnapshot() *SNICounters {
	c := &SNICounters{Routed: s.sniRoutedN.Load(), Default: s.sniDefault.Load(), Refused: map[string]int64{}}
	for i, r := range hello.Reasons() {
		if i < len(s.helloFail) {
			if n := s.helloFail[i].Load(); n > 0 {
				c.Refused[r] = n
			}
		}
	}
	return c
}
