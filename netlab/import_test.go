package netlab

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"halb/appliance/importer"
)

// The import scenario's servers: name → (backend host index, port). www1
// and www2 carry the cookie values of their names; sorry is www's backup.
var importServers = []struct {
	name string
	host int
	port int
}{
	{"www1", 0, 8001}, {"www2", 1, 8002}, {"sorry", 1, 8031},
	{"api1", 0, 8011}, {"api2", 1, 8012}, {"static1", 0, 8021},
}

// importRequests are the routing cases of testdata/import/*/haproxy.cfg:
// host, path and the backend HAProxy's rules choose (checked on the
// reference, so the table states HAProxy's behaviour, not halb's).
var importRequests = []struct{ host, path, backend string }{
	{"www.example.com", "/", "www"},
	{"api.example.com", "/v1/users", "api"},
	{"API.Example.COM", "/v1/users", "api"},           // hdr(host) -i
	{"api.example.com", "/admin/users", "www"},        // host_api !is_admin: falls through
	{"api.example.com", "/static/app.js", "api"},      // the first rule wins
	{"www.example.com", "/static/app.js", "static"},   // path_beg, first value
	{"www.example.com", "/images/logo.png", "static"}, // path_beg, second value
	{"www.example.com", "/health", "static"},          // path (exact), after ||
	{"www.example.com", "/healthz", "www"},            // not /health
	{"www.example.com", "/health/x", "www"},           // not /health
	{"www.example.com", "/admin", "www"},
	{"shop.example.com", "/v1/users", "www"},
}

// importObs is what one flavor's run saw, compared between flavors when
// both have run.
type importObs struct {
	routes   []string // backend per importRequests entry
	sticky   string   // server of a client with the cookie of www2
	backup   []string // servers while www1 and www2 are down
	failover time.Duration
}

// TestImportSideBySide runs a pair of keepalived.conf + haproxy.cfg as an
// operator wrote them (testdata/import) on the reference nodes, and their
// import by appliance/importer on halb nodes, in the same topology: the
// same requests reach the same backends (host, path and negated ACLs), a
// persistence cookie holds in both, the backup server takes over when the
// others are down in both, and when lb1 dies lb2 takes the VIP in both.
func TestImportSideBySide(t *testing.T) {
	concurrent(t)
	var mu sync.Mutex
	seen := map[Flavor]*importObs{}
	t.Cleanup(func() {
		ref, halb := seen[FlavorReference], seen[FlavorHalb]
		if ref == nil || halb == nil {
			return
		}
		for i, r := range importRequests {
			if ref.routes[i] != halb.routes[i] {
				t.Errorf("Host %s %s: reference routed to %s, halb to %s", r.host, r.path, ref.routes[i], halb.routes[i])
			}
		}
		if ref.sticky != halb.sticky {
			t.Errorf("cookie of www2: reference sent the client to %s, halb to %s", ref.sticky, halb.sticky)
		}
		if !slices.Equal(ref.backup, halb.backup) {
			t.Errorf("with www1 and www2 down: reference used %v, halb %v", ref.backup, halb.backup)
		}
		t.Logf("failover after lb1 died: reference %s, halb %s", ref.failover.Round(time.Millisecond), halb.failover.Round(time.Millisecond))
	})
	for _, fl := range Flavors {
		t.Run(string(fl), func(t *testing.T) {
			SkipUnlessRoot(t)
			labSlot(t)
			row := reportRow(t, "import-side-by-side", string(fl))
			obs := runImportScenario(t, fl, row)
			mu.Lock()
			seen[fl] = obs
			mu.Unlock()
		})
	}
}

func runImportScenario(t *testing.T, fl Flavor, row *Row) *importObs {
	l := New(t)
	front, back, client := frontAndBack(t, l)
	var beHosts [2]*Host
	var err error
	for i := range beHosts {
		if beHosts[i], err = l.AddHost(fmt.Sprintf("be%d", i+1)); err != nil {
			t.Fatal(err)
		}
		if _, err := beHosts[i].Connect(back, "eth0", fmt.Sprintf("10.0.0.%d/24", 11+i)); err != nil {
			t.Fatal(err)
		}
	}
	servers := map[string]*Backend{}
	for _, s := range importServers {
		b, err := beHosts[s.host].ServeBackend(s.name, fmt.Sprintf(":%d", s.port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		servers[s.name] = b
	}
	// Render each node's files (the stats socket goes in the node's
	// directory, so the two HAProxy processes do not share one).
	files := map[string][2][]byte{}
	var opts [2]importer.Options
	for i, name := range []string{"lb1", "lb2"} {
		dir := filepath.Join(l.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var pair [2][]byte
		for j, f := range []string{"keepalived.conf", "haproxy.cfg"} {
			raw, err := os.ReadFile(filepath.Join("testdata", "import", name, f))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := template.Must(template.New(f).Parse(string(raw))).Execute(&b, struct{ Dir string }{dir}); err != nil {
				t.Fatal(err)
			}
			pair[j] = b.Bytes()
			if err := os.WriteFile(filepath.Join(dir, "original-"+f), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		files[name] = pair
		opts[i] = importer.Options{Keepalived: filepath.Join(dir, "original-keepalived.conf"), HAProxy: filepath.Join(dir, "original-haproxy.cfg")}
	}
	var imported [2][]byte
	if fl == FlavorHalb {
		ra, rb, err := importer.ImportPair(opts[0], opts[1])
		if err != nil {
			t.Fatal(err)
		}
		imported = [2][]byte{ra.YAML, rb.YAML}
		t.Logf("lb1's import report:\n%s", ra.Report)
		t.Logf("lb1's halb.yaml:\n%s", ra.YAML)
	}
	var lbs [2]*Node
	for i, name := range []string{"lb1", "lb2"} {
		h, err := l.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Connect(front, "eth0", fmt.Sprintf("192.168.10.%d/24", 1+i)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Connect(back, "eth1", fmt.Sprintf("10.0.0.%d/24", 1+i)); err != nil {
			t.Fatal(err)
		}
		if fl == FlavorHalb {
			lbs[i], err = l.StartNode(h, FlavorHalb, imported[i])
		} else {
			lbs[i], err = l.StartReferenceFiles(h, files[name][0], files[name][1])
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	vip := netip.MustParseAddr(ClassicVIP)
	get := func(host, path, cookie string) (server, setCookie string, err error) {
		tr := &http.Transport{DialContext: client.Dial, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "http://"+ClassicVIP+path, nil)
		req.Host = host
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", "", fmt.Errorf("status %s", resp.Status)
		}
		return resp.Header.Get("X-Backend"), resp.Header.Get("Set-Cookie"), nil
	}
	backendOf := func(server string) string {
		return strings.TrimRight(strings.ReplaceAll(server, "sorry", "www"), "0123456789")
	}
	// lb1 (priority 101, +2 while HAProxy / its services are up) holds
	// the VIP and every server has passed its checks.
	var last error
	if !WaitFor(20*time.Second, func() bool {
		if !lbs[0].HoldsVIP(vip) || lbs[1].HoldsVIP(vip) {
			last = fmt.Errorf("VIP holders: lb1 %v, lb2 %v", lbs[0].HoldsVIP(vip), lbs[1].HoldsVIP(vip))
			return false
		}
		_, _, last = get("api.example.com", "/", "")
		return last == nil
	}) {
		t.Fatalf("the pair did not come up within 20s: %v", last)
	}

	obs := &importObs{}
	for _, r := range importRequests {
		s, _, err := get(r.host, r.path, "")
		if err != nil {
			t.Fatalf("Host %s %s: %v", r.host, r.path, err)
		}
		obs.routes = append(obs.routes, backendOf(s))
		if backendOf(s) != r.backend {
			t.Errorf("Host %s %s: routed to %s (server %s), HAProxy's rules say %s", r.host, r.path, backendOf(s), s, r.backend)
		}
	}

	// Round robin without a cookie reaches both of www's servers, and
	// the first answer sets the persistence cookie.
	hit := map[string]bool{}
	for range 4 {
		s, sc, err := get("www.example.com", "/", "")
		if err != nil {
			t.Fatal(err)
		}
		hit[s] = true
		if !strings.HasPrefix(sc, "SERVERID="+s) {
			t.Errorf("answer of %s set the cookie %q, want SERVERID=%s", s, sc, s)
		}
	}
	if !hit["www1"] || !hit["www2"] {
		t.Errorf("4 requests without a cookie reached %v, want www1 and www2", hit)
	}
	for i := range 6 {
		s, _, err := get("www.example.com", "/", "SERVERID=www2")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			obs.sticky = s
		}
		if s != "www2" {
			t.Errorf("request %d with SERVERID=www2 went to %s", i, s)
		}
	}

	// The backup serves only while www1 and www2 are both down.
	for _, s := range []string{"www1", "www2"} {
		servers[s].SetMode(ModeRefuse)
	}
	if !WaitFor(15*time.Second, func() bool { s, _, _ := get("www.example.com", "/", ""); return s == "sorry" }) {
		t.Fatal("the backup server took no request within 15s of www1 and www2 going down")
	}
	for range 4 {
		s, _, err := get("www.example.com", "/", "")
		if err != nil {
			t.Fatal(err)
		}
		obs.backup = append(obs.backup, s)
	}
	if slices.ContainsFunc(obs.backup, func(s string) bool { return s != "sorry" }) {
		t.Errorf("with www1 and www2 down, requests went to %v; want sorry only", obs.backup)
	}
	for _, s := range []string{"www1", "www2"} {
		servers[s].SetMode(ModeOK)
	}
	if !WaitFor(15*time.Second, func() bool { s, _, _ := get("www.example.com", "/", ""); return s == "www1" || s == "www2" }) {
		t.Fatal("www1 and www2 took no request within 15s of coming back")
	}

	// lb1 dies: lb2 takes the VIP and serves the same routes.
	t0 := time.Now()
	if err := lbs[0].Kill(); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(15*time.Second, func() bool {
		if !lbs[1].HoldsVIP(vip) {
			return false
		}
		s, _, err := get("api.example.com", "/v1/users", "")
		return err == nil && backendOf(s) == "api"
	}) {
		t.Fatal("lb2 did not serve the VIP within 15s of lb1's death")
	}
	obs.failover = time.Since(t0)
	// The backup's master-down interval (3 adverts + skew), and a second
	// for the first request through the new master.
	bound := MasterDownInterval(time.Second, 100) + time.Second
	row.OutageMS = obs.failover.Milliseconds()
	row.SetBound(bound, obs.failover <= bound)
	for i, r := range importRequests {
		s, _, err := get(r.host, r.path, "")
		if err != nil {
			t.Fatalf("after failover: Host %s %s: %v", r.host, r.path, err)
		}
		if backendOf(s) != obs.routes[i] {
			t.Errorf("after failover: Host %s %s went to %s, before to %s", r.host, r.path, backendOf(s), obs.routes[i])
		}
	}
	return obs
}
