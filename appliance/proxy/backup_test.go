package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"halb/appliance/config"
)

// backupBackend is a backend of two active servers a1 a2, two backups b1
// b2 and a disabled server off, in that order.
func backupBackend(t *testing.T, alg string, allBackups bool, sticky config.Sticky) *backend {
	t.Helper()
	cfg := config.Backend{Name: "web", Balance: alg, AllBackups: allBackups, Sticky: sticky, Servers: []config.Server{
		{Name: "a1", Address: "127.0.0.1:1"}, {Name: "b1", Address: "127.0.0.1:3", Backup: true},
		{Name: "off", Address: "127.0.0.1:5", Disabled: true}, {Name: "a2", Address: "127.0.0.1:2"},
		{Name: "b2", Address: "127.0.0.1:4", Backup: true}}}
	if sticky.Source {
		cfg.Sticky.Expire = config.Duration(60e9)
	}
	return newBackend(cfg, nil, &counters{})
}

// picks counts the servers n new sessions go to (each released at once).
func picks(t *testing.T, be *backend, n int, cookie string, client netip.Addr) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		var tr triedSet
		sess, err := be.pick(context.Background(), &tr, []byte{byte(i)}, client, cookie, 0)
		if err != nil {
			got["error"]++
			continue
		}
		got[sess.srv.name]++
	}
	return got
}

func TestBackupServers(t *testing.T) {
	for _, alg := range []string{"roundrobin", "leastconn", "source", "uri", "random"} {
		t.Run(alg, func(t *testing.T) {
			be := backupBackend(t, alg, false, config.Sticky{})
			if got := picks(t, be, 100, "", netip.Addr{}); got["a1"]+got["a2"] != 100 {
				t.Fatalf("actives up: %v, want every session on a1 or a2", got)
			}
			be.byName["a1"].down.Store(true)
			if got := picks(t, be, 50, "", netip.Addr{}); got["a2"] != 50 {
				t.Fatalf("a1 down: %v, want every session on a2", got)
			}
			be.byName["a2"].drained.Store(true) // drained counts as not usable
			if got := picks(t, be, 50, "", netip.Addr{}); got["b1"] != 50 {
				t.Fatalf("actives down: %v, want every session on the first backup b1", got)
			}
			be.byName["b1"].down.Store(true)
			if got := picks(t, be, 50, "", netip.Addr{}); got["b2"] != 50 {
				t.Fatalf("actives and b1 down: %v, want every session on b2", got)
			}
			be.byName["b2"].down.Store(true)
			if got := picks(t, be, 5, "", netip.Addr{}); got["error"] != 5 {
				t.Fatalf("every server down: %v, want no server (and never the disabled one)", got)
			}
			be.byName["b1"].down.Store(false)
			be.byName["a1"].down.Store(false)
			if got := picks(t, be, 50, "", netip.Addr{}); got["a1"] != 50 {
				t.Fatalf("a1 back: %v, want every session on a1 again", got)
			}
		})
	}
}

func TestAllBackups(t *testing.T) {
	for _, alg := range []string{"roundrobin", "leastconn", "random", "source"} {
		t.Run(alg, func(t *testing.T) {
			be := backupBackend(t, alg, true, config.Sticky{})
			be.byName["a1"].down.Store(true)
			be.byName["a2"].down.Store(true)
			got := picks(t, be, 200, "", netip.Addr{})
			if got["b1"]+got["b2"] != 200 || got["b1"] == 0 || got["b2"] == 0 {
				t.Fatalf("actives down with all_backups: %v, want the sessions spread over b1 and b2", got)
			}
			be.byName["a2"].down.Store(false)
			if got := picks(t, be, 50, "", netip.Addr{}); got["a2"] != 50 {
				t.Fatalf("a2 back: %v, want every session on a2", got)
			}
		})
	}
}

// TestBackupPersistence: as HAProxy, a cookie or a stick entry naming a
// backup that is up keeps its client there while the actives are back;
// one naming a disabled server is never honoured.
func TestBackupPersistence(t *testing.T) {
	be := backupBackend(t, "roundrobin", false, config.Sticky{Cookie: "SRV"})
	if got := picks(t, be, 10, "b2", netip.Addr{}); got["b2"] != 10 {
		t.Fatalf("cookie b2, actives up: %v, want b2 (HAProxy honours a cookie to an up backup)", got)
	}
	if got := picks(t, be, 10, "off", netip.Addr{}); got["off"] != 0 || got["a1"]+got["a2"] != 10 {
		t.Fatalf("cookie naming the disabled server: %v, want the actives", got)
	}
	be.byName["b2"].down.Store(true)
	if got := picks(t, be, 10, "b2", netip.Addr{}); got["a1"]+got["a2"] != 10 {
		t.Fatalf("cookie b2, b2 down: %v, want the actives", got)
	}

	be = backupBackend(t, "roundrobin", false, config.Sticky{Source: true})
	client := netip.MustParseAddr("192.0.2.7")
	be.byName["a1"].down.Store(true)
	be.byName["a2"].down.Store(true)
	if got := picks(t, be, 1, "", client); got["b1"] != 1 {
		t.Fatalf("actives down: %v, want b1", got)
	}
	be.byName["a1"].down.Store(false)
	be.byName["a2"].down.Store(false)
	if got := picks(t, be, 5, "", client); got["b1"] != 5 {
		t.Fatalf("actives back, client stuck to b1: %v, want b1 while it is up", got)
	}
	be.stick.Put(client.String(), "off", time.Now())
	if got := picks(t, be, 5, "", client); got["off"] != 0 {
		t.Fatalf("stick entry naming the disabled server: %v, want it never used", got)
	}
}

// TestBackupQueue: actives at maxconn queue their sessions rather than
// spill onto the backups (HAProxy: full is not down).
func TestBackupQueue(t *testing.T) {
	be := newBackend(config.Backend{Name: "web", Balance: "roundrobin", Servers: []config.Server{
		{Name: "a", Address: "127.0.0.1:1", MaxConn: 1}, {Name: "b", Address: "127.0.0.1:2", Backup: true}}}, nil, &counters{})
	var tr triedSet
	sess, err := be.pick(context.Background(), &tr, nil, netip.Addr{}, "", 0)
	if err != nil || sess.srv.name != "a" {
		t.Fatalf("first pick: %v %v, want a", sess.srv, err)
	}
	be.acquire(sess.srv, time.Now())
	var tr2 triedSet
	if sess, err := be.pick(context.Background(), &tr2, nil, netip.Addr{}, "", 1e6); err != errQueueTimeout {
		t.Fatalf("a full: got %v %v, want a queue timeout, not the backup", sess.srv, err)
	}
}

// TestDisabledServer: a disabled server gets nothing, even as the last
// server, and does not keep the backups out.
func TestDisabledServer(t *testing.T) {
	be := newBackend(config.Backend{Name: "web", Balance: "roundrobin", Servers: []config.Server{
		{Name: "off", Address: "127.0.0.1:1", Disabled: true}, {Name: "b", Address: "127.0.0.1:2", Backup: true}}}, nil, &counters{})
	if got := picks(t, be, 10, "off", netip.Addr{}); got["b"] != 10 {
		t.Fatalf("only a disabled active: %v, want the backup", got)
	}
	st := be.status()
	if s := st.Servers[0]; !s.Disabled || s.Up || s.Backup {
		t.Errorf("status of the disabled server %+v: want disabled, not up", s)
	}
	if s := st.Servers[1]; !s.Backup || !s.Up {
		t.Errorf("status of the backup %+v: want backup, up", s)
	}
}

// TestPickAllocs: a pick allocates nothing, among the actives and among
// the backups, first or all (balance.Pick keeps the eligibility closure
// on the stack).
func TestPickAllocs(t *testing.T) {
	for _, alg := range []string{"roundrobin", "leastconn", "source", "random"} {
		for _, all := range []bool{false, true} {
			be := backupBackend(t, alg, all, config.Sticky{})
			pick := func() {
				var tr triedSet
				if _, err := be.pick(context.Background(), &tr, []byte("k"), netip.Addr{}, "", 0); err != nil {
					t.Fatal(err)
				}
			}
			if n := testing.AllocsPerRun(200, pick); n != 0 {
				t.Errorf("%s: a pick among the actives allocates %v times", alg, n)
			}
			be.byName["a1"].down.Store(true)
			be.byName["a2"].down.Store(true)
			if n := testing.AllocsPerRun(200, pick); n != 0 {
				t.Errorf("%s all_backups %v: a pick among the backups allocates %v times", alg, all, n)
			}
		}
	}
}

// TestHTTPBackupAndDisabled, end to end: the active answers while it is
// up; taken out, the first backup answers; a cookie naming the disabled
// server is not honoured; the active back, it answers again, while a
// client whose cookie names the backup stays there.
func TestHTTPBackupAndDisabled(t *testing.T) {
	act, bk1, bk2, off := newOrigin(t, "act"), newOrigin(t, "bk1"), newOrigin(t, "bk2"), newOrigin(t, "off")
	listen := freePort(t)
	c := run(t, mustConfig(t, httpConfig(listen, "", fmt.Sprintf(`    sticky: {cookie: SRV}
    servers:
      - {name: act, address: "%s"}
      - {name: bk1, address: "%s", backup: true}
      - {name: bk2, address: "%s", backup: true}
      - {name: off, address: "%s", disabled: true}
`, act.addr(), bk1.addr(), bk2.addr(), off.addr()))))
	waitListening(t, listen)
	client := &http.Client{}
	served := func(cookie string) string {
		t.Helper()
		var hdr []string
		if cookie != "" {
			hdr = []string{"Cookie", "SRV=" + cookie}
		}
		_, body := get(t, client, "http://"+listen+"/", hdr...)
		return field(body, "server")
	}
	for _, tc := range []struct{ cookie, want string }{{"", "act"}, {"off", "act"}, {"bk2", "bk2"}} {
		if got := served(tc.cookie); got != tc.want {
			t.Errorf("active up, cookie %q: served by %q, want %q", tc.cookie, got, tc.want)
		}
	}
	c.SetServerUp("b0", "act", false)
	for _, tc := range []struct{ cookie, want string }{{"", "bk1"}, {"", "bk1"}, {"off", "bk1"}, {"act", "bk1"}} {
		if got := served(tc.cookie); got != tc.want {
			t.Errorf("active down, cookie %q: served by %q, want %q", tc.cookie, got, tc.want)
		}
	}
	c.SetServerUp("b0", "act", true)
	for _, tc := range []struct{ cookie, want string }{{"", "act"}, {"bk1", "bk1"}} {
		if got := served(tc.cookie); got != tc.want {
			t.Errorf("active back, cookie %q: served by %q, want %q", tc.cookie, got, tc.want)
		}
	}
	if off.conns.Load() != 0 {
		t.Errorf("the disabled server got %d connections", off.conns.Load())
	}
}
