package tui

import (
	"strings"
	"testing"

	"halb/appliance/config"
)

const runningFile = `# lb1, set up by hand
node:
  name: lb1   # the host name
vrrp:
  - name: vip-a   # the web VIP
    interface: eth0
    vrid: 52
    vips: [10.0.0.100/24]
services:
  - name: web
    listen: ["10.0.0.100:80"]
    default_backend: web
  # the database, tcp
  - {name: db, listen: ["10.0.0.100:5432"], mode: tcp, default_backend: db}
backends:
  - name: web
    servers:
      - {name: web1, address: "10.0.1.11:80"}   # rack 1
  - name: db
    servers: [{name: db1, address: "10.0.2.11:5432"}]
`

// TestDraftKeepsTheFile: a draft of a running file writes back what it did
// not change as it was (comments included), writes what changed in place,
// and adds none of the daemon's defaults.
func TestDraftKeepsTheFile(t *testing.T) {
	d, err := DraftOf([]byte(runningFile))
	if err != nil {
		t.Fatal(err)
	}
	// Unchanged: the same bytes, comments and flow style kept.
	out, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"# lb1, set up by hand", "# the host name", "# the web VIP", "# the database, tcp",
		"# rack 1", `{name: db, listen: ["10.0.0.100:5432"], mode: tcp, default_backend: db}`} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("unchanged draft lost %q:\n%s", keep, out)
		}
	}
	// One server added to web: db's element and every comment outside
	// the web backend stay; no defaults appear.
	d.Cfg.Backends[0].Servers = append(d.Cfg.Backends[0].Servers, config.Server{Name: "web2", Address: "10.0.1.12:80"})
	out, err = d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"# the web VIP", "# the database, tcp", "servers: [{name: db1, address: \"10.0.2.11:5432\"}]", "address: 10.0.1.12:80"} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("after adding a server, missing %q:\n%s", keep, out)
		}
	}
	for _, absent := range []string{"balance", "interval", "timeouts", "priority"} {
		if strings.Contains(string(out), absent) {
			t.Errorf("defaults written into the file (%s):\n%s", absent, out)
		}
	}
	cfg, err := config.Parse("out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := len(cfg.Backends[0].Servers); n != 2 {
		t.Fatalf("web has %d servers", n)
	}
	// A removed service goes, with nothing else.
	d.Cfg.Services = d.Cfg.Services[:1]
	d.Cfg.Backends = d.Cfg.Backends[:1]
	out, _ = d.YAML()
	if strings.Contains(string(out), "db1") || !strings.Contains(string(out), "# the web VIP") {
		t.Errorf("after removing db:\n%s", out)
	}
}
