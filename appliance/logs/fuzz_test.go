package logs

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzAccessLine: whatever the record holds, its line is printable ASCII,
// at most MaxLine bytes, and has HAProxy's fields at their places (the
// request line last, quoted, with no quote inside).
//
//	go test -run '^$' -fuzz FuzzAccessLine -fuzztime 30s ./appliance/logs
func FuzzAccessLine(f *testing.F) {
	f.Add(true, "web", "www", "web1", 200, int64(512), "GET", "www.example.com", "/x?y", "HTTP/1.1", byte('-'), byte('-'), 3, true, int64(-1))
	f.Add(false, "db", "", "", 0, int64(0), "", "", "", "", byte(0), byte(0xff), 0, false, int64(5))
	f.Fuzz(func(t *testing.T, http bool, svc, be, srv string, status int, bytes int64, method, host, path, proto string,
		t0, t1 byte, retries int, redisp bool, ms int64) {
		r := Access{Start: time.Unix(1796460000, 123e6), Client: netip.MustParseAddrPort("[2001:db8::1]:443"),
			Service: svc, HTTP: http, Backend: be, Server: srv, Status: status, BytesOut: bytes,
			Request: time.Duration(ms) * time.Millisecond, Queue: -1, Connect: 0, Response: 1, Total: time.Duration(ms),
			Retries: retries, Redispatched: redisp, Termination: [2]byte{t0, t1},
			Method: method, Host: host, Path: path, Proto: proto}
		line := string(appendAccess(nil, &r))
		if len(line) > MaxLine {
			t.Fatalf("%d bytes", len(line))
		}
		for i := 0; i < len(line); i++ {
			if line[i] < 32 || line[i] > 126 {
				t.Fatalf("byte %#x at %d in %q", line[i], i, line)
			}
		}
		if !http {
			if n := len(strings.Split(line, " ")); n != 9 {
				t.Fatalf("%d fields in tcp line %q", n, line)
			}
			return
		}
		head, req, ok := strings.Cut(line, " \"")
		if !ok || !strings.HasSuffix(req, "\"") || strings.Contains(req[:len(req)-1], "\"") {
			t.Fatalf("request line not last and quoted: %q", line)
		}
		if n := len(strings.Split(head, " ")); n != 13 {
			t.Fatalf("%d fields before the request in %q", n, line)
		}
	})
}
