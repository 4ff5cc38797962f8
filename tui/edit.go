package tui

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/config"
)

// editMenu lists what the console can edit in the running config: the
// VIPs of each VRRP instance, each service, each backend's servers and
// each backend's health check. Each opens a form, then the review (a diff
// against the running config) that applies it.
type editMenu struct {
	draft *Draft
	items []editItem
	sel   int
}

type editItem struct {
	label string
	step  func() Step
}

// editConfigMsg carries the running config for the edit menu.
type editConfigMsg struct {
	draft *Draft
	err   error
}

func loadForEdit(c *Context) tea.Cmd {
	return func() tea.Msg {
		m := loadForWizard(c)().(wizardConfigMsg)
		return editConfigMsg{m.draft, m.err}
	}
}

func newEditMenu(d *Draft) *editMenu {
	m := &editMenu{draft: d}
	for _, v := range d.Cfg.VRRP {
		name := v.Name
		m.items = append(m.items, editItem{fmt.Sprintf("VIPs of %s (%s, VRID %d): %s", name, v.Interface, v.VRID, strings.Join(v.VIPs, " ")),
			func() Step { return newVIPsEdit(name) }})
	}
	for _, s := range d.Cfg.Services {
		name := s.Name
		mode := ""
		switch {
		case s.TLS != nil && s.Mode == "tcp":
			mode = " (tls)"
		case s.TLS != nil:
			mode = " (https)"
		}
		m.items = append(m.items, editItem{fmt.Sprintf("service %s%s: listen %s", name, mode, strings.Join(s.Listen, " ")),
			func() Step { return newServiceEdit(name) }})
	}
	for _, b := range d.Cfg.Backends {
		name := b.Name
		tls := ""
		if b.TLS != nil && b.TLS.Verify == "none" {
			tls = " (tls verify NONE)"
		}
		m.items = append(m.items, editItem{fmt.Sprintf("backend %s%s: %d server(s), balance, persistence", name, tls, len(b.Servers)),
			func() Step { return newBackendEdit(name) }})
		m.items = append(m.items, editItem{fmt.Sprintf("health check of %s", name),
			func() Step { return newHealthEdit(name) }})
	}
	mg := d.Cfg.Node.Management
	net := "left to the OS"
	switch {
	case mg.DHCP:
		net = mg.Interface + " DHCP"
	case mg.Address != "":
		net = mg.Interface + " " + mg.Address
	}
	m.items = append(m.items, editItem{"management network: " + net, newNetStep},
		editItem{fmt.Sprintf("time servers: %s", orNoneText(strings.Join(d.Cfg.Time.Servers, " "))), newTimeStep})
	return m
}

func (m *editMenu) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return m, nil
	}
	switch k.String() {
	case "esc":
		return NewDashboard(c), nil
	case "down", "j", "tab":
		m.sel = min(m.sel+1, len(m.items)-1)
	case "up", "k", "shift+tab":
		m.sel = max(m.sel-1, 0)
	case "enter":
		if len(m.items) == 0 {
			return m, nil
		}
		it := m.items[m.sel]
		f := NewFlow("edit", m.draft, it.step(), newReviewStep())
		return f, f.Init(c)
	}
	return m, nil
}

func (m *editMenu) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" edit the running config", w)) + "\n\n")
	if len(m.items) == 0 {
		b.WriteString("nothing to edit: run the wizard (w) first\n")
	}
	for i, it := range m.items {
		line := "  " + it.label
		if i == m.sel {
			line = t.Selected.Render(pad(t.Cursor+" "+it.label, w))
		}
		b.WriteString(truncate(line, w) + "\n")
	}
	b.WriteString("\n" + t.Dim.Render("a form, then the changes against the running config; nothing is applied before that") + "\n")
	return b.String()
}

func (m *editMenu) Help(c *Context) []Binding {
	return []Binding{{"enter", "edit"}, {"up/down", "choose"}, {"esc", "back"}}
}

// indexOf finds a named element of a config list.
func indexOf[T any](xs []T, name string, nameOf func(T) string) int {
	return slices.IndexFunc(xs, func(x T) bool { return nameOf(x) == name })
}

// ---- VIPs of one instance ----

type vipsEdit struct {
	formStep
	name string
	idx  int
	vips *ListField
	old  []string
}

func newVIPsEdit(name string) Step {
	s := &vipsEdit{name: name, vips: NewList("VIPs", "10.0.0.100/24", "the instance's virtual addresses with their prefix")}
	s.form = NewForm(s.vips)
	return s
}

func (s *vipsEdit) Title() string { return "VIPs of " + s.name }

func (s *vipsEdit) Load(c *Context, d *Draft) tea.Cmd {
	s.idx = indexOf(d.Cfg.VRRP, s.name, func(v config.VRRPInstance) string { return v.Name })
	if s.idx >= 0 && s.old == nil {
		s.old = slices.Clone(d.Cfg.VRRP[s.idx].VIPs)
		s.vips = NewList(s.vips.label, s.vips.placeholder, s.vips.hint, s.old...)
		s.form = NewForm(s.vips)
	}
	return s.form.FocusOn(0)
}

// Save sets the VIPs; a VIP replaced in place is replaced in the services'
// listen addresses too, so the services follow their address.
func (s *vipsEdit) Save(d *Draft) int {
	if s.idx < 0 {
		return 0
	}
	vips := s.vips.Values()
	d.Cfg.VRRP[s.idx].VIPs = vips
	for i := 0; i < len(s.old) && i < len(vips); i++ {
		from, err1 := netip.ParsePrefix(s.old[i])
		to, err2 := netip.ParsePrefix(vips[i])
		if err1 != nil || err2 != nil || from.Addr() == to.Addr() {
			continue
		}
		for j := range d.Cfg.Services {
			for k, l := range d.Cfg.Services[j].Listen {
				if ap, err := netip.ParseAddrPort(l); err == nil && ap.Addr() == from.Addr() {
					d.Cfg.Services[j].Listen[k] = netip.AddrPortFrom(to.Addr(), ap.Port()).String()
				}
			}
		}
	}
	return 0
}

func (s *vipsEdit) Place(e *config.Error) bool {
	prefix := fmt.Sprintf("vrrp[%d].vips", s.idx)
	if !under(e.Path, prefix) {
		return false
	}
	i, _, ok := pathIndex(e.Path, prefix)
	if !ok {
		i = -1
	}
	s.vips.SetError(i, e.Msg)
	return true
}

// ---- one service ----

type serviceEdit struct {
	formStep
	name    string
	idx     int
	listen  *ListField
	mode    *ChoiceField
	backend *ChoiceField
	loaded  bool
}

func newServiceEdit(name string) Step {
	s := &serviceEdit{name: name,
		listen: NewList("Listen", "10.0.0.100:80", "host:port addresses, e.g. a VIP and a port; :80 is every address"),
		mode: NewChoice("Mode", "http: HTTP/1.1 proxy; tcp: any TCP protocol", "http",
			Option{"http", "http"}, Option{"tcp", "tcp"}),
		backend: NewChoice("Default backend", "where requests that match no route go", ""),
	}
	s.form = NewForm(s.listen, s.mode, s.backend)
	return s
}

func (s *serviceEdit) Title() string { return "service " + s.name }

func (s *serviceEdit) Load(c *Context, d *Draft) tea.Cmd {
	s.idx = indexOf(d.Cfg.Services, s.name, func(v config.Service) string { return v.Name })
	if s.idx >= 0 && !s.loaded {
		s.loaded = true
		sv := d.Cfg.Services[s.idx]
		s.listen = NewList(s.listen.label, s.listen.placeholder, s.listen.hint, sv.Listen...)
		s.mode.Set(sv.Mode)
		var opts []Option
		for _, b := range d.Cfg.Backends {
			opts = append(opts, Option{b.Name, b.Name})
		}
		s.backend.opts = opts
		s.backend.Set(sv.DefaultBackend)
		s.form = NewForm(s.listen, s.mode, s.backend)
	}
	return s.form.FocusOn(0)
}

func (s *serviceEdit) Save(d *Draft) int {
	if s.idx < 0 {
		return 0
	}
	sv := &d.Cfg.Services[s.idx]
	sv.Listen, sv.Mode, sv.DefaultBackend = s.listen.Values(), s.mode.Value(), s.backend.Value()
	return 0
}

func (s *serviceEdit) Place(e *config.Error) bool {
	prefix := fmt.Sprintf("services[%d]", s.idx)
	if !under(e.Path, prefix) {
		return false
	}
	rest := strings.TrimPrefix(e.Path, prefix)
	switch {
	case strings.HasPrefix(rest, ".listen"):
		i, _, ok := pathIndex(rest, ".listen")
		if !ok {
			i = -1
		}
		s.listen.SetError(i, e.Msg)
	case rest == ".mode":
		s.mode.SetError(-1, e.Msg)
	case rest == ".default_backend":
		s.backend.SetError(-1, e.Msg)
	default:
		s.listen.SetError(-1, strings.TrimPrefix(rest, ".")+": "+e.Msg)
	}
	return true
}

// ---- one backend's servers, balance and persistence ----

type backendEdit struct {
	formStep
	name    string
	idx     int
	servers *ListField
	balance *ChoiceField
	pers    *ChoiceField
	loaded  bool
}

func newBackendEdit(name string) Step {
	s := &backendEdit{name: name,
		servers: NewList("Servers", "10.0.1.11:80", "address:port, optionally followed by a weight: 10.0.1.11:80 w=10"),
		balance: NewChoice("Balance", "how requests are spread over servers", "roundrobin",
			Option{"roundrobin", "roundrobin"}, Option{"leastconn", "leastconn"}, Option{"source", "source"},
			Option{"uri", "uri"}, Option{"random", "random"}),
		pers: NewChoice("Persistence", "keep a client on one server", "none",
			Option{"none", "none"}, Option{"cookie", "cookie"}, Option{"source", "source"}),
	}
	s.form = NewForm(s.servers, s.balance, s.pers)
	return s
}

func (s *backendEdit) Title() string { return "backend " + s.name }

func (s *backendEdit) Load(c *Context, d *Draft) tea.Cmd {
	s.idx = indexOf(d.Cfg.Backends, s.name, func(v config.Backend) string { return v.Name })
	if s.idx >= 0 && !s.loaded {
		s.loaded = true
		be := d.Cfg.Backends[s.idx]
		var entries []string
		for _, x := range be.Servers {
			e := x.Address
			if x.Weight != nil && *x.Weight != 1 {
				e += " w=" + strconv.Itoa(*x.Weight)
			}
			entries = append(entries, e)
		}
		s.servers = NewList(s.servers.label, s.servers.placeholder, s.servers.hint, entries...)
		if be.Balance != "" {
			s.balance.Set(be.Balance)
		}
		switch {
		case be.Sticky.Cookie != "":
			s.pers.Set("cookie")
		case be.Sticky.Source:
			s.pers.Set("source")
		}
		s.form = NewForm(s.servers, s.balance, s.pers)
	}
	return s.form.FocusOn(0)
}

func (s *backendEdit) Save(d *Draft) int {
	if s.idx < 0 {
		return 0
	}
	be := &d.Cfg.Backends[s.idx]
	be.Balance = s.balance.Value()
	setPersistence(be, s.pers.Value())
	bad := 0
	old := be.Servers
	be.Servers = nil
	used := map[string]bool{}
	for _, x := range old {
		used[x.Name] = true
	}
	for i, e := range s.servers.Values() {
		addr, w, hasW := strings.Cut(e, " ")
		var weight *int
		if hasW {
			ws := strings.TrimPrefix(strings.TrimSpace(w), "w=")
			n, err := wholeNumber(ws)
			if err != nil {
				s.servers.SetError(i, "weight: "+err.Error())
				bad++
			}
			weight = &n
		}
		j := slices.IndexFunc(old, func(x config.Server) bool { return x.Address == addr })
		var sv config.Server
		if j >= 0 {
			sv = old[j] // its name and maxconn stay
		} else {
			n := 1
			for used[fmt.Sprintf("%s%d", s.name, n)] {
				n++
			}
			sv.Name = fmt.Sprintf("%s%d", s.name, n)
			used[sv.Name] = true
			sv.Address = addr
		}
		if hasW {
			sv.Weight = weight
		} else if j < 0 {
			sv.Weight = nil
		}
		be.Servers = append(be.Servers, sv)
	}
	return bad
}

func (s *backendEdit) Place(e *config.Error) bool {
	prefix := fmt.Sprintf("backends[%d]", s.idx)
	if !under(e.Path, prefix) {
		return false
	}
	rest := strings.TrimPrefix(e.Path, prefix)
	switch {
	case strings.HasPrefix(rest, ".servers["):
		i, _, _ := pathIndex(rest, ".servers")
		s.servers.SetError(i, e.Msg)
	case rest == ".balance":
		s.balance.SetError(-1, e.Msg)
	case strings.HasPrefix(rest, ".sticky"):
		s.pers.SetError(-1, e.Msg)
	default:
		s.servers.SetError(-1, strings.TrimPrefix(rest, ".")+": "+e.Msg)
	}
	return true
}

// ---- one backend's health check ----

type healthEdit struct {
	formStep
	name                                        string
	idx                                         int
	check                                       *ChoiceField
	path, expect, interval, timeout, rise, fall *TextField
	loaded                                      bool
}

func newHealthEdit(name string) Step {
	s := &healthEdit{name: name,
		check: NewChoice("Check", "ICMP echo, TCP connect, or an HTTP(S) request", "tcp",
			Option{"none", "none"}, Option{"icmp", "icmp"}, Option{"tcp", "tcp"}, Option{"http", "http"}, Option{"https", "https"}),
		path:     NewText("Path", "/", "/healthz", "the path the check requests"),
		expect:   NewText("Expect status", "200", "200-399", "a status, range or list"),
		interval: NewText("Interval", "", "(default 2s)", "time between two checks of a server"),
		timeout:  NewText("Timeout", "", "(default 1s)", "a check slower than this fails"),
		rise:     NewText("Rise", "", "(default 2)", "passed checks in a row that bring a server up"),
		fall:     NewText("Fall", "", "(default 3)", "failed checks in a row that take a server down"),
	}
	s.build()
	return s
}

func (s *healthEdit) build() {
	isHTTP := func() bool { v := s.check.Value(); return v == "http" || v == "https" }
	checked := func() bool { return s.check.Value() != "none" }
	s.form = NewForm(s.check, When(s.path, isHTTP), When(s.expect, isHTTP), When(s.interval, checked),
		When(s.timeout, checked), When(s.rise, checked), When(s.fall, checked))
}

func (s *healthEdit) Title() string { return "health check of " + s.name }

func (s *healthEdit) Load(c *Context, d *Draft) tea.Cmd {
	s.idx = indexOf(d.Cfg.Backends, s.name, func(v config.Backend) string { return v.Name })
	if s.idx >= 0 && !s.loaded {
		s.loaded = true
		h := d.Cfg.Backends[s.idx].Health
		if h.Check != "" {
			s.check.Set(h.Check)
		}
		if h.Path != "" {
			s.path.SetValue(h.Path)
		}
		if len(h.ExpectStatus) > 0 {
			s.expect.SetValue(h.ExpectStatus.String())
		}
		if h.Interval != 0 {
			s.interval.SetValue(h.Interval.String())
		}
		if h.Timeout != 0 {
			s.timeout.SetValue(h.Timeout.String())
		}
		if h.Rise != 0 {
			s.rise.SetValue(strconv.Itoa(h.Rise))
		}
		if h.Fall != 0 {
			s.fall.SetValue(strconv.Itoa(h.Fall))
		}
		s.build()
	}
	return s.form.FocusOn(0)
}

func (s *healthEdit) Save(d *Draft) int {
	if s.idx < 0 {
		return 0
	}
	h := &d.Cfg.Backends[s.idx].Health
	bad := 0
	h.Check = s.check.Value()
	h.Path, h.ExpectStatus = "", nil
	if h.Check == "http" || h.Check == "https" {
		h.Path = s.path.Value()
		if v := s.expect.Value(); v != "" {
			if err := h.ExpectStatus.UnmarshalText([]byte(v)); err != nil {
				s.expect.SetError(-1, err.Error())
				bad++
			}
		}
	}
	durs := []struct {
		f *TextField
		v *config.Duration
	}{{s.interval, &h.Interval}, {s.timeout, &h.Timeout}}
	for _, x := range durs {
		*x.v = 0
		if v := x.f.Value(); v != "" {
			dv, err := duration(v)
			if err != nil {
				x.f.SetError(-1, err.Error())
				bad++
			}
			*x.v = dv
		}
	}
	ints := []struct {
		f *TextField
		v *int
	}{{s.rise, &h.Rise}, {s.fall, &h.Fall}}
	for _, x := range ints {
		*x.v = 0
		if v := x.f.Value(); v != "" {
			n, err := wholeNumber(v)
			if err != nil {
				x.f.SetError(-1, err.Error())
				bad++
			}
			*x.v = n
		}
	}
	return bad
}

func (s *healthEdit) Place(e *config.Error) bool {
	prefix := fmt.Sprintf("backends[%d].health", s.idx)
	if !under(e.Path, prefix) {
		return false
	}
	fields := map[string]*TextField{".path": s.path, ".expect_status": s.expect, ".interval": s.interval,
		".timeout": s.timeout, ".rise": s.rise, ".fall": s.fall}
	if f := fields[strings.TrimPrefix(e.Path, prefix)]; f != nil {
		setOnce(f, e.Msg)
	} else {
		s.check.SetError(-1, strings.TrimPrefix(strings.TrimPrefix(e.Path, prefix), ".")+": "+e.Msg)
	}
	return true
}

func orNoneText(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
