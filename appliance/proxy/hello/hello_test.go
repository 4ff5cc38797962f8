package hello

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	tls12 = 0x0303
	tls13 = 0x0304
)

// checkInfo fails unless info is want.
func checkInfo(t *testing.T, info, want Info) {
	t.Helper()
	if info.SNI != want.SNI || !slices.Equal(info.ALPN, want.ALPN) || !slices.Equal(info.Versions, want.Versions) {
		t.Fatalf("got %+v, want %+v", info, want)
	}
}

// checkPrefixes checks that every proper prefix of the hello b is ErrShort
// and that b parses to want, also with bytes after it.
func checkPrefixes(t *testing.T, b []byte, want Info) {
	t.Helper()
	info, n, err := parse(b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if n != len(b) {
		t.Fatalf("hello ends at %d, want %d", n, len(b))
	}
	checkInfo(t, info, want)
	for k := range len(b) {
		if _, err := Parse(b[:k]); err != ErrShort {
			t.Fatalf("prefix of %d of %d bytes: %v, want ErrShort", k, len(b), err)
		}
	}
	for _, tail := range [][]byte{{0}, []byte("GET / HTTP/1.1\r\n"), record(23, []byte("early data"))} {
		info, err := Parse(cat(b, tail))
		if err != nil {
			t.Fatalf("with %q after: %v", tail, err)
		}
		checkInfo(t, info, want)
	}
}

func TestGoHellos(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
		want Info
	}{
		{"tls13/sni/alpn", &tls.Config{ServerName: "Backend.Example.ORG", NextProtos: []string{"h2", "http/1.1"}},
			Info{SNI: "backend.example.org", ALPN: []string{"h2", "http/1.1"}, Versions: []uint16{tls13, tls12}}},
		{"tls13/trailing-dot", &tls.Config{ServerName: "example.com."},
			Info{SNI: "example.com", Versions: []uint16{tls13, tls12}}},
		{"tls13/no-sni", &tls.Config{InsecureSkipVerify: true},
			Info{Versions: []uint16{tls13, tls12}}},
		{"tls13/ip-no-sni", &tls.Config{ServerName: "192.0.2.1", InsecureSkipVerify: true},
			Info{Versions: []uint16{tls13, tls12}}},
		{"tls12/sni/alpn", &tls.Config{ServerName: "a.example", NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12},
			Info{SNI: "a.example", ALPN: []string{"http/1.1"}, Versions: []uint16{tls12}}},
		{"tls10-12", &tls.Config{ServerName: "old.example", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12},
			Info{SNI: "old.example", Versions: []uint16{tls12, 0x0302, 0x0301}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := goHello(t, tt.cfg)
			checkPrefixes(t, b, tt.want)
			// The same handshake bytes split over records parse the same.
			for _, sizes := range [][]int{{1}, {3, 500}, {100}, {len(b) - 6, 1}} {
				f := refragment(t, b, sizes...)
				info, n, err := parse(f)
				if err != nil || n != len(f) {
					t.Fatalf("in records of %v: %v, end %d of %d", sizes, err, n, len(f))
				}
				checkInfo(t, info, tt.want)
			}
		})
	}
}

func TestChromeHello(t *testing.T) {
	b := chromeHello()
	want := Info{SNI: "www.example.com", ALPN: []string{"h2", "http/1.1"}, Versions: []uint16{tls13, tls12}}
	checkPrefixes(t, b, want)
	checkPrefixes(t, refragment(t, b, 700), want)
}

// captureHello listens on loopback, runs cmd with the address, and
// returns the bytes of the hello its client sent (read with Read).
func captureHello(t *testing.T, cmd func(addr string) *exec.Cmd) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		_, b, err := Read(c, time.Now().Add(10*time.Second), nil)
		got <- result{b, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := cmd(ln.Addr().String())
	c = exec.CommandContext(ctx, c.Path, c.Args[1:]...)
	out, _ := c.CombinedOutput() // the client fails when we close
	// A client that exited without connecting leaves Accept waiting.
	ln.Close()
	r := <-got
	if r.err != nil {
		t.Fatalf("%v: %v\nclient output:\n%s", c.Args, r.err, out)
	}
	return r.b
}

func TestOpenSSLHellos(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed:", err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want Info
	}{
		{"tls13/sni/alpn", []string{"-servername", "Svc.Example.NET", "-alpn", "h2,http/1.1"},
			Info{SNI: "svc.example.net", ALPN: []string{"h2", "http/1.1"}, Versions: []uint16{tls13, tls12}}},
		{"tls12/sni", []string{"-servername", "svc.example.net", "-tls1_2"},
			Info{SNI: "svc.example.net", Versions: []uint16{tls12}}},
		{"no-sni", []string{"-noservername", "-alpn", "imap"},
			Info{ALPN: []string{"imap"}, Versions: []uint16{tls13, tls12}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := captureHello(t, func(addr string) *exec.Cmd {
				return exec.Command(openssl, append([]string{"s_client", "-connect", addr}, tt.args...)...)
			})
			// Which older versions openssl also offers depends on its
			// configuration: check the newest ones.
			info, err := Parse(b)
			if err != nil || !slices.Equal(info.Versions[:min(len(info.Versions), len(tt.want.Versions))], tt.want.Versions) {
				t.Fatalf("got %+v, %v; want versions starting %v", info, err, tt.want.Versions)
			}
			tt.want.Versions = info.Versions
			checkPrefixes(t, b, tt.want)
		})
	}
}

func TestCurlHello(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed:", err)
	}
	b := captureHello(t, func(addr string) *exec.Cmd {
		_, port, _ := net.SplitHostPort(addr)
		return exec.Command(curl, "-sk", "--max-time", "10", "--resolve", "curl.example:"+port+":127.0.0.1",
			"https://curl.example:"+port+"/")
	})
	info, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.SNI != "curl.example" || !slices.Contains(info.ALPN, "http/1.1") || !slices.Contains(info.Versions, tls12) {
		t.Fatalf("curl hello: %+v", info)
	}
}

// A valid hello's body with one field replaced, for the table below.
func bodyWith(version, sid, suites, comp, exts []byte) []byte {
	return cat(version, defRandom, sid, suites, comp, exts)
}

// manyExts returns n distinct empty extensions of types from 1000 up.
func manyExts(n int) [][]byte {
	var exts [][]byte
	for i := range n {
		exts = append(exts, ext(1000+i))
	}
	return exts
}

func TestValid(t *testing.T) {
	v12 := []uint16{tls12}
	for _, tt := range []struct {
		name string
		in   []byte
		want Info
	}{
		{"no extensions", record(22, handshake(1, bodyWith(u16(0x0303), defSID, defSuites, defComp, nil))), Info{Versions: v12}},
		{"empty extensions block", helloRecord(), Info{Versions: v12}},
		{"tls1.0 legacy version", record(22, handshake(1, bodyWith(u16(0x0301), vec8(), defSuites, defComp, nil))), Info{Versions: []uint16{0x0301}}},
		{"empty session id", record(22, handshake(1, bodyWith(u16(0x0303), vec8(), defSuites, defComp, vec16(sniExt("x"))))), Info{SNI: "x", Versions: v12}},
		{"upper case", helloRecord(sniExt("WWW.EXAMPLE.COM")), Info{SNI: "www.example.com", Versions: v12}},
		{"trailing dot", helloRecord(sniExt("example.com.")), Info{SNI: "example.com", Versions: v12}},
		{"A-label and underscore", helloRecord(sniExt("xn--bcher-kva.example_1.test")), Info{SNI: "xn--bcher-kva.example_1.test", Versions: v12}},
		{"253-byte name", helloRecord(sniExt(strings.Repeat("a.", 126) + "b")), Info{SNI: strings.Repeat("a.", 126) + "b", Versions: v12}},
		{"other name type skipped", helloRecord(ext(0, vec16(u8(7), vec16([]byte("opaque\x00")), u8(0), vec16([]byte("h.example"))))), Info{SNI: "h.example", Versions: v12}},
		{"versions with GREASE", helloRecord(versExt(0x2a2a, tls13, tls12)), Info{Versions: []uint16{tls13, tls12}}},
		{"only GREASE versions", helloRecord(versExt(0x2a2a)), Info{}},
		{"ALPN opaque names", helloRecord(alpnExt("\x00\xff", "x")), Info{ALPN: []string{"\x00\xff", "x"}, Versions: v12}},
		{"pre_shared_key last", helloRecord(sniExt("p.example"), ext(41, u8(9))), Info{SNI: "p.example", Versions: v12}},
		{"40 distinct extensions", helloRecord(append(manyExts(40), sniExt("many.example"))...), Info{SNI: "many.example", Versions: v12}},
		{"record version 0x0303", cat([]byte{22, 3, 3}, helloRecord(sniExt("r.example"))[3:]), Info{SNI: "r.example", Versions: v12}},
		{"hello then another handshake message in the record",
			record(22, cat(handshake(1, body(sniExt("t.example"))), handshake(20, []byte("junk")))), Info{SNI: "t.example", Versions: v12}},
		{"hello then a partial record", cat(helloRecord(sniExt("t.example")), []byte{23, 3}), Info{SNI: "t.example", Versions: v12}},
		{"hello ends inside a longer record", record(22, cat(handshake(1, body(sniExt("t.example"))), []byte{0})), Info{SNI: "t.example", Versions: v12}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			checkInfo(t, info, tt.want)
		})
	}
}

func TestMalformed(t *testing.T) {
	sni := sniExt("m.example")
	h := helloRecord(sni)
	big := helloRecord(ext(21, make([]byte, 16000))) // padding: one record of 16k
	for _, tt := range []struct {
		name   string
		in     []byte
		reason string
		msg    string // a substring of the error
	}{
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), ReasonNotTLS, "0x47"},
		{"HTTP first byte only", []byte("G"), ReasonNotTLS, ""},
		{"SSLv2 hello", []byte{0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15}, ReasonNotTLS, "0x80"},
		{"application data record first", record(23, []byte("data")), ReasonNotTLS, "0x17"},
		{"alert record first", record(21, []byte{2, 40}), ReasonNotTLS, ""},
		{"record major version 2", []byte{22, 2, 0}, ReasonNotTLS, "major 2"},
		{"record version SSLv3", []byte{22, 3, 0}, ReasonMalformed, "version 0x0300"},
		{"record version 0x0304", []byte{22, 3, 4, 0, 10}, ReasonMalformed, "0x0304"},
		{"zero-length record", []byte{22, 3, 1, 0, 0}, ReasonMalformed, "empty"},
		{"record longer than 2^14", []byte{22, 3, 1, 0x40, 0x01}, ReasonMalformed, "16385"},
		{"server hello", record(22, handshake(2, body())), ReasonMalformed, "handshake type 2"},
		{"handshake type in a 1-byte record", record(22, []byte{16}), ReasonMalformed, "handshake type 16"},
		{"handshake length beyond MaxHello", record(22, cat(u8(1), u24(20000))), ReasonTooLong, "20000"},
		{"record ends mid-hello", record(22, handshake(1, body())[:4+10]), ReasonShort, ""},
		{"handshake length cuts random", record(22, cat(u8(1), u24(10), body())), ReasonMalformed, "random needs 32 bytes, ClientHello has 8 left"},
		{"legacy_version SSLv3", record(22, handshake(1, bodyWith(u16(0x0300), defSID, defSuites, defComp, nil))), ReasonMalformed, "0x0300"},
		{"legacy_version 2.0", record(22, handshake(1, bodyWith(u16(0x0200), defSID, defSuites, defComp, nil))), ReasonMalformed, "0x0200"},
		{"session id 33", record(22, handshake(1, bodyWith(u16(0x0303), vec8(make([]byte, 33)), defSuites, defComp, nil))), ReasonMalformed, "session id length 33"},
		{"session id overruns hello", record(22, handshake(1, cat(u16(0x0303), defRandom, u8(20), make([]byte, 5)))), ReasonMalformed, "session id needs 20 bytes, ClientHello has 5 left"},
		{"odd cipher suites", record(22, handshake(1, bodyWith(u16(0x0303), defSID, vec16(u16(0x1301), u8(0)), defComp, nil))), ReasonMalformed, "cipher suites length 3"},
		{"empty cipher suites", record(22, handshake(1, bodyWith(u16(0x0303), defSID, vec16(), defComp, nil))), ReasonMalformed, "cipher suites length 0"},
		{"cipher suites overrun", record(22, handshake(1, cat(u16(0x0303), defRandom, defSID, u16(100), make([]byte, 10)))), ReasonMalformed, "cipher suites length 100 exceeds ClientHello (10 left)"},
		{"no compression methods", record(22, handshake(1, bodyWith(u16(0x0303), defSID, defSuites, vec8(), nil))), ReasonMalformed, "no compression"},
		{"compression overrun", record(22, handshake(1, cat(u16(0x0303), defRandom, defSID, defSuites, u8(3), u8(0)))), ReasonMalformed, "compression methods length 3 exceeds"},
		{"one byte for the extensions length", record(22, handshake(1, bodyWith(u16(0x0303), defSID, defSuites, defComp, u8(0)))), ReasonMalformed, "extensions block length needs 2 bytes, ClientHello has 1 left"},
		{"extensions block short of the hello", record(22, handshake(1, bodyWith(u16(0x0303), defSID, defSuites, defComp, cat(vec16(sni), []byte{0, 0})))), ReasonMalformed, "ClientHello has 2 bytes after extensions block"},
		{"extensions block overruns the hello", record(22, handshake(1, bodyWith(u16(0x0303), defSID, defSuites, defComp, cat(u16(len(sni)+4), sni)))), ReasonMalformed, "extensions block length 22 exceeds ClientHello (18 left)"},
		{"extension overruns the block", helloRecord(u16(0), u16(40), make([]byte, 8)), ReasonMalformed, "extension 0 (server_name) length 40 exceeds extensions block (8 left)"},
		{"extension header cut", helloRecord(sni, []byte{0, 16, 0}), ReasonMalformed, "extension header needs 4 bytes, extensions block has 3 left"},
		{"duplicate extension", helloRecord(alpnExt("h2"), sni, alpnExt("h2")), ReasonMalformed, "duplicate extension 16"},
		{"duplicate GREASE extension", helloRecord(ext(0x1a1a), ext(0x1a1a)), ReasonMalformed, "duplicate extension 6682 (GREASE)"},
		{"duplicate after 32 extensions", helloRecord(append(manyExts(40), ext(1005))...), ReasonMalformed, "duplicate extension 1005"},
		{"pre_shared_key not last", helloRecord(ext(41, u8(0)), sni), ReasonMalformed, "after pre_shared_key"},
		{"empty server_name extension", helloRecord(ext(0)), ReasonMalformed, "server_name list length needs 2 bytes"},
		{"empty server_name list", helloRecord(ext(0, vec16())), ReasonMalformed, "server_name list is empty"},
		{"server_name list short of the extension", helloRecord(ext(0, vec16(u8(0), vec16([]byte("a"))), u8(0))), ReasonMalformed, "extension 0 (server_name) has 1 bytes after server_name list"},
		{"two host_names", helloRecord(ext(0, vec16(u8(0), vec16([]byte("a.example")), u8(0), vec16([]byte("b.example"))))), ReasonMalformed, "second host_name"},
		{"empty host_name", helloRecord(sniExt("")), ReasonMalformed, "empty server name"},
		{"host_name only a dot", helloRecord(sniExt(".")), ReasonMalformed, "only a dot"},
		{"NUL in host_name", helloRecord(sniExt("good.example\x00.evil")), ReasonMalformed, "NUL at byte 12"},
		{"space in host_name", helloRecord(sniExt("a b")), ReasonMalformed, "0x20"},
		{"UTF-8 host_name", helloRecord(sniExt("bücher.example")), ReasonMalformed, "0xc3"},
		{"empty label", helloRecord(sniExt("a..b")), ReasonMalformed, "empty label"},
		{"leading dot", helloRecord(sniExt(".a")), ReasonMalformed, "empty label"},
		{"two trailing dots", helloRecord(sniExt("a..")), ReasonMalformed, "empty label"},
		{"254-byte host_name", helloRecord(sniExt(strings.Repeat("a", 254))), ReasonMalformed, "254 bytes"},
		{"host_name overruns list", helloRecord(ext(0, vec16(u8(0), u16(50), []byte("abc")))), ReasonMalformed, "server name length 50 exceeds server_name list (3 left)"},
		{"empty ALPN list", helloRecord(ext(16, vec16())), ReasonMalformed, "protocol_name_list is empty"},
		{"empty ALPN name", helloRecord(alpnExt("h2", "")), ReasonMalformed, "empty ALPN protocol name"},
		{"ALPN name overruns list", helloRecord(ext(16, vec16(u8(9), []byte("h2")))), ReasonMalformed, "protocol name length 9 exceeds"},
		{"empty supported_versions", helloRecord(ext(43, vec8())), ReasonMalformed, "length 0"},
		{"odd supported_versions", helloRecord(ext(43, vec8(u16(tls13), u8(3)))), ReasonMalformed, "length 3"},
		{"supported_versions short of the extension", helloRecord(ext(43, vec8(u16(tls13)), u8(0))), ReasonMalformed, "has 1 bytes after supported_versions list"},
		{"application data between fragments", cat(refragment(t, h, 20)[:25], record(23, []byte("x")), refragment(t, h, 20)[25:]), ReasonMalformed, "record 1 has content type 23"},
		{"zero-length second record", cat(refragment(t, h, 20)[:25], []byte{22, 3, 1, 0, 0}), ReasonMalformed, "record 1 is empty"},
		{"second record version 0x0200", cat(refragment(t, h, 20)[:25], []byte{22, 2, 0}), ReasonMalformed, "record 1 version major 2"},
		{"records past MaxHello", refragment(t, big, 100), ReasonTooLong, "ClientHello length 16083 needs more than 16404 bytes"},
		{"second record ends past MaxHello", cat(refragment(t, big, 100)[:105], []byte{22, 3, 1, 0x40, 0}), ReasonTooLong, "record 1 ends at byte 16494, past 16404"},
		{"first record past MaxHello in small records", refragment(t, big, 10), ReasonTooLong, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Parse(tt.in)
			if got := Reason(err); got != tt.reason {
				t.Fatalf("Parse: %v (reason %q), want reason %q", err, got, tt.reason)
			}
			if !strings.Contains(errString(err), tt.msg) {
				t.Fatalf("error %q does not contain %q", err, tt.msg)
			}
			if !reflectZero(info) {
				t.Fatalf("error %v with info %+v", err, info)
			}
			if err == ErrShort {
				return
			}
			// The error is final: more bytes do not change the reason.
			if got := Reason(func() error { _, err := Parse(cat(tt.in, make([]byte, 100))); return err }()); got != tt.reason {
				t.Fatalf("with bytes after: reason %q, want %q", got, tt.reason)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotTLS) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("%v wraps no sentinel", err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func reflectZero(info Info) bool {
	return info.SNI == "" && info.ALPN == nil && info.Versions == nil
}

// TestMalformedEarly checks that a length error in the first record is
// found before the rest of the hello has arrived.
func TestMalformedEarly(t *testing.T) {
	b := record(22, handshake(1, bodyWith(u16(0x0303), vec8(make([]byte, 33)), defSuites, defComp, vec16(sniExt("a")))))
	for k := 5 + 4 + 2 + 32 + 1; k <= len(b); k++ {
		if _, err := Parse(b[:k]); Reason(err) != ReasonMalformed {
			t.Fatalf("%d of %d bytes: %v, want malformed", k, len(b), err)
		}
	}
	// An extension that overruns its block is found as soon as its
	// header is in, even though the hello's end is far off.
	sni := sniExt("a.example")
	b = helloRecord(u16(16), u16(60000), sni)
	if _, err := Parse(b[:len(b)-len(sni)]); Reason(err) != ReasonMalformed {
		t.Fatalf("overrunning extension header: %v", err)
	}
}

func TestReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrShort, "short"},
		{malformed("x"), "malformed"},
		{notTLS("x"), "not_tls"},
		{tooLong("x"), "too_long"},
		{errors.New("reset"), "io"},
	} {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if tt.want != "" && !slices.Contains(Reasons(), tt.want) {
			t.Errorf("Reasons() lacks %q", tt.want)
		}
	}
}

// TestFragmentedExhaustive splits a real hello at every point into two
// records and checks each split parses the same and every prefix is short.
func TestFragmentedExhaustive(t *testing.T) {
	b := goHello(t, &tls.Config{ServerName: "split.example", NextProtos: []string{"h2"}, MaxVersion: tls.VersionTLS12})
	want := Info{SNI: "split.example", ALPN: []string{"h2"}, Versions: []uint16{tls12}}
	msgLen := len(b) - 5
	for cut := 1; cut < msgLen; cut += 1 + cut/8 {
		f := refragment(t, b, cut, msgLen)
		info, n, err := parse(f)
		if err != nil || n != len(f) {
			t.Fatalf("cut %d: %v, end %d of %d", cut, err, n, len(f))
		}
		checkInfo(t, info, want)
		for k := range len(f) {
			if _, err := Parse(f[:k]); err != ErrShort {
				t.Fatalf("cut %d, prefix %d: %v", cut, k, err)
			}
		}
	}
}
