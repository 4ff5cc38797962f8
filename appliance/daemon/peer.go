package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/netcfg"
	"halb/appliance/peer"
	"halb/appliance/proxy"
	"halb/appliance/vrrp"
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

// newPeer makes the peer component; nil (logged) when its identity cannot
// be read or made.
func (d *Daemon) newPeer() peerPart {
	p, err := peer.New(peer.Options{
		StateDir: filepath.Join(d.opts.StateDir, "peer"),
		Logger:   d.log,
		Events:   d.publish,
		Change:   d.changeForPeer,
		Running:  d.Running,
		Record:   d.hist.record,
		Rollback: d.Rollback,
		Local:    d.peerLocal,
		PeerMaster: func(pc config.Peer, instance string, prio int) {
			if d.vrrp == nil {
				return
			}
			if a, err := netip.ParseAddr(pc.Address); err == nil {
				d.vrrp.PeerAdvert(instance, a, prio)
			}
		},
		Addresses:       d.managementAddresses,
		StickEntries:    d.proxy.StickEntries,
		ImportStick:     d.proxy.ImportStick,
		TicketKeys:      d.proxy.TicketKeys,
		MergeTicketKeys: d.proxy.MergeTicketKeys,
		Certs:           d.certStore(),
		CertInUse:       func(name string) bool { return len(d.certUsers(name)) > 0 },
		CertsChanged:    d.proxy.ReloadCerts,
	})
	if err != nil {
		d.log.Error("peer link disabled", "err", err)
		return nil
	}
	d.proxy.ObserveStick(p.QueueStick)
	return p
}

// stickFile keeps the source-persistence entries across a restart.
func (d *Daemon) stickFile() string { return filepath.Join(d.opts.StateDir, "stick.json") }

// saveStick writes the proxy's source-persistence entries to the state
// directory (at shutdown), so that clients keep their servers across a
// restart of halbd.
func (d *Daemon) saveStick() {
	es := d.proxy.StickEntries()
	if len(es) == 0 {
		os.Remove(d.stickFile())
		return
	}
	b, err := json.Marshal(es)
	if err == nil {
		err = config.WriteFile(d.stickFile(), b, 0o600)
	}
	if err != nil {
		d.log.Error("source persistence entries not saved", "err", err)
		return
	}
	d.log.Info("source persistence entries saved", "entries", len(es))
}

// loadStick has the proxy take the entries saved at the last shutdown
// (those of backends with source persistence that have not expired) once
// it runs the config.
func (d *Daemon) loadStick() {
	b, err := os.ReadFile(d.stickFile())
	if err != nil {
		return
	}
	var es []proxy.StickEntry
	if err := json.Unmarshal(b, &es); err != nil {
		d.log.Error("source persistence entries unreadable", "err", err)
		return
	}
	d.proxy.RestoreStick(es)
}

// changeForPeer applies what fn makes of the running config, under the
// apply lock, as a config from the peer component's source.
func (d *Daemon) changeForPeer(fn peer.ChangeFunc) (int, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	cfg, raw, version := d.cfg, d.raw, d.version
	d.mu.Unlock()
	out, source, what, err := fn(cfg, raw, version)
	if err != nil || out == nil {
		return 0, err
	}
	if err := d.refuseWhilePending(); err != nil {
		return 0, err
	}
	res, err := d.apply(source, source, what, out)
	return res.Version, err
}

// peerLocal is what this node tells its peers: VRRP roles and effective
// priorities, and each service's health.
func (d *Daemon) peerLocal() peer.LocalState {
	st := peer.LocalState{Roles: map[string]string{}, Priorities: map[string]int{}}
	if d.vrrp != nil {
		if ins, ok := d.vrrp.Status().([]vrrp.InstanceStatus); ok {
			for _, in := range ins {
				st.Roles[in.Name] = in.State.String()
				st.Priorities[in.Name] = in.EffectivePriority
				if in.ViaPeerLink {
					st.ViaPeerLink = append(st.ViaPeerLink, in.Name)
				}
			}
		}
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if cfg != nil {
		st.Services = d.serviceHealth(cfg)
	}
	return st
}

// managementAddresses lists the node's addresses outside loopback and the
// VIPs (which move with MASTER), for the person who types one into the
// other node.
func (d *Daemon) managementAddresses() []string {
	links, err := netcfg.Links()
	if err != nil {
		return nil
	}
	vips := map[netip.Addr]bool{}
	d.mu.Lock()
	if d.cfg != nil {
		for _, v := range d.cfg.VRRP {
			for _, s := range v.VIPs {
				if p, err := netip.ParsePrefix(s); err == nil {
					vips[p.Addr()] = true
				}
			}
		}
	}
	d.mu.Unlock()
	var out []string
	for _, l := range links {
		if l.Kind == "loopback" {
			continue
		}
		for _, a := range l.Addresses {
			if p, err := netip.ParsePrefix(a); err == nil && p.Addr().IsGlobalUnicast() && !vips[p.Addr()] {
				out = append(out, p.Addr().String())
			}
		}
	}
	return out
}
