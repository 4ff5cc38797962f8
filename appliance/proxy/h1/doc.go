// Package h1 is halb's HTTP/1.1 wire parser for the proxy hot path: the
// message head of requests and responses (RFC 9112 §2-6) and a streaming
// scanner for chunked bodies (RFC 9112 §7.1).
//
// # Design
//
// Nothing is copied. ParseRequest and ParseResponse fill caller-owned
// structs whose byte slices alias the input buffer, and append fields to the
// caller's Headers slice; once that slice has capacity, parsing a complete
// head allocates nothing. The caller keeps the buffer unchanged while it
// uses the result. A head that has not fully arrived yields ErrIncomplete;
// call again with the longer buffer. Chunked.Scan validates a chunked body
// as it streams by and reports where it ends, so the proxy can forward the
// bytes verbatim.
//
// # Strictness
//
// The proxy forwards what it parsed, so any message a backend could frame
// differently is refused (RFC 9112 §11.2, and the checks HAProxy makes):
//
//   - CR is only valid right before LF; a bare LF ends a head line
//     (RFC 9112 §2.2), but in a chunked body only CRLF is accepted unless
//     Chunked.LenientLF is set (see Chunked).
//   - obs-fold, whitespace before the colon, non-token names, and control
//     bytes other than HTAB in values are refused (RFC 9112 §5).
//   - Content-Length must be digits; repeated identical values are one
//     value, differing values are refused (RFC 9112 §6.3).
//   - A request's Transfer-Encoding must be exactly one "chunked" coding:
//     a list not ending in chunked, chunked twice, empty or malformed
//     elements give 400, other codings before chunked give 501; it is 400
//     in HTTP/1.0 and together with Content-Length.
//   - HTTP/1.1 requests carry exactly one valid Host; an absolute-form
//     target's authority must equal it.
//
// Response framing beyond the head is the caller's: responses to HEAD, and
// 1xx, 204 and 304 responses, have no body whatever their headers say
// (RFC 9112 §6.3).
//
// # Testing
//
// TestSmuggling runs a corpus of request-smuggling attempts, and checks that
// net/http frames every accepted one as h1 does; TestNetHTTPDifferential
// does the same for valid request streams. The fuzz targets check the
// invariants and, for accepted inputs, the agreement with net/http:
//
//	go test -run X -fuzz FuzzParseRequest -fuzztime 30s ./appliance/proxy/h1
//	go test -run X -fuzz FuzzChunked -fuzztime 30s ./appliance/proxy/h1
package h1
