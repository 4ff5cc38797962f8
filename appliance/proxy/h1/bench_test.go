package h1

import (
	"strings"
	"testing"
)

// browserGET is a typical 400-byte browser request with ten fields.
const browserGET = "GET /assets/app.js?v=3f2a9c HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=4b1d2c3e5f60718293a4b5c6d7e8f901\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"\r\n"

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(browserGET)
	var req Request
	if err := ParseRequest(buf, DefaultLimits, &req); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseRequest(buf, DefaultLimits, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte("HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n" +
		"Content-Type: application/javascript\r\nContent-Length: 51234\r\n" +
		"Cache-Control: public, max-age=31536000\r\nETag: \"5f2a-9c\"\r\n" +
		"Vary: Accept-Encoding\r\nServer: backend\r\n\r\n")
	var resp Response
	if err := ParseResponse(buf, DefaultLimits, &resp); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(buf, DefaultLimits, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunked(b *testing.B) {
	var body strings.Builder
	for range 16 {
		body.WriteString("1000;ext=1\r\n" + strings.Repeat("x", 0x1000) + "\r\n")
	}
	body.WriteString("0\r\nX-Sum: 1\r\n\r\n")
	buf := []byte(body.String())
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var c Chunked
	for b.Loop() {
		c.Reset()
		if _, done, err := c.Scan(buf); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

func TestParseRequestAllocs(t *testing.T) {
	buf := []byte(browserGET)
	if len(buf) < 380 || len(buf) > 420 {
		t.Fatalf("browserGET is %d bytes, want about 400", len(buf))
	}
	req := Request{Headers: make([]Header, 0, 16)}
	allocs := testing.AllocsPerRun(100, func() {
		if err := ParseRequest(buf, DefaultLimits, &req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per ParseRequest, want 0", allocs)
	}
}
