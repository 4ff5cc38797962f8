// Package daemon wires halbd together: it owns the running config, starts
// the control API and every component, hands each component its part of a
// new config on reload, and shuts everything down in order.
//
// A reload (SIGHUP, or PUT /v1/config) validates the new config first; an
// invalid one is logged, reported in status and on the event stream, and the
// running config stays in force.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/netcfg"
	"halb/appliance/proxy"
	"halb/appliance/vrrp"
)

// Component is one part of the daemon (vrrp, proxy, health, ...).
type Component interface {
	// Name is the component's key in status: vrrp, services, backends,
	// time, peer or network.
	Name() string
	// Run works until ctx ends and returns after cleaning up.
	Run(ctx context.Context) error
	// Apply hands the component a new validated config (hot reload).
	Apply(cfg *config.Config) error
	// Status returns a JSON-encodable snapshot.
	Status() any
}

// Options configure a Daemon.
type Options struct {
	// ConfigPath is halb.yaml. Default: /etc/halb/halb.yaml.
	ConfigPath string
	// SocketPath is the control API socket. Default: api.DefaultSocket.
	SocketPath string
	// StateDir holds state that survives restarts. Default: /var/lib/halb.
	StateDir string
	// Version is reported in status.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Notify receives sd_notify-style state strings (READY=1, STATUS=...);
	// nil discards them.
	Notify func(state string)
}

// Daemon is one halbd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	events  *api.Broker
	started time.Time

	// applyMu serialises reloads; mu guards the fields below.
	applyMu sync.Mutex
	// drainMu serialises changes to the drained list (a file).
	drainMu sync.Mutex
	mu      sync.Mutex
	cfg     *config.Config
	raw     []byte
	applied time.Time
	lastErr *api.Rejection

	components []Component
	vrrp       *vrrp.Component // nil when VRRP could not start
	proxy      *proxy.Component
	health     *health.Component
}

// New prepares a daemon. It does not load the config or open sockets; Run does.
func New(opts Options) *Daemon {
	if opts.ConfigPath == "" {
		opts.ConfigPath = "/etc/halb/halb.yaml"
	}
	if opts.SocketPath == "" {
		opts.SocketPath = api.DefaultSocket
	}
	if opts.StateDir == "" {
		opts.StateDir = "/var/lib/halb"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	d := &Daemon{opts: opts, log: opts.Logger, events: api.NewBroker()}
	d.components = d.newComponents()
	return d
}

// publish is how components put events on the stream.
func (d *Daemon) publish(typ, msg string, data any) {
	d.events.Publish(api.Event{Type: typ, Message: msg, Data: data})
}

// newComponents wires the components of this build.
func (d *Daemon) newComponents() []Component {
	var cs []Component
	if netif, err := vrrp.NewNetlinkNetif(); err != nil {
		d.log.Error("VRRP disabled: no netlink", "err", err)
	} else {
		d.vrrp = vrrp.New(netif, d.log, d.publish)
		cs = append(cs, d.vrrp)
	}
	d.proxy = proxy.New(d.log)
	d.health = health.New(d.log, d.serverChanged)
	d.proxy.ObserveConnects(d.health.Passive)
	d.proxy.ObserveResponses(d.health.PassiveResponse)
	cs = append(cs, d.health, d.proxy)
	return cs
}

// serverChanged takes a server out of (or back into) the proxy's pool when
// its health check says so, publishes the change, and tells VRRP tracking
// which services still have a healthy server.
func (d *Daemon) serverChanged(ch health.Change) {
	d.proxy.SetServerUp(ch.Backend, ch.Server, ch.Up)
	word := "down"
	if ch.Up {
		word = "up"
	}
	d.publish("health.server_"+word, fmt.Sprintf("%s/%s %s: %s", ch.Backend, ch.Server, word, ch.Reason), ch)
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	d.updateServiceHealth(cfg)
}

// updateServiceHealth sets, for VRRP tracking, whether each service has
// at least min_healthy servers up, with weight and not drained, in the
// backends it uses.
func (d *Daemon) updateServiceHealth(cfg *config.Config) {
	if d.vrrp == nil || cfg == nil {
		return
	}
	drained := d.Drained()
	backends := map[string]config.Backend{}
	for _, b := range cfg.Backends {
		backends[b.Name] = b
	}
	for _, s := range cfg.Services {
		names := []string{s.DefaultBackend}
		for _, r := range s.Routes {
			names = append(names, r.Backend)
		}
		up := 0
		for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
			for _, sv := range backends[n].Servers {
				if sv.EffectiveWeight() > 0 && d.health.Up(n, sv.Name) && !slices.Contains(drained, n+"/"+sv.Name) {
					up++
				}
			}
		}
		d.vrrp.SetServiceHealth(s.Name, up >= max(s.MinHealthy, 1))
	}
}

// Run loads the config, starts the API and the components, and works until
// ctx ends; then it stops everything and returns. A missing or invalid
// config file does not stop the daemon: it runs unconfigured, reports why in
// status, and waits for a valid config through the API or SIGHUP.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	if err := os.MkdirAll(d.opts.StateDir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	ln, err := api.Listen(d.opts.SocketPath)
	if err != nil {
		return err
	}
	defer os.Remove(d.opts.SocketPath)

	for _, key := range d.Drained() {
		if b, s, ok := strings.Cut(key, "/"); ok {
			d.proxy.SetServerDrained(b, s, true)
		}
	}
	if d.Maintenance() && d.vrrp != nil {
		d.log.Warn("maintenance is on (from the state directory): this node keeps no VIPs")
		d.vrrp.SetMaintenance(true)
	}
	d.Reload()

	// The API outlives the components so that clients see the shutdown.
	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	apiErr := make(chan error, 1)
	go func() { apiErr <- api.NewServer(d, d.log).Serve(apiCtx, ln) }()

	compCtx, stopComponents := context.WithCancel(ctx)
	defer stopComponents()
	g, gctx := errgroup.WithContext(compCtx)
	for _, c := range d.components {
		g.Go(func() error {
			if err := c.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
			return nil
		})
	}
	d.events.Publish(api.Event{Type: "daemon.started", Message: "halbd " + d.opts.Version + " started"})
	d.opts.Notify("READY=1\nSTATUS=" + d.statusLine())
	d.log.Info("halbd started", "config", d.opts.ConfigPath, "socket", d.opts.SocketPath)

	var runErr error
	select {
	case <-gctx.Done():
	case runErr = <-apiErr:
		// The control API died: nothing can steer this node any more.
		apiErr = nil
	}
	stopComponents()
	d.opts.Notify("STOPPING=1")
	d.events.Publish(api.Event{Type: "daemon.stopping", Message: "halbd stopping"})
	d.log.Info("halbd stopping")
	runErr = errors.Join(runErr, g.Wait())
	stopAPI()
	if apiErr != nil {
		runErr = errors.Join(runErr, <-apiErr)
	}
	return runErr
}

// Reload reads the config file again. An invalid file is rejected and the
// running config stays in force.
func (d *Daemon) Reload() {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	cfg, raw, err := config.Load(d.opts.ConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("no config file; running unconfigured until one is applied", "path", d.opts.ConfigPath)
		return
	}
	if err != nil {
		d.reject("file", err)
		return
	}
	d.apply(cfg, raw)
}

// Apply validates raw, saves it as the config file and applies it. An
// invalid config returns config.Errors and changes nothing.
func (d *Daemon) Apply(raw []byte) ([]config.Change, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	cfg, err := config.Parse(filepath.Base(d.opts.ConfigPath), raw)
	if err != nil {
		d.reject("api", err)
		return nil, err
	}
	if err := config.Save(d.opts.ConfigPath, raw); err != nil {
		err = fmt.Errorf("save %s: %w", d.opts.ConfigPath, err)
		d.log.Error("config not applied", "err", err)
		return nil, err
	}
	return d.apply(cfg, raw), nil
}

// apply hands a validated config to every component and makes it current.
// Callers hold applyMu.
func (d *Daemon) apply(cfg *config.Config, raw []byte) []config.Change {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	changes := config.Diff(old, cfg)
	for _, c := range d.components {
		if err := c.Apply(cfg); err != nil {
			// The config is valid; a component that cannot take its part
			// (a port in use, say) reports it and keeps running.
			d.log.Error("component did not apply config", "component", c.Name(), "err", err)
			d.events.Publish(api.Event{Type: c.Name() + ".apply_failed", Message: err.Error()})
		}
	}
	d.updateServiceHealth(cfg)
	d.mu.Lock()
	d.cfg, d.raw, d.applied, d.lastErr = cfg, raw, time.Now(), nil
	d.mu.Unlock()

	msg := fmt.Sprintf("config applied: %d change(s)", len(changes))
	attrs := []any{"changes", len(changes), "sha256", digest(raw)}
	for _, c := range changes {
		attrs = append(attrs, slog.String("change", c.String()))
	}
	d.log.Info(msg, attrs...)
	d.events.Publish(api.Event{Type: "config.applied", Message: msg, Data: changes})
	d.opts.Notify("STATUS=" + d.statusLine())
	return changes
}

func (d *Daemon) reject(source string, err error) {
	es := config.AsErrors(err)
	if es == nil {
		es = config.Errors{{File: filepath.Base(d.opts.ConfigPath), Msg: err.Error()}}
	}
	d.mu.Lock()
	d.lastErr = &api.Rejection{Time: time.Now(), Source: source, Errors: es}
	loaded := d.cfg != nil
	d.mu.Unlock()
	for _, e := range es {
		d.log.Error("config rejected", "source", source, "error", e.Error())
	}
	keep := "running config stays in force"
	if !loaded {
		keep = "no config in force"
	}
	msg := fmt.Sprintf("config rejected (%d problem(s)); %s", len(es), keep)
	d.events.Publish(api.Event{Type: "config.rejected", Message: msg, Data: es})
	d.opts.Notify("STATUS=" + d.statusLine())
}

func (d *Daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := "unconfigured"
	if d.cfg != nil {
		s = fmt.Sprintf("node %s, config %s", d.cfg.Node.Name, digest(d.raw)[:12])
	}
	if d.lastErr != nil {
		s += fmt.Sprintf("; last config rejected (%d problems)", len(d.lastErr.Errors))
	}
	return s
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Handover makes VRRP instances give up MASTER now.
func (d *Daemon) Handover(instances []string) error {
	if d.vrrp == nil {
		return errors.New("VRRP is not running")
	}
	err := d.vrrp.Handover(instances...)
	if errors.Is(err, vrrp.ErrNoInstance) {
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	if err == nil {
		d.publish("vrrp.handover", fmt.Sprintf("handover requested for %v", instances), instances)
	}
	return err
}

func (d *Daemon) drainFile() string { return filepath.Join(d.opts.StateDir, "drained") }

// Drained lists the servers an operator drained ("backend/server"), as
// kept in the state directory.
func (d *Daemon) Drained() []string {
	b, err := os.ReadFile(d.drainFile())
	if err != nil {
		return []string{}
	}
	out := []string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// DrainServer drains server ("backend/server") or makes it ready again.
// The list is a file in the state directory, so it survives restarts; a
// server that a reload removes stays listed and is drained again if it
// comes back.
func (d *Daemon) DrainServer(server string, drain bool) error {
	b, s, ok := strings.Cut(server, "/")
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	found := false
	if cfg != nil && ok {
		for _, be := range cfg.Backends {
			for _, sv := range be.Servers {
				found = found || (be.Name == b && sv.Name == s)
			}
		}
	}
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	list := d.Drained()
	if !found && !(slices.Contains(list, server) && !drain) {
		return fmt.Errorf("server %q (want backend/server of the running config): %w", server, api.ErrNotFound)
	}
	list = slices.DeleteFunc(list, func(k string) bool { return k == server })
	if drain {
		list = append(list, server)
	}
	data := strings.Join(list, "\n")
	if data != "" {
		data += "\n"
	}
	tmp := d.drainFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o640); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := os.Rename(tmp, d.drainFile()); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	d.proxy.SetServerDrained(b, s, drain)
	d.updateServiceHealth(cfg)
	word := map[bool]string{true: "drained", false: "ready"}[drain]
	d.log.Info("server "+server+" "+word, "server", server)
	d.publish("server."+word, "server "+server+" "+word, map[string]any{"server": server, "drained": drain})
	return nil
}

func (d *Daemon) maintenanceFile() string { return filepath.Join(d.opts.StateDir, "maintenance") }

// Maintenance reports whether maintenance is on (the flag file exists).
func (d *Daemon) Maintenance() bool {
	_, err := os.Stat(d.maintenanceFile())
	return err == nil
}

// SetMaintenance turns maintenance on (every VRRP instance leaves MASTER and
// keeps no VIPs) or off. The state is a file in the state directory, so it
// survives a restart.
func (d *Daemon) SetMaintenance(on bool) error {
	var err error
	if on {
		err = os.WriteFile(d.maintenanceFile(), []byte("on\n"), 0o640)
	} else if err = os.Remove(d.maintenanceFile()); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("maintenance: %w", err)
	}
	if d.vrrp != nil {
		d.vrrp.SetMaintenance(on)
	}
	state := map[bool]string{true: "on", false: "off"}[on]
	d.log.Info("maintenance " + state)
	d.publish("daemon.maintenance", "maintenance "+state, map[string]bool{"on": on})
	return nil
}

// Running returns the config in force and its bytes; nil while unconfigured.
func (d *Daemon) Running() (*config.Config, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg, d.raw
}

// Events returns the broker of the event stream.
func (d *Daemon) Events() *api.Broker { return d.events }

// Status returns a snapshot of the daemon and its components.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	st := api.Status{
		Node: api.NodeStatus{Version: d.opts.Version, PID: os.Getpid(), Started: d.started, Maintenance: d.Maintenance()},
		Config: api.ConfigStatus{
			Path:      d.opts.ConfigPath,
			Loaded:    d.cfg != nil,
			AppliedAt: d.applied,
			LastError: d.lastErr,
		},
	}
	if d.cfg != nil {
		st.Node.Name = d.cfg.Node.Name
		st.Config.SHA256 = digest(d.raw)
	}
	d.mu.Unlock()

	for _, c := range d.components {
		b, err := json.Marshal(c.Status())
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		switch c.Name() {
		case "vrrp":
			st.VRRP = b
		case "services":
			st.Services = b
		case "backends":
			st.Backends = b
		case "time":
			st.Time = b
		case "peer":
			st.Peer = b
		case "network":
			st.Network = b
		}
	}
	return st
}

// Interfaces lists the node's network interfaces with the VRRP routers of
// other nodes heard on each.
func (d *Daemon) Interfaces() ([]api.Interface, error) {
	links, err := netcfg.Links()
	if err != nil {
		return nil, err
	}
	var heard []vrrp.HeardRouter
	if d.vrrp != nil {
		heard = d.vrrp.Heard()
	}
	out := make([]api.Interface, 0, len(links))
	for _, l := range links {
		in := api.Interface{Name: l.Name, Kind: l.Kind, MAC: l.MAC, MTU: l.MTU, Up: l.Up, Carrier: l.Carrier,
			Addresses: l.Addresses}
		if in.Addresses == nil {
			in.Addresses = []string{}
		}
		for _, h := range heard {
			if h.Interface != l.Name {
				continue
			}
			r := api.HeardRouter{VRID: h.VRID, Version: h.Version, Source: h.Source.String(), Priority: h.Priority, LastSeen: h.Last}
			for _, a := range h.VIPs {
				r.VIPs = append(r.VIPs, a.String())
			}
			in.VRRP = append(in.VRRP, r)
		}
		out = append(out, in)
	}
	return out, nil
}
