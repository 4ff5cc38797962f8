package logs

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line (access or daemon message, without any
// syslog or file prefix) in bytes. A longer access line loses the end of
// its request line (the closing quote stays); a longer daemon message is
// cut at a character boundary.
const MaxLine = 8192

// stamp is a timestamp's text to the second, kept while the second lasts
// (formatting is most of an access line's cost).
type stamp struct {
	sec        int64
	date, zone string
}

var acceptStamp, rfc3339Stamp atomic.Pointer[stamp]

// appendAcceptDate appends HAProxy's %t/%tr date: local time with
// milliseconds, 05/Dec/2026:09:00:00.123.
func appendAcceptDate(b []byte, t time.Time) []byte {
	sec := t.Unix()
	st := acceptStamp.Load()
	if st == nil || st.sec != sec {
		st = &stamp{sec: sec, date: t.Local().Format("02/Jan/2006:15:04:05")}
		acceptStamp.Store(st)
	}
	b = append(b, st.date...)
	return appendFrac(b, t.Nanosecond()/1e6, 3)
}

// appendRFC3339Micro appends t as RFC 3339 with microseconds, in local
// time with its offset (Z for UTC): 2026-12-05T09:00:00.123456Z.
func appendRFC3339Micro(b []byte, t time.Time) []byte {
	sec := t.Unix()
	st := rfc3339Stamp.Load()
	if st == nil || st.sec != sec {
		l := t.Local()
		st = &stamp{sec: sec, date: l.Format("2006-01-02T15:04:05"), zone: l.Format("Z07:00")}
		rfc3339Stamp.Store(st)
	}
	b = append(b, st.date...)
	b = appendFrac(b, t.Nanosecond()/1e3, 6)
	return append(b, st.zone...)
}

// appendFrac appends '.' and v in digits digits, zero-padded.
func appendFrac(b []byte, v, digits int) []byte {
	b = append(b, '.')
	for d := digits - 1; d >= 0; d-- {
		p := 1
		for range d {
			p *= 10
		}
		b = append(b, byte('0'+v/p%10))
	}
	return b
}

// appendAccess appends the access line of r: HAProxy's "option httplog"
// shape for an http record, "option tcplog" for a tcp one. Fields HAProxy
// has and halb does not know (connection counts, queue positions) are "-",
// so that every field sits at the position it has in HAProxy's line.
// docs/logging.md describes every field.
func appendAccess(b []byte, r *Access) []byte {
	start := len(b)
	// The TLS fields end the line; the request line is cut to leave them
	// room.
	var tlsBuf [128]byte
	tlsPart := appendTLS(tlsBuf[:0], r)
	b = appendClient(b, r.Client)
	b = append(b, " ["...)
	b = appendAcceptDate(b, r.Start)
	b = append(b, "] "...)
	b = appendName(b, r.Service)
	b = append(b, ' ')
	if r.Backend == "" {
		// HAProxy names the frontend when no backend was chosen.
		b = appendName(b, r.Service)
	} else {
		b = appendName(b, r.Backend)
	}
	b = append(b, '/')
	if r.Server == "" {
		b = append(b, "<NOSRV>"...)
	} else {
		b = appendName(b, r.Server)
	}
	b = append(b, ' ')
	if r.HTTP {
		b = appendMillis(b, r.Request)
		b = append(b, '/')
	}
	b = appendMillis(b, r.Queue)
	b = append(b, '/')
	b = appendMillis(b, r.Connect)
	b = append(b, '/')
	if r.HTTP {
		b = appendMillis(b, r.Response)
		b = append(b, '/')
	}
	b = appendMillis(b, r.Total)
	b = append(b, ' ')
	if r.HTTP {
		if r.Status <= 0 {
			b = append(b, "-1"...)
		} else {
			b = strconv.AppendInt(b, int64(r.Status), 10)
		}
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, r.BytesOut, 10)
	b = append(b, ' ')
	if r.HTTP {
		// No cookie capture: HAProxy's "-" for each captured cookie.
		b = append(b, "- - "...)
	}
	b = append(b, termChar(r.Termination[0]), termChar(r.Termination[1]))
	if r.HTTP {
		// Persistence-cookie flags: not reported ("-", as HAProxy without
		// a cookie in its configuration).
		b = append(b, "--"...)
	}
	// actconn/feconn/beconn/srv_conn/retries and srv_queue/backend_queue.
	b = append(b, " -/-/-/-/"...)
	if r.Redispatched {
		b = append(b, '+')
	}
	b = strconv.AppendInt(b, int64(r.Retries), 10)
	b = append(b, " -/-"...)
	if !r.HTTP {
		return append(b, tlsPart...)
	}
	// The Host header, as HAProxy's "capture request header Host" shows it.
	b = append(b, " {"...)
	b, _ = appendEscaped(b, r.Host, true, start+MaxLine/2)
	b = append(b, "} \""...)
	if r.Method == "" {
		b = append(b, "<BADREQ>"...)
	} else {
		// Cut at MaxLine, leaving room for the closing quote.
		limit := start + MaxLine - 1 - len(tlsPart)
		for i, part := range [3]string{r.Method, r.Path, r.Proto} {
			if part == "" {
				continue
			}
			if i > 0 {
				if len(b)+1 > limit {
					break
				}
				b = append(b, ' ')
			}
			var whole bool
			if b, whole = appendEscaped(b, part, false, limit); !whole {
				break
			}
		}
	}
	return append(append(b, '"'), tlsPart...)
}

// appendTLS appends, for a TLS connection, " version/cipher/sni/Th" (sni
// "-" when none, escaped as a header field and cut at 255 bytes; Th in ms).
// A connection routed by its SNI without termination has "-/-/sni/-1".
func appendTLS(b []byte, r *Access) []byte {
	if r.TLSVersion == "" && r.SNI == "" {
		return b
	}
	dash := func(b []byte, s string) []byte {
		if s == "" {
			return append(b, '-')
		}
		return append(b, s...)
	}
	b = append(b, ' ')
	b = dash(b, r.TLSVersion)
	b = append(b, '/')
	b = dash(b, r.TLSCipher)
	b = append(b, '/')
	if r.SNI == "" {
		b = append(b, '-')
	} else {
		b, _ = appendEscaped(b, r.SNI, true, len(b)+255)
	}
	b = append(b, '/')
	return appendMillis(b, r.Handshake)
}

// appendClient appends ip:port as HAProxy does (an IPv6 address without
// brackets); an IPv4-mapped IPv6 address is shown as IPv4.
func appendClient(b []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(b, "-:-"...)
	}
	b = ap.Addr().Unmap().AppendTo(b)
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

// appendMillis appends d in whole milliseconds, -1 for a negative d (a
// stage never reached).
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		return append(b, "-1"...)
	}
	return strconv.AppendInt(b, d.Milliseconds(), 10)
}

// termChar is one termination-state character: a letter (HAProxy's
// codes are letters), or '-' for anything else (unset, normal).
func termChar(c byte) byte {
	if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
		return c
	}
	return '-'
}

// appendName appends a service, backend or server name: config names are
// plain, but a space or control byte would shift the fields, so any is
// escaped as #XX; an empty name is "-".
func appendName(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	b, _ = appendEscaped(b, s, true, len(b)+MaxLine/4)
	return b
}

const hexDigits = "0123456789ABCDEF"

// appendEscaped appends s with HAProxy's escaping of logged strings
// (configuration.txt 8.6): bytes outside 32..126, '#' and '"' become #XX;
// in a header (hdr), '{', '|', '}' and the space too. It stops before b
// would grow beyond limit, never inside an escape, and reports whether s
// went in whole.
func appendEscaped(b []byte, s string, hdr bool, limit int) ([]byte, bool) {
	esc := &escRequest
	if hdr {
		esc = &escHeader
	}
	run := 0 // start of the bytes not yet appended
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !esc[c] {
			continue
		}
		if len(b)+i-run+3 > limit {
			return appendCut(b, s[run:i], limit), false
		}
		b = append(b, s[run:i]...)
		b = append(b, '#', hexDigits[c>>4], hexDigits[c&15])
		run = i + 1
	}
	if len(b)+len(s)-run > limit {
		return appendCut(b, s[run:], limit), false
	}
	return append(b, s[run:]...), true
}

// appendCut appends as much of plain (nothing in it to escape) as fits
// before limit.
func appendCut(b []byte, plain string, limit int) []byte {
	return append(b, plain[:max(0, min(len(plain), limit-len(b)))]...)
}

// escRequest and escHeader are the bytes appendEscaped escapes.
var escRequest, escHeader = func() (r, h [256]bool) {
	for c := range 256 {
		r[c] = c < 32 || c > 126 || c == '#' || c == '"'
		h[c] = r[c] || c == '{' || c == '|' || c == '}' || c == ' '
	}
	return r, h
}()

// severity is a syslog severity (RFC 5424 6.2.1).
type severity uint8

const (
	sevErr     severity = 3
	sevWarning severity = 4
	sevInfo    severity = 6
	sevDebug   severity = 7
)

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func (s severity) String() string { return severityNames[s&7] }

// stream is what a line is: an access record or a daemon message.
type stream uint8

const (
	streamAccess stream = iota
	streamDaemon
)

func (s stream) String() string {
	if s == streamDaemon {
		return "daemon"
	}
	return "access"
}

// appendSyslog appends an RFC 5424 message without framing:
// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG. The MSG is cut so
// that the whole message is at most max bytes (max 0: no limit). MSG is
// sent without a BOM (RFC 5424 MSG-ANY).
func appendSyslog(b []byte, facility int, e *entry, host, app, procid string, max int) []byte {
	start := len(b)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(facility*8+int(e.sev)), 10)
	b = append(b, ">1 "...)
	b = appendRFC3339Micro(b, time.Unix(0, e.at))
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, app...)
	b = append(b, ' ')
	b = append(b, procid...)
	b = append(b, ' ')
	b = append(b, e.stream.String()...)
	b = append(b, " - "...)
	msg := e.line
	if max > 0 && len(b)-start+len(msg) > max {
		msg = cutUTF8(msg, max-(len(b)-start))
	}
	return append(b, msg...)
}

// appendFileLine appends a file target's line: TIMESTAMP HOSTNAME access:
// LINE, or TIMESTAMP HOSTNAME daemon.SEVERITY: MESSAGE, and a newline (the
// shape rsyslog's RSYSLOG_FileFormat gives a received message).
func appendFileLine(b []byte, e *entry, host string) []byte {
	b = appendRFC3339Micro(b, time.Unix(0, e.at))
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, e.stream.String()...)
	if e.stream == streamDaemon {
		b = append(b, '.')
		b = append(b, e.sev.String()...)
	}
	b = append(b, ": "...)
	b = append(b, e.line...)
	return append(b, '\n')
}

// cutUTF8 returns the longest prefix of b of at most n bytes that does not
// end inside a UTF-8 sequence.
func cutUTF8(b []byte, n int) []byte {
	if n <= 0 {
		return b[:0]
	}
	if len(b) <= n {
		return b
	}
	i := n
	// Back up over continuation bytes to the start of the cut rune.
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(b[i]) {
		i--
	}
	return b[:i]
}

// syslogHeaderField returns s as an RFC 5424 header field: printable
// US-ASCII only, at most max bytes, "-" when empty.
func syslogHeaderField(s string, max int) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < max; i++ {
		if c := s[i]; c > 32 && c < 127 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}
