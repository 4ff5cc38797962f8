package proxyproto

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

var (
	v4Src = netip.MustParseAddrPort("192.0.2.1:56324")
	v4Dst = netip.MustParseAddrPort("198.51.100.7:443")
	v6Src = netip.MustParseAddrPort("[2001:db8::1]:1")
	v6Dst = netip.MustParseAddrPort("[2001:db8::2]:2")
)

// v2Sig written out from the spec, byte by byte.
var sigBytes = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// v2 builds a v2 header from a version/command byte, a family byte and a
// body, with the length field set to the body's length.
func v2(verCmd, fam byte, body ...byte) []byte {
	return cat(sigBytes, []byte{verCmd, fam, byte(len(body) >> 8), byte(len(body))}, body)
}

func TestAppendV1Exact(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		want     string
	}{
		{"spec example", netip.MustParseAddrPort("192.168.0.1:56324"), netip.MustParseAddrPort("192.168.0.11:443"),
			"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
		{"v6", v6Src, v6Dst, "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"},
		{"v4-mapped unmapped", netip.MustParseAddrPort("[::ffff:192.0.2.1]:56324"), netip.MustParseAddrPort("[::ffff:198.51.100.7]:443"),
			"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"},
		{"mixed families go as v6", v4Src, v6Dst, "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 2\r\n"},
		{"zone dropped", netip.MustParseAddrPort("[fe80::1%eth0]:0"), netip.MustParseAddrPort("[fe80::2%eth0]:65535"),
			"PROXY TCP6 fe80::1 fe80::2 0 65535\r\n"},
		{"invalid address", netip.AddrPort{}, v4Dst, "PROXY UNKNOWN\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendV1([]byte("x"), tt.src, tt.dst)
			if string(got) != "x"+tt.want {
				t.Errorf("AppendV1 = %q, want %q", got, "x"+tt.want)
			}
		})
	}
}

func TestAppendV2Exact(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		want     []byte
	}{
		{"v4", v4Src, v4Dst, cat(sigBytes, []byte{
			0x21,       // version 2, command PROXY
			0x11,       // AF_INET, STREAM
			0x00, 0x0C, // 12 address bytes
			192, 0, 2, 1, // src
			198, 51, 100, 7, // dst
			0xDC, 0x04, // 56324
			0x01, 0xBB, // 443
		})},
		{"v6", v6Src, v6Dst, cat(sigBytes, []byte{
			0x21,       // version 2, command PROXY
			0x21,       // AF_INET6, STREAM
			0x00, 0x24, // 36 address bytes
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
			0x00, 0x01, // 1
			0x00, 0x02, // 2
		})},
		{"v4-mapped unmapped", netip.MustParseAddrPort("[::ffff:192.0.2.1]:56324"), netip.MustParseAddrPort("[::ffff:198.51.100.7]:443"),
			cat(sigBytes, []byte{0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x01, 0xBB})},
		{"invalid address", v4Src, netip.AddrPort{}, cat(sigBytes, []byte{
			0x21,       // version 2, command PROXY
			0x00,       // AF_UNSPEC
			0x00, 0x00, // no addresses
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendV2([]byte("x"), tt.src, tt.dst)
			if want := cat([]byte("x"), tt.want); !bytes.Equal(got, want) {
				t.Errorf("AppendV2 =\n%x\nwant\n%x", got, want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	mapped := func(ap netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
	tests := []struct {
		name             string
		src, dst         netip.AddrPort
		wantSrc, wantDst netip.AddrPort
	}{
		{"v4", v4Src, v4Dst, v4Src, v4Dst},
		{"v6", v6Src, v6Dst, v6Src, v6Dst},
		{"v4-mapped v6 comes back v4", mapped(v4Src), mapped(v4Dst), v4Src, v4Dst},
		{"one mapped one v4", mapped(v4Src), v4Dst, v4Src, v4Dst},
		{"v4 and v6 come back v6", v4Src, v6Dst, mapped(v4Src), v6Dst},
		{"extreme ports", netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("255.255.255.255:65535"),
			netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("255.255.255.255:65535")},
		{"longest v6", netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), netip.MustParseAddrPort("[1111:2222:3333:4444:5555:6666:7777:8888]:65535"),
			netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), netip.MustParseAddrPort("[1111:2222:3333:4444:5555:6666:7777:8888]:65535")},
	}
	for _, tt := range tests {
		for _, enc := range []struct {
			version int
			append  func([]byte, netip.AddrPort, netip.AddrPort) []byte
		}{{1, AppendV1}, {2, AppendV2}} {
			b := enc.append(nil, tt.src, tt.dst)
			h, n, err := Parse(append(b, "payload"...))
			if err != nil || n != len(b) {
				t.Errorf("%s v%d: Parse(%q) = n %d, %v; want n %d", tt.name, enc.version, b, n, err, len(b))
				continue
			}
			want := Header{Version: enc.version, Src: tt.wantSrc, Dst: tt.wantDst}
			if h != want {
				t.Errorf("%s v%d: Parse = %+v, want %+v", tt.name, enc.version, h, want)
			}
		}
	}
}

// validHeaders are accepted headers with what Parse makes of them.
var validHeaders = []struct {
	name string
	in   []byte
	want Header
}{
	{"v1 TCP4", []byte("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"), Header{Version: 1, Src: v4Src, Dst: v4Dst}},
	{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"), Header{Version: 1, Src: v6Src, Dst: v6Dst}},
	{"v1 TCP6 upper case, full form", []byte("PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:0db8::0002 1 2\r\n"), Header{Version: 1, Src: v6Src, Dst: v6Dst}},
	{"v1 TCP6 v4-mapped kept as sent", []byte("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:198.51.100.7 56324 443\r\n"),
		Header{Version: 1, Src: netip.MustParseAddrPort("[::ffff:192.0.2.1]:56324"), Dst: netip.MustParseAddrPort("[::ffff:198.51.100.7]:443")}},
	{"v1 zero ports", []byte("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"), Header{Version: 1, Src: netip.MustParseAddrPort("0.0.0.0:0"), Dst: netip.MustParseAddrPort("0.0.0.0:0")}},
	{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}},
	{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff:f::ffff ffff:f::ffff 65535 65535\r\n"), Header{Version: 1, Local: true}},
	{"v1 UNKNOWN anything up to CRLF", []byte("PROXY UNKNOWN \x00\r\xff\n  \r\n"), Header{Version: 1, Local: true}},
	{"v1 UNKNOWN of 107 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", 91) + "\r\n"), Header{Version: 1, Local: true}},
	{"v2 TCP4", v2(0x21, 0x11, 192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x01, 0xBB), Header{Version: 2, Src: v4Src, Dst: v4Dst}},
	{"v2 TCP6", v2(0x21, 0x21,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
		0, 1, 0, 2), Header{Version: 2, Src: v6Src, Dst: v6Dst}},
	{"v2 TCP4 with TLVs", v2(0x21, 0x11, 192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x01, 0xBB,
		0x04, 0x00, 0x00, // NOOP, empty
		0x02, 0x00, 0x03, 'a', 'b', 'c', // AUTHORITY "abc"
	), Header{Version: 2, Src: v4Src, Dst: v4Dst}},
	{"v2 LOCAL", v2(0x20, 0x00), Header{Version: 2, Local: true}},
	{"v2 LOCAL ignores family and block", v2(0x20, 0xff, 1, 2, 3, 4, 5), Header{Version: 2, Local: true}},
	{"v2 PROXY UNSPEC", v2(0x21, 0x00), Header{Version: 2, Local: true}},
	{"v2 PROXY UNSPEC with TLV", v2(0x21, 0x00, 0x04, 0x00, 0x01, 0x00), Header{Version: 2, Local: true}},
	{"v2 UDP4", v2(0x21, 0x12, 192, 0, 2, 1, 198, 51, 100, 7, 0, 53, 0, 53), Header{Version: 2, Local: true}},
	{"v2 UNIX stream", v2(0x21, 0x31, make([]byte, 216)...), Header{Version: 2, Local: true}},
	{"v2 longest", v2(0x21, 0x11, append(make([]byte, 12), append([]byte{0x04, 0x0f, 0xf1}, make([]byte, 4096-15)...)...)...),
		Header{Version: 2, Src: netip.MustParseAddrPort("0.0.0.0:0"), Dst: netip.MustParseAddrPort("0.0.0.0:0")}},
}

func TestParseValid(t *testing.T) {
	for _, tt := range validHeaders {
		t.Run(tt.name, func(t *testing.T) {
			for _, tail := range []string{"", "GET / HTTP/1.1\r\n", "\r\n\r\n\x00"} {
				h, n, err := Parse(append(bytes.Clone(tt.in), tail...))
				if err != nil || n != len(tt.in) || h != tt.want {
					t.Errorf("Parse(header+%q) = %+v, %d, %v; want %+v, %d, nil", tail, h, n, err, tt.want, len(tt.in))
				}
			}
		})
	}
}

// Every proper prefix of a valid header asks for more bytes.
func TestParseAllPrefixesIncomplete(t *testing.T) {
	for _, tt := range validHeaders {
		for k := range len(tt.in) {
			if _, _, err := Parse(tt.in[:k]); err != ErrIncomplete {
				t.Errorf("%s: Parse(first %d of %d bytes %q) = %v, want ErrIncomplete", tt.name, k, len(tt.in), tt.in[:k], err)
			}
		}
	}
}

func TestParseInvalid(t *testing.T) {
	v4Block := []byte{192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x01, 0xBB}
	tests := []struct {
		name string
		in   []byte
		want error // ErrIncomplete, ErrNotProxy or ErrMalformed
	}{
		{"empty", nil, ErrIncomplete},
		{"HTTP request", []byte("GET / HTTP/1.1\r\n"), ErrNotProxy},
		{"TLS client hello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), ErrNotProxy},
		{"SSH banner", []byte("SSH-2.0-OpenSSH_9.6\r\n"), ErrNotProxy},
		{"P then not PROXY", []byte("POST / HTTP/1.1\r\n"), ErrNotProxy},
		{"lower case proxy", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNotProxy},
		{"CR LF then not v2", []byte("\r\nHello"), ErrNotProxy},
		{"v2 signature one bit off", []byte("\r\n\r\n\x00\r\nQUIT\x0b"), ErrNotProxy},

		// v1
		{"v1 no space after PROXY", []byte("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNotProxy},
		{"v1 two spaces after PROXY", []byte("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 bad family", []byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 bad family early", []byte("PROXY UDP"), ErrMalformed},
		{"v1 lower case family", []byte("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 UDP4", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 UNKNOWN glued", []byte("PROXY UNKNOWNX\r\n"), ErrMalformed},
		{"v1 UNKNOWN CR without LF", []byte("PROXY UNKNOWN\rX"), ErrMalformed},
		{"v1 TCP4 with v6 addresses", []byte("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n"), ErrMalformed},
		{"v1 TCP6 with v4 addresses", []byte("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 TCP4 mixed", []byte("PROXY TCP4 1.2.3.4 ::1 1 2\r\n"), ErrMalformed},
		{"v1 leading zero in octet", []byte("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 octet above 255", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 three octets", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 five octets", []byte("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 v4 too long", []byte("PROXY TCP4 1.2.3.4........."), ErrMalformed},
		{"v1 v6 zone", []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n"), ErrMalformed},
		{"v1 v6 two ellipses", []byte("PROXY TCP6 1::2::3 ::1 1 2\r\n"), ErrMalformed},
		{"v1 v6 above 39 chars", []byte("PROXY TCP6 0000:0000:0000:0000:0000:ffff:192.000.002.001 ::1 1 2\r\n"), ErrMalformed},
		{"v1 double space between addresses", []byte("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 tab separator", []byte("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 port above 65535", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), ErrMalformed},
		{"v1 port above 65535 early", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 70000"), ErrMalformed},
		{"v1 port six digits", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n"), ErrMalformed},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), ErrMalformed},
		{"v1 port leading zero early", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 00"), ErrMalformed},
		{"v1 port plus sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), ErrMalformed},
		{"v1 port minus sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), ErrMalformed},
		{"v1 port hex", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n"), ErrMalformed},
		{"v1 port missing", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), ErrMalformed},
		{"v1 empty port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n"), ErrMalformed},
		{"v1 LF only", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ErrMalformed},
		{"v1 CR then not LF", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), ErrMalformed},
		{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), ErrMalformed},
		{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), ErrMalformed},
		{"v1 UNKNOWN 108 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r\n"), ErrMalformed},
		{"v1 UNKNOWN no CRLF in 107 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", 93)), ErrMalformed},
		{"v1 UNKNOWN CR at byte 107", []byte("PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r"), ErrMalformed},
		{"v1 still incomplete at 106 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", 92)), ErrIncomplete},

		// v2
		{"v2 version 1", v2(0x11, 0x11, v4Block...), ErrMalformed},
		{"v2 version 3", v2(0x31, 0x11, v4Block...), ErrMalformed},
		{"v2 bad version early", cat(sigBytes, []byte{0x11}), ErrMalformed},
		{"v2 command 2", v2(0x22, 0x11, v4Block...), ErrMalformed},
		{"v2 command 0xf early", cat(sigBytes, []byte{0x2f}), ErrMalformed},
		{"v2 family 4", v2(0x21, 0x41, v4Block...), ErrMalformed},
		{"v2 transport 3", v2(0x21, 0x13, v4Block...), ErrMalformed},
		{"v2 bad family early", cat(sigBytes, []byte{0x21, 0xf1}), ErrMalformed},
		{"v2 TCP4 length 11", v2(0x21, 0x11, v4Block[:11]...), ErrMalformed},
		{"v2 TCP6 length 12", v2(0x21, 0x21, v4Block...), ErrMalformed},
		{"v2 UNIX length 215", v2(0x21, 0x31, make([]byte, 215)...), ErrMalformed},
		{"v2 short length early", cat(sigBytes, []byte{0x21, 0x11, 0x00, 0x00}), ErrMalformed},
		{"v2 length above limit", cat(sigBytes, []byte{0x21, 0x11, 0x10, 0x01}), ErrMalformed},
		{"v2 length above limit LOCAL", cat(sigBytes, []byte{0x20, 0x00, 0xff, 0xff}), ErrMalformed},
		{"v2 TLV overrun", v2(0x21, 0x11, cat(v4Block, []byte{0x01, 0x00, 0x05, 'h', '2'})...), ErrMalformed},
		{"v2 TLV overrun by one", v2(0x21, 0x11, cat(v4Block, []byte{0x04, 0x00, 0x01})...), ErrMalformed},
		{"v2 second TLV overrun", v2(0x21, 0x11, cat(v4Block, []byte{0x04, 0x00, 0x00, 0x04, 0x00, 0x02, 0})...), ErrMalformed},
		{"v2 stray byte after addresses", v2(0x21, 0x11, cat(v4Block, []byte{0x04})...), ErrMalformed},
		{"v2 stray two bytes after TLV", v2(0x21, 0x21, cat(make([]byte, 36), []byte{0x04, 0x00, 0x00, 0x04, 0x00})...), ErrMalformed},
		{"v2 waits for the body", cat(sigBytes, []byte{0x21, 0x11, 0x00, 0x0c}, v4Block[:5]), ErrIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %+v, %d, %v; want %v", tt.in, h, n, err, tt.want)
			}
			if h != (Header{}) || n != 0 {
				t.Errorf("Parse(%q) failed but returned %+v, %d", tt.in, h, n)
			}
			if tt.want == ErrMalformed && (err == ErrMalformed || !strings.HasPrefix(err.Error(), "proxyproto: v")) {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
}

// Random bytes that do not start like either signature are never a
// header.
func TestParseRandomBinary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64)
	for range 10000 {
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		n := 1 + r.IntN(len(buf))
		_, _, err := Parse(buf[:n])
		switch {
		case buf[0] != 'P' && buf[0] != '\r':
			if err != ErrNotProxy {
				t.Fatalf("Parse(%q) = %v, want ErrNotProxy", buf[:n], err)
			}
		case err == nil:
			t.Fatalf("Parse(%q) accepted random bytes", buf[:n])
		}
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", `proxyproto: v1: bad source port "65536"`},
		{"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", `proxyproto: v1: bad source address "::1"`},
		{"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", `proxyproto: v1: bad source address "1.2.3.4"`},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", `proxyproto: v1: bad destination port "2\n"`},
		{"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", `proxyproto: v1: bad source address "1.2.3.4\t5.6.7.8"`},
		{"PROXY FOO\r\n", `proxyproto: v1: bad protocol "FOO\r\n"`},
		{string(v2(0x21, 0x11, 1, 2, 3)), `proxyproto: v2: length 3 short of the 12 address bytes of family 0x11`},
		{string(v2(0x21, 0x11, cat(make([]byte, 12), []byte{0xe0, 0, 9, 1})...)), `proxyproto: v2: TLV type 0xe0 of 12 bytes overruns the header by 8`},
	}
	for _, tt := range tests {
		_, _, err := Parse([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) error = %v, want %s", tt.in, err, tt.want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	v1 := AppendV1(nil, v6Src, v6Dst)
	v2 := AppendV2(nil, v6Src, v6Dst)
	buf := make([]byte, 0, 128)
	for name, f := range map[string]func(){
		"Parse v1":   func() { Parse(v1) },
		"Parse v2":   func() { Parse(v2) },
		"AppendV1":   func() { AppendV1(buf[:0], v6Src, v6Dst) },
		"AppendV2":   func() { AppendV2(buf[:0], v6Src, v6Dst) },
		"AppendV1 4": func() { AppendV1(buf[:0], v4Src, v4Dst) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}
