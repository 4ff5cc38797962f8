package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// A confirmed apply ("commit confirmed" as on Junos, a monitor's "keep
// these settings?") puts a config in force that goes back to the one
// before it unless the operator confirms it in time. The console uses it
// for changes of the management network, over which the operator is often
// connected: a change that cuts them off undoes itself.
//
// While a change awaits confirmation no other change is taken (a second
// change on top would make "the one before" ambiguous): confirm it or let
// it revert first. The pending state is a file in the state directory, so
// a daemon restarted meanwhile still reverts (at once when the deadline
// passed while it was down).

// pendingFile holds the unconfirmed change.
func (d *Daemon) pendingFile() string { return filepath.Join(d.opts.StateDir, "pending-confirm.json") }

// MaxConfirmWithin bounds how long a change may wait for confirmation.
const MaxConfirmWithin = time.Hour

// ApplyConfirmed is ApplyFrom for a change that reverts to the running
// config unless Confirm is called within within. There must be a running
// config to go back to.
func (d *Daemon) ApplyConfirmed(source, name string, raw []byte, within time.Duration) (api.ApplyResult, error) {
	if within <= 0 || within > MaxConfirmWithin {
		return api.ApplyResult{}, api.Errorf(api.ErrInvalid, "confirm within %s: want more than 0 and at most %s", within, MaxConfirmWithin)
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if err := d.refuseWhilePending(); err != nil {
		return api.ApplyResult{}, err
	}
	d.mu.Lock()
	prev, loaded := d.version, d.cfg != nil
	d.mu.Unlock()
	if !loaded || prev == 0 {
		return api.ApplyResult{}, api.Errorf(api.ErrConflict, "no running config in the history to go back to: apply without confirmation")
	}
	if name == "" {
		name = "api"
	}
	res, err := d.apply(source, name, "", raw)
	if err != nil {
		return res, err
	}
	p := &api.PendingChange{Version: res.Version, RevertTo: prev, Deadline: time.Now().Add(within).Round(time.Millisecond)}
	if err := d.setPending(p); err != nil {
		// Without the file a restart would not revert: say so, keep the
		// timer.
		d.log.Error("pending change not recorded", "err", err)
	}
	res.ConfirmBy = p.Deadline
	msg := fmt.Sprintf("config version %d applied; it reverts to version %d at %s unless confirmed", p.Version, p.RevertTo, p.Deadline.Format(time.TimeOnly))
	d.log.Warn(msg)
	d.publish("config.pending", msg, p)
	return res, nil
}

// Confirm keeps the change that awaits confirmation. Nothing pending is an
// error wrapping api.ErrNotFound.
func (d *Daemon) Confirm() error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	p := d.pending
	d.mu.Unlock()
	if p == nil {
		return api.Errorf(api.ErrNotFound, "no change awaits confirmation")
	}
	if err := d.setPending(nil); err != nil {
		return err
	}
	msg := fmt.Sprintf("config version %d confirmed", p.Version)
	d.log.Info(msg)
	d.publish("config.confirmed", msg, p)
	return nil
}

// RevertNow puts back the config before the change that awaits
// confirmation, at once. Nothing pending wraps api.ErrNotFound.
func (d *Daemon) RevertNow() error {
	d.mu.Lock()
	p := d.pending
	d.mu.Unlock()
	if p == nil {
		return api.Errorf(api.ErrNotFound, "no change awaits confirmation")
	}
	return d.revert(p, "reverted by the operator")
}

// refuseWhilePending is the error for a change while another awaits
// confirmation. Callers hold applyMu.
func (d *Daemon) refuseWhilePending() error {
	d.mu.Lock()
	p := d.pending
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	return api.Errorf(api.ErrConflict, "config version %d awaits confirmation until %s: confirm it or let it revert to version %d first",
		p.Version, p.Deadline.Format(time.TimeOnly), p.RevertTo)
}

// setPending records p (nil: nothing pending) in memory and in the state
// directory, and (re)arms the revert timer.
func (d *Daemon) setPending(p *api.PendingChange) error {
	d.mu.Lock()
	d.pending = p
	if d.revertTimer != nil {
		d.revertTimer.Stop()
		d.revertTimer = nil
	}
	if p != nil {
		d.revertTimer = time.AfterFunc(time.Until(p.Deadline), func() {
			d.revert(p, fmt.Sprintf("not confirmed by %s", p.Deadline.Format(time.TimeOnly)))
		})
	}
	d.mu.Unlock()
	if p == nil {
		if err := os.Remove(d.pendingFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", d.pendingFile(), err)
		}
		return nil
	}
	b, _ := json.Marshal(p)
	return config.WriteFile(d.pendingFile(), append(b, '\n'), config.FileMode)
}

// revert puts p's previous config back when p is still the pending change;
// why says what made it revert.
func (d *Daemon) revert(p *api.PendingChange, why string) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	current := d.pending == p
	d.mu.Unlock()
	if !current {
		return api.Errorf(api.ErrNotFound, "the change was confirmed meanwhile") // or replaced
	}
	if err := d.setPending(nil); err != nil {
		d.log.Error("pending change", "err", err)
	}
	msg := fmt.Sprintf("config version %d %s: reverting to version %d", p.Version, why, p.RevertTo)
	d.log.Warn(msg)
	raw, path, err := d.hist.get(p.RevertTo)
	if err == nil {
		_, err = d.apply(api.SourceRevert, path, fmt.Sprintf("%s, back to %d", why, p.RevertTo), raw)
	}
	if err != nil {
		d.log.Error("revert failed; the unconfirmed config stays in force", "version", p.RevertTo, "err", err)
		d.publish("config.revert_failed", fmt.Sprintf("revert to version %d failed: %v", p.RevertTo, err), p)
		return fmt.Errorf("revert to version %d: %w", p.RevertTo, err)
	}
	d.publish("config.reverted", msg, p)
	return nil
}

// loadPending re-arms the revert of a change left unconfirmed by a previous
// run (at once when its deadline passed).
func (d *Daemon) loadPending() {
	b, err := os.ReadFile(d.pendingFile())
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var p api.PendingChange
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || p.RevertTo <= 0 {
		d.log.Error("unreadable pending change; removed", "file", d.pendingFile(), "err", err)
		os.Remove(d.pendingFile())
		return
	}
	d.log.Warn("a change from before the restart awaits confirmation", "version", p.Version, "revert_to", p.RevertTo, "deadline", p.Deadline)
	if err := d.setPending(&p); err != nil {
		d.log.Error("pending change", "err", err)
	}
}

// stopPending stops the revert timer at shutdown (the file stays for the
// next run).
func (d *Daemon) stopPending() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.revertTimer != nil {
		d.revertTimer.Stop()
		d.revertTimer = nil
	}
}
