package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks a decoded, defaulted config and returns every problem
// found, each naming its field path. It has no side effects: it looks at
// neither the network nor the file system.
func Validate(c *Config) Errors {
	v := &validator{}
	v.node(c)
	v.time(c)
	v.peers(c)
	services := names(c.Services, func(s Service) string { return s.Name })
	backends := names(c.Backends, func(b Backend) string { return b.Name })
	v.vrrp(c, services)
	v.syncGroups(c)
	v.services(c, backends)
	v.backends(c)
	v.observe(c)
	v.bgp(c, services)
	return v.errs
}

// observe checks the observe section: the listener (never on a VIP), its
// users and allowed networks, and the log targets.
func (v *validator) observe(c *Config) {
	o := &c.Observe
	if o.Listen != "" {
		if ap, ok := v.hostPort("observe.listen", o.Listen, true); ok && !ap.Addr().IsUnspecified() {
			for i, r := range c.VRRP {
				for _, s := range r.VIPs {
					if p, err := netip.ParsePrefix(s); err == nil && p.Addr() == ap.Addr() {
						v.errf("observe.listen", "%s is a VIP of vrrp[%d] (%s): metrics belong on the management address", ap.Addr(), i, r.Name)
					}
				}
			}
		}
	}
	users := map[string]string{}
	for i, u := range o.Users {
		path := fmt.Sprintf("observe.users[%d]", i)
		v.uniqueName(path, u.Name, users)
		if !ValidBcrypt(u.PasswordHash) {
			v.errf(path+".password_hash", "is not a bcrypt hash (\"$2b$10$\" and 53 characters; htpasswd -nbB makes one)")
		}
	}
	for i, a := range o.Allow {
		if _, err := ParseNetwork(a); err != nil {
			v.errf(fmt.Sprintf("observe.allow[%d]", i), "%q is not a network (10.0.0.0/8) or an address", a)
		}
	}
	targets := map[string]string{}
	files := map[string]string{}
	for i, l := range o.Logs {
		path := fmt.Sprintf("observe.logs[%d]", i)
		v.uniqueName(path, l.Name, targets)
		if l.To == "file" && l.Path != "" {
			if other, dup := files[filepath.Clean(l.Path)]; dup {
				v.errf(path+".path", "%q is written by %s already", l.Path, other)
			} else {
				files[filepath.Clean(l.Path)] = path
			}
		}
		if l.To == "" {
			v.errf(path+".to", "is required (one of %s)", strings.Join(LogTargets, ", "))
		} else {
			v.oneOf(path+".to", l.To, LogTargets)
		}
		if len(l.Streams) == 0 {
			v.errf(path+".streams", "names no stream (%s)", strings.Join(LogStreams, ", "))
		}
		for j, st := range l.Streams {
			v.oneOf(fmt.Sprintf("%s.streams[%d]", path, j), st, LogStreams)
		}
		v.intRange(path+".queue", l.Queue, 16, 1<<20)
		fileOnly := func(key string, set bool) {
			if set && l.To != "file" {
				v.errf(path+"."+key, "applies only to: file")
			}
		}
		syslogOnly := func(key string, set bool) {
			if set && l.To != "syslog" {
				v.errf(path+"."+key, "applies only to: syslog")
			}
		}
		fileOnly("path", l.Path != "")
		fileOnly("max_size", l.MaxSize != 0)
		fileOnly("keep", l.Keep != nil)
		syslogOnly("address", l.Address != "")
		syslogOnly("transport", l.Transport != "")
		syslogOnly("facility", l.Facility != "")
		if l.Tag != "" && l.To == "file" {
			v.errf(path+".tag", "applies only to: syslog, journald")
		}
		switch l.To {
		case "file":
			if l.Path == "" {
				v.errf(path+".path", "is required with to: file")
			} else if !strings.HasPrefix(l.Path, "/") {
				v.errf(path+".path", "%q is not an absolute path", l.Path)
			}
			if l.MaxSize < 4096 || l.MaxSize > 1<<40 {
				v.errf(path+".max_size", "%d is out of range 4096..1099511627776", l.MaxSize)
			}
			v.intRange(path+".keep", l.Kept(), 0, 100)
		case "syslog":
			if l.Address == "" {
				v.errf(path+".address", "is required with to: syslog (host:port, e.g. 10.0.0.1:514)")
			} else {
				v.hostPort(path+".address", l.Address, false)
			}
			v.oneOf(path+".transport", l.Transport, LogTransports)
			v.oneOf(path+".facility", l.Facility, SyslogFacilities)
		}
		if l.Tag != "" && !validTag(l.Tag) {
			v.errf(path+".tag", "%q may hold 1..48 printable ASCII characters without spaces", l.Tag)
		}
	}
}

// ValidBcrypt reports whether s looks like a bcrypt hash as htpasswd -B
// and Go's bcrypt write it ("$2b$10$" and 53 characters of salt and hash).
func ValidBcrypt(s string) bool {
	if len(s) != 60 || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$' || !strings.ContainsRune("aby", rune(s[2])) {
		return false
	}
	cost, err := strconv.Atoi(s[4:6])
	return err == nil && cost >= 4 && cost <= 31
}

// ParseNetwork reads an observe.allow entry: a CIDR prefix or a single
// address (as /32 or /128).
func ParseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validTag: an RFC 5424 APP-NAME (1*48PRINTUSASCII).
func validTag(s string) bool {
	if len(s) > 48 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

type validator struct{ errs Errors }

func (v *validator) errf(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func names[T any](xs []T, name func(T) string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[name(x)] = true
	}
	return m
}

// uniqueName checks that a list element's name is set, well formed and not
// used by an earlier element of the same list.
func (v *validator) uniqueName(path, name string, seen map[string]string) {
	switch {
	case name == "":
		v.errf(path+".name", "is required")
	case !ValidName(name):
		v.errf(path+".name", "%q may hold only letters, digits, '-', '_' and '.' (at most 63)", name)
	case seen[name] != "":
		v.errf(path+".name", "%q is already used by %s", name, seen[name])
	default:
		seen[name] = path
	}
}

// ValidName is halb's rule for the names of instances, services, backends
// and servers: letters, digits, '-', '_' and '.', 1 to 63 characters.
func ValidName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validIfName follows the kernel's rules for interface names.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\x00")
}

// validHostname checks a DNS name (RFC 1123 labels).
// ValidNodeName reports whether s can be a node.name: a host name of at
// most 63 characters.
func ValidNodeName(s string) bool { return s != "" && len(s) <= 63 && validHostname(s) }

func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.errf(path, "%s must be positive", d)
	}
}

func (v *validator) intRange(path string, n, lo, hi int) bool {
	if n < lo || n > hi {
		v.errf(path, "%d is out of range %d..%d", n, lo, hi)
		return false
	}
	return true
}

func (v *validator) oneOf(path, s string, allowed []string) {
	if !slices.Contains(allowed, s) {
		v.errf(path, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

func (v *validator) ip(path, s string) (netip.Addr, bool) {
	a, problem := checkHost(s, false)
	if problem != "" {
		v.errf(path, "%q %s", s, problem)
		return netip.Addr{}, false
	}
	return a, true
}

// checkHost checks the host of an address: an IP address, or with names a
// DNS name too. It returns the address (the zero Addr for a name), or what
// is wrong as a phrase to follow the quoted host.
//
// A host that looks like an IP literal (127.0.0.300, 10.1, 2130706433,
// anything with a colon) but does not parse as one is an error even where
// names are allowed: as a name it would fail at run time, or a resolver
// with inet_aton's rules would read it as some other address.
func checkHost(host string, names bool) (netip.Addr, string) {
	a, err := netip.ParseAddr(host)
	switch {
	case err == nil && a.Zone() != "":
		return netip.Addr{}, fmt.Sprintf("has a zone (%%%s): halb.yaml takes addresses without one", a.Zone())
	case err == nil:
		return a, ""
	case looksLikeIP(host):
		reason := err.Error()
		if _, r, ok := strings.Cut(reason, "): "); ok {
			reason = r // drop ParseAddr("..."), which repeats the host
		}
		return netip.Addr{}, fmt.Sprintf("looks like an IP address but is not one: %s", reason)
	case !names:
		return netip.Addr{}, "is not an IP address"
	case !validHostname(host):
		return netip.Addr{}, "is not an IP address or host name"
	case numericLabel(host[strings.LastIndexByte(strings.TrimSuffix(host, "."), '.')+1:]):
		return netip.Addr{}, "is not a host name (its last label is a number, which a top-level domain never is) nor an IP address"
	}
	return netip.Addr{}, ""
}

// ValidDNSName reports whether s is a DNS name (RFC 1123 labels) that
// cannot be read as an IP address (its last label is not a number).
func ValidDNSName(s string) bool {
	return validHostname(s) && !numericLabel(s[strings.LastIndexByte(strings.TrimSuffix(s, "."), '.')+1:])
}

// looksLikeIP reports whether host was meant as an IP literal: it holds a
// colon (IPv6), or each of its dot-separated parts is a number, in decimal
// or 0x hex (the forms inet_aton takes).
func looksLikeIP(host string) bool {
	if strings.Contains(host, ":") {
		return true
	}
	for l := range strings.SplitSeq(host, ".") {
		if !numericLabel(l) {
			return false
		}
	}
	return true
}

// numericLabel reports whether l is a decimal number or 0x and hex digits.
func numericLabel(l string) bool {
	digits := "0123456789"
	if len(l) > 2 && (l[:2] == "0x" || l[:2] == "0X") {
		l, digits = l[2:], "0123456789abcdefABCDEF"
	}
	return l != "" && strings.Trim(l, digits) == ""
}

// hostPort checks "host:port". With ipOnly the host must be an IP literal
// or empty (all addresses); otherwise a DNS name is allowed too.
func (v *validator) hostPort(path, s string, ipOnly bool) (netip.AddrPort, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errf(path, "%q is not host:port (IPv6 as [addr]:port)", s)
		return netip.AddrPort{}, false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		v.errf(path, "%q: port %q is not a number in 1..65535", s, port)
		return netip.AddrPort{}, false
	}
	if host == "" {
		if ipOnly {
			return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)), true
		}
		v.errf(path, "%q has no host", s)
		return netip.AddrPort{}, false
	}
	a, problem := checkHost(host, !ipOnly)
	if problem == "" && strings.HasPrefix(s, "[") && !a.IsValid() {
		problem = "is in brackets, which hold an IPv6 address"
	}
	if problem != "" {
		v.errf(path, "%q: host %q %s", s, host, problem)
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(p)), true
}

func (v *validator) node(c *Config) {
	n := &c.Node
	switch {
	case n.Name == "":
		v.errf("node.name", "is required")
	case !ValidNodeName(n.Name):
		v.errf("node.name", "%q is not a valid host name", n.Name)
	}
	m := &n.Management
	if m.Interface != "" && !validIfName(m.Interface) {
		v.errf("node.management.interface", "%q is not a valid interface name", m.Interface)
	}
	if (m.DHCP || m.Address != "") && m.Interface == "" {
		v.errf("node.management.interface", "is required with dhcp or address")
	}
	if m.DHCP && m.Address != "" {
		v.errf("node.management.address", "cannot be set together with dhcp: true")
	}
	if m.Address != "" {
		if _, err := netip.ParsePrefix(m.Address); err != nil {
			v.errf("node.management.address", "%q is not an address in CIDR form (e.g. 172.16.0.1/16)", m.Address)
		}
	}
	if m.Gateway != "" {
		v.ip("node.management.gateway", m.Gateway)
		if m.DHCP {
			v.errf("node.management.gateway", "cannot be set together with dhcp: true")
		}
	}
	for i, d := range m.DNS {
		v.ip(fmt.Sprintf("node.management.dns[%d]", i), d)
	}
	v.intRange("node.peer_port", n.PeerPort, 1, 65535)
}

func (v *validator) time(c *Config) {
	for i, s := range c.Time.Servers {
		if _, problem := checkHost(s, true); problem != "" {
			v.errf(fmt.Sprintf("time.servers[%d]", i), "%q %s", s, problem)
		}
	}
	v.positive("time.max_offset", c.Time.MaxOffset)
	v.positive("time.step_threshold", c.Time.StepThreshold)
	for _, p := range []struct {
		path string
		d    Duration
	}{{"time.min_poll", c.Time.MinPoll}, {"time.max_poll", c.Time.MaxPoll}} {
		if p.d.D() < time.Second || p.d.D() > 36*time.Hour {
			v.errf(p.path, "%s is outside 1s..36h", p.d.D())
		}
	}
	if c.Time.MaxPoll < c.Time.MinPoll {
		v.errf("time.max_poll", "%s is below time.min_poll (%s)", c.Time.MaxPoll.D(), c.Time.MinPoll.D())
	}
}

func (v *validator) peers(c *Config) {
	seen := map[string]string{}
	for i, p := range c.Peers {
		path := fmt.Sprintf("peers[%d]", i)
		v.uniqueName(path, p.Name, seen)
		if p.Name != "" && p.Name == c.Node.Name {
			v.errf(path+".name", "%q is this node's own name", p.Name)
		}
		if p.Address == "" {
			v.errf(path+".address", "is required")
		} else {
			v.ip(path+".address", p.Address)
		}
		v.intRange(path+".port", p.Port, 1, 65535)
		if p.Fingerprint != "" && !ValidFingerprint(p.Fingerprint) {
			v.errf(path+".fingerprint", "%q is not \"sha256:\" and 64 hex digits", p.Fingerprint)
		}
	}
}

// ValidFingerprint reports whether s is a certificate fingerprint as
// peers[].fingerprint holds it: "sha256:" and 64 lower-case hex digits.
func ValidFingerprint(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, r := range h {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// VMACName is the name of the macvlan interface that carries the virtual
// MAC of a use_vmac instance: "vrrp.VRID", or "vrrp6.VRID" for IPv6.
func VMACName(vrid int, v6 bool) string {
	if v6 {
		return fmt.Sprintf("vrrp6.%d", vrid)
	}
	return fmt.Sprintf("vrrp.%d", vrid)
}

func (v *validator) vrrp(c *Config, services map[string]bool) {
	seen := map[string]string{}
	vrids := map[string]string{} // interface/family/vrid → path
	vmacs := map[string]string{} // virtual MAC interface name → path
	vips := map[netip.Addr]string{}
	for i := range c.VRRP {
		r := &c.VRRP[i]
		path := fmt.Sprintf("vrrp[%d]", i)
		v.uniqueName(path, r.Name, seen)
		if r.Interface == "" {
			v.errf(path+".interface", "is required")
		} else if !validIfName(r.Interface) {
			v.errf(path+".interface", "%q is not a valid interface name", r.Interface)
		}
		versionOK := r.Version == 2 || r.Version == 3
		if !versionOK {
			v.errf(path+".version", "%d is not 2 or 3", r.Version)
		}
		if r.Priority == 255 && !r.AddressOwner {
			v.errf(path+".priority", "255 is reserved for the address owner (set address_owner: true), use 1..254")
		} else if r.AddressOwner && r.Priority != 255 {
			v.errf(path+".priority", "%d: an address owner has priority 255", r.Priority)
		} else {
			v.intRange(path+".priority", r.Priority, 1, 255)
		}
		v.advertInterval(path+".advert_interval", r.Version, r.AdvertInterval)
		if r.PreemptDelay < 0 || r.PreemptDelay.D() > 1000*time.Second {
			v.errf(path+".preempt_delay", "%s is out of range 0s..1000s", r.PreemptDelay)
		}

		// VIPs: valid prefixes, one address family, not held by two instances.
		family := ""
		if len(r.VIPs) == 0 {
			v.errf(path+".vips", "at least one VIP is required")
		}
		for j, s := range r.VIPs {
			p := fmt.Sprintf("%s.vips[%d]", path, j)
			pfx, err := netip.ParsePrefix(s)
			if err != nil || pfx.Addr().Zone() != "" {
				v.errf(p, "%q is not an address in CIDR form (e.g. 172.16.0.100/24)", s)
				continue
			}
			f := familyOf(pfx.Addr())
			if family == "" {
				family = f
			} else if f != family {
				v.errf(p, "%q is %s but this instance's first VIP is %s; use one instance per family", s, f, family)
			}
			if other, dup := vips[pfx.Addr()]; dup {
				v.errf(p, "%s is already a VIP of %s", pfx.Addr(), other)
			} else {
				vips[pfx.Addr()] = path
			}
		}
		if r.Version == 2 && family == "ipv6" {
			v.errf(path+".version", "VRRP version 2 carries IPv4 only; use version 3 for IPv6 VIPs")
		}
		if v.intRange(path+".vrid", r.VRID, 1, 255) && r.Interface != "" {
			key := fmt.Sprintf("%s/%s/%d", r.Interface, family, r.VRID)
			if other, dup := vrids[key]; dup {
				v.errf(path+".vrid", "%d is already used on %s by %s", r.VRID, r.Interface, other)
			} else {
				vrids[key] = path
			}
			if r.UseVMAC && family != "" {
				name := VMACName(r.VRID, family == "ipv6")
				if other, dup := vmacs[name]; dup {
					v.errf(path+".use_vmac", "the virtual MAC interface %s is already used by %s (same VRID and family on another interface)", name, other)
				} else {
					vmacs[name] = path
				}
			}
		}
		for j, s := range r.UnicastPeers {
			p := fmt.Sprintf("%s.unicast_peers[%d]", path, j)
			if a, ok := v.ip(p, s); ok && family != "" && familyOf(a) != family {
				v.errf(p, "%q is not %s like the VIPs", s, family)
			}
		}
		for j, s := range r.Track.Interfaces {
			if !validIfName(s) {
				v.errf(fmt.Sprintf("%s.track.interfaces[%d]", path, j), "%q is not a valid interface name", s)
			}
		}
		for j, s := range r.Track.Services {
			if !services[s] {
				v.errf(fmt.Sprintf("%s.track.services[%d]", path, j), "service %q is not defined", s)
			}
		}
		v.intRange(path+".track.weight", r.Track.Weight, -254, 254)
		scripts := map[string]string{}
		for j := range r.Track.Scripts {
			v.trackScript(fmt.Sprintf("%s.track.scripts[%d]", path, j), &r.Track.Scripts[j], r.Track.Weight, scripts)
		}
		if r.Notify != "" {
			v.program(path+".notify", r.Notify)
		}
		v.intRange(path+".garp.repeat", r.GARP.Repeats(), 0, 100)
		if d := r.GARP.Interval.D(); d < 10*time.Millisecond || d > time.Minute {
			v.errf(path+".garp.interval", "%s is out of range 10ms..1m", r.GARP.Interval)
		}
	}
}

// trackScript checks one vrrp[].track.scripts entry; seen holds the names
// of the instance's scripts so far.
func (v *validator) trackScript(path string, s *TrackScript, trackWeight int, seen map[string]string) {
	v.uniqueName(path, s.Name, seen)
	if len(s.Command) == 0 {
		v.errf(path+".command", "is required: the program's absolute path, then its arguments")
	} else {
		v.program(path+".command[0]", s.Command[0])
		for j, a := range s.Command[1:] {
			if strings.ContainsRune(a, 0) {
				v.errf(fmt.Sprintf("%s.command[%d]", path, j+1), "contains a NUL byte")
			}
		}
	}
	if s.Interval.D() < 10*time.Millisecond {
		v.errf(path+".interval", "%s is shorter than 10ms", s.Interval)
	}
	v.positive(path+".timeout", s.Timeout)
	if s.Rise < 1 {
		v.errf(path+".rise", "%d must be at least 1", s.Rise)
	}
	if s.Fall < 1 {
		v.errf(path+".fall", "%d must be at least 1", s.Fall)
	}
	v.intRange(path+".weight", s.EffectiveWeight(trackWeight), -254, 254)
}

// program checks the path of a program to run: absolute, no NUL byte. The
// file itself is not looked at (no side effects).
func (v *validator) program(path, s string) {
	switch {
	case !strings.HasPrefix(s, "/"):
		v.errf(path, "%q is not an absolute path", s)
	case strings.ContainsRune(s, 0):
		v.errf(path, "%q contains a NUL byte", s)
	}
}

// syncGroups checks vrrp_sync_groups: unique names, at least two members,
// each a defined instance and in no other group.
func (v *validator) syncGroups(c *Config) {
	instances := names(c.VRRP, func(r VRRPInstance) string { return r.Name })
	seen := map[string]string{}
	member := map[string]string{} // instance → path of its group
	for i := range c.VRRPSyncGroups {
		g := &c.VRRPSyncGroups[i]
		path := fmt.Sprintf("vrrp_sync_groups[%d]", i)
		v.uniqueName(path, g.Name, seen)
		if len(g.Instances) < 2 {
			v.errf(path+".instances", "at least two instances are required (a group of one syncs nothing)")
		}
		for j, n := range g.Instances {
			p := fmt.Sprintf("%s.instances[%d]", path, j)
			switch {
			case !instances[n]:
				v.errf(p, "VRRP instance %q is not defined", n)
			case member[n] != "":
				v.errf(p, "%q is already a member of %s", n, member[n])
			default:
				member[n] = path
			}
		}
	}
}

func familyOf(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// advertInterval checks the VRRPv3 range (10ms..40.95s in 10ms steps: a
// 12-bit count of centiseconds) or the VRRPv2 one (1..255 whole seconds).
func (v *validator) advertInterval(path string, version int, d Duration) {
	switch version {
	case 2:
		if d.D()%time.Second != 0 || d.D() < time.Second || d.D() > 255*time.Second {
			v.errf(path, "%s: VRRP version 2 takes whole seconds 1s..255s", d)
		}
	case 3:
		if d.D() < 10*time.Millisecond || d.D() > 4095*10*time.Millisecond {
			v.errf(path, "%s is out of range 10ms..40.95s", d)
		} else if d.D()%(10*time.Millisecond) != 0 {
			v.errf(path, "%s is not a multiple of 10ms", d)
		}
	}
}

func (v *validator) services(c *Config, backends map[string]bool) {
	seen := map[string]string{}
	listens := map[netip.AddrPort]string{}
	backend := func(path, name string) {
		if !backends[name] {
			v.errf(path, "backend %q is not defined", name)
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		path := fmt.Sprintf("services[%d]", i)
		v.uniqueName(path, s.Name, seen)
		if len(s.Listen) == 0 {
			v.errf(path+".listen", "at least one host:port is required")
		}
		for j, l := range s.Listen {
			p := fmt.Sprintf("%s.listen[%d]", path, j)
			if ap, ok := v.hostPort(p, l, true); ok {
				if other, dup := listens[ap]; dup {
					v.errf(p, "%s is already a listen address of %s", l, other)
				} else {
					listens[ap] = path
				}
			}
		}
		v.oneOf(path+".mode", s.Mode, Modes)
		if s.Mode == "tcp" {
			if len(s.Routes) > 0 {
				v.errf(path+".routes", "routes need mode: http (a tcp service has only default_backend)")
			}
			if s.DefaultBackend == "" {
				v.errf(path+".default_backend", "is required in tcp mode")
			}
			for j, b := range c.Backends {
				if slices.Contains(s.BackendNames(), b.Name) && b.Health.Observe == "layer7" {
					v.errf(fmt.Sprintf("backends[%d].health.observe", j), "layer7 observes HTTP responses, but service %s uses this backend in mode: tcp (use layer4)", s.Name)
				}
			}
		}
		if s.Mode == "http" && s.DefaultBackend == "" && len(s.Routes) == 0 {
			v.errf(path+".default_backend", "is required when there are no routes")
		}
		if s.DefaultBackend != "" {
			backend(path+".default_backend", s.DefaultBackend)
		}
		t := &s.Timeouts
		for _, d := range []struct {
			key string
			val Duration
		}{{"connect", t.Connect}, {"client", t.Client}, {"server", t.Server}, {"http_request", t.HTTPRequest},
			{"http_keep_alive", t.HTTPKeepAlive}, {"queue", t.Queue}, {"tunnel", t.Tunnel}} {
			if d.val < Duration(time.Millisecond) {
				v.errf(path+".timeouts."+d.key, "%s must be at least 1ms", d.val)
			}
		}
		v.intRange(path+".min_healthy", s.MinHealthy, 1, 1000)
		l := &s.Limits
		v.intRange(path+".limits.max_request_line", l.MaxRequestLine, 64, 65536)
		v.intRange(path+".limits.max_header_bytes", l.MaxHeaderBytes, 1024, 1<<20)
		v.intRange(path+".limits.max_headers", l.MaxHeaders, 1, 1000)
		if l.MaxBodyBytes < 0 {
			v.errf(path+".limits.max_body_bytes", "%d must not be negative (0: no limit)", l.MaxBodyBytes)
		}
		if l.MaxRequestLine > l.MaxHeaderBytes && l.MaxHeaderBytes >= 1024 {
			v.errf(path+".limits.max_request_line", "%d exceeds max_header_bytes %d (the request line is part of the head)", l.MaxRequestLine, l.MaxHeaderBytes)
		}
		for _, k := range slices.Sorted(maps.Keys(s.ResponseHeaders)) {
			p := path + ".response_headers." + k
			if s.Mode == "tcp" {
				v.errf(p, "needs mode: http")
			}
			if !ValidToken(k) {
				v.errf(p, "%q is not a valid field name", k)
			}
			if strings.ContainsAny(s.ResponseHeaders[k], "\r\n\x00") {
				v.errf(p, "the value may not hold CR, LF or NUL")
			}
		}
		var forward []string
		if s.ForwardHeaders != nil {
			forward = *s.ForwardHeaders
		}
		for j, f := range forward {
			p := fmt.Sprintf("%s.forward_headers[%d]", path, j)
			switch {
			case f != ForwardFor && f != ForwardProto && f != Forwarded:
				v.errf(p, "%q is not one of %s, %s, %s", f, ForwardFor, ForwardProto, Forwarded)
			case slices.Index(forward, f) < j:
				v.errf(p, "%q is listed twice", f)
			case s.Mode == "tcp":
				v.errf(p, "needs mode: http")
			}
		}
		for j, n := range s.AcceptProxy {
			if _, err := netip.ParsePrefix(n); err != nil {
				v.errf(fmt.Sprintf("%s.accept_proxy[%d]", path, j), "%q is not a network in CIDR form (e.g. 10.0.0.0/8)", n)
			}
		}
		if s.TLS != nil {
			v.serviceTLS(path+".tls", s)
		}
		if r := s.HTTPSRedirect; r != 0 {
			switch {
			case r != 301 && r != 302 && r != 303 && r != 307 && r != 308:
				v.errf(path+".https_redirect", "%d is not one of 301, 302, 303, 307, 308", r)
			case s.Mode == "tcp":
				v.errf(path+".https_redirect", "needs mode: http")
			case s.TLS != nil:
				v.errf(path+".https_redirect", "is for a plain service (this one has tls)")
			}
		}
		snis := map[string]int{}
		for j, r := range s.SNIRoutes {
			p := fmt.Sprintf("%s.sni_routes[%d]", path, j)
			if s.Mode != "tcp" {
				v.errf(p, "needs mode: tcp (http services route by Host: routes)")
			}
			name := strings.ToLower(r.SNI)
			switch k, dup := snis[name]; {
			case r.SNI == "":
				v.errf(p+".sni", "is required")
			case !validRouteHost(r.SNI):
				v.errf(p+".sni", "%q is not a host name or a *.suffix wildcard", r.SNI)
			case dup:
				v.errf(p+".sni", "%q is already routed by sni_routes[%d]", r.SNI, k)
			default:
				snis[name] = j
			}
			if r.Backend == "" {
				v.errf(p+".backend", "is required")
			} else {
				backend(p+".backend", r.Backend)
			}
		}
		for j, r := range s.Routes {
			p := fmt.Sprintf("%s.routes[%d]", path, j)
			if dom, ok := strings.CutPrefix(r.Host, "."); r.Host != "" && !validRouteHost(r.Host) && !(ok && validHostname(dom)) {
				v.errf(p+".host", "%q is not a host name, a *.suffix wildcard or a .domain", r.Host)
			}
			if !strings.HasPrefix(r.PathPrefix, "/") {
				v.errf(p+".path_prefix", "%q must start with /", r.PathPrefix)
			}
			switch {
			case r.Path == "":
			case !strings.HasPrefix(r.Path, "/"):
				v.errf(p+".path", "%q must start with /", r.Path)
			case strings.ContainsAny(r.Path, "?# \t\r\n"):
				v.errf(p+".path", "%q has a ?, # or white space: it is matched against the path without the query", r.Path)
			}
			if r.Backend == "" {
				v.errf(p+".backend", "is required")
			} else {
				backend(p+".backend", r.Backend)
			}
		}
	}
}

// serviceTLS checks a service's tls section. The certificates themselves
// are read and checked when the config is applied (the proxy's Prepare),
// where a missing or invalid one is refused at its field and line too.
func (v *validator) serviceTLS(path string, s *Service) {
	t := s.TLS
	if len(t.Certificates) == 0 {
		v.errf(path+".certificates", "at least one certificate is required")
	}
	seen := map[string]bool{}
	for j, c := range t.Certificates {
		p := fmt.Sprintf("%s.certificates[%d]", path, j)
		switch {
		case c.Name == "":
			v.errf(p+".name", "is required")
		case !ValidCertName(c.Name):
			v.errf(p+".name", "%q is not a certificate name (a-z, 0-9, '.', '_', '-'; up to 63)", c.Name)
		case seen[c.Name]:
			v.errf(p+".name", "%q is listed twice", c.Name)
		}
		seen[c.Name] = true
		if (c.Cert == "") != (c.Key == "") {
			v.errf(p, "cert and key go together (neither: the store's certificate %q)", c.Name)
		}
		for _, f := range []struct{ key, val string }{{"cert", c.Cert}, {"key", c.Key}} {
			if f.val != "" && !strings.HasPrefix(f.val, "/") {
				v.errf(p+"."+f.key, "%q must be an absolute path", f.val)
			}
		}
	}
	if t.Default != "" && !seen[t.Default] {
		v.errf(path+".default", "%q is not one of the service's certificates", t.Default)
	}
	v.oneOf(path+".policy", t.Policy, TLSPolicies)
	v.oneOf(path+".min_version", t.MinVersion, TLSVersions)
	if t.Policy == "modern" && t.MinVersion == "1.2" {
		v.errf(path+".min_version", "policy modern is TLS 1.3 only")
	}
	if ca := t.ClientAuth; ca != nil {
		if ca.CA == "" {
			v.errf(path+".client_auth.ca", "is required")
		} else if !strings.HasPrefix(ca.CA, "/") {
			v.errf(path+".client_auth.ca", "%q must be an absolute path", ca.CA)
		}
		v.oneOf(path+".client_auth.verify", ca.Verify, ClientVerifies)
		if ca.Forward && s.Mode == "tcp" {
			v.errf(path+".client_auth.forward", "needs mode: http")
		}
	}
	if t.ALPN != nil {
		for j, a := range *t.ALPN {
			if a != "http/1.1" {
				v.errf(fmt.Sprintf("%s.alpn[%d]", path, j), "%q is not supported (only http/1.1; h2 is not implemented yet)", a)
			} else if s.Mode == "tcp" {
				v.errf(fmt.Sprintf("%s.alpn[%d]", path, j), "http/1.1 needs mode: http")
			}
		}
	}
}

// ValidCertName reports whether s is a certificate name of the store:
// [a-z0-9][a-z0-9._-]{0,62}.
func ValidCertName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

func validRouteHost(h string) bool {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return validHostname(rest)
	}
	return validHostname(h)
}

func (v *validator) backends(c *Config) {
	seen := map[string]string{}
	for i := range c.Backends {
		b := &c.Backends[i]
		path := fmt.Sprintf("backends[%d]", i)
		v.uniqueName(path, b.Name, seen)
		v.oneOf(path+".balance", b.Balance, Balances)
		if b.Sticky.Cookie != "" {
			if !ValidToken(b.Sticky.Cookie) {
				v.errf(path+".sticky.cookie", "%q is not a valid cookie name", b.Sticky.Cookie)
			}
			if b.Sticky.Source {
				v.errf(path+".sticky", "choose cookie or source, not both")
			}
		}
		if b.Sticky.Source {
			d := b.Sticky.Expire.D()
			if d < time.Second || d > 24*time.Hour {
				v.errf(path+".sticky.expire", "%s is out of range 1s..24h", b.Sticky.Expire)
			}
		} else if b.Sticky.Expire != 0 {
			v.errf(path+".sticky.expire", "applies to source persistence only (sticky: {source: true})")
		}
		if d := b.SlowStart.D(); d < 0 || d > time.Hour {
			v.errf(path+".slowstart", "%s is out of range 0s..1h", b.SlowStart)
		}
		if t := b.TLS; t != nil {
			v.oneOf(path+".tls.verify", t.Verify, BackendVerifies)
			if t.CA != "" && !strings.HasPrefix(t.CA, "/") {
				v.errf(path+".tls.ca", "%q must be an absolute path", t.CA)
			}
			if t.CA != "" && t.Verify == "none" {
				v.errf(path+".tls.ca", "is not used with verify: none")
			}
			if t.ServerName != "" && !validHostname(t.ServerName) {
				v.errf(path+".tls.server_name", "%q is not a host name", t.ServerName)
			}
		}
		if b.ProxyProtocol != "" {
			v.oneOf(path+".proxy_protocol", b.ProxyProtocol, ProxyProtocols[1:])
		}
		h := &b.Health
		hp := path + ".health"
		v.oneOf(hp+".check", h.Check, Checks)
		if h.Check == "http" || h.Check == "https" {
			if !strings.HasPrefix(h.Path, "/") {
				v.errf(hp+".path", "%q must start with /", h.Path)
			}
			if err := h.ExpectStatus.validate(); err != nil {
				v.errf(hp+".expect_status", "%v", err)
			}
		}
		v.positive(hp+".interval", h.Interval)
		v.positive(hp+".timeout", h.Timeout)
		if h.Rise < 1 {
			v.errf(hp+".rise", "%d must be at least 1", h.Rise)
		}
		if h.Fall < 1 {
			v.errf(hp+".fall", "%d must be at least 1", h.Fall)
		}
		v.intRange(hp+".port", h.Port, 0, 65535)
		v.oneOf(hp+".initial", h.Initial, InitialStates)
		v.oneOf(hp+".observe", h.Observe, Observes)
		web := h.Check == "http" || h.Check == "https"
		for _, f := range []struct {
			key, val string
			ok       bool
			need     string
		}{
			{"method", h.Method, web, "http or https"}, {"host", h.Host, web, "http or https"},
			{"expect_body", h.ExpectBody, web, "http or https"},
			{"send", h.Send, h.Check == "tcp", "tcp"}, {"expect", h.Expect, h.Check == "tcp", "tcp"},
		} {
			if f.val != "" && !f.ok {
				v.errf(hp+"."+f.key, "applies to check: %s only", f.need)
			}
		}
		if h.Verify && h.Check != "https" {
			v.errf(hp+".verify", "applies to check: https only")
		}
		if h.Method != "" && !ValidToken(h.Method) {
			v.errf(hp+".method", "%q is not a method token", h.Method)
		}
		if h.Host != "" && strings.ContainsAny(h.Host, " \t\r\n/@") {
			v.errf(hp+".host", "%q is not a host[:port]", h.Host)
		}

		servers := map[string]string{}
		for j := range b.Servers {
			s := &b.Servers[j]
			p := fmt.Sprintf("%s.servers[%d]", path, j)
			v.uniqueName(p, s.Name, servers)
			if s.Address == "" {
				v.errf(p+".address", "is required")
			} else {
				v.hostPort(p+".address", s.Address, false)
			}
			v.intRange(p+".weight", s.EffectiveWeight(), 0, 256)
			if s.MaxConn < 0 {
				v.errf(p+".maxconn", "%d must not be negative (0: no limit)", s.MaxConn)
			}
		}
	}
}

// ValidToken checks an RFC 9110 token: a cookie name (RFC 6265), a
// method, a header field name.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 126 || r <= 32 || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}
