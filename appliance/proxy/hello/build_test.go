package hello

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// Builders for hand-made hellos. Each returns the wire bytes of one part;
// vec8/16/24 prefix the concatenation of their parts with its length.

func u8(v int) []byte  { return []byte{byte(v)} }
func u16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }
func u24(v int) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func vec8(parts ...[]byte) []byte  { b := cat(parts...); return cat(u8(len(b)), b) }
func vec16(parts ...[]byte) []byte { b := cat(parts...); return cat(u16(len(b)), b) }

func ext(typ int, data ...[]byte) []byte { return cat(u16(typ), vec16(data...)) }

func sniExt(names ...string) []byte {
	var list [][]byte
	for _, n := range names {
		list = append(list, u8(0), vec16([]byte(n)))
	}
	return ext(extServerName, vec16(list...))
}

func alpnExt(protos ...string) []byte {
	var list [][]byte
	for _, p := range protos {
		list = append(list, vec8([]byte(p)))
	}
	return ext(extALPN, vec16(list...))
}

func versExt(vs ...int) []byte {
	var list [][]byte
	for _, v := range vs {
		list = append(list, u16(v))
	}
	return ext(extSupportedVersions, vec8(list...))
}

var (
	defRandom = bytes.Repeat([]byte{0x5a}, 32)
	defSID    = vec8(bytes.Repeat([]byte{0x11}, 32))
	defSuites = vec16(u16(0x1301), u16(0x1302), u16(0xc02f))
	defComp   = vec8(u8(0))
)

// body is a ClientHello body with version 0x0303, the default random,
// session id, suites and compression, and the given extensions.
func body(exts ...[]byte) []byte {
	return cat(u16(0x0303), defRandom, defSID, defSuites, defComp, vec16(exts...))
}

// handshake wraps a body in a handshake header of the given type.
func handshake(typ int, body []byte) []byte { return cat(u8(typ), u24(len(body)), body) }

// record wraps a payload in one record of the given type.
func record(typ int, payload []byte) []byte {
	return cat(u8(typ), u16(0x0301), u16(len(payload)), payload)
}

// helloRecord is a whole ClientHello in one record.
func helloRecord(exts ...[]byte) []byte {
	return record(recordHandshake, handshake(handshakeHello, body(exts...)))
}

// refragment splits the handshake bytes carried by the records of b over
// new handshake records of the given payload sizes (the last size repeats).
func refragment(t testing.TB, b []byte, sizes ...int) []byte {
	t.Helper()
	var msg []byte
	for len(b) > 0 {
		if len(b) < 5 || b[0] != recordHandshake {
			t.Fatalf("refragment: not a handshake record: % x", b[:min(len(b), 5)])
		}
		l := int(b[3])<<8 | int(b[4])
		msg = append(msg, b[5:5+l]...)
		b = b[5+l:]
	}
	var out []byte
	for i := 0; len(msg) > 0; i++ {
		n := min(sizes[min(i, len(sizes)-1)], len(msg))
		out = append(out, record(recordHandshake, msg[:n])...)
		msg = msg[n:]
	}
	return out
}

// chromeHello is shaped like a Chrome 13x ClientHello: GREASE cipher
// suite, extensions and versions, 18 extensions including an
// X25519MLKEM768 key share, ECH GREASE and ALPS.
func chromeHello() []byte {
	const grease1, grease2, grease3 = 0x3a3a, 0x9a9a, 0xdada
	suites := vec16(u16(grease1), u16(0x1301), u16(0x1302), u16(0x1303), u16(0xc02b), u16(0xc02f),
		u16(0xc02c), u16(0xc030), u16(0xcca9), u16(0xcca8), u16(0xc013), u16(0xc014),
		u16(0x009c), u16(0x009d), u16(0x002f), u16(0x0035))
	sigalgs := vec16(u16(0x0403), u16(0x0804), u16(0x0401), u16(0x0503), u16(0x0805),
		u16(0x0501), u16(0x0806), u16(0x0601))
	keyShare := vec16(
		u16(grease2), vec16(u8(0)),
		u16(0x11ec), vec16(bytes.Repeat([]byte{0x42}, 1216)),
		u16(0x001d), vec16(bytes.Repeat([]byte{0x24}, 32)))
	exts := [][]byte{
		ext(grease1),
		sniExt("www.Example.com"),
		ext(23), // extended_master_secret
		ext(0xff01, u8(0)),
		ext(10, vec16(u16(grease2), u16(0x11ec), u16(0x001d), u16(0x0017), u16(0x0018))),
		ext(11, vec8(u8(0))),
		ext(35), // session_ticket
		alpnExt("h2", "http/1.1"),
		ext(5, u8(1), u16(0), u16(0)), // status_request
		ext(13, sigalgs),
		ext(18), // signed_certificate_timestamp
		ext(51, keyShare),
		ext(45, vec8(u8(1))),
		versExt(grease3, 0x0304, 0x0303),
		ext(27, vec8(u16(2))),                     // compress_certificate
		ext(17613, vec16(vec8([]byte("h2")))),     // application_settings
		ext(0xfe0d, bytes.Repeat([]byte{7}, 186)), // encrypted_client_hello GREASE
		ext(grease2, u8(0)),
	}
	b := cat(u16(0x0303), defRandom, defSID, suites, vec8(u8(0)), vec16(exts...))
	return record(recordHandshake, handshake(handshakeHello, b))
}

// goHello captures the ClientHello Go's crypto/tls client writes with cfg
// (the first record; Go never splits its hello).
func goHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(c, cfg).Handshake() // fails when s closes
	}()
	defer func() { s.Close(); c.Close(); <-done }()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	return readRecord(t, s)
}

// readRecord reads one record from r, independently of the package.
func readRecord(t testing.TB, r io.Reader) []byte {
	t.Helper()
	h := make([]byte, 5)
	if _, err := io.ReadFull(r, h); err != nil {
		t.Fatalf("read record header: %v", err)
	}
	b := make([]byte, 5+(int(h[3])<<8|int(h[4])))
	copy(b, h)
	if _, err := io.ReadFull(r, b[5:]); err != nil {
		t.Fatalf("read record: %v", err)
	}
	return b
}
