package logs

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// accessCases are access records and their lines; docs/logging.md shows
// them (TestDocExamples keeps it exact).
var accessCases = func() []struct {
	name string
	r    Access
	want string
} {
	start := time.Date(2026, 12, 5, 9, 0, 0, 123_456_789, time.Local)
	date := "[05/Dec/2026:09:00:00.123]"
	ms := time.Millisecond
	return []struct {
		name string
		r    Access
		want string
	}{{
		name: "http",
		r:    *httpRecord(7),
		want: "10.0.0.5:51234 " + date + " web www/web1 0/0/1/3/5 200 512 - - ---- -/-/-/-/0 -/- {www.example.com} \"GET /item/7 HTTP/1.1\"",
	}, {
		name: "http no server, client aborted, nothing reached",
		r: Access{Start: start, Client: netip.MustParseAddrPort("[2001:db8::1]:443"), Service: "web", HTTP: true,
			Request: -1, Queue: -1, Connect: -1, Response: -1, Total: 8490 * ms, Termination: [2]byte{'C', 'R'}},
		want: "2001:db8::1:443 " + date + " web web/<NOSRV> -1/-1/-1/-1/8490 -1 0 - - CR-- -/-/-/-/0 -/- {} \"<BADREQ>\"",
	}, {
		name: "http redispatched, escaped request",
		r: Access{Start: start, Client: netip.MustParseAddrPort("[::ffff:10.1.2.3]:1000"), Service: "api", HTTP: true,
			Backend: "pool", Server: "s2", Status: 503, BytesOut: 0, Request: 2 * ms, Queue: 10 * ms, Connect: 3000 * ms,
			Response: -1, Total: 3012 * ms, Retries: 3, Redispatched: true, Termination: [2]byte{'S', 'C'},
			Method: "GET", Host: "a b{c}|#", Path: "/q?\"x\"#\x01\xff", Proto: "HTTP/1.0"},
		want: "10.1.2.3:1000 " + date + " api pool/s2 2/10/3000/-1/3012 503 0 - - SC-- -/-/-/-/+3 -/- {a#20b#7Bc#7D#7C#23} \"GET /q?#22x#22#23#01#FF HTTP/1.0\"",
	}, {
		name: "tcp",
		r: Access{Start: start, Client: netip.MustParseAddrPort("10.0.1.2:33313"), Service: "db", Backend: "bck",
			Server: "srv1", Queue: 0, Connect: 0, Total: 5007 * ms, BytesIn: 10, BytesOut: 212, Termination: [2]byte{'c', 'D'}},
		want: "10.0.1.2:33313 " + date + " db bck/srv1 0/0/5007 212 cD -/-/-/-/0 -/-",
	}, {
		name: "http over TLS",
		r: func() Access {
			r := *httpRecord(7)
			r.TLSVersion, r.TLSCipher, r.SNI, r.Handshake = "TLSv1.3", "TLS_AES_128_GCM_SHA256", "www.example.com", 4*ms
			return r
		}(),
		want: "10.0.0.5:51234 " + date + " web www/web1 0/0/1/3/5 200 512 - - ---- -/-/-/-/0 -/- {www.example.com} \"GET /item/7 HTTP/1.1\" TLSv1.3/TLS_AES_128_GCM_SHA256/www.example.com/4",
	}, {
		name: "tcp over TLS, no SNI",
		r: Access{Start: start, Client: netip.MustParseAddrPort("10.0.1.2:33313"), Service: "db", Backend: "bck",
			Server: "srv1", Queue: 0, Connect: 0, Total: 5007 * ms, BytesIn: 10, BytesOut: 212, Termination: [2]byte{'-', '-'},
			TLSVersion: "TLSv1.2", TLSCipher: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
		want: "10.0.1.2:33313 " + date + " db bck/srv1 0/0/5007 212 -- -/-/-/-/0 -/- TLSv1.2/TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256/-/0",
	}, {
		name: "tcp unset termination and client",
		r:    Access{Start: start, Service: "db", Queue: -1, Connect: -1, Total: 0},
		want: "-:- " + date + " db db/<NOSRV> -1/-1/0 0 -- -/-/-/-/0 -/-",
	}}
}()

func TestAccessLine(t *testing.T) {
	for _, tc := range accessCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendAccess(nil, &tc.r)); got != tc.want {
				t.Errorf("line\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A huge request is cut to MaxLine with its closing quote; an escape is
// never split.
func TestAccessLineLimit(t *testing.T) {
	r := httpRecord(1)
	r.Path = "/" + strings.Repeat("\x7f", 3*MaxLine)
	line := appendAccess(nil, r)
	if len(line) > MaxLine {
		t.Fatalf("line is %d bytes, more than %d", len(line), MaxLine)
	}
	if len(line) < MaxLine-3 {
		t.Fatalf("line is %d bytes: cut too short", len(line))
	}
	if !strings.HasSuffix(string(line), "#7F\"") {
		t.Fatalf("line does not end with a whole escape and the quote: ...%s", line[len(line)-10:])
	}
	// TLS fields keep their room at the end.
	r.TLSVersion, r.TLSCipher, r.SNI = "TLSv1.3", "TLS_AES_128_GCM_SHA256", strings.Repeat("\x7f", 300)
	line = appendAccess(nil, r)
	if len(line) > MaxLine || !strings.HasSuffix(string(line), "#7F/0") || !strings.Contains(string(line), "#7F\" TLSv1.3/") {
		t.Fatalf("line of %d bytes with TLS fields: ...%s", len(line), line[max(0, len(line)-120):])
	}
}

func TestSyslogMessage(t *testing.T) {
	at := time.Date(2026, 12, 5, 9, 0, 1, 2_003_000, time.UTC)
	e := entry{line: []byte("hello wörld"), at: at.UnixNano(), sev: sevWarning, stream: streamDaemon}
	got := string(appendSyslog(nil, 16, &e, "lb1", "halb", "42", 0))
	ts := at.Local().Format("2006-01-02T15:04:05.000000Z07:00")
	if want := "<132>1 " + ts + " lb1 halb 42 daemon - hello wörld"; got != want {
		t.Fatalf("message\n got %q\nwant %q", got, want)
	}
	// Cut to fit max bytes, never inside a character.
	max := len("<132>1 "+ts+" lb1 halb 42 daemon - hello w") + 1
	got = string(appendSyslog(nil, 16, &e, "lb1", "halb", "42", max))
	if !strings.HasSuffix(got, " - hello w") {
		t.Fatalf("cut message %q", got)
	}
}

func TestDaemonLine(t *testing.T) {
	for in, want := range map[string]string{
		"msg=started\n": "started",
		"msg=\"vrrp state\" instance=vi1 to=MASTER\n": "vrrp state instance=vi1 to=MASTER",
		"msg=\"two\\nlines\" err=\"a b\"\n":           "two lines err=\"a b\"",
		"msg=\"\" k=v\n":                              "k=v",
	} {
		if got := string(daemonLine([]byte(in))); got != want {
			t.Errorf("daemonLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderField(t *testing.T) {
	if got := syslogHeaderField("", 48); got != "-" {
		t.Errorf("empty: %q", got)
	}
	if got := syslogHeaderField("a b\x01c", 48); got != "abc" {
		t.Errorf("spaces and controls: %q", got)
	}
	if got := syslogHeaderField(strings.Repeat("x", 60), 48); len(got) != 48 {
		t.Errorf("not cut to 48: %d", len(got))
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, tc := range []struct {
		s     string
		hdr   bool
		limit int
		want  string
		whole bool
	}{
		{"plain", false, 100, "plain", true},
		{"a b{|}#\"\x00\xff", false, 100, "a b{|}#23#22#00#FF", true},
		{"a b{|}#", true, 100, "a#20b#7B#7C#7D#23", true},
		{"abcdef", false, 4, "abcd", false},
		{"ab#", false, 4, "ab", false},   // the escape would not fit whole
		{"ab#", false, 5, "ab#23", true}, // it fits exactly
		{"ab#cd", false, 6, "ab#23c", false},
		{"#", false, 2, "", false},
	} {
		got, whole := appendEscaped(nil, tc.s, tc.hdr, tc.limit)
		if string(got) != tc.want || whole != tc.whole {
			t.Errorf("appendEscaped(%q, hdr %v, %d) = %q, %v; want %q, %v", tc.s, tc.hdr, tc.limit, got, whole, tc.want, tc.whole)
		}
	}
}

// The example lines of docs/logging.md are what halb writes.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range accessCases[:4] {
		if !strings.Contains(string(doc), "\n"+tc.want+"\n") {
			t.Errorf("docs/logging.md lacks the %s example line:\n%s", tc.name, tc.want)
		}
	}
}
