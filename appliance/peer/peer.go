// Package peer keeps the nodes of a halb cluster in step: it pairs two
// nodes with a one-time code (CPace over the pairing connection's TLS
// channel, appliance/peer/cpace), then talks to each paired node over
// mutual TLS 1.3 with the pinned certificates only, replicates the cluster
// parts of the config both ways (version vectors; changes made apart are
// detected and settled by one rule on both nodes, the loser kept in the
// history), and exchanges state: VRRP roles, service health, config
// version, and the clock skew measured with four timestamps.
//
// docs/peer.md describes the protocol and its guarantees.
package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs"
	"halb/appliance/config"
	"halb/appliance/proxy"
)

// Options configure a Peer.
type Options struct {
	// StateDir holds the identity and the sync state (the daemon's state
	// directory's peer/).
	StateDir string
	Logger   *slog.Logger
	// Events puts an event on the daemon's stream.
	Events func(typ, msg string, data any)
	// Change applies a config under the daemon's apply lock: fn sees the
	// running config (nil, nil when unconfigured) and its history version,
	// and returns the config to apply (nil: apply nothing), its source and
	// what prefixes its history summary. Change returns the history
	// version applied (0 when fn applied nothing).
	Change func(fn ChangeFunc) (int, error)
	// Running is the config in force and its bytes (nil while
	// unconfigured).
	Running func() (*config.Config, []byte)
	// Record keeps raw in the config history without applying it (a
	// conflict's loser) and returns its version there.
	Record func(source, summary string, raw []byte) (int, error)
	// Rollback applies version v of the history again.
	Rollback func(v int) (api.ApplyResult, error)
	// Local is this node's state as the peers see it.
	Local func() LocalState
	// PeerMaster hears, on every exchange, that peer pc is MASTER of a
	// VRRP instance with the effective priority prio (the daemon feeds
	// it to VRRP as an advert that came over the peer link).
	PeerMaster func(pc config.Peer, instance string, prio int)
	// StickEntries lists this node's source-persistence entries;
	// ImportStick takes a peer's.
	StickEntries func() []proxy.StickEntry
	ImportStick  func([]proxy.StickEntry) int
	// TicketKeys lists this node's TLS session ticket keys for the peer;
	// MergeTicketKeys takes the peer's. nil: not shared.
	TicketKeys      func() []proxy.TicketKey
	MergeTicketKeys func([]proxy.TicketKey)
	// Certs is the certificate store shared with the peer (nil: not
	// shared); CertInUse says whether the running config uses a stored
	// certificate (a peer's removal of it is refused then); CertsChanged
	// is called after the peer's certificates were stored.
	Certs        *certs.Store
	CertInUse    func(name string) bool
	CertsChanged func()
	// Addresses are this node's management addresses.
	Addresses func() []string
	// Now is the clock; tests shift it. Default: time.Now.
	Now func() time.Time
	// ListenHost is the host the peer link listens on. Default: all
	// addresses.
	ListenHost string
}

// ChangeFunc decides, under the daemon's apply lock, what config to apply.
type ChangeFunc func(cfg *config.Config, raw []byte, version int) (out []byte, source, what string, err error)

// LocalState is what a node tells its peers about itself.
type LocalState struct {
	// Roles are the VRRP instances' states; Priorities their effective
	// priorities.
	Roles      map[string]string `json:"roles"`
	Priorities map[string]int    `json:"priorities"`
	// Services: each service has its min_healthy servers up.
	Services map[string]bool `json:"services"`
	// ViaPeerLink lists the instances that hear no adverts on their
	// link and take them from the peer link.
	ViaPeerLink []string `json:"via_peer_link,omitempty"`
}

// Timing of the link.
const (
	// exchangeEvery is how often a node exchanges state with each peer.
	exchangeEvery = time.Second
	// reachableFor is how long a peer counts as reachable after the last
	// exchange that worked.
	reachableFor = 3 * time.Second
	// requestTimeout bounds one request on the link.
	requestTimeout = 2 * time.Second
	// CodeLifetime is how long a pairing code is valid; CodeTries how
	// many wrong tries kill it.
	CodeLifetime = 10 * time.Minute
	CodeTries    = 5
)

// syncState is what the peer component keeps in its state directory.
type syncState struct {
	Version  Version       `json:"version"`
	Conflict *api.Conflict `json:"conflict,omitempty"`
}

// Peer is the peer component.
type Peer struct {
	opts Options
	log  *slog.Logger
	id   *Identity

	mu  sync.Mutex
	cfg *config.Config
	// cfgDigest is cfg's ClusterDigest (a third of a second for 10 000
	// servers: computed once per config).
	cfgDigest string
	st        syncState
	// expect is the version of a config being applied from a peer (set
	// under the daemon's apply lock, taken by Apply).
	expect *Version
	code   *pairingCode
	// pairing counts the pairing exchanges under way: the peer port
	// stays open for them after their code is used up and before the
	// peer they pin is in the config (closing it would cut them off).
	pairing int
	links   map[string]*link
	ln      net.Listener
	lnPort  int
	// kick wakes Run to reconcile the listener and the links.
	kick chan struct{}
	// wg holds the goroutines Run started; runCtx is Run's context.
	wg     sync.WaitGroup
	runCtx context.Context
}

// New loads (or makes) the node's identity and the sync state.
func New(opts Options) (*Peer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Events == nil {
		opts.Events = func(string, string, any) {}
	}
	if opts.Local == nil {
		opts.Local = func() LocalState { return LocalState{} }
	}
	if opts.PeerMaster == nil {
		opts.PeerMaster = func(config.Peer, string, int) {}
	}
	if opts.StickEntries == nil {
		opts.StickEntries = func() []proxy.StickEntry { return nil }
	}
	if opts.ImportStick == nil {
		opts.ImportStick = func([]proxy.StickEntry) int { return 0 }
	}
	if opts.Addresses == nil {
		opts.Addresses = func() []string { return nil }
	}
	id, err := LoadIdentity(opts.StateDir)
	if err != nil {
		return nil, err
	}
	p := &Peer{opts: opts, log: opts.Logger.With("component", "peer"), id: id, links: map[string]*link{}, kick: make(chan struct{}, 1)}
	if err := p.loadState(); err != nil {
		p.log.Error("peer sync state unreadable; starting from none (the peer's version will be taken or settled as a conflict)", "err", err)
	}
	return p, nil
}

// Name implements the daemon's Component.
func (p *Peer) Name() string { return "peer" }

// Fingerprint is this node's certificate's fingerprint.
func (p *Peer) Fingerprint() string { return p.id.Fingerprint }

func (p *Peer) stateFile() string { return filepath.Join(p.opts.StateDir, "sync.json") }

func (p *Peer) loadState() error {
	b, err := os.ReadFile(p.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &p.st)
}

// saveState writes the sync state; callers hold mu.
func (p *Peer) saveState() {
	b, _ := json.MarshalIndent(p.st, "", "  ")
	if err := config.WriteFile(p.stateFile(), b, 0o600); err != nil {
		p.log.Error("peer sync state not saved", "err", err)
	}
}

func (p *Peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Apply takes a config the daemon put in force. A change of the cluster
// parts that did not come from a peer is a change made on this node: its
// count in the version vector goes up and the change goes to every peer.
func (p *Peer) Apply(cfg *config.Config) error {
	digest := config.ClusterDigest(cfg)
	local := false
	p.mu.Lock()
	p.cfg, p.cfgDigest = cfg, digest
	switch {
	case p.expect != nil:
		v := *p.expect
		p.expect = nil
		if v.Digest != digest && v.Digest != "" {
			p.log.Warn("config from the peer changed in the merge", "peer_digest", v.Digest, "digest", digest)
			v.Digest = digest
		}
		p.st.Version = v
		p.saveState()
	case digest != p.st.Version.Digest:
		local = true
		self := cfg.Node.Name
		p.st.Version = Version{Vector: p.st.Version.Vector.Bump(self), Origin: self, Time: p.opts.Now().UTC().Round(time.Millisecond), Digest: digest}
		p.saveState()
		p.log.Debug("cluster config changed on this node", "version", p.st.Version.String())
	}
	p.mu.Unlock()
	p.wake()
	if local {
		// A change made here goes to every peer at once; one taken from
		// a peer is not offered back (the state exchange shows it).
		for _, l := range p.linkList() {
			l.push()
		}
	}
	return nil
}

func (p *Peer) linkList() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*link, 0, len(p.links))
	for _, l := range p.links {
		out = append(out, l)
	}
	return out
}

// Run keeps the listener open while it is wanted and a link running to
// every paired peer, until ctx ends.
func (p *Peer) Run(ctx context.Context) error {
	p.mu.Lock()
	p.runCtx = ctx
	p.mu.Unlock()
	defer p.wg.Wait()
	defer p.stopAll()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-tick.C:
		}
	}
}

// stopAll closes the listener and stops the links.
func (p *Peer) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for name, l := range p.links {
		l.stop()
		delete(p.links, name)
	}
}

// reconcile opens or closes the listener and starts or stops links to
// match the running config and the pairing code.
func (p *Peer) reconcile(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.code != nil && !p.code.usable(p.opts.Now()) {
		p.log.Info("pairing code ended", "why", p.code.endReason(p.opts.Now()))
		p.code = nil
	}
	var peers []config.Peer
	port := config.DefaultPeerPort
	if p.cfg != nil {
		peers, port = p.cfg.Peers, p.cfg.Node.PeerPort
	}
	paired := slices.ContainsFunc(peers, func(x config.Peer) bool { return x.Fingerprint != "" })
	want := p.code != nil || paired || p.pairing > 0
	if p.ln != nil && (!want || p.lnPort != port) {
		p.ln.Close()
		p.ln = nil
		p.log.Info("peer link closed", "port", p.lnPort)
	}
	if want && p.ln == nil {
		ln, err := p.listen(ctx, port)
		if err != nil {
			p.log.Error("peer link cannot listen", "port", port, "err", err)
		} else {
			p.ln, p.lnPort = ln, port
			p.log.Info("peer link listening", "addr", ln.Addr().String())
		}
	}
	// Links: one per paired peer, restarted when its entry changes.
	for name, l := range p.links {
		i := slices.IndexFunc(peers, func(x config.Peer) bool { return x.Name == name })
		if i < 0 || peers[i] != l.peer {
			l.stop()
			delete(p.links, name)
		}
	}
	for _, pc := range peers {
		if pc.Fingerprint == "" || p.links[pc.Name] != nil {
			continue
		}
		l := p.newLink(pc)
		p.links[pc.Name] = l
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run(ctx)
		}()
	}
}

// listenAddr is host:port of the peer link.
func (p *Peer) listenAddr(port int) string {
	return net.JoinHostPort(p.opts.ListenHost, strconv.Itoa(port))
}

// Status is status.peer.
func (p *Peer) Status() any { return p.status() }

func (p *Peer) status() api.PeerStatus {
	now := p.opts.Now()
	p.mu.Lock()
	s := api.PeerStatus{Fingerprint: p.id.Fingerprint, ConfigVersion: p.st.Version.Vector.String(), Peers: []api.PeerState{}}
	if p.st.Version.Origin != "" {
		s.Origin = fmt.Sprintf("%s at %s", p.st.Version.Origin, p.st.Version.Time.Local().Format(time.DateTime))
	}
	if p.ln != nil {
		s.Listen = p.ln.Addr().String()
	}
	if p.code != nil && p.code.usable(now) {
		s.Pairing = &api.PairingState{Expires: p.code.expires, TriesLeft: p.code.triesLeft}
	}
	if p.st.Conflict != nil {
		c := *p.st.Conflict
		s.Conflict = &c
		s.Alarms = append(s.Alarms, "conflict: "+c.Message)
	}
	var peers []config.Peer
	if p.cfg != nil {
		peers = p.cfg.Peers
	}
	links := make(map[string]*link, len(p.links))
	for k, l := range p.links {
		links[k] = l
	}
	mine := p.st.Version
	p.mu.Unlock()
	local := p.opts.Local()
	for _, pc := range peers {
		ps := api.PeerState{Name: pc.Name, Address: pc.Address, Port: pc.Port, Fingerprint: pc.Fingerprint, Paired: pc.Fingerprint != ""}
		if l := links[pc.Name]; l != nil {
			l.fill(&ps, now, mine, local)
		}
		switch {
		case !ps.Paired:
			s.Alarms = append(s.Alarms, fmt.Sprintf("peer %s is not paired: run `halbctl pair show` on one node and `halbctl pair join` on the other", pc.Name))
		case !ps.Reachable:
			s.Alarms = append(s.Alarms, fmt.Sprintf("peer %s unreachable: %s", pc.Name, orNever(ps.Error, ps.LastSeen)))
		}
		if ps.SkewAlarm {
			s.Alarms = append(s.Alarms, fmt.Sprintf("clock of peer %s is %s off ours (more than time.max_offset)", pc.Name, ps.ClockSkew.Round(time.Millisecond)))
		}
		if len(ps.SplitBrain) > 0 {
			s.Alarms = append(s.Alarms, fmt.Sprintf("split brain: this node and %s are both MASTER of %v", pc.Name, ps.SplitBrain))
		}
		for _, name := range local.ViaPeerLink {
			s.Alarms = append(s.Alarms, fmt.Sprintf("vrrp %s hears no adverts from %s on its link (multicast blocked between the nodes?): roles are settled over the peer link", name, pc.Name))
		}
		for _, name := range ps.ViaPeerLink {
			s.Alarms = append(s.Alarms, fmt.Sprintf("%s's vrrp %s hears no adverts from this node on its link (multicast blocked between the nodes?): roles are settled over the peer link", pc.Name, name))
		}
		if ps.Sync != nil && ps.Sync.State == "rejected" {
			s.Alarms = append(s.Alarms, fmt.Sprintf("peer %s rejected config %s: %s", pc.Name, ps.Sync.Version, ps.Sync.Error))
		}
		s.Peers = append(s.Peers, ps)
	}
	return s
}

func orNever(err string, last time.Time) string {
	if err == "" {
		err = "no answer"
	}
	if last.IsZero() {
		return err + " (never reached)"
	}
	return fmt.Sprintf("%s (last seen %s)", err, last.Local().Format(time.TimeOnly))
}

// peerByFingerprint finds the paired peer with certificate fingerprint fp.
func (p *Peer) peerByFingerprint(fp string) (config.Peer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return config.Peer{}, false
	}
	for _, pc := range p.cfg.Peers {
		if pc.Fingerprint == fp {
			return pc, true
		}
	}
	return config.Peer{}, false
}

// pinned reports whether fp is a paired peer's fingerprint.
func (p *Peer) pinned(fp string) bool {
	_, ok := p.peerByFingerprint(fp)
	return ok
}

// selfName is this node's name ("" while unconfigured).
func (p *Peer) selfName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return ""
	}
	return p.cfg.Node.Name
}

func (p *Peer) event(typ, msg string, data any) {
	p.log.Info(msg, "event", typ)
	p.opts.Events(typ, msg, data)
}
