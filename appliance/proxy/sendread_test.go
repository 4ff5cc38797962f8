package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestSendThenRead: the request goes out and the answer comes back in one
// call, also when the request is larger than the socket buffers (the write
// waits inside the read); a server that closed the connection ends the
// call at once (not at the deadline); a server that does not answer ends
// it at the read deadline.
func TestSendThenRead(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4<<20)
	cases := []struct {
		name   string
		out    []byte
		server func(c net.Conn, n int)
		want   string // the answer; "" for an error
		errIs  error
	}{
		{"answer", []byte("ping"), func(c net.Conn, n int) {
			io.ReadFull(c, make([]byte, n))
			c.Write([]byte("pong"))
		}, "pong", nil},
		{"larger than the buffers", big, func(c net.Conn, n int) {
			io.ReadFull(c, make([]byte, n))
			c.Write([]byte("got it"))
		}, "got it", nil},
		{"closed by the server", []byte("ping"), func(c net.Conn, n int) {
			c.Close()
		}, "", nil},
		{"no answer", []byte("ping"), func(c net.Conn, n int) {
			io.ReadFull(c, make([]byte, n))
			time.Sleep(2 * time.Second)
		}, "", os.ErrDeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan struct{})
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				if tc.name == "closed by the server" {
					s.Close()
					close(accepted)
					return
				}
				close(accepted)
				tc.server(s, len(tc.out))
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			<-accepted
			if tc.name == "closed by the server" {
				time.Sleep(50 * time.Millisecond) // the FIN is in before the call
			}
			deadline := 5 * time.Second
			if tc.errIs == os.ErrDeadlineExceeded {
				deadline = 200 * time.Millisecond
			}
			c.SetDeadline(time.Now().Add(deadline))
			start := time.Now()
			b := make([]byte, 64)
			n, werr, err := (&upstream{TCPConn: c.(*net.TCPConn)}).sendThenRead(tc.out, b)
			el := time.Since(start)
			switch {
			case tc.want != "":
				if werr != nil || err != nil || string(b[:n]) != tc.want {
					t.Fatalf("got %q, write error %v, read error %v; want %q", b[:n], werr, err, tc.want)
				}
			case tc.errIs != nil:
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("got %q, write error %v, read error %v; want %v", b[:n], werr, err, tc.errIs)
				}
			default:
				if (werr == nil && err == nil) || n != 0 {
					t.Fatalf("got %q, write error %v, read error %v; want an error", b[:n], werr, err)
				}
				if el >= deadline/2 {
					t.Fatalf("took %v: waited for the deadline instead of seeing the close", el)
				}
			}
		})
	}
}
