package h1

// Bounds of the chunked framing around the data.
const (
	// MaxChunkLine bounds a chunk-size line with its extensions and line
	// end.
	MaxChunkLine = 4096
	// MaxTrailer bounds the trailer section with its final empty line.
	MaxTrailer = 16384
	// maxChunkDigits bounds chunk-size; 16 hex digits fill 64 bits.
	maxChunkDigits = 16
)

// Chunked scans a chunked body (RFC 9112 §7.1) as it streams by, validating
// its framing byte by byte, so that the proxy forwards exactly the bytes of
// one message. The zero value is ready; Reset readies it for the next body.
//
// chunked-body = *chunk last-chunk trailer-section CRLF
// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
// chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
type Chunked struct {
	// LenientLF accepts a bare LF where the framing has CRLF, as RFC 9112
	// §2.2 allows for lines. It is off because the proxy forwards the body
	// verbatim: a backend that skips two bytes after chunk data or reads a
	// size line up to CRLF would frame such a body differently (the
	// "TERM.EXT" and "lone LF" desyncs).
	LenientLF bool

	state   uint8
	digits  uint8  // hex digits of the size read so far
	size    uint64 // chunk-size being read, then data bytes left
	line    int    // bytes of the size line so far
	trailer int    // bytes of the trailer section so far
	body    int64  // data bytes so far
	err     error  // sticky
}

// Scanner states. The size line runs from sSize to sSizeLF, the trailer
// section from sTrailer to sEndLF.
const (
	sSize         = iota // chunk-size digits
	sSizeWS              // BWS after the size: only ';' may follow
	sExtStart            // after ';': BWS, then a name
	sExtName             // in chunk-ext-name
	sExtNameWS           // BWS after a name: '=' or ';'
	sExtValue            // after '=': BWS, then a token or quoted-string
	sExtToken            // in a token value
	sExtQuoted           // in a quoted-string
	sExtEscape           // after '\' in a quoted-string
	sExtAfter            // after a value: BWS, ';' or the line end
	sExtAfterWS          // BWS after a value: only ';' may follow
	sSizeLF              // CR seen, LF due
	sData                // size bytes of data
	sDataCR              // CRLF after data due
	sDataLF              // CR after data seen, LF due
	sTrailer             // start of a trailer line, or of the final empty line
	sTrailerName         // in a trailer field name
	sTrailerValue        // in a trailer field value
	sTrailerLF           // CR in a trailer line seen, LF due
	sEndLF               // CR of the final empty line seen, LF due
	sDone
)

// Reset readies c for a new body; LenientLF is kept.
func (c *Chunked) Reset() { *c = Chunked{LenientLF: c.LenientLF} }

// BodyBytes returns the chunk data bytes scanned so far, for the caller to
// bound the body size.
func (c *Chunked) BodyBytes() int64 { return c.body }

// Done reports whether the whole body has been scanned.
func (c *Chunked) Done() bool { return c.state == sDone }

// Scan consumes p from its start and returns how many of its bytes belong
// to the chunked body: all of p until the body ends, then done is true and
// p[n:] belongs to the next message. A framing error is an *Error with
// Status 400 (the caller maps it for responses), n then counts the valid
// bytes before the offending one, and every later Scan returns the error.
func (c *Chunked) Scan(p []byte) (n int, done bool, err error) {
	if c.err != nil {
		return 0, false, c.err
	}
	i := 0
	for i < len(p) && c.state != sDone {
		if c.state == sData {
			k := len(p) - i
			if uint64(k) > c.size {
				k = int(c.size)
			}
			i += k
			c.size -= uint64(k)
			c.body += int64(k)
			if c.size == 0 {
				c.state = sDataCR
			}
			continue
		}
		if err := c.step(p[i]); err != nil {
			c.err = err
			return i, false, err
		}
		i++
	}
	return i, c.state == sDone, nil
}

// step advances the state machine by one framing byte.
func (c *Chunked) step(b byte) error {
	if c.state <= sSizeLF {
		if c.line++; c.line > MaxChunkLine {
			return fail(400, "chunk size line too long")
		}
	} else if c.state >= sTrailer {
		if c.trailer++; c.trailer > MaxTrailer {
			return fail(400, "trailer section too large")
		}
	}
	ws := b == ' ' || b == '\t'
	tok := class[b]&cToken != 0
	switch c.state {
	case sSize:
		switch {
		case class[b]&cHex != 0:
			if c.digits == maxChunkDigits {
				return fail(400, "chunk size too long")
			}
			c.digits++
			c.size = c.size<<4 | uint64(unhex(b))
			if c.size > maxContentLength {
				return fail(400, "chunk size too large")
			}
			return nil
		case c.digits == 0: // 1*HEXDIG: no sign, space or "0x"
			return fail(400, "invalid chunk size")
		case ws:
			c.state = sSizeWS
			return nil
		case b == ';':
			c.state = sExtStart
			return nil
		}
		return c.endSizeLine(b)
	case sSizeWS, sExtAfterWS:
		if ws {
			return nil
		}
		if b == ';' {
			c.state = sExtStart
			return nil
		}
	case sExtStart:
		if ws {
			return nil
		}
		if tok {
			c.state = sExtName
			return nil
		}
	case sExtName:
		switch {
		case tok:
			return nil
		case ws:
			c.state = sExtNameWS
			return nil
		case b == '=':
			c.state = sExtValue
			return nil
		case b == ';':
			c.state = sExtStart
			return nil
		}
		return c.endSizeLine(b)
	case sExtNameWS:
		switch {
		case ws:
			return nil
		case b == '=':
			c.state = sExtValue
			return nil
		case b == ';':
			c.state = sExtStart
			return nil
		}
	case sExtValue:
		switch {
		case ws:
			return nil
		case b == '"':
			c.state = sExtQuoted
			return nil
		case tok:
			c.state = sExtToken
			return nil
		}
	case sExtToken:
		if tok {
			return nil
		}
		return c.afterValue(b, ws)
	case sExtQuoted:
		// qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
		switch {
		case b == '"':
			c.state = sExtAfter
			return nil
		case b == '\\':
			c.state = sExtEscape
			return nil
		case class[b]&cValue != 0:
			return nil
		}
	case sExtEscape:
		// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
		if class[b]&cValue != 0 {
			c.state = sExtQuoted
			return nil
		}
	case sExtAfter:
		return c.afterValue(b, ws)
	case sSizeLF:
		if b == '\n' {
			c.startData()
			return nil
		}
		return fail(400, "bare CR in chunk size line")
	case sDataCR:
		if b == '\r' {
			c.state = sDataLF
			return nil
		}
		if b == '\n' && c.LenientLF {
			c.nextChunk()
			return nil
		}
		return fail(400, "chunk data not followed by CRLF")
	case sDataLF:
		if b == '\n' {
			c.nextChunk()
			return nil
		}
		return fail(400, "chunk data not followed by CRLF")
	case sTrailer:
		switch {
		case b == '\r':
			c.state = sEndLF
			return nil
		case b == '\n' && c.LenientLF:
			c.state = sDone
			return nil
		case tok:
			c.state = sTrailerName
			return nil
		}
		return fail(400, "invalid trailer field") // obs-fold too
	case sTrailerName:
		if tok {
			return nil
		}
		if b == ':' {
			c.state = sTrailerValue
			return nil
		}
		return fail(400, "invalid trailer field name")
	case sTrailerValue:
		switch {
		case b == '\r':
			c.state = sTrailerLF
			return nil
		case b == '\n' && c.LenientLF:
			c.state = sTrailer
			return nil
		case class[b]&cValue != 0:
			return nil
		}
		return fail(400, "invalid byte in trailer field value")
	case sTrailerLF, sEndLF:
		if b != '\n' {
			return fail(400, "bare CR in trailer section")
		}
		if c.state == sEndLF {
			c.state = sDone
		} else {
			c.state = sTrailer
		}
		return nil
	}
	return fail(400, "invalid chunk extension")
}

// afterValue handles the byte after a chunk-ext-val.
func (c *Chunked) afterValue(b byte, ws bool) error {
	switch {
	case ws:
		c.state = sExtAfterWS
		return nil
	case b == ';':
		c.state = sExtStart
		return nil
	}
	return c.endSizeLine(b)
}

// endSizeLine handles a byte that may end the size line.
func (c *Chunked) endSizeLine(b byte) error {
	switch {
	case b == '\r':
		c.state = sSizeLF
		return nil
	case b == '\n' && c.LenientLF:
		c.startData()
		return nil
	case b == '\n':
		return fail(400, "chunk size line not ended by CRLF")
	}
	return fail(400, "invalid chunk size line")
}

// startData follows a complete size line: data, or the trailer section
// after the last chunk.
func (c *Chunked) startData() {
	c.line = 0
	if c.size == 0 {
		c.state = sTrailer
		return
	}
	c.state = sData
}

func (c *Chunked) nextChunk() {
	c.state, c.digits, c.size = sSize, 0, 0
}

func unhex(b byte) byte {
	switch {
	case b <= '9':
		return b - '0'
	case b >= 'a':
		return b - 'a' + 10
	}
	return b - 'A' + 10
}
