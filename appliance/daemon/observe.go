package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/logs"
	"halb/appliance/metrics"
	"halb/appliance/proxy"
	"halb/appliance/timesync"
	"halb/appliance/vrrp"
)

// observePart is the observe component: the listener of /metrics and
// /stats (metrics.Server) and the log targets (logs.Manager, which the
// daemon's logger and the proxy's access records feed from the start).
// Both take what can be refused in Prepare — a listen address in use, a
// log file that cannot be opened — so such a config changes nothing.
type observePart struct {
	d    *Daemon
	srv  *metrics.Server
	logs *logs.Manager

	mu      sync.Mutex
	running config.Observe // what the listener and the targets run
	vips    []netip.Addr
}

func newObservePart(d *Daemon, lm *logs.Manager) *observePart {
	o := &observePart{d: d, logs: lm}
	o.srv = metrics.New(d.metricsSnapshot, d.log)
	return o
}

func (o *observePart) Name() string { return "observe" }

// Run serves the listener until ctx ends. The log targets outlive it: the
// daemon closes them last, after its final lines.
func (o *observePart) Run(ctx context.Context) error { return o.srv.Run(ctx) }

// Prepare opens what cfg's observe section needs: the listener (bound
// before the old one is let go) and the log targets.
func (o *observePart) Prepare(cfg *config.Config) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	vips := metrics.VIPs(cfg)
	if err := o.srv.Apply(cfg.Observe, vips); err != nil {
		return err
	}
	if err := o.logs.Apply(cfg.Observe.Logs); err != nil {
		if rerr := o.srv.Apply(o.running, o.vips); rerr != nil {
			o.d.log.Error("observe listener not restored", "err", rerr)
		}
		return err
	}
	return nil
}

// Abort goes back to the running observe section.
func (o *observePart) Abort() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.srv.Apply(o.running, o.vips); err != nil {
		o.d.log.Error("observe listener not restored", "err", err)
	}
	if err := o.logs.Apply(o.running.Logs); err != nil {
		o.d.log.Error("log targets not restored", "err", err)
	}
}

// Apply makes the prepared section the running one.
func (o *observePart) Apply(cfg *config.Config) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.running, o.vips = cfg.Observe, metrics.VIPs(cfg)
	o.logs.SetHostname(cfg.Node.Name)
	return nil
}

// ObserveStatus is status.observe: the listener and the log targets.
type ObserveStatus struct {
	Listener metrics.Status      `json:"listener"`
	Logs     []logs.TargetStatus `json:"logs"`
}

func (o *observePart) Status() any {
	return ObserveStatus{Listener: o.srv.Status(), Logs: o.logs.Status()}
}

// metricsSnapshot is what /metrics and /stats show: every component's
// status, taken at once.
func (d *Daemon) metricsSnapshot() metrics.Snapshot {
	d.mu.Lock()
	st := metrics.Snapshot{Version: d.opts.Version, Started: d.started}
	if d.cfg != nil {
		st.Node = d.cfg.Node.Name
	}
	d.mu.Unlock()
	st.Maintenance = d.Maintenance()
	st.Services, _ = d.proxy.Status().([]proxy.ServiceStatus)
	st.Health, _ = d.health.Status().([]health.BackendHealth)
	if d.vrrp != nil {
		st.VRRP, _ = d.vrrp.Status().([]vrrp.InstanceStatus)
	}
	if t, ok := d.clockPart.Status().(timesync.Status); ok {
		st.Time = &t
	}
	if d.peer != nil {
		if p, ok := d.peer.Status().(api.PeerStatus); ok {
			st.Peer = &p
		}
	}
	st.BGP, _ = d.bgp.Status().(*api.BGPStatus)
	for _, t := range d.logOut.Status() {
		st.Logs = append(st.Logs, metrics.LogTarget{Name: t.Name, To: t.To, Lines: t.Written, Dropped: t.Dropped, Errors: t.WriteErrors})
	}
	return st
}

// newLogOutput makes the log targets' manager (none until a config names
// some) and the daemon's logger that feeds it: records go to base (the
// journal or stderr, and the ring of GET /v1/logs) and to the targets
// taking the daemon stream.
func newLogOutput(base slog.Handler) (*logs.Manager, *slog.Logger) {
	lm, err := logs.New(nil, logs.Options{Logger: slog.New(base)})
	if err != nil { // no targets: nothing can fail
		panic(err)
	}
	return lm, slog.New(lm.Handler(base))
}
