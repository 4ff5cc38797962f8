package tui

import (
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"halb/appliance/api"
)

// configuredBGP is configured with bgp: one session established, one
// down after its hold timer expired; one VIP announced, one withdrawn
// because its service has no healthy server.
func (f *fakeClient) configuredBGP() {
	f.configured()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.BGP = mustJSON(api.BGPStatus{ASN: 65001, RouterID: "10.0.0.11", Sessions: []api.BGPSession{
		{Address: "10.0.0.254", ASN: 65000, State: "established", Since: testNow.Add(-62 * time.Minute), Received: 0, Sent: 1},
		{Address: "10.0.2.254", ASN: 65000, State: "active", DownReason: "hold-timer-expired", LastDown: testNow.Add(-5 * time.Minute)},
	}, VIPs: []api.BGPVIP{
		{VIP: "10.0.0.200/32", Mode: "active_active", State: "announced", Announced: true, Reason: "healthy: web"},
		{VIP: "10.0.0.201/32", Mode: "active_active", State: "withdrawn", Reason: "not healthy: api (fewer than min_healthy servers up)"},
	}})
}

// TestDashboardBGPGolden: with bgp, each session (state, uptime,
// prefixes) and each VIP (announced or withdrawn and why) has a line,
// and a session that is not established is an alarm with GoBGP's reason.
func TestDashboardBGPGolden(t *testing.T) {
	dashboardGolden(t, (*fakeClient).configuredBGP, func(c *console, f *fakeClient) {
		c.waitFor("bgp 10.0.0.254 AS65000 established 1h2m0s  pfx in 0 out 1")
		c.waitFor("bgp VIP 10.0.0.201/32 withdrawn (not healthy: api")
		c.waitFor("bgp session 10.0.2.254 not established (active; last down: hold-timer") // cut at 80 columns
	})
}

// TestBGPLinesCapped: many sessions and VIPs take at most maxBGPLines
// lines, the last saying how many more; a draining VIP is GSHUT.
func TestBGPLinesCapped(t *testing.T) {
	c := &Context{Theme: themeFor(termenv.Ascii, true), Opts: Options{Now: func() time.Time { return testNow }},
		BGP: &api.BGPStatus{ASN: 65001}}
	for _, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		c.BGP.Sessions = append(c.BGP.Sessions, api.BGPSession{Address: a, ASN: 65000, State: "established", Since: testNow})
	}
	for _, v := range []string{"10.1.0.1/32", "10.1.0.2/32", "10.1.0.3/32"} {
		c.BGP.VIPs = append(c.BGP.VIPs, api.BGPVIP{VIP: v, State: "graceful_shutdown", Announced: true, Reason: "maintenance"})
	}
	lines := bgpLines(c, 80)
	for i := range lines {
		lines[i] = ansi.Strip(lines[i])
	}
	if len(lines) != maxBGPLines || lines[3] != "bgp VIP 10.1.0.1/32 GSHUT (maintenance)" ||
		lines[4] != "bgp: 2 more sessions and VIPs (halbctl status)" {
		t.Errorf("lines %q", lines)
	}
	if a := bgpAlarms(c); len(a) != 0 {
		t.Errorf("alarms %q with every session established", a)
	}
}
