package tui

import (
	"strings"
	"testing"

	"halb/appliance/health"
	"halb/appliance/proxy"

	"github.com/muesli/termenv"
)

// TestServerRowBackupAndMaint: the dashboard marks a backup server and
// shows a disabled one as MAINT, not checked.
func TestServerRowBackupAndMaint(t *testing.T) {
	c := &Context{Theme: themeFor(termenv.Ascii, true),
		Services: []ServiceStatus{{Name: "web", Mode: "http", Backends: []proxy.BackendStatus{{Name: "web", Servers: []proxy.ServerStatus{
			{Name: "bk", Address: "10.0.1.13:80", Up: true, Backup: true, Weight: 1},
			{Name: "off", Address: "10.0.1.14:80", Disabled: true, Weight: 1},
		}}}}},
		Health: []BackendHealth{{Name: "web", Check: "tcp", Servers: []health.ServerHealth{
			{Name: "bk", State: "up", Checks: 3, LatencyMS: 0.4}, {Name: "off", State: "disabled"}}}}}
	d := &Dashboard{}
	widths := []int{40, 8, 20, 6, 4, 20}
	bk := d.serverRow(c, row{service: "web", backend: "web", server: "bk"}, widths)
	if !strings.Contains(bk, "bk backup 10.0.1.13:80") || !strings.Contains(bk, "UP") {
		t.Errorf("backup row %q: want it marked backup, UP", bk)
	}
	off := d.serverRow(c, row{service: "web", backend: "web", server: "off"}, widths)
	if !strings.Contains(off, "MAINT") || !strings.Contains(off, "disabled") {
		t.Errorf("disabled row %q: want MAINT, disabled", off)
	}
}
