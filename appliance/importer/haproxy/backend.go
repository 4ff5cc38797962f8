package haproxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// beState is a backend (or the backend side of a listen) being read.
type beState struct {
	sec        *Section
	c          *common
	name       string // halb name
	balance    *Line
	servers    []*Line
	defServer  []*Line // default-server lines, in order
	cookie     *Line
	stickTable *Line
	stickOn    []*Line
	check      *Line   // option httpchk / tcp-check / ssl-hello-chk ...
	httpCheck  []*Line // http-check
	tcpCheck   []*Line // tcp-check
	checkTO    *Line
	allBackups *Line
	hashType   *Line
}

func (m *mapper) backendLine(be *beState, l *Line, fromDefaults bool) bool {
	kw := l.Arg(0)
	switch kw {
	case "balance":
		be.balance = l
	case "server", "server-template":
		if fromDefaults {
			return false
		}
		if kw == "server-template" {
			m.drop(l, "server-template makes servers from DNS records; halb lists its servers", "list the servers")
			return true
		}
		be.servers = append(be.servers, l)
	case "default-server":
		be.defServer = append(be.defServer, l)
	case "cookie":
		be.cookie = l
	case "stick-table":
		be.stickTable = l
	case "stick":
		be.stickOn = append(be.stickOn, l)
	case "http-check":
		be.httpCheck = append(be.httpCheck, l)
	case "tcp-check":
		be.tcpCheck = append(be.tcpCheck, l)
	case "hash-type":
		be.hashType = l
	case "timeout":
		if l.Arg(1) != "check" {
			return false
		}
		be.checkTO = l
	case "option":
		switch l.Arg(1) {
		case "httpchk", "tcp-check", "ssl-hello-chk", "mysql-check", "redis-check", "pgsql-check", "smtpchk", "ldap-check", "spop-check", "external-check":
			be.check = l
		case "allbackups":
			be.allBackups = l
		case "persist":
			m.drop(l, "halb does not send a request to a down server because of its cookie", "")
		default:
			return false
		}
	case "no":
		if l.Arg(1) == "option" && l.Arg(2) == "allbackups" {
			be.allBackups = nil
			return true
		}
		return false
	case "http-request", "http-response", "http-after-response":
		// a backend's rules; the frontend side took them for a listen,
		// and takes those of a defaults section
		if fromDefaults {
			return false
		}
		m.drop(l, "halb has no backend rules of that kind (its response_headers and https_redirect are per service)", "")
	case "dispatch", "source", "force-persist", "ignore-persist", "load-server-state-from-file", "persist", "http-send-name-header", "external-check", "tcp-response":
		m.drop(l, "halb has no equivalent", "")
	default:
		return false
	}
	return true
}

// serverParams are the parameters of a server line, default-server's
// first.
type serverParams struct {
	check      bool
	checkLine  *Line
	inter      config.Duration
	rise, fall int
	port       int
	weight     *int
	backup     bool
	disabled   bool
	maxconn    int
	slowstart  config.Duration
	cookie     string
	sendProxy  string
	ssl        bool
	verify     string
	caFile     string
	sni        string
	observe    string
	checkSSL   bool
}

// serverArgs reads a server's (or default-server's) parameters from word i
// on.
func (m *mapper) serverArgs(p *serverParams, l *Line, i int) bool {
	ok := true
	for ; i < len(l.Words); i++ {
		w := l.Arg(i)
		arg := func() string {
			i++
			return l.Arg(i)
		}
		num := func() (int, bool) {
			n, err := strconv.Atoi(arg())
			if err != nil {
				m.drop(l, w+" "+l.Arg(i)+": not a number", "")
				return 0, false
			}
			return n, true
		}
		dur := func() (config.Duration, bool) { return m.durationOf(l, arg()) }
		switch w {
		case "check":
			p.check, p.checkLine = true, l
		case "no-check":
			p.check = false
		case "inter":
			if d, ok := dur(); ok && d <= 0 {
				m.drop(l, "inter must be positive", "")
			} else if ok {
				p.inter = d
			}
		case "fastinter", "downinter":
			arg()
			m.change(l, w+": halb checks at one interval (health.interval), up or down", "")
		case "rise", "fall", "port":
			if n, ok := num(); ok && (n < 1 || n > 65535) {
				m.drop(l, w+" "+strconv.Itoa(n)+": out of range", "")
			} else if ok {
				*map[string]*int{"rise": &p.rise, "fall": &p.fall, "port": &p.port}[w] = n
			}
		case "weight":
			if n, ok := num(); ok {
				if n < 0 || n > 256 {
					m.drop(l, "weight "+strconv.Itoa(n)+" is out of range 0..256", "")
				} else {
					p.weight = &n
				}
			}
		case "backup":
			p.backup = true
		case "disabled":
			p.disabled = true
		case "enabled":
			p.disabled = false
		case "maxconn":
			if n, ok := num(); ok && n < 0 {
				m.drop(l, "maxconn "+strconv.Itoa(n)+": negative", "")
			} else if ok {
				p.maxconn = n
			}
		case "slowstart":
			if d, ok := dur(); ok {
				p.slowstart = d
			}
		case "cookie":
			p.cookie = arg()
		case "send-proxy":
			p.sendProxy = "v1"
		case "send-proxy-v2":
			p.sendProxy = "v2"
		case "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn":
			p.sendProxy = "v2"
			m.change(l, w+": halb's PROXY v2 header carries no TLS fields", "")
		case "ssl":
			p.ssl = true
		case "no-ssl":
			p.ssl = false
		case "verify":
			p.verify = arg()
		case "ca-file":
			p.caFile = m.absPath(m.caBase, arg(), l)
		case "sni":
			v := arg()
			if s, ok := strings.CutPrefix(v, "str("); ok && strings.HasSuffix(s, ")") && validHost(strings.TrimSuffix(s, ")")) {
				p.sni = strings.TrimSuffix(s, ")")
			} else {
				m.drop(l, "sni "+v+": halb sends a fixed server name (tls.server_name)", "")
			}
		case "check-ssl":
			p.checkSSL = true
		case "observe":
			p.observe = arg()
		case "resolvers", "init-addr", "resolve-prefer", "resolve-net", "resolve-opts":
			arg()
			m.drop(l, w+" "+l.Arg(i)+": halb resolves server names with the system resolver when it applies the config", "")
		case "id", "addr", "agent-port", "agent-inter", "agent-send", "agent-addr", "error-limit", "on-error", "on-marked-down", "on-marked-up", "maxqueue", "minconn", "track", "redir", "source", "namespace", "alpn", "proto", "check-proto", "check-sni", "check-alpn", "pool-max-conn", "pool-purge-delay", "pool-low-conn", "max-reuse", "crt", "ciphers", "ciphersuites", "ssl-min-ver", "ssl-max-ver", "tcp-ut", "set-proxy-v2-tlv-fmt", "log-proto", "shard", "usesrc", "interface", "hash-key", "ws", "curves", "sigalgs", "crl-file", "check-via-socks4", "guid", "init-state":
			v := arg()
			if w == "id" {
				continue
			}
			m.drop(l, w+" "+v+": halb has no such server setting", "")
		case "agent-check", "tfo", "no-tls-tickets", "no-sslv3", "no-tlsv10", "no-tlsv11", "force-tlsv12", "non-stick", "allow-0rtt", "check-send-proxy", "no-send-proxy", "no-verifyhost", "no-agent-check", "no-backup", "stick":
			m.drop(l, w+": halb has no such server setting", "")
		default:
			m.drop(l, "the server option "+w+" is not known to the importer", "")
			ok = false
		}
	}
	return ok
}

// serverAddress maps a server's address; port is the frontends' port for
// a server without one (0: unknown).
func serverAddress(a string, fePort int) (string, string) {
	for _, p := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
		a = strings.TrimPrefix(a, p)
	}
	if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
		return "", "a unix socket or special address: halb's servers are host:port"
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		i := strings.Index(a, "]")
		if i < 0 {
			return "", "unbalanced [ in " + a
		}
		host, port = a[1:i], strings.TrimPrefix(a[i+1:], ":")
	} else if ip, err := netip.ParseAddr(a); err == nil {
		host = ip.String()
	} else if i := strings.LastIndex(a, ":"); i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	if port == "" {
		if fePort == 0 {
			return "", "no port: HAProxy connected to the port the client connected to, which halb cannot tell here (several or no frontend ports)"
		}
		port = strconv.Itoa(fePort)
	}
	if strings.HasPrefix(port, "+") || strings.HasPrefix(port, "-") {
		return "", "a port offset: halb connects to a fixed port"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "the port " + port + " is not a port"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip, uint16(n)).String(), ""
	}
	if !validHost(host) {
		return "", "the host " + host + " is not an IP address or a host name halb takes (RFC 1123)"
	}
	return host + ":" + port, ""
}

// backend makes the halb backend of be; fePort is the single port of the
// frontends that use it (0: none or several).
func (m *mapper) backend(be *beState, fePort int) {
	s := be.sec
	b := config.Backend{Name: be.name}
	// balance
	if l := be.balance; l != nil {
		switch a := l.Arg(1); a {
		case "roundrobin", "leastconn", "source", "random":
			b.Balance = a
			if len(l.Words) > 2 {
				m.change(l, "the balance parameters "+strings.Join(wordsText(l.Words[2:]), " ")+" are not supported", "")
			}
		case "uri":
			b.Balance = a
			if len(l.Words) > 2 {
				m.change(l, "balance uri "+strings.Join(wordsText(l.Words[2:]), " ")+": halb hashes the whole path, without these parameters", "")
			}
		case "static-rr":
			b.Balance = "roundrobin"
			m.change(l, "balance roundrobin: halb's roundrobin takes weight changes at once (static-rr does not)", "")
		case "first":
			m.drop(l, "halb has no 'first' balancing (fill the first server up to its maxconn)", "balance roundrobin")
		default:
			m.drop(l, "halb balances by roundrobin, leastconn, source, uri or random", "balance roundrobin")
		}
	}
	if l := be.hashType; l != nil {
		m.note(l, "nothing: halb's source and uri balancing use its own hash")
	}
	if l := be.allBackups; l != nil {
		b.AllBackups = true
	}
	if s.Kind == "backend" {
		m.proxyLogs(be.c)
		for name, t := range be.c.timeouts {
			if timeoutKeys[name].frontend && own(s, t.line) {
				m.drop(t.line, "HAProxy reads timeout "+name+" on the frontend side only (it ignored it in a backend)", "")
			}
		}
	}
	// servers
	var defaults serverParams
	for _, l := range be.defServer {
		m.serverArgs(&defaults, l, 1)
	}
	var servers []srv
	for _, l := range be.servers {
		if len(l.Words) < 3 {
			m.drop(l, "a server needs a name and an address", "")
			continue
		}
		p := defaults
		m.serverArgs(&p, l, 3)
		addr, why := serverAddress(l.Arg(2), fePort)
		if why != "" {
			m.drop(l, why, "")
			continue
		}
		if !strings.Contains(l.Arg(2), ":") || strings.HasSuffix(l.Arg(2), "]") {
			m.change(l, "no port: HAProxy connected to the port the client connected to; halb connects to "+addr, "")
		}
		name := uniqueName(l.Arg(1), func(n string) bool {
			for _, x := range b.Servers {
				if x.Name == n {
					return true
				}
			}
			return false
		})
		if name != l.Arg(1) {
			m.note(l, "server "+name+" (halb names take letters, digits, -, _ and .; unique in the backend)")
		}
		sv := config.Server{Name: name, Address: addr, Weight: p.weight, MaxConn: p.maxconn, Backup: p.backup, Disabled: p.disabled}
		b.Servers = append(b.Servers, sv)
		servers = append(servers, srv{p, l})
		m.b.From(fmt.Sprintf("backends[%d].servers[%d]", len(m.b.Config.Backends), len(b.Servers)-1), l.Pos(), "server "+l.Arg(1))
	}
	// per-server settings that are per backend in halb
	var checked []srv
	for _, sv := range servers {
		if sv.p.check {
			checked = append(checked, sv)
		}
	}
	for _, sv := range servers {
		if sv.p.slowstart > b.SlowStart {
			b.SlowStart = sv.p.slowstart
		}
	}
	if b.SlowStart > config.Duration(time.Hour) {
		b.SlowStart = config.Duration(time.Hour)
		m.once(source.Changed, s.Header.Pos(), s.Header.Raw, "slowstart: halb ramps up over at most 1h", "")
	}
	for _, sv := range servers {
		if sv.p.slowstart != b.SlowStart {
			m.change(sv.line, fmt.Sprintf("slowstart is per backend in halb: every server of %s ramps up over %s", b.Name, b.SlowStart), "")
		}
	}
	pp, ssl := "", false
	for i, sv := range servers {
		if i == 0 {
			pp, ssl = sv.p.sendProxy, sv.p.ssl
		}
		if sv.p.sendProxy != pp {
			m.change(sv.line, "proxy_protocol is per backend in halb: every server of "+b.Name+" gets the same", "")
		}
		if sv.p.ssl != ssl {
			m.change(sv.line, "tls is per backend in halb: every server of "+b.Name+" gets the same", "")
		}
	}
	b.ProxyProtocol = pp
	if ssl {
		p := servers[0].p
		t := &config.BackendTLS{Verify: "full", CA: p.caFile, ServerName: p.sni}
		switch p.verify {
		case "none":
			t.Verify, t.CA = "none", ""
		case "required", "":
			if p.verify == "" && p.caFile == "" {
				m.change(servers[0].line, "ssl without verify: HAProxy's default (ssl-server-verify required) needs a ca-file; halb verifies against the system roots", "")
			}
		}
		b.TLS = t
	}
	// cookie
	if l := be.cookie; l != nil {
		m.cookie(l, &b, servers)
	}
	for _, sv := range servers {
		if sv.p.cookie != "" && be.cookie == nil {
			m.drop(sv.line, "cookie "+sv.p.cookie+" without a cookie line in the backend: HAProxy ignored it", "")
		}
	}
	// stick tables
	m.stick(be, &b)
	// health
	m.health(be, &b, checked, len(servers))
	for _, sv := range servers {
		if sv.p.observe != "" {
			switch sv.p.observe {
			case "layer4", "layer7":
				b.Health.Observe = sv.p.observe
			default:
				m.drop(sv.line, "observe "+sv.p.observe, "")
			}
		}
	}
	if b.Health.Observe == "" && len(checked) > 0 {
		b.Health.Observe = "none"
		m.once(source.Note, s.Header.Pos(), s.Header.Raw, "health.observe: none (HAProxy's servers have no observe: real traffic does not take them down)", "")
	}
	m.b.Config.Backends = append(m.b.Config.Backends, b)
	m.b.From(fmt.Sprintf("backends[%d]", len(m.b.Config.Backends)-1), s.Header.Pos(), s.What())
}

// srv is a server line and its parameters.
type srv struct {
	p    serverParams
	line *Line
}

// stick maps stick-table and stick on src.
func (m *mapper) stick(be *beState, b *config.Backend) {
	t := be.stickTable
	src := false
	for _, l := range be.stickOn {
		switch {
		case (l.Arg(1) == "on" || l.Arg(1) == "match" || l.Arg(1) == "store-request") && l.Arg(2) == "src" && len(l.Words) == 3:
			src = true
		default:
			m.drop(l, "halb keeps clients on a server by their source address or a cookie it inserts, not by "+strings.Join(wordsText(l.Words[1:]), " "), "")
		}
	}
	if t == nil {
		for _, l := range be.stickOn {
			if l.Arg(2) == "src" {
				m.drop(l, "no stick-table in this backend", "")
			}
		}
		return
	}
	if !src {
		m.drop(t, "a stick table not used to stick on src: halb has no stick tables", "")
		return
	}
	if b.Sticky.Cookie != "" {
		m.drop(t, "halb keeps clients by a cookie or by their source, not both", "")
		return
	}
	expire := time.Duration(0)
	for i := 1; i < len(t.Words); i++ {
		switch t.Arg(i) {
		case "type":
			i++
			if t.Arg(i) != "ip" && t.Arg(i) != "ipv6" {
				m.drop(t, "type "+t.Arg(i)+": halb sticks on the client's address only", "")
				return
			}
		case "size":
			i++
			m.note(t, "size "+t.Arg(i)+": halb's table of source addresses has no size limit; idle entries expire")
		case "expire":
			i++
			d, ok := parseDuration(t.Arg(i))
			if !ok {
				m.drop(t, "expire "+t.Arg(i)+": not a duration", "")
				return
			}
			expire = d
		case "peers":
			i++
			m.change(t, "peers "+t.Arg(i)+": halb does not share the source table with its peer: after a failover clients may land on another server", "")
		case "store", "nopurge", "srvkey", "write-to", "recv-only":
			if t.Arg(i) != "nopurge" && t.Arg(i) != "recv-only" {
				i++
			}
			m.drop(t, t.Arg(i)+": halb's source table keeps the server only", "")
		case "len":
			i++
		}
	}
	b.Sticky.Source = true
	switch {
	case expire == 0:
		b.Sticky.Expire = config.Duration(24 * time.Hour)
		m.change(t, "no expire: HAProxy kept entries until the table was full; halb forgets an address idle for 24h (the most it takes)", "")
	case expire < time.Second || expire > 24*time.Hour:
		e := min(max(expire, time.Second), 24*time.Hour)
		b.Sticky.Expire = config.Duration(e)
		m.change(t, fmt.Sprintf("expire: halb takes 1s..24h; %s", e), "")
	default:
		b.Sticky.Expire = config.Duration(expire)
	}
}

// own reports whether l is one of section s's own lines (not a defaults
// line it read).
func own(s *Section, l *Line) bool {
	for i := range s.Lines {
		if &s.Lines[i] == l {
			return true
		}
	}
	return false
}
