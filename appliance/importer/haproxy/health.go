package haproxy

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// cookie maps "cookie NAME insert ..." onto sticky.cookie.
func (m *mapper) cookie(l *Line, b *config.Backend, servers []srv) {
	name := l.Arg(1)
	if !config.ValidToken(name) {
		m.drop(l, "the cookie name "+name+" is not a token", "")
		return
	}
	insert := false
	for i := 2; i < len(l.Words); i++ {
		switch w := l.Arg(i); w {
		case "insert":
			insert = true
		case "rewrite", "prefix":
			m.drop(l, "cookie "+w+": halb inserts its own cookie; it does not rewrite or prefix the server's", "")
			return
		case "indirect":
			m.change(l, "indirect: halb sets the cookie only when the client has none naming a server, but passes it on to the server", "")
		case "nocache":
			m.change(l, "nocache: halb adds no Cache-Control: private to responses that set the cookie", "")
		case "httponly", "secure", "postonly", "preserve", "dynamic":
			m.change(l, w+": halb's cookie is NAME=server; Path=/ only", "")
		case "domain", "maxidle", "maxlife", "attr":
			i++
			m.change(l, w+" "+l.Arg(i)+": halb's cookie is NAME=server; Path=/ only", "")
		default:
			m.drop(l, "unknown cookie option "+w, "")
		}
	}
	if !insert {
		m.change(l, "without insert HAProxy read a cookie the servers set; halb inserts the cookie itself", "")
	}
	b.Sticky.Cookie = name
	for i, sv := range servers { // servers[i] made b.Servers[i]
		switch {
		case sv.p.cookie == "":
			m.change(sv.line, "no cookie value: HAProxy did not keep clients on this server; halb's cookie names every server", "")
		case sv.p.cookie != b.Servers[i].Name:
			m.change(sv.line, "cookie "+sv.p.cookie+": halb's cookie value is the server's name; clients holding the old value are placed afresh once", "")
		}
	}
}

// health maps the checks of a backend.
func (m *mapper) health(be *beState, b *config.Backend, checked []srv, nServers int) {
	h := &b.Health
	var checkLines []*Line
	if be.check != nil {
		checkLines = append(checkLines, be.check)
	}
	checkLines = append(append(checkLines, be.httpCheck...), be.tcpCheck...)
	if len(checked) == 0 {
		h.Check = "none"
		if nServers > 0 {
			m.once(source.Note, be.sec.Header.Pos(), be.sec.Header.Raw, "health.check: none (no server has check: HAProxy did not check them)", "")
		}
		for _, l := range checkLines {
			m.drop(l, "no server of the backend has check: HAProxy ran no check", "")
		}
		if be.checkTO != nil {
			m.drop(be.checkTO, "no server of the backend has check", "")
		}
		return
	}
	if len(checked) < nServers {
		m.once(source.Changed, be.sec.Header.Pos(), be.sec.Header.Raw, "some servers have no check: halb checks every server of a backend", "")
	}
	first := checked[0].p
	inter := config.Duration(2 * time.Second)
	if first.inter > 0 {
		inter = first.inter
	}
	h.Interval = inter
	h.Rise, h.Fall = 2, 3
	if first.rise > 0 {
		h.Rise = first.rise
	}
	if first.fall > 0 {
		h.Fall = first.fall
	}
	h.Port = first.port
	for _, sv := range checked[1:] {
		p := sv.p
		if p.inter != first.inter || p.rise != first.rise || p.fall != first.fall || p.port != first.port {
			m.change(sv.line, fmt.Sprintf("check settings are per backend in halb: %s takes interval %s, rise %d, fall %d from its first checked server", b.Name, h.Interval, h.Rise, h.Fall), "")
		}
		if p.checkSSL != first.checkSSL {
			m.change(sv.line, "check-ssl differs between servers: halb checks all servers alike", "")
		}
	}
	// timeout
	if l := be.checkTO; l != nil {
		d, ok := parseDuration(l.Arg(2))
		if ok && d > 0 {
			conn := inter.D()
			if c, ok := be.c.timeouts["connect"]; ok && c.d.D() < conn {
				conn = c.d.D()
			}
			h.Timeout = config.Duration(conn + d)
			m.note(l, fmt.Sprintf("health.timeout: %s: HAProxy bounded the connect by min(timeout connect, inter) and the read by timeout check; halb bounds the whole check", h.Timeout))
		} else {
			m.drop(l, "not a duration", "")
		}
	} else {
		h.Timeout = inter // HAProxy: inter bounds the whole check
	}
	h.Check = "tcp"
	if first.checkSSL && !first.ssl {
		h.Check = "https"
	}
	opt := be.check
	kind := ""
	if opt != nil {
		kind = opt.Arg(1)
	}
	switch kind {
	case "httpchk":
		if h.Check != "https" {
			h.Check = "http"
		}
		m.httpCheck(be, h, opt)
	case "tcp-check":
		m.tcpCheck(be, h)
	case "redis-check":
		h.Send, h.Expect = "PING\r\n", "+PONG"
		m.note(opt, `health: tcp, send "PING\r\n", expect "+PONG" (what redis-check does)`)
	case "ssl-hello-chk", "mysql-check", "pgsql-check", "smtpchk", "ldap-check", "spop-check":
		m.change(opt, "health.check: tcp: halb checks that the server accepts a connection, not the "+strings.TrimSuffix(strings.TrimSuffix(kind, "-check"), "chk")+" protocol", "")
	case "external-check":
		m.drop(opt, "halb runs no external check programs", "health.check: tcp")
	}
	if kind != "httpchk" {
		for _, l := range be.httpCheck {
			m.drop(l, "http-check without option httpchk: HAProxy ran no http check", "")
		}
	}
	if kind != "tcp-check" {
		for _, l := range be.tcpCheck {
			m.drop(l, "tcp-check without option tcp-check: HAProxy ran no tcp-check rules", "")
		}
	}
}

func (m *mapper) httpCheck(be *beState, h *config.Health, opt *Line) {
	// option httpchk [[METHOD] URI [VERSION]]: HAProxy's default request
	// is OPTIONS / HTTP/1.0
	method, uri, version := "OPTIONS", "/", ""
	switch len(opt.Words) {
	case 2:
	case 3:
		uri = opt.Arg(2)
	case 4:
		method, uri = opt.Arg(2), opt.Arg(3)
	default:
		method, uri, version = opt.Arg(2), opt.Arg(3), opt.Arg(4)
	}
	if v, rest, ok := strings.Cut(version, "\r\n"); ok {
		version = v
		for _, f := range strings.Split(rest, "\r\n") {
			k, val, _ := strings.Cut(f, ":")
			switch {
			case strings.EqualFold(strings.TrimSpace(k), "host"):
				h.Host = strings.TrimSpace(val)
			case strings.TrimSpace(f) == "":
			default:
				m.drop(opt, "the check header "+strings.TrimSpace(k)+": halb's checks send Host only", "")
			}
		}
	}
	_ = version
	expect := "200-399" // HAProxy passes 2xx and 3xx without an expect rule
	for _, l := range be.httpCheck {
		switch l.Arg(1) {
		case "send":
			for i := 2; i < len(l.Words); i++ {
				switch l.Arg(i) {
				case "meth":
					i++
					method = l.Arg(i)
				case "uri":
					i++
					uri = l.Arg(i)
				case "ver":
					i++
				case "hdr":
					if strings.EqualFold(l.Arg(i+1), "host") {
						h.Host = l.Arg(i + 2)
					} else {
						m.drop(l, "hdr "+l.Arg(i+1)+": halb's checks send Host only", "")
					}
					i += 2
				case "body", "body-lf", "uri-lf", "hdr-lf":
					i++
					m.drop(l, l.Arg(i-1)+": halb's checks send no body and no log-format values", "")
				default:
					m.drop(l, "unknown http-check send option "+l.Arg(i), "")
				}
			}
		case "expect":
			args := wordsText(l.Words[2:])
			if len(args) > 0 && args[0] == "!" {
				m.drop(l, "a negated expect: halb checks for statuses or a string that must be there", "")
				continue
			}
			if len(args) < 2 {
				m.drop(l, "expect needs a match and a pattern", "")
				continue
			}
			switch args[0] {
			case "status":
				var sc config.StatusCodes
				if err := sc.UnmarshalText([]byte(args[1])); err != nil {
					m.drop(l, "status "+args[1]+": "+err.Error(), "")
					continue
				}
				expect = args[1]
			case "rstatus":
				if r, ok := statusRegex(args[1]); ok {
					expect = r
					m.note(l, "expect_status: "+r)
				} else {
					m.drop(l, "rstatus "+args[1]+": halb takes statuses and ranges, not regular expressions", "")
				}
			case "string":
				h.ExpectBody = args[1]
				m.note(l, "expect_body: halb looks in the first 16 KiB of the body; the status must also be in expect_status (200-399 unless set), as HAProxy's string match did not look at it")
			default:
				m.drop(l, "expect "+args[0]+": halb checks statuses (expect_status) or a body string (expect_body)", "")
			}
		case "disable-on-404":
			m.drop(l, "halb has no drain on 404", "")
		case "connect":
			m.note(l, "nothing: halb connects to the server (health.port when set)")
		case "comment":
			m.note(l, "nothing: a comment")
		default:
			m.drop(l, "http-check "+l.Arg(1)+" is not supported", "")
		}
	}
	if !strings.HasPrefix(uri, "/") {
		m.drop(opt, "the check URI "+uri+" does not start with /", "health.path: /")
		uri = "/"
	}
	if !config.ValidToken(method) {
		m.drop(opt, "the check method "+method+" is not a token", "health.method: GET")
		method = "GET"
	}
	if strings.ContainsAny(h.Host, " \t\r\n/@") {
		m.drop(opt, "the check Host "+h.Host+" is not a host[:port]", "")
		h.Host = ""
	}
	if strings.ContainsAny(uri, " \t\r\n") {
		m.drop(opt, "the check URI holds white space", "health.path: /")
		uri = "/"
	}
	h.Method, h.Path = method, uri
	var sc config.StatusCodes
	_ = sc.UnmarshalText([]byte(expect))
	h.ExpectStatus = sc
	if method == "OPTIONS" {
		m.note(opt, "health.method: OPTIONS (HAProxy's default check method)")
	}
}

// statusRegex maps the common rstatus patterns onto ranges.
func statusRegex(r string) (string, bool) {
	switch r {
	case "^2", "^2[0-9][0-9]", "^2..", "^2[0-9]{2}$", "^2[0-9][0-9]$", "2[0-9][0-9]", "^2\\d\\d":
		return "200-299", true
	case "^[23]", "^[23][0-9][0-9]", "^(2|3)", "^[23]..", "^(2|3)[0-9][0-9]", "^[23][0-9]{2}$":
		return "200-399", true
	}
	return "", false
}

func (m *mapper) tcpCheck(be *beState, h *config.Health) {
	sends, expects := 0, 0
	for _, l := range be.tcpCheck {
		switch l.Arg(1) {
		case "connect":
			for i := 2; i < len(l.Words); i++ {
				switch l.Arg(i) {
				case "port":
					i++
					n, err := strconv.Atoi(l.Arg(i))
					if err == nil && n > 0 && n < 65536 {
						h.Port = n
					}
				case "ssl":
					m.change(l, "ssl: halb's tcp check connects without TLS", "")
				default:
					m.drop(l, "tcp-check connect "+l.Arg(i)+" is not supported", "")
				}
			}
		case "send", "send-lf", "send-binary", "send-binary-lf":
			if sends > 0 {
				m.drop(l, "halb's tcp check sends once", "")
				continue
			}
			sends++
			v := l.Arg(2)
			if l.Arg(1) == "send-binary" {
				b, err := hex.DecodeString(v)
				if err != nil {
					m.drop(l, "not hex", "")
					continue
				}
				v = string(b)
			} else if strings.HasSuffix(l.Arg(1), "-lf") {
				m.drop(l, "log-format values in a check are not supported", "")
				continue
			}
			h.Send = v
		case "expect":
			args := wordsText(l.Words[2:])
			if expects > 0 {
				m.drop(l, "halb's tcp check expects once", "")
				continue
			}
			if len(args) >= 2 && args[0] == "string" {
				expects++
				h.Expect = args[1]
				continue
			}
			if len(args) >= 2 && args[0] == "binary" {
				b, err := hex.DecodeString(args[1])
				if err == nil {
					expects++
					h.Expect = string(b)
					continue
				}
			}
			m.drop(l, "halb's tcp check expects a string in the first 4 KiB", "")
		case "comment":
			m.note(l, "nothing: a comment")
		default:
			m.drop(l, "tcp-check "+l.Arg(1)+" is not supported", "")
		}
	}
}
