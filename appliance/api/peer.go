package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// The peer requests of the control API (docs/api.md, docs/peer.md):
//
//	POST   /v1/peer/pairing   make a new pairing code (replacing any), valid 10 minutes
//	GET    /v1/peer/pairing   the active pairing code (404 when none)
//	DELETE /v1/peer/pairing   cancel it
//	POST   /v1/peer/join      pair with a node that shows a code ({"address", "port", "code"})
//	DELETE /v1/peer/{name}    unpair a peer (it is told, when it can be reached)
//	POST   /v1/peer/conflict  settle the reported conflict ({"keep": "mine"|"theirs"})

// Config sources of the peer component (HistoryEntry.Source).
const (
	SourcePeer     = "peer"     // a change made on the peer, replicated here
	SourcePairing  = "pairing"  // pairing: the joining node took the cluster parts, both added the peer
	SourceConflict = "conflict" // the losing side of a conflict, kept in the history (not applied)
	SourceUnpair   = "unpair"   // a peer removed
)

// PeerStatus is status.peer: this node's end of the peer link and what it
// knows of each peer.
type PeerStatus struct {
	// Listen is the peer link's listening address (":7900") while it is
	// open (a code is active or a peer is paired); empty when closed.
	Listen string `json:"listen,omitempty"`
	// Fingerprint is this node's certificate's: "sha256:" and hex.
	Fingerprint string `json:"fingerprint"`
	// Pairing is the active pairing code's state (never the code).
	Pairing *PairingState `json:"pairing,omitempty"`
	// ConfigVersion is the version of the running cluster parts, e.g.
	// "lb1:5 lb2:3" (each node's count of changes made on it); empty
	// before the first.
	ConfigVersion string `json:"config_version"`
	// Origin says where the running cluster parts were changed last,
	// e.g. "lb1:5 at 10:42:07".
	Origin string      `json:"origin,omitempty"`
	Peers  []PeerState `json:"peers"`
	// Conflict is the last conflict found on reconnect, until settled.
	Conflict *Conflict `json:"conflict,omitempty"`
	// Alarms are what needs an operator: peer unreachable, clock skew,
	// split brain, a change the peer rejected, a conflict.
	Alarms []string `json:"alarms,omitempty"`
}

// PairingState is an active pairing code's state.
type PairingState struct {
	Expires   time.Time `json:"expires"`
	TriesLeft int       `json:"tries_left"`
}

// PeerState is what a node knows of one peer.
type PeerState struct {
	Name        string `json:"name"`
	Address     string `json:"address"`
	Port        int    `json:"port"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Paired: the peer's certificate is pinned (peers[].fingerprint).
	Paired bool `json:"paired"`
	// Reachable: the last exchange over the peer link, at most 3 s ago,
	// worked.
	Reachable bool      `json:"reachable"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Error is why the last exchange failed.
	Error string `json:"error,omitempty"`
	// Roles are the peer's VRRP instances' states (MASTER, BACKUP, ...).
	Roles map[string]string `json:"roles,omitempty"`
	// Services are the peer's view of each service: healthy or not.
	Services map[string]bool `json:"services,omitempty"`
	// ConfigVersion is the peer's running cluster version; InSync: the
	// same as ours.
	ConfigVersion string `json:"config_version,omitempty"`
	InSync        bool   `json:"in_sync"`
	// ClockSkew is the peer's clock minus ours, measured over the peer
	// link with four timestamps as NTP does; SkewAlarm: beyond
	// time.max_offset.
	ClockSkew time.Duration `json:"clock_skew_ns"`
	SkewAlarm bool          `json:"skew_alarm,omitempty"`
	// Persistence says what the persistence sync (source stick entries)
	// sent and received, e.g. "120 sent, 80 received, 0 queued".
	Persistence string `json:"persistence,omitempty"`
	// Sync is the last change this node sent the peer.
	Sync *SyncState `json:"sync,omitempty"`
	// SplitBrain lists the VRRP instances both nodes are MASTER of.
	SplitBrain []string `json:"split_brain,omitempty"`
	// ViaPeerLink lists the peer's VRRP instances that hear no adverts on
	// their link and take them over the peer link.
	ViaPeerLink []string `json:"via_peer_link,omitempty"`
}

// SyncState is the fate of one change sent to a peer.
type SyncState struct {
	// Version is the change's cluster version, e.g. "lb1:6 lb2:3".
	Version string `json:"version"`
	// State is "sending" (not answered yet: the peer is down or the
	// change on its way), "applied" (the peer applied it), "rejected"
	// (the peer refused it: Error says why) or "conflict".
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// Conflict is a pair of changes made on both nodes while they could not
// talk, found when they did again. The winner runs on both; the loser is
// kept in both histories.
type Conflict struct {
	At      time.Time `json:"at"`
	Winner  string    `json:"winner"`
	Loser   string    `json:"loser"`
	Message string    `json:"message"`
	// LoserHistory is the loser's version in this node's config history
	// (halbctl config rollback N takes it back).
	LoserHistory int `json:"loser_history"`
	// Mine: the loser was made on this node.
	Mine bool `json:"mine"`
}

// PairingCode answers POST and GET /v1/peer/pairing.
type PairingCode struct {
	// Code is what the person types into the other node, e.g.
	// "K7QM-4XRT-9C".
	Code      string    `json:"code"`
	Expires   time.Time `json:"expires"`
	TriesLeft int       `json:"tries_left"`
	// Fingerprint is this node's certificate's, to compare with what the
	// joining node shows after pairing.
	Fingerprint string `json:"fingerprint"`
	// Port is the peer link's port; Addresses the node's management
	// addresses, for the person to type on the other node.
	Port      int      `json:"port"`
	Addresses []string `json:"addresses"`
}

// JoinRequest is the body of POST /v1/peer/join.
type JoinRequest struct {
	// Address is the node that shows the code (its management address).
	Address string `json:"address"`
	// Port is its peer port; 0: 7900.
	Port int    `json:"port,omitempty"`
	Code string `json:"code"`
}

// JoinResult answers POST /v1/peer/join.
type JoinResult struct {
	// Peer is the name of the node joined, Fingerprint its certificate's.
	Peer        string `json:"peer"`
	Fingerprint string `json:"fingerprint"`
	// ConfigVersion is the peer's cluster version this node took.
	ConfigVersion string `json:"config_version"`
	// Version is the history version of the config now running here.
	Version int    `json:"version"`
	Message string `json:"message"`
}

// ResolveRequest is the body of POST /v1/peer/conflict.
type ResolveRequest struct {
	// Keep is "mine" (what this node had) or "theirs" (what the peer
	// had). Choosing the winner, which runs, settles the conflict;
	// choosing the loser applies it again from the history, a new change
	// that replicates to the peer.
	Keep string `json:"keep"`
}

// StartPairing makes a new pairing code.
func (c *Client) StartPairing(ctx context.Context) (PairingCode, error) {
	var p PairingCode
	err := c.getJSON(ctx, http.MethodPost, "/v1/peer/pairing", nil, &p)
	return p, err
}

// Pairing returns the active pairing code (an error wrapping 404 when none).
func (c *Client) Pairing(ctx context.Context) (PairingCode, error) {
	var p PairingCode
	err := c.getJSON(ctx, http.MethodGet, "/v1/peer/pairing", nil, &p)
	return p, err
}

// CancelPairing ends the active pairing code.
func (c *Client) CancelPairing(ctx context.Context) error {
	return c.noContent(ctx, http.MethodDelete, "/v1/peer/pairing", nil)
}

// JoinPeer pairs this node with the node at address that shows code.
func (c *Client) JoinPeer(ctx context.Context, address string, port int, code string) (JoinResult, error) {
	b, _ := json.Marshal(JoinRequest{Address: address, Port: port, Code: code})
	var res JoinResult
	err := c.getJSON(ctx, http.MethodPost, "/v1/peer/join", b, &res)
	return res, err
}

// Unpair removes the peer called name.
func (c *Client) Unpair(ctx context.Context, name string) error {
	return c.noContent(ctx, http.MethodDelete, "/v1/peer/"+url.PathEscape(name), nil)
}

// ResolveConflict settles the reported conflict: keep "mine" or "theirs".
func (c *Client) ResolveConflict(ctx context.Context, keep string) (ApplyResult, error) {
	b, _ := json.Marshal(ResolveRequest{Keep: keep})
	var res ApplyResult
	err := c.getJSON(ctx, http.MethodPost, "/v1/peer/conflict", b, &res)
	return res, err
}

// PeerDaemon is what the peer requests ask of the daemon.
type PeerDaemon interface {
	StartPairing() (PairingCode, error)
	Pairing() (PairingCode, error)
	CancelPairing() error
	JoinPeer(ctx context.Context, req JoinRequest) (JoinResult, error)
	Unpair(name string) error
	ResolveConflict(keep string) (ApplyResult, error)
}

func (s *Server) peerRoutes() {
	s.mux.HandleFunc("POST /v1/peer/pairing", func(w http.ResponseWriter, r *http.Request) {
		p, err := s.d.StartPairing()
		writeResult(w, p, err)
	})
	s.mux.HandleFunc("GET /v1/peer/pairing", func(w http.ResponseWriter, r *http.Request) {
		p, err := s.d.Pairing()
		writeResult(w, p, err)
	})
	s.mux.HandleFunc("DELETE /v1/peer/pairing", func(w http.ResponseWriter, r *http.Request) {
		writeNoContent(w, s.d.CancelPairing())
	})
	s.mux.HandleFunc("POST /v1/peer/join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !decodeBody(w, r, &req, `{"address": "10.0.0.1", "code": "K7QM-4XRT-9C"}`) {
			return
		}
		res, err := s.d.JoinPeer(r.Context(), req)
		writeResult(w, res, err)
	})
	s.mux.HandleFunc("DELETE /v1/peer/{name}", func(w http.ResponseWriter, r *http.Request) {
		writeNoContent(w, s.d.Unpair(r.PathValue("name")))
	})
	s.mux.HandleFunc("POST /v1/peer/conflict", func(w http.ResponseWriter, r *http.Request) {
		var req ResolveRequest
		if !decodeBody(w, r, &req, `{"keep": "mine"|"theirs"}`) {
			return
		}
		res, err := s.d.ResolveConflict(req.Keep)
		writeApplied(w, res, err)
	})
}

// writeResult answers v, or err with the status its kind calls for.
func writeResult(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeNoContent answers 204, or err with the status its kind calls for.
func writeNoContent(w http.ResponseWriter, err error) {
	if err != nil {
		writeFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
