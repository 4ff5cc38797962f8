// Package haproxy parses haproxy.cfg and maps it onto halb's services and
// backends.
//
// The parser (parse.go) follows HAProxy's line grammar: words, quotes,
// escapes, comments and sections, each word with its file:line:column.
// The mapping reads the sections as HAProxy does: a defaults section
// applies to the proxies after it (or to those naming it with "from"), a
// frontend becomes a service (two when it has plain and TLS binds), a
// backend a backend, and a listen both, of the same name. use_backend rules
// on the Host and the path become routes (acl.go). Every directive either
// maps, or is reported: Dropped, Changed or, where the mapping is not
// obvious, a Note.
package haproxy

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"halb/appliance/importer/source"
)

// Import parses the haproxy.cfg at path and adds what it holds to b.
func Import(path string, b *source.Builder) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	f, err := Parse(path, data)
	if err != nil {
		return err
	}
	m := newMapper(f, b)
	m.path = path
	m.run()
	return nil
}

// mapper holds the state of one import.
type mapper struct {
	path     string // of haproxy.cfg
	f        *File
	b        *source.Builder
	reported map[string]bool
	used     map[*Line]bool // defaults lines some proxy read
	defaults []*Section     // every defaults section so far
	crtBase  string
	caBase   string
	logs     []logTarget // from global
	backends map[string]*beState
	beOrder  []*beState
	feOrder  []*feState
	names    map[string]string // HAProxy backend name → halb backend name
	hnames   map[string]string // halb backend name → HAProxy backend name
	svcNames map[string]bool   // halb service names taken
	listens  map[string]string // listen address → service
	logTag   string            // global log-tag
}

func newMapper(f *File, b *source.Builder) *mapper {
	return &mapper{f: f, b: b, reported: map[string]bool{}, used: map[*Line]bool{},
		backends: map[string]*beState{}, names: map[string]string{}, hnames: map[string]string{}, svcNames: map[string]bool{}, listens: map[string]string{}}
}

// finding reporters that say a defaults line's finding once, however
// many proxies read it.
func (m *mapper) once(k source.Kind, pos source.Pos, directive, why, instead string) {
	key := fmt.Sprint(k, pos, directive, why)
	if m.reported[key] {
		return
	}
	m.reported[key] = true
	switch k {
	case source.Dropped:
		m.b.Drop(pos, directive, why, instead)
	case source.Changed:
		m.b.Change(pos, directive, why, instead)
	default:
		m.b.Note(pos, directive, why)
	}
}

func (m *mapper) drop(l *Line, why, instead string) {
	m.once(source.Dropped, l.Pos(), l.Raw, why, instead)
}
func (m *mapper) change(l *Line, why, instead string) {
	m.once(source.Changed, l.Pos(), l.Raw, why, instead)
}
func (m *mapper) note(l *Line, became string) { m.once(source.Note, l.Pos(), l.Raw, became, "") }

func (m *mapper) run() {
	for _, s := range m.f.Sections {
		switch s.Kind {
		case "global":
			m.global(s)
		case "defaults":
			m.defaults = append(m.defaults, s)
		case "frontend", "backend", "listen":
			m.proxy(s)
		default:
			m.once(source.Dropped, s.Header.Pos(), s.Header.Raw+fmt.Sprintf(" (section, %d lines)", len(s.Lines)), otherSections[s.Kind], "")
		}
	}
	m.finish()
	for _, d := range m.defaults {
		for i := range d.Lines {
			l := &d.Lines[i]
			if !m.used[l] {
				m.drop(l, "no frontend, backend or listen section that halb imports used this default", "")
			}
		}
	}
}

// defaultsFor returns the lines of the defaults section a proxy reads:
// the one named by "from", else the last one before it (with its own
// "from" chain first).
func (m *mapper) defaultsFor(s *Section) []*Line {
	var d *Section
	if s.From != "" {
		for _, x := range m.defaults {
			if x.Name == s.From {
				d = x
			}
		}
	} else if len(m.defaults) > 0 {
		d = m.defaults[len(m.defaults)-1]
	}
	var out []*Line
	for depth := 0; d != nil && depth < 16; depth++ {
		var lines []*Line
		for i := range d.Lines {
			lines = append(lines, &d.Lines[i])
		}
		out = append(lines, out...)
		if d.From == "" {
			break
		}
		var next *Section
		for _, x := range m.defaults {
			if x.Name == d.From && x != d {
				next = x
			}
		}
		d = next
	}
	return out
}

// envCheck reports a line that names environment variables: their values
// are not known at import.
func (m *mapper) envCheck(l *Line) bool {
	for _, w := range l.Words {
		if len(w.Env) > 0 {
			m.drop(l, "it uses the environment variable ${"+w.Env[0]+"}, whose value the importer cannot know", "write the value into the halb config")
			return true
		}
	}
	return false
}

// sanitize turns an HAProxy name into a valid halb name.
func sanitize(n string) string {
	var b strings.Builder
	for _, r := range n {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	if s == "" {
		s = "unnamed"
	}
	return s
}

// uniqueName sanitizes n and makes it unique among taken.
func uniqueName(n string, taken func(string) bool) string {
	s := sanitize(n)
	if !taken(s) {
		return s
	}
	for i := 2; ; i++ {
		suffix := fmt.Sprintf("-%d", i)
		c := s
		if len(c)+len(suffix) > 63 {
			c = c[:63-len(suffix)]
		}
		if !taken(c + suffix) {
			return c + suffix
		}
	}
}

func (m *mapper) serviceTaken(n string) bool { return m.svcNames[n] }

// finish makes the backends, then the services, in file order.
func (m *mapper) finish() {
	for _, be := range m.beOrder {
		be.name = uniqueName(be.sec.Name, func(n string) bool { return m.hnames[n] != "" })
		m.names[be.sec.Name] = be.name
		m.hnames[be.name] = be.sec.Name
		if be.name != be.sec.Name {
			m.once(source.Note, be.sec.Header.Pos(), be.sec.Header.Raw, "backend "+be.name+" (halb names take letters, digits, -, _ and .)", "")
		}
	}
	// the port of a server without one: the frontends' single port
	ports := map[string]map[string]bool{}
	for _, fe := range m.feOrder {
		refs := []string{}
		if fe.defLine != nil {
			refs = append(refs, fe.defLine.Arg(1))
		}
		if fe.sec.Kind == "listen" {
			refs = append(refs, fe.sec.Name)
		}
		for _, r := range fe.rules {
			refs = append(refs, r.Arg(1))
		}
		for _, r := range refs {
			if ports[r] == nil {
				ports[r] = map[string]bool{}
			}
			for _, bi := range fe.binds {
				for _, a := range bi.addrs {
					ports[r][a[strings.LastIndex(a, ":")+1:]] = true
				}
			}
		}
	}
	for _, be := range m.beOrder {
		port := 0
		if len(ports[be.sec.Name]) == 1 {
			for p := range ports[be.sec.Name] {
				port, _ = strconv.Atoi(p)
			}
		}
		m.backend(be, port)
	}
	for _, fe := range m.feOrder {
		m.service(fe)
	}
}

// isStats reports whether s is a listen section serving HAProxy's stats
// page only: stats lines and no servers.
func isStats(s *Section) bool {
	if s.Kind != "listen" && s.Kind != "frontend" {
		return false
	}
	stats := false
	for _, l := range s.Lines {
		switch l.Arg(0) {
		case "server", "default_backend", "use_backend":
			return false
		case "stats":
			stats = true
		}
	}
	return stats
}

// statsListen maps a stats section onto observe.listen.
func (m *mapper) statsListen(s *Section) {
	o := &m.b.Config.Observe
	for i := range s.Lines {
		l := &s.Lines[i]
		switch l.Arg(0) {
		case "bind":
			addrs, why := listenAddrs(l.Arg(1))
			switch {
			case why != "":
				m.drop(l, why, "")
			case o.Listen != "":
				m.drop(l, "halb has one observe listener ("+o.Listen+")", "")
			case len(l.Words) > 2:
				m.drop(l, "halb's observe listener is plain HTTP on one address", "")
			default:
				o.Listen = addrs[0]
				m.note(l, "observe.listen: "+addrs[0]+" (halb's /stats, /stats;json and /metrics; a node part)")
				m.b.From("observe", l.Pos(), s.What())
			}
		case "stats":
			switch l.Arg(1) {
			case "enable", "show-legends", "show-node", "hide-version", "show-desc", "show-modules":
				m.note(l, "nothing: halb's stats page shows what it has")
			case "uri":
				m.change(l, "halb's stats page is at /stats (and /stats;json, /metrics)", "")
			case "auth":
				m.drop(l, "halb's observe users need a bcrypt hash of the password", "add observe.users with a hash from halbctl observe hash")
			case "admin":
				m.drop(l, "the stats page of halb is read-only", "halbctl drain / the control API")
			case "refresh", "realm", "scope":
				m.drop(l, "halb's stats page has no "+l.Arg(1), "")
			default:
				m.drop(l, "unknown stats directive", "")
			}
		case "mode", "log", "timeout", "option", "maxconn", "no":
			m.note(l, "nothing: the stats page's own settings")
		case "acl", "http-request":
			m.drop(l, "halb's observe listener takes only observe.allow (client networks) and observe.users", "")
		default:
			m.drop(l, "unknown directive in a stats section", "")
		}
	}
}
