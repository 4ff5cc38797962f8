package hello

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// minRead is the first buffer Read allocates when buf has less room: most
// hellos fit.
const minRead = 2048

// Read reads from c until Parse succeeds or fails, at most MaxHello bytes,
// until the deadline (it sets c's read deadline to deadline and clears it
// before returning; a zero deadline means none). It reads into buf's
// spare capacity from buf[:0], growing it if needed, and returns every byte
// it read (to replay to the backend), with the Info; on error too, so that
// the caller can decide what to do with a client that is not speaking TLS.
//
// Read parses again only when a record (or record header) is complete, so
// a client that sends one byte at a time costs one parse per record, not
// one per byte.
//
// Read errors wrap os.ErrDeadlineExceeded when the deadline passed first
// and io.ErrUnexpectedEOF when the client closed before the hello was
// complete; Reason tells them apart.
func Read(c net.Conn, deadline time.Time, buf []byte) (Info, []byte, error) {
	if err := c.SetReadDeadline(deadline); err != nil {
		return Info{}, nil, fmt.Errorf("hello: set read deadline: %w", err)
	}
	defer c.SetReadDeadline(time.Time{})
	b := buf[:0]
	next := 1 // parse again once b is this long
	for {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(max(2*cap(b), minRead), MaxHello))
			copy(nb, b)
			b = nb
		}
		n, err := c.Read(b[len(b):min(cap(b), MaxHello)])
		b = b[:len(b)+n]
		if len(b) >= next {
			info, need, perr := parse(b)
			if perr != ErrShort {
				return info, b, perr
			}
			next = need
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return Info{}, b, fmt.Errorf("hello: client closed after %d bytes: %w", len(b), io.ErrUnexpectedEOF)
		default:
			return Info{}, b, fmt.Errorf("hello: read after %d bytes: %w", len(b), err)
		}
	}
}
