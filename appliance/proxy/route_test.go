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
		switch rng.IntN(6) {
		case 0:
			host = ""
		case 1:
			host = "*." + strings.TrimPrefix(host, "x.")
		}
		routes = append(routes, config.Route{Host: host, PathPrefix: prefixes[rng.IntN(len(prefixes))], Backend: name})
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
	reqPaths := []string{"/", "/api", "/api/v2/x", "/apix", "/static/a.css", "/other"}
	for _, h := range reqHosts {
		for _, p := range reqPaths {
			got, want := st.route([]byte(h), []byte(p)), scan.route([]byte(h), []byte(p))
			if got != want {
				t.Errorf("host %q path %q: indexed route picks %s, the scan %s", h, p, beName(backends, got), beName(backends, want))
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
