package proxy

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestHTTPConnSize keeps httpConn within the 160-byte size class of Go's
// allocator. A slow client's unfinished head holds little of the proxy's
// besides its httpConn: its socket (the descriptor, while parked: no
// net.TCPConn), a parker slot, and the unfinished head's bytes. Each of
// the thousands of such connections a proxy holds costs that (netlab
// bench's memory table, beside HAProxy's). Per-request state (buffers,
// heads, the access record) belongs in the pooled work and requestRecord,
// taken while a request is in progress, and times that are only compared
// or subtracted are a mono's 8 bytes, not a time.Time's 24.
func TestHTTPConnSize(t *testing.T) {
	const limit = 160
	if n := unsafe.Sizeof(httpConn{}); n > limit {
		t.Errorf("httpConn is %d bytes, over %d: move per-request state to work or requestRecord", n, limit)
	}
}

// TestWaitingConnSize keeps what an idle keep-alive connection parks as
// within the allocator's 48-byte size class.
func TestWaitingConnSize(t *testing.T) {
	const limit = 48
	if n := unsafe.Sizeof(waitingConn{}); n > limit {
		t.Errorf("waitingConn is %d bytes, over %d", n, limit)
	}
}

// TestWaitingConnRoundTrip sets every field of a waitingConn and checks
// that the httpConn made from it (conn) gives all of them back (waiting):
// a field added to waitingConn and forgotten in either is lost.
func TestWaitingConnRoundTrip(t *testing.T) {
	var ic waitingConn
	v := reflect.ValueOf(&ic).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			t.Fatalf("waitingConn.%s: a %s, which this test does not set", v.Type().Field(i).Name, f.Kind())
		}
	}
	if got := ic.conn().waiting(); !reflect.DeepEqual(*got, ic) {
		t.Errorf("conn().waiting() = %+v, want %+v", *got, ic)
	}
}
