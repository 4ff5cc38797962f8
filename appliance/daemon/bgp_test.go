package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/bgp"
)

// recEngine is a bgp.Engine that keeps the announcements.
type recEngine struct {
	mu        sync.Mutex
	announced map[netip.Prefix]bgp.Attrs
}

func (e *recEngine) Start(context.Context, bgp.Global) error                      { return nil }
func (e *recEngine) Stop(context.Context) error                                   { return nil }
func (e *recEngine) AddNeighbor(context.Context, bgp.Neighbor) error              { return nil }
func (e *recEngine) DeleteNeighbor(context.Context, string) error                 { return nil }
func (e *recEngine) Routes(context.Context) ([]bgp.Route, error)                  { return nil, nil }
func (e *recEngine) Neighbors(context.Context) ([]bgp.NeighborState, error)       { return nil, nil }
func (e *recEngine) WatchSessions(context.Context, func(bgp.SessionChange)) error { return nil }
func (e *recEngine) Announce(_ context.Context, p netip.Prefix, a bgp.Attrs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.announced[p] = a
	return nil
}
func (e *recEngine) Withdraw(_ context.Context, p netip.Prefix) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.announced, p)
	return nil
}

// TestBGPWired: a config with bgp starts the engine that Options gives,
// announces its VIP, shows it in status, and maintenance drains it with
// GRACEFUL_SHUTDOWN.
func TestBGPWired(t *testing.T) {
	eng := &recEngine{announced: map[netip.Prefix]bgp.Attrs{}}
	td := startDaemonWith(t, t.TempDir(), `node: {name: lb1}
bgp:
  asn: 65001
  router_id: 10.0.0.1
  neighbors: [{address: 10.0.0.254, asn: 65000}]
  announce: [{vip: 192.168.10.100/32, when: always}]
`, func(o *Options) { o.BGPEngine = func(*slog.Logger) bgp.Engine { return eng } })
	vip := netip.MustParsePrefix("192.168.10.100/32")
	attrs := func() (bgp.Attrs, bool) {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		a, ok := eng.announced[vip]
		return a, ok
	}
	eventually(t, "the VIP announced", func() bool { _, ok := attrs(); return ok })
	var st api.BGPStatus
	if err := json.Unmarshal(td.Status().BGP, &st); err != nil {
		t.Fatal(err)
	}
	if st.ASN != 65001 || len(st.VIPs) != 1 || !st.VIPs[0].Announced || st.VIPs[0].Reason != "when: always" {
		t.Errorf("status bgp = %+v", st)
	}
	if snap := td.metricsSnapshot(); snap.BGP == nil || len(snap.BGP.VIPs) != 1 || snap.BGP.VIPs[0].State != bgp.VIPAnnounced {
		t.Errorf("metrics snapshot bgp = %+v, want the VIP announced", snap.BGP)
	}
	events, cancel := td.Events().Subscribe(64)
	defer cancel()
	if err := td.SetMaintenance(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the VIP announced with GRACEFUL_SHUTDOWN", func() bool {
		a, ok := attrs()
		return ok && slices.Equal(a.Communities, []uint32{bgp.GracefulShutdown})
	})
	for timeout := time.After(30 * time.Second); ; {
		select {
		case ev := <-events:
			if ev.Type != "bgp.vip_graceful_shutdown" {
				continue
			}
			if d, _ := ev.Data.(map[string]any); d["vip"] != "192.168.10.100/32" || d["mode"] != "active_active" {
				t.Errorf("event data %v", ev.Data)
			}
			return
		case <-timeout:
			t.Fatal("no bgp.vip_graceful_shutdown event on the stream")
		}
	}
}
