package haproxy

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// feState is a frontend (or the frontend side of a listen) being read.
type feState struct {
	sec      *Section
	c        *common
	binds    []bindInfo
	acls     map[string]*acl
	aclLines []*Line
	rules    []*Line // use_backend
	defLine  *Line
	redirect *Line // http-request redirect scheme https
	redirIf  string
	code     int
	headers  map[string]string
	hdrLines []*Line
	xfp      *Line           // http-request set-header X-Forwarded-Proto
	afterHdr map[string]bool // response field set by http-after-response
}

// bindInfo is one bind line.
type bindInfo struct {
	line        *Line
	addrs       []string
	tls         bool
	certs       []config.TLSCertificate
	minVersion  string
	clientCA    string
	verify      string
	acceptProxy bool
	ok          bool
}

func (m *mapper) frontendLine(fe *feState, l *Line, fromDefaults bool) bool {
	switch l.Arg(0) {
	case "bind":
		if fromDefaults {
			return false
		}
		fe.binds = append(fe.binds, m.bind(l))
		return true
	case "acl":
		if l.Arg(1) == "" {
			m.drop(l, "acl needs a name", "")
			return true
		}
		fe.aclLines = append(fe.aclLines, l)
		return true
	case "use_backend":
		if fromDefaults {
			return false
		}
		fe.rules = append(fe.rules, l)
		return true
	case "default_backend":
		fe.defLine = l
		return true
	case "redirect":
		if l.Arg(1) == "scheme" && l.Arg(2) == "https" {
			m.httpsRedirect(fe, l, 3)
			return true
		}
		m.drop(l, "halb redirects only to https (https_redirect)", "")
		return true
	case "http-request":
		if l.Arg(1) == "redirect" && l.Arg(2) == "scheme" && l.Arg(3) == "https" {
			m.httpsRedirect(fe, l, 4)
			return true
		}
		if l.Arg(1) == "set-header" || l.Arg(1) == "add-header" || l.Arg(1) == "del-header" {
			if strings.EqualFold(l.Arg(2), "X-Forwarded-Proto") && l.Arg(1) != "del-header" {
				fe.xfp = l
				m.change(l, "forward_headers: x-forwarded-proto: halb writes http or https as the client's connection is, replacing the client's own", "")
				return true
			}
		}
		m.drop(l, "halb has no request rules of that kind", "")
		return true
	case "http-response", "http-after-response":
		if (l.Arg(1) == "set-header" || l.Arg(1) == "add-header") && len(l.Words) == 4 && !strings.Contains(l.Arg(3), "%[") && config.ValidToken(l.Arg(2)) && !strings.ContainsAny(l.Arg(3), "\r\n\x00") {
			fe.headers[l.Arg(2)] = l.Arg(3)
			fe.afterHdr[l.Arg(2)] = l.Arg(0) == "http-after-response"
			fe.hdrLines = append(fe.hdrLines, l)
			if l.Arg(0) == "http-response" {
				m.change(l, "response_headers: halb sets the field on its own error responses too (as http-after-response)", "")
			}
			return true
		}
		m.drop(l, "halb sets constant response fields only (response_headers)", "")
		return true
	case "tcp-request":
		if l.Arg(1) == "inspect-delay" || (l.Arg(1) == "content" && l.Arg(2) == "accept") {
			m.note(l, "nothing: halb reads what it needs of the connection itself (timeouts.http_request bounds it)")
			return true
		}
		m.drop(l, "halb has no tcp-request rules", "")
		return true
	}
	return false
}

func (m *mapper) httpsRedirect(fe *feState, l *Line, i int) {
	code := 302
	cond := ""
	for ; i < len(l.Words); i++ {
		switch l.Arg(i) {
		case "code":
			n, err := strconv.Atoi(l.Arg(i + 1))
			if err != nil {
				m.drop(l, "redirect code "+l.Arg(i+1), "")
				return
			}
			code = n
			i++
		case "if", "unless":
			cond = strings.Join(wordsText(l.Words[i:]), " ")
			i = len(l.Words)
		default:
			// drop-query, append-slash, set-cookie...
			m.change(l, "the redirect option "+l.Arg(i)+" is not supported: halb keeps the path and query", "")
		}
	}
	switch code {
	case 301, 302, 303, 307, 308:
	default:
		m.drop(l, "halb redirects with 301, 302, 303, 307 or 308", "")
		return
	}
	fe.redirect, fe.redirIf, fe.code = l, cond, code
}

// bind reads a bind line.
func (m *mapper) bind(l *Line) bindInfo {
	bi := bindInfo{line: l, ok: true}
	if len(l.Words) < 2 {
		m.drop(l, "bind without an address", "")
		bi.ok = false
		return bi
	}
	for _, a := range strings.Split(l.Arg(1), ",") {
		addrs, why := listenAddrs(a)
		if why != "" {
			m.drop(l, why, "")
			bi.ok = false
			return bi
		}
		bi.addrs = append(bi.addrs, addrs...)
	}
	for i := 2; i < len(l.Words); i++ {
		w := l.Arg(i)
		switch w {
		case "ssl":
			bi.tls = true
		case "crt":
			i++
			if l.Arg(i) == "" {
				m.drop(l, "crt without a path", "")
				continue
			}
			p := m.absPath(m.crtBase, l.Arg(i), l)
			pems := []string{p}
			if st, err := os.Stat(p); strings.HasSuffix(p, "/") || err == nil && st.IsDir() {
				// a directory: HAProxy loads every file in it; the
				// importer lists the .pem files there now
				pems, _ = filepath.Glob(filepath.Join(p, "*.pem"))
				if len(pems) == 0 {
					m.drop(l, "crt "+p+": a directory of certificates that the importer cannot list here (no .pem files)", "list each certificate under tls.certificates")
					continue
				}
				m.change(l, fmt.Sprintf("crt %s: a directory; the importer took the %d .pem files in it now (HAProxy loads whatever it holds when it starts)", p, len(pems)), "")
			}
			for _, p := range pems {
				m.pemCert(&bi, l, p)
			}
		case "crt-list":
			i++
			m.drop(l, "crt-list: halb names each certificate's files", "list each certificate under tls.certificates")
		case "ssl-min-ver":
			i++
			switch l.Arg(i) {
			case "TLSv1.2":
				bi.minVersion = "1.2"
			case "TLSv1.3":
				bi.minVersion = "1.3"
			default:
				m.change(l, "ssl-min-ver "+l.Arg(i)+": halb accepts TLS 1.2 and 1.3 only", "")
			}
		case "ssl-max-ver", "ciphers", "ciphersuites", "curves", "ecdhe", "ssl-default-bind-options", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tls-tickets", "force-tlsv12", "force-tlsv13", "prefer-client-ciphers", "strict-sni", "no-tlsv12", "no-tlsv13", "sigalgs", "client-sigalgs":
			if !strings.HasPrefix(w, "no-") && !strings.HasPrefix(w, "force-") && w != "prefer-client-ciphers" && w != "strict-sni" {
				i++
			}
			m.change(l, w+": halb's TLS follows Mozilla's intermediate policy (TLS 1.2 with ECDHE and AEAD ciphers, and 1.3)", "")
		case "alpn":
			i++
			if l.Arg(i) != "http/1.1" {
				m.change(l, "alpn "+l.Arg(i)+": halb offers http/1.1 only (no h2 yet)", "")
			}
		case "npn":
			i++
		case "ca-file":
			i++
			bi.clientCA = m.absPath(m.caBase, l.Arg(i), l)
		case "verify":
			i++
			bi.verify = l.Arg(i)
		case "accept-proxy":
			bi.acceptProxy = true
		case "name", "id", "process", "thread", "nice", "maxconn", "backlog", "mss", "tcp-ut", "interface", "namespace", "mode", "uid", "gid", "user", "group", "level", "severity-output", "label", "proto":
			i++
			if w == "name" || w == "id" || w == "label" {
				continue
			}
			m.drop(l, w+" "+l.Arg(i)+": halb has no such listener setting", "")
		case "v4v6", "v6only", "transparent", "defer-accept", "tfo", "quic-force-retry", "allow-0rtt":
			m.drop(l, w+": halb has no such listener setting", "")
		default:
			m.drop(l, "the bind option "+w+" is not known to the importer", "")
		}
	}
	if bi.tls && len(bi.certs) == 0 {
		m.drop(l, "ssl without a certificate halb can name", "")
		bi.ok = false
	}
	return bi
}

// pemCert adds the certificate of HAProxy's PEM file p to bi.
func (m *mapper) pemCert(bi *bindInfo, l *Line, p string) {
	base := strings.TrimSuffix(p, filepath.Ext(p))
	name := certName(filepath.Base(base))
	for n := 2; slices.ContainsFunc(bi.certs, func(c config.TLSCertificate) bool { return c.Name == name }); n++ {
		name = fmt.Sprintf("%s-%d", certName(filepath.Base(base)), n)
	}
	bi.certs = append(bi.certs, config.TLSCertificate{Name: name, Cert: base + ".crt", Key: base + ".key"})
	m.change(l, "crt "+p+": HAProxy's PEM holds the certificate and its key; halb reads them from two files", "split the PEM: the CERTIFICATE blocks into "+base+".crt, the key into "+base+".key")
}

// certName makes a certificate name from a file name.
func certName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (b.Len() > 0 && (r == '.' || r == '_' || r == '-')) {
			b.WriteRune(r)
		}
	}
	n := b.String()
	if n == "" {
		n = "cert"
	}
	if len(n) > 56 { // room for a "-NNNNN" that makes it unique
		n = n[:56]
	}
	return n
}

// listenAddrs turns one bind address into halb listen addresses.
func listenAddrs(a string) ([]string, string) {
	for _, p := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
		a = strings.TrimPrefix(a, p)
	}
	if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
		return nil, "a unix socket or special address: halb listens on host:port only"
	}
	var host, ports string
	switch {
	case strings.HasPrefix(a, "["):
		i := strings.Index(a, "]:")
		if i < 0 {
			return nil, "no port in " + a
		}
		host, ports = a[1:i], a[i+2:]
	default:
		i := strings.LastIndex(a, ":")
		if i < 0 {
			return nil, "no port in " + a
		}
		host, ports = a[:i], a[i+1:]
	}
	if host == "*" || host == "" {
		host = ""
	} else if host == "::" {
		host = "::"
	}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, "the bind address " + host + " is not an IP address"
		}
		host = ip.String()
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	pl, err1 := strconv.Atoi(lo)
	ph := pl
	var err2 error
	if isRange {
		ph, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || pl < 1 || ph > 65535 || ph < pl {
		return nil, "the port " + ports + " is not a port or a range of ports"
	}
	if ph-pl >= 16 {
		return nil, "the port range " + ports + " is too wide to list (halb takes each port)"
	}
	var out []string
	for p := pl; p <= ph; p++ {
		if host == "" {
			out = append(out, ":"+strconv.Itoa(p))
		} else {
			out = append(out, netip.AddrPortFrom(netip.MustParseAddr(host), uint16(p)).String())
		}
	}
	return out, ""
}

// service makes the service(s) of a frontend or listen. be is the backend
// of a listen (its default backend), nil for a frontend.
func (m *mapper) service(fe *feState) {
	listenBackend := ""
	if fe.sec.Kind == "listen" {
		listenBackend = m.names[fe.sec.Name]
	}
	s := fe.sec
	mode := fe.c.mode
	if mode == "" {
		mode = "tcp" // HAProxy's default mode
		m.once(source.Note, s.Header.Pos(), s.Header.Raw, "mode: tcp (HAProxy's default mode; no mode line)", "")
	}
	var plain, secure []bindInfo
	for _, bi := range fe.binds {
		if !bi.ok {
			continue
		}
		if bi.tls {
			secure = append(secure, bi)
		} else {
			plain = append(plain, bi)
		}
	}
	if len(plain) == 0 && len(secure) == 0 {
		m.once(source.Dropped, s.Header.Pos(), s.Header.Raw, "no bind address halb can listen on: the section becomes no service", "")
		return
	}
	// ACLs; what an ACL's mapping changes is reported once a rule
	// uses it (below).
	aclNotes := map[*Line][]aclFinding{}
	for _, l := range fe.aclLines {
		name := l.Arg(1)
		a, notes := parseACL(l.Words[2:])
		aclNotes[l] = notes
		if prev, ok := fe.acls[name]; ok {
			// lines of one name are ORed
			if prev.unsupported == "" && a.unsupported == "" {
				prev.atoms = append(prev.atoms, a.atoms...)
			} else if prev.unsupported == "" {
				prev.unsupported = a.unsupported
			}
			continue
		}
		ac := a
		fe.acls[name] = &ac
	}
	def := ""
	if fe.defLine != nil {
		def = m.backendName(fe.defLine, fe.defLine.Arg(1))
	} else if listenBackend != "" {
		def = listenBackend
	}
	var rules []rule
	var snis []config.SNIRoute
	for _, l := range fe.rules {
		name := l.Arg(1)
		if strings.Contains(name, "%[") {
			m.drop(l, "a backend chosen by a sample expression: halb routes to named backends", "")
			continue
		}
		if len(rules) >= maxRules {
			m.drop(l, fmt.Sprintf("more than %d use_backend rules: the importer compiles the first %d", maxRules, maxRules), "")
			continue
		}
		target := m.backendName(l, name)
		if target == "" {
			continue
		}
		var cs []clause
		why := ""
		switch {
		case len(l.Words) == 2:
			cs = []clause{{}}
		case l.Arg(2) == "if" || l.Arg(2) == "unless":
			cs, why = condition(l.Words[3:], l.Arg(2) == "unless", mode == "tcp", fe.acls, func(p source.Pos, n aclFinding) {
				if n.change {
					m.change(l, n.why, "")
				} else {
					m.note(l, n.why)
				}
			})
		default:
			why = "use_backend " + name + " " + l.Arg(2) + ": want if or unless"
		}
		if why != "" {
			m.drop(l, why, "requests it would have sent to "+name+" go where the later rules or default_backend send them")
			continue
		}
		if mode == "tcp" {
			m.sniRoutes(l, target, cs, &snis)
			continue
		}
		rules = append(rules, rule{backend: target, clauses: cs})
		// check this rule alone compiles, so one rule that cannot be
		// written drops only itself
		if _, why := compile(rules, def); why != "" {
			rules = rules[:len(rules)-1]
			m.drop(l, why, "requests it would have sent to "+name+" go where the later rules or default_backend send them")
		}
	}
	routes, _ := compile(rules, def)
	for _, l := range fe.aclLines {
		used := false
		for _, r := range append(append([]*Line(nil), fe.rules...), fe.redirect) {
			if r != nil && slices.ContainsFunc(r.Words[1:], func(w Word) bool { return strings.TrimLeft(w.Text, "!") == l.Arg(1) }) {
				used = true
			}
		}
		if !used {
			m.note(l, "nothing: no use_backend rule halb maps uses it")
			continue
		}
		for _, n := range aclNotes[l] {
			if n.change {
				m.change(l, n.why, "")
			} else {
				m.note(l, n.why)
			}
		}
	}
	if mode == "http" && def == "" && len(routes) == 0 {
		m.once(source.Dropped, s.Header.Pos(), s.Header.Raw, "no backend to send requests to (no default_backend and no use_backend halb can take): the section becomes no service", "")
		return
	}
	if mode == "tcp" && def == "" {
		m.once(source.Dropped, s.Header.Pos(), s.Header.Raw, "a tcp frontend without default_backend: the section becomes no service", "")
		return
	}
	if mode == "http" && def == "" {
		m.once(source.Note, s.Header.Pos(), s.Header.Raw, "no default_backend: requests no route matches get halb's error response (HAProxy answered 503)", "")
	}
	svc := config.Service{Mode: mode, Routes: routes, DefaultBackend: def}
	if mode == "tcp" {
		svc.Routes, svc.SNIRoutes = nil, snis
	}
	// timeouts: the frontend's own, and the backend side's from the
	// default backend (HAProxy reads connect, server, queue and tunnel
	// there)
	for name, t := range fe.c.timeouts {
		setTimeout(&svc.Timeouts, timeoutKeys[name].key, t.d)
	}
	if b := m.backends[m.haproxyName(def)]; b != nil {
		for name, t := range b.c.timeouts {
			if !timeoutKeys[name].frontend {
				setTimeout(&svc.Timeouts, timeoutKeys[name].key, t.d)
			}
		}
	}
	m.timeoutDiffs(fe, &svc)
	// HAProxy's fallbacks: without timeout http-request a request head
	// had timeout client between its chunks; without timeout
	// http-keep-alive an idle connection had http-request, else client
	if t := &svc.Timeouts; mode == "http" && t.Client > 0 {
		_, hr := fe.c.timeouts["http-request"]
		_, ka := fe.c.timeouts["http-keep-alive"]
		if !hr {
			t.HTTPRequest = t.Client
		}
		if !ka {
			t.HTTPKeepAlive = t.HTTPRequest
		}
		if !hr || !ka {
			m.once(source.Note, s.Header.Pos(), s.Header.Raw, fmt.Sprintf("timeouts http_request %s and http_keep_alive %s: HAProxy's fallbacks when they are not set (http-request: timeout client; http-keep-alive: http-request)", t.HTTPRequest, t.HTTPKeepAlive), "")
		}
	}
	if fe.c.accessLog != nil {
		svc.AccessLog = true
		m.change(fe.c.accessLog, "access_log: true: halb writes its own access record (client, backend, server, status, bytes, HAProxy's timings and termination state), not HAProxy's format", "")
		if fe.c.noLog {
			svc.AccessLog = false
		}
	}
	m.proxyLogs(fe.c)
	if mode == "http" {
		fh := []string{}
		for _, f := range []struct {
			field string
			opt   func(*common) *Line
		}{
			{config.ForwardFor, func(c *common) *Line { return c.forwardfor }},
			{config.ForwardProto, func(*common) *Line { return fe.xfp }},
			{config.Forwarded, func(c *common) *Line { return c.forwarded }},
		} {
			if m.forwards(fe, &svc, f.opt) {
				fh = append(fh, f.field)
			}
		}
		svc.ForwardHeaders = &fh
		if len(fh) == 0 {
			m.once(source.Note, s.Header.Pos(), s.Header.Raw, "forward_headers: [] (no option forwardfor: HAProxy added no X-Forwarded-For; halb's default would add X-Forwarded-For, X-Forwarded-Proto and Forwarded)", "")
		}
		if len(fe.headers) > 0 {
			svc.ResponseHeaders = fe.headers
		}
	} else {
		for _, l := range fe.hdrLines {
			m.drop(l, "response fields need mode http", "")
		}
		if fe.c.forwardfor != nil {
			m.drop(fe.c.forwardfor, "option forwardfor in tcp mode: HAProxy ignores it, so does halb", "")
		}
	}
	// several binds: accept-proxy is per service in halb
	ap := 0
	for _, bi := range fe.binds {
		if bi.ok && bi.acceptProxy {
			ap++
		}
	}
	add := func(name string, binds []bindInfo, tls bool) {
		sv := svc
		sv.Name = name
		if sv.ResponseHeaders != nil {
			sv.ResponseHeaders = maps(fe.headers)
		}
		for _, bi := range binds {
			for _, a := range bi.addrs {
				switch other, dup := m.listens[a]; {
				case dup && other != name:
					m.drop(bi.line, a+" is already a listen address of service "+other+" (HAProxy shared it with SO_REUSEPORT; halb listens once per address)", "")
				case !dup:
					m.listens[a] = name
					sv.Listen = append(sv.Listen, a)
				}
			}
			if bi.acceptProxy {
				sv.AcceptProxy = []string{"0.0.0.0/0", "::/0"}
			}
		}
		if sv.AcceptProxy != nil && ap != len(binds) {
			for _, bi := range binds {
				if bi.acceptProxy {
					m.change(bi.line, "accept-proxy applies to every listen address of service "+name+" in halb", "")
				}
			}
		}
		if sv.AcceptProxy != nil {
			m.note(binds[0].line, "accept_proxy: [0.0.0.0/0, ::/0]: every client must send a PROXY header, as HAProxy's accept-proxy")
		}
		if len(sv.Listen) == 0 {
			return
		}
		if tls {
			sv.TLS = m.serviceTLS(binds)
		}
		if fe.redirect != nil && !tls && mode == "http" {
			switch fe.redirIf {
			case "", "unless { ssl_fc }", "if !{ ssl_fc }", "if ! { ssl_fc }":
				sv.HTTPSRedirect = fe.code
				// HAProxy's redirects got the http-after-response
				// fields only, not http-response's
				for k := range sv.ResponseHeaders {
					if !fe.afterHdr[k] {
						delete(sv.ResponseHeaders, k)
					}
				}
				if len(sv.ResponseHeaders) == 0 {
					sv.ResponseHeaders = nil
				}
				sv.Routes, sv.DefaultBackend = nil, def
				if def == "" && len(routes) > 0 {
					sv.DefaultBackend = routes[0].Backend
				}
				m.note(fe.redirect, fmt.Sprintf("services %s: https_redirect: %d (every request is redirected; its backends see none)", name, fe.code))
			default:
				m.drop(fe.redirect, "a conditional redirect: halb redirects every request of a plain service or none", "")
			}
		}
		m.b.Config.Services = append(m.b.Config.Services, sv)
		m.svcNames[name] = true
		m.b.From(fmt.Sprintf("services[%d]", len(m.b.Config.Services)-1), s.Header.Pos(), s.What())
	}
	name := uniqueName(s.Name, m.serviceTaken)
	if name != s.Name {
		m.once(source.Note, s.Header.Pos(), s.Header.Raw, "service "+name+" (halb names take letters, digits, -, _ and .)", "")
	}
	switch {
	case len(secure) == 0:
		add(name, plain, false)
	case len(plain) == 0:
		add(name, secure, true)
	default:
		add(name, plain, false)
		tname := uniqueName(name+"-tls", m.serviceTaken)
		m.once(source.Note, s.Header.Pos(), s.Header.Raw, "two services, "+name+" (plain binds) and "+tname+" (ssl binds): halb terminates TLS on all or none of a service's addresses", "")
		add(tname, secure, true)
	}
	if fe.redirect != nil && len(plain) == 0 {
		m.note(fe.redirect, "nothing: a TLS service needs no redirect to https")
	}
}

// sniRoutes maps a tcp-mode use_backend on the TLS server name onto
// sni_routes: each clause one name, exact or "*.suffix".
func (m *mapper) sniRoutes(l *Line, backend string, cs []clause, snis *[]config.SNIRoute) {
	var add []config.SNIRoute
	for _, c := range cs {
		r := c.r
		switch {
		case r.pk != anyPath || r.hk == anyHost:
			m.drop(l, "halb routes tcp connections by a TLS server name, each route one name", "")
			return
		case r.hk == exactHost && len(c.neg) == 0:
			add = append(add, config.SNIRoute{SNI: r.host, Backend: backend})
		case r.hk == domainHost && len(c.neg) == 1 && c.neg[0] == (region{hk: exactHost, host: r.host}):
			m.change(l, "*."+r.host+": halb's wildcard matches one label under "+r.host+"; HAProxy's end match took any depth", "")
			add = append(add, config.SNIRoute{SNI: "*." + r.host, Backend: backend})
		default:
			m.drop(l, "a negation or a domain match on the TLS server name: halb's sni_routes take a name or a *.suffix wildcard", "")
			return
		}
	}
	for _, a := range add {
		if slices.ContainsFunc(*snis, func(x config.SNIRoute) bool { return strings.EqualFold(x.SNI, a.SNI) }) {
			m.note(l, "nothing for "+a.SNI+": an earlier rule routes that name")
			continue
		}
		*snis = append(*snis, a)
	}
	if len(add) > 0 {
		m.note(l, "sni_routes (halb reads the ClientHello without terminating TLS; an exact name wins over a wildcard, whatever the rule order)")
	}
}

// proxyLogs maps a section's own log lines (not "log global"): halb's
// targets are node-wide.
func (m *mapper) proxyLogs(c *common) {
	for _, l := range c.logs {
		m.change(l, "halb's log targets serve every service: this one is an observe.logs target", "")
		m.globalLog(l)
	}
}

// forwards reports whether the service adds a field HAProxy added by the
// option opt gives (its frontend's, or its backends'); halb adds it per
// service, so when only some backends had it, they are reported.
func (m *mapper) forwards(fe *feState, svc *config.Service, opt func(*common) *Line) bool {
	if opt(fe.c) != nil {
		return true
	}
	all, some := true, false
	for _, n := range svc.BackendNames() {
		if b := m.backends[m.haproxyName(n)]; b != nil && opt(b.c) != nil {
			some = true
		} else {
			all = false
		}
	}
	if some && !all {
		for _, n := range svc.BackendNames() {
			if b := m.backends[m.haproxyName(n)]; b != nil && opt(b.c) != nil {
				m.change(opt(b.c), "halb adds the field per service: every backend of service "+fe.sec.Name+" gets it", "")
			}
		}
	}
	return some
}

func maps(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// serviceTLS makes the tls section of a service from its ssl binds.
func (m *mapper) serviceTLS(binds []bindInfo) *config.TLS {
	t := &config.TLS{}
	for _, bi := range binds {
		for _, c := range bi.certs {
			if !slices.ContainsFunc(t.Certificates, func(x config.TLSCertificate) bool { return x.Name == c.Name }) {
				t.Certificates = append(t.Certificates, c)
			}
		}
		if bi.minVersion != "" {
			t.MinVersion = bi.minVersion
		}
		if bi.clientCA != "" && (bi.verify == "required" || bi.verify == "optional") {
			t.ClientAuth = &config.ClientAuth{CA: bi.clientCA, Verify: bi.verify}
		} else if bi.verify == "none" || (bi.clientCA != "" && bi.verify == "") {
			m.note(bi.line, "no client_auth: HAProxy asked for no client certificate (verify none)")
		}
	}
	return t
}

func setTimeout(t *config.Timeouts, key string, d config.Duration) {
	switch key {
	case "connect":
		t.Connect = d
	case "client":
		t.Client = d
	case "server":
		t.Server = d
	case "http_request":
		t.HTTPRequest = d
	case "http_keep_alive":
		t.HTTPKeepAlive = d
	case "queue":
		t.Queue = d
	case "tunnel":
		t.Tunnel = d
	}
}

// timeoutDiffs reports backend-side timeouts of a service's other
// backends that differ from those it took (halb's are per service).
func (m *mapper) timeoutDiffs(fe *feState, svc *config.Service) {
	for _, n := range svc.BackendNames() {
		b := m.backends[m.haproxyName(n)]
		if b == nil {
			continue
		}
		for name, t := range b.c.timeouts {
			k := timeoutKeys[name]
			if k.frontend {
				continue
			}
			var cur config.Timeouts = svc.Timeouts
			var got config.Duration
			switch k.key {
			case "connect":
				got = cur.Connect
			case "server":
				got = cur.Server
			case "queue":
				got = cur.Queue
			case "tunnel":
				got = cur.Tunnel
			}
			if got != t.d {
				m.change(t.line, fmt.Sprintf("timeouts are per service in halb: service %s takes %s from its default backend", fe.sec.Name, got), "")
			}
		}
	}
}

// backendName maps a backend name a frontend refers to; "" (and a
// finding) when there is no such backend.
func (m *mapper) backendName(l *Line, name string) string {
	if n, ok := m.names[name]; ok {
		return n
	}
	m.drop(l, "no backend "+name+" that halb imports", "")
	return ""
}

// haproxyName is the HAProxy name of a halb backend name.
func (m *mapper) haproxyName(n string) string { return m.hnames[n] }
