package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs"
	"halb/appliance/config"
	"halb/appliance/proxy"
)

// ALPN protocols on the peer port: pairing (the only exchange with an
// unpinned certificate) and the link (HTTP/1.1 over mutual TLS with
// pinned certificates).
const (
	alpnPair = "halb-pair/1"
	alpnLink = "http/1.1"
)

// serverListener is the peer port: closing it closes the HTTP server and
// every connection it holds.
type serverListener struct {
	net.Listener
	srv *http.Server
}

func (s *serverListener) Close() error { return s.srv.Close() }

// listen opens the peer port. A client that offers the pairing protocol
// gets the pairing exchange; any other must present a pinned certificate
// or the TLS handshake fails.
func (p *Peer) listen(ctx context.Context, port int) (net.Listener, error) {
	raw, err := net.Listen("tcp", p.listenAddr(port))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /peer/v1/state", p.handleState)
	mux.HandleFunc("POST /peer/v1/offer", p.handleOffer)
	mux.HandleFunc("POST /peer/v1/unpair", p.handleUnpair)
	mux.HandleFunc("POST /peer/v1/stick", p.handleStick)
	mux.HandleFunc("POST /peer/v1/certs", p.handleCerts)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         p.serverTLS(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		// A non-nil map turns HTTP/2 off; pairing has its own protocol.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){
			alpnPair: func(_ *http.Server, c *tls.Conn, _ http.Handler) { p.servePairing(ctx, c) },
		},
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := srv.ServeTLS(raw, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("peer link stopped", "err", err)
		}
	}()
	return &serverListener{Listener: raw, srv: srv}, nil
}

// serverTLS is the peer port's TLS: 1.3 only, a client certificate always.
func (p *Peer) serverTLS() *tls.Config {
	pair := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.id.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{alpnPair},
	}
	link := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.id.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{alpnLink},
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 || !p.pinned(Fingerprint(rawCerts[0])) {
				return errNotPaired
			}
			return nil
		},
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.id.Cert},
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, proto := range hi.SupportedProtos {
				if proto == alpnPair {
					return pair, nil
				}
			}
			return link, nil
		},
	}
}

var errNotPaired = errors.New("certificate not pinned: this host is not a paired peer")

// clientTLS is the link's TLS to a peer whose certificate is pinned as fp.
func (p *Peer) clientTLS(fp string, proto string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.id.Cert},
		NextProtos:   []string{proto},
		// The peer's certificate is self-signed and pinned: chains and
		// names mean nothing here, the fingerprint everything.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if fp == "" {
				return nil // pairing: the PAKE authenticates it
			}
			if len(rawCerts) == 0 || Fingerprint(rawCerts[0]) != fp {
				return fmt.Errorf("peer certificate is not the one pinned (%s): another host answers at this address", fp)
			}
			return nil
		},
	}
}

// peerOf identifies the paired peer behind a request on the link.
func (p *Peer) peerOf(w http.ResponseWriter, r *http.Request) (config.Peer, bool) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if pc, ok := p.peerByFingerprint(Fingerprint(r.TLS.PeerCertificates[0].Raw)); ok {
			return pc, true
		}
	}
	http.Error(w, errNotPaired.Error(), http.StatusForbidden)
	return config.Peer{}, false
}

// stateMsg is one side of a state exchange.
type stateMsg struct {
	Name string `json:"name"`
	// Sent is the sender's clock when it sent the message (t1 in a
	// request, t3 in the answer); Received the answerer's when the
	// request came (t2).
	Sent     time.Time  `json:"sent"`
	Received time.Time  `json:"received,omitzero"`
	State    LocalState `json:"state"`
	Version  Version    `json:"version"`
	// TicketKeys are the sender's TLS session ticket keys (the link is
	// mutual TLS with pinned certificates): both nodes use the union, so
	// a session resumes on either after a failover.
	TicketKeys []proxy.TicketKey `json:"ticket_keys,omitempty"`
	// Certs is the sender's certificate manifest (certs.go).
	Certs []certs.Entry `json:"certs,omitempty"`
}

func (p *Peer) ownState() stateMsg {
	p.mu.Lock()
	v := p.st.Version
	p.mu.Unlock()
	m := stateMsg{Name: p.selfName(), State: p.opts.Local(), Version: v}
	if p.opts.TicketKeys != nil {
		m.TicketKeys = p.opts.TicketKeys()
	}
	m.Certs = p.manifest()
	return m
}

func (p *Peer) handleState(w http.ResponseWriter, r *http.Request) {
	t2 := p.opts.Now()
	pc, ok := p.peerOf(w, r)
	if !ok {
		return
	}
	var in stateMsg
	if !readJSON(w, r, &in) {
		return
	}
	if l := p.linkOf(pc.Name); l != nil {
		l.heard(in, t2, 0, false)
	}
	p.sameVersion(in.Version)
	out := p.ownState()
	out.Received = t2
	out.Sent = p.opts.Now()
	writeJSON(w, out)
}

// sameVersion merges the vectors when the peer runs the same cluster parts
// under another vector (both made the same change apart, or a conflict
// settled on both).
func (p *Peer) sameVersion(v Version) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.Digest == p.st.Version.Digest && v.Digest != "" && p.st.Version.Vector.Compare(v.Vector) != Equal &&
		p.st.Version.Vector.Compare(v.Vector) != After {
		p.st.Version.Vector = p.st.Version.Vector.Merge(v.Vector)
		p.saveState()
	}
}

func (p *Peer) linkOf(name string) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[name]
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*config.MaxSize)).Decode(v); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// link is this node's side of the link to one paired peer: it exchanges
// state every second and offers this node's config when the peer's is
// older or was made apart.
type link struct {
	p      *Peer
	peer   config.Peer
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}
	pushc  chan struct{}

	mu       sync.Mutex
	lastOK   time.Time
	lastErr  string
	remote   stateMsg
	have     bool
	skew     time.Duration
	haveSkew bool
	sync     *api.SyncState
	// The persistence sync's queue (stick.go), under stickMu.
	stickMu       sync.Mutex
	stickQ        map[[2]string]proxy.StickEntry
	stickFull     bool
	stickSent     uint64
	stickReceived uint64
	// splitAt is when a split brain of an instance was last reported.
	splitAt map[string]time.Time
	// offered is the digest last offered and when: a change the peer
	// rejected is offered again only after a while.
	offered   string
	offeredAt time.Time
	// certRefused: certificate changes (name → the change's time) the
	// peer refused; not pushed again until they change.
	certRefused map[string]time.Time
}

func (p *Peer) newLink(pc config.Peer) *link {
	dialer := &net.Dialer{Timeout: requestTimeout}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     p.clientTLS(pc.Fingerprint, alpnLink),
		TLSHandshakeTimeout: requestTimeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &link{p: p, peer: pc, client: &http.Client{Transport: tr, Timeout: requestTimeout},
		done: make(chan struct{}), pushc: make(chan struct{}, 1)}
}

func (l *link) url(path string) string {
	return "https://" + net.JoinHostPort(l.peer.Address, strconv.Itoa(l.peer.Port)) + path
}

func (l *link) push() {
	select {
	case l.pushc <- struct{}{}:
	default:
	}
}

// stop ends the link and waits for it.
func (l *link) stop() {
	if l.cancel != nil {
		l.cancel()
	}
}

func (l *link) run(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	defer close(l.done)
	defer l.client.CloseIdleConnections()
	t := time.NewTimer(0)
	defer t.Stop()
	flush := time.NewTicker(stickFlushEvery)
	defer flush.Stop()
	pushNow := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.pushc:
			pushNow = true
		case <-flush.C:
			l.flushStick(ctx)
			continue
		case <-t.C:
		}
		if pushNow {
			l.pushCerts(ctx) // a config may name a certificate just added
			l.offer(ctx, true)
			pushNow = false
		}
		if err := l.exchange(ctx); err == nil {
			l.pushCerts(ctx)
			l.offer(ctx, false)
		}
		t.Reset(exchangeEvery)
	}
}

// post sends v as JSON to path and decodes the answer into out.
func (l *link) post(ctx context.Context, path string, v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url(path), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 2*config.MaxSize)).Decode(out)
}

// exchange trades state with the peer and measures the clock skew.
func (l *link) exchange(ctx context.Context) error {
	msg := l.p.ownState()
	t1 := l.p.opts.Now()
	msg.Sent = t1
	var in stateMsg
	err := l.post(ctx, "/peer/v1/state", msg, &in)
	t4 := l.p.opts.Now()
	if err != nil {
		l.failed(err)
		return err
	}
	// NTP's offset from the four timestamps: the peer's clock minus ours.
	skew := (in.Received.Sub(t1) + in.Sent.Sub(t4)) / 2
	l.heard(in, t4, skew, true)
	l.p.sameVersion(in.Version)
	return nil
}

func (l *link) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	wasUp := !l.lastOK.IsZero() && l.lastErr == ""
	l.lastErr = shortErr(err)
	if wasUp {
		l.p.event("peer.unreachable", fmt.Sprintf("peer %s unreachable: %s", l.peer.Name, l.lastErr), map[string]string{"peer": l.peer.Name})
	}
}

// shortErr drops the URL that net/http puts in front of every error.
func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// heard records the peer's state, from its answer (skew measured) or its
// request.
func (l *link) heard(in stateMsg, at time.Time, skew time.Duration, measured bool) {
	if len(in.TicketKeys) > 0 && l.p.opts.MergeTicketKeys != nil {
		l.p.opts.MergeTicketKeys(in.TicketKeys)
	}
	in.TicketKeys = nil // secrets are not kept with the peer's state
	local := l.p.opts.Local()
	var split []string
	l.mu.Lock()
	for name, role := range in.State.Roles {
		if role == "MASTER" && local.Roles[name] == "MASTER" && at.Sub(l.splitAt[name]) > 10*time.Second {
			if l.splitAt == nil {
				l.splitAt = map[string]time.Time{}
			}
			l.splitAt[name] = at
			split = append(split, name)
		}
	}
	back := l.lastErr != "" || l.lastOK.IsZero()
	l.lastOK, l.lastErr, l.remote, l.have = at, "", in, true
	if measured {
		l.skew, l.haveSkew = skew, true
	}
	l.mu.Unlock()
	for name, role := range in.State.Roles {
		if role == "MASTER" {
			l.p.opts.PeerMaster(l.peer, name, in.State.Priorities[name])
		}
	}
	for _, name := range split {
		l.p.event("peer.split_brain", fmt.Sprintf("split brain: this node and %s are both MASTER of %s; settled over the peer link by priority (%d here, %d there)",
			l.peer.Name, name, local.Priorities[name], in.State.Priorities[name]), map[string]any{"peer": l.peer.Name, "instance": name})
	}
	if back {
		// Whatever changed while the link was down: the whole table.
		l.needStickCatchUp()
	}
	if back && measured {
		l.p.event("peer.reachable", fmt.Sprintf("peer %s reachable (config %s)", l.peer.Name, in.Version), map[string]string{"peer": l.peer.Name})
	}
}

// fill writes what the link knows into ps.
func (l *link) fill(ps *api.PeerState, now time.Time, mine Version, local LocalState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps.LastSeen, ps.Error = l.lastOK, l.lastErr
	ps.Reachable = !l.lastOK.IsZero() && now.Sub(l.lastOK) <= reachableFor
	if !ps.Reachable && ps.Error == "" && !l.lastOK.IsZero() {
		ps.Error = "no exchange for " + now.Sub(l.lastOK).Round(time.Second).String()
	}
	if l.have {
		ps.Roles, ps.Services = l.remote.State.Roles, l.remote.State.Services
		ps.ViaPeerLink = l.remote.State.ViaPeerLink
		ps.ConfigVersion = l.remote.Version.Vector.String()
		ps.InSync = l.remote.Version.Digest == mine.Digest
		for name, role := range l.remote.State.Roles {
			if role == "MASTER" && local.Roles[name] == "MASTER" && ps.Reachable {
				ps.SplitBrain = append(ps.SplitBrain, name)
			}
		}
	}
	if l.haveSkew {
		ps.ClockSkew = l.skew
		if maxOff := l.p.maxOffset(); maxOff > 0 && (l.skew > maxOff || -l.skew > maxOff) {
			ps.SkewAlarm = true
		}
	}
	if l.sync != nil {
		s := *l.sync
		ps.Sync = &s
	}
	ps.Persistence = l.stickLine()
}

func (p *Peer) maxOffset() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return config.DefaultMaxOffset
	}
	return p.cfg.Time.MaxOffset.D()
}

// settled marks the offer of version applied when the peer was seen
// running it while this node still waited for its answer.
func (l *link) settled(version string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sync; s != nil && s.Version == version && s.State == "sending" {
		l.sync = &api.SyncState{Version: version, State: "applied", At: l.p.opts.Now()}
	}
}

func (l *link) setSync(version, state, errText string) {
	l.mu.Lock()
	l.sync = &api.SyncState{Version: version, State: state, Error: errText, At: l.p.opts.Now()}
	l.mu.Unlock()
}
