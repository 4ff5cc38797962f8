package tui

import (
	"testing"

	"halb/appliance/netcfg"
)

// TestStatsLine: the dashboard names the stats page at the management
// address when the listener is on every address, at its own address
// otherwise, says when it cannot listen, and is silent when it is off.
func TestStatsLine(t *testing.T) {
	mgmt := &netcfg.Status{Mode: "dhcp", Interfaces: []netcfg.InterfaceStatus{{Name: "eth0", Managed: []string{"192.168.77.3/24"},
		Lease: &netcfg.Lease{Address: "192.168.77.3/24"}}}}
	for _, tc := range []struct {
		name string
		o    *ObserveListener
		n    *netcfg.Status
		want string
	}{
		{"off", &ObserveListener{}, mgmt, ""},
		{"no component", nil, mgmt, ""},
		{"any address", &ObserveListener{Listen: ":8404", Listening: "[::]:8404"}, mgmt, "stats http://192.168.77.3:8404/stats  metrics /metrics"},
		{"any address, no management", &ObserveListener{Listen: ":8404", Listening: "[::]:8404"}, nil, "stats on port 8404 of every address but the VIPs: /stats, /metrics"},
		{"one address", &ObserveListener{Listen: "10.0.0.5:9000", Listening: "10.0.0.5:9000"}, mgmt, "stats http://10.0.0.5:9000/stats  metrics /metrics"},
		{"held", &ObserveListener{Listen: "10.0.0.5:9000", Error: "address already in use"}, mgmt, "stats: not listening on 10.0.0.5:9000: address already in use"},
	} {
		c := &Context{Observe: tc.o, Network: tc.n}
		if got := statsLine(c); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
