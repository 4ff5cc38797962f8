package proxy

import (
	"net"
	"testing"
	"time"
)

// TestSlowHeadsStayParked: connections whose heads come a byte at a time
// are parked between the bytes (no goroutine, no buffer), every one of
// them, however the readiness of their sockets was reported. (A wake-up
// left over from bytes already read made a connection wait in a blocking
// read, with its goroutine and buffer, until its next bytes.)
func TestSlowHeadsStayParked(t *testing.T) {
	const conns, bytes = 1000, 4
	o := newOrigin(t, "o")
	listen := freePort(t)
	c := run(t, mustConfig(t, httpConfig(listen, "    timeouts: {http_request: 1m}\n", servers(o.addr()))))
	waitListening(t, listen)
	var cs []net.Conn
	defer func() {
		for _, cn := range cs {
			cn.Close()
		}
	}()
	head := "GET /slow HTTP/1.1\r\n"
	for range conns {
		cn, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, cn)
		// The first byte at once: it is often there before the proxy
		// accepts the connection.
		if _, err := cn.Write([]byte{head[0]}); err != nil {
			t.Fatal(err)
		}
	}
	parked := func() int {
		if p := c.parker(); p != nil {
			return p.Len()
		}
		return 0
	}
	for i := range bytes {
		for _, cn := range cs {
			if i == 0 {
				break // sent on connect
			}
			if _, err := cn.Write([]byte{head[i]}); err != nil {
				t.Fatal(err)
			}
		}
		// Every connection parks again once it has read its byte; the
		// bound only guards against a hang.
		deadline := time.Now().Add(10 * time.Second)
		for parked() != conns {
			if time.Now().After(deadline) {
				t.Fatalf("after byte %d: %d of %d slow connections parked, the others wait with a goroutine", i+1, parked(), conns)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
