package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/config"
	"halb/appliance/netcfg"
	"halb/appliance/timesync"
)

// The management network (netcfg), the host's own files and the clock
// (timesync) as daemon components. Both run without a config too: an
// unconfigured appliance (halbd -appliance) takes DHCP on every wired link
// and sets its clock from the time servers DHCP names, so that a fresh box
// is reachable and shows its address on the console.

// networkPart runs netcfg, writes the host name and /etc/hosts (with
// node.manage_system) and hands the time servers DHCP names to the clock.
type networkPart struct {
	d   *Daemon
	sys netcfg.System

	mu  sync.Mutex
	m   *netcfg.Manager
	cfg *config.Config // the latest config; nil while unconfigured
	// wrote is what the host's files were last written from.
	wrote string
}

func newNetworkPart(d *Daemon) *networkPart {
	sys := d.opts.System
	if sys.HostsPath == "" {
		sys = netcfg.DefaultSystem()
	}
	if sys.SetHostname == nil {
		sys.SetHostname = func(name string) error {
			err := unix.Sethostname([]byte(name))
			if errors.Is(err, syscall.EPERM) {
				// The image's halbd has no CAP_SYS_ADMIN: halb-hostname.path
				// sets the host name from /etc/hostname when it changes.
				d.log.Debug("host name left to halb-hostname.path", "name", name)
				return nil
			}
			return err
		}
	}
	return &networkPart{d: d, sys: sys}
}

func (n *networkPart) Name() string { return "network" }

// manageSystem: halbd owns the host's network setup and files.
func (n *networkPart) manageSystem(cfg *config.Config) bool {
	if cfg == nil {
		return n.d.opts.Appliance
	}
	return cfg.Node.ManageSystem
}

func (n *networkPart) Run(ctx context.Context) error {
	n.mu.Lock()
	cfg := n.cfg
	var mg config.Management
	if cfg != nil {
		mg = cfg.Node.Management
	}
	manage := n.manageSystem(cfg)
	m, err := netcfg.New(mg, netcfg.Options{
		StateDir:     n.d.opts.StateDir,
		NetNS:        n.d.opts.NetNS,
		ResolvConf:   n.sys.ResolvPath,
		ManageSystem: manage,
		FirstBoot:    manage,
		Logger:       n.d.log,
		Events: func(kind, msg string) {
			n.d.publish("network."+kind, msg, nil)
			n.changed()
		},
	})
	if err != nil {
		n.mu.Unlock()
		return err
	}
	n.m = m
	n.mu.Unlock()
	n.changed()
	// Events come as the network changes, but a lease's address may reach
	// the status a moment after its event: look again every few seconds
	// (changed writes only when something it writes from changed).
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(recheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.changed()
			}
		}
	}()
	err = m.Run(ctx)
	<-done
	return err
}

// recheckEvery is how often the network part looks at netcfg's status
// besides its events.
const recheckEvery = 2 * time.Second

func (n *networkPart) Apply(cfg *config.Config) error {
	n.mu.Lock()
	n.cfg = cfg
	m := n.m
	n.mu.Unlock()
	var err error
	if m != nil {
		err = m.Apply(cfg.Node.Management)
	}
	n.changed()
	return err
}

func (n *networkPart) Status() any {
	n.mu.Lock()
	m := n.m
	n.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Status()
}

// status is netcfg's status; nil before Run.
func (n *networkPart) status() *netcfg.Status {
	n.mu.Lock()
	m := n.m
	n.mu.Unlock()
	if m == nil {
		return nil
	}
	st := m.Status()
	return &st
}

// changed follows a change of the config or of the network: the host's
// files (this node's management address may have changed) and the time
// servers DHCP names.
func (n *networkPart) changed() {
	st := n.status()
	if st == nil {
		return
	}
	if n.d.clockPart != nil {
		n.d.clockPart.setDHCPServers(st.NTP)
	}
	n.mu.Lock()
	cfg := n.cfg
	n.mu.Unlock()
	if cfg == nil || !cfg.Node.ManageSystem {
		return
	}
	self := selfAddress(cfg, st)
	if !self.IsValid() {
		self = netcfg.UnknownSelf // what /etc/hosts names this node at
	}
	key := fmt.Sprint(cfg.Node.Name, self, cfg.Peers)
	n.mu.Lock()
	same := key == n.wrote
	n.wrote = key
	n.mu.Unlock()
	if same {
		return
	}
	changed, err := n.sys.ApplyNames(cfg.Node.Name, self, cfg.Peers)
	switch {
	case err != nil:
		n.d.log.Error("host name and /etc/hosts", "err", err)
		n.d.publish("network.system_failed", err.Error(), nil)
		n.mu.Lock()
		n.wrote = "" // try again with the next change
		n.mu.Unlock()
	case changed:
		n.d.log.Info("host name and /etc/hosts written", "name", cfg.Node.Name, "address", self)
		n.d.publish("network.system", fmt.Sprintf("host name %s, /etc/hosts: %s %s and %d peer(s)", cfg.Node.Name, self, cfg.Node.Name, len(cfg.Peers)), nil)
	}
}

// selfAddress is this node's management address: the static one, else the
// leased one; invalid when none.
func selfAddress(cfg *config.Config, st *netcfg.Status) netip.Addr {
	if p, err := netip.ParsePrefix(cfg.Node.Management.Address); err == nil {
		return p.Addr()
	}
	for _, in := range st.Interfaces {
		if in.Lease == nil {
			continue
		}
		if p, err := netip.ParsePrefix(in.Lease.Address); err == nil {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// clockPart runs timesync on the config's time section (the defaults
// while unconfigured, with set_clock on the appliance).
type clockPart struct {
	d *Daemon

	mu   sync.Mutex
	m    *timesync.Manager
	cfg  config.Time
	dhcp []string
}

func newClockPart(d *Daemon) *clockPart {
	return &clockPart{d: d, cfg: withTimeDefaults(config.Time{SetClock: d.opts.Appliance})}
}

func (c *clockPart) Name() string { return "time" }

func (c *clockPart) Run(ctx context.Context) error {
	c.mu.Lock()
	m, err := timesync.New(c.cfg, timesync.Options{Logger: c.d.log,
		Events: func(kind, msg string) { c.d.publish("time."+kind, msg, nil) }})
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if len(c.dhcp) > 0 {
		m.SetDHCPServers(c.dhcp)
	}
	c.m = m
	c.mu.Unlock()
	return m.Run(ctx)
}

func (c *clockPart) Apply(cfg *config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = withTimeDefaults(cfg.Time)
	if c.m == nil {
		return nil
	}
	return c.m.Apply(c.cfg)
}

// withTimeDefaults fills the durations an unconfigured node's empty config
// (after a factory reset) leaves at zero: timesync refuses zero, and a Run
// that starts after such an Apply would fail and stop halbd.
func withTimeDefaults(t config.Time) config.Time {
	for _, f := range []struct {
		d   *config.Duration
		def time.Duration
	}{{&t.MaxOffset, config.DefaultMaxOffset}, {&t.StepThreshold, config.DefaultStepThreshold},
		{&t.MinPoll, config.DefaultMinPoll}, {&t.MaxPoll, config.DefaultMaxPoll}} {
		if *f.d == 0 {
			*f.d = config.Duration(f.def)
		}
	}
	return t
}

func (c *clockPart) Status() any {
	c.mu.Lock()
	m := c.m
	c.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Status()
}

func (c *clockPart) setDHCPServers(servers []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dhcp = servers
	if c.m != nil {
		c.m.SetDHCPServers(servers)
	}
}

// Test queries servers once (the management network and time tests).
func (c *clockPart) Test(ctx context.Context, servers []string) []timesync.ServerStatus {
	c.mu.Lock()
	m := c.m
	c.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Test(ctx, servers)
}
