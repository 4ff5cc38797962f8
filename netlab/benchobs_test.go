package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The access lines of one bench request as each flavor sends it (halb's
// RFC 5424 message, HAProxy's with format rfc5424 and option httplog).
const (
	halbBenchLine    = `<134>1 2026-12-05T10:00:00.123456Z lb1 halb 4242 access - 192.168.10.10:40000 [05/Dec/2026:10:00:00.123] web web/be1 0/0/0/1/1 200 180 - - ---- -/-/-/-/0 -/- {192.168.10.100} "GET / HTTP/1.1"`
	haproxyBenchLine = `<134>1 2026-12-05T10:00:00.123456+00:00 lb1 halb 4243 - - 192.168.10.10:40000 [05/Dec/2026:10:00:00.123] web web/be1 0/0/0/1/1 200 180 - - ---- 1/1/0/0/0 0/0 {192.168.10.100} "GET / HTTP/1.1"`
)

func TestIsBenchAccessLine(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{halbBenchLine, true},
		{haproxyBenchLine, true},
		{`<133>1 2026-12-05T10:00:00+00:00 lb1 halb 4243 - - Proxy web started.`, false},
		{`<134>1 2026-12-05T10:00:00Z lb1 halb 4242 access - 192.168.10.10:40001 [05/Dec/2026:10:00:00.123] web-tcp web-tcp/be1 0/0/5 212 -- -/-/-/-/0 -/-`, false},
		{strings.Replace(halbBenchLine, `"GET / HTTP/1.1"`, `"GET /healthz HTTP/1.1"`, 1), false},
		{strings.Replace(halbBenchLine, "web web/be1", "api api/be1", 1), false},
	} {
		if got := isBenchAccessLine([]byte(c.msg)); got != c.want {
			t.Errorf("isBenchAccessLine(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}

// TestAccessCounter: datagrams over loopback are counted, the others
// apart, the first access line kept; WaitLines returns when the count is
// reached, and when lines stop coming.
func TestAccessCounter(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newAccessCounter(pc)
	defer r.Close()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(msg string, n int) {
		for range n {
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(`<133>1 - lb1 halb 1 - - Proxy web started.`, 3)
	send(haproxyBenchLine, 1)
	send(halbBenchLine, 99)
	if got := r.WaitLines(0, 100, time.Second, 10*time.Second); got != 100 {
		t.Fatalf("WaitLines = %d, want 100", got)
	}
	if !WaitFor(5*time.Second, func() bool { return r.Other() == 3 }) {
		t.Errorf("other messages %d, want 3", r.Other())
	}
	if r.Sample() != haproxyBenchLine {
		t.Errorf("sample %q, want the first access line", r.Sample())
	}
	// Fewer than asked: it returns once no line came for the settle time.
	send(halbBenchLine, 5)
	t0 := time.Now()
	if got := r.WaitLines(100, 1000, 200*time.Millisecond, 10*time.Second); got != 5 {
		t.Errorf("WaitLines after 5 more = %d, want 5", got)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("WaitLines took %s without new lines", d)
	}
}

// TestScrapeEvery: good scrapes are counted with their size, a 500 and a
// body without the wanted metric are failures, and the end of the run is
// not.
func TestScrapeEvery(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 2:
			http.Error(w, "no", http.StatusInternalServerError)
		case 3:
			fmt.Fprintln(w, "go_goroutines 7")
		default:
			fmt.Fprintln(w, `halb_frontend_http_requests_total{proxy="web"} 12`)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan scrapeStats)
	go func() {
		done <- scrapeEvery(ctx, (&net.Dialer{}).DialContext, srv.URL+"/metrics", "_frontend_http_requests_total", 10*time.Millisecond)
	}()
	if !WaitFor(10*time.Second, func() bool { return n.Load() >= 6 }) {
		t.Fatalf("%d scrapes", n.Load())
	}
	cancel()
	st := <-done
	if st.Failed != 2 || st.FirstErr == nil || !strings.Contains(st.FirstErr.Error(), "500") {
		t.Errorf("failed %d (first %v), want 2, the first a 500", st.Failed, st.FirstErr)
	}
	// Scrapes are one after the other: when the server has seen the
	// sixth, the client has judged the first five (the sixth may have
	// been cut short by the end of the run).
	if st.OK < 3 || st.OK+st.Failed > int(n.Load()) || len(st.Bytes) != st.OK || len(st.MS) != st.OK {
		t.Errorf("ok %d of %d requests, %d sizes, %d durations", st.OK, n.Load(), len(st.Bytes), len(st.MS))
	}
	if want := float64(len(`halb_frontend_http_requests_total{proxy="web"} 12` + "\n")); st.Bytes[0] != want {
		t.Errorf("size %v, want %v", st.Bytes[0], want)
	}
}
