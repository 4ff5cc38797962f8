package tui

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"halb/appliance/api"
	"halb/appliance/config"
)

// importOfferMsg carries halbd's import of the keepalived.conf and
// haproxy.cfg a seed disk brought (GET /v1/import); err when there are none.
type importOfferMsg struct {
	res api.ImportResult
	err error
}

// fetchImport asks halbd for the import the setup wizard offers.
func fetchImport(c *Context) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := client.Import(ctx, "")
		return importOfferMsg{res, err}
	}
}

// importStep offers an operator's keepalived.conf and haproxy.cfg (from the
// seed disk, imported by halbd) as the node's VRRP instances, services and
// backends, with the importer's report: a result where some directive did
// not map exactly is taken only by choosing "import anyway", as halbctl
// import's --allow-partial. An import replaces what the VRRP and Service
// steps would set, so they are skipped; the review shows the result before
// anything is applied.
type importStep struct {
	formStep
	choice *ChoiceField
	offer  api.ImportResult
	cfg    *config.Config // the offer's config; nil when it has none
	// before is the draft's sections before the import, restored when
	// the choice goes back to skip.
	before *config.Config
}

func newImportStep() Step {
	s := &importStep{}
	s.setChoices(false)
	return s
}

func (s *importStep) setChoices(partial bool) {
	cur := "skip"
	if s.choice != nil {
		cur = s.choice.Value()
	}
	opts := []Option{{"skip", "Skip: set VIPs and a service in the next steps"}}
	switch {
	case s.cfg == nil:
	case partial:
		opts = append(opts, Option{"import", "Import anyway: I have read what did not map exactly"})
	default:
		opts = append(opts, Option{"import", "Import them"})
	}
	s.choice = NewChoice("Import", "left/right: choose", cur, opts...)
	s.choice.vertical = true
	s.form = NewForm(s.choice)
}

func (s *importStep) Title() string { return "Import" }

// skipped: the step shows only when a seed disk brought files to import,
// and not on a node that joins a peer (it takes the peer's services).
func (s *importStep) skipped(d *Draft) bool { return d.ImportOffer == nil || d.Peer.joins() }

func (s *importStep) Load(c *Context, d *Draft) tea.Cmd {
	if d.ImportOffer != nil && s.cfg == nil {
		s.offer = *d.ImportOffer
		if s.offer.Error == "" {
			cfg, err := config.Decode([]byte(s.offer.YAML))
			if err != nil {
				s.offer.Error = "halbd's import does not read back: " + err.Error()
			} else {
				s.cfg = cfg
			}
		}
		s.setChoices(s.offer.Partial)
	}
	if d.Imported {
		s.choice.Set("import")
	}
	return s.form.FocusOn(0)
}

func (s *importStep) Save(d *Draft) int {
	if s.choice.Value() != "import" || s.cfg == nil {
		if d.Imported && s.before != nil {
			d.Cfg.VRRP, d.Cfg.VRRPSyncGroups = s.before.VRRP, s.before.VRRPSyncGroups
			d.Cfg.Services, d.Cfg.Backends = s.before.Services, s.before.Backends
		}
		d.Imported = false
		return 0
	}
	if !d.Imported {
		s.before = &config.Config{VRRP: d.Cfg.VRRP, VRRPSyncGroups: d.Cfg.VRRPSyncGroups,
			Services: d.Cfg.Services, Backends: d.Cfg.Backends}
	}
	d.Cfg.VRRP, d.Cfg.VRRPSyncGroups = s.cfg.VRRP, s.cfg.VRRPSyncGroups
	d.Cfg.Services, d.Cfg.Backends = s.cfg.Services, s.cfg.Backends
	d.Imported = true
	return 0
}

// Place takes none of the daemon's errors: the import was validated, and
// the review names any field the daemon refuses.
func (s *importStep) Place(e *config.Error) bool { return false }

func (s *importStep) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	var names []string
	dir := ""
	for _, f := range s.offer.Files {
		names, dir = append(names, filepath.Base(f)), filepath.Dir(f)
	}
	b.WriteString(t.Bold.Render("From the seed disk: "+strings.Join(names, " and ")) + "\n" + t.Dim.Render("(kept in "+dir+" by halb-seed)") + "\n")
	switch {
	case s.offer.Error != "":
		b.WriteString(t.Error.Render("cannot import: "+s.offer.Error) + "\n")
	case s.cfg != nil:
		fmt.Fprintf(&b, "They make %d VRRP instance(s), %d service(s) and %d backend(s).\n", len(s.cfg.VRRP), len(s.cfg.Services), len(s.cfg.Backends))
		if s.offer.Partial {
			b.WriteString(t.Error.Render(fmt.Sprintf("%d directive(s) dropped and %d changed: read the report below.", s.offer.Dropped, s.offer.Changed)) + "\n")
		} else {
			b.WriteString("Every directive maps onto halb.\n")
		}
	}
	b.WriteString("\n" + s.form.View(t, w))
	if s.offer.Report == "" {
		return b.String()
	}
	b.WriteString("\n" + t.Section.Render("Import report") + "\n")
	wrapped := lipgloss.NewStyle().Width(w).Render(strings.TrimRight(s.offer.Report, "\n"))
	lines := strings.Split(wrapped, "\n")
	room := max(h-strings.Count(b.String(), "\n")-1, 3)
	if len(lines) > room {
		more := len(lines) - room + 1
		lines = append(lines[:room-1], t.Dim.Render(fmt.Sprintf("... %d more lines: halbctl import on the files prints them all", more)))
	}
	for _, l := range lines {
		b.WriteString(strings.TrimRight(l, " ") + "\n")
	}
	return b.String()
}
