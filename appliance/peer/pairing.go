package peer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/peer/cpace"
)

// Pairing, the one exchange on the peer port with a certificate that is
// not pinned (docs/peer.md, docs/pairing-crypto.md):
//
//	joiner → shower  hello    {name, port, sid, Ya}
//	shower → joiner  reply    {name, Yb, Tb, tries_left} or {error}
//	joiner → shower  confirm  {Ta}
//	shower → joiner  done     {offer: its config and version} or {error}
//
// over TLS 1.3 with ALPN halb-pair/1, both sides presenting their own
// certificate. CPace runs with PRS = the code, CI = "halb-pair/1" and the
// connection's TLS exporter (a relay that re-terminates TLS makes the two
// sides' CIs differ), sid = the joiner's 16 random bytes and AD = each
// side's certificate fingerprint and node name as the other saw them on
// the connection. Ta and Tb are the draft's key confirmation tags; only
// when they check does either side pin the other's certificate. The
// shower counts a try when it answers a hello: 5 answered hellos without
// a confirmed key end the code.

// pairingCode is the active pairing code.
type pairingCode struct {
	code      string // normalised
	display   string
	expires   time.Time
	triesLeft int
}

func (c *pairingCode) usable(now time.Time) bool { return c.triesLeft > 0 && now.Before(c.expires) }

func (c *pairingCode) endReason(now time.Time) string {
	if c.triesLeft <= 0 {
		return fmt.Sprintf("%d wrong tries", CodeTries)
	}
	return "expired"
}

// Messages of the pairing exchange.
type (
	pairHello struct {
		Name  string `json:"name"`
		Port  int    `json:"port"`
		Sid   []byte `json:"sid"`
		Share []byte `json:"share"`
	}
	pairReply struct {
		Error     string `json:"error,omitempty"`
		Name      string `json:"name,omitempty"`
		Share     []byte `json:"share,omitempty"`
		Tag       []byte `json:"tag,omitempty"`
		TriesLeft int    `json:"tries_left"`
	}
	pairConfirm struct {
		Tag []byte `json:"tag"`
	}
	pairDone struct {
		Error string `json:"error,omitempty"`
		Offer *offer `json:"offer,omitempty"`
	}
)

// pairTimeout bounds a whole pairing exchange.
const pairTimeout = 15 * time.Second

// maxFrame bounds one message (the last carries a config).
const maxFrame = 2*config.MaxSize + 64<<10

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(append(n[:], b...)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

func readFrame(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return fmt.Errorf("receive: message of %d bytes is too large", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	return json.Unmarshal(b, v)
}

// channelID is CPace's CI: the protocol and the TLS connection's exporter.
func channelID(c *tls.Conn) ([]byte, error) {
	st := c.ConnectionState()
	exp, err := st.ExportKeyingMaterial("EXPORTER-halb-pair", nil, 32)
	if err != nil {
		return nil, err
	}
	return append([]byte(alpnPair+"\x00"), exp...), nil
}

// associatedData is a side's AD: its certificate's fingerprint and name.
func associatedData(fingerprint, name string) []byte {
	return []byte(fingerprint + "\x00" + name)
}

// StartPairing makes a new pairing code, valid CodeLifetime for CodeTries
// tries, replacing any; the peer port opens.
func (p *Peer) StartPairing() (api.PairingCode, error) {
	p.mu.Lock()
	if p.cfg == nil {
		p.mu.Unlock()
		return api.PairingCode{}, api.Errorf(api.ErrConflict, "set this node up first: pairing needs its node name")
	}
	display, err := newCode()
	if err != nil {
		p.mu.Unlock()
		return api.PairingCode{}, err
	}
	code, _ := normalizeCode(display)
	p.code = &pairingCode{code: code, display: display, expires: p.opts.Now().Add(CodeLifetime).Round(time.Second), triesLeft: CodeTries}
	ctx := p.runCtx
	p.mu.Unlock()
	if ctx == nil {
		return api.PairingCode{}, api.Errorf(api.ErrConflict, "the peer link is not running yet")
	}
	p.reconcile(ctx)
	p.event("peer.pairing", "pairing code made (valid 10 minutes, 5 tries)", nil)
	return p.Pairing()
}

// Pairing is the active pairing code.
func (p *Peer) Pairing() (api.PairingCode, error) {
	p.mu.Lock()
	c := p.code
	port := config.DefaultPeerPort
	if p.cfg != nil {
		port = p.cfg.Node.PeerPort
	}
	listening := p.ln != nil
	p.mu.Unlock()
	if c == nil || !c.usable(p.opts.Now()) {
		return api.PairingCode{}, api.Errorf(api.ErrNotFound, "no pairing code is active: make one with `halbctl pair show`")
	}
	if !listening {
		return api.PairingCode{}, api.Errorf(api.ErrConflict, "the peer port %d cannot be opened (see the log)", port)
	}
	addrs := p.opts.Addresses()
	if addrs == nil {
		addrs = []string{}
	}
	return api.PairingCode{Code: c.display, Expires: c.expires, TriesLeft: c.triesLeft, Fingerprint: p.id.Fingerprint, Port: port, Addresses: addrs}, nil
}

// CancelPairing ends the active pairing code.
func (p *Peer) CancelPairing() error {
	p.mu.Lock()
	c := p.code
	p.code = nil
	p.mu.Unlock()
	if c == nil {
		return api.Errorf(api.ErrNotFound, "no pairing code is active")
	}
	p.wake()
	p.event("peer.pairing_cancelled", "pairing code cancelled", nil)
	return nil
}

// takeTry counts a try of the active code and returns it, or why there is
// none.
func (p *Peer) takeTry() (*pairingCode, int, string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	self := ""
	if p.cfg != nil {
		self = p.cfg.Node.Name
	}
	c := p.code
	if c == nil || !c.usable(p.opts.Now()) {
		return nil, 0, self, fmt.Sprintf("no pairing code is active on %s: run `halbctl pair show` there (or its console's pair action)", self)
	}
	c.triesLeft--
	left := c.triesLeft
	cp := *c
	return &cp, left, self, ""
}

// servePairing is the shower's side of a pairing exchange on c.
func (p *Peer) servePairing(ctx context.Context, c *tls.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(pairTimeout))
	from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	st := c.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return
	}
	theirFP := Fingerprint(st.PeerCertificates[0].Raw)
	var hello pairHello
	if err := readFrame(c, &hello); err != nil {
		p.log.Info("pairing attempt broke off", "from", from, "err", err)
		return
	}
	refuse := func(msg string) { writeFrame(c, pairReply{Error: msg}) }
	if !config.ValidNodeName(hello.Name) || hello.Port < 1 || hello.Port > 65535 || len(hello.Sid) != 16 {
		refuse("malformed hello")
		return
	}
	code, left, self, why := p.takeTry()
	if code == nil {
		refuse(why)
		return
	}
	// The port stays open until this exchange ends, even once the code
	// is used up below and before the peer is in the config.
	p.mu.Lock()
	p.pairing++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.pairing--
		p.mu.Unlock()
		p.wake()
	}()
	if hello.Name == self {
		refuse(fmt.Sprintf("both nodes are called %s: give each its own node name", self))
		return
	}
	ci, err := channelID(c)
	if err != nil {
		refuse("no channel binding")
		return
	}
	adB := associatedData(p.id.Fingerprint, self)
	adA := associatedData(theirFP, hello.Name)
	sess, yb, err := cpace.Start(cpace.Responder, []byte(code.code), ci, hello.Sid, adB, rand.Reader)
	if err != nil {
		refuse("internal error")
		return
	}
	isk, err := sess.Finish(hello.Share, adA)
	if err != nil {
		refuse("malformed share")
		p.wrongTry(from, hello.Name, left)
		return
	}
	if err := writeFrame(c, pairReply{Name: self, Share: yb, Tag: cpace.ConfirmationTag(isk, hello.Sid, yb, adB), TriesLeft: left}); err != nil {
		p.wrongTry(from, hello.Name, left)
		return
	}
	var conf pairConfirm
	if err := readFrame(c, &conf); err != nil || !hmac.Equal(conf.Tag, cpace.ConfirmationTag(isk, hello.Sid, hello.Share, adA)) {
		// The joiner found our tag wrong and hung up, or sent a wrong
		// one: a wrong code, or a relay in the middle.
		p.wrongTry(from, hello.Name, left)
		if err == nil {
			writeFrame(c, pairDone{Error: "key confirmation failed: wrong code, or something between the nodes re-terminates TLS"})
		}
		return
	}
	// Paired: the code is used up; pin the joiner.
	p.mu.Lock()
	p.code = nil
	p.mu.Unlock()
	pc := config.Peer{Name: hello.Name, Address: from, Port: hello.Port, Fingerprint: theirFP}
	_, err = p.opts.Change(func(cfg *config.Config, raw []byte, _ int) ([]byte, string, string, error) {
		if cfg == nil {
			return nil, "", "", errors.New("this node is not set up")
		}
		out, err := editRaw(raw, func(c *config.Config) { setPeer(c, pc) })
		return out, api.SourcePairing, "paired with " + hello.Name, err
	})
	if err != nil {
		writeFrame(c, pairDone{Error: fmt.Sprintf("%s could not add the peer: %v", self, err)})
		p.log.Error("pairing: peer not added", "peer", hello.Name, "err", err)
		return
	}
	cfg, raw := p.opts.Running()
	o, ok := p.runningOffer(cfg, raw)
	if !ok {
		writeFrame(c, pairDone{Error: "the config changed during pairing: join again"})
		return
	}
	writeFrame(c, pairDone{Offer: &o})
	p.event("peer.paired", fmt.Sprintf("paired with %s (%s, %s)", hello.Name, from, theirFP), map[string]string{"peer": hello.Name, "fingerprint": theirFP})
	p.wake()
}

// wrongTry logs a failed pairing try and ends the code after the last.
func (p *Peer) wrongTry(from, name string, left int) {
	p.log.Warn("pairing refused: wrong code or a relay in the middle", "from", from, "name", name, "tries_left", left)
	p.opts.Events("peer.pairing_failed", fmt.Sprintf("pairing attempt from %s (%s) failed: %d tries left", from, name, left), map[string]any{"from": from, "tries_left": left})
	if left <= 0 {
		p.mu.Lock()
		p.code = nil
		p.mu.Unlock()
		p.event("peer.pairing_dead", fmt.Sprintf("pairing code ended after %d wrong tries", CodeTries), nil)
		p.wake()
	}
}

// Join pairs this node with the node at req.Address that shows req.Code,
// and takes that node's cluster parts (this node keeps its own node parts).
func (p *Peer) Join(ctx context.Context, req api.JoinRequest) (api.JoinResult, error) {
	self := p.selfName()
	if self == "" {
		return api.JoinResult{}, api.Errorf(api.ErrConflict, "set this node up first: pairing needs its node name")
	}
	code, err := normalizeCode(req.Code)
	if err != nil {
		return api.JoinResult{}, api.Errorf(api.ErrInvalid, "%v", err)
	}
	ip, err := netip.ParseAddr(req.Address)
	if err != nil {
		return api.JoinResult{}, api.Errorf(api.ErrInvalid, "address %q: want the other node's management IP address", req.Address)
	}
	port := req.Port
	if port == 0 {
		port = config.DefaultPeerPort
	}
	if port < 1 || port > 65535 {
		return api.JoinResult{}, api.Errorf(api.ErrInvalid, "port %d is out of range 1..65535", port)
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: p.clientTLS("", alpnPair)}
	unreachable := func(err error) error {
		return api.Errorf(api.ErrConflict, "cannot reach %s: %v (is a pairing code shown there, and port %d open?)", addr, err, port)
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return api.JoinResult{}, unreachable(err)
	}
	c := nc.(*tls.Conn)
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	st := c.ConnectionState()
	if st.NegotiatedProtocol != alpnPair {
		return api.JoinResult{}, api.Errorf(api.ErrConflict, "%s does not offer halb pairing", addr)
	}
	theirFP := Fingerprint(st.PeerCertificates[0].Raw)
	ci, err := channelID(c)
	if err != nil {
		return api.JoinResult{}, err
	}
	sid := make([]byte, 16)
	rand.Read(sid)
	adA := associatedData(p.id.Fingerprint, self)
	sess, ya, err := cpace.Start(cpace.Initiator, []byte(code), ci, sid, adA, rand.Reader)
	if err != nil {
		return api.JoinResult{}, err
	}
	p.mu.Lock()
	myPort := config.DefaultPeerPort
	if p.cfg != nil {
		myPort = p.cfg.Node.PeerPort
	}
	p.mu.Unlock()
	// A connection cut before the reply is a port closing as its code
	// ends (the last wrong try, the lifetime) while this one connected:
	// as unreachable as a refused connect.
	if err := writeFrame(c, pairHello{Name: self, Port: myPort, Sid: sid, Share: ya}); err != nil {
		return api.JoinResult{}, unreachable(err)
	}
	var rep pairReply
	if err := readFrame(c, &rep); err != nil {
		return api.JoinResult{}, unreachable(err)
	}
	if rep.Error != "" {
		return api.JoinResult{}, api.Errorf(api.ErrConflict, "pairing with %s refused: %s", addr, rep.Error)
	}
	adB := associatedData(theirFP, rep.Name)
	isk, err := sess.Finish(rep.Share, adB)
	if err != nil || !hmac.Equal(rep.Tag, cpace.ConfirmationTag(isk, sid, rep.Share, adB)) {
		return api.JoinResult{}, api.Errorf(api.ErrUnauthorized,
			"pairing with %s refused: the code is wrong, or something between the nodes re-terminates TLS (%d tries left on %s)", addr, rep.TriesLeft, rep.Name)
	}
	if err := writeFrame(c, pairConfirm{Tag: cpace.ConfirmationTag(isk, sid, ya, adA)}); err != nil {
		return api.JoinResult{}, fmt.Errorf("pairing with %s: %w", addr, err)
	}
	var done pairDone
	if err := readFrame(c, &done); err != nil {
		return api.JoinResult{}, fmt.Errorf("pairing with %s: %w", addr, err)
	}
	if done.Error != "" || done.Offer == nil {
		return api.JoinResult{}, api.Errorf(api.ErrConflict, "pairing with %s refused: %s", addr, done.Error)
	}
	return p.adopt(rep.Name, config.Peer{Name: rep.Name, Address: ip.String(), Port: port, Fingerprint: theirFP}, *done.Offer)
}

// adopt pins the peer just paired and takes its cluster parts. When they
// cannot be applied here, only the peer is added and this node's version
// is reset, so the link offers the peer's again (and reports why it is
// refused) instead of settling it as a conflict.
func (p *Peer) adopt(name string, pc config.Peer, o offer) (api.JoinResult, error) {
	res := api.JoinResult{Peer: name, Fingerprint: pc.Fingerprint, ConfigVersion: o.Version.String()}
	if _, err := config.Parse(name, o.Raw); err != nil {
		return res, fmt.Errorf("%s's config: %w", name, err)
	}
	what := fmt.Sprintf("paired with %s, took its config %s", name, o.Version)
	v, err := p.opts.Change(func(cfg *config.Config, raw []byte, _ int) ([]byte, string, string, error) {
		out, err := mergeRaw(raw, o.Raw, pc.Address, func(c *config.Config) { setPeer(c, pc) })
		if err != nil {
			return nil, "", "", err
		}
		exp := o.Version
		p.mu.Lock()
		p.expect = &exp
		p.mu.Unlock()
		return out, api.SourcePairing, what, nil
	})
	if err == nil {
		res.Version = v
		res.Message = fmt.Sprintf("paired with %s (%s); this node runs its config %s", name, pc.Fingerprint, o.Version)
		p.event("peer.paired", res.Message, map[string]string{"peer": name, "fingerprint": pc.Fingerprint})
		return res, nil
	}
	p.mu.Lock()
	p.expect = nil
	p.mu.Unlock()
	takeErr := err
	v, err = p.opts.Change(func(cfg *config.Config, raw []byte, _ int) ([]byte, string, string, error) {
		out, err := editRaw(raw, func(c *config.Config) { setPeer(c, pc) })
		reset := Version{}
		p.mu.Lock()
		p.expect = &reset
		p.mu.Unlock()
		return out, api.SourcePairing, "paired with " + name, err
	})
	if err != nil {
		p.mu.Lock()
		p.expect = nil
		p.mu.Unlock()
		return res, fmt.Errorf("paired with %s, but it could not be added to this node's config: %w", name, err)
	}
	res.Version = v
	res.Message = fmt.Sprintf("paired with %s, but its config %s cannot run here: %v", name, o.Version, takeErr)
	p.event("peer.paired", res.Message, map[string]string{"peer": name, "fingerprint": pc.Fingerprint})
	return res, nil
}
