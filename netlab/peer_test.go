package netlab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs/certstest"
	"halb/appliance/config"
	"halb/appliance/peer"
	"halb/appliance/proxy"
)

// peerStatus reads status.peer of n.
func peerStatus(t *testing.T, n *Node) api.PeerStatus {
	t.Helper()
	st, err := n.API().Status(context.Background())
	if err != nil {
		t.Fatalf("%s: status: %v", n.Host.Name, err)
	}
	var p api.PeerStatus
	if err := json.Unmarshal(st.Peer, &p); err != nil {
		t.Fatalf("%s: status.peer: %v: %s", n.Host.Name, err, st.Peer)
	}
	return p
}

var receivedEntries = regexp.MustCompile(`(\d+) received`)

var pairingCode = regexp.MustCompile(`pairing code\s+([0-9A-Z]{5}-[0-9A-Z]{5})`)

// pairCode has n make a pairing code with halbctl and returns it.
func pairCode(t *testing.T, ctx context.Context, n *Node) string {
	t.Helper()
	out, err := n.Halbctl(ctx, "pair", "show")
	if err != nil {
		t.Fatal(err)
	}
	m := pairingCode.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no code in halbctl pair show:\n%s", out)
	}
	return m[1]
}

// editRunning applies n's running config with edit made to it, through
// the API (as halbctl config apply does).
func editRunning(t *testing.T, n *Node, edit func(*config.Config)) time.Time {
	t.Helper()
	ctx := context.Background()
	raw, err := n.API().Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	out, err := config.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.API().ApplyConfig(ctx, out); err != nil {
		t.Fatalf("%s: apply: %v", n.Host.Name, err)
	}
	return time.Now()
}

// header sets the web service's response header X-Peer-Test.
func header(v string) func(*config.Config) {
	return func(c *config.Config) {
		if c.Services[0].ResponseHeaders == nil {
			c.Services[0].ResponseHeaders = map[string]string{}
		}
		c.Services[0].ResponseHeaders["X-Peer-Test"] = v
	}
}

// runs reports whether n runs a config whose web service sends
// X-Peer-Test: v.
func runs(n *Node, v string) bool {
	raw, err := n.API().Config(context.Background())
	return err == nil && strings.Contains(string(raw), "X-Peer-Test: "+v+"\n")
}

// TestPeerPairingAndSync pairs the two halb nodes of the classic lab by a
// code, as an operator does with halbctl, and proves the peer link: a
// change on either node reaches the other within a second; a wrong code is
// refused and the code dies after 5 tries; an unpaired host's TLS
// connection is refused; a change the peer cannot take is reported to the
// origin; changes made during a partition converge on reconnect, reported
// as a conflict with the loser in the history; and with VRRP multicast
// blocked between the nodes, the split brain is seen and settled over the
// peer link.
func TestPeerPairingAndSync(t *testing.T) {
	SkipUnlessRoot(t)
	row := reportRow(t, "peer-sync", string(FlavorHalb))
	l, c, ctx := peerLab(t)
	lb1, lb2 := c.LB[0], c.LB[1]

	// A third node that knows the address but not the code.
	h3, err := l.AddHost("lb3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h3.Connect(c.Front, "eth0", "192.168.10.3/24"); err != nil {
		t.Fatal(err)
	}
	lb3, err := l.StartNode(h3, FlavorHalb, []byte("node: {name: lb3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !WaitFor(10*time.Second, func() bool { _, err := lb3.API().Status(ctx); return err == nil }) {
		t.Fatal("lb3's halbd does not answer")
	}

	code := pairCode(t, ctx, lb1)
	wrong := "00000-00000"
	if code == wrong {
		wrong = "00000-00001"
	}
	for i := 1; i <= peer.CodeTries; i++ {
		out, err := lb3.Halbctl(ctx, "pair", "join", "192.168.10.1", wrong)
		if err == nil || !strings.Contains(out, fmt.Sprintf("(%d tries left on lb1)", peer.CodeTries-i)) {
			t.Fatalf("lb3's try %d with a wrong code: %v\n%s", i, err, out)
		}
	}
	out, err := lb3.Halbctl(ctx, "pair", "join", "192.168.10.1", code)
	if err == nil || !strings.Contains(out, "no pairing code is active on lb1") && !strings.Contains(out, "cannot reach") {
		t.Fatalf("the right code after 5 wrong tries: %v\n%s", err, out)
	}
	row.Notef("a third node with a wrong code: refused 5 times, then the right code is refused too (code dead)")

	// The operator pairs lb2 with a fresh code.
	code = pairCode(t, ctx, lb1)
	start := time.Now()
	out, err = lb2.Halbctl(ctx, "pair", "join", "192.168.10.1", strings.ToLower(code))
	if err != nil || !strings.Contains(out, "paired with lb1") {
		t.Fatalf("lb2 pair join: %v\n%s", err, out)
	}
	if !WaitFor(10*time.Second, func() bool {
		p1, p2 := peerStatus(t, lb1), peerStatus(t, lb2)
		return len(p1.Peers) == 1 && p1.Peers[0].Paired && p1.Peers[0].Reachable && p1.Peers[0].InSync &&
			len(p2.Peers) == 1 && p2.Peers[0].Reachable && p2.Peers[0].InSync
	}) {
		t.Fatalf("not in sync after pairing:\nlb1 %+v\nlb2 %+v", peerStatus(t, lb1), peerStatus(t, lb2))
	}
	row.Notef("paired by halbctl pair show / pair join in %s (both reachable and in sync)", time.Since(start).Round(time.Millisecond))

	// An unpaired host's TLS connection is refused on the peer port.
	err = h3.Do(func() error {
		id, err := peer.LoadIdentity(t.TempDir())
		if err != nil {
			return err
		}
		d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{id.Cert},
			InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
		conn, err := d.DialContext(ctx, "tcp", "192.168.10.1:7900")
		if err != nil {
			return nil // refused at the handshake
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST /peer/v1/state HTTP/1.1\r\nHost: lb1\r\nContent-Length: 2\r\n\r\n{}")
		b := make([]byte, 64)
		if n, err := conn.Read(b); err == nil {
			return fmt.Errorf("an unpaired host read %q from the peer port", b[:n])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A change on either node reaches the other, within a second.
	var took []time.Duration
	for i := range 6 {
		from, to := lb1, lb2
		if i%2 == 1 {
			from, to = lb2, lb1
		}
		v := fmt.Sprintf("v%d", i)
		at := editRunning(t, from, header(v))
		if !WaitFor(5*time.Second, func() bool { return runs(to, v) }) {
			t.Fatalf("%s's change %s did not reach %s", from.Host.Name, v, to.Host.Name)
		}
		d := time.Since(at)
		took = append(took, d)
		if d > time.Second {
			t.Errorf("%s's change reached %s after %s, want within 1s", from.Host.Name, to.Host.Name, d)
		}
		// The origin says "applied on peer" only once the peer applied it.
		if !WaitFor(5*time.Second, func() bool {
			s := peerStatus(t, from).Peers[0].Sync
			return s != nil && s.State == "applied"
		}) {
			t.Fatalf("%s does not say its change was applied on %s: %+v", from.Host.Name, to.Host.Name, peerStatus(t, from).Peers[0].Sync)
		}
	}
	slices.Sort(took)
	row.Notef("a change reached the peer in %s median (min %s, max %s, 6 changes, 3 each way)",
		took[len(took)/2].Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	// Node parts stay: each node keeps its name and priority.
	for i, n := range []*Node{lb1, lb2} {
		raw, _ := n.API().Config(ctx)
		cfg, err := config.Parse("running", raw)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Node.Name != n.Host.Name || cfg.VRRP[0].Priority != c.Opts.Priorities[i] {
			t.Errorf("%s runs node %q priority %d, want its own (%d)", n.Host.Name, cfg.Node.Name, cfg.VRRP[0].Priority, c.Opts.Priorities[i])
		}
	}

	// A change the peer cannot take is reported back to the origin: lb2
	// cannot listen where something else does.
	blocker, err := c.LB[1].Host.Listen("tcp", "192.168.10.2:9099")
	if err != nil {
		t.Fatal(err)
	}
	editRunning(t, lb1, func(c *config.Config) {
		c.Services = append(c.Services, config.Service{Name: "extra", Listen: []string{"0.0.0.0:9099"}, Mode: "tcp", DefaultBackend: c.Backends[0].Name})
	})
	if !WaitFor(5*time.Second, func() bool {
		s := peerStatus(t, lb1)
		return s.Peers[0].Sync != nil && s.Peers[0].Sync.State == "rejected" && strings.Contains(s.Peers[0].Sync.Error, "9099")
	}) {
		t.Fatalf("lb1 does not report lb2's rejection: %+v", peerStatus(t, lb1))
	}
	if raw, _ := lb2.API().Config(ctx); strings.Contains(string(raw), "extra") {
		t.Error("lb2 runs the config it rejected")
	}
	row.Notef("a change lb2 cannot take (listen address in use there): lb1 reports %q", peerStatus(t, lb1).Peers[0].Sync.Error)
	blocker.Close()
	editRunning(t, lb1, func(c *config.Config) { c.Services = c.Services[:len(c.Services)-1] })
	if !WaitFor(5*time.Second, func() bool { return peerStatus(t, lb1).Peers[0].InSync }) {
		t.Fatalf("not in sync after the fix: %+v", peerStatus(t, lb1))
	}

	// Partition the peer link, change both, heal: both converge on the
	// later change, both report the conflict, the loser is in the history.
	if err := lb2.Host.Nft("table inet netlab_peerlink {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 7900 drop\n  tcp sport 7900 drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(10*time.Second, func() bool { return !peerStatus(t, lb1).Peers[0].Reachable }) {
		t.Fatal("lb1 still sees lb2 through the partition")
	}
	editRunning(t, lb1, header("lost"))
	time.Sleep(50 * time.Millisecond) // lb2's change is the later one
	editRunning(t, lb2, header("won"))
	if err := lb2.Host.Nft("delete table inet netlab_peerlink\n"); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(15*time.Second, func() bool { return runs(lb1, "won") && runs(lb2, "won") }) {
		t.Fatal("the nodes did not converge on the later change after the partition")
	}
	for _, n := range []*Node{lb1, lb2} {
		var cf *api.Conflict
		if !WaitFor(5*time.Second, func() bool { cf = peerStatus(t, n).Conflict; return cf != nil }) {
			t.Fatalf("%s reports no conflict", n.Host.Name)
		}
		lost, err := n.API().HistoryConfig(ctx, cf.LoserHistory)
		if err != nil || !strings.Contains(string(lost), "X-Peer-Test: lost") {
			t.Errorf("%s: the loser is not version %d of its history: %v", n.Host.Name, cf.LoserHistory, err)
		}
		row.Notef("%s after the partition: %s", n.Host.Name, cf.Message)
	}
	if _, err := lb2.Halbctl(ctx, "peer", "resolve", "theirs"); err != nil {
		t.Fatal(err)
	}

	// Split brain: VRRP adverts blocked between the nodes, the peer link
	// up. Both would be MASTER; the peer link settles it by priority.
	if err := lb2.Host.Nft("table inet netlab_novrrp {\n chain in {\n  type filter hook input priority 0;\n  meta l4proto 112 drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	defer lb2.Host.Nft("delete table inet netlab_novrrp\n")
	var alarm string
	if !WaitFor(15*time.Second, func() bool {
		for _, a := range peerStatus(t, lb2).Alarms {
			if strings.Contains(a, "hears no adverts") {
				alarm = a
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no alarm on lb2 with VRRP blocked: %+v", peerStatus(t, lb2))
	}
	// Settled: only lb1 (priority 150) holds the VIP, for several seconds.
	for range 5 {
		time.Sleep(time.Second)
		if h := c.VIPHolders(); !slices.Equal(h, []string{"lb1"}) {
			t.Fatalf("VIP holders with VRRP blocked and the peer link up: %v, want lb1 only", h)
		}
	}
	row.Notef("VRRP blocked between the nodes: lb2 says %q; only lb1 holds the VIP", alarm)
}

// peerLab is the classic lab with halb nodes (200ms adverts), converged,
// and a context that ends with the test (at most 4 minutes).
func peerLab(t *testing.T) (*Lab, *Classic, context.Context) {
	t.Helper()
	l := New(t)
	c, err := NewClassic(l, ClassicOptions{Flavor: FlavorHalb, AdvertInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitConverged(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return l, c, ctx
}

// pairByHalbctl pairs b with a as an operator does: halbctl pair show on
// a, halbctl pair join on b; it waits until both are in sync.
func pairByHalbctl(t *testing.T, ctx context.Context, a, b *Node) {
	t.Helper()
	code := pairCode(t, ctx, a)
	addr := a.Host.Addr("eth0", 4).String()
	if out, err := b.Halbctl(ctx, "pair", "join", addr, code); err != nil {
		t.Fatalf("pair join: %v\n%s", err, out)
	}
	if !WaitFor(10*time.Second, func() bool {
		pa, pb := peerStatus(t, a), peerStatus(t, b)
		return len(pa.Peers) == 1 && pa.Peers[0].Reachable && pa.Peers[0].InSync && len(pb.Peers) == 1 && pb.Peers[0].Reachable
	}) {
		t.Fatalf("not in sync after pairing:\n%+v\n%+v", peerStatus(t, a), peerStatus(t, b))
	}
}

// TestPeerPersistenceFailover: clients stuck to a server by their source
// address (tcp service) and by cookie (http service) keep their server
// when the MASTER dies and its peer takes the VIP: the source entries
// reached the peer over the peer link; the cookie names the server.
func TestPeerPersistenceFailover(t *testing.T) {
	SkipUnlessRoot(t)
	row := reportRow(t, "peer-persistence-failover", string(FlavorHalb))
	_, c, ctx := peerLab(t)
	lb1, lb2 := c.LB[0], c.LB[1]
	pairByHalbctl(t, ctx, lb1, lb2)
	editRunning(t, lb1, func(cfg *config.Config) {
		for i := range cfg.Backends {
			// Random balancing: a node without the entries would pick
			// each client's server by chance (round robin would repeat
			// lb1's sequence on lb2 and keep them all without any sync).
			cfg.Backends[i].Balance = "random"
			switch cfg.Backends[i].Name {
			case "web":
				cfg.Backends[i].Sticky = config.Sticky{Cookie: "SRVID"}
			case "web-tcp":
				cfg.Backends[i].Sticky = config.Sticky{Source: true}
			}
		}
	})
	if !WaitFor(10*time.Second, func() bool {
		raw, err := lb2.API().Config(ctx)
		return err == nil && strings.Contains(string(raw), "SRVID") && strings.Contains(string(raw), "source: true")
	}) {
		t.Fatal("the sticky settings did not reach lb2")
	}

	// 20 clients: each its own source address and its own cookie jar.
	const clients = 20
	var sources []netip.Addr
	for i := range clients {
		sources = append(sources, netip.AddrFrom4([4]byte{192, 168, 10, byte(150 + i)}))
	}
	if err := c.Client.AddAddrs("eth0", sources, 24); err != nil {
		t.Fatal(err)
	}
	tcpURL := fmt.Sprintf("http://%s:%d/", ClassicVIP, ClassicTCPPort)
	bySource := map[netip.Addr]string{}
	cookies := make([]string, clients)
	byCookie := make([]string, clients)
	for i, src := range sources {
		be, _, err := c.Client.GetFrom(src, tcpURL, "")
		if err != nil {
			t.Fatal(err)
		}
		bySource[src] = be
		be, cookie, err := c.Client.GetFrom(src, c.URL, "")
		if err != nil || cookie == "" {
			t.Fatalf("cookie client %d: %q %q %v", i, be, cookie, err)
		}
		byCookie[i], cookies[i] = be, cookie
	}
	// The source entries reach lb2 over the peer link.
	if !WaitFor(10*time.Second, func() bool {
		m := receivedEntries.FindStringSubmatch(peerStatus(t, lb2).Peers[0].Persistence)
		got := 0
		if m != nil {
			fmt.Sscan(m[1], &got)
		}
		return got >= clients
	}) {
		t.Fatalf("lb2 did not receive the source entries: %q", peerStatus(t, lb2).Peers[0].Persistence)
	}

	// lb1 dies; lb2 takes the VIP.
	if err := lb1.Kill(); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(10*time.Second, func() bool { return slices.Equal(c.LiveVIPHolders(), []string{"lb2"}) }) {
		t.Fatalf("live VIP holders after lb1 died: %v", c.LiveVIPHolders())
	}
	keptSource, keptCookie := 0, 0
	for i, src := range sources {
		if !WaitFor(5*time.Second, func() bool { _, _, err := c.Client.GetFrom(src, tcpURL, ""); return err == nil }) {
			t.Fatalf("no answer through lb2 from %s", src)
		}
		be, _, err := c.Client.GetFrom(src, tcpURL, "")
		if err != nil {
			t.Fatal(err)
		}
		if be == bySource[src] {
			keptSource++
		}
		be, _, err = c.Client.GetFrom(src, c.URL, cookies[i])
		if err != nil {
			t.Fatal(err)
		}
		if be == byCookie[i] {
			keptCookie++
		}
	}
	row.Notef("after lb1 died: %d/%d clients stuck by source kept their server, %d/%d stuck by cookie (by chance alone about half would)", keptSource, clients, keptCookie, clients)
	if keptSource != clients || keptCookie != clients {
		t.Errorf("kept their server: %d/%d by source, %d/%d by cookie; want all", keptSource, clients, keptCookie, clients)
	}
}

// TestPeerTLSFailover: a certificate added on lb1 with halbctl cert add and
// a TLS service on the VIP that names it reach lb2 (the certificate before
// the config); when lb1 dies, lb2 serves the same certificate and a client
// resumes its TLS session there: the nodes share their ticket keys.
func TestPeerTLSFailover(t *testing.T) {
	SkipUnlessRoot(t)
	row := reportRow(t, "peer-tls-failover", string(FlavorHalb))
	_, c, ctx := peerLab(t)
	lb1, lb2 := c.LB[0], c.LB[1]
	pairByHalbctl(t, ctx, lb1, lb2)

	dir := t.TempDir()
	root := certstest.Root(t, "lab root")
	leaf := root.Leaf(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	crt, key := filepath.Join(dir, "www.crt"), filepath.Join(dir, "www.key")
	os.WriteFile(crt, certstest.Cat(leaf.CertPEM, root.PEM), 0o644)
	os.WriteFile(key, leaf.KeyPEM, 0o600)
	if out, err := lb1.Halbctl(ctx, "cert", "add", "www", "--cert", crt, "--key", key); err != nil {
		t.Fatalf("halbctl cert add: %v\n%s", err, out)
	}
	// An expired certificate is refused at cert add, with why, and not
	// stored.
	old := root.Leaf(t, certstest.Options{CN: "old.example.com", DNS: []string{"old.example.com"},
		NotBefore: time.Now().AddDate(-1, 0, 0), NotAfter: time.Now().Add(-time.Hour)})
	oldCrt, oldKey := filepath.Join(dir, "old.crt"), filepath.Join(dir, "old.key")
	os.WriteFile(oldCrt, certstest.Cat(old.CertPEM, root.PEM), 0o644)
	os.WriteFile(oldKey, old.KeyPEM, 0o600)
	if out, err := lb1.Halbctl(ctx, "cert", "add", "old", "--cert", oldCrt, "--key", oldKey); err == nil || !strings.Contains(out, "expired on") {
		t.Errorf("halbctl cert add of an expired certificate: %v\n%s", err, out)
	}
	if out, err := lb1.Halbctl(ctx, "cert", "list"); err != nil || !strings.Contains(out, "www") || strings.Contains(out, "old") {
		t.Errorf("halbctl cert list after the expired one was refused: %v\n%s", err, out)
	}
	editRunning(t, lb1, func(cfg *config.Config) {
		s := cfg.Services[0] // web, http
		s.Name, s.Listen = "web-tls", []string{ClassicVIP + ":443"}
		s.TLS = &config.TLS{Certificates: []config.TLSCertificate{{Name: "www"}}}
		cfg.Services = append(cfg.Services, s)
	})
	served := func(n *Node) bool {
		var svcs []proxy.ServiceStatus
		st, err := n.API().Status(ctx)
		if err != nil || json.Unmarshal(st.Services, &svcs) != nil {
			return false
		}
		for _, s := range svcs {
			if s.Name == "web-tls" && s.TLS != nil && len(s.TLS.Certificates) == 1 && s.TLS.Certificates[0].Error == "" {
				return true
			}
		}
		return false
	}
	if !WaitFor(15*time.Second, func() bool { return served(lb2) }) {
		raw, _ := lb2.API().Config(ctx)
		t.Fatalf("lb2 does not serve web-tls with the certificate; its config:\n%s\npeer: %+v", raw, peerStatus(t, lb2))
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	cache := tls.NewLRUClientSessionCache(4)
	get := func() (*x509.Certificate, bool, error) {
		nc, err := c.Client.Dial(ctx, "tcp", ClassicVIP+":443")
		if err != nil {
			return nil, false, err
		}
		tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: "www.example.com", ClientSessionCache: cache})
		defer tc.Close()
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"); err != nil {
			return nil, false, err
		}
		b, err := io.ReadAll(tc)
		if err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
			return nil, false, fmt.Errorf("response %.40q: %v", b, err)
		}
		cs := tc.ConnectionState()
		return cs.PeerCertificates[0], cs.DidResume, nil
	}
	first, _, err := get()
	if err != nil {
		t.Fatalf("through lb1: %v", err)
	}
	if !first.Equal(leaf.Cert) {
		t.Fatalf("lb1 served %s, not the added certificate", first.Subject)
	}
	// lb2 holds lb1's ticket keys once an exchange carried them.
	time.Sleep(2 * time.Second)
	if err := lb1.Kill(); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(10*time.Second, func() bool { return slices.Equal(c.LiveVIPHolders(), []string{"lb2"}) }) {
		t.Fatalf("live VIP holders after lb1 died: %v", c.LiveVIPHolders())
	}
	var cert *x509.Certificate
	var resumed bool
	if !WaitFor(5*time.Second, func() bool { cert, resumed, err = get(); return err == nil }) {
		t.Fatalf("through lb2: %v", err)
	}
	row.Notef("lb2 served the certificate added on lb1 (%v) and resumed lb1's TLS session: %v", cert.Equal(leaf.Cert), resumed)
	if !cert.Equal(leaf.Cert) {
		t.Errorf("lb2 served %s, not the certificate added on lb1", cert.Subject)
	}
	if !resumed {
		t.Error("the client's session from lb1 did not resume on lb2")
	}
}
