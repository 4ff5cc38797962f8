package netlab

import (
	"bytes"
	"strings"
	"testing"

	"halb/appliance/config"
)

// TestCtlConfigs: the control-plane bench's configs are what it says:
// 1000 services over 1000 backends of 10 servers that halb takes and
// HAProxy's config renders server for server, and 100 VRRP instances at
// 50ms adverts that keepalived's config renders at 0.05s.
func TestCtlConfigs(t *testing.T) {
	var o CtlOptions
	o.defaults()
	cfg, err := config.Parse("halb.yaml", ctlConfig(o, 2).YAML())
	if err != nil {
		t.Fatal(err)
	}
	servers := 0
	for _, b := range cfg.Backends {
		servers += len(b.Servers)
	}
	if len(cfg.Services) != 1000 || len(cfg.Backends) != 1000 || servers != 10000 {
		t.Fatalf("%d services, %d backends, %d servers; want 1000, 1000, 10000", len(cfg.Services), len(cfg.Backends), servers)
	}
	if w := cfg.Backends[0].Servers[0].EffectiveWeight(); w != 2 {
		t.Errorf("weight of b0/s0 = %d, want 2", w)
	}
	p := RefPaths{Dir: t.TempDir()}
	hc, err := HAProxyConfig(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(hc, []byte("\n    server ")); n != 10000 {
		t.Errorf("haproxy.cfg has %d server lines, want 10000", n)
	}
	if n := bytes.Count(hc, []byte("\nfrontend ")); n != 1000 {
		t.Errorf("haproxy.cfg has %d frontends, want 1000", n)
	}

	for n := 1; n <= 2; n++ {
		v, err := config.Parse("halb.yaml", vrrpBenchConfig(n, o))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, in := range v.VRRP {
			if in.AdvertInterval.D() != o.Advert {
				t.Fatalf("%s: advert %s, want %s", in.Name, in.AdvertInterval, o.Advert)
			}
			seen[in.VIPs[0]] = true
		}
		if len(v.VRRP) != 100 || len(seen) != 100 {
			t.Fatalf("lb%d: %d instances, %d distinct VIPs; want 100 of each", n, len(v.VRRP), len(seen))
		}
		kc, err := KeepalivedConfig(v, p)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(kc), "advert_int 0.05\n"); n != 100 {
			t.Errorf("keepalived.conf has %d instances at advert_int 0.05, want 100:\n%.600s", n, kc)
		}
	}
}

// TestReloadTenThousandServers: halbd with 1000 services over 1000
// backends of 10 servers takes three reloads by `halbctl config apply`,
// each changing the weight of a server of the probed backend, while the
// client sends 200 requests/s on keep-alive connections and 200/s on new
// ones: no request fails. (netlab benchctl reports the times and memory,
// and HAProxy's.)
func TestReloadTenThousandServers(t *testing.T) {
	SkipUnlessRoot(t)
	l := New(t)
	row, err := benchReload(l, FlavorHalb, CtlOptions{Reloads: 3, Instances: -1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(row.ApplyMS) != 3 {
		t.Fatalf("%d reloads applied, want 3", len(row.ApplyMS))
	}
	if row.Sent == 0 || row.Failed > 0 {
		t.Fatalf("%d of %d requests failed during the reloads: %q", row.Failed, row.Sent, row.Errors)
	}
}
