package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/netcfg"
	"halb/appliance/proxy"
	"halb/appliance/timesync"
	"halb/appliance/vrrp"
)

// fakeClient is the control API for the console's unit tests: canned
// answers, and a record of what the console sent.
type fakeClient struct {
	mu         sync.Mutex
	status     *api.Status
	statusErr  error
	interfaces []api.Interface
	config     []byte
	applyErr   error
	applied    [][]byte
	calls      []string
	events     chan api.Event
	done       chan struct{}
	onHandover func()
	// the console password ("" none) and whether actions need it
	password string
	required bool
	// pwTimes: the time each password check or change was given
	// (its context's deadline, from the call).
	pwTimes  []time.Duration
	history  []api.HistoryEntry
	versions map[int][]byte
	// now is the console's clock (Options.Now); advance moves it.
	now time.Time
	// peer is status.peer (nil: the daemon runs no peer component);
	// code the active pairing code; joinCode the code a join needs,
	// joinTries the tries it has left, joinResult what it answers.
	peer       *api.PeerStatus
	code       *api.PairingCode
	pairingErr error
	joinCode   string
	joinTries  int
	joinResult api.JoinResult
	joinPeer   api.PeerState // the peer a join adds to status.peer
	// importOffer is GET /v1/import's answer (nil: 404, no files).
	importOffer *api.ImportResult
	// statusRead, when set, is called once, by the next Status after it
	// has read the status and before it answers (outside the lock: it may
	// block or change the status).
	statusRead func()
}

func newFake(t *testing.T) *fakeClient {
	f := &fakeClient{events: make(chan api.Event, 16), done: make(chan struct{}), required: true, versions: map[int][]byte{},
		now: testNow}
	t.Cleanup(func() { close(f.done) })
	f.status = &api.Status{Node: api.NodeStatus{Version: "test"}, Config: api.ConfigStatus{Path: "/var/lib/halb/halb.yaml"}}
	f.interfaces = []api.Interface{
		{Name: "lo", Kind: "loopback", MTU: 65536, Up: true, Carrier: true, Addresses: []string{"127.0.0.1/8"}},
		{Name: "eth0", Kind: "device", MAC: "52:54:00:12:34:01", MTU: 1500, Up: true, Carrier: true, Addresses: []string{"10.0.0.11/24"},
			VRRP: []api.HeardRouter{{VRID: 51, Version: 3, Source: "10.0.0.5", Priority: 100, VIPs: []string{"10.0.0.50"}}}},
		{Name: "eth1", Kind: "device", MAC: "52:54:00:12:34:02", MTU: 1500, Up: true, Addresses: []string{}},
	}
	return f
}

func (f *fakeClient) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeClient) Import(ctx context.Context, node string) (api.ImportResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.importOffer == nil {
		return api.ImportResult{}, fmt.Errorf("no keepalived.conf or haproxy.cfg to import: %w", api.ErrNotFound)
	}
	return *f.importOffer, nil
}

func (f *fakeClient) Status(ctx context.Context) (*api.Status, error) {
	f.mu.Lock()
	if f.statusErr != nil {
		f.mu.Unlock()
		return nil, f.statusErr
	}
	st := *f.status
	if f.peer != nil {
		st.Peer = mustJSON(f.peer)
	}
	read := f.statusRead
	f.statusRead = nil
	f.mu.Unlock()
	if read != nil {
		read()
	}
	return &st, nil
}

func (f *fakeClient) Config(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.config, nil
}

func (f *fakeClient) ApplyConfig(ctx context.Context, raw []byte) ([]config.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, raw)
	if f.applyErr != nil {
		return nil, f.applyErr
	}
	cfg, err := config.Parse("api", raw)
	if err != nil {
		return nil, err
	}
	f.config = raw
	f.status.Config.Loaded = true
	f.status.Node.Name = cfg.Node.Name
	return config.Diff(nil, cfg), nil
}

func (f *fakeClient) Events(ctx context.Context, fn func(api.Event) error) error {
	for {
		select {
		case ev := <-f.events:
			if err := fn(ev); err != nil {
				return err
			}
		case <-f.done:
			return errors.New("closed")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeClient) Handover(ctx context.Context, instances ...string) error {
	f.record("handover")
	if f.onHandover != nil {
		go f.onHandover()
	}
	return nil
}

func (f *fakeClient) SetMaintenance(ctx context.Context, on bool) error {
	f.record("maintenance " + onOff(on))
	return nil
}

func (f *fakeClient) DrainServer(ctx context.Context, server string, drain bool) ([]string, error) {
	f.record("drain " + server + " " + onOff(drain))
	return nil, nil
}

func (f *fakeClient) Interfaces(ctx context.Context) ([]api.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.interfaces, nil
}

func (f *fakeClient) ApplyConfirmed(ctx context.Context, name string, raw []byte, within time.Duration) (api.ApplyResult, error) {
	ch, err := f.ApplyConfig(ctx, raw)
	if err != nil {
		return api.ApplyResult{}, err
	}
	f.record(fmt.Sprintf("apply confirmed within %s", within))
	f.mu.Lock()
	f.status.Config.Version++
	f.status.Config.Pending = &api.PendingChange{Version: f.status.Config.Version, RevertTo: f.status.Config.Version - 1,
		Deadline: testNow.Add(within)}
	f.mu.Unlock()
	return api.ApplyResult{Changes: ch, ConfirmBy: testNow.Add(within)}, nil
}

func (f *fakeClient) Confirm(ctx context.Context) error {
	f.record("confirm")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Config.Pending = nil
	return nil
}

func (f *fakeClient) RevertNow(ctx context.Context) error {
	f.record("revert")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Config.Pending = nil
	return nil
}

func (f *fakeClient) TestNetwork(ctx context.Context) ([]api.CheckResult, error) {
	f.record("test network")
	return []api.CheckResult{{Name: "ping gateway 10.0.0.1", OK: true, Detail: "echo reply", Took: 2 * time.Millisecond},
		{Name: "resolve ntp.example.net", Detail: "lookup ntp.example.net: no such host", Took: 40 * time.Millisecond},
		{Name: "time server 10.0.0.123", OK: true, Detail: "offset +1.2ms, stratum 2", Took: 3 * time.Millisecond}}, nil
}

func (f *fakeClient) TestTime(ctx context.Context, servers []string) ([]timesync.ServerStatus, error) {
	f.record(fmt.Sprintf("test time %v", servers))
	var out []timesync.ServerStatus
	for i, s := range servers {
		out = append(out, timesync.ServerStatus{Name: s, Source: "config", Reachable: i == 0, Offset: 1200 * time.Microsecond,
			Delay: 300 * time.Microsecond, Stratum: 2, Error: map[bool]string{true: "", false: "read udp: i/o timeout"}[i == 0]})
	}
	return out, nil
}

func (f *fakeClient) setStatus(fn func(st *api.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.status)
}

// testNow is the fake clock's time.
var testNow = time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)

// terms are the terminals the golden tests draw for: the Linux console,
// a serial vt100 and a modern xterm.
var terms = []struct {
	name    string
	profile termenv.Profile
	ascii   bool
}{
	{"linux", termenv.ANSI, false},
	{"vt100", termenv.Ascii, true},
	{"xterm-256color", termenv.ANSI256, false},
}

func themeFor(profile termenv.Profile, ascii bool) *Theme {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(profile)
	return NewTheme(r, ascii)
}

// configured makes the fake a configured node: two VRRP instances, a
// service with two servers (one down), events.
// fakeHead is the start of the configured fakes' config: the node and its
// VRRP instance.
const fakeHead = `node: {name: lb1}
vrrp:
  - {name: vip-a, interface: eth0, vrid: 52, priority: 150, vips: [10.0.0.100/24]}
`

func (f *fakeClient) configured() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.config = []byte(fakeHead + `services:
  - {name: web, listen: ["10.0.0.100:80"], default_backend: web}
backends:
  - name: web
    servers:
      - {name: web1, address: "10.0.1.11:80"}
      - {name: web2, address: "10.0.1.12:80"}
`)
	f.password = "secret123"
	f.history = []api.HistoryEntry{
		{Version: 8, Time: testNow.Add(-time.Hour), Source: "console", Summary: `1 change(s): backends "web" changed: servers`, Running: true},
		{Version: 7, Time: testNow.Add(-2 * time.Hour), Source: "file", Summary: `3 change(s): vrrp "vip-a" added; ...`},
	}
	f.versions[7] = []byte("node: {name: lb1}\nvrrp:\n  - {name: vip-a, interface: eth0, vrid: 52, priority: 150, vips: [10.0.0.100/24]}\n")
	f.versions[8] = f.config
	st := f.status
	st.Node.Name = "lb1"
	st.Config.Loaded = true
	st.Config.SHA256 = "8f2a"
	st.VRRP = mustJSON([]vrrp.InstanceStatus{{Name: "vip-a", Interface: "eth0", VRID: 52, Version: 3, State: vrrp.StateMaster,
		Priority: 150, EffectivePriority: 150, VIPs: []string{"10.0.0.100/24"}, HeldVIPs: []string{"10.0.0.100/24"}}})
	st.Services = mustJSON([]proxy.ServiceStatus{{Name: "web", Mode: "http", Listen: []string{"10.0.0.100:80"},
		Listening: []string{"10.0.0.100:80"}, Backend: "web",
		Stats: proxy.ServiceCounters{Connections: 40, ActiveConnections: 3, Requests: 1200},
		Backends: []proxy.BackendStatus{{Name: "web", Balance: "roundrobin", Servers: []proxy.ServerStatus{
			{Name: "web1", Address: "10.0.1.11:80", Up: true, Weight: 1, Active: 3, Total: 1200},
			{Name: "web2", Address: "10.0.1.12:80", Up: false, Weight: 1, ConnectErrors: 4},
		}}}}})
	st.Backends = mustJSON([]health.BackendHealth{{Name: "web", Check: "tcp", Servers: []health.ServerHealth{
		{Name: "web1", Address: "10.0.1.11:80", State: "up", Checks: 30, LatencyMS: 0.4},
		{Name: "web2", Address: "10.0.1.12:80", State: "down", Checks: 30, LastError: "connect: connection refused"},
	}}})
	st.Network = mustJSON(netcfg.Status{Mode: "dhcp", Gateway: "10.0.0.1", DNS: []string{"10.0.0.1"}, NTP: []string{"10.0.0.123"},
		Interfaces: []netcfg.InterfaceStatus{{Name: "eth0", MAC: "52:54:00:12:34:01", Carrier: true,
			Addresses: []string{"10.0.0.11/24", "10.0.0.100/24"}, Managed: []string{"10.0.0.11/24"},
			Lease: &netcfg.Lease{State: "BOUND", Address: "10.0.0.11/24", Server: "10.0.0.1", Router: "10.0.0.1",
				Obtained: testNow.Add(-10 * time.Minute), T1: testNow.Add(20 * time.Minute), T2: testNow.Add(42 * time.Minute),
				Expiry: testNow.Add(50 * time.Minute)}}}})
	st.Time = mustJSON(timesync.Status{Synchronized: true, Offset: 1234 * time.Microsecond, Server: "10.0.0.123",
		LastSync: testNow.Add(-30 * time.Second), Servers: []timesync.ServerStatus{{Name: "10.0.0.123", Source: "dhcp", Reachable: true,
			Offset: 1234 * time.Microsecond, Delay: 400 * time.Microsecond, Stratum: 2, Chosen: true}}})
}

// configuredTLS is configured with a web service that terminates TLS:
// certificate main loaded (90 days left), old expiring in 7 days, broken
// not loaded; its backend web re-encrypts with verify none.
func (f *fakeClient) configuredTLS() {
	f.configured()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.config = []byte(fakeHead + `services:
  - name: web
    listen: ["10.0.0.100:443"]
    default_backend: web
    tls: {certificates: [{name: main}, {name: old}, {name: broken}]}
backends:
  - name: web
    tls: {verify: none}
    servers:
      - {name: web1, address: "10.0.1.11:443"}
      - {name: web2, address: "10.0.1.12:443"}
`)
	f.versions[8] = f.config
	f.status.Services = mustJSON([]proxy.ServiceStatus{{Name: "web", Mode: "http", Listen: []string{"10.0.0.100:443"},
		Listening: []string{"10.0.0.100:443"}, Backend: "web",
		TLS: &proxy.TLSStatus{MinVersion: "1.2", Policy: "intermediate", Default: "main", Certificates: []proxy.CertStatus{
			{Name: "main", DNSNames: []string{"www.example.com"}, NotAfter: testNow.Add(90 * 24 * time.Hour)},
			{Name: "old", DNSNames: []string{"old.example.com"}, NotAfter: testNow.Add(7*24*time.Hour + time.Hour), ExpiresSoon: true},
			{Name: "broken", Error: "open /var/lib/halb/certs/broken.pem: no such file or directory"},
		}},
		Stats: proxy.ServiceCounters{Connections: 40, ActiveConnections: 3, Requests: 1200,
			TLS: &proxy.TLSCounters{Handshakes: 40, Resumed: 10, TLS13: 40, Failed: map[string]int64{}}},
		Backends: []proxy.BackendStatus{{Name: "web", TLS: "verify NONE: the servers' certificates are not checked", Balance: "roundrobin",
			Servers: []proxy.ServerStatus{
				{Name: "web1", Address: "10.0.1.11:443", Up: true, Weight: 1, Active: 3, Total: 1200},
				{Name: "web2", Address: "10.0.1.12:443", Up: true, Weight: 1, Total: 0},
			}}}}})
	f.status.Backends = mustJSON([]health.BackendHealth{{Name: "web", Check: "tcp", Servers: []health.ServerHealth{
		{Name: "web1", Address: "10.0.1.11:443", State: "up", Checks: 30, LatencyMS: 0.4},
		{Name: "web2", Address: "10.0.1.12:443", State: "up", Checks: 30, LatencyMS: 0.5},
	}}})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (f *fakeClient) ConsoleAuth(ctx context.Context) (api.ConsoleAuth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.ConsoleAuth{PasswordSet: f.password != "", Required: f.required}, nil
}

// slowHashes checks that the console gave each of the n password calls
// made so far (checks, changes) the time halbd's hash takes on a slow
// machine: more than 50 s (passwordTimeout; it was 10 s and 15 s, which an
// emulated machine overran).
func (f *fakeClient) slowHashes(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pwTimes) != n {
		t.Fatalf("%d password calls, want %d", len(f.pwTimes), n)
	}
	for i, d := range f.pwTimes {
		if d < 50*time.Second {
			t.Errorf("password call %d was given %v, want about a minute (a slow machine's hash)", i+1, d.Round(time.Second))
		}
	}
}

// passwordCall records the time a password call was given.
func (f *fakeClient) passwordCall(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		f.pwTimes = append(f.pwTimes, time.Until(d))
	}
}

func (f *fakeClient) CheckConsolePassword(ctx context.Context, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwordCall(ctx)
	if password != f.password {
		return &api.StatusError{Code: 401, Msg: "wrong password"}
	}
	return nil
}

func (f *fakeClient) SetConsolePassword(ctx context.Context, password, old string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwordCall(ctx)
	if f.password != "" && old != f.password {
		return &api.StatusError{Code: 401, Msg: "wrong password"}
	}
	if len(password) < 8 {
		return &api.StatusError{Code: 400, Msg: "the password must have at least 8 characters"}
	}
	f.password = password
	f.calls = append(f.calls, "password")
	return nil
}

func (f *fakeClient) History(ctx context.Context) ([]api.HistoryEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.history, nil
}

func (f *fakeClient) HistoryConfig(ctx context.Context, version int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.versions[version]; ok {
		return b, nil
	}
	return nil, &api.StatusError{Code: 404, Msg: "no such version"}
}

func (f *fakeClient) Rollback(ctx context.Context, version int) (api.ApplyResult, error) {
	f.mu.Lock()
	raw, ok := f.versions[version]
	f.mu.Unlock()
	if !ok {
		return api.ApplyResult{}, &api.StatusError{Code: 404, Msg: "no such version"}
	}
	f.record(fmt.Sprintf("rollback %d", version))
	ch, err := f.ApplyConfig(ctx, raw)
	return api.ApplyResult{Changes: ch, Version: 9}, err
}

func (f *fakeClient) Logs(ctx context.Context, n int) ([]api.LogRecord, error) {
	return []api.LogRecord{
		{Time: testNow.Add(-2 * time.Second), Level: "INFO", Message: "halbd started", Attrs: "config=/var/lib/halb/halb.yaml"},
		{Time: testNow.Add(-time.Second), Level: "WARN", Message: "server web/web2 down", Attrs: `reason="connection refused"`},
	}, nil
}

func (f *fakeClient) Reboot(ctx context.Context) error {
	f.record("reboot")
	return nil
}

func (f *fakeClient) Poweroff(ctx context.Context) error {
	f.record("poweroff")
	return nil
}

func (f *fakeClient) FactoryReset(ctx context.Context, nodeName string) error {
	f.record("factory-reset " + nodeName)
	return nil
}

// Now is the console's clock.
func (f *fakeClient) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// advance moves the console's clock.
func (f *fakeClient) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// setPeer changes status.peer (made first when nil).
func (f *fakeClient) setPeer(fn func(p *api.PeerStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.peer == nil {
		f.peer = &api.PeerStatus{}
	}
	fn(f.peer)
}

// fingerprints of the fake's nodes.
const (
	fpLB1 = "sha256:3f9a1c0b7e52d4a8c6e1f0b9a7d3c2e5f4a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7"
	fpLB2 = "sha256:9c2e4b6a8d0f1e3c5a7b9d1f3e5c7a9b1d3f5e7c9a1b3d5f7e9c1a3b5d7f9e1c"
)

// peered makes the fake a node with the peer component and no peer.
func (f *fakeClient) peered() {
	f.setPeer(func(p *api.PeerStatus) {
		p.Fingerprint = fpLB1
		p.ConfigVersion = "lb1:5"
		p.Peers = []api.PeerState{}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joinCode, f.joinTries = "K7QM-4XRT-9C", 5
	f.joinResult = api.JoinResult{Peer: "lb2", Fingerprint: fpLB2, ConfigVersion: "lb2:7", Version: 2,
		Message: "took lb2's cluster parts: 3 change(s)"}
	f.joinPeer = api.PeerState{Name: "lb2", Address: "10.0.0.12", Port: 7900, Fingerprint: fpLB2, Paired: true,
		Reachable: true, ConfigVersion: "lb2:7", InSync: true}
}

func (f *fakeClient) StartPairing(ctx context.Context) (api.PairingCode, error) {
	f.record("start pairing")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pairingErr != nil {
		return api.PairingCode{}, f.pairingErr
	}
	f.code = &api.PairingCode{Code: "K7QM-4XRT-9C", Expires: f.now.Add(10 * time.Minute), TriesLeft: 5,
		Fingerprint: fpLB1, Port: 7900, Addresses: []string{"10.0.0.11", "fd00::11"}}
	if f.peer != nil {
		f.peer.Listen = ":7900"
		f.peer.Pairing = &api.PairingState{Expires: f.code.Expires, TriesLeft: 5}
	}
	return *f.code, nil
}

func (f *fakeClient) Pairing(ctx context.Context) (api.PairingCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == nil {
		return api.PairingCode{}, &api.StatusError{Code: 404, Msg: "no pairing code is active"}
	}
	return *f.code, nil
}

func (f *fakeClient) CancelPairing(ctx context.Context) error {
	f.record("cancel pairing")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == nil {
		return &api.StatusError{Code: 404, Msg: "no pairing code is active"}
	}
	f.code = nil
	if f.peer != nil {
		f.peer.Pairing = nil
	}
	return nil
}

// JoinPeer pairs when the code is joinCode; a wrong one costs a try, and
// the daemon's message says how many are left.
func (f *fakeClient) JoinPeer(ctx context.Context, address string, port int, code string) (api.JoinResult, error) {
	f.record(fmt.Sprintf("join %s %d %s", address, port, code))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joinTries <= 0 {
		return api.JoinResult{}, &api.StatusError{Code: 401, Msg: fmt.Sprintf("pairing with %s refused: the code is no longer valid", address)}
	}
	if code != f.joinCode {
		f.joinTries--
		return api.JoinResult{}, &api.StatusError{Code: 401,
			Msg: fmt.Sprintf("pairing with %s refused: wrong code (%d tries left)", address, f.joinTries)}
	}
	if f.peer != nil {
		f.peer.Peers = append(f.peer.Peers, f.joinPeer)
		f.peer.ConfigVersion = f.joinResult.ConfigVersion
	}
	return f.joinResult, nil
}

func (f *fakeClient) Unpair(ctx context.Context, name string) error {
	f.record("unpair " + name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.peer != nil {
		for i, p := range f.peer.Peers {
			if p.Name == name {
				f.peer.Peers = append(f.peer.Peers[:i:i], f.peer.Peers[i+1:]...)
				return nil
			}
		}
	}
	return &api.StatusError{Code: 404, Msg: fmt.Sprintf("no peer %q", name)}
}

func (f *fakeClient) ResolveConflict(ctx context.Context, keep string) (api.ApplyResult, error) {
	f.record("resolve " + keep)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.peer == nil || f.peer.Conflict == nil {
		return api.ApplyResult{}, &api.StatusError{Code: 404, Msg: "no conflict to settle"}
	}
	f.peer.Conflict = nil
	f.peer.Alarms = slices.DeleteFunc(f.peer.Alarms, func(a string) bool { return strings.Contains(a, "conflict") })
	return api.ApplyResult{Version: 13}, nil
}
