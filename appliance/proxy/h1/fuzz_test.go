package h1

import (
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"testing"
)

var fuzzLimits = []Limits{DefaultLimits, {MaxLine: 40, MaxHeaderBytes: 100, MaxHeaders: 4}}

// FuzzParseRequest checks ParseRequest's invariants, that Chunked frames a
// body alike however it is split, and that net/http, when it reads the
// same bytes without error, ends the message where h1 does.
func FuzzParseRequest(f *testing.F) {
	for _, tt := range smugglingCorpus {
		f.Add([]byte(tt.msg + tt.rest))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range fuzzLimits {
			var req Request
			err := ParseRequest(data, lim, &req)
			checkRequest(t, data, lim, &req, err)
			if err == nil && req.HeadLen <= 2048 {
				checkPrefixesWait(t, data[:req.HeadLen], lim)
			}
			if err == nil && req.Chunked {
				checkChunkedSplits(t, false, data[req.HeadLen:])
			}
		}
		m, status := frame(t, data, 0)
		if status != 0 {
			return
		}
		greq, _, gend, err := newGoReader(data).next()
		if err != nil {
			return // net/http is stricter here
		}
		if gend != m.end {
			t.Fatalf("net/http ends the message at %d, h1 at %d", gend, m.end)
		}
		if greq.Method != string(m.req.Method) || greq.RequestURI != string(m.req.Target) {
			t.Fatalf("net/http reads %s %s, h1 %s %s", greq.Method, greq.RequestURI, m.req.Method, m.req.Target)
		}
	})
}

func checkRequest(t *testing.T, data []byte, lim Limits, req *Request, err error) {
	t.Helper()
	var e *Error
	switch {
	case err == ErrIncomplete:
		if len(data) >= lim.MaxHeaderBytes {
			t.Fatalf("incomplete with %d bytes, limit %d", len(data), lim.MaxHeaderBytes)
		}
		return
	case errors.As(err, &e):
		switch e.Status {
		case 400, 414, 417, 431, 501, 505:
		default:
			t.Fatalf("status %d", e.Status)
		}
		return
	case err != nil:
		t.Fatalf("unexpected error %v", err)
	}
	head := data[:req.HeadLen]
	if req.HeadLen > len(data) || req.HeadLen > lim.MaxHeaderBytes {
		t.Fatalf("HeadLen %d, buffer %d, limit %d", req.HeadLen, len(data), lim.MaxHeaderBytes)
	}
	// A bare LF may end any line, so the head ends "\n\n" or "\n\r\n"
	// (which covers "\r\n\r\n").
	if !bytes.HasSuffix(head, []byte("\n\n")) && !bytes.HasSuffix(head, []byte("\n\r\n")) {
		t.Fatalf("head %q does not end with an empty line", head)
	}
	if !isToken(req.Method) || len(req.Target) == 0 || req.Minor > 1 || len(req.Headers) > lim.MaxHeaders {
		t.Fatalf("request %+v", req)
	}
	for _, h := range req.Headers {
		if !isToken(h.Name) {
			t.Fatalf("header name %q is no token", h.Name)
		}
		if bytes.ContainsAny(h.Value, "\r\n\x00") || !bytes.Equal(h.Value, trimOWS(h.Value)) {
			t.Fatalf("header value %q", h.Value)
		}
	}
	if req.ContentLength < -1 || req.Chunked && req.ContentLength >= 0 {
		t.Fatalf("ContentLength %d, Chunked %v", req.ContentLength, req.Chunked)
	}
	// The head alone parses the same, and its prefixes are incomplete.
	var again Request
	if err := ParseRequest(head, lim, &again); err != nil || again.HeadLen != req.HeadLen {
		t.Fatalf("head alone: %v, HeadLen %d want %d", err, again.HeadLen, req.HeadLen)
	}
	for _, n := range []int{req.HeadLen - 1, req.HeadLen / 2} {
		if err := ParseRequest(head[:n], lim, &again); err != ErrIncomplete {
			t.Fatalf("prefix of %d: %v, want ErrIncomplete", n, err)
		}
	}
}

// checkChunkedSplits checks that scanning body whole, in two pieces and
// (for short bodies) byte by byte gives one result.
func checkChunkedSplits(t *testing.T, lenient bool, body []byte) scanResult {
	t.Helper()
	s := string(body)
	whole := feed(lenient, s)
	if whole.n > len(body) || whole.status == 0 && !whole.done && whole.n != len(body) {
		t.Fatalf("Scan of %d bytes: %+v", len(body), whole)
	}
	splits := []int{len(s) / 2, len(s) / 3}
	if len(s) > 0 {
		splits = append(splits, int(s[0])%len(s))
	}
	for _, i := range splits {
		if got := feed(lenient, s[:i], s[i:]); got != whole {
			t.Fatalf("split at %d: %+v, whole: %+v", i, got, whole)
		}
	}
	if len(s) <= 256 {
		pieces := make([]string, len(s))
		for i := 0; i < len(s); i++ { // bytes, not runes
			pieces[i] = s[i : i+1]
		}
		if got := feed(lenient, pieces...); got != whole {
			t.Fatalf("byte by byte: %+v, whole: %+v", got, whole)
		}
	}
	return whole
}

// FuzzChunked checks Scan's invariants in both line-end modes and, for a
// body it accepts strictly, that Go's chunked reader finds as many data
// bytes when it accepts the body too.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"d\\\"\"\r\nhello\r\n0\r\nX: y\r\n\r\nGET",
		"ffffffffffffffffff\r\n",
		"5\nhello\n0\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkChunkedSplits(t, true, data)
		r := checkChunkedSplits(t, false, data)
		if !r.done {
			return
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data[:r.n])))
		if err == nil && int64(len(got)) != r.body {
			t.Fatalf("Go's chunked reader finds %d data bytes, h1 %d", len(got), r.body)
		}
	})
}
