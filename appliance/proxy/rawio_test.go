package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected pair of TCP connections on loopback, both
// closed when the test ends.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	c, s := parkPair(t)
	t.Cleanup(func() { s.Close() })
	return c.(*net.TCPConn), s
}

// TestRawIO: rawIO reads and writes as net.Conn does: whole writes through
// a full socket buffer (the poller waits), io.EOF after a half-close,
// the read deadline, a reset as a system call error, and a closed
// connection as net.ErrClosed.
func TestRawIO(t *testing.T) {
	a, b := tcpPair(t)
	ra, rb := newRawIO(a), newRawIO(b)

	// 8 MiB one way while the reader reads slowly: Write must wait on
	// full buffers and still write it all, in order.
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	werr := make(chan error, 1)
	go func() {
		n, err := ra.Write(want)
		if err == nil && n != len(want) {
			err = errors.New("short write")
		}
		a.CloseWrite()
		werr <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, 3000)
	for {
		n, err := rb.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
		if got.Len() < 1<<20 {
			time.Sleep(time.Millisecond) // let the sender fill the buffers
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("%d bytes arrived, not the %d sent", got.Len(), len(want))
	}
	if n, err := rb.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF: %d, %v", n, err)
	}

	// The read deadline ends a read as Go's own does.
	a2, b2 := tcpPair(t)
	r2 := newRawIO(b2)
	b2.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r2.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	b2.SetReadDeadline(time.Time{})

	// A reset: the error of the system call.
	a2.SetLinger(0)
	a2.Close()
	_, err := r2.Read(buf)
	var se *os.SyscallError
	if !errors.As(err, &se) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset: %v, want the read's ECONNRESET", err)
	}

	// Closed while a read waits: net.ErrClosed.
	_, b3 := tcpPair(t)
	r3 := newRawIO(b3)
	rerr := make(chan error, 1)
	go func() {
		_, err := r3.Read(buf)
		rerr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b3.Close()
	if err := <-rerr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v", err)
	}
	if _, err := r3.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection: %v", err)
	}
}

// BenchmarkRawIORoundTrip compares a small request/response exchange over
// loopback with rawIO and with net.Conn's Read and Write.
func BenchmarkRawIORoundTrip(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "net.Conn"
		if raw {
			name = "rawIO"
		}
		b.Run(name, func(b *testing.B) {
			a, c := tcpPair(b)
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(buf[:n])
				}
			}()
			var rw io.ReadWriter = a
			if raw {
				rw = newRawIO(a)
			}
			msg, buf := []byte("ping"), make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rw.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rw, buf[:len(msg)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
