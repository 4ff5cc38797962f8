package keepalived

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"halb/appliance/config"
)

// claim is a tracked interface or service with keepalived's weight: halb
// has one weight for all of them (track.weight).
type claim struct {
	st *Stmt
	w  int
}

type vip struct {
	p   netip.Prefix
	dev string
	st  *Stmt
}

var instanceDrops = map[string][2]string{
	"virtual_routes":             {"halb does not manage routes", "routes set by the system's network configuration"},
	"virtual_rules":              {"halb does not manage routing rules", ""},
	"smtp_alert":                 {"halb sends no e-mail", "a vrrp[].notify program, or follow `halbctl events`"},
	"dont_track_primary":         {"halb always puts an instance whose interface is down in FAULT", ""},
	"no_accept":                  {"halb's VIPs always accept traffic (halb's services listen on them)", ""},
	"track_file":                 {"halb tracks interfaces, services and scripts, not files", "a track script that reads the file"},
	"track_process":              {"halb tracks interfaces, services and scripts, not processes", "a track script (pidof), or track.services"},
	"track_bfd":                  {"halb has no BFD", ""},
	"lvs_sync_daemon_interface":  {"halb does not use IPVS", ""},
	"garp_master_refresh":        {"halb announces on becoming MASTER only", ""},
	"garp_master_refresh_repeat": {"halb announces on becoming MASTER only", ""},
	"garp_lower_prio_repeat":     {"halb announces on becoming MASTER only", ""},
	"garp_lower_prio_delay":      {"halb announces on becoming MASTER only", ""},
	"notify_master":              {"halb runs one notify program for every state", "a vrrp[].notify program that switches on its second argument (MASTER, BACKUP, FAULT, STOP)"},
	"notify_backup":              {"halb runs one notify program for every state", "a vrrp[].notify program that switches on its second argument (MASTER, BACKUP, FAULT, STOP)"},
	"notify_fault":               {"halb runs one notify program for every state", "a vrrp[].notify program that switches on its second argument (MASTER, BACKUP, FAULT, STOP)"},
	"notify_stop":                {"halb runs one notify program for every state", "a vrrp[].notify program that switches on its second argument (MASTER, BACKUP, FAULT, STOP)"},
	"notify_deleted":             {"halb runs one notify program for every state", "a vrrp[].notify program: STOP is passed when an instance is removed"},
	"notify_master_rx_lower_pri": {"halb runs no program when a lower-priority advert arrives", ""},
	"strict_mode":                {"halb follows RFC 5798 without keepalived's strict-mode firewall rules and refusals", ""},
	"skip_check_adv_addr":        {"halb does not compare the addresses in adverts with its own", ""},
	"unicast_ttl":                {"halb sends adverts with TTL 255 and accepts only those (RFC 5798)", ""},
	"kernel_rx_buf_size":         {"halbd sizes its sockets itself", ""},
	"debug":                      {"halbd's log level is global", ""},
}

func (m *mapper) instance(st *Stmt) {
	if len(st.Words) != 2 {
		m.b.Drop(st.Pos(), st.Text(), "a vrrp_instance needs exactly one name", "")
		return
	}
	b := m.b
	kname := st.Words[1].Text
	v := config.VRRPInstance{Name: m.uniqueVRRP(kname)}
	if v.Name != kname {
		b.Note(st.Pos(), st.Text(), fmt.Sprintf("the instance is named %q (halb names use letters, digits, -, _ and ., up to 63, and are unique)", v.Name))
	}
	version, versionSt := m.version, (*Stmt)(nil)
	advert, advertSt := time.Second, (*Stmt)(nil)
	prio, prioSt := 100, (*Stmt)(nil)
	var vips []vip
	var ifaces, services []claim
	type tscript struct {
		st      *Stmt
		s       *vscript
		w       int
		reverse bool
	}
	var scripts []tscript
	garpRepeat, garpDelay, garpAt := m.garpRepeat, m.garpDelay, m.garpAt
	for _, d := range st.Block {
		a := d.Args()
		switch k := d.Key(); k {
		case "state":
			b.Note(d.Pos(), d.Text(), "halb has no initial state: every instance starts as BACKUP and the priority elects the MASTER")
		case "interface":
			if len(a) == 1 && validIface(a[0]) {
				v.Interface = a[0]
				continue
			}
			m.unknown(d)
		case "virtual_router_id":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 1 && n <= 255 {
				v.VRID = n
				continue
			}
			m.unknown(d)
		case "priority":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 1 && n <= 255 {
				prio, prioSt = n, d
				continue
			}
			m.unknown(d)
		case "advert_int":
			if t, ok := seconds(first(a)); ok && t > 0 {
				advert, advertSt = t, d
				continue
			}
			m.unknown(d)
		case "version":
			if len(a) == 1 && (a[0] == "2" || a[0] == "3") {
				version, _ = strconv.Atoi(a[0])
				versionSt = d
				continue
			}
			m.unknown(d)
		case "nopreempt":
			f := false
			v.Preempt = &f
		case "preempt", "native_ipv6", "accept":
			// keepalived's defaults, and halb's.
		case "preempt_delay":
			if t, ok := seconds(first(a)); ok && t <= 1000*time.Second {
				v.PreemptDelay = config.Duration(t)
				continue
			}
			m.unknown(d)
		case "authentication":
			b.Drop(d.Pos(), d.Text()+" {...}", "halb sends VRRP adverts without authentication (RFC 5798 has none; RFC 3768 advises against it): a keepalived peer with authentication ignores halb's adverts, so remove it on the keepalived node before a node-by-node migration",
				"unicast_peers, and VRRP on a link only the load balancers share")
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, e := range d.Block {
				if p, dev, ok := m.vipLine(e); ok {
					vips = append(vips, vip{p, dev, e})
					if k == "virtual_ipaddress_excluded" {
						b.Change(e.Pos(), e.Text(), "an excluded VIP (not listed in adverts): halb lists every VIP in its adverts", "")
					}
				}
			}
		case "unicast_src_ip", "mcast_src_ip":
			b.Note(d.Pos(), d.Text(), "halb sends adverts from the interface's primary address (its first that is not a VIP): that must be "+first(a)+", the address the peer's unicast_peers name")
		case "unicast_peer":
			for _, e := range d.Block {
				ea := e.Args()
				p, ok := addr(e.Key())
				if !ok || p.Bits() != p.Addr().BitLen() {
					m.unknown(e)
					continue
				}
				v.UnicastPeers = append(v.UnicastPeers, p.Addr().String())
				if len(ea) > 0 {
					b.Drop(e.Pos(), e.Text(), "halb has no per-peer options (min_ttl/max_ttl): it requires TTL 255 (RFC 5798)", "")
				}
			}
		case "track_interface":
			for _, e := range d.Block {
				w, ok := weightArgs(e.Args())
				if !ok || !validIface(e.Key()) {
					m.unknown(e)
					continue
				}
				ifaces = append(ifaces, claim{e, w})
			}
		case "track_script":
			for _, e := range d.Block {
				s := m.scripts[e.Key()]
				if s == nil {
					b.Drop(e.Pos(), e.Text(), "no vrrp_script of that name (keepalived ignores it too)", "")
					continue
				}
				s.used = true
				w, rev := s.weight, s.reverse
				ea := e.Args()
				if len(ea) > 0 {
					n, ok := weightArgs(ea[:min(len(ea), 2)])
					if !ok {
						m.unknown(e)
						continue
					}
					w, rev = n, len(ea) > 2 && ea[2] == "reverse"
				}
				scripts = append(scripts, tscript{e, s, w, rev})
			}
		case "notify":
			m.notify(d, &v)
		case "use_vmac":
			v.UseVMAC = true
			if len(a) > 0 {
				b.Change(d.Pos(), d.Text(), "halb names the macvlan vrrp.<vrid> (vrrp6.<vrid> for IPv6)", "")
			}
		case "vmac_xmit_base":
			b.Change(d.Pos(), d.Text(), "halb sends multicast adverts through the macvlan (unicast ones through the interface)", "")
		case "garp_master_repeat":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 0 {
				garpRepeat, garpAt = &n, d.Pos()
				continue
			}
			m.unknown(d)
		case "garp_master_delay":
			if t, ok := seconds(first(a)); ok {
				garpDelay, garpAt = &t, d.Pos()
				continue
			}
			m.unknown(d)
		default:
			if why, ok := instanceDrops[k]; ok {
				b.Drop(d.Pos(), d.Text(), why[0], why[1])
				continue
			}
			m.unknown(d)
		}
	}
	if v.Interface == "" || v.VRID == 0 {
		b.Drop(st.Pos(), st.Text(), "no interface or virtual_router_id (keepalived refuses it too)", "")
		return
	}
	// A VIP on another device has no place in a halb instance (checked
	// here: the interface line may come after the VIPs).
	kept := vips[:0]
	for _, x := range vips {
		if x.dev != "" && x.dev != v.Interface {
			b.Drop(x.st.Pos(), x.st.Text(), "a VIP on "+x.dev+": halb puts an instance's VIPs on its interface ("+v.Interface+")", "an instance on "+x.dev+", in a sync group with this one")
			continue
		}
		kept = append(kept, x)
	}
	vips = kept
	// One address family per instance: the first VIP's.
	taken := map[netip.Addr]string{}
	for _, o := range b.Config.VRRP {
		for _, s := range o.VIPs {
			taken[netip.MustParsePrefix(s).Addr()] = "vrrp_instance " + o.Name
		}
	}
	for _, x := range vips {
		if x.p.Addr().Is4() != vips[0].p.Addr().Is4() {
			b.Drop(x.st.Pos(), x.st.Text(), "not in the address family of the instance's first VIP: halb instances hold one family", "a second instance for the other family, with a sync group")
			continue
		}
		if o, dup := taken[x.p.Addr()]; dup {
			b.Drop(x.st.Pos(), x.st.Text(), "already a VIP of "+o+": halb holds an address in one instance only", "")
			continue
		}
		taken[x.p.Addr()] = "this instance"
		v.VIPs = append(v.VIPs, x.p.String())
	}
	if len(v.VIPs) == 0 {
		b.Drop(st.Pos(), st.Text(), "the instance holds no VIP halb can take", "")
		return
	}
	v6 := vips[0].p.Addr().Is6()
	for _, o := range b.Config.VRRP {
		if o.VRID != v.VRID || netip.MustParsePrefix(o.VIPs[0]).Addr().Is6() != v6 {
			continue
		}
		if o.Interface == v.Interface {
			b.Drop(st.Pos(), st.Text(), fmt.Sprintf("virtual_router_id %d is already used on %s by %s (keepalived refuses it too)", v.VRID, v.Interface, o.Name), "")
			return
		}
		if o.UseVMAC && v.UseVMAC {
			b.Drop(st.Pos(), "use_vmac", fmt.Sprintf("%s has use_vmac with the same virtual_router_id: halb's macvlan names (vrrp.<vrid>) would clash", o.Name), "")
			v.UseVMAC = false
		}
	}
	for _, p := range v.UnicastPeers {
		if netip.MustParseAddr(p).Is6() != v6 {
			b.Drop(st.Pos(), "unicast_peer "+p, "not in the address family of the VIPs", "")
		}
	}
	v.UnicastPeers = filterFamily(v.UnicastPeers, v6)

	// Version and advert interval.
	whole := advert%time.Second == 0 && advert >= time.Second && advert <= 255*time.Second
	switch {
	case version == 2 && v6:
		if versionSt != nil {
			b.Change(versionSt.Pos(), versionSt.Text(), "IPv6 VIPs need VRRPv3 (keepalived uses it for IPv6 too)", "")
		}
		version = 3
	case version == 2 && !whole:
		at := st
		if advertSt != nil {
			at = advertSt
		}
		b.Change(at.Pos(), at.Text(), "VRRPv2 counts the advert interval in whole seconds: the instance speaks VRRPv3 (a keepalived peer must say vrrp_version 3)", "")
		version = 3
	case version == 2 && versionSt == nil:
		b.Note(st.Pos(), st.Text(), "version: 2, keepalived's default, so that halb and keepalived nodes interoperate during the migration; set version: 3 (and a shorter advert_interval) once every node runs halb")
	}
	v.Version = version
	if version == 3 {
		r := advert.Round(10 * time.Millisecond)
		r = max(10*time.Millisecond, min(r, 40950*time.Millisecond))
		if r != advert {
			b.Change(advertSt.Pos(), advertSt.Text(), "VRRPv3 counts the advert interval in centiseconds, 10ms..40.95s: "+r.String(), "")
		}
		advert = r
	}
	v.AdvertInterval = config.Duration(advert)

	// Tracking. keepalived adds a positive weight while the object is
	// fine and a negative one while it fails; halb adds its weight while
	// the object fails. A positive weight W becomes priority+W and weight
	// -W: the same priority either way.
	bump := 0
	for _, t := range scripts {
		s := t.s
		if s.haproxy {
			if len(b.Config.Services) == 0 {
				b.Drop(t.st.Pos(), "track_script "+s.name, fmt.Sprintf("vrrp_script %s checks that the local HAProxy runs; halb replaces HAProxy, and no service was imported to track", s.name),
					"track.services naming halb's services")
				continue
			}
			for _, svc := range b.Config.Services {
				if !contains(v.Track.Services, svc.Name) {
					v.Track.Services = append(v.Track.Services, svc.Name)
					services = append(services, claim{t.st, t.w})
				}
			}
			why := fmt.Sprintf("vrrp_script %s checked that the local HAProxy runs; halb replaces HAProxy: the instance tracks halb's services (%s), each failing when it has no healthy backend (services[].min_healthy); the script's interval, rise and fall do not apply, the backends' health checks do", s.name, strings.Join(names(b.Config.Services), ", "))
			if len(b.Config.Services) > 1 && t.w != 0 {
				b.Change(t.st.Pos(), "track_script "+s.name, why+": with HAProxy down every service fails, so the priority moves by the weight times the number of services, not once", "")
			} else {
				b.Note(t.st.Pos(), "track_script "+s.name, why)
			}
			continue
		}
		ts := s.ts
		ts.Name = sanitize(s.name)
		ts.Command = append([]string(nil), s.argv...)
		if p, guessed := absPath(ts.Command[0]); guessed {
			ts.Command[0] = p
			if m.once(s.script.Pos(), "path") {
				b.Change(s.script.Pos(), s.script.Text(), "halb runs a script by its absolute path, without PATH lookup: assumed "+p, "")
			}
		}
		if s.shell && m.once(s.script.Pos(), "shell") {
			b.Change(s.script.Pos(), s.script.Text(), "shell syntax: halb runs it as /bin/sh -c '...', as older keepalived did (system()); recent keepalived splits it into words and runs the first without a shell", "")
		}
		if t.reverse {
			b.Change(t.st.Pos(), t.st.Text(), "halb has no reverse weights: the weight applies while the script fails", "")
		}
		w := t.w
		if w > 0 {
			bump += w
			w = -w
			b.Note(t.st.Pos(), t.st.Text(), fmt.Sprintf("keepalived adds a positive weight while the script passes; halb adds its weight while it fails: priority +%d, weight %d", -w, w))
		}
		ts.Weight = &w
		if ts.Name != s.name {
			b.Note(s.st.Pos(), "vrrp_script "+s.name, fmt.Sprintf("named %q in halb", ts.Name))
		}
		if uniqueScript(v.Track.Scripts, ts.Name) {
			b.From(fmt.Sprintf("vrrp[%d].track.scripts[%d]", len(b.Config.VRRP), len(v.Track.Scripts)), s.st.Pos(), "vrrp_script "+s.name)
			v.Track.Scripts = append(v.Track.Scripts, ts)
		}
	}
	for _, c := range ifaces {
		v.Track.Interfaces = append(v.Track.Interfaces, c.st.Key())
	}
	claims := append(ifaces, services...)
	if len(claims) > 0 {
		w0 := claims[0].w
		for _, c := range claims {
			if c.w != w0 {
				b.Change(c.st.Pos(), c.st.Text(), fmt.Sprintf("halb has one weight for tracked interfaces and services: %d (from %s)", w0, claims[0].st.Pos()), "")
			}
			if w0 > 0 {
				bump += w0
			}
		}
		if w0 > 0 {
			b.Note(claims[0].st.Pos(), claims[0].st.Text(), fmt.Sprintf("keepalived adds a positive weight while the object is up; halb adds track.weight while it fails: priority +%d per tracked interface or service, track.weight %d", w0, -w0))
			w0 = -w0
		}
		v.Track.Weight = w0
	}

	// Priority.
	at := st
	if prioSt != nil {
		at = prioSt
	}
	switch {
	case prio == 255:
		v.AddressOwner = true
		v.Priority = 255
		b.Note(at.Pos(), at.Text(), "address_owner: true (halb's priority 255 means the VIPs are this node's own addresses)")
	case prio+bump > 254:
		v.Priority = 254
		b.Change(at.Pos(), at.Text(), fmt.Sprintf("priority %d plus the positive weights (%d) is above 254: 254", prio, bump), "")
	default:
		v.Priority = prio + bump
	}

	// GARP: keepalived sends garp_master_repeat at once and as many again
	// garp_master_delay later; halb one at once and repeat more, interval
	// apart.
	switch {
	case garpRepeat != nil || garpDelay != nil:
		r, dl := 5, 5*time.Second
		if garpRepeat != nil {
			r = *garpRepeat
		}
		if garpDelay != nil {
			dl = *garpDelay
		}
		if dl > 0 {
			v.GARP.Repeat = new(1)
			v.GARP.Interval = config.Duration(max(10*time.Millisecond, min(dl, time.Minute)))
			if (r != 1 || dl > time.Minute) && m.once(garpAt, "garp") {
				b.Change(garpAt, fmt.Sprintf("garp_master_repeat %d, garp_master_delay %s", r, fmtSecs(dl)),
					fmt.Sprintf("keepalived sends garp_master_repeat announcements at once and as many again garp_master_delay later; halb sends one at once and garp.repeat more garp.interval apart: repeat 1, interval %s", v.GARP.Interval), "")
			}
		} else {
			// One set of announcements, at once.
			v.GARP.Repeat = new(0)
			if r != 1 && m.once(garpAt, "garp") {
				b.Change(garpAt, fmt.Sprintf("garp_master_repeat %d, garp_master_delay %s", r, fmtSecs(dl)),
					"keepalived sends garp_master_repeat announcements at once; halb sends one (garp.repeat 0: no more)", "")
			}
		}
	case m.garpMin:
		// keepalived's vrrp_min_garp: one announcement at the transition.
		v.GARP.Repeat = new(0)
	}

	m.names[kname] = v.Name
	b.From(fmt.Sprintf("vrrp[%d]", len(b.Config.VRRP)), st.Pos(), "vrrp_instance "+kname)
	b.Config.VRRP = append(b.Config.VRRP, v)
}

// vipLine reads a virtual_ipaddress line: the address and its device.
func (m *mapper) vipLine(e *Stmt) (netip.Prefix, string, bool) {
	p, ok := addr(e.Key())
	if !ok {
		m.b.Drop(e.Pos(), e.Text(), "not an IP address (or address/prefix)", "")
		return p, "", false
	}
	dev := ""
	a := e.Args()
	for i := 0; i < len(a); i++ {
		opt := a[i]
		val := ""
		if i+1 < len(a) {
			val = a[i+1]
		}
		switch opt {
		case "dev":
			i++
			dev = val
		case "label":
			i++
			m.b.Drop(e.Pos(), "label "+val, "halb adds VIPs without a label", "")
		case "brd", "broadcast":
			i++
			m.b.Drop(e.Pos(), opt+" "+val, "halb adds VIPs with the kernel's default broadcast", "")
		case "scope":
			i++
			if val != "global" {
				m.b.Drop(e.Pos(), "scope "+val, "halb adds VIPs with scope global", "")
			}
		case "no_track", "preferred_lft", "home", "nodad", "noprefixroute", "autojoin":
			if opt == "preferred_lft" {
				i++
			}
			m.b.Drop(e.Pos(), opt, "halb has no such VIP option", "")
		default:
			m.b.Drop(e.Pos(), opt, "unknown VIP option", "")
		}
	}
	return p, dev, true
}

func (m *mapper) notify(d *Stmt, v *config.VRRPInstance) {
	a := d.Args()
	if len(a) == 0 {
		m.unknown(d)
		return
	}
	argv, shell := splitScript(a[0])
	if shell || len(argv) == 0 {
		m.b.Drop(d.Pos(), d.Text(), "halb's notify is a program's path, run without a shell", "a program that runs the command")
		return
	}
	p, guessed := absPath(argv[0])
	v.Notify = p
	why := "halb runs it as PROGRAM NAME STATE PRIORITY: keepalived passed INSTANCE NAME STATE PRIORITY (halb leaves out the first word, so $1 is the name, $2 the state, $3 the priority)"
	if guessed {
		why += "; halb needs an absolute path: assumed " + p
	}
	if len(argv) > 1 {
		why += "; its arguments (" + strings.Join(argv[1:], " ") + ") are not passed: halb's notify is a path only"
	}
	if len(a) > 1 {
		why += "; the user (" + strings.Join(a[1:], " ") + ") does not apply: halb runs it as halbd's user (root)"
	}
	m.b.Change(d.Pos(), d.Text(), why, "")
}

func (m *mapper) uniqueVRRP(n string) string {
	if !config.ValidName(n) {
		n = sanitize(n)
	}
	base := n
	for i := 2; ; i++ {
		taken := false
		for _, v := range m.b.Config.VRRP {
			if v.Name == n {
				taken = true
			}
		}
		if !taken {
			return n
		}
		n = fmt.Sprintf("%s-%d", base, i)
	}
}

func uniqueScript(l []config.TrackScript, n string) bool {
	for _, s := range l {
		if s.Name == n {
			return false
		}
	}
	return true
}

// weightArgs reads an optional "weight N".
func weightArgs(a []string) (int, bool) {
	switch len(a) {
	case 0:
		return 0, true
	case 2:
		if a[0] != "weight" {
			return 0, false
		}
		n, err := strconv.Atoi(a[1])
		if err != nil || n < -254 || n > 254 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

func validIface(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n")
}

func filterFamily(l []string, v6 bool) []string {
	var out []string
	for _, s := range l {
		if netip.MustParseAddr(s).Is6() == v6 {
			out = append(out, s)
		}
	}
	return out
}

func names(l []config.Service) []string {
	var out []string
	for _, s := range l {
		out = append(out, s.Name)
	}
	return out
}

// --- vrrp_sync_group

func (m *mapper) syncGroup(st *Stmt) {
	b := m.b
	if len(st.Words) != 2 {
		b.Drop(st.Pos(), st.Text(), "a vrrp_sync_group needs exactly one name", "")
		return
	}
	g := config.VRRPSyncGroup{Name: sanitize(st.Words[1].Text)}
	for _, d := range st.Block {
		switch d.Key() {
		case "group":
			for _, e := range d.Block {
				for _, w := range e.Words {
					n, ok := m.names[w.Text]
					switch {
					case !ok:
						b.Drop(w.Pos, w.Text, "not an imported vrrp_instance", "")
					case m.inGroup(n):
						b.Drop(w.Pos, w.Text, "already a member of another sync group (halb allows one)", "")
					case contains(g.Instances, n):
					default:
						g.Instances = append(g.Instances, n)
					}
				}
			}
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
			b.Drop(d.Pos(), d.Text(), "halb runs notify programs per instance, not per sync group", "vrrp[].notify of the members")
		case "track_script", "track_interface", "track_file", "track_process", "track_bfd":
			b.Drop(d.Pos(), d.Text()+" {...}", "halb tracks per instance: a member's weight-0 failure puts the whole group in FAULT", "the tracking in a member instance")
		case "smtp_alert":
			b.Drop(d.Pos(), d.Text(), "halb sends no e-mail", "")
		case "global_tracking", "sync_group_tracking_weight":
			b.Drop(d.Pos(), d.Text(), "halb tracks per instance", "")
		default:
			m.unknown(d)
		}
	}
	if len(g.Instances) < 2 {
		b.Drop(st.Pos(), st.Text(), "fewer than two imported members: a group of one changes nothing (keepalived ignores it too)", "")
		return
	}
	if g.Name != st.Words[1].Text {
		b.Note(st.Pos(), st.Text(), fmt.Sprintf("named %q in halb", g.Name))
	}
	for _, o := range b.Config.VRRPSyncGroups {
		if o.Name == g.Name {
			g.Name += "-2"
		}
	}
	b.From(fmt.Sprintf("vrrp_sync_groups[%d]", len(b.Config.VRRPSyncGroups)), st.Pos(), "vrrp_sync_group "+st.Words[1].Text)
	b.Config.VRRPSyncGroups = append(b.Config.VRRPSyncGroups, g)
}

func (m *mapper) inGroup(n string) bool {
	for _, g := range m.b.Config.VRRPSyncGroups {
		if contains(g.Instances, n) {
			return true
		}
	}
	return false
}
