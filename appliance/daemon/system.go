package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// errNoSystemActions answers a system action on a daemon started without
// -system-actions (a development machine, netlab).
var errNoSystemActions = api.Errorf(api.ErrNotEnabled, "system actions are not enabled on this node (halbd -system-actions)")

// systemctlTimeout bounds one run of systemctl (it queues the job and
// returns).
const systemctlTimeout = 30 * time.Second

// Reboot restarts the machine (systemctl reboot), when the daemon runs
// with SystemActions.
func (d *Daemon) Reboot() error {
	if !d.opts.SystemActions {
		return errNoSystemActions
	}
	return d.systemctl("reboot", "requested through the control API")
}

// Poweroff turns the machine off (systemctl poweroff), when the daemon
// runs with SystemActions.
func (d *Daemon) Poweroff() error {
	if !d.opts.SystemActions {
		return errNoSystemActions
	}
	return d.systemctl("poweroff", "requested through the control API")
}

// systemctl logs and publishes the action (system.reboot or
// system.poweroff), then runs Options.Systemctl with it.
func (d *Daemon) systemctl(action, why string) error {
	msg := action + ": " + why
	d.log.Warn(msg)
	d.publish("system."+action, msg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), systemctlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.opts.Systemctl, action).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", d.opts.Systemctl, action, err, strings.TrimSpace(string(out)))
		d.log.Error(action+" failed", "err", err)
		d.publish("system."+action+"_failed", err.Error(), nil)
	}
	return err
}

// FactoryReset removes everything halb keeps on this node (the config
// file and its previous copy, the config history, the console password,
// drained servers and maintenance: the whole state directory), leaves the
// daemon unconfigured (no VIPs, no listeners, no checks), and reboots.
// nodeName must be the running config's node name ("" while
// unconfigured): a wrong one is an error wrapping api.ErrInvalid and
// changes nothing. It works only with SystemActions.
func (d *Daemon) FactoryReset(nodeName string) error {
	if !d.opts.SystemActions {
		return errNoSystemActions
	}
	d.applyMu.Lock()
	d.drainMu.Lock()
	reset, err := d.factoryReset(nodeName)
	d.drainMu.Unlock()
	d.applyMu.Unlock()
	if !reset {
		return err
	}
	if rerr := d.systemctl("reboot", "after a factory reset"); rerr != nil {
		err = errors.Join(err, fmt.Errorf("factory reset done, but the reboot failed: %w", rerr))
	}
	return err
}

// factoryReset does FactoryReset's work but the reboot; reset says whether
// it went ahead (errors then are files it could not remove). Callers hold
// applyMu and drainMu.
func (d *Daemon) factoryReset(nodeName string) (reset bool, err error) {
	d.mu.Lock()
	name := ""
	if d.cfg != nil {
		name = d.cfg.Node.Name
	}
	d.mu.Unlock()
	if nodeName != name {
		if name == "" {
			return false, api.Errorf(api.ErrInvalid, "node_name %q: this node is unconfigured, confirm with node_name \"\"", nodeName)
		}
		return false, api.Errorf(api.ErrInvalid, "node_name %q is not this node's name: confirm with the node's name", nodeName)
	}
	d.log.Warn("factory reset: removing the config and every state file, then rebooting", "node", name)
	d.publish("system.factory_reset", "factory reset: removing the config and every state file, then rebooting", map[string]string{"node": name})

	// The running parts let go of everything first: VIPs (VRRP steps
	// down), listeners, checks; drains and maintenance end.
	drained := d.Drained()
	d.mu.Lock()
	d.cfg, d.raw, d.version, d.applied, d.lastErr = nil, nil, 0, time.Time{}, nil
	d.mu.Unlock()
	empty := &config.Config{}
	for _, c := range d.components {
		if err := c.Apply(empty); err != nil {
			d.log.Error("component did not let go of its config", "component", c.Name(), "err", err)
		}
	}
	for _, key := range drained {
		if b, s, ok := strings.Cut(key, "/"); ok {
			d.proxy.SetServerDrained(b, s, false)
		}
	}
	if d.Maintenance() {
		if d.vrrp != nil {
			d.vrrp.SetMaintenance(false)
		}
		d.bgp.SetMaintenance(false, false)
	}

	var errs []error
	remove := func(path string) {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
		}
	}
	cfgDir, cfgBase := filepath.Split(d.opts.ConfigPath)
	remove(d.opts.ConfigPath)
	remove(d.opts.ConfigPath + ".prev")
	tmps, _ := filepath.Glob(filepath.Join(cfgDir, "."+cfgBase+"*.tmp-*")) // left by a crash in config.Save
	for _, p := range tmps {
		remove(p)
	}
	ents, err := os.ReadDir(d.opts.StateDir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if p := filepath.Join(d.opts.StateDir, e.Name()); p != d.opts.SocketPath {
			remove(p)
		}
	}
	d.hist.forget()
	if err := d.pw.reset(); err != nil {
		errs = append(errs, err)
	}
	d.opts.Notify("STATUS=" + d.statusLine())
	if len(errs) > 0 {
		err := fmt.Errorf("factory reset: %w", errors.Join(errs...))
		d.log.Error("factory reset incomplete", "err", err)
		return true, err
	}
	d.log.Warn("factory reset done: unconfigured")
	return true, nil
}
