package peer

import (
	"context"
	"net/http"
	"time"

	"halb/appliance/certs"
)

// Certificates of the store travel over the link (mutual TLS with pinned
// certificates) so that a config naming one runs on both nodes: each state
// exchange carries the sender's manifest (names, sums, times; no secret),
// and a node pushes the pairs it has newer than the peer — and its
// removals — before it offers a config. The newer change of a name wins.

// certsMsg is a push of certificates and removals.
type certsMsg struct {
	Pairs   []certs.Pair  `json:"pairs,omitempty"`
	Removed []certs.Entry `json:"removed,omitempty"`
}

type certsReply struct {
	Stored  int           `json:"stored"`
	Removed int           `json:"removed"`
	Refused []certRefusal `json:"refused,omitempty"`
}

// certRefusal is a pushed change the receiver did not take: it is not
// pushed again until it changes.
type certRefusal struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// manifest is this node's certificate manifest (nil without a store).
func (p *Peer) manifest() []certs.Entry {
	if p.opts.Certs == nil {
		return nil
	}
	m, err := p.opts.Certs.Manifest(p.opts.Now())
	if err != nil {
		p.log.Warn("certificate store not readable for the peer", "err", err)
	}
	return m
}

// pushCerts sends the peer what this node has newer than the manifest it
// last heard from it.
func (l *link) pushCerts(ctx context.Context) {
	st := l.p.opts.Certs
	if st == nil {
		return
	}
	l.mu.Lock()
	remote, have := l.remote.Certs, l.have
	l.mu.Unlock()
	if !have {
		return
	}
	local := l.p.manifest()
	send, remove := certs.Newer(remote, local)
	l.mu.Lock()
	refused := l.certRefused
	l.mu.Unlock()
	skip := func(names []string) []string {
		var out []string
		for _, n := range names {
			for _, e := range local {
				if e.Name == n && refused[n] != e.Changed {
					out = append(out, n)
				}
			}
		}
		return out
	}
	send, remove = skip(send), skip(remove)
	if len(send) == 0 && len(remove) == 0 {
		return
	}
	pairs, err := st.Export(send)
	if err != nil {
		l.p.log.Warn("certificates not sent to the peer", "peer", l.peer.Name, "err", err)
		return
	}
	msg := certsMsg{Pairs: pairs}
	for _, e := range local {
		for _, n := range remove {
			if e.Name == n {
				msg.Removed = append(msg.Removed, e)
			}
		}
	}
	var rep certsReply
	if err := l.post(ctx, "/peer/v1/certs", msg, &rep); err != nil {
		l.p.log.Warn("certificates not sent to the peer", "peer", l.peer.Name, "err", err)
		return
	}
	// The peer's manifest changed: take it at the next exchange, not
	// pushing the same again meanwhile.
	l.mu.Lock()
	for _, p := range pairs {
		l.remote.Certs = append(l.remote.Certs, certs.Entry{Name: p.Name, Changed: p.Changed, Sum: "pushed"})
	}
	for _, e := range msg.Removed {
		l.remote.Certs = append(l.remote.Certs, e)
	}
	l.mu.Unlock()
	for _, r := range rep.Refused {
		l.p.log.Warn("the peer refused a certificate change", "peer", l.peer.Name, "certificate", r.Name, "err", r.Error)
		for _, e := range local {
			if e.Name == r.Name {
				l.mu.Lock()
				if l.certRefused == nil {
					l.certRefused = map[string]time.Time{}
				}
				l.certRefused[r.Name] = e.Changed
				l.mu.Unlock()
			}
		}
	}
	if rep.Stored+rep.Removed > 0 {
		l.p.log.Info("certificates sent to the peer", "peer", l.peer.Name, "stored", rep.Stored, "removed", rep.Removed)
	}
}

func (p *Peer) handleCerts(w http.ResponseWriter, r *http.Request) {
	pc, ok := p.peerOf(w, r)
	if !ok {
		return
	}
	var m certsMsg
	if !readJSON(w, r, &m) {
		return
	}
	st := p.opts.Certs
	if st == nil {
		http.Error(w, "no certificate store", http.StatusForbidden)
		return
	}
	var rep certsReply
	local := p.manifest()
	now := p.opts.Now()
	for _, pair := range m.Pairs {
		// Only what is newer than ours (a push may cross a change here).
		if fetch, _ := certs.Newer(local, []certs.Entry{{Name: pair.Name, Changed: pair.Changed, Sum: "new"}}); len(fetch) == 0 {
			continue
		}
		if err := st.Import(pair, now); err != nil {
			rep.Refused = append(rep.Refused, certRefusal{pair.Name, err.Error()})
			continue
		}
		rep.Stored++
	}
	for _, e := range m.Removed {
		if _, remove := certs.Newer(local, []certs.Entry{e}); len(remove) == 0 {
			continue
		}
		if p.opts.CertInUse != nil && p.opts.CertInUse(e.Name) {
			rep.Refused = append(rep.Refused, certRefusal{e.Name, "in use there; not removed"})
			continue
		}
		if err := st.RemoveAt(e.Name, e.Changed); err != nil {
			rep.Refused = append(rep.Refused, certRefusal{e.Name, err.Error()})
			continue
		}
		rep.Removed++
	}
	if rep.Stored+rep.Removed > 0 {
		p.event("peer.certs", "certificates from "+pc.Name+" stored", map[string]any{"peer": pc.Name, "stored": rep.Stored, "removed": rep.Removed})
		if p.opts.CertsChanged != nil {
			p.opts.CertsChanged()
		}
	}
	writeJSON(w, rep)
}
