// Package daemon wires halbd together: it owns the running config, starts
// the control API and every component, hands each component its part of a
// new config on reload, and shuts everything down in order.
//
// A reload (SIGHUP, or PUT /v1/config) validates the new config, then has
// every component take what can be refused (Preparer: the proxy binds the
// listen addresses the running config does not hold), and only then saves
// the file and hands each component its part. A config that is invalid or
// that a component cannot take is logged, reported in status and on the
// event stream, and changes nothing: the running config, its listeners and
// the file stay.
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
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"halb/appliance/api"
	"halb/appliance/bgp"
	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/logs"
	"halb/appliance/netcfg"
	"halb/appliance/proxy"
	"halb/appliance/vrrp"
)

// Component is one part of the daemon (vrrp, proxy, health, ...).
type Component interface {
	// Name is the component's key in status: vrrp, services, backends,
	// time, peer, network or observe.
	Name() string
	// Run works until ctx ends and returns after cleaning up.
	Run(ctx context.Context) error
	// Apply hands the component a new validated config (hot reload).
	Apply(cfg *config.Config) error
	// Status returns a JSON-encodable snapshot.
	Status() any
}

// A Preparer is a Component whose part of a config needs what can be
// refused (listening sockets). The daemon calls Prepare on a new config
// before it saves or applies anything, so that a config some part cannot
// take changes nothing, then either Apply with the same config or Abort.
type Preparer interface {
	Component
	// Prepare takes what cfg needs without changing what runs; on error
	// it holds nothing new.
	Prepare(cfg *config.Config) error
	// Abort gives back what the last Prepare took.
	Abort()
}

// vrrpPart is what the daemon asks of the VRRP component; tests, which
// cannot open raw sockets, give a fake.
type vrrpPart interface {
	Component
	SetServiceHealth(service string, healthy bool)
	SetMaintenance(on bool)
	Handover(names ...string) error
	Heard() []vrrp.HeardRouter
	PeerAdvert(name string, src netip.Addr, prio int)
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
	// Logger defaults to slog.Default(). The daemon keeps the last
	// records it logs in memory as well (Daemon.Logger, GET /v1/logs).
	Logger *slog.Logger
	// Notify receives sd_notify-style state strings (READY=1, STATUS=...);
	// nil discards them.
	Notify func(state string)
	// SystemActions lets the control API reboot, power off and
	// factory-reset the machine (halbd -system-actions, which only the
	// appliance's unit passes). Default: false.
	SystemActions bool
	// Appliance: halbd owns the machine (the image): until a config says
	// otherwise (node.manage_system, node.management, time.set_clock) it
	// takes DHCP on every wired link, writes resolv.conf and sets the
	// clock from the time servers DHCP names.
	Appliance bool
	// System is where the host's files are (tests); zero: /etc's.
	System netcfg.System
	// NetNS is the network namespace the management network is in
	// (tests); empty: the daemon's own.
	NetNS string
	// Systemctl is the program run as "Systemctl reboot" and "Systemctl
	// poweroff". Default: systemctl (tests give a fake).
	Systemctl string
	// BGPEngine makes the BGP speaker of the bgp section (gobgp.New in
	// halbd, so that only halbd links GoBGP). Default: none; a config
	// with bgp then fails to apply in the bgp component, saying so.
	BGPEngine func(log *slog.Logger) bgp.Engine
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
	version int // the running config's version in hist
	lastErr *api.Rejection
	// pending is the change that awaits confirmation (confirm.go).
	pending     *api.PendingChange
	revertTimer *time.Timer

	// hist is the config history in the state directory.
	hist *history
	// pw is the console password in the state directory.
	pw *passwordStore
	// logs keeps the last records logged.
	logs *logRing
	// logOut is the log targets (observe.logs): the daemon stream from
	// d.log, the access stream from the proxy.
	logOut  *logs.Manager
	observe *observePart

	// components in the order they take a new config: checks and
	// listeners before VRRP, which may then take VIPs.
	components []Component
	vrrp       vrrpPart // nil when VRRP could not start
	proxy      *proxy.Component
	health     *health.Component
	// network and clockPart are the management network and the clock;
	// clock is what the tests query time servers through.
	network   *networkPart
	clockPart *clockPart
	clock     timeTester
	// peer is the peer link (pairing, config and state sync); nil when
	// it could not start.
	peer peerPart
	// bgp announces the bgp section's VIPs.
	bgp *bgp.Component
}

// netStatus is the management network's status; nil before it runs.
func (d *Daemon) netStatus() *netcfg.Status { return d.network.status() }

// New prepares a daemon. It does not load the config or open sockets; Run does.
func New(opts Options) *Daemon {
	d := newDaemon(opts, func(d *Daemon) (vrrpPart, error) {
		netif, err := vrrp.NewNetlinkNetif()
		if err != nil {
			return nil, fmt.Errorf("no netlink: %w", err)
		}
		return vrrp.New(netif, d.log, d.publish), nil
	})
	// BGP's VIPs go on the loopback through the same door as VRRP's.
	if lo, err := vrrp.NewNetlinkNetif(); err != nil {
		d.log.Error("BGP VIPs cannot go on the loopback", "err", err)
	} else {
		d.bgp.SetLoopback(lo)
	}
	// A drain with bgp.drain_to hands connections on with nftables.
	d.bgp.SetHandoff(bgp.NFT{})
	return d
}

// newDaemon is New with the VRRP component made by newVRRP.
func newDaemon(opts Options, newVRRP func(d *Daemon) (vrrpPart, error)) *Daemon {
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
	if opts.Systemctl == "" {
		opts.Systemctl = "systemctl"
	}
	d := &Daemon{opts: opts, events: api.NewBroker(), logs: &logRing{}}
	d.logOut, d.log = newLogOutput(newRingHandler(opts.Logger.Handler(), d.logs))
	d.hist = newHistory(filepath.Join(opts.StateDir, "history"))
	d.pw = newPasswordStore(filepath.Join(opts.StateDir, "console-password"))
	d.proxy = proxy.New(d.log)
	d.loadCerts()
	d.health = health.New(d.log, d.serverChanged)
	d.proxy.ObserveConnects(d.health.Passive)
	d.proxy.ObserveResponses(d.health.PassiveResponse)
	d.network, d.clockPart = newNetworkPart(d), newClockPart(d)
	d.clock = d.clockPart
	// The management network first: the rest may need its address.
	d.components = []Component{d.network, d.clockPart, d.health, d.proxy}
	if v, err := newVRRP(d); err != nil {
		d.log.Error("VRRP disabled", "err", err)
	} else {
		d.vrrp = v
		d.components = append(d.components, v)
	}
	var newEngine func() bgp.Engine
	if opts.BGPEngine != nil {
		newEngine = func() bgp.Engine { return opts.BGPEngine(d.log) }
	}
	d.bgp = bgp.New(d.log, nil, newEngine, d.publish)
	d.components = append(d.components, d.bgp)
	if p := d.newPeer(); p != nil {
		d.peer = p
		d.components = append(d.components, p)
	}
	d.proxy.SetAccessLog(d.logOut)
	d.observe = newObservePart(d, d.logOut)
	d.components = append(d.components, d.observe)
	return d
}

// publish is how components put events on the stream.
func (d *Daemon) publish(typ, msg string, data any) {
	d.events.Publish(api.Event{Type: typ, Message: msg, Data: data})
}

// serverChanged takes a server out of (or back into) the proxy's pool when
// its health check says so, publishes the change, and tells VRRP tracking
// which services still have a healthy server.
func (d *Daemon) serverChanged(ch health.Change) {
	d.proxy.SetServerUp(ch.Backend, ch.Server, ch.Up)
	switch {
	case ch.Unchecked:
		d.publish("health.server_unchecked", fmt.Sprintf("%s/%s no longer checked: %s", ch.Backend, ch.Server, ch.Reason), ch)
	case ch.Up:
		d.publish("health.server_up", fmt.Sprintf("%s/%s up: %s", ch.Backend, ch.Server, ch.Reason), ch)
	default:
		d.publish("health.server_down", fmt.Sprintf("%s/%s down: %s", ch.Backend, ch.Server, ch.Reason), ch)
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	d.updateServiceHealth(cfg)
}

// updateServiceHealth sets, for VRRP tracking and BGP's when_healthy,
// whether each service has at least min_healthy servers up, with weight
// and not drained, in the backends it uses.
func (d *Daemon) updateServiceHealth(cfg *config.Config) {
	if cfg == nil {
		return
	}
	for name, ok := range d.serviceHealth(cfg) {
		if d.vrrp != nil {
			d.vrrp.SetServiceHealth(name, ok)
		}
		d.bgp.SetServiceHealth(name, ok)
	}
}

// serviceHealth says for each service of cfg whether it has at least
// min_healthy servers up, with weight, not drained and not disabled. The
// backup servers of a backend count as HAProxy's nbsrv counts them: only
// while none of its other servers does, and then the one that takes the
// sessions (all of them with all_backups).
func (d *Daemon) serviceHealth(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	drained := d.Drained()
	backends := map[string]config.Backend{}
	for _, b := range cfg.Backends {
		backends[b.Name] = b
	}
	for _, s := range cfg.Services {
		up := 0
		for _, n := range s.BackendNames() {
			up += usableServers(backends[n], func(sv string) bool {
				return d.health.Up(n, sv) && !slices.Contains(drained, n+"/"+sv)
			})
		}
		out[s.Name] = up >= max(s.MinHealthy, 1)
	}
	return out
}

// usableServers counts b's servers that are usable (up says: up and not
// drained) with weight and not disabled, its backups as HAProxy's nbsrv
// does: only while no other server is, and then only the first unless
// all_backups.
func usableServers(b config.Backend, up func(server string) bool) int {
	var active, backup int
	for _, sv := range b.Servers {
		if sv.Disabled || sv.EffectiveWeight() == 0 || !up(sv.Name) {
			continue
		}
		if sv.Backup {
			backup++
		} else {
			active++
		}
	}
	switch {
	case active > 0:
		return active
	case b.AllBackups:
		return backup
	}
	return min(backup, 1)
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

	if err := d.hist.load(); err != nil {
		d.log.Error("config history damaged", "err", err)
	}
	for _, key := range d.Drained() {
		if b, s, ok := strings.Cut(key, "/"); ok {
			d.proxy.SetServerDrained(b, s, true)
		}
	}
	if d.Maintenance() {
		d.log.Warn("maintenance is on (from the state directory): this node keeps no VIPs")
		if d.vrrp != nil {
			d.vrrp.SetMaintenance(true)
		}
		d.bgp.SetMaintenance(true, false)
	}
	d.loadStick()
	d.Reload()
	d.settleSeed()
	d.loadPending()
	defer d.stopPending()

	// The components stop when Run says so, not with ctx: a node that
	// announces routes withdraws them first and serves a moment longer.
	compCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
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
	// Clients (and systemd's READY) see the config in force: a component
	// that puts it in force in Run says when it has. Until then the API's
	// clients wait in its listener's backlog.
	for _, c := range d.components {
		if r, ok := c.(interface{ Ready() <-chan struct{} }); ok {
			select {
			case <-r.Ready():
			case <-gctx.Done():
			case <-ctx.Done():
			}
		}
	}

	// The API outlives the components so that clients see the shutdown.
	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	apiErr := make(chan error, 1)
	go func() { apiErr <- api.NewServerWith(d, d.log, d.apiOptions()).Serve(apiCtx, ln) }()
	d.events.Publish(api.Event{Type: "daemon.started", Message: "halbd " + d.opts.Version + " started"})
	d.opts.Notify("READY=1\nSTATUS=" + d.statusLine())
	d.log.Info("halbd started", "config", d.opts.ConfigPath, "socket", d.opts.SocketPath)

	var runErr error
	select {
	case <-ctx.Done():
	case <-gctx.Done():
	case runErr = <-apiErr:
		// The control API died: nothing can steer this node any more.
		apiErr = nil
	}
	// Routers first: withdrawn routes move new connections to the other
	// nodes while this one still accepts what reaches it meanwhile.
	if d.bgp.Withdraw() {
		d.log.Info("bgp: routes withdrawn; serving a moment longer while the routers move", "for", StopGrace)
		time.Sleep(StopGrace)
	}
	stopComponents()
	d.opts.Notify("STOPPING=1")
	d.events.Publish(api.Event{Type: "daemon.stopping", Message: "halbd stopping"})
	d.log.Info("halbd stopping")
	runErr = errors.Join(runErr, g.Wait())
	d.saveStick()
	stopAPI()
	if apiErr != nil {
		runErr = errors.Join(runErr, <-apiErr)
	}
	// The log targets last: they write the daemon's final lines.
	if err := d.logOut.Close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	return runErr
}

// StopGrace is how long a stopping halbd that announced routes keeps
// serving after it withdrew them: the routers' time to move new
// connections (FRR takes ~0.1 s in netlab), so that none reaches a node
// whose listeners are closed.
const StopGrace = time.Second

// Reload reads the config file again. A file that is invalid, or that a
// component cannot take (a listen address in use), is rejected and the
// running config stays in force; at start, nothing runs until a config is
// taken.
func (d *Daemon) Reload() {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	path := d.opts.ConfigPath
	cfg, raw, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("no config file; running unconfigured until one is applied", "path", path)
		return
	}
	for _, e := range config.AsErrors(err) {
		e.File = path // Load names the file by its base name
	}
	if err == nil {
		err = d.prepare(path, raw, cfg)
	}
	if err != nil {
		d.reject(api.SourceFile, path, err)
		return
	}
	d.commit(cfg, raw, api.SourceFile, "")
}

// SeedSuffix names the marker the appliance's seed import (image/halb-seed)
// leaves beside a config file it took from a seed: the config path plus
// this. The import does not check the config (a second Go program on the
// boot's critical path costs seconds of an emulated CPU); halbd's first load
// is the check.
const SeedSuffix = ".seed"

// settleSeed, after the first load: a seeded config that was rejected is
// moved aside to <config>.rejected (the next boot's seed import may then
// take a corrected one; an operator reads the errors in the journal and
// status) and halbd stays unconfigured. The marker goes either way.
func (d *Daemon) settleSeed() {
	path := d.opts.ConfigPath
	if _, err := os.Stat(path + SeedSuffix); err != nil {
		return
	}
	d.mu.Lock()
	loaded := d.cfg != nil
	d.mu.Unlock()
	if !loaded {
		if err := os.Rename(path, path+".rejected"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Error("seeded config rejected; could not move it aside", "err", err)
		} else if err == nil {
			d.log.Error("seeded config rejected; moved aside, running unconfigured", "path", path+".rejected")
		}
	}
	if err := os.Remove(path + SeedSuffix); err != nil {
		d.log.Error("seed marker", "err", err)
	}
}

// Apply validates raw, has every component take it (listeners bind), saves
// it as the config file, applies it and records it in the config history
// as from the API. name is what messages call the config (the file the
// client sent; "api" when empty). A config that is invalid returns
// config.Errors, one that a component cannot take config.Errors wrapping
// api.ErrConflict; either changes nothing.
func (d *Daemon) Apply(name string, raw []byte) ([]config.Change, error) {
	res, err := d.ApplyFrom(api.SourceAPI, name, raw)
	return res.Changes, err
}

// ApplyFrom is Apply for a config from source (api.SourceAPI or
// api.SourceConsole); it also returns the config's version in the history.
func (d *Daemon) ApplyFrom(source, name string, raw []byte) (api.ApplyResult, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if err := d.refuseWhilePending(); err != nil {
		return api.ApplyResult{}, err
	}
	if name == "" {
		name = "api"
	}
	return d.apply(source, name, "", raw)
}

// Rollback applies version v of the config history again, as Apply does,
// and records it as a new version from api.SourceRollback. A version the
// history does not keep is an error wrapping api.ErrNotFound.
func (d *Daemon) Rollback(v int) (api.ApplyResult, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if err := d.refuseWhilePending(); err != nil {
		return api.ApplyResult{}, err
	}
	raw, path, err := d.hist.get(v)
	if err != nil {
		return api.ApplyResult{}, err
	}
	d.log.Info("rolling back the config", "version", v)
	// Errors name the history's file of the version, as a config file's.
	return d.apply(api.SourceRollback, path, fmt.Sprintf("rollback to %d", v), raw)
}

// apply parses raw (called name in messages), prepares, saves and commits
// it; what prefixes the history's summary. Callers hold applyMu.
func (d *Daemon) apply(source, name, what string, raw []byte) (api.ApplyResult, error) {
	cfg, err := config.Parse(name, raw)
	if err == nil {
		err = d.prepare(name, raw, cfg)
	}
	if err != nil {
		d.reject(source, name, err)
		return api.ApplyResult{}, err
	}
	if err := config.SaveParsed(d.opts.ConfigPath, raw); err != nil {
		d.abort()
		err = fmt.Errorf("save %s: %w", d.opts.ConfigPath, err)
		d.log.Error("config not applied", "err", err)
		return api.ApplyResult{}, err
	}
	return d.commit(cfg, raw, source, what), nil
}

// History lists the applied configs kept in the state directory, newest
// first, the running one marked.
func (d *Daemon) History() []api.HistoryEntry {
	l := d.hist.list()
	d.mu.Lock()
	running := d.version
	if d.cfg == nil {
		running = 0
	}
	d.mu.Unlock()
	for i := range l {
		l[i].Running = l[i].Version == running
	}
	return l
}

// HistoryConfig returns the YAML of version v of the config history.
func (d *Daemon) HistoryConfig(v int) ([]byte, error) {
	raw, _, err := d.hist.get(v)
	return raw, err
}

// prepare has every Preparer take cfg. If one cannot, those before it
// abort and the error lists what failed as config errors of name: a
// listen address that cannot be bound at its field and line.
func (d *Daemon) prepare(name string, raw []byte, cfg *config.Config) error {
	var done []Preparer
	for _, c := range d.components {
		p, ok := c.(Preparer)
		if !ok {
			continue
		}
		if err := p.Prepare(cfg); err != nil {
			for _, q := range done {
				q.Abort()
			}
			return fmt.Errorf("%w: %w", api.ErrConflict, prepareErrors(name, raw, cfg, c.Name(), err))
		}
		done = append(done, p)
	}
	return nil
}

// abort gives back what prepare took.
func (d *Daemon) abort() {
	for _, c := range d.components {
		if p, ok := c.(Preparer); ok {
			p.Abort()
		}
	}
}

// prepareErrors turns what a component could not take into config errors:
// a proxy.BindError at the listen address's field and line, anything else
// named by the component.
func prepareErrors(name string, raw []byte, cfg *config.Config, component string, err error) config.Errors {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out config.Errors
	for _, e := range errs {
		var be *proxy.BindError
		if msg, ok := strings.CutPrefix(e.Error(), "observe.listen "); ok {
			out = append(out, &config.Error{File: name, Line: config.LineOf(raw, "observe.listen"), Path: "observe.listen", Msg: msg})
			continue
		}
		var ce *proxy.CertError
		if errors.As(e, &ce) {
			path := ""
			for i, s := range cfg.Services {
				if s.Name == ce.Service && ce.Backend == "" {
					path = fmt.Sprintf("services[%d].tls.certificates[%d]", i, ce.Index)
					if ce.Index < 0 {
						path = fmt.Sprintf("services[%d].tls.client_auth.ca", i)
					}
				}
			}
			for i, b := range cfg.Backends {
				if b.Name == ce.Backend {
					path = fmt.Sprintf("backends[%d].tls.ca", i)
				}
			}
			out = append(out, &config.Error{File: name, Line: config.LineOf(raw, path), Path: path, Msg: ce.Err.Error()})
			continue
		}
		if !errors.As(e, &be) {
			out = append(out, &config.Error{File: name, Msg: component + ": " + e.Error()})
			continue
		}
		path := ""
		for i, s := range cfg.Services {
			if j := slices.Index(s.Listen, be.Addr); s.Name == be.Service && j >= 0 {
				path = fmt.Sprintf("services[%d].listen[%d]", i, j)
			}
		}
		out = append(out, &config.Error{File: name, Line: config.LineOf(raw, path), Path: path, Msg: be.Error()})
	}
	return out
}

// commit makes a prepared config from source current, records it in the
// config history (what, when set, prefixing its summary) and hands it to
// every component, in order. Callers hold applyMu.
func (d *Daemon) commit(cfg *config.Config, raw []byte, source, what string) api.ApplyResult {
	d.mu.Lock()
	changes := config.Diff(d.cfg, cfg)
	d.mu.Unlock()
	summary := summarize(changes)
	if what != "" {
		summary = what + ": " + summary
	}
	// The history is the record of what ran; a config is in force even if
	// it cannot be recorded (a full disk), which the log and events say.
	version, herr := d.hist.record(source, summary, raw)
	if herr != nil {
		d.log.Error("config history not written", "err", herr)
		d.publish("config.history_failed", herr.Error(), nil)
	}
	d.mu.Lock()
	d.cfg, d.raw, d.applied, d.version, d.lastErr = cfg, raw, time.Now(), version, nil
	d.mu.Unlock()
	d.warnInactive(cfg)
	// VRRP tracking learns the services' health under the new config
	// (min_healthy, servers) before its instances do.
	d.updateServiceHealth(cfg)
	for _, c := range d.components {
		if err := c.Apply(cfg); err != nil {
			// Prepare took what can be refused; this is a bug to report.
			d.log.Error("component did not apply config", "component", c.Name(), "err", err)
			d.events.Publish(api.Event{Type: c.Name() + ".apply_failed", Message: err.Error()})
		}
	}

	msg := fmt.Sprintf("config applied: %d change(s)", len(changes))
	if version > 0 {
		msg += fmt.Sprintf(" (version %d)", version)
	}
	attrs := []any{"changes", len(changes), "sha256", digest(raw), "version", version, "source", source}
	for _, c := range changes {
		attrs = append(attrs, slog.String("change", c.String()))
	}
	d.log.Info(msg, attrs...)
	d.events.Publish(api.Event{Type: "config.applied", Message: msg, Data: changes})
	d.opts.Notify("STATUS=" + d.statusLine())
	return api.ApplyResult{Changes: changes, Version: version}
}

// reject records a config that was not taken (from source, called name in
// messages) in status, the log and the event stream.
func (d *Daemon) reject(source, name string, err error) {
	es := config.AsErrors(err)
	if es == nil {
		es = config.Errors{{File: name, Msg: err.Error()}}
	}
	d.mu.Lock()
	d.lastErr = &api.Rejection{Time: time.Now(), Source: source, Errors: es}
	loaded := d.cfg != nil
	d.mu.Unlock()
	keep := "running config stays in force"
	if !loaded {
		keep = "no config in force"
	}
	for _, e := range es {
		d.log.Error("config rejected; "+keep, "source", source, "error", e.Error())
	}
	var list []string
	for _, e := range es[:min(len(es), 3)] {
		list = append(list, e.Error())
	}
	if len(es) > 3 {
		list = append(list, fmt.Sprintf("and %d more", len(es)-3))
	}
	msg := fmt.Sprintf("config rejected (%d problem(s)); %s: %s", len(es), keep, strings.Join(list, "; "))
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

// Handover makes the named VRRP instances of the running config (all when
// none is named) give up MASTER now. No instance, or a name that is not
// one, is an error wrapping api.ErrNotFound that says which.
func (d *Daemon) Handover(instances []string) error {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	var names []string
	if cfg != nil {
		for _, in := range cfg.VRRP {
			names = append(names, in.Name)
		}
	}
	var unknown []string
	for _, n := range instances {
		if !slices.Contains(names, n) {
			unknown = append(unknown, strconv.Quote(n))
		}
	}
	have := "none is configured"
	if len(names) > 0 {
		have = "the instances are " + strings.Join(names, ", ")
	}
	switch {
	case len(unknown) > 0:
		return fmt.Errorf("no VRRP instance %s (%s): %w", strings.Join(unknown, ", "), have, api.ErrNotFound)
	case len(names) == 0:
		return fmt.Errorf("no VRRP instance is configured, nothing to hand over: %w", api.ErrNotFound)
	}
	if d.vrrp == nil {
		return errors.New("VRRP is not running on this node (see the log)")
	}
	if err := d.vrrp.Handover(instances...); errors.Is(err, vrrp.ErrNoInstance) {
		return fmt.Errorf("VRRP instances %v not started yet: %w", instances, api.ErrNotFound)
	} else if err != nil {
		return err
	}
	which := "every instance"
	if len(instances) > 0 {
		which = strings.Join(instances, ", ")
	}
	d.publish("vrrp.handover", "handover requested for "+which, instances)
	return nil
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
// keeps no VIPs; BGP VIPs drain with GRACEFUL_SHUTDOWN, then are
// withdrawn) or off. The state is a file in the state directory, so it
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
	d.bgp.SetMaintenance(on, true)
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
		Node: api.NodeStatus{Version: d.opts.Version, PID: os.Getpid(), Started: d.started, Maintenance: d.Maintenance(),
			SystemActions: d.opts.SystemActions},
		Config: api.ConfigStatus{
			Path:      d.opts.ConfigPath,
			Loaded:    d.cfg != nil,
			AppliedAt: d.applied,
			LastError: d.lastErr,
			Pending:   d.pending,
		},
	}
	if d.cfg != nil {
		st.Node.Name = d.cfg.Node.Name
		st.Config.SHA256 = digest(d.raw)
		st.Config.Version = d.version
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
		case "observe":
			st.Observe = b
		case "bgp":
			st.BGP = b
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
