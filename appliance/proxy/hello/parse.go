package hello

import (
	"errors"
	"fmt"
	"slices"
)

const (
	recordHandshake    = 22
	handshakeHello     = 1
	handshakeHeaderLen = 4

	extServerName        = 0
	extALPN              = 16
	extPreSharedKey      = 41
	extSupportedVersions = 43

	maxSeenSmall = 32 // extensions checked for duplicates without the bitmap
)

// errFragmented tells Parse that the hello continues past the first record
// and must be gathered into a contiguous buffer.
var errFragmented = errors.New("hello: fragmented")

// Parse parses a ClientHello from the start of b (TLS records, as read from
// the socket; the hello may span several handshake records, up to MaxHello
// bytes of records). It returns (info, nil) when complete; ErrShort when b
// holds a valid prefix and more bytes are needed; any other error (wrapping
// ErrMalformed, ErrTooLong, or ErrNotTLS when the first bytes are not a TLS
// handshake record, e.g. plain HTTP, an SSLv2 hello) when the bytes can
// never become a valid hello. It never panics and never reads past b.
func Parse(b []byte) (Info, error) {
	info, _, err := parse(b)
	return info, err
}

// parse is Parse with a length: on success, where the ClientHello ends in
// b; on ErrShort, the length b must reach before parsing again can tell
// more (the end of the record or record header being read).
func parse(b []byte) (Info, int, error) {
	msg, n, complete, err := gather(b, nil)
	if err == errFragmented {
		return parseFragmented(b)
	}
	if err != nil {
		return Info{}, 0, err
	}
	return parseMsg(msg, n, complete)
}

// parseFragmented gathers a hello split over records into a buffer on the
// stack, kept out of parse's frame so the common single-record case does
// not pay for it.
//
//go:noinline
func parseFragmented(b []byte) (Info, int, error) {
	var buf [MaxHello]byte
	msg, n, complete, err := gather(b, buf[:0])
	if err != nil {
		return Info{}, 0, err
	}
	return parseMsg(msg, n, complete)
}

// gather walks the records at the start of b and collects the bytes of the
// handshake message they carry. With dst nil it returns a sub-slice of the
// first record's payload, or errFragmented once a second record's payload
// is needed; otherwise it appends the payloads to dst. complete reports
// whether msg holds the whole message (header included, nothing after);
// n is as for parse.
func gather(b, dst []byte) (msg []byte, n int, complete bool, err error) {
	msg = dst
	want := -1 // length of the whole handshake message, once its header is in
	off := 0
	for rec := 0; ; rec++ {
		if off+recordHeaderLen+1 > MaxHello {
			return nil, 0, false, tooLong("ClientHello needs more than %d bytes of records", MaxHello)
		}
		h := b[off:min(off+recordHeaderLen, len(b))]
		if len(h) > 0 && h[0] != recordHandshake {
			if rec == 0 {
				return nil, 0, false, notTLS("first byte 0x%02x is not a handshake record (22)", h[0])
			}
			return nil, 0, false, malformed("record %d has content type %d inside the ClientHello, want 22 (handshake)", rec, h[0])
		}
		if len(h) > 1 && h[1] != 3 {
			if rec == 0 {
				return nil, 0, false, notTLS("record version major %d, want 3", h[1])
			}
			return nil, 0, false, malformed("record %d version major %d, want 3", rec, h[1])
		}
		if len(h) > 2 && (h[2] < 1 || h[2] > 3) {
			return nil, 0, false, malformed("record %d version 0x03%02x, want 0x0301..0x0303", rec, h[2])
		}
		if len(h) < recordHeaderLen {
			return msg, off + recordHeaderLen, false, nil
		}
		length := int(h[3])<<8 | int(h[4])
		if length == 0 {
			return nil, 0, false, malformed("record %d is empty", rec)
		}
		if length > maxRecordLen {
			return nil, 0, false, malformed("record %d length %d exceeds %d", rec, length, maxRecordLen)
		}
		start, end := off+recordHeaderLen, off+recordHeaderLen+length
		if end > MaxHello {
			return nil, 0, false, tooLong("record %d ends at byte %d, past %d", rec, end, MaxHello)
		}
		payload := b[start:min(end, len(b))]
		before := len(msg)
		switch {
		case dst != nil:
			msg = append(msg, payload...)
		case rec == 0:
			msg = payload
		case len(payload) > 0:
			return nil, 0, false, errFragmented
		}
		if want < 0 {
			if len(msg) > 0 && msg[0] != handshakeHello {
				return nil, 0, false, malformed("handshake type %d, want 1 (client_hello)", msg[0])
			}
			if len(msg) >= handshakeHeaderLen {
				want = handshakeHeaderLen + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			}
		}
		// If the message continues past this record, the rest needs at
		// least one more record.
		if rest := want - (before + length); want >= 0 && rest > 0 && end+recordHeaderLen+rest > MaxHello {
			return nil, 0, false, tooLong("ClientHello length %d needs more than %d bytes of records", want-handshakeHeaderLen, MaxHello)
		}
		if want >= 0 && len(msg) >= want {
			return msg[:want], start + want - before, true, nil
		}
		if end > len(b) {
			return msg, end, false, nil
		}
		off = end
	}
}

// parseMsg parses the handshake message msg (all of it if complete, else
// the part read so far) and builds the Info.
func parseMsg(msg []byte, n int, complete bool) (Info, int, error) {
	r, err := parseHello(msg)
	if err != nil {
		if err == ErrShort {
			return Info{}, n, ErrShort
		}
		return Info{}, 0, err
	}
	if !complete {
		// Only skipped extension bodies are missing.
		return Info{}, n, ErrShort
	}
	return r.info(), n, nil
}

// raw holds what parse found, as slices of the message, until the hello is
// known to be complete and valid.
type raw struct {
	legacy   uint16
	sni      []byte // host_name, trailing dot stripped; nil if none
	alpn     []byte // the protocol_name_list, without its length
	nalpn    int
	versions []byte // supported_versions list, without its length; nil if absent
	hasVers  bool
}

// field names a part of the hello in errors. Errors name parts by field
// rather than by string so that a span's bytes never reach fmt, which would
// make them escape to the heap.
type field uint8

const (
	fExtension field = iota // an extension's data, named by its type
	fHello
	fVersion
	fRandom
	fSessionIDLen
	fSessionID
	fSuites
	fCompression
	fExtensions
	fExtHeader
	fSNIList
	fNameType
	fName
	fALPNList
	fProto
	fVersList
	fLength field = 0x80 // flag: the length prefix of the field
)

var fieldNames = [...]string{
	fHello:        "ClientHello",
	fVersion:      "legacy_version",
	fRandom:       "random",
	fSessionIDLen: "session id length",
	fSessionID:    "session id",
	fSuites:       "cipher suites",
	fCompression:  "compression methods",
	fExtensions:   "extensions block",
	fExtHeader:    "extension header",
	fSNIList:      "server_name list",
	fNameType:     "name type",
	fName:         "server name",
	fALPNList:     "protocol_name_list",
	fProto:        "protocol name",
	fVersList:     "supported_versions list",
}

func (f field) String() string {
	if f&fLength != 0 {
		return fieldNames[f&^fLength] + " length"
	}
	return fieldNames[f]
}

// span is a length-delimited container: b holds the part of it available
// so far (a prefix of its n declared bytes), off is the read position.
// Reads beyond n are malformed; reads within n but beyond b are ErrShort.
type span struct {
	b    []byte
	n    int
	off  int
	name field
	ext  int // extension type when name is fExtension
}

func (s *span) left() int { return s.n - s.off }

func (s *span) label() string {
	if s.name == fExtension {
		return extLabel(s.ext)
	}
	return s.name.String()
}

// take returns the next k bytes.
func (s *span) take(k int, what field) ([]byte, error) {
	if k > s.left() {
		return nil, malformed("%s needs %d bytes, %s has %d left", what, k, s.label(), s.left())
	}
	if s.off+k > len(s.b) {
		s.off += k
		return nil, ErrShort
	}
	p := s.b[s.off : s.off+k]
	s.off += k
	return p, nil
}

// num reads a k-byte big-endian number.
func (s *span) num(k int, what field) (int, error) {
	p, err := s.take(k, what)
	if err != nil {
		return 0, err
	}
	v := 0
	for _, c := range p {
		v = v<<8 | int(c)
	}
	return v, nil
}

// sub returns the next l bytes as a span, whether or not they are in yet.
func (s *span) sub(l int, name field, ext int) (span, error) {
	if l > s.left() {
		what := name.String()
		if name == fExtension {
			what = extLabel(ext)
		}
		return span{}, malformed("%s length %d exceeds %s (%d left)", what, l, s.label(), s.left())
	}
	lo, hi := min(s.off, len(s.b)), min(s.off+l, len(s.b))
	s.off += l
	return span{b: s.b[lo:hi], n: l, name: name, ext: ext}, nil
}

// vec reads a k-byte length and returns that many bytes as a span.
func (s *span) vec(k int, name field) (span, error) {
	l, err := s.num(k, name|fLength)
	if err != nil {
		return span{}, err
	}
	return s.sub(l, name, 0)
}

// all returns the whole of a span, from its start.
func (s *span) all() ([]byte, error) {
	if len(s.b) < s.n {
		return nil, ErrShort
	}
	return s.b, nil
}

// end fails when a span that a list must fill has bytes left.
func (s *span) end(what field) error {
	if s.off != s.n {
		return malformed("%s has %d bytes after %s", s.label(), s.n-s.off, what)
	}
	return nil
}

// parseHello checks the ClientHello msg, handshake header included. (The
// parsers return what they find rather than store it through a pointer:
// that would make the message escape to the heap.)
func parseHello(msg []byte) (raw, error) {
	if len(msg) < handshakeHeaderLen {
		return raw{}, ErrShort
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	body := msg[handshakeHeaderLen:]
	s := span{b: body[:min(n, len(body))], n: n, name: fHello}
	v, err := s.num(2, fVersion)
	if err != nil {
		return raw{}, err
	}
	if v>>8 != 3 || v&0xff == 0 {
		return raw{}, malformed("legacy_version 0x%04x, want 0x0301 or later", v)
	}
	if _, err := s.take(32, fRandom); err != nil {
		return raw{}, err
	}
	l, err := s.num(1, fSessionIDLen)
	if err != nil {
		return raw{}, err
	}
	if l > 32 {
		return raw{}, malformed("session id length %d exceeds 32", l)
	}
	if _, err := s.take(l, fSessionID); err != nil {
		return raw{}, err
	}
	cs, err := s.vec(2, fSuites)
	if err != nil {
		return raw{}, err
	}
	if cs.n == 0 || cs.n%2 != 0 {
		return raw{}, malformed("cipher suites length %d, want even and at least 2", cs.n)
	}
	cm, err := s.vec(1, fCompression)
	if err != nil {
		return raw{}, err
	}
	if cm.n == 0 {
		return raw{}, malformed("no compression methods")
	}
	if s.left() == 0 {
		return raw{legacy: uint16(v)}, nil // a TLS 1.2 hello may end without extensions
	}
	exts, err := s.vec(2, fExtensions)
	if err != nil {
		return raw{}, err
	}
	if err := s.end(fExtensions); err != nil {
		return raw{}, err
	}
	r, err := extensions(&exts)
	r.legacy = uint16(v)
	return r, err
}

// extensions checks the extensions block and parses the ones routing needs.
func extensions(exts *span) (raw, error) {
	var r raw
	var seen [maxSeenSmall]uint16
	count, psk, short := 0, false, false
	for exts.left() > 0 && !short {
		h, err := exts.take(4, fExtHeader)
		if err == ErrShort {
			short = true
			break
		}
		if err != nil {
			return raw{}, err
		}
		typ, l := int(h[0])<<8|int(h[1]), int(h[2])<<8|int(h[3])
		if psk {
			return raw{}, malformed("%s after pre_shared_key, which must be last", extLabel(typ))
		}
		if count < len(seen) {
			if slices.Contains(seen[:count], uint16(typ)) {
				return raw{}, malformed("duplicate %s", extLabel(typ))
			}
			seen[count] = uint16(typ)
		}
		count++
		if typ != extServerName && typ != extALPN && typ != extSupportedVersions {
			// Only skipped: no need for its bytes to be in.
			if l > exts.left() {
				return raw{}, malformed("%s length %d exceeds extensions block (%d left)", extLabel(typ), l, exts.left())
			}
			exts.off += l
			psk = typ == extPreSharedKey
			continue
		}
		data, err := exts.sub(l, fExtension, typ)
		if err != nil {
			return raw{}, err
		}
		switch typ {
		case extServerName:
			r.sni, err = serverName(&data)
		case extALPN:
			r.alpn, r.nalpn, err = protocols(&data)
		case extSupportedVersions:
			r.versions, err = supportedVersions(&data)
			r.hasVers = err == nil
		}
		short = err == ErrShort
		if err != nil && !short {
			return raw{}, err
		}
	}
	// Beyond the first extensions, which seen holds, check for duplicates
	// among all those whose header is in.
	if count > len(seen) {
		if err := duplicates(exts.b, count); err != nil {
			return raw{}, err
		}
	}
	if short {
		return raw{}, ErrShort
	}
	return r, nil
}

// duplicates checks the first count extension headers in block (all of
// which are in and within it) for a repeated type, with a bitmap of all
// 65536 types: hellos with this many extensions are rare, and a pairwise
// check over thousands of them would be quadratic.
//
//go:noinline
func duplicates(block []byte, count int) error {
	var seen [1 << 16 / 64]uint64
	off := 0
	for range count {
		typ := int(block[off])<<8 | int(block[off+1])
		if seen[typ/64]&(1<<(typ%64)) != 0 {
			return malformed("duplicate %s", extLabel(typ))
		}
		seen[typ/64] |= 1 << (typ % 64)
		off += 4 + (int(block[off+2])<<8 | int(block[off+3]))
	}
	return nil
}

// serverName parses the server_name extension (RFC 6066 3).
func serverName(s *span) (sni []byte, err error) {
	list, err := s.vec(2, fSNIList)
	if err != nil {
		return nil, err
	}
	if err := s.end(fSNIList); err != nil {
		return nil, err
	}
	if list.n == 0 {
		return nil, malformed("server_name list is empty")
	}
	for list.left() > 0 {
		typ, err := list.num(1, fNameType)
		if err != nil {
			return nil, err
		}
		name, err := list.vec(2, fName)
		if err != nil {
			return nil, err
		}
		if name.n == 0 {
			return nil, malformed("empty server name (type %d)", typ)
		}
		if typ != 0 {
			continue
		}
		if sni != nil {
			return nil, malformed("second host_name in server_name")
		}
		p, err := name.all()
		if err != nil {
			return nil, err
		}
		if sni, err = checkName(p); err != nil {
			return nil, err
		}
	}
	return sni, nil
}

// checkName validates a host_name and strips one trailing dot.
func checkName(p []byte) ([]byte, error) {
	if p[len(p)-1] == '.' {
		p = p[:len(p)-1]
	}
	if len(p) == 0 {
		return nil, malformed("host_name is only a dot")
	}
	if len(p) > maxNameLen {
		return nil, malformed("host_name is %d bytes, longer than %d", len(p), maxNameLen)
	}
	prev := byte('.')
	for i, c := range p {
		switch {
		case c == 0:
			return nil, malformed("host_name has NUL at byte %d", i)
		case c == '.':
			if prev == '.' {
				return nil, malformed("host_name has an empty label at byte %d", i)
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return nil, malformed("host_name byte %d is 0x%02x, not a letter, digit, '-', '_' or '.'", i, c)
		}
		prev = c
	}
	if prev == '.' {
		return nil, malformed("host_name ends in an empty label")
	}
	return p, nil
}

// protocols parses the ALPN extension (RFC 7301 3.1).
func protocols(s *span) ([]byte, int, error) {
	list, err := s.vec(2, fALPNList)
	if err != nil {
		return nil, 0, err
	}
	if err := s.end(fALPNList); err != nil {
		return nil, 0, err
	}
	if list.n == 0 {
		return nil, 0, malformed("ALPN protocol_name_list is empty")
	}
	n := 0
	for list.left() > 0 {
		name, err := list.vec(1, fProto)
		if err != nil {
			return nil, 0, err
		}
		if name.n == 0 {
			return nil, 0, malformed("empty ALPN protocol name")
		}
		n++
	}
	all, err := list.all()
	if err != nil {
		return nil, 0, err
	}
	return all, n, nil
}

// supportedVersions parses the supported_versions extension of a
// ClientHello (RFC 8446 4.2.1).
func supportedVersions(s *span) ([]byte, error) {
	list, err := s.vec(1, fVersList)
	if err != nil {
		return nil, err
	}
	if err := s.end(fVersList); err != nil {
		return nil, err
	}
	if list.n < 2 || list.n%2 != 0 {
		return nil, malformed("supported_versions list length %d, want even and at least 2", list.n)
	}
	return list.all()
}

// isGREASE reports whether v is one of the RFC 8701 reserved values
// 0x0a0a, 0x1a1a, ..., 0xfafa.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// info builds the Info; these are Parse's only allocations.
func (r *raw) info() Info {
	var info Info
	if r.sni != nil {
		var lower [maxNameLen]byte
		for i, c := range r.sni {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		info.SNI = string(lower[:len(r.sni)])
	}
	if r.nalpn > 0 {
		all := string(r.alpn) // one allocation; the names are slices of it
		info.ALPN = make([]string, 0, r.nalpn)
		for i := 0; i < len(all); {
			l := int(all[i])
			info.ALPN = append(info.ALPN, all[i+1:i+1+l])
			i += 1 + l
		}
	}
	if !r.hasVers {
		info.Versions = []uint16{r.legacy}
		return info
	}
	n := 0
	for i := 0; i < len(r.versions); i += 2 {
		if !isGREASE(uint16(r.versions[i])<<8 | uint16(r.versions[i+1])) {
			n++
		}
	}
	if n > 0 {
		info.Versions = make([]uint16, 0, n)
		for i := 0; i < len(r.versions); i += 2 {
			if v := uint16(r.versions[i])<<8 | uint16(r.versions[i+1]); !isGREASE(v) {
				info.Versions = append(info.Versions, v)
			}
		}
	}
	return info
}

// extLabel names an extension in errors.
func extLabel(typ int) string {
	name := "unknown"
	switch {
	case typ == extServerName:
		name = "server_name"
	case typ == extALPN:
		name = "application_layer_protocol_negotiation"
	case typ == extPreSharedKey:
		name = "pre_shared_key"
	case typ == extSupportedVersions:
		name = "supported_versions"
	case isGREASE(uint16(typ)):
		name = "GREASE"
	}
	return fmt.Sprintf("extension %d (%s)", typ, name)
}
