package tui

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"halb/appliance/proxy"
)

// TestTLSAlarms: a certificate within 14 days of its expiry, expired or
// not loaded has an alarm line of its own, one that is fine has none;
// past three, one line says how many more; a service without TLS has
// none.
func TestTLSAlarms(t *testing.T) {
	now := testNow
	certs := []proxy.CertStatus{
		{Name: "fine", NotAfter: now.Add(90 * 24 * time.Hour)},
		{Name: "soon", NotAfter: now.Add(3*24*time.Hour + time.Minute), ExpiresSoon: true},
		{Name: "gone", NotAfter: now.Add(-49 * time.Hour), ExpiresSoon: true},
		{Name: "bad", Error: "x509: malformed certificate"},
	}
	c := &Context{Theme: themeFor(termenv.Ascii, true), Opts: Options{Now: func() time.Time { return now }},
		Services: []ServiceStatus{{Name: "plain", Mode: "tcp"},
			{Name: "web", Mode: "http", TLS: &proxy.TLSStatus{Certificates: certs}}}}
	want := []string{
		"tls: certificate soon of service web expires 2026-12-07 (in 3 days)",
		"tls: certificate gone of service web EXPIRED 2026-12-02 (2 days ago)",
		"tls: certificate bad of service web NOT LOADED: x509: malformed certificate",
	}
	if got := tlsAlarms(c); !slices.Equal(got, want) {
		t.Errorf("alarms\n%q\nwant\n%q", got, want)
	}
	// The node's alarms come first, on one line (here: the services
	// have no servers).
	d := &Dashboard{}
	lines := d.alarmLines(c, 200)
	if len(lines) != 4 || ansi.Strip(lines[0]) != "ALARM: plain: no healthy server; web: no healthy server" ||
		ansi.Strip(lines[1]) != "ALARM: "+want[0] {
		t.Errorf("alarm lines %q", lines)
	}
	for i := range 3 {
		c.Services = append(c.Services, ServiceStatus{Name: fmt.Sprintf("s%d", i), Mode: "tcp", TLS: &proxy.TLSStatus{Certificates: certs[3:]}})
	}
	lines = d.alarmLines(c, 200)
	if len(lines) != 5 || ansi.Strip(lines[4]) != "ALARM: tls: 3 more certificates expire soon or are not loaded (halbctl status)" {
		t.Errorf("six alarms: lines %q", lines)
	}
	if got := modeLabel(c.Services[1]) + " " + modeLabel(c.Services[2]) + " " + modeLabel(c.Services[0]); got != "https tls tcp" {
		t.Errorf("modes %q, want https tls tcp", got)
	}
}
