package proxy

import (
	"errors"
	"io"
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

var bufPools sync.Map // size -> *sync.Pool of *[]byte

func getBuf(size int) *[]byte {
	p, _ := bufPools.Load(size)
	if p == nil {
		p, _ = bufPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	}
	return p.(*sync.Pool).Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	if p, ok := bufPools.Load(cap(*b)); ok {
		*b = (*b)[:cap(*b)]
		p.(*sync.Pool).Put(b)
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
