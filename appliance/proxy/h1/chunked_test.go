package h1

import (
	"errors"
	"strings"
	"testing"
)

// scanResult is what feeding a whole input to a Chunked gives.
type scanResult struct {
	n      int   // bytes that belong to the body (up to the error)
	done   bool  // the body ended
	status int   // 0, or the Error's status
	body   int64 // BodyBytes
}

// feed scans in as the given pieces, in order, stopping at the end of the
// body or at an error.
func feed(lenient bool, pieces ...string) scanResult {
	c := Chunked{LenientLF: lenient}
	var r scanResult
	for _, p := range pieces {
		n, done, err := c.Scan([]byte(p))
		r.n += n
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				panic(err)
			}
			r.status = e.Status
			break
		}
		if done {
			r.done = true
			break
		}
		if n != len(p) {
			panic("Scan stopped early without done or error")
		}
	}
	r.body = c.BodyBytes()
	return r
}

// feedAll checks that in gives the same result whole, split at every
// point (every 61st for long inputs), and one byte at a time, and returns
// it.
func feedAll(t *testing.T, lenient bool, in string) scanResult {
	t.Helper()
	whole := feed(lenient, in)
	stride := 1
	if len(in) > 1024 {
		stride = 61
	}
	for i := 1; i < len(in); i += stride {
		if got := feed(lenient, in[:i], in[i:]); got != whole {
			t.Fatalf("split at %d: %+v, whole: %+v", i, got, whole)
		}
	}
	bytes := make([]string, len(in))
	for i := 0; i < len(in); i++ { // bytes, not runes
		bytes[i] = in[i : i+1]
	}
	if got := feed(lenient, bytes...); got != whole {
		t.Fatalf("byte by byte: %+v, whole: %+v", got, whole)
	}
	return whole
}

func TestChunked(t *testing.T) {
	const next = "GET / HTTP/1.1\r\n" // the next message on the connection
	long := strings.Repeat("x", MaxChunkLine)
	tests := []struct {
		name    string
		in      string
		lenient bool
		want    scanResult // n == -1: len(in) - len(next) when done
	}{
		{name: "simple", in: "5\r\nhello\r\n0\r\n\r\n" + next, want: scanResult{n: -1, done: true, body: 5}},
		{name: "several chunks", in: "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n" + next, want: scanResult{n: -1, done: true, body: 13}},
		{name: "uppercase and lowercase hex", in: "aB\r\n" + strings.Repeat("z", 0xab) + "\r\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 0xab}},
		{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", want: scanResult{n: -1, done: true, body: 5}},
		{name: "data with CRLF inside", in: "4\r\n\r\n\r\n\r\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 4}},
		{name: "extensions", in: "5;a;b=c;d=\"q\\\"x;y\"\r\nhello\r\n0;last\r\n\r\n", want: scanResult{n: -1, done: true, body: 5}},
		{name: "extension BWS", in: "5 \t; a = b\t;c =\t\"v\" ;d\r\nhello\r\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 5}},
		{name: "extension obs-text in quotes", in: "5;a=\"\xe9\t \"\r\nhello\r\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 5}},
		{name: "trailers", in: "5\r\nhello\r\n0\r\nX-T: v\r\nY:\r\nZ: a\tb\xe9\r\n\r\n" + next, want: scanResult{n: -1, done: true, body: 5}},
		{name: "empty body", in: "0\r\n\r\n", want: scanResult{n: -1, done: true}},
		{name: "incomplete", in: "5\r\nhel", want: scanResult{n: 6, body: 3}},
		{name: "incomplete trailer", in: "0\r\nX: y\r\n", want: scanResult{n: 9}},
		{name: "size line at limit", in: "1;" + long[:MaxChunkLine-4] + "\r\nx\r\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 1}},

		{name: "size line beyond limit", in: "1;" + long[:MaxChunkLine-3] + "\r\nx\r\n0\r\n\r\n", want: scanResult{n: MaxChunkLine, status: 400}},
		{name: "trailer beyond limit", in: "0\r\nX: " + strings.Repeat("y", MaxTrailer) + "\r\n\r\n", want: scanResult{n: 3 + MaxTrailer, status: 400}},
		{name: "empty size", in: "\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 0, status: 400}},
		{name: "size 17 digits", in: "00000000000000005\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 16, status: 400}},
		{name: "size overflow", in: "ffffffffffffffffff\r\n", want: scanResult{n: 15, status: 400}},
		{name: "size beyond 2^62", in: "4000000000000001\r\n", want: scanResult{n: 15, status: 400}},
		{name: "size leading SP", in: " 5\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 0, status: 400}},
		{name: "size leading HTAB", in: "\t5\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 0, status: 400}},
		{name: "size sign", in: "-1\r\n", want: scanResult{n: 0, status: 400}},
		{name: "size plus", in: "+5\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 0, status: 400}},
		{name: "size 0x", in: "0x5\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 1, status: 400}},
		{name: "size trailing SP", in: "5 \r\nhello\r\n0\r\n\r\n", want: scanResult{n: 2, status: 400}},
		{name: "size non-hex", in: "5g\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 1, status: 400}},
		{name: "size bare CR", in: "5\rhello\r\n0\r\n\r\n", want: scanResult{n: 2, status: 400}},
		{name: "size bare LF", in: "5\nhello\r\n0\r\n\r\n", want: scanResult{n: 1, status: 400}},
		{name: "size bare LF lenient", lenient: true, in: "5\nhello\r\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 5}},
		{name: "extension bare LF (TERM.EXT)", in: "5;a\nhello\r\n0\r\n\r\n", want: scanResult{n: 3, status: 400}},
		{name: "extension empty name", in: "5;\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 2, status: 400}},
		{name: "extension no name", in: "5;=b\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 2, status: 400}},
		{name: "extension name SP name", in: "5;a b\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 4, status: 400}},
		{name: "extension empty value", in: "5;a=\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 4, status: 400}},
		{name: "extension trailing BWS", in: "5;a=b \r\nhello\r\n0\r\n\r\n", want: scanResult{n: 6, status: 400}},
		{name: "extension non-token value", in: "5;a=b/c\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 5, status: 400}},
		{name: "extension unterminated quote", in: "5;a=\"b\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 6, status: 400}},
		{name: "extension quoted NUL", in: "5;a=\"\x00\"\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 5, status: 400}},
		{name: "extension text after quote", in: "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", want: scanResult{n: 7, status: 400}},
		{name: "data too long", in: "5\r\nhelloX\r\n0\r\n\r\n", want: scanResult{n: 8, status: 400, body: 5}},
		{name: "data bare LF", in: "5\r\nhello\n0\r\n\r\n", want: scanResult{n: 8, status: 400, body: 5}},
		{name: "data bare LF lenient", lenient: true, in: "5\r\nhello\n0\r\n\r\n", want: scanResult{n: -1, done: true, body: 5}},
		{name: "data bare CR", in: "5\r\nhello\r0\r\n\r\n", want: scanResult{n: 9, status: 400, body: 5}},
		{name: "end bare LF", in: "0\r\n\n", want: scanResult{n: 3, status: 400}},
		{name: "end bare LF lenient", lenient: true, in: "0\r\n\n", want: scanResult{n: -1, done: true}},
		{name: "end bare CR", in: "0\r\n\rX", want: scanResult{n: 4, status: 400}},
		{name: "trailer obs-fold", in: "0\r\nA: b\r\n c\r\n\r\n", want: scanResult{n: 9, status: 400}},
		{name: "trailer SP before colon", in: "0\r\nA : b\r\n\r\n", want: scanResult{n: 4, status: 400}},
		{name: "trailer no colon", in: "0\r\nA\r\n\r\n", want: scanResult{n: 4, status: 400}},
		{name: "trailer NUL", in: "0\r\nA: \x00\r\n\r\n", want: scanResult{n: 6, status: 400}},
		{name: "trailer bare CR", in: "0\r\nA: b\rc\r\n\r\n", want: scanResult{n: 8, status: 400}},
		{name: "trailer bare LF", in: "0\r\nA: b\n\r\n", want: scanResult{n: 7, status: 400}},
		{name: "trailer bare LF lenient", lenient: true, in: "0\r\nA: b\n\n", want: scanResult{n: -1, done: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.want
			if w.n == -1 {
				w.n = len(strings.TrimSuffix(tt.in, next))
			}
			if got := feedAll(t, tt.lenient, tt.in); got != w {
				t.Errorf("got %+v, want %+v", got, w)
			}
		})
	}
}

func TestChunkedStickyErrorAndReset(t *testing.T) {
	c := Chunked{LenientLF: true}
	if _, _, err := c.Scan([]byte("x")); err == nil {
		t.Fatal("no error for a bad size")
	}
	if n, done, err := c.Scan([]byte("0\r\n\r\n")); n != 0 || done || err == nil {
		t.Fatalf("after an error: %d %v %v, want the error again", n, done, err)
	}
	c.Reset()
	if !c.LenientLF {
		t.Error("Reset dropped LenientLF")
	}
	n, done, err := c.Scan([]byte("2\r\nab\r\n0\r\n\r\nrest"))
	if n != 12 || !done || err != nil || c.BodyBytes() != 2 || !c.Done() {
		t.Fatalf("after Reset: %d %v %v body %d", n, done, err, c.BodyBytes())
	}
	if n, done, err := c.Scan([]byte("more")); n != 0 || !done || err != nil {
		t.Fatalf("after the end: %d %v %v", n, done, err)
	}
}
