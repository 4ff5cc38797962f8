package proxy

import (
	"errors"
	"io"
	"math/bits"
	"sync"
)

// Buffer sizes. A connection holds no buffer while it waits for a request
// or for a server: buffers are taken from the pools when bytes arrive and
// given back when the exchange ends, so idle connections cost no more than
// their socket and goroutine.
const (
	headBufSize = 4 << 10  // a request head; grown to limits.max_header_bytes when needed
	copyBufSize = 32 << 10 // bodies and tunnels
)

// bufPools hold buffers of 1<<i bytes, 4 KiB to 1 MiB.
var bufPools [21]sync.Pool

const minBufShift = 12

// getBuf returns a pooled buffer of at least size bytes (a power of two).
func getBuf(size int) *[]byte {
	i := max(bits.Len(uint(size-1)), minBufShift)
	if i >= len(bufPools) {
		b := make([]byte, size)
		return &b
	}
	if b, ok := bufPools[i].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<i)
	return &b
}

// putBuf gives a buffer from getBuf back.
func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	i := bits.Len(uint(c - 1))
	if c&(c-1) != 0 || i < minBufShift || i >= len(bufPools) {
		return
	}
	*b = (*b)[:c]
	bufPools[i].Put(b)
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
