package proxy

import (
	"testing"
	"unsafe"
)

// TestHTTPConnSize keeps httpConn within the 256-byte size class of Go's
// allocator. An idle keep-alive connection, or a slow client's unfinished
// head, holds nothing else of the proxy's but its socket and a parker
// entry: its httpConn is most of halb's memory per idle connection (netlab
// bench's memory table, beside HAProxy's). Per-request state (buffers,
// heads, the access record) belongs in the pooled work and requestRecord,
// taken while a request is in progress.
func TestHTTPConnSize(t *testing.T) {
	const limit = 256
	if n := unsafe.Sizeof(httpConn{}); n > limit {
		t.Errorf("httpConn is %d bytes, over %d: move per-request state to work or requestRecord", n, limit)
	}
}
