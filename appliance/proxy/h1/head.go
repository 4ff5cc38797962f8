package h1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
)

// ErrIncomplete reports that the buffer holds no complete head yet and no
// limit is exceeded: read more and parse the longer buffer again.
var ErrIncomplete = errors.New("h1: incomplete head")

// Error is a message the proxy must refuse: for a request it answers Status
// (400, 414, 417, 431, 501 or 505) and closes the connection; for a
// response Status is 502.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "h1: " + strconv.Itoa(e.Status) + ": " + e.Reason }

func fail(status int, reason string) error { return &Error{Status: status, Reason: reason} }

// Limits bound a head. A zero or negative field takes its DefaultLimits
// value.
type Limits struct {
	// MaxLine bounds the request line or status line, line end included
	// (default 8192). A longer request line is refused with 414 as soon as
	// MaxLine bytes of it arrived.
	MaxLine int
	// MaxHeaderBytes bounds the whole head: leading empty lines, start
	// line, field lines and the empty line ending it (default 16384). A
	// longer head is refused with 431 as soon as that many bytes arrived.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of field lines (default 100); more
	// give 431.
	MaxHeaders int
}

// DefaultLimits match HAProxy's defaults: a 16 kB buffer (tune.bufsize) and
// about 100 fields (tune.http.maxhdr 101).
var DefaultLimits = Limits{MaxLine: 8192, MaxHeaderBytes: 16384, MaxHeaders: 100}

func (l Limits) orDefault() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultLimits.MaxLine
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultLimits.MaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultLimits.MaxHeaders
	}
	return l
}

// Header is one field line; Name and Value alias the parsed buffer and Value
// has its surrounding OWS removed.
type Header struct{ Name, Value []byte }

// Byte classes.
const (
	cToken  = 1 << iota // tchar (RFC 9110 §5.6.2)
	cValue              // field-vchar, SP, HTAB (RFC 9110 §5.5)
	cTarget             // request-target byte: visible ASCII but '#'
	cHost               // reg-name byte (RFC 3986 §3.2.2) but '%'
	cHex                // HEXDIG
)

var class [256]uint8

func init() {
	set := func(bits uint8, chars string) {
		for i := 0; i < len(chars); i++ {
			class[chars[i]] |= bits
		}
	}
	const alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	set(cToken, alnum+"!#$%&'*+-.^_`|~")
	set(cHost, alnum+"-._~"+"!$&'()*+,;=")
	set(cHex, "0123456789abcdefABCDEF")
	for c := 0; c < 256; c++ {
		if c == '\t' || c >= ' ' && c != 0x7f {
			class[c] |= cValue
		}
		if c > ' ' && c < 0x7f && c != '#' {
			class[c] |= cTarget
		}
	}
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if class[c]&cToken == 0 {
			return false
		}
	}
	return true
}

// eqFold reports whether b equals s ignoring ASCII case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nextElem splits the first element off a comma-separated list (RFC 9110
// §5.6.1), OWS trimmed.
func nextElem(list []byte) (elem, rest []byte) {
	if i := bytes.IndexByte(list, ','); i >= 0 {
		return trimOWS(list[:i]), list[i+1:]
	}
	return trimOWS(list), nil
}

// HasToken reports whether the comma-separated header value lists token,
// ignoring ASCII case: HasToken("keep-alive, Upgrade", "upgrade") is true.
func HasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var e []byte
		e, value = nextElem(value)
		if eqFold(e, token) {
			return true
		}
	}
	return false
}

// line returns the line starting at b[pos:] without its line end, and the
// offset after it; ok is false when no LF has arrived. A CR left inside the
// line is a bare CR, which every caller refuses through its byte class.
func line(b []byte, pos int) (l []byte, next int, ok bool) {
	i := bytes.IndexByte(b[pos:], '\n')
	if i < 0 {
		return nil, 0, false
	}
	l = b[pos : pos+i]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, pos + i + 1, true
}

// validValue reports whether v holds only field-vchar, obs-text, SP and
// HTAB (RFC 9110 §5.5). It checks eight bytes at a time for a byte below
// 0x20 or equal to 0x7f, and byte by byte from the first word holding one
// (HTAB is such a byte, and allowed).
func validValue(v []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		del := x ^ 0x7f*ones
		if (x-0x20*ones)&^x&highs != 0 || (del-ones)&^del&highs != 0 {
			break
		}
	}
	for ; i < len(v); i++ {
		if class[v[i]]&cValue == 0 {
			return false
		}
	}
	return true
}

// fields gathers the fields that decide framing, routing and the fate of the
// connection while the field lines are parsed.
type fields struct {
	contentLength int64 // -1 when absent
	te            bool  // a Transfer-Encoding field was seen
	teChunked     int   // chunked codings listed
	teOther       int   // other codings listed
	teLastChunked bool  // the final coding is chunked
	teBad         bool  // an empty or malformed coding
	close         bool  // Connection lists close
	keepAlive     bool  // Connection lists keep-alive
	upgradeToken  bool  // Connection lists upgrade
	upgrade       bool  // an Upgrade field was seen
	hosts         int
	host          []byte
	expect100     bool
	expectOther   bool
}

// parseFields parses the field lines of b from pos through the empty line
// that ends the head and returns the head's length. It returns ErrIncomplete
// when b ends first. Status codes are the request's; ParseResponse maps
// them.
func parseFields(b []byte, pos, maxHeaders int, hs []Header, f *fields) ([]Header, int, error) {
	*f = fields{contentLength: -1}
	for {
		l, next, ok := line(b, pos)
		if !ok {
			return hs, 0, ErrIncomplete
		}
		if len(l) == 0 {
			return hs, next, nil
		}
		if len(hs) == maxHeaders {
			return hs, 0, fail(431, "too many header fields")
		}
		// obs-fold, and whitespace before the first field (RFC 9112 §2.2,
		// §5.2): refused.
		if l[0] == ' ' || l[0] == '\t' {
			return hs, 0, fail(400, "line folding or leading whitespace")
		}
		// field-name ":" OWS field-value OWS; no whitespace before the
		// colon (RFC 9112 §5.1).
		i := 0
		for i < len(l) && class[l[i]]&cToken != 0 {
			i++
		}
		if i == 0 || i == len(l) || l[i] != ':' {
			return hs, 0, fail(400, "invalid header field name")
		}
		name, value := l[:i], l[i+1:]
		if !validValue(value) {
			return hs, 0, fail(400, "invalid byte in header field value")
		}
		value = trimOWS(value)
		hs = append(hs, Header{Name: name, Value: value})
		if err := f.note(name, value); err != nil {
			return hs, 0, err
		}
		pos = next
	}
}

func (f *fields) note(name, value []byte) error {
	switch len(name) {
	case 4:
		if eqFold(name, "host") {
			f.hosts++
			f.host = value
		}
	case 6:
		if eqFold(name, "expect") {
			if eqFold(value, "100-continue") {
				f.expect100 = true
			} else {
				f.expectOther = true
			}
		}
	case 7:
		if eqFold(name, "upgrade") {
			f.upgrade = true
		}
	case 10:
		if eqFold(name, "connection") {
			f.close = f.close || HasToken(value, "close")
			f.keepAlive = f.keepAlive || HasToken(value, "keep-alive")
			f.upgradeToken = f.upgradeToken || HasToken(value, "upgrade")
		}
	case 14:
		if eqFold(name, "content-length") {
			n, ok := parseContentLength(value)
			if !ok {
				return fail(400, "invalid Content-Length")
			}
			if f.contentLength >= 0 && f.contentLength != n {
				return fail(400, "conflicting Content-Length")
			}
			f.contentLength = n
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			f.te = true
			for rest := value; ; {
				var e []byte
				e, rest = nextElem(rest)
				switch {
				case !isToken(e): // empty, or a coding with parameters
					f.teBad = true
				case eqFold(e, "chunked"):
					f.teChunked++
					f.teLastChunked = true
				default:
					f.teOther++
					f.teLastChunked = false
				}
				if rest == nil {
					break
				}
			}
		}
	}
	return nil
}

// maxContentLength bounds Content-Length and chunk sizes.
const maxContentLength = 1 << 62

// parseContentLength parses 1#DIGIT whose elements are all equal: RFC 9112
// §6.3 lets a recipient take "5, 5" as 5. No sign, no inner whitespace.
func parseContentLength(v []byte) (int64, bool) {
	n := int64(-1)
	for {
		var e []byte
		e, v = nextElem(v)
		if len(e) == 0 {
			return 0, false
		}
		var x int64
		for _, c := range e {
			d := int64(c) - '0'
			if d < 0 || d > 9 || x > (maxContentLength-d)/10 {
				return 0, false
			}
			x = x*10 + d
		}
		if n >= 0 && x != n {
			return 0, false
		}
		n = x
		if v == nil {
			return n, true
		}
	}
}

// validAuthority reports whether a is host [":" port] (RFC 3986 §3.2)
// without userinfo, host being a non-empty reg-name, an IPv4 address or a
// bracketed IPv6 address. RFC 9110 §4.2.1 forbids an empty host for http.
func validAuthority(a []byte) bool {
	var port []byte
	hasPort := false
	if len(a) > 0 && a[0] == '[' {
		i := bytes.IndexByte(a, ']')
		if i < 0 || !validIPv6(a[1:i]) {
			return false
		}
		if rest := a[i+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host := a
		if i := bytes.IndexByte(a, ':'); i >= 0 {
			host, port, hasPort = a[:i], a[i+1:], true
		}
		if len(host) == 0 {
			return false
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if c == '%' { // pct-encoded
				if i+2 >= len(host) || class[host[i+1]]&cHex == 0 || class[host[i+2]]&cHex == 0 {
					return false
				}
				i += 2
				continue
			}
			if class[c]&cHost == 0 {
				return false
			}
		}
	}
	if hasPort {
		// port = *DIGIT; at most five digits.
		if len(port) > 5 {
			return false
		}
		for _, c := range port {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// validIPv6 reports whether s is an RFC 3986 IPv6address (no zone, no
// IPvFuture).
func validIPv6(s []byte) bool {
	groups, ellipsis := 0, false
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, s = true, s[2:]
		if len(s) == 0 {
			return true
		}
	}
	for {
		i := bytes.IndexByte(s, ':')
		if i < 0 { // the last piece: h16 or an IPv4 address
			switch {
			case validH16(s):
				groups++
			case validIPv4(s):
				groups += 2
			default:
				return false
			}
			break
		}
		if !validH16(s[:i]) {
			return false
		}
		groups++
		s = s[i+1:]
		if len(s) > 0 && s[0] == ':' {
			if ellipsis {
				return false
			}
			ellipsis, s = true, s[1:]
			if len(s) == 0 {
				break
			}
		} else if len(s) == 0 {
			return false
		}
	}
	if ellipsis {
		return groups <= 7 // "::" stands for at least one group
	}
	return groups == 8
}

func validH16(s []byte) bool {
	if len(s) == 0 || len(s) > 4 {
		return false
	}
	for _, c := range s {
		if class[c]&cHex == 0 {
			return false
		}
	}
	return true
}

// validIPv4 reports whether s is four dec-octets without leading zeros.
func validIPv4(s []byte) bool {
	for part := 0; part < 4; part++ {
		if part > 0 {
			if len(s) == 0 || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
		n, i := 0, 0
		for i < len(s) && i < 4 && '0' <= s[i] && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			i++
		}
		if i == 0 || i > 3 || n > 255 || i > 1 && s[0] == '0' {
			return false
		}
		s = s[i:]
	}
	return len(s) == 0
}
