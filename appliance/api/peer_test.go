package api

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The peer requests of fakeDaemon: one pairing code, one peer "lb2".
func (f *fakeDaemon) StartPairing() (PairingCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code = &PairingCode{Code: "K7QM-4XRT-9C", Expires: time.Now().Add(10 * time.Minute), TriesLeft: 5, Port: 7900}
	return *f.code, nil
}

func (f *fakeDaemon) Pairing() (PairingCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == nil {
		return PairingCode{}, Errorf(ErrNotFound, "no pairing code is active")
	}
	return *f.code, nil
}

func (f *fakeDaemon) CancelPairing() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code = nil
	return nil
}

func (f *fakeDaemon) JoinPeer(ctx context.Context, req JoinRequest) (JoinResult, error) {
	if req.Code != "K7QM-4XRT-9C" {
		return JoinResult{}, Errorf(ErrUnauthorized, "pairing with %s refused: wrong code", req.Address)
	}
	return JoinResult{Peer: "lb1", ConfigVersion: "lb1:3", Version: 4}, nil
}

func (f *fakeDaemon) Unpair(name string) error {
	if name != "lb2" {
		return Errorf(ErrNotFound, "no peer %q", name)
	}
	return nil
}

func (f *fakeDaemon) ResolveConflict(keep string) (ApplyResult, error) {
	if keep != "mine" && keep != "theirs" {
		return ApplyResult{}, Errorf(ErrInvalid, "keep %q: want mine or theirs", keep)
	}
	return ApplyResult{Version: 7}, nil
}

func TestPeerRequests(t *testing.T) {
	_, c, _ := serve(t)
	ctx := context.Background()
	if _, err := c.Pairing(ctx); err == nil || !strings.Contains(err.Error(), "no pairing code") {
		t.Errorf("Pairing with none active: %v, want not found", err)
	}
	p, err := c.StartPairing(ctx)
	if err != nil || p.Code != "K7QM-4XRT-9C" || p.TriesLeft != 5 {
		t.Fatalf("StartPairing = %+v, %v", p, err)
	}
	if q, err := c.Pairing(ctx); err != nil || q.Code != p.Code {
		t.Errorf("Pairing = %+v, %v", q, err)
	}
	if err := c.CancelPairing(ctx); err != nil {
		t.Error(err)
	}
	if _, err := c.JoinPeer(ctx, "10.0.0.1", 0, "WRONG"); err == nil || !strings.Contains(err.Error(), "wrong code") {
		t.Errorf("JoinPeer wrong code: %v", err)
	}
	if r, err := c.JoinPeer(ctx, "10.0.0.1", 0, "K7QM-4XRT-9C"); err != nil || r.Peer != "lb1" {
		t.Errorf("JoinPeer = %+v, %v", r, err)
	}
	if err := c.Unpair(ctx, "lb9"); err == nil || !strings.Contains(err.Error(), `no peer "lb9"`) {
		t.Errorf("Unpair lb9: %v", err)
	}
	if err := c.Unpair(ctx, "lb2"); err != nil {
		t.Error(err)
	}
	if _, err := c.ResolveConflict(ctx, "both"); err == nil || !strings.Contains(err.Error(), "want mine or theirs") {
		t.Errorf("ResolveConflict both: %v", err)
	}
	if r, err := c.ResolveConflict(ctx, "mine"); err != nil || r.Version != 7 {
		t.Errorf("ResolveConflict mine = %+v, %v", r, err)
	}
}
