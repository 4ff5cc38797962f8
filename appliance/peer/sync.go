package peer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// offer is a node's config as it offers it to a peer: the whole halb.yaml
// it runs, of which the receiver takes only the cluster parts.
type offer struct {
	From    string  `json:"from"`
	Version Version `json:"version"`
	Raw     []byte  `json:"raw"`
}

// Outcomes of an offer.
const (
	outApplied      = "applied"       // the receiver applied it
	outSame         = "same"          // the receiver runs the same cluster parts
	outKeep         = "keep"          // the receiver's is newer: Offer holds it
	outRejected     = "rejected"      // the receiver could not apply it: Error says why
	outConflictTake = "conflict-take" // made apart; the offer won and was applied, Offer is the receiver's loser
	outConflictKeep = "conflict-keep" // made apart; the receiver's won: Offer holds it
)

type offerReply struct {
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	Offer   *offer `json:"offer,omitempty"`
}

// retryRejected is how long a node waits before it offers again a change
// the peer rejected (it offers at once a newer one).
const retryRejected = 10 * time.Second

// runningOffer is this node's running config as an offer; ok is false
// while a change is being applied (the bytes and the version differ).
func (p *Peer) runningOffer(cfg *config.Config, raw []byte) (offer, bool) {
	p.mu.Lock()
	v := p.st.Version
	digest := p.cfgDigest
	if cfg != p.cfg && cfg != nil {
		digest = ""
	}
	p.mu.Unlock()
	if digest == "" && cfg != nil {
		digest = config.ClusterDigest(cfg)
	}
	if cfg == nil || raw == nil || digest != v.Digest {
		return offer{}, false
	}
	return offer{From: cfg.Node.Name, Version: v, Raw: raw}, true
}

// offer sends this node's config to the peer when the peer's is older or
// was made apart (or at once when forced, after a local change).
func (l *link) offer(ctx context.Context, force bool) {
	cfg, raw := l.p.opts.Running()
	o, ok := l.p.runningOffer(cfg, raw)
	if !ok {
		return
	}
	now := l.p.opts.Now()
	l.mu.Lock()
	remote, have := l.remote.Version, l.have
	recently := o.Version.Digest == l.offered && now.Sub(l.offeredAt) < retryRejected
	l.mu.Unlock()
	if !have && !force {
		return
	}
	if have {
		switch Decide(o.Version, remote) {
		case Same:
			// The peer runs it: an offer whose answer was lost (the
			// peer's apply outlasted requestTimeout) is done.
			l.settled(o.Version.String())
			return
		case Take:
			return // the peer has newer and offers it to us
		}
	}
	if recently && !force {
		return
	}
	l.mu.Lock()
	l.offered, l.offeredAt = o.Version.Digest, now
	l.mu.Unlock()
	l.setSync(o.Version.String(), "sending", "")
	var rep offerReply
	if err := l.post(ctx, "/peer/v1/offer", o, &rep); err != nil {
		l.failed(err)
		l.setSync(o.Version.String(), "sending", shortErr(err))
		return
	}
	switch rep.Outcome {
	case outApplied, outSame:
		l.setSync(o.Version.String(), "applied", "")
		if rep.Outcome == outApplied {
			l.p.event("peer.applied", fmt.Sprintf("config %s applied on %s", o.Version, l.peer.Name), map[string]string{"peer": l.peer.Name, "version": o.Version.String()})
		}
	case outRejected:
		l.setSync(o.Version.String(), "rejected", rep.Error)
		l.p.event("peer.rejected", fmt.Sprintf("%s rejected config %s: %s", l.peer.Name, o.Version, rep.Error), map[string]string{"peer": l.peer.Name, "version": o.Version.String(), "error": rep.Error})
	case outConflictTake:
		l.setSync(o.Version.String(), "applied", "")
		if rep.Offer != nil {
			l.p.lostOnPeer(l.peer, o.Version, *rep.Offer, cfg, raw)
		}
	case outKeep, outConflictKeep:
		if rep.Offer == nil {
			return
		}
		r := l.p.receive(l.peer, *rep.Offer)
		state := "conflict"
		if rep.Outcome == outKeep {
			state = "superseded"
		}
		l.setSync(o.Version.String(), state, r.Error)
	}
}

func (p *Peer) handleOffer(w http.ResponseWriter, r *http.Request) {
	pc, ok := p.peerOf(w, r)
	if !ok {
		return
	}
	var o offer
	if !readJSON(w, r, &o) {
		return
	}
	writeJSON(w, p.receive(pc, o))
}

// receive acts on a peer's offer under the daemon's apply lock: takes it,
// keeps this node's, or settles the two as a conflict.
func (p *Peer) receive(pc config.Peer, o offer) offerReply {
	var (
		rep      offerReply
		act      Action
		local    Version
		runningV int
	)
	_, err := p.opts.Change(func(cfg *config.Config, raw []byte, version int) ([]byte, string, string, error) {
		if cfg == nil {
			return nil, "", "", errors.New("this node is not set up")
		}
		runningV = version
		p.mu.Lock()
		local = p.st.Version
		p.mu.Unlock()
		if _, err := config.Parse(pc.Name, o.Raw); err != nil {
			return nil, "", "", err
		}
		mine := offer{From: cfg.Node.Name, Version: local, Raw: raw}
		act = Decide(local, o.Version)
		switch act {
		case Same:
			rep.Outcome = outSame
			p.mergeVector(o.Version.Vector)
			return nil, "", "", nil
		case Keep:
			rep = offerReply{Outcome: outKeep, Offer: &mine}
			return nil, "", "", nil
		case ConflictKeep:
			rep = offerReply{Outcome: outConflictKeep, Offer: &mine}
			return nil, "", "", nil
		}
		out, err := mergeRaw(raw, o.Raw, pc.Address, nil)
		if err != nil {
			return nil, "", "", err
		}
		exp := Version{Vector: local.Vector.Merge(o.Version.Vector), Origin: o.Version.Origin, Time: o.Version.Time, Digest: o.Version.Digest}
		p.mu.Lock()
		p.expect = &exp
		p.mu.Unlock()
		rep.Outcome = outApplied
		if act == ConflictTake {
			rep = offerReply{Outcome: outConflictTake, Offer: &mine}
		}
		return out, api.SourcePeer, fmt.Sprintf("from %s (%s)", pc.Name, o.Version), nil
	})
	if err != nil {
		p.mu.Lock()
		p.expect = nil
		p.mu.Unlock()
		p.event("peer.refused", fmt.Sprintf("config %s from %s not applied: %v", o.Version, pc.Name, err), map[string]string{"peer": pc.Name, "version": o.Version.String(), "error": err.Error()})
		return offerReply{Outcome: outRejected, Error: err.Error()}
	}
	switch act {
	case Take:
		p.clearConflict("superseded by " + o.Version.String())
		p.log.Info("config taken from the peer", "peer", pc.Name, "version", o.Version.String())
	case ConflictTake:
		p.setConflict(o.Version, local, runningV, true)
	case ConflictKeep:
		// Ours won; the offer is the loser, kept in our history too.
		cfg, raw := p.opts.Running()
		p.lostOnPeer(pc, local, o, cfg, raw)
	}
	return rep
}

// lostOnPeer records a conflict this node's version (winner) won over the
// peer's (loser): the loser goes into the history, the vectors merge.
func (p *Peer) lostOnPeer(pc config.Peer, winner Version, loser offer, cfg *config.Config, raw []byte) {
	hv := 0
	if out, err := mergeRaw(raw, loser.Raw, pc.Address, nil); err == nil {
		summary := fmt.Sprintf("conflict: %s's %s lost to %s (not applied)", pc.Name, loser.Version, winner)
		if v, err := p.opts.Record(api.SourceConflict, summary, out); err == nil {
			hv = v
		} else {
			p.log.Error("conflict loser not kept in the history", "err", err)
		}
	}
	p.mergeVector(loser.Version.Vector)
	p.setConflict(winner, loser.Version, hv, false)
}

// mergeVector merges v into the running version's vector.
func (p *Peer) mergeVector(v Vector) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.Version.Vector = p.st.Version.Vector.Merge(v)
	p.saveState()
}

// setConflict reports a conflict (once per pair of versions).
func (p *Peer) setConflict(winner, loser Version, loserHistory int, mine bool) {
	whose := "the peer's"
	if mine {
		whose = "this node's"
	}
	msg := fmt.Sprintf("changes made apart: %s's %s (%s) won over %s's %s (%s), %s; the loser is version %d of the history",
		winner.Origin, winner, winner.Time.Local().Format(time.DateTime), loser.Origin, loser, loser.Time.Local().Format(time.DateTime), whose+" change lost", loserHistory)
	c := &api.Conflict{At: p.opts.Now(), Winner: winner.String(), Loser: loser.String(), Message: msg, LoserHistory: loserHistory, Mine: mine}
	p.mu.Lock()
	if old := p.st.Conflict; old != nil && old.Winner == c.Winner && old.Loser == c.Loser {
		p.mu.Unlock()
		return
	}
	p.st.Conflict = c
	p.saveState()
	p.mu.Unlock()
	p.opts.Events("peer.conflict", msg, c)
	p.log.Warn(msg)
}

func (p *Peer) clearConflict(why string) {
	p.mu.Lock()
	c := p.st.Conflict
	p.st.Conflict = nil
	if c != nil {
		p.saveState()
	}
	p.mu.Unlock()
	if c != nil {
		p.event("peer.conflict_settled", "conflict settled: "+why, nil)
	}
}

// mergeRaw is the config this node runs with remote's cluster parts: the
// node parts of local (peerAddress is remote's management address), then
// edit on the result when given.
func mergeRaw(local, remote []byte, peerAddress string, edit func(*config.Config)) ([]byte, error) {
	lc, err := config.Decode(local)
	if err != nil {
		return nil, fmt.Errorf("running config: %w", err)
	}
	rc, err := config.Decode(remote)
	if err != nil {
		return nil, fmt.Errorf("peer's config: %w", err)
	}
	m := config.Merge(lc, rc, peerAddress)
	if edit != nil {
		edit(m)
	}
	return config.Marshal(m)
}

// editRaw applies edit to the config raw, as written.
func editRaw(raw []byte, edit func(*config.Config)) ([]byte, error) {
	c, err := config.Decode(raw)
	if err != nil {
		return nil, err
	}
	edit(c)
	return config.Marshal(c)
}

// setPeer adds pc to c's peers, replacing one of the same name or address.
func setPeer(c *config.Config, pc config.Peer) {
	c.Peers = slices.DeleteFunc(c.Peers, func(x config.Peer) bool { return x.Name == pc.Name || x.Address == pc.Address })
	if pc.Port == config.DefaultPeerPort {
		pc.Port = 0 // the default, left out
	}
	c.Peers = append(c.Peers, pc)
}

// Unpair removes the peer called name; the peer is told first, when it can
// be reached, and removes this node too.
func (p *Peer) Unpair(name string) error {
	p.mu.Lock()
	var pc *config.Peer
	if p.cfg != nil {
		if i := slices.IndexFunc(p.cfg.Peers, func(x config.Peer) bool { return x.Name == name }); i >= 0 {
			c := p.cfg.Peers[i]
			pc = &c
		}
	}
	l := p.links[name]
	p.mu.Unlock()
	if pc == nil {
		return api.Errorf(api.ErrNotFound, "no peer %q", name)
	}
	told := "not told (unreachable)"
	if l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		var ok struct{}
		if err := l.post(ctx, "/peer/v1/unpair", struct{}{}, &ok); err == nil {
			told = "told"
		} else {
			told = "not told: " + shortErr(err)
		}
		cancel()
	}
	_, err := p.removePeer(name, "unpaired "+name)
	if err != nil {
		return err
	}
	p.event("peer.unpaired", fmt.Sprintf("unpaired %s (%s)", name, told), map[string]string{"peer": name})
	return nil
}

// removePeer applies the running config without the peer called name.
func (p *Peer) removePeer(name, what string) (int, error) {
	return p.opts.Change(func(cfg *config.Config, raw []byte, _ int) ([]byte, string, string, error) {
		if cfg == nil || !slices.ContainsFunc(cfg.Peers, func(x config.Peer) bool { return x.Name == name }) {
			return nil, "", "", nil
		}
		out, err := editRaw(raw, func(c *config.Config) {
			c.Peers = slices.DeleteFunc(c.Peers, func(x config.Peer) bool { return x.Name == name })
		})
		return out, api.SourceUnpair, what, err
	})
}

func (p *Peer) handleUnpair(w http.ResponseWriter, r *http.Request) {
	pc, ok := p.peerOf(w, r)
	if !ok {
		return
	}
	writeJSON(w, struct{}{})
	// After the answer: removing the last peer closes this listener.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if _, err := p.removePeer(pc.Name, pc.Name+" unpaired this node"); err != nil {
			p.log.Error("peer's unpair not applied", "peer", pc.Name, "err", err)
			return
		}
		p.event("peer.unpaired", fmt.Sprintf("%s unpaired this node", pc.Name), map[string]string{"peer": pc.Name})
	}()
}

// Resolve settles the reported conflict from this node's side: "mine"
// keeps what this node had, "theirs" what the peer had. The side that won
// runs already, so choosing it only clears the conflict; choosing the side
// that lost applies the loser again from the history (a new change, which
// replicates to the peer).
func (p *Peer) Resolve(keep string) (api.ApplyResult, error) {
	p.mu.Lock()
	c := p.st.Conflict
	p.mu.Unlock()
	if keep != "mine" && keep != "theirs" {
		return api.ApplyResult{}, api.Errorf(api.ErrInvalid, "keep %q: want mine or theirs", keep)
	}
	if c == nil {
		return api.ApplyResult{}, api.Errorf(api.ErrNotFound, "no conflict to settle")
	}
	if (keep == "mine") != c.Mine {
		// The chosen side is the winner, which runs.
		p.clearConflict(fmt.Sprintf("kept %s", c.Winner))
		return api.ApplyResult{}, nil
	}
	if c.LoserHistory == 0 {
		return api.ApplyResult{}, api.Errorf(api.ErrNotFound, "the losing change is not in the history")
	}
	res, err := p.opts.Rollback(c.LoserHistory)
	if err != nil {
		return res, err
	}
	p.clearConflict(fmt.Sprintf("the losing change %s (history version %d) applied again", c.Loser, c.LoserHistory))
	return res, nil
}
