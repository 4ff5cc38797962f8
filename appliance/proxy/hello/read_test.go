package hello

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// loopback returns both ends of a TCP connection over 127.0.0.1.
func loopback(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	client.(*net.TCPConn).SetNoDelay(true)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// readResult is what Read returned, for a test goroutine to hand over.
type readResult struct {
	info Info
	b    []byte
	err  error
}

func readAsync(c net.Conn, d time.Duration, buf []byte) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		info, b, err := Read(c, time.Now().Add(d), buf)
		ch <- readResult{info, b, err}
	}()
	return ch
}

func TestReadSmallWrites(t *testing.T) {
	hello := goHello(t, &tls.Config{ServerName: "slow.example", NextProtos: []string{"h2"}})
	// Split over records too, so that Read sees records and their headers
	// cut anywhere.
	hello = refragment(t, hello, 300)
	client, server := loopback(t)
	got := readAsync(server, 10*time.Second, make([]byte, 0, 64))
	for b := hello; len(b) > 0; {
		n := min(37, len(b))
		if _, err := client.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
		time.Sleep(time.Millisecond)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !bytes.Equal(r.b, hello) {
		t.Fatalf("Read returned %d bytes, want the %d of the hello", len(r.b), len(hello))
	}
	if r.info.SNI != "slow.example" || len(r.info.ALPN) != 1 {
		t.Fatalf("info %+v", r.info)
	}
	// The deadline is cleared: a later read waits for data rather than
	// failing at once.
	go func() {
		time.Sleep(50 * time.Millisecond)
		client.Write([]byte("after"))
	}()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "after" {
		t.Fatalf("read after Read: %q, %v", buf, err)
	}
}

func TestReadWithBytesAfter(t *testing.T) {
	hello := goHello(t, &tls.Config{ServerName: "more.example"})
	client, server := loopback(t)
	sent := cat(hello, record(23, []byte("0-rtt")))
	if _, err := client.Write(sent); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, MaxHello)
	r := <-readAsync(server, 10*time.Second, buf)
	if r.err != nil || r.info.SNI != "more.example" {
		t.Fatalf("%+v, %v", r.info, r.err)
	}
	if &r.b[0] != &buf[:1][0] {
		t.Fatal("Read did not read into the buffer it was given")
	}
	// Whatever arrived with the hello is returned for replay.
	if !bytes.HasPrefix(sent, r.b) || len(r.b) < len(hello) {
		t.Fatalf("returned %d bytes, sent %d (hello %d)", len(r.b), len(sent), len(hello))
	}
}

func TestReadDeadline(t *testing.T) {
	hello := goHello(t, &tls.Config{ServerName: "half.example"})
	client, server := loopback(t)
	half := hello[:len(hello)/2]
	if _, err := client.Write(half); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := <-readAsync(server, 200*time.Millisecond, nil)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || Reason(r.err) != ReasonTimeout {
		t.Fatalf("err %v (reason %q), want a timeout", r.err, Reason(r.err))
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Fatalf("returned after %v, before the deadline", time.Since(start))
	}
	if !bytes.Equal(r.b, half) {
		t.Fatalf("returned %d bytes, want the %d sent", len(r.b), len(half))
	}
}

func TestReadClientCloses(t *testing.T) {
	hello := goHello(t, &tls.Config{ServerName: "gone.example"})
	client, server := loopback(t)
	client.Write(hello[:100])
	client.Close()
	r := <-readAsync(server, 10*time.Second, nil)
	if Reason(r.err) != ReasonEOF || !bytes.Equal(r.b, hello[:100]) {
		t.Fatalf("err %v, %d bytes", r.err, len(r.b))
	}
}

func TestReadTooLong(t *testing.T) {
	// A hello with 16000 bytes of padding in 100-byte records: its records
	// take more than MaxHello bytes.
	big := refragment(t, helloRecord(sniExt("big.example"), ext(21, make([]byte, 16000))), 100)
	if len(big) <= MaxHello {
		t.Fatalf("test hello is only %d bytes", len(big))
	}
	client, server := loopback(t)
	go client.Write(big)
	r := <-readAsync(server, 10*time.Second, nil)
	if Reason(r.err) != ReasonTooLong {
		t.Fatalf("err %v, want too_long", r.err)
	}
	if len(r.b) > MaxHello || !bytes.HasPrefix(big, r.b) {
		t.Fatalf("returned %d bytes (MaxHello %d)", len(r.b), MaxHello)
	}
}

func TestReadLargeHello(t *testing.T) {
	// The largest hello in one record: Read grows its buffer to hold it.
	pad := maxRecordLen - len(helloRecord(sniExt("large.example"), ext(21))) + 5
	large := helloRecord(sniExt("large.example"), ext(21, make([]byte, pad)))
	if len(large) != 5+maxRecordLen {
		t.Fatalf("test hello is %d bytes", len(large))
	}
	client, server := loopback(t)
	go client.Write(large)
	r := <-readAsync(server, 10*time.Second, nil)
	if r.err != nil || r.info.SNI != "large.example" || !bytes.Equal(r.b, large) {
		t.Fatalf("err %v, info %+v, %d bytes", r.err, r.info, len(r.b))
	}
}

func TestReadNotTLS(t *testing.T) {
	client, server := loopback(t)
	req := []byte("GET / HTTP/1.1\r\nHost: plain.example\r\n\r\n")
	if _, err := client.Write(req); err != nil {
		t.Fatal(err)
	}
	r := <-readAsync(server, 10*time.Second, nil)
	if !errors.Is(r.err, ErrNotTLS) || !bytes.HasPrefix(req, r.b) || len(r.b) == 0 {
		t.Fatalf("err %v, bytes %q", r.err, r.b)
	}
}
