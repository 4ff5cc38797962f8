// Package hello reads the TLS ClientHello a client sends first, so that a
// tcp-mode service can pick a backend by the server name (SNI) without
// terminating TLS: halb's equivalent of HAProxy's req.ssl_sni with
// tcp-request inspect-delay. Read takes the hello off the client socket and
// returns every byte it read, which the proxy replays to the chosen backend
// before tunnelling.
//
// The bytes come from anyone who can connect, so Parse is strict, bounded
// and allocation-free apart from the strings and slices of the Info:
//
//   - Records (RFC 8446 5.1, RFC 5246 6.2.1): content type 22 (handshake)
//     only, version 0x0301..0x0303, length 1..16384. A first byte other than
//     22 (plain HTTP, an SSLv2 hello whose first byte has the high bit set)
//     or a major version other than 3 is ErrNotTLS, so the caller can tell
//     a client speaking something else from a broken TLS client. A record
//     of another type before the hello is complete is malformed: handshake
//     messages are not interleaved with other records.
//   - The handshake message may be split over several records, as RFC 8446
//     5.1 allows; it must be a ClientHello (type 1). Handshake bytes after
//     the ClientHello in its last record, and any record after it, are
//     ignored: a client should send nothing more before the ServerHello, but
//     those bytes are the backend's to judge, and Read returns them for
//     replay.
//   - The ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2): legacy_version
//     0x0301 or later (SSLv3 is refused, RFC 7568), session id at most 32
//     bytes, cipher suites non-empty and even, compression methods
//     non-empty, and if the hello does not end there an extensions block
//     that fills it exactly. Each extension lies within the block, no type
//     appears twice (RFC 8446 4.2) and pre_shared_key, if present, is last.
//     Every length is checked against its container before anything is
//     read, so a length that overruns is an error naming both, e.g.
//     "hello: extension 0 (server_name) length 40 exceeds extensions block
//     (12 left)".
//   - server_name (RFC 6066 3): a non-empty list whose entries are all
//     non-empty, with at most one host_name (name types other than
//     host_name are skipped, as Go's crypto/tls does). One trailing dot is
//     stripped; the name must then be 1..253 bytes of ASCII letters,
//     digits, '-', '_' and '.' with no empty label. Internationalized names
//     travel as A-labels ("xn--..."), so non-ASCII bytes, NUL, spaces and
//     control bytes are refused. Info.SNI is the name lower-cased.
//   - application_layer_protocol_negotiation (RFC 7301 3.1): a non-empty
//     list of non-empty names, which must fill the extension; the names are
//     opaque bytes and reported as sent.
//   - supported_versions (RFC 8446 4.2.1): an even length of 2..254 bytes
//     filling the extension. GREASE values (RFC 8701) are left out of
//     Info.Versions: they never name a version.
//
// Parse returns ErrShort only while the bytes seen so far can still begin a
// valid hello, and it checks everything it has: a bad length early in the
// first record is an error as soon as it is in, not when the rest arrives
// (a host name is checked once all of it is in). A hello whose length
// cannot fit in MaxHello bytes of records is ErrTooLong as soon as its
// handshake header is in, so Parse never needs more than MaxHello bytes to
// decide.
//
// Test, fuzz and benchmark with:
//
//	go test -race ./appliance/proxy/hello
//	go test -run X -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 200x ./appliance/proxy/hello
//	go test -run X -bench . -benchmem ./appliance/proxy/hello
//
// The tests capture real hellos from Go's crypto/tls and, when installed,
// from openssl s_client and curl.
package hello

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Info is what routing needs from a ClientHello.
type Info struct {
	SNI      string   // server_name host_name, lower-cased; "" when the hello has none
	ALPN     []string // protocol names offered, in order (nil if none)
	Versions []uint16 // supported_versions if present (GREASE left out), else the legacy_version alone
}

const (
	recordHeaderLen = 5
	maxRecordLen    = 1 << 14 // RFC 8446 5.1: a record's length MUST NOT exceed 2^14
	maxNameLen      = 253     // the longest DNS name in text form, without the trailing dot

	// MaxHello bounds the bytes of records Parse and Read look at. Clients
	// send hellos of 0.2-2 KiB today (Chrome's, with an X25519MLKEM768 key
	// share, is about 1.8 KiB; HAProxy's req.ssl_sni only ever sees what
	// fits in its 16 KiB buffer). One full record of handshake bytes leaves
	// room for large session tickets and bigger post-quantum key shares,
	// and the four record headers let a client split that over up to four
	// records. A hello that needs more is ErrTooLong.
	MaxHello = maxRecordLen + 4*recordHeaderLen
)

var (
	// ErrShort means the bytes are a proper prefix of a possible hello: read
	// more (never beyond MaxHello bytes in total) and parse again.
	ErrShort = errors.New("hello: incomplete ClientHello")
	// ErrNotTLS is wrapped when the first bytes are not a TLS handshake
	// record (plain HTTP, an SSLv2 hello, any other protocol).
	ErrNotTLS = errors.New("hello: not a TLS handshake")
	// ErrTooLong is wrapped when the hello needs more than MaxHello bytes of
	// records.
	ErrTooLong = errors.New("hello: ClientHello too long")
	// ErrMalformed is wrapped by every error for bytes that start as a TLS
	// handshake record but can never become a valid ClientHello.
	ErrMalformed = errors.New("hello: malformed ClientHello")
)

// parseError is a definite failure; it wraps one of the sentinels.
type parseError struct {
	kind error
	msg  string
}

func (e *parseError) Error() string { return "hello: " + e.msg }
func (e *parseError) Unwrap() error { return e.kind }

func malformed(format string, args ...any) error {
	return &parseError{kind: ErrMalformed, msg: fmt.Sprintf(format, args...)}
}

func tooLong(format string, args ...any) error {
	return &parseError{kind: ErrTooLong, msg: fmt.Sprintf(format, args...)}
}

func notTLS(format string, args ...any) error {
	return &parseError{kind: ErrNotTLS, msg: fmt.Sprintf(format, args...)}
}

// The reasons Reason returns, for counters.
const (
	ReasonOK        = ""          // nil error
	ReasonNotTLS    = "not_tls"   // ErrNotTLS
	ReasonShort     = "short"     // ErrShort
	ReasonTooLong   = "too_long"  // ErrTooLong
	ReasonMalformed = "malformed" // ErrMalformed
	ReasonTimeout   = "timeout"   // Read's deadline passed first
	ReasonEOF       = "eof"       // the client closed before the hello was complete
	ReasonIO        = "io"        // any other read error
)

// Reasons lists every non-empty value Reason returns, so a caller can
// create its counters up front.
func Reasons() []string {
	return []string{ReasonNotTLS, ReasonShort, ReasonTooLong, ReasonMalformed, ReasonTimeout, ReasonEOF, ReasonIO}
}

// Reason classifies an error from Parse or Read into one of a small fixed
// set of kinds (the Reason* constants), for counters.
func Reason(err error) string {
	switch {
	case err == nil:
		return ReasonOK
	case errors.Is(err, ErrShort):
		return ReasonShort
	case errors.Is(err, ErrNotTLS):
		return ReasonNotTLS
	case errors.Is(err, ErrTooLong):
		return ReasonTooLong
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonEOF
	}
	return ReasonIO
}
