package proxy

import (
	"testing"
	"unsafe"
)

// TestHTTPConnSize keeps httpConn within the 192-byte size class of Go's
// allocator. An idle keep-alive connection, or a slow client's unfinished
// head, holds little of the proxy's besides its httpConn: its socket (the
// descriptor, while parked: no net.TCPConn), a parker slot, and the unfinished head's
// bytes. Each of the thousands of idle connections a proxy holds costs
// that (netlab bench's memory table, beside HAProxy's). Per-request state (buffers,
// heads, the access record) belongs in the pooled work and requestRecord,
// taken while a request is in progress, and times that are only compared
// or subtracted are a mono's 8 bytes, not a time.Time's 24.
func TestHTTPConnSize(t *testing.T) {
	const limit = 192
	if n := unsafe.Sizeof(httpConn{}); n > limit {
		t.Errorf("httpConn is %d bytes, over %d: move per-request state to work or requestRecord", n, limit)
	}
}
