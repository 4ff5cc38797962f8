package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"halb/appliance/config"
)

// BenchmarkPick: one new session's pick (released at once) in a backend
// of 8 active servers and 2 backups, with the actives up, and with them
// down (the first backup; every backup with all_backups).
func BenchmarkPick(b *testing.B) {
	for _, tc := range []struct {
		name      string
		down, all bool
	}{{"actives", false, false}, {"first-backup", true, false}, {"all-backups", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := config.Backend{Name: "web", Balance: "roundrobin", AllBackups: tc.all}
			for i := range 10 {
				cfg.Servers = append(cfg.Servers, config.Server{Name: fmt.Sprintf("s%d", i), Address: "127.0.0.1:1", Backup: i >= 8})
			}
			be := newBackend(cfg, nil, &counters{})
			for _, s := range be.servers[:8] {
				s.down.Store(tc.down)
			}
			b.ReportAllocs()
			for b.Loop() {
				var tr triedSet
				if _, err := be.pick(context.Background(), &tr, nil, netip.Addr{}, "", 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
