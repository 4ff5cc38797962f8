package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// start makes a Server for snap, applies o and closes it when the test
// ends.
func start(t *testing.T, snap func() Snapshot, o config.Observe, vips ...netip.Addr) *Server {
	t.Helper()
	s := New(snap, quiet())
	if err := s.Apply(o, vips); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, url string, user, pass string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func hash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAuth(t *testing.T) {
	addr := testutil.ReservedAddr(t)
	s := start(t, fullSnapshot, config.Observe{Listen: addr, Users: []config.ObserveUser{
		{Name: "prom", PasswordHash: hash(t, "s3cret")}, {Name: "ops", PasswordHash: hash(t, "other")}}})
	url := "http://" + addr + "/metrics"

	code, hdr, _ := get(t, url, "", "")
	if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic realm=") {
		t.Fatalf("no credentials: %d WWW-Authenticate %q, want 401 with a Basic challenge", code, hdr.Get("WWW-Authenticate"))
	}
	for _, c := range [][2]string{{"prom", "wrong"}, {"ops", "s3cret"}, {"nobody", "s3cret"}} {
		if code, _, _ := get(t, url, c[0], c[1]); code != 401 {
			t.Errorf("user %q password %q: %d, want 401", c[0], c[1], code)
		}
	}
	code, _, body := get(t, url, "prom", "s3cret")
	if code != 200 || !strings.Contains(body, "halb_up 1") {
		t.Fatalf("right credentials: %d %.200s", code, body)
	}
	// The pair that passed is remembered: no bcrypt comparison for the
	// next scrapes; a wrong password still costs one.
	n := s.auth.comparisons()
	for range 3 {
		if code, _, _ := get(t, url, "prom", "s3cret"); code != 200 {
			t.Fatalf("cached credentials: %d", code)
		}
	}
	if got := s.auth.comparisons(); got != n {
		t.Errorf("3 scrapes with cached credentials made %d bcrypt comparisons, want 0", got-n)
	}
	if code, _, _ := get(t, url, "prom", "s3cretX"); code != 401 {
		t.Errorf("wrong password after a cached right one: %d", code)
	}
	if got := s.auth.comparisons(); got != n+1 {
		t.Errorf("a wrong password made %d comparisons, want 1", got-n)
	}
	// A new hash for the user (password changed in the config) misses
	// the cache: the old password no longer works.
	if err := s.Apply(config.Observe{Listen: addr, Users: []config.ObserveUser{{Name: "prom", PasswordHash: hash(t, "new")}}}, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, url, "prom", "s3cret"); code != 401 {
		t.Errorf("old password after the hash changed: %d, want 401", code)
	}
	if code, _, _ := get(t, url, "prom", "new"); code != 200 {
		t.Errorf("new password: %d, want 200", code)
	}
	if st := s.Status(); st.Refused["unauthorized"] != 6 || st.Served != 5 {
		t.Errorf("status: served %d, refused %v; want 5 served, 6 unauthorized", st.Served, st.Refused)
	}
}

func TestAllowList(t *testing.T) {
	addr := testutil.ReservedAddr(t)
	o := config.Observe{Listen: addr, Allow: []string{"10.0.0.0/8", "192.0.2.7"}}
	s := start(t, fullSnapshot, o)
	if code, _, _ := get(t, "http://"+addr+"/stats", "", ""); code != 403 {
		t.Fatalf("client 127.0.0.1 outside observe.allow: %d, want 403", code)
	}
	o.Allow = append(o.Allow, "127.0.0.0/8")
	if err := s.Apply(o, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, "http://"+addr+"/stats", "", ""); code != 200 {
		t.Fatalf("client 127.0.0.1 inside observe.allow: %d, want 200", code)
	}
	if st := s.Status(); st.Refused["forbidden"] != 1 {
		t.Errorf("refused %v, want 1 forbidden", st.Refused)
	}
}

// TestVIPRefused: with an empty host the listener is on every address,
// but a connection to a VIP (127.0.0.2 plays one) is closed at accept
// while one to another address (127.0.0.1) is served.
func TestVIPRefused(t *testing.T) {
	reserved := testutil.ReservedAddr(t)
	_, port, _ := net.SplitHostPort(reserved)
	s := start(t, fullSnapshot, config.Observe{Listen: ":" + port}, netip.MustParseAddr("127.0.0.2"))
	if code, _, _ := get(t, "http://127.0.0.1:"+port+"/metrics", "", ""); code != 200 {
		t.Fatalf("127.0.0.1: %d, want 200", code)
	}
	c, err := net.Dial("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Fatalf("dial the VIP: %v (the listener is on every address: the connect itself succeeds)", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := io.ReadAll(c)
	if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("connection to the VIP answered %.80q (%v), want closed without a byte", got, err)
	}
	testutil.WaitFor(t, "the VIP refusal counted", func() bool { return s.Status().Refused["vip"] == 1 })
	// The VIPs change with the config: 127.0.0.2 is served once it is
	// not one.
	if err := s.Apply(config.Observe{Listen: ":" + port}, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, "http://127.0.0.2:"+port+"/metrics", "", ""); code != 200 {
		t.Fatalf("127.0.0.2 no longer a VIP: %d, want 200", code)
	}
}

func TestApplyRebind(t *testing.T) {
	a1, a2 := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	rec := &recorder{}
	s := New(fullSnapshot, slog.New(rec))
	if err := s.Apply(config.Observe{Listen: a1}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if code, _, _ := get(t, "http://"+a1+"/metrics", "", ""); code != 200 {
		t.Fatalf("%s: %d", a1, code)
	}
	if err := s.Apply(config.Observe{Listen: a2}, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, "http://"+a2+"/metrics", "", ""); code != 200 {
		t.Fatalf("%s after the move: %d", a2, code)
	}
	testutil.WaitFor(t, a1+" released", func() bool {
		c, err := net.Dial("tcp", a1)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	// An address in use: the error names observe.listen, the old
	// listener keeps serving.
	busy := testutil.Listen(t).Addr().String()
	err := s.Apply(config.Observe{Listen: busy}, nil)
	if err == nil || !strings.Contains(err.Error(), "observe.listen") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("apply %s (in use): %v, want an observe.listen error wrapping EADDRINUSE", busy, err)
	}
	if st := s.Status(); st.Listen != a2 || st.Error == "" || st.Listening != a2 {
		t.Errorf("status after the failed move: %+v", st)
	}
	if code, _, _ := get(t, "http://"+a2+"/metrics", "", ""); code != 200 {
		t.Fatalf("%s after the failed move: %d", a2, code)
	}

	// Same port, every address instead of one: our own listener holds the
	// port and is let go for the new one.
	_, port, _ := net.SplitHostPort(a2)
	if err := s.Apply(config.Observe{Listen: ":" + port}, nil); err != nil {
		t.Fatalf("apply :%s over %s: %v", port, a2, err)
	}
	if code, _, _ := get(t, "http://127.0.0.3:"+port+"/metrics", "", ""); code != 200 {
		t.Fatalf("127.0.0.3:%s after the move to every address: %d", port, code)
	}

	// Off.
	if err := s.Apply(config.Observe{}, nil); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Listening != "" || st.Listen != "" {
		t.Errorf("status when off: %+v", st)
	}
	testutil.WaitFor(t, "the listener closed", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// Listeners stopped on purpose are not reported as failures.
	s.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.recs {
		if r.Level >= slog.LevelError {
			t.Errorf("logged %s %q", r.Level, r.Message)
		}
	}
}

func TestRunCloses(t *testing.T) {
	addr := testutil.ReservedAddr(t)
	s := New(fullSnapshot, quiet())
	if err := s.Apply(config.Observe{Listen: addr}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if code, _, _ := get(t, "http://"+addr+"/stats;json", "", ""); code != 200 {
		t.Fatalf("%d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("still listening after Run returned")
	}
	if err := s.Apply(config.Observe{Listen: addr}, nil); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
}

// recorder keeps the records logged.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) refusals() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		if !strings.HasPrefix(rec.Message, "observe: refused") {
			continue
		}
		m := map[string]string{"msg": rec.Message}
		rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// TestRefusalLogLimited: one line per client per minute; the next says how
// many were not logged. The clock is the test's.
func TestRefusalLogLimited(t *testing.T) {
	rec := &recorder{}
	s := New(fullSnapshot, slog.New(rec))
	now := t0
	s.now = func() time.Time { return now }
	if err := s.Apply(config.Observe{Allow: []string{"10.0.0.0/8"}}, nil); err != nil {
		t.Fatal(err)
	}
	hit := func(remote string) {
		r, _ := http.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = remote
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, r)
		if w.code != 403 {
			t.Fatalf("%s: %d, want 403", remote, w.code)
		}
	}
	for range 5 {
		hit("192.0.2.1:4000")
		now = now.Add(10 * time.Second)
	}
	hit("192.0.2.2:4000")
	if got := rec.refusals(); len(got) != 2 || got[0]["client"] != "192.0.2.1" || got[1]["client"] != "192.0.2.2" {
		t.Fatalf("refusal lines %v, want one for each client", got)
	}
	now = now.Add(time.Minute)
	hit("192.0.2.1:4001")
	got := rec.refusals()
	if len(got) != 3 || got[2]["not_logged_before"] != "4" || got[2]["reason"] != "forbidden" {
		t.Fatalf("after a minute: %v, want a third line with not_logged_before=4", got)
	}
	if n := s.Status().Refused["forbidden"]; n != 7 {
		t.Errorf("counted %d refusals, want 7 (logged or not)", n)
	}
}

type discard struct {
	h    http.Header
	code int
	b    bytes.Buffer
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return d.b.Write(p) }
func (d *discard) WriteHeader(c int)           { d.code = c }

// TestStatsJSON: /stats;json (the ';' reaches the handler through Go's
// server unchanged) and /stats?format=json give the same data; rates are
// the change since the newest view at least a second old.
func TestStatsJSON(t *testing.T) {
	var mu sync.Mutex
	snap := fullSnapshot()
	source := func() Snapshot { mu.Lock(); defer mu.Unlock(); return snap }
	addr := testutil.ReservedAddr(t)
	start(t, source, config.Observe{Listen: addr})

	decode := func(path string) Stats {
		t.Helper()
		code, hdr, body := get(t, "http://"+addr+path, "", "")
		if code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %s", path, code, hdr.Get("Content-Type"))
		}
		var st Stats
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return st
	}
	a := decode("/stats;json")
	if a.RateWindow != 0 || a.Frontends[0].Sessions.Rate != nil {
		t.Errorf("first view has rates: window %v", a.RateWindow)
	}
	if a.Node != "lb1" || len(a.Frontends) != 2 || a.Frontends[0].Sessions.Total != 5000 || len(a.Backends) != 3 {
		t.Fatalf("stats %+v", a)
	}
	www := a.Backends[0]
	if www.Name != "www" || www.Servers[1].State != StateUp || www.Servers[1].SlowStart != 40 || www.Servers[1].Weight != 4 ||
		www.Servers[0].CheckOK == nil || !*www.Servers[0].CheckOK || www.Servers[0].CheckDuration != 0.0015 {
		t.Errorf("backend www %+v", www)
	}
	apiBe := a.Backends[1]
	if apiBe.Servers[0].State != StateDown || apiBe.Servers[1].State != StateDrain || *apiBe.Servers[0].CheckOK {
		t.Errorf("backend api servers %+v", apiBe.Servers)
	}
	if pg := a.Backends[2]; pg.Servers[0].Checked || pg.Servers[0].CheckOK != nil || pg.Servers[0].State != StateUp {
		t.Errorf("unchecked pg1 %+v", pg.Servers[0])
	}
	if tl := a.Frontends[0].TLS; tl == nil || tl.Handshakes != 4980 || tl.Versions["TLSv1.3"] != 4500 || tl.Failed["timeout"] != 9 ||
		tl.Failed["alert"] != 0 || tl.FailedTotal != 12 || len(tl.Certificates) != 3 || tl.Certificates[0].Alarm ||
		!tl.Certificates[1].Alarm || !tl.Certificates[2].Alarm || !tl.Certificates[0].NotAfter.Equal(t0.Add(90*24*time.Hour)) {
		t.Errorf("web tls %+v", tl)
	}
	if sni := a.Frontends[1].SNI; sni == nil || sni.Routed != 850 || sni.Refused["not_tls"] != 6 || a.Frontends[1].TLS != nil {
		t.Errorf("db sni %+v", sni)
	}
	if !strings.HasPrefix(a.Backends[1].TLS, "verify NONE") || a.Backends[2].TLS != "" {
		t.Errorf("backends' tls %q %q", a.Backends[1].TLS, a.Backends[2].TLS)
	}
	if a.VRRP[0].State != "MASTER" || a.VRRP[0].Drops["ttl"] != 2 || a.Peer.ConfigChanges != 8 || a.Time.Offset != 0.0015 {
		t.Errorf("vrrp/peer/time %+v %+v %+v", a.VRRP[0], a.Peer, a.Time)
	}

	// Two seconds later, 300 more sessions on web and 20 on web1.
	mu.Lock()
	snap = fullSnapshot()
	snap.At = t0.Add(2 * time.Second)
	snap.Services[0].Stats.Connections += 300
	snap.Services[0].Stats.Requests += 500
	snap.Services[0].Backends[0].Servers[0].Total += 20
	mu.Unlock()
	b := decode("/stats?format=json")
	if b.RateWindow != 2 {
		t.Fatalf("rate window %v, want 2", b.RateWindow)
	}
	rate := func(r *float64) float64 {
		if r == nil {
			return -1
		}
		return *r
	}
	if f := b.Frontends[0]; rate(f.Sessions.Rate) != 150 || rate(f.RequestRate) != 250 {
		t.Errorf("web rates %v sessions/s %v requests/s, want 150 and 250", rate(f.Sessions.Rate), rate(f.RequestRate))
	}
	if r := rate(b.Backends[0].Servers[0].Sessions.Rate); r != 10 {
		t.Errorf("web1 rate %v, want 10", r)
	}
	if r := rate(b.Frontends[1].Sessions.Rate); r != 0 {
		t.Errorf("db rate %v, want 0", r)
	}
}

// TestStatsHTML: the page has the numbers, and names are escaped.
func TestStatsHTML(t *testing.T) {
	snap := fullSnapshot()
	snap.Services[0].Error = `listen 192.168.10.100:80: <b>bind</b> & "failed"`
	addr := testutil.ReservedAddr(t)
	start(t, func() Snapshot { return snap }, config.Observe{Listen: addr})
	code, hdr, body := get(t, "http://"+addr+"/stats", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /stats: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{"<title>halb lb1 stats</title>", `<meta http-equiv="refresh" content="5">`,
		"&lt;b&gt;bind&lt;/b&gt; &amp; &#34;failed&#34;", ">DOWN<", ">DRAIN<", "UP 40%", "(unchecked)", ">MASTER<", ">BACKUP<",
		">98835432<", ">23456<", "failed in 1000.0 ms: dial tcp 10.0.0.21:8080: i/o timeout", "10m0s ago", "1d2h",
		// TLS: handshakes, failures, each certificate's expiry (soon
		// yellow, not loaded red), SNI routing, backends' verification.
		"<b>4980</b> handshakes, 1200 resumed, TLSv1.2 480, TLSv1.3 4500", `<span class="err">12 failed</span> <span class="small">(timeout 9, version 3)</span>`,
		`www.example.com, example.com</td><td class="l w ">2027-03-05 (in 90 days)`,
		`<td class="l w ss">EXPIRES SOON: 2026-12-12 (in 7 days)`,
		`<td class="l w down">NOT LOADED: open /etc/halb/tls/broken.pem: no such file or directory`,
		"main <span class=\"small\">(default)</span>",
		"SNI: <b>850</b> routed, 40 to the default backend", `refused: not_tls 6, timeout 4`,
		"tls verify full against the system roots for each server&#39;s address",
		`<span class="err">tls verify NONE: the servers&#39; certificates are not checked</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>bind</b>") || strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("page has unescaped markup, a script or an external reference")
	}
	if code, hdr, _ := get(t, "http://"+addr+"/", "", ""); code != 200 || hdr.Get("Content-Type") == "" {
		t.Errorf("GET / (redirect to /stats): %d", code)
	}
	if code, _, _ := get(t, "http://"+addr+"/nothing", "", ""); code != 404 {
		t.Errorf("GET /nothing: %d, want 404", code)
	}
}

func TestVIPs(t *testing.T) {
	c := &config.Config{VRRP: []config.VRRPInstance{{VIPs: []string{"192.168.10.100/24", "fd00::5/64"}}, {VIPs: []string{"10.0.0.9/32"}}}}
	got := VIPs(c)
	want := []netip.Addr{netip.MustParseAddr("192.168.10.100"), netip.MustParseAddr("fd00::5"), netip.MustParseAddr("10.0.0.9")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("VIPs = %v, want %v", got, want)
	}
}

// TestBusy: past maxInFlight requests at once, a request gets 503 (and is
// counted) instead of queueing.
func TestBusy(t *testing.T) {
	s := New(fullSnapshot, quiet())
	for range maxInFlight {
		s.sem <- struct{}{}
	}
	w := &discard{h: http.Header{}}
	r, _ := http.NewRequest("GET", "/metrics", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	s.ServeHTTP(w, r)
	if w.code != 503 || s.Status().Refused["busy"] != 1 {
		t.Fatalf("request beyond the limit: %d, refused %v; want 503 and busy 1", w.code, s.Status().Refused)
	}
	<-s.sem
	w = &discard{h: http.Header{}}
	s.ServeHTTP(w, r)
	if w.code != 0 && w.code != 200 {
		t.Fatalf("request with a free slot: %d", w.code)
	}
}
