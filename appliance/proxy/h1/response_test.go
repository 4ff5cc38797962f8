package h1

import (
	"strings"
	"testing"
)

type respWant struct {
	minor, status  int
	reason         string
	cl             int64
	chunked, close bool
	headLen        int // 0: the whole input
}

func ok200(hdrs string) string { return "HTTP/1.1 200 OK\r\n" + hdrs + "\r\n" }

func TestParseResponse(t *testing.T) {
	small := Limits{MaxLine: 32, MaxHeaderBytes: 64, MaxHeaders: 2}
	tests := []struct {
		name   string
		in     string
		lim    Limits
		status int // 0 success, -1 ErrIncomplete
		want   *respWant
	}{
		{name: "200", in: ok200("Content-Length: 2\r\n") + "hi",
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: 2, headLen: 38}},
		{name: "reason with spaces and obs-text", in: "HTTP/1.1 404 Not \tFound \xe9\r\n\r\n",
			want: &respWant{minor: 1, status: 404, reason: "Not \tFound \xe9", cl: -1}},
		{name: "empty reason", in: "HTTP/1.1 204 \r\n\r\n", want: &respWant{minor: 1, status: 204, cl: -1}},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", want: &respWant{minor: 1, status: 204, cl: -1}},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nX: y\n\n", want: &respWant{minor: 1, status: 200, reason: "OK", cl: -1}},
		{name: "HTTP/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
			want: &respWant{status: 200, reason: "OK", cl: 0, close: true}},
		{name: "HTTP/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
			want: &respWant{status: 200, reason: "OK", cl: 0}},
		{name: "Connection close", in: ok200("Connection: close\r\n"),
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: -1, close: true}},
		{name: "chunked", in: ok200("Transfer-Encoding: chunked\r\n"),
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: -1, chunked: true}},
		{name: "gzip then chunked", in: ok200("Transfer-Encoding: gzip, chunked\r\n"),
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: -1, chunked: true}},
		{name: "final coding not chunked", in: ok200("Transfer-Encoding: chunked, gzip\r\n"),
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: -1, close: true}},
		{name: "gzip only", in: ok200("Transfer-Encoding: gzip\r\n"),
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: -1, close: true}},
		{name: "1xx", in: "HTTP/1.1 100 Continue\r\n\r\n", want: &respWant{minor: 1, status: 100, reason: "Continue", cl: -1}},

		{name: "chunked twice", in: ok200("Transfer-Encoding: chunked, chunked\r\n"), status: 502},
		{name: "malformed coding", in: ok200("Transfer-Encoding: chunked;x\r\n"), status: 502},
		{name: "TE and CL", in: ok200("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n"), status: 502},
		{name: "TE in HTTP/1.0", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
		{name: "invalid CL", in: ok200("Content-Length: -1\r\n"), status: 502},
		{name: "differing CL", in: ok200("Content-Length: 1\r\nContent-Length: 2\r\n"), status: 502},
		{name: "same CL", in: ok200("Content-Length: 1\r\nContent-Length: 1\r\n"),
			want: &respWant{minor: 1, status: 200, reason: "OK", cl: 1}},
		{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", status: 502},
		{name: "four-digit status", in: "HTTP/1.1 2000 OK\r\n\r\n", status: 502},
		{name: "status 600", in: "HTTP/1.1 600 X\r\n\r\n", status: 502},
		{name: "status 099", in: "HTTP/1.1 099 X\r\n\r\n", status: 502},
		{name: "double SP", in: "HTTP/1.1  200 OK\r\n\r\n", status: 502},
		{name: "HTTP/2", in: "HTTP/2 200 OK\r\n\r\n", status: 502},
		{name: "HTTP/2.0", in: "HTTP/2.0 200 OK\r\n\r\n", status: 502},
		{name: "lowercase version", in: "http/1.1 200 OK\r\n\r\n", status: 502},
		{name: "CTL in reason", in: "HTTP/1.1 200 O\x00K\r\n\r\n", status: 502},
		{name: "bare CR in reason", in: "HTTP/1.1 200 O\rK\r\n\r\n", status: 502},
		{name: "leading empty line", in: "\r\nHTTP/1.1 200 OK\r\n\r\n", status: 502},
		{name: "obs-fold", in: ok200("X: a\r\n b\r\n"), status: 502},
		{name: "SP before colon", in: ok200("Content-Length : 2\r\n"), status: 502},
		{name: "NUL in value", in: ok200("X: \x00\r\n"), status: 502},
		{name: "too many headers", lim: small, in: "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", status: 502},
		{name: "status line too long", lim: small, in: "HTTP/1.1 200 " + strings.Repeat("x", 32), status: 502},
		{name: "head too large", lim: small, in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", 64), status: 502},
		{name: "incomplete", in: "HTTP/1.1 200 OK\r\n", status: -1},
		{name: "incomplete status line", in: "HTTP/1.1 2", status: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp Response
			got := outcome(t, ParseResponse([]byte(tt.in), tt.lim, &resp))
			if got != tt.status {
				t.Fatalf("outcome %d, want %d", got, tt.status)
			}
			if tt.status != 0 {
				return
			}
			w := *tt.want
			if w.headLen == 0 {
				w.headLen = len(tt.in)
			}
			g := respWant{minor: resp.Minor, status: resp.Status, reason: string(resp.Reason),
				cl: resp.ContentLength, chunked: resp.Chunked, close: resp.Close, headLen: resp.HeadLen}
			if g != w {
				t.Errorf("got  %+v\nwant %+v", g, w)
			}
			for i := range resp.HeadLen {
				var r Response
				if got := outcome(t, ParseResponse([]byte(tt.in[:i]), tt.lim, &r)); got != -1 {
					t.Fatalf("prefix %q: outcome %d, want incomplete", tt.in[:i], got)
				}
			}
		})
	}
}
