package h1

// Response is a parsed response head. Its byte slices alias the parsed
// buffer.
//
// Whether a body follows is partly the caller's: a response to HEAD, and
// 1xx, 204 and 304 responses, end with their head whatever the fields say
// (RFC 9112 §6.3). Otherwise the body is chunked when Chunked, ContentLength
// bytes when that is not -1, and else runs until the server closes.
type Response struct {
	// Minor is the protocol's minor version: HTTP/1.Minor, 0 or 1.
	Minor int
	// Status is the status code, 100 to 599.
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason []byte
	// Headers holds every field line in order. ParseResponse appends to
	// Headers[:0].
	Headers []Header
	// ContentLength is the body length, -1 when absent or when
	// Transfer-Encoding overrides it.
	ContentLength int64
	// Chunked is set when the final transfer coding is chunked.
	Chunked bool
	// Close says the connection ends after this response: Connection
	// lists close, HTTP/1.0 without keep-alive, or a body delimited by the
	// close (a final transfer coding other than chunked).
	Close bool
	// HeadLen is the length of the head including the final empty line.
	HeadLen int
}

// ParseResponse parses the response head at the start of buf into resp,
// keeping the capacity of resp.Headers. It returns ErrIncomplete when buf
// holds no complete head yet; a malformed or ambiguous head, or one beyond
// lim, is an *Error with Status 502. On error the contents of resp are
// unspecified.
func ParseResponse(buf []byte, lim Limits, resp *Response) error {
	err := parseResponse(buf, lim, resp)
	if e, ok := err.(*Error); ok {
		e.Status = 502
	}
	return err
}

func parseResponse(buf []byte, lim Limits, resp *Response) error {
	lim = lim.orDefault()
	*resp = Response{Headers: resp.Headers[:0], ContentLength: -1}
	b := buf
	if len(b) > lim.MaxHeaderBytes {
		b = b[:lim.MaxHeaderBytes]
	}
	more := func() error {
		if len(buf) >= lim.MaxHeaderBytes {
			return fail(502, "response header too large")
		}
		return ErrIncomplete
	}

	win := buf
	if len(win) > lim.MaxLine {
		win = win[:lim.MaxLine]
	}
	l, next, ok := line(win, 0)
	if !ok {
		if len(win) == lim.MaxLine {
			return fail(502, "status line too long")
		}
		return more()
	}
	if next > len(b) {
		return fail(502, "response header too large")
	}
	// status-line = HTTP-version SP status-code SP [ reason-phrase ]
	// (RFC 9112 §4); a missing SP after the code is tolerated.
	if len(l) < 12 || l[8] != ' ' || len(l) > 12 && l[12] != ' ' {
		return fail(502, "malformed status line")
	}
	minor, err := parseVersion(l[:8])
	if err != nil {
		return err
	}
	resp.Minor = minor
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return fail(502, "malformed status code")
		}
		resp.Status = resp.Status*10 + int(c-'0')
	}
	if resp.Status < 100 || resp.Status > 599 { // RFC 9110 §15
		return fail(502, "invalid status code")
	}
	if len(l) > 12 {
		resp.Reason = l[13:]
		for _, c := range resp.Reason {
			if class[c]&cValue == 0 {
				return fail(502, "invalid byte in reason phrase")
			}
		}
	} else {
		resp.Reason = l[12:]
	}

	var f fields
	hs, headLen, err := parseFields(b, next, lim.MaxHeaders, resp.Headers, &f)
	resp.Headers = hs
	if err == ErrIncomplete {
		return more()
	}
	if err != nil {
		return err
	}
	resp.HeadLen = headLen

	// Framing (RFC 9112 §6.1, §6.3).
	resp.ContentLength = f.contentLength
	if f.te {
		switch {
		case resp.Minor == 0: // §6.1: faulty framing
			return fail(502, "Transfer-Encoding in HTTP/1.0 response")
		case f.contentLength >= 0:
			return fail(502, "both Content-Length and Transfer-Encoding")
		case f.teBad || f.teChunked > 1:
			return fail(502, "invalid Transfer-Encoding")
		}
		if f.teLastChunked {
			resp.Chunked = true
		} else { // §6.3: the body runs until the connection closes
			resp.Close = true
		}
	}
	resp.Close = resp.Close || f.close || resp.Minor == 0 && !f.keepAlive
	return nil
}
