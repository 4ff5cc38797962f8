// Package keepalived parses keepalived.conf and maps it onto halb's VRRP
// instances, sync groups, track scripts and (for LVS virtual servers that
// fit) services.
//
// The parser (parse.go) follows keepalived.conf(5): blocks in braces (the
// `{` on the keyword's line or on the next), `#` and `!` comments anywhere
// outside quotes, " and ' quoting with backslash escapes, `include` (and
// its includer/includem/... variants) with glob patterns relative to the
// including file's directory, `$NAME=value` definitions. Lines with a
// conditional prefix (`@lb1`) are decided by ImportAs's config id, or,
// without one, reported and left out.
package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// Import parses the keepalived.conf at path (its includes too) and adds
// what it holds to b. Conditional lines (@id) are reported and left out;
// ImportAs decides them.
func Import(path string, b *source.Builder) error { return ImportAs(path, "", b) }

// ImportAs is Import for the node whose keepalived config id (keepalived
// -i, by default the host name's first label) is configID: conditional
// lines for it are read (without their prefix), the others left out, as
// keepalived does on that node.
func ImportAs(path, configID string, b *source.Builder) error {
	stmts, warns, err := ParseFile(path, configID)
	if err != nil {
		return err
	}
	return apply(stmts, warns, b)
}

func apply(stmts []*Stmt, warns []Warning, b *source.Builder) error {
	m := &mapper{b: b, scripts: map[string]*vscript{}, names: map[string]string{}, version: 2, reported: map[string]bool{}}
	for _, w := range warns {
		b.Drop(w.Pos, w.Directive, w.Why, "")
	}
	stmts = m.conditional(stmts)
	// keepalived resolves names after reading everything: global_defs and
	// vrrp_scripts first, whatever their place in the file.
	for _, st := range stmts {
		switch st.Key() {
		case "global_defs":
			m.globalDefs(st)
		case "vrrp_script":
			m.vrrpScript(st)
		}
	}
	for _, st := range stmts {
		switch k := st.Key(); k {
		case "global_defs", "vrrp_script":
		case "vrrp_instance":
			m.instance(st)
		case "vrrp_sync_group":
		case "virtual_server":
			m.virtualServer(st)
		default:
			if why, ok := droppedSections[k]; ok {
				b.Drop(st.Pos(), st.Text(), why, "")
				continue
			}
			return source.Errorf(st.Pos(), "unknown keepalived section %q", k)
		}
	}
	for _, st := range stmts {
		if st.Key() == "vrrp_sync_group" {
			m.syncGroup(st)
		}
	}
	for _, s := range m.scripts {
		if !s.used {
			b.Drop(s.st.Pos(), "vrrp_script "+s.name, "no vrrp_instance tracks it (keepalived does not run it either)", "")
		}
	}
	return nil
}

// droppedSections are the top-level keywords halb has no counterpart for.
var droppedSections = map[string]string{
	"virtual_server_group":  "LVS virtual server groups have no halb equivalent",
	"static_ipaddress":      "halb does not manage static addresses",
	"static_routes":         "halb does not manage static routes",
	"static_rules":          "halb does not manage routing rules",
	"linkbeat_interfaces":   "halb watches links through netlink only",
	"vrrp_track_file":       "halb tracks interfaces, services and scripts, not files",
	"track_file":            "halb tracks interfaces, services and scripts, not files",
	"vrrp_track_process":    "halb tracks interfaces, services and scripts, not processes",
	"track_process":         "halb tracks interfaces, services and scripts, not processes",
	"bfd_instance":          "halb has no BFD",
	"garp_group":            "halb has no GARP groups; see vrrp[].garp",
	"track_group":           "halb has no static track groups",
	"net_namespace":         "halb runs in its own network namespace",
	"net_namespace_ipvs":    "halb does not use IPVS",
	"namespace_with_ipsets": "halb does not use ipsets",
	"instance":              "halb runs one daemon per node",
	"use_pid_dir":           "halbd's pid and files are its own",
	"child_wait_time":       "halbd has no child processes to wait for",
	"linkbeat_use_polling":  "halb watches links through netlink only",
}

type mapper struct {
	b       *source.Builder
	scripts map[string]*vscript
	// names maps a keepalived instance name to its halb name.
	names   map[string]string
	version int // global vrrp_version (keepalived's default 2)
	// global GARP settings (nil when not set).
	garpRepeat *int
	garpDelay  *time.Duration
	garpMin    bool
	garpAt     source.Pos
	// origins of the servers of the backend being built
	serverPos  []source.Pos
	serverWhat []string
	reported   map[string]bool
}

// once reports whether the finding keyed by pos and text is new (global
// settings apply to every instance but are reported once).
func (m *mapper) once(pos source.Pos, text string) bool {
	k := pos.String() + " " + text
	if m.reported[k] {
		return false
	}
	m.reported[k] = true
	return true
}

// vscript is a vrrp_script block.
type vscript struct {
	st      *Stmt
	name    string
	script  *Stmt
	argv    []string
	shell   bool
	haproxy bool
	ts      config.TrackScript
	weight  int
	weightS *Stmt
	reverse bool
	used    bool
}

// conditional drops (and reports) the statements with a conditional
// prefix, at every level.
func (m *mapper) conditional(stmts []*Stmt) []*Stmt {
	out := stmts[:0]
	for _, st := range stmts {
		if st.Cond != "" {
			m.b.Drop(st.Pos(), st.Text(), "conditional configuration, and no config id (keepalived -i) to decide it: left out",
				"import with the node's name, which decides @ lines as keepalived -i does")
			continue
		}
		st.Block = m.conditional(st.Block)
		out = append(out, st)
	}
	return out
}

func (m *mapper) unknown(st *Stmt) {
	m.b.Drop(st.Pos(), st.Text(), "unknown directive", "")
}

// --- global_defs

var globalDrops = map[string][2]string{
	"notification_email":              {"halb sends no e-mail", "a vrrp[].notify program, or follow `halbctl events`"},
	"notification_email_from":         {"halb sends no e-mail", "a vrrp[].notify program, or follow `halbctl events`"},
	"smtp_server":                     {"halb sends no e-mail", "a vrrp[].notify program, or follow `halbctl events`"},
	"smtp_connect_timeout":            {"halb sends no e-mail", ""},
	"smtp_helo_name":                  {"halb sends no e-mail", ""},
	"smtp_alert":                      {"halb sends no e-mail", ""},
	"smtp_alert_vrrp":                 {"halb sends no e-mail", ""},
	"smtp_alert_checker":              {"halb sends no e-mail", ""},
	"no_email_faults":                 {"halb sends no e-mail", ""},
	"script_user":                     {"halb runs track scripts and notify programs as halbd's user (root)", ""},
	"enable_script_security":          {"halb does not check the ownership of the scripts it runs", "keep them root-owned and not writable by others"},
	"vrrp_strict":                     {"halb follows RFC 5798 without keepalived's strict-mode firewall rules and refusals", ""},
	"vrrp_skip_check_adv_addr":        {"halb does not compare the addresses in adverts with its own", ""},
	"vrrp_iptables":                   {"halb adds no firewall rules", ""},
	"vrrp_mcast_group4":               {"halb sends multicast adverts to 224.0.0.18 only", "unicast_peers"},
	"vrrp_mcast_group6":               {"halb sends multicast adverts to ff02::12 only", "unicast_peers"},
	"lvs_sync_daemon":                 {"halb does not use IPVS", ""},
	"lvs_flush":                       {"halb does not use IPVS", ""},
	"lvs_timeouts":                    {"halb does not use IPVS", ""},
	"vrrp_garp_interval":              {"halb spaces announcements by vrrp[].garp.interval only", ""},
	"vrrp_gna_interval":               {"halb spaces announcements by vrrp[].garp.interval only", ""},
	"vrrp_garp_master_refresh":        {"halb announces on becoming MASTER only", ""},
	"vrrp_garp_master_refresh_repeat": {"halb announces on becoming MASTER only", ""},
	"vrrp_garp_lower_prio_repeat":     {"halb announces on becoming MASTER only", ""},
	"vrrp_garp_lower_prio_delay":      {"halb announces on becoming MASTER only", ""},
	"max_auto_priority":               {"halbd's scheduling priority is its own", ""},
	"vrrp_no_swap":                    {"halbd's memory handling is its own", ""},
	"vrrp_priority":                   {"halbd's scheduling priority is its own", ""},
	"checker_priority":                {"halbd's scheduling priority is its own", ""},
	"dynamic_interfaces":              {"halb's instances wait for their interface to appear", ""},
}

func (m *mapper) globalDefs(g *Stmt) {
	for _, st := range g.Block {
		a := st.Args()
		switch k := st.Key(); k {
		case "router_id":
			if len(a) != 1 {
				m.unknown(st)
				continue
			}
			if config.ValidNodeName(a[0]) {
				if m.b.Config.Node.Name == "" {
					m.b.Config.Node.Name = a[0]
				}
				m.b.Note(st.Pos(), st.Text(), "node.name (unless --node-name is given)")
			} else if h := source.HostName(a[0]); config.ValidNodeName(h) {
				if m.b.Config.Node.Name == "" {
					m.b.Config.Node.Name = h
				}
				m.b.Note(st.Pos(), st.Text(), fmt.Sprintf("node.name: %s, a host name made of it (unless --node-name is given)", h))
			} else {
				m.b.Drop(st.Pos(), st.Text(), "not a valid host name, so not usable as node.name", "give --node-name")
			}
		case "vrrp_version":
			if len(a) == 1 && (a[0] == "2" || a[0] == "3") {
				m.version, _ = strconv.Atoi(a[0])
				continue
			}
			m.unknown(st)
		case "vrrp_garp_master_repeat":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 0 {
				m.garpRepeat, m.garpAt = &n, st.Pos()
				continue
			}
			m.unknown(st)
		case "vrrp_garp_master_delay":
			if d, ok := seconds(first(a)); ok {
				m.garpDelay, m.garpAt = &d, st.Pos()
				continue
			}
			m.unknown(st)
		case "vrrp_min_garp":
			m.garpMin = len(a) == 0 || boolean(a[0])
			m.garpAt = st.Pos()
		default:
			if d, ok := globalDrops[k]; ok {
				m.b.Drop(st.Pos(), st.Text(), d[0], d[1])
				continue
			}
			m.unknown(st)
		}
	}
}

// --- vrrp_script

func (m *mapper) vrrpScript(st *Stmt) {
	if len(st.Words) != 2 {
		m.b.Drop(st.Pos(), st.Text(), "a vrrp_script needs exactly one name", "")
		return
	}
	s := &vscript{st: st, name: st.Words[1].Text}
	for _, d := range st.Block {
		a := d.Args()
		switch d.Key() {
		case "script":
			if len(a) < 1 {
				m.unknown(d)
				continue
			}
			argv, shell := splitScript(strings.Join(a, " "))
			if len(argv) == 0 {
				m.unknown(d)
				continue
			}
			s.script, s.argv, s.shell = d, argv, shell
			s.haproxy = checksHAProxy(s.argv, s.shell)
		case "interval":
			if v, ok := seconds(first(a)); ok && v >= 10*time.Millisecond {
				s.ts.Interval = config.Duration(v)
				continue
			}
			m.unknown(d)
		case "timeout":
			if v, ok := seconds(first(a)); ok && v > 0 {
				s.ts.Timeout = config.Duration(v)
				continue
			}
			m.unknown(d)
		case "rise":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 1 {
				s.ts.Rise = n
				continue
			}
			m.unknown(d)
		case "fall":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 1 {
				s.ts.Fall = n
				continue
			}
			m.unknown(d)
		case "weight":
			n, err := strconv.Atoi(first(a))
			if err != nil || n < -254 || n > 254 {
				m.unknown(d)
				continue
			}
			s.weight, s.weightS = n, d
			s.reverse = len(a) > 1 && a[1] == "reverse"
		case "user":
			m.b.Drop(d.Pos(), d.Text(), "halb runs track scripts as halbd's user (root)", "a command that drops privileges itself (setpriv, runuser)")
		case "init_fail":
			m.b.Change(d.Pos(), d.Text(), "halb counts a script as passing until its first run ends", "")
		default:
			m.unknown(d)
		}
	}
	if s.script == nil {
		m.b.Drop(st.Pos(), st.Text(), "vrrp_script without a script", "")
		return
	}
	m.scripts[s.name] = s
}

// shellMeta are the characters that make a script string shell syntax.
const shellMeta = "|&;<>()$`*?[]~\n"

// splitScript splits a script string as keepalived does (on unquoted
// spaces; single quotes keep spaces). A string with shell syntax becomes
// /bin/sh -c STRING.
func splitScript(s string) ([]string, bool) {
	if strings.ContainsAny(s, shellMeta) {
		return []string{"/bin/sh", "-c", s}, true
	}
	var out []string
	var cur strings.Builder
	in, q := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			q, in = !q, true
		case (c == ' ' || c == '\t') && !q:
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out, false
}

// checksHAProxy reports whether the command only checks that the local
// HAProxy runs.
func checksHAProxy(argv []string, shell bool) bool {
	if shell || len(argv) < 2 {
		return false
	}
	base := argv[0][strings.LastIndexByte(argv[0], '/')+1:]
	rest := argv[1:]
	last := rest[len(rest)-1]
	flagsOnly := func(ok ...string) bool {
		for _, a := range rest[:len(rest)-1] {
			if !contains(ok, a) {
				return false
			}
		}
		return true
	}
	switch base {
	case "killall":
		return last == "haproxy" && flagsOnly("-0", "-q")
	case "pidof":
		return last == "haproxy" && flagsOnly("-s", "-x")
	case "pgrep":
		return last == "haproxy" && flagsOnly("-x", "-f")
	case "systemctl":
		return (last == "haproxy" || last == "haproxy.service") && len(rest) >= 2 && rest[0] == "is-active" &&
			func() bool { rest = rest[1:]; return flagsOnly("--quiet", "-q") }()
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// --- helpers

func first(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

// seconds parses keepalived's <TIMER>: seconds, fractions allowed.
func seconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e6 || math.IsNaN(f) {
		return 0, false
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, true
}

func boolean(s string) bool {
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return true
	}
	return false
}

// sanitize turns s into a valid name: other characters become '_', and it
// is cut to 63 characters.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	n := b.String()
	if len(n) > 63 {
		n = n[:63]
	}
	if n == "" {
		n = "unnamed"
	}
	return n
}

// absPath makes a command absolute as keepalived's PATH lookup would on a
// usual system; it reports whether it guessed.
func absPath(p string) (string, bool) {
	if strings.HasPrefix(p, "/") {
		return p, false
	}
	return "/usr/bin/" + p, true
}

// addr parses an IP address or CIDR (keepalived's default prefix is the
// full length).
func addr(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, false
		}
		return p, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func hostPort(ip netip.Addr, port int) string {
	return netip.AddrPortFrom(ip, uint16(port)).String()
}

func fmtSecs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s" }
