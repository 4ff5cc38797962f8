package tui

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
	"halb/appliance/config"
)

// formStep is the part every form-shaped step shares.
type formStep struct{ form *Form }

func (s *formStep) Update(c *Context, msg tea.Msg) (bool, tea.Cmd) { return s.form.Update(msg) }
func (s *formStep) View(c *Context, w, h int) string               { return s.form.View(c.Theme, w) }
func (s *formStep) Help(c *Context) []Binding {
	return formHelp(s.form.step(s.form.Focused(), 1) == s.form.Focused())
}
func (s *formStep) focusedField() Field {
	f := s.form.Fields[s.form.Focused()]
	if c, ok := f.(*conditional); ok {
		return c.Field
	}
	return f
}

func (s *formStep) ClearErrors() {
	for _, f := range s.form.Fields {
		f.ClearErrors()
	}
}

// setOnce puts msg on f unless f already shows a message (the console's own
// reading of the field came first).
func setOnce(f Field, msg string) {
	if len(f.Errors()) == 0 {
		f.SetError(-1, msg)
	}
}

// wholeNumber parses an integer field with the daemon's message.
func wholeNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("want a whole number, got %q", s)
	}
	return n, nil
}

// duration parses a duration field with the daemon's message.
func duration(s string) (config.Duration, error) {
	var d config.Duration
	err := d.UnmarshalText([]byte(s))
	return d, err
}

// ---- 1. Node ----

type nodeStep struct {
	formStep
	name *TextField
}

func newNodeStep() Step {
	s := &nodeStep{name: NewText("Node name", "", "lb1", "this node's host name: letters, digits and '-', e.g. lb1")}
	s.form = NewForm(s.name)
	return s
}

func (s *nodeStep) Title() string { return "Node" }

func (s *nodeStep) Load(c *Context, d *Draft) tea.Cmd {
	if s.name.Value() == "" {
		s.name.SetValue(d.Cfg.Node.Name)
	}
	return s.form.FocusOn(0)
}

func (s *nodeStep) Save(d *Draft) int { d.Cfg.Node.Name = s.name.Value(); return 0 }

func (s *nodeStep) Place(e *config.Error) bool {
	if under(e.Path, "node.name") || e.Path == "node" {
		s.name.SetError(-1, e.Msg)
		return true
	}
	return false
}

// ---- 2. VRRP ----

// Priorities of the two roles: keepalived's usual MASTER 150 / BACKUP 100.
const (
	primaryPriority   = 150
	secondaryPriority = 100
	trackWeight       = -60 // a node without healthy servers drops below its peer
)

type vrrpStep struct {
	formStep
	iface  *ChoiceField
	vips   *ListField
	vrid   *TextField
	role   *ChoiceField
	advert *TextField
	vipsB  *ListField

	ifaces  []api.Interface
	loadErr error
	// names of the instances the wizard manages (kept from the draft)
	nameA, nameB string
	suggested    bool // the VRID field got its suggestion
}

func newVRRPStep() Step {
	s := &vrrpStep{
		iface: NewChoice("Interface", "left/right: the link the VIPs live on (state, MAC, addresses)", ""),
		vips:  NewList("VIPs", "10.0.0.100/24", "the virtual addresses with their prefix; none: no VRRP (a single node)"),
		vrid:  NewText("VRID", "", "51", "virtual router id 1..255, the same on both nodes; one no other router uses on the link"),
		role: NewChoice("Role", "primary holds the VIPs while it is up; secondary takes them over. The priority is this node's own: "+
			"it is never copied to a peer", "primary",
			Option{"primary", fmt.Sprintf("primary (priority %d)", primaryPriority)},
			Option{"secondary", fmt.Sprintf("secondary (priority %d)", secondaryPriority)}),
		advert: NewText("Advert interval", "", "(default 200ms)", "how often the master announces itself; failover takes about 3 of them"),
		vipsB:  NewList("Dual-master VIPs", "(none)", "a second VIP set with the roles swapped (both nodes active); none: one master"),
		nameA:  "vip-a", nameB: "vip-b",
	}
	s.iface.vertical = true
	s.form = NewForm(s.iface, s.vips, s.vrid, s.role, s.advert, s.vipsB)
	return s
}

func (s *vrrpStep) Title() string { return "VRRP" }

type interfacesMsg struct {
	list []api.Interface
	err  error
}

func fetchInterfaces(c *Context) tea.Cmd {
	client := c.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		l, err := client.Interfaces(ctx)
		return interfacesMsg{l, err}
	}
}

func (s *vrrpStep) Load(c *Context, d *Draft) tea.Cmd {
	if len(d.Cfg.VRRP) > 0 && len(s.vips.Values()) == 0 {
		a := d.Cfg.VRRP[0]
		s.nameA = a.Name
		s.iface.Set(a.Interface)
		s.vips = NewList(s.vips.label, s.vips.placeholder, s.vips.hint, a.VIPs...)
		s.vrid.SetValue(strconv.Itoa(a.VRID))
		if a.Priority != 0 && a.Priority < primaryPriority {
			s.role.Set("secondary")
		}
		if a.AdvertInterval != 0 {
			s.advert.SetValue(a.AdvertInterval.String())
		}
		if b, ok := dualPartner(d.Cfg.VRRP); ok {
			s.nameB = b.Name
			s.vipsB = NewList(s.vipsB.label, s.vipsB.placeholder, s.vipsB.hint, b.VIPs...)
		}
		s.form = NewForm(s.iface, s.vips, s.vrid, s.role, s.advert, s.vipsB)
	}
	return tea.Batch(s.form.FocusOn(0), fetchInterfaces(c))
}

// dualPartner returns the second instance of a dual-master pair as the
// wizard makes it: on the first one's interface.
func dualPartner(vs []config.VRRPInstance) (config.VRRPInstance, bool) {
	if len(vs) < 2 || vs[1].Interface != vs[0].Interface {
		return config.VRRPInstance{}, false
	}
	return vs[1], true
}

func (s *vrrpStep) Update(c *Context, msg tea.Msg) (bool, tea.Cmd) {
	if _, ok := msg.(statusMsg); ok {
		// Link states and the routers heard change: read them with every
		// status poll while the step is shown.
		return false, fetchInterfaces(c)
	}
	if m, ok := msg.(interfacesMsg); ok {
		s.ifaces, s.loadErr = m.list, m.err
		setInterfaces(s.iface, m.list, firstLinkWithAddress)
		if s.vrid.Value() == "" && !s.suggested && m.err == nil {
			// Once: an operator who clears the field keeps it cleared.
			s.suggested = true
			s.vrid.SetValue(strconv.Itoa(s.suggestVRID()))
		}
		return false, nil
	}
	return s.formStep.Update(c, msg)
}

// setInterfaces makes list (but loopback) the choices of f, keeping its
// choice, or preselecting guess(list) when it had none.
func setInterfaces(f *ChoiceField, list []api.Interface, guess func([]api.Interface) string) {
	cur := f.Value()
	var opts []Option
	for _, in := range list {
		if in.Kind != "loopback" {
			opts = append(opts, Option{in.Name, describeInterface(in)})
		}
	}
	f.opts, f.i = opts, 0
	if cur == "" {
		cur = guess(list)
	}
	if cur != "" {
		f.Set(cur)
	}
}

// firstLinkWithAddress is the first link that is up and has an address.
func firstLinkWithAddress(l []api.Interface) string {
	for _, in := range l {
		if in.Kind != "loopback" && in.Carrier && len(in.Addresses) > 0 {
			return in.Name
		}
	}
	return ""
}

// describeInterface is an interface's line in the list: name, link state,
// MAC, addresses and the VRRP routers heard on it.
func describeInterface(in api.Interface) string {
	state := "no link"
	switch {
	case !in.Up:
		state = "down"
	case in.Carrier:
		state = "link up"
	}
	addrs := "no address"
	if len(in.Addresses) > 0 {
		addrs = strings.Join(in.Addresses, " ")
	}
	s := fmt.Sprintf("%-8s %-7s %s  %s", in.Name, state, in.MAC, addrs)
	if len(in.VRRP) > 0 {
		var ids []string
		for _, r := range in.VRRP {
			ids = append(ids, strconv.Itoa(r.VRID))
		}
		s += "  VRRP heard: " + strings.Join(ids, ",")
	}
	return s
}

// heard returns the VRRP routers heard on the chosen interface.
func (s *vrrpStep) heard() []api.HeardRouter {
	for _, in := range s.ifaces {
		if in.Name == s.iface.Value() {
			return in.VRRP
		}
	}
	return nil
}

// suggestVRID is 51 (keepalived's example) or the first id above it that no
// router on the link uses.
func (s *vrrpStep) suggestVRID() int {
	used := map[int]bool{}
	for _, r := range s.heard() {
		used[r.VRID] = true
	}
	for id := 51; id < 51+255; id++ {
		v := (id-1)%255 + 1
		if !used[v] && !used[v+1] {
			return v
		}
	}
	return 51
}

func (s *vrrpStep) Save(d *Draft) int {
	bad := 0
	vips := s.vips.Values()
	var managed []config.VRRPInstance
	// The instances the wizard edits keep whatever else they set (a
	// preempt delay, unicast peers, ...).
	var oldA, oldB config.VRRPInstance
	keep := d.Cfg.VRRP
	if len(keep) > 0 {
		oldA = keep[0]
		n := 1
		if b, ok := dualPartner(keep); ok {
			oldB = b
			n = 2
		}
		keep = keep[n:]
	}
	if len(vips) == 0 {
		d.Cfg.VRRP = keep
		return 0
	}
	vrid, err := wholeNumber(s.vrid.Value())
	if err != nil {
		s.vrid.SetError(-1, err.Error())
		bad++
	}
	var advert config.Duration
	if v := s.advert.Value(); v != "" {
		if advert, err = duration(v); err != nil {
			s.advert.SetError(-1, err.Error())
			bad++
		}
	}
	prioA, prioB := primaryPriority, secondaryPriority
	if s.role.Value() == "secondary" {
		prioA, prioB = prioB, prioA
	}
	a := oldA
	if a.Name == "" {
		// A new instance follows the first service (set by the next step).
		a.Name = s.nameA
		a.Track = config.Track{Weight: trackWeight}
	}
	a.Interface, a.VRID, a.Priority, a.AdvertInterval, a.VIPs = s.iface.Value(), vrid, prioA, advert, vips
	managed = append(managed, a)
	if vb := s.vipsB.Values(); len(vb) > 0 {
		b := oldB
		if b.Name == "" {
			b = a
			b.Name = s.nameB
			b.Track.Services = slices.Clone(a.Track.Services)
		}
		b.Interface, b.VRID, b.Priority, b.AdvertInterval, b.VIPs = a.Interface, vrid+1, prioB, advert, vb
		managed = append(managed, b)
	}
	// A VRID another router already uses on the link is refused, unless
	// that router announces the same VIPs: then it is this node's peer.
	for _, in := range managed {
		for _, r := range s.heard() {
			if r.VRID == in.VRID && !sameAddrs(r.VIPs, in.VIPs) && len(s.vrid.Errors()) == 0 {
				s.vrid.SetError(-1, fmt.Sprintf("VRID %d is in use on %s by %s (priority %d); %d is free",
					in.VRID, in.Interface, r.Source, r.Priority, s.suggestVRID()))
				bad++
			}
		}
	}
	d.Cfg.VRRP = append(managed, keep...)
	return bad
}

// sameAddrs compares heard VIPs (addresses) with configured ones (CIDR).
func sameAddrs(heard, cidrs []string) bool {
	if len(heard) != len(cidrs) {
		return false
	}
	var a, b []string
	for _, h := range heard {
		a = append(a, h)
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			b = append(b, p.Addr().String())
		} else {
			b = append(b, c)
		}
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func (s *vrrpStep) Place(e *config.Error) bool {
	for idx, list := range []*ListField{s.vips, s.vipsB} {
		prefix := fmt.Sprintf("vrrp[%d]", idx)
		if !under(e.Path, prefix) {
			continue
		}
		rest := strings.TrimPrefix(e.Path, prefix)
		switch {
		case strings.HasPrefix(rest, ".vips["):
			i, _, _ := pathIndex(rest, ".vips")
			list.SetError(i, e.Msg)
		case rest == ".vips":
			list.SetError(-1, e.Msg)
		case rest == ".interface":
			s.iface.SetError(-1, e.Msg)
		case rest == ".vrid":
			setOnce(s.vrid, e.Msg) // a number the console could not read is 0 here
		case rest == ".priority":
			s.role.SetError(-1, e.Msg)
		case rest == ".advert_interval":
			setOnce(s.advert, e.Msg)
		default:
			list.SetError(-1, strings.TrimPrefix(rest, ".")+": "+e.Msg)
		}
		return true
	}
	return false
}

func (s *vrrpStep) View(c *Context, w, h int) string {
	var b strings.Builder
	if s.loadErr != nil {
		b.WriteString(c.Theme.Error.Render("interfaces: "+s.loadErr.Error()) + "\n")
	}
	if r := s.heard(); len(r) > 0 {
		var parts []string
		for _, x := range r {
			parts = append(parts, fmt.Sprintf("VRID %d from %s (priority %d)", x.VRID, x.Source, x.Priority))
		}
		b.WriteString(c.Theme.Dim.Render("heard on "+s.iface.Value()+": "+strings.Join(parts, "; ")) + "\n")
	}
	b.WriteString(s.form.View(c.Theme, w))
	return b.String()
}

// ---- 3. First service ----

type serviceStep struct {
	formStep
	name, port    *TextField
	mode          *ChoiceField
	servers       *ListField
	check         *ChoiceField
	path, expect  *TextField
	balance, pers *ChoiceField
	// backendIndex is where Save put the backend in the draft.
	backendIndex int
}

func newServiceStep() Step {
	s := &serviceStep{
		name: NewText("Service name", "web", "web", "a name for the service, e.g. web"),
		port: NewText("Listen port", "80", "80", "the port clients connect to, on every VIP (all addresses without VIPs)"),
		mode: NewChoice("Mode", "http: HTTP/1.1 proxy (virtual hosts, cookies); tcp: any TCP protocol", "http",
			Option{"http", "http"}, Option{"tcp", "tcp"}),
		servers: NewList("Servers", "10.0.1.11:80", "the backend servers as address:port"),
		check: NewChoice("Health check", "how servers are checked: ICMP echo, TCP connect or an HTTP request", "tcp",
			Option{"none", "none"}, Option{"icmp", "icmp"}, Option{"tcp", "tcp"}, Option{"http", "http"}),
		path:   NewText("Check path", "/", "/", "the path the HTTP check requests"),
		expect: NewText("Expect status", "200-399", "200", "a status, range or list, e.g. 200 or 200-399"),
		balance: NewChoice("Balance", "how requests are spread over servers", "roundrobin",
			Option{"roundrobin", "roundrobin"}, Option{"leastconn", "leastconn"}, Option{"source", "source"},
			Option{"uri", "uri"}, Option{"random", "random"}),
		pers: NewChoice("Persistence", "keep a client on one server: a cookie (http) or its source address", "none",
			Option{"none", "none"}, Option{"cookie", "cookie"}, Option{"source", "source"}),
	}
	s.build()
	return s
}

func (s *serviceStep) build() {
	isHTTP := func() bool { return s.check.Value() == "http" }
	s.form = NewForm(s.name, s.port, s.mode, s.servers, s.check, When(s.path, isHTTP), When(s.expect, isHTTP), s.balance, s.pers)
}

func (s *serviceStep) Title() string { return "Service" }

// wizardService returns the service and backend the wizard edits: the
// first service and its default backend (-1 when absent).
func wizardService(c *config.Config) (si, bi int) {
	if len(c.Services) == 0 {
		return -1, -1
	}
	for i, b := range c.Backends {
		if b.Name == c.Services[0].DefaultBackend {
			return 0, i
		}
	}
	return 0, -1
}

func (s *serviceStep) Load(c *Context, d *Draft) tea.Cmd {
	si, bi := wizardService(&d.Cfg)
	if si >= 0 && len(s.servers.Values()) == 0 {
		sv := d.Cfg.Services[si]
		s.name.SetValue(sv.Name)
		if len(sv.Listen) > 0 {
			if _, port, ok := strings.Cut(sv.Listen[0][strings.LastIndex(sv.Listen[0], ":"):], ":"); ok {
				s.port.SetValue(port)
			}
		}
		s.mode.Set(sv.Mode)
		if bi >= 0 {
			be := d.Cfg.Backends[bi]
			var addrs []string
			for _, x := range be.Servers {
				addrs = append(addrs, x.Address)
			}
			s.servers = NewList(s.servers.label, s.servers.placeholder, s.servers.hint, addrs...)
			if be.Health.Check != "" {
				s.check.Set(be.Health.Check)
			}
			if be.Health.Path != "" {
				s.path.SetValue(be.Health.Path)
			}
			if len(be.Health.ExpectStatus) > 0 {
				s.expect.SetValue(be.Health.ExpectStatus.String())
			}
			if be.Balance != "" {
				s.balance.Set(be.Balance)
			}
			switch {
			case be.Sticky.Cookie != "":
				s.pers.Set("cookie")
			case be.Sticky.Source:
				s.pers.Set("source")
			}
		}
		s.build()
	}
	return s.form.FocusOn(0)
}

func (s *serviceStep) Save(d *Draft) int {
	bad := 0
	name := s.name.Value()
	port := s.port.Value()
	var listen []string
	for _, v := range d.Cfg.VRRP {
		for _, vip := range v.VIPs {
			if p, err := netip.ParsePrefix(vip); err == nil {
				listen = append(listen, joinHostPort(p.Addr(), port))
			}
		}
	}
	if len(listen) == 0 {
		listen = []string{":" + port}
	}
	// The service and backend the wizard edits keep whatever else they
	// set (routes, timeouts, check intervals, server weights, ...).
	si, bi := wizardService(&d.Cfg)
	var svc config.Service
	var be config.Backend
	if si >= 0 {
		svc = d.Cfg.Services[si]
	}
	if bi >= 0 {
		be = d.Cfg.Backends[bi]
	}
	svc.Name, svc.Listen, svc.Mode, svc.DefaultBackend = name, listen, s.mode.Value(), name
	be.Name, be.Balance = name, s.balance.Value()
	setPersistence(&be, s.pers.Value())
	if be.Health.Check != s.check.Value() {
		be.Health = config.Health{Check: s.check.Value(), Interval: be.Health.Interval, Timeout: be.Health.Timeout,
			Rise: be.Health.Rise, Fall: be.Health.Fall}
	}
	if be.Health.Check == "http" {
		be.Health.Path = s.path.Value()
		be.Health.ExpectStatus = nil
		if err := be.Health.ExpectStatus.UnmarshalText([]byte(s.expect.Value())); err != nil {
			s.expect.SetError(-1, err.Error())
			bad++
		}
	}
	old := be.Servers
	be.Servers = nil
	used := map[string]bool{}
	for _, x := range old {
		used[x.Name] = true
	}
	for _, a := range s.servers.Values() {
		i := slices.IndexFunc(old, func(x config.Server) bool { return x.Address == a })
		if i >= 0 {
			be.Servers = append(be.Servers, old[i]) // its name, weight and maxconn stay
			continue
		}
		n := 1
		for used[fmt.Sprintf("%s%d", name, n)] {
			n++
		}
		used[fmt.Sprintf("%s%d", name, n)] = true
		be.Servers = append(be.Servers, config.Server{Name: fmt.Sprintf("%s%d", name, n), Address: a})
	}
	if si < 0 {
		d.Cfg.Services = append([]config.Service{svc}, d.Cfg.Services...)
	} else {
		d.Cfg.Services[si] = svc
	}
	if bi < 0 {
		d.Cfg.Backends = append([]config.Backend{be}, d.Cfg.Backends...)
		bi = 0
	} else {
		d.Cfg.Backends[bi] = be
	}
	s.backendIndex = bi
	// The VIPs follow the service: a node whose servers are all down
	// gives them to its peer.
	for i := range d.Cfg.VRRP {
		if d.Cfg.VRRP[i].Track.Weight == trackWeight {
			d.Cfg.VRRP[i].Track.Services = []string{name}
		}
	}
	return bad
}

func joinHostPort(a netip.Addr, port string) string {
	if a.Is6() {
		return "[" + a.String() + "]:" + port
	}
	return a.String() + ":" + port
}

func (s *serviceStep) Place(e *config.Error) bool {
	if e == nil {
		return false
	}
	// The expect field is checked by the console (it is not a string in
	// the config); its message is already on the field.
	switch {
	case under(e.Path, "services[0].listen"):
		s.port.SetError(-1, e.Msg)
	case under(e.Path, "services[0].mode"):
		s.mode.SetError(-1, e.Msg)
	case under(e.Path, "services[0]"):
		s.name.SetError(-1, strings.TrimPrefix(strings.TrimPrefix(e.Path, "services[0]"), ".")+": "+e.Msg)
	case strings.HasPrefix(e.Path, "vrrp[") && strings.Contains(e.Path, ".track.services"):
		s.name.SetError(-1, e.Msg)
	default:
		i, rest, ok := pathIndex(e.Path, "backends")
		if !ok || i != s.backendIndex {
			return false
		}
		switch {
		case strings.HasPrefix(rest, ".servers["):
			j, _, _ := pathIndex(rest, ".servers")
			s.servers.SetError(j, e.Msg)
		case rest == ".servers":
			s.servers.SetError(-1, e.Msg)
		case strings.HasPrefix(rest, ".health.path"):
			s.path.SetError(-1, e.Msg)
		case strings.HasPrefix(rest, ".health.expect_status"):
			s.expect.SetError(-1, e.Msg)
		case strings.HasPrefix(rest, ".health"):
			s.check.SetError(-1, e.Msg)
		case rest == ".balance":
			s.balance.SetError(-1, e.Msg)
		case strings.HasPrefix(rest, ".sticky"):
			s.pers.SetError(-1, e.Msg)
		default:
			s.name.SetError(-1, strings.TrimPrefix(rest, ".")+": "+e.Msg)
		}
	}
	return true
}

// setPersistence sets a backend's stickiness from the form's choice (none,
// cookie, source); a cookie name already set is kept.
func setPersistence(be *config.Backend, choice string) {
	switch choice {
	case "cookie":
		if be.Sticky.Cookie == "" {
			be.Sticky = config.Sticky{Cookie: "SRVID"}
		}
	case "source":
		be.Sticky.Cookie, be.Sticky.Source = "", true
	default:
		be.Sticky = config.Sticky{}
	}
}
