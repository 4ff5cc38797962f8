package haproxy

import (
	"cmp"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// timed is a duration and the line that set it.
type timed struct {
	d    config.Duration
	line *Line
}

// common holds what frontends and backends both read.
type common struct {
	mode       string
	modeLine   *Line
	timeouts   map[string]timed
	forwardfor *Line
	forwarded  *Line
	accessLog  *Line
	logs       []*Line
	noLog      bool
}

// parseDuration reads HAProxy's time format: a number with an optional
// unit (us, ms, s, m, h, d), milliseconds by default.
func parseDuration(s string) (time.Duration, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > 1<<31 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := unit[s[i:]]
	if !ok {
		return 0, false
	}
	return time.Duration(n) * u, true
}

// timeoutKeys maps HAProxy's timeouts onto halb's service timeouts;
// frontend says whether HAProxy reads it on the frontend side.
var timeoutKeys = map[string]struct {
	key      string
	frontend bool
}{
	"connect": {"connect", false}, "client": {"client", true}, "server": {"server", false},
	"http-request": {"http_request", true}, "http-keep-alive": {"http_keep_alive", true},
	"queue": {"queue", false}, "tunnel": {"tunnel", false},
}

// commonLine reads a directive frontends and backends share; it reports
// true when it took the line.
func (m *mapper) commonLine(c *common, l *Line, fromDefaults bool) bool {
	kw := l.Arg(0)
	switch kw {
	case "mode":
		switch l.Arg(1) {
		case "http", "tcp":
			c.mode, c.modeLine = l.Arg(1), l
		default:
			m.drop(l, "halb's services are http or tcp", "")
		}
		return true
	case "timeout":
		name := l.Arg(1)
		d, ok := parseDuration(l.Arg(2))
		switch {
		case name == "check":
			return false // a backend's health timeout
		case name == "client-fin" || name == "server-fin" || name == "tarpit":
			m.drop(l, "halb has no "+name+" timeout", "")
		case timeoutKeys[name].key == "":
			m.drop(l, "unknown timeout", "")
		case !ok || d < time.Millisecond:
			m.drop(l, "not a duration halb can take (at least 1ms)", "")
		default:
			c.timeouts[name] = timed{config.Duration(d), l}
		}
		return true
	case "contimeout", "clitimeout", "srvtimeout":
		name := map[string]string{"contimeout": "connect", "clitimeout": "client", "srvtimeout": "server"}[kw]
		if d, ok := parseDuration(l.Arg(1)); ok && d >= time.Millisecond {
			c.timeouts[name] = timed{config.Duration(d), l}
			m.note(l, "timeouts."+timeoutKeys[name].key+" (the old name of timeout "+name+")")
		} else {
			m.drop(l, "not a duration halb can take", "")
		}
		return true
	case "log":
		if l.Arg(1) == "global" {
			return true
		}
		c.logs = append(c.logs, l)
		return true
	case "no":
		if l.Arg(1) == "log" {
			c.noLog = true
			return true
		}
		if l.Arg(1) == "option" {
			return m.commonOption(c, l, l.Arg(2), true)
		}
	case "option":
		return m.commonOption(c, l, l.Arg(1), false)
	case "maxconn", "fullconn", "backlog":
		m.drop(l, "halb limits connections per server only (servers[].maxconn)", "")
		return true
	case "retries":
		m.note(l, "no setting: halb gives up an attempt after 500ms while another server is left and tries that one (timeouts.connect), rather than retrying the same server a number of times")
		return true
	case "errorfile", "errorloc", "errorloc302", "errorloc303", "errorfiles", "http-error":
		m.drop(l, "halb sends its own error responses", "")
		return true
	case "description", "id", "enabled", "disabled", "guid":
		if kw == "disabled" {
			m.drop(l, "a disabled proxy: halb has no disabled services; remove it from the config if it is not wanted", "")
			return true
		}
		m.note(l, "nothing: informational")
		return true
	case "compression", "capture", "unique-id-format", "unique-id-header", "declare", "log-format", "log-format-sd", "error-log-format", "log-tag", "email-alert", "monitor-uri", "monitor", "rate-limit", "filter", "http-reuse", "http-send-name-header", "hash-balance-factor":
		why := map[string]string{
			"compression":      "halb does not compress responses",
			"capture":          "halb's access records have a fixed set of fields",
			"log-format":       "halb's access records have their own format (docs/logging.md)",
			"log-format-sd":    "halb's access records have their own format (docs/logging.md)",
			"error-log-format": "halb's access records have their own format (docs/logging.md)",
			"http-reuse":       "halb pools server connections itself",
			"monitor-uri":      "halb has no monitor URI; its status is on the observe listener (/stats;json)",
		}[kw]
		if why == "" {
			why = "halb has no equivalent"
		}
		m.drop(l, why, "")
		return true
	case "stats":
		m.drop(l, "halb's stats page is on the observe listener (observe.listen: /stats, /metrics)", "set observe.listen")
		return true
	}
	return false
}

func (m *mapper) commonOption(c *common, l *Line, opt string, no bool) bool {
	switch opt {
	case "forwardfor":
		if no {
			c.forwardfor = nil
			return true
		}
		c.forwardfor = l
		for i := 2; i < len(l.Words); i++ {
			switch l.Arg(i) {
			case "except":
				m.change(l, "except "+l.Arg(i+1)+": halb adds X-Forwarded-For for every client", "")
				i++
			case "header":
				m.change(l, "header "+l.Arg(i+1)+": halb writes the client's address in X-Forwarded-For", "")
				i++
			case "if-none":
				m.change(l, "if-none: halb appends the client's address after any X-Forwarded-For the client sent", "")
			}
		}
		return true
	case "forwarded":
		c.forwarded = l
		if no {
			c.forwarded = nil
		} else if len(l.Words) > 2 {
			m.change(l, "halb's Forwarded field is for=<client>;host=\"<Host>\";proto=http(s), without these parameters", "")
		}
		return true
	case "httplog", "tcplog", "httpslog", "clf":
		if no {
			c.accessLog = nil
			return true
		}
		c.accessLog = l
		return true
	case "dontlognull", "dontlog-normal", "log-separate-errors", "log-health-checks", "logasap":
		m.drop(l, "halb's access log has no such filter (it logs every request or connection)", "")
		return true
	case "http-server-close", "http-keep-alive", "http-pretend-keepalive", "prefer-last-server":
		m.note(l, "nothing: halb keeps client connections alive and pools server connections itself")
		return true
	case "httpclose", "forceclose", "nolinger", "http-no-delay", "http-buffer-request", "abortonclose", "splice-auto", "splice-request", "splice-response", "tcpka", "clitcpka", "srvtcpka", "contstats", "socket-stats", "accept-invalid-http-request", "accept-invalid-http-response", "http-use-proxy-header", "independent-streams", "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server", "http-ignore-probes", "idle-close-on-response", "disable-h2-upgrade", "tcp-smart-accept", "tcp-smart-connect", "checkcache", "persist", "http-restrict-req-hdr-names":
		m.drop(l, "halb has no such option", "")
		return true
	case "redispatch":
		if no {
			m.change(l, "halb always redispatches: a request goes to another server when its attempt fails", "")
		} else {
			m.note(l, "nothing: halb redispatches itself (timeouts.connect)")
		}
		return true
	}
	return false
}

// durationOf reads a duration argument or reports the line.
func (m *mapper) durationOf(l *Line, s string) (config.Duration, bool) {
	d, ok := parseDuration(s)
	if !ok || d < 0 {
		m.drop(l, "not a duration: "+s, "")
		return 0, false
	}
	return config.Duration(d), true
}

// global reads the global section.
func (m *mapper) global(s *Section) {
	if len(s.Header.Words) > 1 {
		m.drop(&s.Header, "global takes no name", "")
	}
	for i := range s.Lines {
		l := &s.Lines[i]
		if m.envCheck(l) {
			continue
		}
		kw := l.Arg(0)
		switch {
		case kw == "log":
			m.globalLog(l)
		case kw == "crt-base":
			m.crtBase = l.Arg(1)
			m.note(l, "crt paths below are made absolute from it")
		case kw == "ca-base":
			m.caBase = l.Arg(1)
			m.note(l, "ca-file paths below are made absolute from it")
		case kw == "daemon" || kw == "chroot" || kw == "user" || kw == "group" || kw == "uid" || kw == "gid" || kw == "pidfile" || kw == "master-worker" || kw == "nbthread" || kw == "nbproc" || kw == "cpu-map" || kw == "ulimit-n" || kw == "node" || kw == "description" || kw == "hard-stop-after" || kw == "setenv" || kw == "presetenv" || kw == "resetenv" || kw == "unsetenv" || kw == "localpeer" || kw == "thread-groups" || kw == "expose-experimental-directives" || kw == "insecure-fork-wanted":
			m.note(l, "nothing: halbd runs as a systemd service with its own user, threads and limits")
		case kw == "stats":
			m.note(l, "nothing: halbctl and the control API (a root-only unix socket) serve what the stats socket did; metrics and /stats are on observe.listen")
		case kw == "maxconn" || kw == "maxsslconn" || kw == "maxconnrate" || kw == "maxsessrate" || kw == "maxsslrate":
			m.drop(l, "halb limits connections per server only (servers[].maxconn)", "")
		case strings.HasPrefix(kw, "ssl-default-") || kw == "ssl-dh-param-file" || kw == "tune.ssl.default-dh-param" || kw == "ssl-server-verify":
			m.change(l, "halb's TLS follows Mozilla's policies (services[].tls.policy intermediate or modern, min_version); ciphers and options are not configurable", "")
		case strings.HasPrefix(kw, "tune.") || strings.HasPrefix(kw, "spread-checks") || kw == "max-spread-checks":
			if kw == "spread-checks" {
				m.note(l, "nothing: halb draws each check interval within ±10%")
			} else {
				m.drop(l, "halb has no tuning knobs of that kind", "")
			}
		case kw == "log-send-hostname" || kw == "log-tag":
			if kw == "log-tag" {
				tag := l.Arg(1)
				if tag == "" || len(tag) > 48 || strings.ContainsFunc(tag, func(r rune) bool { return r <= ' ' || r > '~' }) {
					m.drop(l, "halb's tags are 1..48 printable ASCII characters", "")
					continue
				}
				m.logTag = tag
				m.note(l, "observe.logs[].tag of the syslog targets")
			} else {
				m.note(l, "nothing: halb's RFC 5424 messages carry the host name")
			}
		case kw == "lua-load" || kw == "lua-prepend-path":
			m.drop(l, "halb runs no Lua", "")
		default:
			m.drop(l, "unknown directive in global", "")
		}
	}
	if m.logTag != "" {
		for i := range m.b.Config.Observe.Logs {
			m.b.Config.Observe.Logs[i].Tag = m.logTag
		}
	}
}

// logTarget is a syslog target of the global section.
type logTarget struct {
	address  string
	facility string
	line     *Line
}

var facilities = func() map[string]bool {
	f := map[string]bool{}
	for _, n := range config.SyslogFacilities {
		f[n] = true
	}
	return f
}()

func (m *mapper) globalLog(l *Line) {
	addr := l.Arg(1)
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix@") || addr == "stdout" || addr == "stderr" || strings.HasPrefix(addr, "fd@") {
		m.note(l, "no target: halb's access records and its own log go to the journal (observe.logs can add a file or a syslog server)")
		return
	}
	// udp@, udp4@, tcp@ prefixes
	transport := "udp"
	if p, rest, ok := strings.Cut(addr, "@"); ok {
		switch p {
		case "udp", "udp4", "udp6", "ipv4", "ipv6":
		case "tcp", "tcp4", "tcp6":
			transport = "tcp"
		default:
			m.drop(l, "a log target halb cannot send to", "")
			return
		}
		addr = rest
	}
	host, port := addr, "514"
	if h, p, ok := strings.Cut(addr, ":"); ok && !strings.Contains(p, ":") {
		host, port = h, p
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		m.drop(l, "the syslog server "+host+" is not an IP address; halb's syslog targets take host:port", "")
		return
	}
	fac := l.Arg(2)
	i := 3
	if fac == "len" || fac == "format" || fac == "sample" {
		m.drop(l, "halb's syslog messages are RFC 5424 with its own length limits", "")
		return
	}
	if !facilities[fac] {
		m.drop(l, "the facility "+fac+" is not one halb knows", "")
		return
	}
	t := logTarget{address: netip.AddrPortFrom(ip, mustPort(port)).String(), facility: fac, line: l}
	for _, x := range m.logs {
		if x.address == t.address {
			if x.facility != t.facility {
				m.change(l, "observe.logs has one syslog target per server: "+x.address+" keeps facility "+x.facility, "")
			}
			return
		}
	}
	m.logs = append(m.logs, t)
	if i < len(l.Words) {
		m.change(l, "observe.logs syslog target: the level "+strings.Join(wordsText(l.Words[i:]), " ")+" is not filtered: halb sends every access record and its own log (streams access and daemon)", "")
	} else {
		m.note(l, "an observe.logs syslog target with the streams access and daemon (HAProxy sent its alerts, such as server state changes, there too) and the tag haproxy")
	}
	m.b.Config.Observe.Logs = append(m.b.Config.Observe.Logs, config.LogTarget{
		Name: "syslog" + strconv.Itoa(len(m.b.Config.Observe.Logs)), To: "syslog", Streams: []string{"access", "daemon"},
		Address: t.address, Facility: fac, Tag: cmp.Or(m.logTag, "haproxy"), Transport: transport, // a later log-tag in global replaces it
	})
	m.b.From("observe.logs["+strconv.Itoa(len(m.b.Config.Observe.Logs)-1)+"]", l.Pos(), "log "+l.Arg(1))
}

func mustPort(p string) uint16 {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 514
	}
	return uint16(n)
}

func wordsText(ws []Word) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Text)
	}
	return out
}

// absPath makes a crt or ca-file path absolute: from its base (crt-base,
// ca-base), else from the directory of haproxy.cfg (HAProxy resolved it
// from its working directory; halb takes absolute paths only).
func (m *mapper) absPath(base, p string, l *Line) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	if strings.HasPrefix(base, "/") {
		return filepath.Join(base, p)
	}
	dir, err := filepath.Abs(filepath.Dir(m.path))
	if err != nil {
		dir = "/etc/haproxy"
	}
	a := filepath.Join(dir, base, p)
	m.change(l, p+" is relative: halb takes "+a+" (from the directory of haproxy.cfg; HAProxy resolved it from its working directory)", "")
	return a
}

// proxy reads a frontend, backend or listen section.
func (m *mapper) proxy(s *Section) {
	if isStats(s) {
		m.statsListen(s)
		return
	}
	c := &common{timeouts: map[string]timed{}}
	var fe *feState
	var be *beState
	if s.Kind != "backend" {
		fe = &feState{sec: s, c: c, acls: map[string]*acl{}, headers: map[string]string{}, afterHdr: map[string]bool{}}
		m.feOrder = append(m.feOrder, fe)
	}
	if s.Kind != "frontend" {
		be = &beState{sec: s, c: c}
		if _, dup := m.backends[s.Name]; dup {
			m.once(source.Dropped, s.Header.Pos(), s.Header.Raw, "a second backend of this name (HAProxy refuses it)", "")
			be = nil
		} else {
			m.backends[s.Name] = be
			m.beOrder = append(m.beOrder, be)
		}
	}
	// the old form "listen NAME ADDR:PORT"
	if s.Kind != "backend" {
		rest := s.Header.Words[1:]
		if len(rest) > 0 {
			rest = rest[1:]
		}
		if len(rest) > 0 && rest[0].Text != "from" {
			fe.binds = append(fe.binds, m.bind(&Line{Words: append([]Word{{Text: "bind", Pos: rest[0].Pos}}, rest...), Raw: s.Header.Raw}))
		}
	}
	lines := m.defaultsFor(s)
	own := len(lines)
	for i := range s.Lines {
		lines = append(lines, &s.Lines[i])
	}
	for i, l := range lines {
		fromDefaults := i < own
		if m.envCheck(l) {
			m.used[l] = true
			continue
		}
		took := m.commonLine(c, l, fromDefaults)
		if !took && fe != nil {
			took = m.frontendLine(fe, l, fromDefaults)
		}
		if !took && be != nil {
			took = m.backendLine(be, l, fromDefaults)
		}
		switch {
		case took:
			if fromDefaults {
				m.used[l] = true
			}
		case fromDefaults:
			// a default for the other side (a backend's in a frontend)
		case isKeyword(l.Arg(0)):
			m.drop(l, "not used in a "+s.Kind+" (HAProxy refuses or ignores it there)", "")
		default:
			m.drop(l, "unknown directive", "")
		}
	}
}

// isKeyword reports whether kw is one of the frontend or backend keywords
// the importer knows.
func isKeyword(kw string) bool {
	switch kw {
	case "bind", "default_backend", "use_backend", "acl", "http-request", "http-response", "http-after-response", "redirect", "tcp-request", "tcp-response",
		"server", "default-server", "balance", "cookie", "stick-table", "stick", "http-check", "tcp-check", "hash-type", "server-template", "dispatch", "source", "persist", "force-persist", "ignore-persist", "load-server-state-from-file":
		return true
	}
	return false
}
