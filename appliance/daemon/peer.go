package daemon

import (
	"context"

	"halb/appliance/api"
)

// peerPart is what the daemon asks of the peer component (appliance/peer).
type peerPart interface {
	Component
	StartPairing() (api.PairingCode, error)
	Pairing() (api.PairingCode, error)
	CancelPairing() error
	Join(ctx context.Context, req api.JoinRequest) (api.JoinResult, error)
	Unpair(name string) error
	Resolve(keep string) (api.ApplyResult, error)
}

// errNoPeer answers the peer requests while the daemon has no peer
// component (tests that build a daemon without one).
var errNoPeer = api.Errorf(api.ErrNotEnabled, "the peer link is not running in this daemon")

// StartPairing makes a new pairing code (api.PeerDaemon).
func (d *Daemon) StartPairing() (api.PairingCode, error) {
	if d.peer == nil {
		return api.PairingCode{}, errNoPeer
	}
	return d.peer.StartPairing()
}

// Pairing returns the active pairing code.
func (d *Daemon) Pairing() (api.PairingCode, error) {
	if d.peer == nil {
		return api.PairingCode{}, errNoPeer
	}
	return d.peer.Pairing()
}

// CancelPairing ends the active pairing code.
func (d *Daemon) CancelPairing() error {
	if d.peer == nil {
		return errNoPeer
	}
	return d.peer.CancelPairing()
}

// JoinPeer pairs this node with the node that shows req.Code.
func (d *Daemon) JoinPeer(ctx context.Context, req api.JoinRequest) (api.JoinResult, error) {
	if d.peer == nil {
		return api.JoinResult{}, errNoPeer
	}
	return d.peer.Join(ctx, req)
}

// Unpair removes a peer.
func (d *Daemon) Unpair(name string) error {
	if d.peer == nil {
		return errNoPeer
	}
	return d.peer.Unpair(name)
}

// ResolveConflict settles the reported conflict.
func (d *Daemon) ResolveConflict(keep string) (api.ApplyResult, error) {
	if d.peer == nil {
		return api.ApplyResult{}, errNoPeer
	}
	return d.peer.Resolve(keep)
}
