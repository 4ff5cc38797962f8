package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs"
	"halb/appliance/certs/certstest"
	"halb/appliance/config"
	"halb/appliance/proxy"
)

// node is a daemon for the peer component's tests: it applies configs
// under one lock, keeps a history and hands every config to the Peer, as
// appliance/daemon does. The link between two nodes is real: TLS over
// loopback sockets.
type node struct {
	t    testing.TB
	name string
	port int

	mu      sync.Mutex // the apply lock
	cfg     *config.Config
	raw     []byte
	hist    [][]byte
	sources []string
	// refuse, when set, makes the node refuse a config (as a listener
	// that cannot bind does).
	refuse func(*config.Config) error
	// beforeApply, when set, runs in change before the config is applied
	// (under the apply lock, as the daemon's apply takes its time).
	beforeApply func()

	shift atomic.Int64 // the node's clock minus the real one
	// own are the node's stick entries; imported what peers sent.
	stickMu  sync.Mutex
	own      []proxy.StickEntry
	imported map[string]proxy.StickEntry
	// tickets are the node's TLS ticket keys as a proxy would hold them:
	// its own, merged with the peer's.
	tickets *proxy.Component
	// store is the node's certificate store; inUse names what its config
	// would use; certsChanged counts the peer's pushes.
	store        *certs.Store
	inUse        sync.Map
	certsChanged atomic.Int64
	events       chan api.Event
	p            *Peer
	stop         context.CancelFunc
	done         chan struct{}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newNode(t testing.TB, name, extra string) *node {
	t.Helper()
	return newNodeAt(t, name, extra, freePort(t))
}

// newNodeAt is newNode with its peer port.
func newNodeAt(t testing.TB, name, extra string, port int) *node {
	t.Helper()
	n := &node{t: t, name: name, port: port, events: make(chan api.Event, 256), tickets: proxy.New(slog.New(slog.DiscardHandler)),
		store: &certs.Store{Dir: filepath.Join(t.TempDir(), "certs")}}
	p, err := New(Options{
		StateDir:   t.TempDir(),
		Logger:     slog.New(slog.DiscardHandler),
		Events:     func(typ, msg string, data any) { n.events <- api.Event{Type: typ, Message: msg} },
		Change:     n.change,
		Running:    n.running,
		Record:     n.record,
		Rollback:   n.rollback,
		Now:        func() time.Time { return time.Now().Add(time.Duration(n.shift.Load())) },
		ListenHost: "127.0.0.1",
		StickEntries: func() []proxy.StickEntry {
			n.stickMu.Lock()
			defer n.stickMu.Unlock()
			return slices.Clone(n.own)
		},
		ImportStick: func(es []proxy.StickEntry) int {
			n.stickMu.Lock()
			defer n.stickMu.Unlock()
			if n.imported == nil {
				n.imported = map[string]proxy.StickEntry{}
			}
			for _, e := range es {
				n.imported[e.Backend+"/"+e.Key] = e
			}
			return len(es)
		},
		Addresses:       func() []string { return []string{"127.0.0.1"} },
		TicketKeys:      n.tickets.TicketKeys,
		MergeTicketKeys: n.tickets.MergeTicketKeys,
		Certs:           n.store,
		CertInUse:       func(name string) bool { _, ok := n.inUse.Load(name); return ok },
		CertsChanged:    func() { n.certsChanged.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	n.p = p
	if err := n.apply(fmt.Sprintf("node: {name: %s, peer_port: %d}\n%s", name, n.port, extra)); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.halt)
	return n
}

func (n *node) start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		n.p.Run(ctx)
	}()
	// Run has taken its context once StartPairing can work.
	waitFor(n.t, "peer component running", func() bool {
		n.p.mu.Lock()
		defer n.p.mu.Unlock()
		return n.p.runCtx == ctx
	})
}

func (n *node) halt() {
	if n.stop != nil {
		n.stop()
		<-n.done
		n.stop = nil
	}
}

func (n *node) running() (*config.Config, []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg, n.raw
}

func (n *node) change(fn ChangeFunc) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out, source, what, err := fn(n.cfg, n.raw, len(n.hist))
	if err != nil || out == nil {
		return 0, err
	}
	_ = what
	if n.beforeApply != nil {
		n.beforeApply()
	}
	return n.applyLocked(source, out)
}

func (n *node) applyLocked(source string, raw []byte) (int, error) {
	cfg, err := config.Parse(n.name+".yaml", raw)
	if err != nil {
		return 0, err
	}
	if n.refuse != nil {
		if err := n.refuse(cfg); err != nil {
			return 0, err
		}
	}
	n.cfg, n.raw = cfg, raw
	n.hist = append(n.hist, raw)
	n.sources = append(n.sources, source)
	n.p.Apply(cfg)
	return len(n.hist), nil
}

func (n *node) apply(raw string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := n.applyLocked(api.SourceAPI, []byte(raw))
	return err
}

// edit applies the running config with edit made to it.
func (n *node) edit(edit func(*config.Config)) {
	n.t.Helper()
	_, raw := n.running()
	out, err := editRaw(raw, edit)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.apply(string(out)); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) record(source, summary string, raw []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hist = append(n.hist, raw)
	n.sources = append(n.sources, source)
	return len(n.hist), nil
}

func (n *node) rollback(v int) (api.ApplyResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v < 1 || v > len(n.hist) {
		return api.ApplyResult{}, api.Errorf(api.ErrNotFound, "no version %d", v)
	}
	got, err := n.applyLocked(api.SourceRollback, n.hist[v-1])
	return api.ApplyResult{Version: got}, err
}

func (n *node) setShift(d time.Duration) { n.shift.Store(int64(d)) }

// servers is the first backend's server addresses.
func (n *node) servers() string {
	cfg, _ := n.running()
	if len(cfg.Backends) == 0 {
		return ""
	}
	var s []string
	for _, x := range cfg.Backends[0].Servers {
		s = append(s, x.Address)
	}
	return strings.Join(s, ",")
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const clusterParts = `vrrp:
  - {name: web-a, interface: lo, vrid: 51, priority: 150, vips: [10.99.0.100/24]}
services:
  - {name: web, listen: ["10.99.0.100:80"], default_backend: www}
backends:
  - name: www
    servers: [{name: web1, address: "10.99.1.11:80"}]
`

// pair has b join a with a's code.
func pair(t testing.TB, a, b *node) api.JoinResult {
	t.Helper()
	code, err := a.p.StartPairing()
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.p.Join(context.Background(), api.JoinRequest{Address: "127.0.0.1", Port: a.port, Code: strings.ToLower(code.Code)})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	return res
}

func setServer(addr string) func(*config.Config) {
	return func(c *config.Config) { c.Backends[0].Servers[0].Address = addr }
}

func TestPairAndSyncBothWays(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	res := pair(t, lb1, lb2)
	if res.Peer != "lb1" || res.Fingerprint != lb1.p.Fingerprint() {
		t.Fatalf("join result %+v, want lb1 with fingerprint %s", res, lb1.p.Fingerprint())
	}
	cfg2, _ := lb2.running()
	if cfg2.Node.Name != "lb2" || len(cfg2.Services) != 1 || cfg2.VRRP[0].Priority != 100 {
		t.Fatalf("lb2 after join: node %q, %d services, priority %d; want lb2, lb1's service, 150-50", cfg2.Node.Name, len(cfg2.Services), cfg2.VRRP[0].Priority)
	}
	if len(cfg2.Peers) != 1 || cfg2.Peers[0].Fingerprint != lb1.p.Fingerprint() || cfg2.Peers[0].Port != lb1.port {
		t.Fatalf("lb2's peers = %+v", cfg2.Peers)
	}
	waitFor(t, "lb1 pins lb2", func() bool {
		c, _ := lb1.running()
		return len(c.Peers) == 1 && c.Peers[0].Fingerprint == lb2.p.Fingerprint() && c.Peers[0].Name == "lb2"
	})
	if _, err := lb1.p.Pairing(); err == nil {
		t.Error("the pairing code is still active after a pairing")
	}
	waitFor(t, "both in sync and reachable", func() bool {
		s1, s2 := lb1.p.status(), lb2.p.status()
		return len(s1.Peers) == 1 && s1.Peers[0].Reachable && s1.Peers[0].InSync &&
			len(s2.Peers) == 1 && s2.Peers[0].Reachable && s2.Peers[0].InSync
	})

	// A change on lb1 reaches lb2, and lb1 says so only once lb2 applied it.
	lb1.edit(setServer("10.99.1.12:80"))
	waitFor(t, "lb1's change on lb2", func() bool { return lb2.servers() == "10.99.1.12:80" })
	waitFor(t, "applied on lb2", func() bool {
		s := lb1.p.status().Peers[0].Sync
		return s != nil && s.State == "applied"
	})
	// And back.
	lb2.edit(setServer("10.99.1.13:80"))
	waitFor(t, "lb2's change on lb1", func() bool { return lb1.servers() == "10.99.1.13:80" })
	c1, _ := lb1.running()
	if c1.Node.Name != "lb1" || c1.VRRP[0].Priority != 150 || c1.Peers[0].Name != "lb2" {
		t.Errorf("lb1's node parts changed by lb2's change: %+v %+v", c1.Node, c1.Peers)
	}
	if v1, v2 := lb1.p.status().ConfigVersion, lb2.p.status().ConfigVersion; v1 != v2 || v1 != "lb1:2 lb2:1" {
		t.Errorf("versions lb1 %q lb2 %q, want both lb1:2 lb2:1", v1, v2)
	}
	// A node-part change is not replicated.
	lb2.edit(func(c *config.Config) { c.VRRP[0].Priority = 90 })
	time.Sleep(3 * exchangeEvery) // nothing to wait for: nothing must happen
	if c1, _ := lb1.running(); c1.VRRP[0].Priority != 150 {
		t.Errorf("lb2's priority reached lb1: %d", c1.VRRP[0].Priority)
	}
}

// TestPairingWhileTheShowerReconciles: the shower uses its code up, then
// applies the config that pins the joiner; its component reconciling in
// between (its once-a-second tick, when an apply takes a moment on a slow
// machine) must not close the peer port and so cut off the exchange
// (before the fix the joiner read EOF while the shower pinned it: paired
// on one side only).
func TestPairingWhileTheShowerReconciles(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	var reconciled atomic.Bool
	lb1.mu.Lock()
	lb1.beforeApply = func() {
		lb1.beforeApply = nil
		lb1.p.mu.Lock()
		ctx := lb1.p.runCtx
		lb1.p.mu.Unlock()
		lb1.p.reconcile(ctx)
		reconciled.Store(true)
	}
	lb1.mu.Unlock()
	res := pair(t, lb1, lb2)
	if !reconciled.Load() {
		t.Fatal("the shower applied no config during the pairing")
	}
	if res.Peer != "lb1" {
		t.Fatalf("join result %+v", res)
	}
	waitFor(t, "both in sync and reachable", func() bool {
		s1, s2 := lb1.p.status(), lb2.p.status()
		return len(s1.Peers) == 1 && s1.Peers[0].Reachable && s1.Peers[0].InSync &&
			len(s2.Peers) == 1 && s2.Peers[0].Reachable && s2.Peers[0].InSync
	})
}

func TestPairingWrongCodesKillTheCode(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb3 := newNode(t, "lb3", "")
	code, err := lb1.p.StartPairing()
	if err != nil {
		t.Fatal(err)
	}
	wrong := "00000-00000"
	if code.Code == wrong {
		wrong = "00000-00001"
	}
	for i := 1; i <= CodeTries; i++ {
		_, err := lb3.p.Join(context.Background(), api.JoinRequest{Address: "127.0.0.1", Port: lb1.port, Code: wrong})
		if !errors.Is(err, api.ErrUnauthorized) || !strings.Contains(err.Error(), fmt.Sprintf("(%d tries left on lb1)", CodeTries-i)) {
			t.Fatalf("try %d: %v, want the code refused with %d tries left", i, err, CodeTries-i)
		}
	}
	_, err = lb3.p.Join(context.Background(), api.JoinRequest{Address: "127.0.0.1", Port: lb1.port, Code: code.Code})
	if err == nil || !strings.Contains(err.Error(), "no pairing code is active on lb1") && !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("the right code after 5 wrong ones: %v, want refused (code dead)", err)
	}
	if c, _ := lb1.running(); len(c.Peers) != 0 {
		t.Errorf("lb1 pinned someone: %+v", c.Peers)
	}
	if _, err := lb3.p.Join(context.Background(), api.JoinRequest{Address: "127.0.0.1", Port: lb1.port, Code: "ABCDE-FGHJU"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a code with U: %v, want invalid", err)
	}
}

// TestRelayInTheMiddle: a host that terminates TLS with its own
// certificate on both sides and relays the pairing messages (with the right
// code, which it cannot learn) makes the pairing fail.
func TestRelayInTheMiddle(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	relayID, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{relayID.Cert},
		ClientAuth: tls.RequireAnyClientCert, NextProtos: []string{alpnPair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lb1.port), &tls.Config{MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{relayID.Cert}, InsecureSkipVerify: true, NextProtos: []string{alpnPair}})
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(up, c)
		io.Copy(c, up)
	}()
	code, err := lb1.p.StartPairing()
	if err != nil {
		t.Fatal(err)
	}
	_, err = lb2.p.Join(context.Background(), api.JoinRequest{Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Code: code.Code})
	if !errors.Is(err, api.ErrUnauthorized) || !strings.Contains(err.Error(), "re-terminates TLS") {
		t.Fatalf("pairing through a relay: %v, want refused", err)
	}
	if c, _ := lb2.running(); len(c.Peers) != 0 || len(c.Services) != 0 {
		t.Errorf("lb2 took something through the relay: %+v", c)
	}
	if p, err := lb1.p.Pairing(); err != nil || p.TriesLeft != CodeTries-1 {
		t.Errorf("lb1's code after the relay: %+v %v, want one try used", p, err)
	}
}

// TestUnpairedHostRefused: a TLS client whose certificate is not pinned
// cannot complete a handshake on the link, and so reads and writes nothing.
func TestUnpairedHostRefused(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	stranger, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, certs := range [][]tls.Certificate{{stranger.Cert}, nil} {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lb1.port), &tls.Config{MinVersion: tls.VersionTLS13,
			Certificates: certs, InsecureSkipVerify: true, NextProtos: []string{alpnLink}})
		if err == nil {
			// TLS 1.3: the client learns of the refusal on its first read.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "POST /peer/v1/state HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
			b := make([]byte, 100)
			var n int
			n, err = c.Read(b)
			c.Close()
			if err == nil {
				t.Fatalf("unpinned client (%d certs) read %q", len(certs), b[:n])
			}
		}
		t.Logf("unpinned client with %d certificate(s): %v", len(certs), err)
	}
}

func TestRejectedChangeIsReported(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	lb2.mu.Lock()
	lb2.refuse = func(c *config.Config) error {
		if len(c.Backends) > 0 && c.Backends[0].Servers[0].Address == "10.99.1.66:80" {
			return errors.New("proxy: listen 10.99.0.100:80: address in use")
		}
		return nil
	}
	lb2.mu.Unlock()
	lb1.edit(setServer("10.99.1.66:80"))
	waitFor(t, "the rejection reported on lb1", func() bool {
		s := lb1.p.status()
		return s.Peers[0].Sync != nil && s.Peers[0].Sync.State == "rejected" && strings.Contains(s.Peers[0].Sync.Error, "address in use") &&
			len(s.Alarms) > 0 && strings.Contains(strings.Join(s.Alarms, "\n"), "peer lb2 rejected config lb1:2")
	})
	if lb2.servers() != "10.99.1.11:80" {
		t.Errorf("lb2 runs %s, want its config unchanged", lb2.servers())
	}
}

// TestPartitionConflict: both nodes change the config while they cannot
// talk; on reconnect both converge on the later change, both report the
// conflict naming the loser, and the loser is in both histories.
func TestPartitionConflict(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	waitFor(t, "in sync", func() bool { s := lb1.p.status(); return s.Peers[0].InSync })
	lb2.halt() // the partition: lb2's link and port are down
	lb1.edit(setServer("10.99.1.21:80"))
	time.Sleep(20 * time.Millisecond) // lb2's change is the later one
	lb2.edit(setServer("10.99.1.22:80"))
	lb2.start()
	waitFor(t, "both converge on lb2's later change", func() bool {
		return lb1.servers() == "10.99.1.22:80" && lb2.servers() == "10.99.1.22:80"
	})
	for _, n := range []*node{lb1, lb2} {
		waitFor(t, n.name+" reports the conflict", func() bool { return n.p.status().Conflict != nil })
		c := n.p.status().Conflict
		if c.Loser != "lb1:2" || c.Winner != "lb1:1 lb2:1" {
			t.Errorf("%s: conflict %+v, want lb1:2 lost to lb1:1 lb2:1", n.name, c)
		}
		if c.LoserHistory == 0 || !strings.Contains(string(n.hist[c.LoserHistory-1]), "10.99.1.21:80") {
			t.Errorf("%s: the loser is not in the history at %d", n.name, c.LoserHistory)
		}
	}
	waitFor(t, "same version on both", func() bool {
		return lb1.p.status().ConfigVersion == lb2.p.status().ConfigVersion
	})
	// lb1 keeps its change after all: it runs again and reaches lb2.
	if _, err := lb1.p.Resolve("mine"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lb1's kept change on lb2", func() bool { return lb2.servers() == "10.99.1.21:80" })
	if lb1.p.status().Conflict != nil {
		t.Error("conflict still reported on lb1 after keep mine")
	}
}

func TestClockSkew(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	lb2.setShift(2 * time.Second)
	waitFor(t, "skew measured", func() bool {
		p := lb1.p.status().Peers[0]
		return p.SkewAlarm && p.ClockSkew > 1900*time.Millisecond && p.ClockSkew < 2100*time.Millisecond
	})
	waitFor(t, "lb2 sees lb1 behind", func() bool {
		p := lb2.p.status().Peers[0]
		return p.SkewAlarm && p.ClockSkew < -1900*time.Millisecond
	})
	lb2.setShift(0)
	waitFor(t, "skew gone", func() bool { return !lb1.p.status().Peers[0].SkewAlarm })
}

func TestUnpairAndRepairFreshNode(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	lb1.edit(setServer("10.99.1.31:80"))
	waitFor(t, "synced", func() bool { return lb2.servers() == "10.99.1.31:80" })
	// lb2 dies for good; a fresh lb2 (new key) pairs again.
	lb2.halt()
	fresh := newNode(t, "lb2", "")
	pair(t, lb1, fresh)
	if fresh.servers() != "10.99.1.31:80" {
		t.Errorf("fresh lb2 runs %q, want lb1's", fresh.servers())
	}
	c1, _ := lb1.running()
	if len(c1.Peers) != 1 || c1.Peers[0].Fingerprint != fresh.p.Fingerprint() || lb1.servers() != "10.99.1.31:80" {
		t.Errorf("lb1 after re-pairing: peers %+v servers %s", c1.Peers, lb1.servers())
	}
	waitFor(t, "fresh lb2 reachable", func() bool { return lb1.p.status().Peers[0].Reachable })
	if err := lb1.p.Unpair("lb2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both forget each other", func() bool {
		a, _ := lb1.running()
		b, _ := fresh.running()
		return len(a.Peers) == 0 && len(b.Peers) == 0
	})
	waitFor(t, "lb1's peer port closed", func() bool { return lb1.p.status().Listen == "" })
	if err := lb1.p.Unpair("lb2"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unpair twice: %v", err)
	}
}

func (n *node) importedCount() int {
	n.stickMu.Lock()
	defer n.stickMu.Unlock()
	return len(n.imported)
}

// TestStickSync: source-persistence entries go to the peer in batches; a
// peer that was away gets the whole table when it is back.
func TestStickSync(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	waitFor(t, "link up", func() bool { return lb1.p.status().Peers[0].Reachable })
	exp := time.Now().Add(time.Hour)
	entry := func(i int) proxy.StickEntry {
		return proxy.StickEntry{Backend: "www", Key: fmt.Sprintf("10.1.%d.%d", i/250, i%250), Server: "web1", Expires: exp}
	}
	// As the proxy does: the table holds what it tells.
	put := func(i int) {
		lb1.stickMu.Lock()
		lb1.own = append(lb1.own, entry(i))
		lb1.stickMu.Unlock()
		lb1.p.QueueStick(entry(i))
	}
	for i := range 12000 {
		put(i)
	}
	waitFor(t, "12000 entries on lb2", func() bool { return lb2.importedCount() == 12000 })
	waitFor(t, "lb1 counts them sent", func() bool {
		var sent int
		fmt.Sscanf(lb1.p.status().Peers[0].Persistence, "%d sent", &sent)
		return sent >= 12000
	})
	// lb2 away: entries made meanwhile reach it with the catch-up.
	lb2.halt()
	for i := 12000; i < 12500; i++ {
		put(i)
	}
	lb2.start()
	waitFor(t, "the catch-up on lb2", func() bool { return lb2.importedCount() == 12500 })
}

// BenchmarkStickSync measures the entries a second the peer link carries
// (two nodes over loopback TLS): go test -bench StickSync ./appliance/peer.
func BenchmarkStickSync(b *testing.B) {
	lb1 := newNode(b, "lb1", clusterParts)
	lb2 := newNode(b, "lb2", "")
	pair(b, lb1, lb2)
	waitFor(b, "link up", func() bool { return lb1.p.status().Peers[0].Reachable && lb2.p.status().Peers[0].Reachable })
	time.Sleep(2 * exchangeEvery) // past the catch-up of the link coming up
	exp := time.Now().Add(time.Hour)
	b.ResetTimer()
	for i := range b.N {
		// As the proxy does: the table holds what it tells (a queue
		// that overflows sends the table).
		e := proxy.StickEntry{Backend: "www", Key: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Server: "web1", Expires: exp}
		lb1.stickMu.Lock()
		lb1.own = append(lb1.own, e)
		lb1.stickMu.Unlock()
		lb1.p.QueueStick(e)
	}
	waitFor(b, "entries on lb2", func() bool { return lb2.importedCount() == b.N })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// TestSwappedCertificateRefused: another host (a new key) answering at a
// paired peer's address is refused by the pin, and nothing is synced to it.
func TestSwappedCertificateRefused(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	waitFor(t, "link up", func() bool { return lb1.p.status().Peers[0].Reachable })
	lb2.halt()
	impostor := newNodeAt(t, "lb2", "", lb2.port)
	// The impostor lists lb1 as if paired, with lb1's real fingerprint.
	impostor.edit(func(c *config.Config) {
		c.Peers = []config.Peer{{Name: "lb1", Address: "127.0.0.1", Port: lb1.port, Fingerprint: lb1.p.Fingerprint()}}
	})
	waitFor(t, "lb1 refuses the impostor", func() bool {
		p := lb1.p.status().Peers[0]
		return !p.Reachable && strings.Contains(p.Error, "not the one pinned")
	})
	lb1.edit(setServer("10.99.1.77:80"))
	time.Sleep(3 * exchangeEvery) // nothing may arrive: nothing to wait for
	if impostor.servers() != "" {
		t.Errorf("the impostor got lb1's config: %q", impostor.servers())
	}
	// And lb1 refuses the impostor's connections (its certificate is not
	// pinned on lb1).
	if s := impostor.p.status().Peers[0]; s.Reachable {
		t.Errorf("the impostor reaches lb1: %+v", s)
	}
}

// TestOfferAnswerLost: when the peer's apply outlasts the offer's request
// (its answer is lost to the timeout), the sender sees the peer run the
// version in the state exchange and says applied. (Before the fix it said
// "sending" for good: found by the image test, two VMs under load.)
func TestOfferAnswerLost(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	waitFor(t, "both in sync", func() bool {
		s1 := lb1.p.status()
		return len(s1.Peers) == 1 && s1.Peers[0].InSync
	})
	lb2.mu.Lock()
	lb2.beforeApply = func() {
		lb2.beforeApply = nil
		time.Sleep(requestTimeout + 500*time.Millisecond)
	}
	lb2.mu.Unlock()
	lb1.edit(setServer("10.99.1.14:80"))
	waitFor(t, "the offer's request timed out", func() bool {
		s := lb1.p.status().Peers[0].Sync
		return s != nil && s.State == "sending" && s.Error != ""
	})
	waitFor(t, "lb1's change on lb2", func() bool { return lb2.servers() == "10.99.1.14:80" })
	waitFor(t, "applied on lb2 once lb2 is seen running it", func() bool {
		s := lb1.p.status().Peers[0].Sync
		return s != nil && s.State == "applied"
	})
}

// TestTicketKeysShared: the state exchange gives each node the other's TLS
// session ticket keys; they are not kept with the peer's state (status).
func TestTicketKeysShared(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	k1, k2 := lb1.tickets.TicketKeys(), lb2.tickets.TicketKeys()
	if len(k1) != 1 || len(k2) != 1 || bytes.Equal(k1[0].Key, k2[0].Key) {
		t.Fatalf("keys before pairing: %d, %d", len(k1), len(k2))
	}
	pair(t, lb1, lb2)
	has := func(n *node, k proxy.TicketKey) bool {
		return slices.ContainsFunc(n.tickets.TicketKeys(), func(o proxy.TicketKey) bool { return bytes.Equal(o.Key, k.Key) })
	}
	waitFor(t, "each node to hold both keys", func() bool { return has(lb1, k2[0]) && has(lb2, k1[0]) })
	st, _ := json.Marshal(lb1.p.status())
	for _, k := range [][]byte{k1[0].Key, k2[0].Key} {
		if bytes.Contains(st, []byte(base64.StdEncoding.EncodeToString(k))) {
			t.Fatal("a ticket key is in the peer status")
		}
	}
}

// TestCertsShared: a certificate added, replaced or removed on one node
// reaches the other's store; the newer change wins; a removal of a
// certificate the receiver uses is refused.
func TestCertsShared(t *testing.T) {
	lb1 := newNode(t, "lb1", clusterParts)
	lb2 := newNode(t, "lb2", "")
	pair(t, lb1, lb2)
	root := certstest.Root(t, "root")
	leaf := func(cn string) certstest.Pair { return root.Leaf(t, certstest.Options{CN: cn, DNS: []string{cn}}) }
	add := func(n *node, name string, p certstest.Pair) {
		t.Helper()
		if _, err := n.store.Add(name, certstest.Cat(p.CertPEM, root.PEM), p.KeyPEM, time.Now(), true); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool {
			m1, _ := lb1.store.Manifest(time.Now())
			m2, _ := lb2.store.Manifest(time.Now())
			return len(m1) > 0 && fmt.Sprint(m1) == fmt.Sprint(m2)
		})
	}
	www := leaf("www.example.com")
	add(lb1, "www", www)
	same("www on both")
	if _, info, err := lb2.store.Load("www", time.Now()); err != nil || info.Fingerprint == "" {
		t.Fatalf("lb2's www: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // a later change
	add(lb2, "api", leaf("api.example.com"))
	www2 := leaf("www.example.com")
	add(lb2, "www", www2)
	same("lb2's changes on lb1")
	if c, _, _ := lb1.store.Load("www", time.Now()); !bytes.Equal(c.Certificate[0], www2.Cert.Raw) {
		t.Fatal("lb1 kept the older www")
	}
	lb2.inUse.Store("api", true)
	if err := lb1.store.Remove("api"); err != nil {
		t.Fatal(err)
	}
	if err := lb1.store.Remove("www"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "www removed on lb2", func() bool { _, _, err := lb2.store.Load("www", time.Now()); return err != nil })
	if _, _, err := lb2.store.Load("api", time.Now()); err != nil {
		t.Errorf("api, in use on lb2, was removed there: %v", err)
	}
	waitFor(t, "lb1 to stop pushing the refused removal", func() bool {
		l := lb1.p.linkOf("lb2")
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.certRefused["api"].IsZero()
	})
	if lb1.certsChanged.Load() == 0 || lb2.certsChanged.Load() == 0 {
		t.Errorf("CertsChanged called %d and %d times", lb1.certsChanged.Load(), lb2.certsChanged.Load())
	}
}
