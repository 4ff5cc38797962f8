package h1

import "bytes"

// Request is a parsed request head. Its byte slices alias the parsed buffer.
type Request struct {
	Method []byte
	// Target is the request-target as sent.
	Target []byte
	// Path is the target in origin-form: Target itself for origin-form,
	// the path and query of an absolute-form target ("/" when empty, a
	// shared read-only slice), "*" for asterisk-form.
	Path []byte
	// Host is the Host field's value; for an HTTP/1.0 absolute-form
	// request without Host, the target's authority.
	Host []byte
	// Minor is the protocol's minor version: HTTP/1.Minor, 0 or 1.
	Minor int
	// Headers holds every field line in order. ParseRequest appends to
	// Headers[:0], so a reused Request parses without allocating.
	Headers []Header
	// ContentLength is the body length, -1 when no Content-Length was sent.
	ContentLength int64
	// Chunked is set by Transfer-Encoding: chunked; scan the body with
	// Chunked. With neither Chunked nor ContentLength the body is empty.
	Chunked bool
	// Close says the connection ends after this exchange: Connection lists
	// close, or HTTP/1.0 without keep-alive.
	Close bool
	// Expect100 is Expect: 100-continue in an HTTP/1.1 request.
	Expect100 bool
	// Upgrade says an HTTP/1.1 request asks for a protocol upgrade:
	// Connection lists upgrade and an Upgrade field is present.
	Upgrade bool
	// HeadLen is the length of the head, leading empty lines and the final
	// empty line included; the body starts at buf[HeadLen:]. The leading
	// empty lines are CR and LF bytes only, for the caller to drop before
	// forwarding.
	HeadLen int
}

// slash is Path for an absolute-form target without a path; capped so an
// append by the caller copies.
var slash = []byte("/")[:1:1]

// ParseRequest parses the request head at the start of buf into req,
// keeping the capacity of req.Headers. It returns ErrIncomplete when buf
// holds no complete head yet, or an *Error carrying the status to refuse
// the request with. On error the contents of req are unspecified.
func ParseRequest(buf []byte, lim Limits, req *Request) error {
	lim = lim.orDefault()
	*req = Request{Headers: req.Headers[:0], ContentLength: -1}
	b := buf
	if len(b) > lim.MaxHeaderBytes {
		b = b[:lim.MaxHeaderBytes]
	}
	more := func() error { // not enough bytes: wait, or refuse an overlong head
		if len(buf) >= lim.MaxHeaderBytes {
			return fail(431, "request header too large")
		}
		return ErrIncomplete
	}

	// RFC 9112 §2.2: a server SHOULD ignore empty lines received before
	// the request-line.
	pos := 0
	for pos < len(b) && (b[pos] == '\n' || b[pos] == '\r') {
		if b[pos] == '\r' {
			if pos+1 == len(b) {
				return more()
			}
			if b[pos+1] != '\n' {
				return fail(400, "bare CR")
			}
			pos++
		}
		pos++
	}

	// The request line is bounded by MaxLine on its own: look for its end
	// in buf, not in the head window b.
	win := buf[pos:]
	if len(win) > lim.MaxLine {
		win = win[:lim.MaxLine]
	}
	l, next, ok := line(win, 0)
	if !ok {
		// Refuse what cannot become a request line (such as TLS sent to a
		// plain-text port, or control bytes) as soon as it arrives rather
		// than wait for the line to end.
		if err := checkPartialLine(win); err != nil {
			return err
		}
		if len(win) == lim.MaxLine {
			return fail(414, "request line too long")
		}
		return more()
	}
	next += pos
	if next > len(b) {
		return fail(431, "request header too large")
	}
	if err := req.parseLine(l); err != nil {
		return err
	}

	var f fields
	hs, headLen, err := parseFields(b, next, lim.MaxHeaders, req.Headers, &f)
	req.Headers = hs
	if err == ErrIncomplete {
		return more()
	}
	if err != nil {
		return err
	}
	req.HeadLen = headLen

	// Framing (RFC 9112 §6.1, §6.3).
	req.ContentLength = f.contentLength
	if f.te {
		switch {
		case req.Minor == 0: // §6.1: faulty framing; HAProxy refuses too
			return fail(400, "Transfer-Encoding in HTTP/1.0 request")
		case f.contentLength >= 0: // §6.1: a likely smuggling attempt
			return fail(400, "both Content-Length and Transfer-Encoding")
		case f.teBad || !f.teLastChunked || f.teChunked != 1: // §6.3, §7
			return fail(400, "invalid Transfer-Encoding")
		case f.teOther > 0: // §6.1: codings we do not implement
			return fail(501, "unsupported transfer coding")
		}
		req.Chunked = true
	}

	// Host (RFC 9112 §3.2, §3.2.2).
	switch {
	case f.hosts > 1:
		return fail(400, "duplicate Host")
	case f.hosts == 0 && req.Minor == 1:
		return fail(400, "missing Host")
	case f.hosts == 1 && !validAuthority(f.host):
		return fail(400, "invalid Host")
	}
	req.Host = f.host
	if len(req.Target) > 0 && req.Target[0] != '/' && req.Target[0] != '*' {
		// absolute-form: parseLine checked the authority.
		auth, _ := splitAbsolute(req.Target)
		if f.hosts == 0 {
			req.Host = auth
		} else if !bytes.EqualFold(auth, f.host) {
			return fail(400, "Host differs from request-target authority")
		}
	}

	// RFC 9110 §10.1.1: 417 for an expectation we cannot meet; an HTTP/1.0
	// 100-continue is ignored.
	if f.expectOther {
		return fail(417, "unsupported expectation")
	}
	req.Expect100 = f.expect100 && req.Minor == 1
	req.Close = f.close || req.Minor == 0 && !f.keepAlive
	req.Upgrade = req.Minor == 1 && f.upgradeToken && f.upgrade
	return nil
}

// checkPartialLine refuses the start of a request line that no bytes
// could complete into a valid one: the method, the target and the version
// are checked as far as they have arrived, with the statuses parseLine
// would give.
func checkPartialLine(p []byte) error {
	i := 0
	for i < len(p) && class[p[i]]&cToken != 0 {
		i++
	}
	if i == len(p) {
		return nil
	}
	if i == 0 || p[i] != ' ' {
		return fail(400, "invalid method")
	}
	i++
	start := i
	for i < len(p) && class[p[i]]&cTarget != 0 {
		i++
	}
	if i == len(p) {
		return nil
	}
	if i == start {
		return fail(400, "malformed request line")
	}
	if p[i] != ' ' {
		if p[i] == '\r' { // HTTP/0.9 "GET /"
			return fail(400, "malformed request line")
		}
		return fail(400, "invalid byte in request-target")
	}
	v := p[i+1:]
	const proto = "HTTP/"
	for k := 0; k < len(v) && k < 8; k++ {
		c := v[k]
		ok := k < len(proto) && c == proto[k] ||
			(k == 5 || k == 7) && c >= '0' && c <= '9' ||
			k == 6 && c == '.'
		if !ok {
			return fail(400, "malformed HTTP version")
		}
	}
	if len(v) >= 8 {
		if _, err := parseVersion(v[:8]); err != nil {
			return err
		}
	}
	if len(v) > 8 && (v[8] != '\r' || len(v) > 9) {
		return fail(400, "malformed request line")
	}
	return nil
}

// parseLine parses request-line = method SP request-target SP HTTP-version
// (RFC 9112 §3), single spaces only.
func (req *Request) parseLine(l []byte) error {
	sp := bytes.IndexByte(l, ' ')
	if sp < 0 {
		return fail(400, "malformed request line")
	}
	req.Method, l = l[:sp], l[sp+1:]
	if !isToken(req.Method) {
		return fail(400, "invalid method")
	}
	sp = bytes.IndexByte(l, ' ')
	if sp < 0 { // HTTP/0.9 "GET /"
		return fail(400, "malformed request line")
	}
	req.Target = l[:sp]
	minor, err := parseVersion(l[sp+1:])
	if err != nil {
		return err
	}
	req.Minor = minor
	t := req.Target
	if len(t) == 0 {
		return fail(400, "malformed request line")
	}
	for _, c := range t {
		if class[c]&cTarget == 0 {
			return fail(400, "invalid byte in request-target")
		}
	}
	if string(req.Method) == "CONNECT" {
		return fail(501, "CONNECT not supported")
	}
	switch {
	case t[0] == '/': // origin-form
		req.Path = t
	case len(t) == 1 && t[0] == '*': // asterisk-form, OPTIONS only (§3.2.4)
		if string(req.Method) != "OPTIONS" {
			return fail(400, "asterisk-form target outside OPTIONS")
		}
		req.Path = t
	default: // absolute-form (§3.2.2)
		auth, rest := splitAbsolute(t)
		if auth == nil || !validAuthority(auth) {
			return fail(400, "invalid request-target")
		}
		switch {
		case len(rest) == 0:
			req.Path = slash
		case rest[0] == '/':
			req.Path = rest
		default:
			// "http://h?q": the origin-form "/?q" does not appear in
			// the buffer; such targets are too rare to copy for.
			return fail(400, "absolute-form target without path")
		}
	}
	return nil
}

// splitAbsolute splits an http or https absolute-form target into its
// authority and the rest; auth is nil for any other target.
func splitAbsolute(t []byte) (auth, rest []byte) {
	switch {
	case len(t) >= 7 && eqFold(t[:7], "http://"):
		t = t[7:]
	case len(t) >= 8 && eqFold(t[:8], "https://"):
		t = t[8:]
	default:
		return nil, nil
	}
	i := 0
	for i < len(t) && t[i] != '/' && t[i] != '?' {
		i++
	}
	return t[:i:i], t[i:]
}

// parseVersion parses HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112
// §2.3), case-sensitive: malformed gives 400, any version but 1.0 and 1.1
// gives 505.
func parseVersion(v []byte) (int, error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, fail(400, "malformed HTTP version")
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, fail(505, "unsupported HTTP version")
	}
	return int(v[7] - '0'), nil
}
