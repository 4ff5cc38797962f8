package bgp

import (
	"testing"
	"time"

	"halb/appliance/config"
)

// testConfig has web on .100, api on .101, both followed by VIPs of the
// given mode; .102 is announced always.
func testConfig(t *testing.T, mode string, active bool) *config.Config {
	t.Helper()
	act := ""
	if active {
		act = "\n  active: true"
	}
	cfg, err := config.Parse("halb.yaml", []byte(`
node: {name: lb1}
services:
  - {name: web, listen: ["192.168.10.100:80"], default_backend: www}
  - {name: api, listen: ["192.168.10.101:80", "192.168.10.101:443"], default_backend: www}
backends:
  - {name: www, servers: [{name: s1, address: "10.0.0.11:80"}]}
bgp:
  asn: 65001
  router_id: 10.0.0.1`+act+`
  neighbors: [{address: 10.0.0.254, asn: 65000}]
  announce:
    - {vip: 192.168.10.100/32, mode: `+mode+`}
    - {vip: 192.168.10.101/32, mode: `+mode+`, services: [api, web]}
    - {vip: 192.168.10.102/32, mode: `+mode+`, when: always}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	gs := []uint32{GracefulShutdown}
	type want struct {
		announce bool
		attrs    Attrs
		reason   string
	}
	for _, tc := range []struct {
		name     string
		mode     string
		active   bool
		healthy  map[string]bool
		maint    bool
		now      time.Time
		want     [3]want // .100, .101, .102
		wantNext time.Time
	}{
		{name: "all healthy", mode: "active_active", healthy: map[string]bool{"web": true, "api": true}, now: t0,
			want: [3]want{{true, Attrs{}, "healthy: web"}, {true, Attrs{}, "healthy: api, web"}, {true, Attrs{}, "when: always"}}},
		{name: "web unhealthy", mode: "active_active", healthy: map[string]bool{"api": true}, now: t0,
			want: [3]want{
				{false, Attrs{}, "not healthy: web (fewer than min_healthy servers up)"},
				{false, Attrs{}, "not healthy: web (fewer than min_healthy servers up)"},
				{true, Attrs{}, "when: always"}}},
		{name: "nothing healthy yet", mode: "active_active", now: t0,
			want: [3]want{
				{false, Attrs{}, "not healthy: web (fewer than min_healthy servers up)"},
				{false, Attrs{}, "not healthy: api, web (fewer than min_healthy servers up)"},
				{true, Attrs{}, "when: always"}}},
		{name: "standby prepends", mode: "active_standby", healthy: map[string]bool{"web": true, "api": true}, now: t0,
			want: [3]want{
				{true, Attrs{Prepend: 3}, "healthy: web; standby: AS path prepended 3 times"},
				{true, Attrs{Prepend: 3}, "healthy: api, web; standby: AS path prepended 3 times"},
				{true, Attrs{Prepend: 3}, "when: always; standby: AS path prepended 3 times"}}},
		{name: "active does not prepend", mode: "active_standby", active: true, healthy: map[string]bool{"web": true}, now: t0,
			want: [3]want{
				{true, Attrs{}, "healthy: web; active"},
				{false, Attrs{}, "not healthy: api (fewer than min_healthy servers up)"},
				{true, Attrs{}, "when: always; active"}}},
		{name: "maintenance drains", mode: "active_standby", healthy: map[string]bool{"web": true}, maint: true, now: t0.Add(10 * time.Second),
			want: [3]want{
				{true, Attrs{Prepend: 3, Communities: gs}, "healthy: web; standby: AS path prepended 3 times; maintenance: draining with GRACEFUL_SHUTDOWN (65535:0) until 22:00:30"},
				{false, Attrs{}, "not healthy: api (fewer than min_healthy servers up)"},
				{true, Attrs{Prepend: 3, Communities: gs}, "when: always; standby: AS path prepended 3 times; maintenance: draining with GRACEFUL_SHUTDOWN (65535:0) until 22:00:30"}},
			wantNext: t0.Add(30 * time.Second)},
		{name: "maintenance withdraws after the drain", mode: "active_active", healthy: map[string]bool{"web": true, "api": true}, maint: true, now: t0.Add(30 * time.Second),
			want: [3]want{
				{false, Attrs{}, "maintenance: withdrawn after the drain"},
				{false, Attrs{}, "maintenance: withdrawn after the drain"},
				{false, Attrs{}, "maintenance: withdrawn after the drain"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next := Decide(Input{
				Config: testConfig(t, tc.mode, tc.active), Healthy: tc.healthy,
				Maintenance: tc.maint, MaintenanceSince: t0, Drain: 30 * time.Second, Now: tc.now,
			})
			if len(got) != 3 {
				t.Fatalf("%d decisions, want 3: %+v", len(got), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Announce != w.announce || !g.Attrs.Equal(w.attrs) || g.Reason != w.reason {
					t.Errorf("%s: announce %v %+v %q\n\twant announce %v %+v %q", g.Prefix, g.Announce, g.Attrs, g.Reason, w.announce, w.attrs, w.reason)
				}
			}
			if !next.Equal(tc.wantNext) {
				t.Errorf("next = %v, want %v", next, tc.wantNext)
			}
		})
	}
}
