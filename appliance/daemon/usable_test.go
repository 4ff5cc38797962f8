package daemon

import (
	"testing"

	"halb/appliance/config"
)

// TestUsableServers: min_healthy counts servers up, with weight, not
// drained and not disabled; backups only while no other server counts,
// and then one of them unless all_backups (HAProxy's nbsrv).
func TestUsableServers(t *testing.T) {
	zero := 0
	b := config.Backend{Servers: []config.Server{{Name: "a1"}, {Name: "a2"}, {Name: "zero", Weight: &zero}, {Name: "off", Disabled: true},
		{Name: "b1", Backup: true}, {Name: "b2", Backup: true}}}
	for _, tc := range []struct {
		up   []string
		all  bool
		want int
	}{
		{[]string{"a1", "a2", "zero", "off", "b1", "b2"}, false, 2},
		{[]string{"zero", "b1"}, false, 1},
		{[]string{"a2", "b1", "b2"}, false, 1},
		{[]string{"b1", "b2", "off"}, false, 1},
		{[]string{"b1", "b2"}, true, 2},
		{[]string{"off"}, true, 0},
		{nil, false, 0},
	} {
		b.AllBackups = tc.all
		got := usableServers(b, func(s string) bool {
			for _, u := range tc.up {
				if u == s {
					return true
				}
			}
			return false
		})
		if got != tc.want {
			t.Errorf("up %v all_backups %v: %d usable, want %d", tc.up, tc.all, got, tc.want)
		}
	}
}
