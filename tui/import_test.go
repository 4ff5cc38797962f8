package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"halb/appliance/api"
	"halb/appliance/config"
)

// importOffer is a canned GET /v1/import answer: a pair of files with one
// dropped directive.
var importOffer = api.ImportResult{
	Files: []string{"/var/lib/halb/import/keepalived.conf", "/var/lib/halb/import/haproxy.cfg"},
	YAML: `# halb.yaml written by halbctl import
node:
  name: lb1
vrrp:
  # from /var/lib/halb/import/keepalived.conf:10:1 vrrp_instance VI_1
  - name: VI_1
    interface: eth0
    vrid: 51
    priority: 101
    vips: [192.168.10.100/24]
services:
  # from /var/lib/halb/import/haproxy.cfg:20:1 frontend web
  - name: web
    listen: ["192.168.10.100:80"]
    routes:
      - {host: api.example.com, backend: api}
    default_backend: www
backends:
  - name: www
    servers:
      - {name: www1, address: "10.0.0.11:8001"}
      - {name: sorry, address: "10.0.0.12:8031", backup: true}
  - name: api
    servers:
      - {name: api1, address: "10.0.0.11:8011"}
`,
	Report: "/var/lib/halb/import/keepalived.conf:16:9: dropped: authentication { auth_type PASS auth_pass s3cr3t }\n" +
		"    why: VRRPv3 (RFC 5798) has no authentication\n1 dropped, 0 changed, 0 notes\n",
	Dropped: 1, Partial: true,
}

// importConsole starts a console whose halbd offers importOffer and takes
// it to the Import step.
func importConsole(t *testing.T) (*fakeClient, *console) {
	f := newFake(t)
	offer := importOffer
	f.importOffer = &offer
	c := startConsole(t, f, 1)
	c.toImportStep()
	return f, c
}

// toImportStep goes through the first steps as completeWizard does, on a
// node that has an import to offer (the step bar counts nine steps).
func (c *console) toImportStep() {
	c.t.Helper()
	c.waitFor("Node name")
	c.typeText("lb1")
	c.press(tea.KeyEnter)
	c.waitFor("2/9  Network")
	c.waitFor("(x) eth0")
	c.press(tea.KeyEnter, tea.KeyEnter)
	c.waitFor("Time servers")
	c.press(tea.KeyEnter)
	c.waitFor("Single node (pair later")
	c.press(tea.KeyEnter)
	c.waitFor("5/9  Import")
}

// TestWizardImport: on an unconfigured node whose seed disk brought
// keepalived.conf and haproxy.cfg, the wizard's Import step shows the
// report; "import anyway" takes the VRRP instance, services and backends,
// the VRRP and Service steps are skipped, and the review applies them.
func TestWizardImport(t *testing.T) {
	f, c := importConsole(t)
	c.waitFor("From the seed disk: keepalived.conf and haproxy.cfg")
	c.waitFor("(kept in /var/lib/halb/import by halb-seed)")
	c.waitFor("1 directive(s) dropped and 0 changed")
	c.waitFor("keepalived.conf:16:9: dropped: authentication")
	c.golden()
	c.press(tea.KeyRight)
	c.waitFor("(x) Import anyway")
	c.press(tea.KeyEnter)
	c.waitFor("6/7  Password")
	if s := ansi.Strip(c.screen()); strings.Contains(s, "VRRP") || strings.Contains(s, "Service") {
		t.Fatalf("an imported node's steps list VRRP or Service:\n%s", s)
	}
	c.finishAfterPeer()
	c.press(tea.KeyEnter) // apply
	c.waitFor("config applied")
	f.mu.Lock()
	raw := f.applied[len(f.applied)-1]
	f.mu.Unlock()
	cfg, err := config.Parse("applied", raw)
	if err != nil {
		t.Fatalf("the console sent a config the daemon refuses: %v\n%s", err, raw)
	}
	if len(cfg.VRRP) != 1 || cfg.VRRP[0].VRID != 51 || len(cfg.Services) != 1 || cfg.Services[0].Routes[0].Backend != "api" ||
		len(cfg.Backends) != 2 || !cfg.Backends[0].Servers[1].Backup {
		t.Errorf("applied config does not hold the import:\n%s", raw)
	}
}

// TestWizardImportSkip: "skip" leaves the draft as the VRRP and Service
// steps make it (without files the step is not shown: the other wizard
// tests count eight steps).
func TestWizardImportSkip(t *testing.T) {
	_, c := importConsole(t)
	c.press(tea.KeyEnter) // skip
	c.waitFor("VRID")
	c.waitFor("6/9  VRRP")
}
