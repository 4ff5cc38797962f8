package proxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"halb/appliance/config"
)

// TestRouteIndexed: with many routes, route looks exact hosts up in a
// map; it picks what trying every route in config order picks, for exact,
// wildcard and any-host routes with path prefixes, repeated hosts, upper
// case and ports in the Host field.
func TestRouteIndexed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hosts := []string{"a.example", "b.example", "c.example", "x.a.example", "A.EXAMPLE"}
	prefixes := []string{"/", "/api", "/api/v2", "/static"}
	backends := map[string]*backend{}
	var routes []config.Route
	for i := range 60 {
		name := fmt.Sprintf("be%d", i)
		backends[name] = &backend{}
		host := hosts[rng.IntN(len(hosts))]
		switch rng.IntN(7) {
		case 0:
			host = ""
		case 1:
			host = "*." + strings.TrimPrefix(host, "x.")
		case 2:
			host = "." + strings.TrimPrefix(host, "x.")
		}
		r := config.Route{Host: host, PathPrefix: prefixes[rng.IntN(len(prefixes))], Backend: name}
		if rng.IntN(5) == 0 {
			r.Path = reqPathsNoQuery[rng.IntN(len(reqPathsNoQuery))]
		}
		routes = append(routes, r)
	}
	backends["def"] = &backend{}
	sc := config.Service{Name: "web", DefaultBackend: "def", Routes: routes}
	st := newServiceState(sc, backends)
	if st.byHost == nil {
		t.Fatal("60 routes are not indexed")
	}
	scan := *st
	scan.byHost, scan.anyHost = nil, nil
	reqHosts := append(hosts, "d.example", "y.b.example", "B.Example:8080", "", "a.example:80", strings.Repeat("h", 300))
	reqPaths := []string{"/", "/api", "/api/v2/x", "/apix", "/static/a.css", "/other", "/api?x=1", "/static/a.css?v=2"}
	for _, h := range reqHosts {
		for _, p := range reqPaths {
			got, want := st.route([]byte(h), []byte(p)), scan.route([]byte(h), []byte(p))
			if got != want {
				t.Errorf("host %q path %q: indexed route picks %s, the scan %s", h, p, beName(backends, got), beName(backends, want))
			}
		}
	}
}

var reqPathsNoQuery = []string{"/", "/api", "/api/v2/x", "/static/a.css"}

// TestRouteMatch: exact, *.suffix and .domain hosts, exact paths (the
// query aside) with and without a prefix, first match wins.
func TestRouteMatch(t *testing.T) {
	backends := map[string]*backend{}
	var routes []config.Route
	for i, r := range []config.Route{
		{Host: "www.example.com", Path: "/login", PathPrefix: "/"},
		{Host: ".example.com", Path: "/api/health", PathPrefix: "/api/"},
		{Host: ".example.com", Path: "/api/v1", PathPrefix: "/web/"}, // both must hold: never
		{Host: "*.example.org", PathPrefix: "/"},
		{Host: ".example.com", PathPrefix: "/"},
		{Path: "/exact", PathPrefix: "/"},
	} {
		r.Backend = fmt.Sprintf("r%d", i)
		backends[r.Backend] = &backend{}
		routes = append(routes, r)
	}
	backends["def"] = &backend{}
	for _, many := range []bool{false, true} {
		rs := routes
		if many { // indexed: padded with routes that never match
			for i := range routeIndexMin {
				rs = append(rs, config.Route{Host: fmt.Sprintf("pad%d.test", i), PathPrefix: "/", Backend: "def"})
			}
		}
		st := newServiceState(config.Service{Name: "web", DefaultBackend: "def", Routes: rs}, backends)
		if many != (st.byHost != nil) {
			t.Fatalf("indexed %v, want %v", st.byHost != nil, many)
		}
		for _, tc := range []struct{ host, path, want string }{
			{"www.example.com", "/login", "r0"},
			{"www.example.com", "/login?next=/", "r0"},
			{"www.example.com", "/login/", "r4"},
			{"WWW.EXAMPLE.COM:8080", "/login", "r0"},
			{"example.com", "/api/health", "r1"},
			{"a.b.c.example.com", "/api/health?full=1", "r1"},
			{"example.com", "/api/v1", "r4"},
			{"example.com", "/", "r4"},
			{"deep.down.example.com", "/x", "r4"},
			{"notexample.com", "/", "def"},
			{"example.com.evil.net", "/", "def"},
			{"a.example.org", "/", "r3"},
			{"a.b.example.org", "/", "r3"},
			{"example.org", "/", "def"},
			{"other.net", "/exact", "r5"},
			{"other.net", "/exact?q", "r5"},
			{"other.net", "/exactly", "def"},
			{"other.net", "*", "def"},
		} {
			if got := st.route([]byte(tc.host), []byte(tc.path)); got != backends[tc.want] {
				t.Errorf("indexed %v: host %q path %q: %s, want %s", many, tc.host, tc.path, beName(backends, got), tc.want)
			}
		}
	}
}

func beName(m map[string]*backend, be *backend) string {
	for k, v := range m {
		if v == be {
			return k
		}
	}
	return "?"
}

// TestTriedSet: the servers tried for a session, past the inline array
// too.
func TestTriedSet(t *testing.T) {
	var ts triedSet
	for _, i := range []int{5, 900, 5, 0, 3, 7, 11, 12, 13, 999} {
		ts.add(i)
	}
	for _, i := range []int{5, 900, 0, 3, 7, 11, 12, 13, 999} {
		if !ts.has(i) {
			t.Errorf("%d added but not in the set", i)
		}
	}
	for _, i := range []int{1, 2, 4, 6, 998, 1000} {
		if ts.has(i) {
			t.Errorf("%d in the set, never added", i)
		}
	}
	if ts.n != 9 {
		t.Errorf("%d in the set, want 9 (5 added twice)", ts.n)
	}
}
