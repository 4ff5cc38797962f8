package netlab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/appliance/metrics/statstest"
)

// observeURL is lb i's listener (observe.listen ":8404") on its address
// on the front LAN.
func observeURL(i int, path string) string {
	return fmt.Sprintf("http://192.168.10.%d:8404%s", i+1, path)
}

// stalledReceiver accepts TCP connections inside h and never reads from
// them (a syslog server that hangs), with a small receive buffer so that
// the sender's queue fills soon.
func stalledReceiver(t *testing.T, h *Host, addr string) {
	t.Helper()
	var ln net.Listener
	err := h.Do(func() (err error) {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return serr
		}}
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	keepConns(t, ln, nil)
}

// TestObserve proves issue 16 on the classic lab's halb pair: /metrics
// counts exactly what the client sent and the backends received (http and
// tcp), the access log reaches a syslog server on the client's LAN with one
// line per request, a syslog server that stops reading costs no request
// (its lines are dropped and counted), the stats page renders in Debian's
// chromium with the numbers of the traffic, the listener refuses the VIP,
// and the VRRP metrics and the daemon's log follow a failover.
func TestObserve(t *testing.T) {
	SkipUnlessRoot(t)
	row := reportRow(t, "observe", string(FlavorHalb))
	_, c, ctx := peerLab(t)

	rcv, err := c.Client.ListenSyslog("192.168.10.10:5514")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcv.Close() })
	stalledReceiver(t, c.Client, "192.168.10.10:5515")

	for _, n := range c.LB {
		editRunning(t, n, func(cfg *config.Config) {
			cfg.Observe.Listen = ":8404"
			for i := range cfg.Services {
				cfg.Services[i].AccessLog = true
			}
			cfg.Observe.Logs = []config.LogTarget{
				{Name: "central", To: "syslog", Address: "192.168.10.10:5514", Transport: "udp", Facility: "local0",
					Streams: []string{"access", "daemon"}},
				{Name: "stalled", To: "syslog", Address: "192.168.10.10:5515", Transport: "tcp", Queue: 64,
					Streams: []string{"access"}},
			}
		})
	}
	var m0 Metrics
	if !WaitFor(10*time.Second, func() bool { m0, err = c.Client.Scrape(observeURL(0, "/metrics")); return err == nil }) {
		t.Fatalf("lb1's /metrics does not answer: %v", err)
	}
	// The listener is on every address but the VIP.
	if b, err := c.Client.RawRequest(ctx, c.VIP.String()+":8404", "GET /metrics HTTP/1.0\r\n\r\n"); err == nil && len(b) > 0 {
		t.Errorf("GET /metrics on the VIP answered: %.80q", b)
	}

	// http: N requests on new connections, each byte counted on the client.
	const n, m = 300, 40
	served0 := [2]int64{c.Backends[0].Served(), c.Backends[1].Served()}
	req := "GET /observe HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
	var gotBytes int64
	perServer := map[string]int{}
	for range n {
		b, err := c.Client.RawRequest(ctx, c.VIP.String()+":80", req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) {
			t.Fatalf("answer %.80q", b)
		}
		gotBytes += int64(len(b))
		for _, be := range []string{"be1", "be2"} {
			if bytes.Contains(b, []byte("X-Backend: "+be+"\r\n")) {
				perServer[be]++
			}
		}
	}
	// tcp: M connections through web-tcp, the same request.
	tcpAddr := fmt.Sprintf("%s:%d", c.VIP, ClassicTCPPort)
	var tcpBytes int64
	for range m {
		b, err := c.Client.RawRequest(ctx, tcpAddr, req)
		if err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) {
			t.Fatalf("tcp service: %v %.80q", err, b)
		}
		tcpBytes += int64(len(b))
	}
	var m1 Metrics
	// Counters are read at scrape time; a tcp session is counted when it
	// closes, just after the client saw the server's close.
	WaitFor(5*time.Second, func() bool {
		m1, err = c.Client.Scrape(observeURL(0, "/metrics"))
		return err == nil && m1.Val("halb_frontend_sessions_total", `proxy="web-tcp"`)-m0.Val("halb_frontend_sessions_total", `proxy="web-tcp"`) >= m &&
			m1.Val("halb_frontend_bytes_out_total", `proxy="web-tcp"`)-m0.Val("halb_frontend_bytes_out_total", `proxy="web-tcp"`) >= float64(tcpBytes)
	})
	if err != nil {
		t.Fatal(err)
	}
	delta := func(name string, labels ...string) float64 { return m1.Val(name, labels...) - m0.Val(name, labels...) }
	checks := []struct {
		what      string
		got, want float64
	}{
		{"http requests", delta("halb_frontend_http_requests_total", `proxy="web"`), n},
		{"2xx responses", delta("halb_frontend_http_responses_total", `proxy="web"`, `code="2xx"`), n},
		{"http sessions", delta("halb_frontend_sessions_total", `proxy="web"`), n},
		{"http bytes in", delta("halb_frontend_bytes_in_total", `proxy="web"`), float64(n * len(req))},
		{"http bytes out", delta("halb_frontend_bytes_out_total", `proxy="web"`), float64(gotBytes)},
		{"tcp sessions", delta("halb_frontend_sessions_total", `proxy="web-tcp"`), m},
		{"tcp bytes in", delta("halb_frontend_bytes_in_total", `proxy="web-tcp"`), float64(m * len(req))},
		{"tcp bytes out", delta("halb_frontend_bytes_out_total", `proxy="web-tcp"`), float64(tcpBytes)},
	}
	for i, be := range []string{"be1", "be2"} {
		received := c.Backends[i].Served() - served0[i]
		checks = append(checks,
			struct {
				what      string
				got, want float64
			}{be + " requests (backend's count)", delta("halb_server_http_responses_total", `proxy="web"`, `server="`+be+`"`), float64(perServer[be])},
			struct {
				what      string
				got, want float64
			}{be + " received (netlab backend)", float64(received), float64(perServer[be] + int(delta("halb_server_sessions_total", `proxy="web-tcp"`, `server="`+be+`"`)))})
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: metrics say %v, the client/backends %v", ck.what, ck.got, ck.want)
		}
	}
	row.Notef("/metrics after %d http requests and %d tcp connections: requests, responses, sessions, bytes in/out per service and per server equal the client's and the backends' counts", n, m)

	// The access log at the syslog server: one line per request.
	if !WaitFor(5*time.Second, func() bool {
		return len(rcv.Messages(" web web/", "GET /observe")) >= n && len(rcv.Messages(" web-tcp web-tcp/")) >= m
	}) {
		t.Errorf("syslog got %d access lines of web (want %d) and %d of web-tcp (want %d)",
			len(rcv.Messages(" web web/", "GET /observe")), n, len(rcv.Messages(" web-tcp web-tcp/")), m)
	}
	if l := rcv.Messages(" web web/", "GET /observe"); len(l) > 0 {
		if !strings.HasPrefix(l[0], "<134>1 ") {
			t.Errorf("not RFC 5424 local0.info: %q", l[0])
		}
		row.Notef("syslog access line: %s", strings.TrimSpace(l[0]))
	}

	// The stalled receiver: its queue fills and lines are dropped, while
	// the client's requests keep working.
	probe := c.StartProbe(ctx, false)
	var m2 Metrics
	if !WaitFor(30*time.Second, func() bool {
		m2, err = c.Client.Scrape(observeURL(0, "/metrics"))
		return err == nil && m2.Val("halb_log_dropped_total", `target="stalled"`) > 0
	}) {
		t.Errorf("no line dropped for the stalled syslog target: %v", err)
	}
	// The stats page, rendered by chromium from the client while the
	// probe runs.
	statsPage(t, c, row, false)
	res := probe.Stop()
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed while the syslog receiver was stalled: %s", res.Failed, res.Sent, firstError(res))
	}
	row.Notef("a syslog receiver that stops reading (tcp, queue 64): %.0f lines dropped and counted, %d/%d probe requests ok",
		m2.Val("halb_log_dropped_total", `target="stalled"`), res.Sent-res.Failed, res.Sent)

	statsPage(t, c, row, true)

	// Failover: lb2's VRRP metrics follow, and its daemon log says so.
	b0, err := c.Client.Scrape(observeURL(1, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	if v := b0.Val("halb_vrrp_state", `instance="front"`); v != vrrpStateBackup {
		t.Fatalf("lb2 halb_vrrp_state = %v, want %d (BACKUP)", v, vrrpStateBackup)
	}
	if err := c.LB[0].Kill(); err != nil {
		t.Fatal(err)
	}
	var b1 Metrics
	if !WaitFor(10*time.Second, func() bool {
		b1, err = c.Client.Scrape(observeURL(1, "/metrics"))
		return err == nil && b1.Val("halb_vrrp_state", `instance="front"`) == vrrpStateMaster
	}) {
		t.Fatalf("lb2's halb_vrrp_state did not become MASTER after lb1 died: %v", err)
	}
	if d := b1.Val("halb_vrrp_transitions_total", `instance="front"`) - b0.Val("halb_vrrp_transitions_total", `instance="front"`); d != 1 {
		t.Errorf("lb2 transitions: +%v, want +1", d)
	}
	if !WaitFor(5*time.Second, func() bool { return len(rcv.Messages("lb2", "MASTER")) > 0 }) {
		t.Errorf("no daemon line from lb2 about MASTER at the syslog server")
	} else {
		row.Notef("daemon log at syslog: %s", strings.TrimSpace(rcv.Messages("lb2", "MASTER")[0]))
	}
	row.Notef("failover: lb2 halb_vrrp_state BACKUP → MASTER, transitions +1")
}

// Values of halb_vrrp_state (docs/metrics.md).
const (
	vrrpStateBackup = 1
	vrrpStateMaster = 2
)

// statsPage has Debian's chromium (headless, in the client's namespace)
// render lb1's /stats: during traffic it checks what the page shows and
// takes the screenshot (into the report directory); once traffic stopped
// (quiet true) it checks the page's numbers against /metrics.
func statsPage(t *testing.T, c *Classic, row *Row, quiet bool) {
	t.Helper()
	if statstest.Chromium() == "" {
		t.Log("no chromium (scripts/deps.sh installs it): stats page not rendered")
		row.Notef("stats page: not rendered (no chromium)")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Chromium runs in the client's namespace: the process inherits the
	// namespace of the thread that forks it.
	before, err := c.Client.Scrape(observeURL(0, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	var page string
	if err := c.Client.Do(func() (err error) { page, err = statstest.DumpDOM(ctx, observeURL(0, "/stats")); return err }); err != nil {
		t.Fatal(err)
	}
	dom := []byte(page)
	if !quiet {
		for _, want := range []string{">lb1<", "Service web<", "Service web-tcp<", ">be1<", ">be2<", ">front<", ">MASTER<", "192.168.10.100", ">UP<", "Sessions cur"} {
			if !bytes.Contains(dom, []byte(want)) {
				t.Errorf("the rendered stats page lacks %q", want)
			}
		}
		if err := os.MkdirAll(reportDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		// The page measures rates against a view at least 1 s old: the
		// screenshot, a second view, shows them.
		time.Sleep(1100 * time.Millisecond)
		shot, err := filepath.Abs(filepath.Join(reportDir(), "stats.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Client.Do(func() error { return statstest.Screenshot(ctx, observeURL(0, "/stats"), shot, 1400, 1000) }); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
			t.Errorf("screenshot %s: %v (want a PNG of at least 10 kB)", shot, err)
		}
		row.Notef("stats page rendered by chromium during traffic (%d bytes of DOM); screenshot %s", len(dom), shot)
		return
	}
	// No traffic: the counters the page shows cannot move between the
	// scrapes around it.
	after, err := c.Client.Scrape(observeURL(0, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	// Every counter named must stand still; those onPage must show on it.
	for _, q := range []struct {
		name, labels string
		onPage       bool
	}{
		{"halb_frontend_sessions_total", `proxy="web"`, true},
		{"halb_frontend_http_requests_total", `proxy="web"`, true},
		{"halb_frontend_bytes_out_total", `proxy="web"`, true},
		{"halb_frontend_sessions_total", `proxy="web-tcp"`, true},
		{"halb_server_sessions_total", `server="be1"`, false},
		{"halb_server_bytes_out_total", `server="be2"`, false},
	} {
		v := after.Val(q.name, q.labels)
		if v != before.Val(q.name, q.labels) {
			t.Fatalf("%s{%s} moved without traffic", q.name, q.labels)
		}
		if want := fmt.Sprintf("<td>%.0f</td>", v); q.onPage && !strings.Contains(page, want) {
			t.Errorf("the stats page lacks %s{%s} = %s", q.name, q.labels, want)
		}
	}
	row.Notef("stats page after the traffic: web's sessions (%.0f), requests, bytes out and web-tcp's sessions as /metrics counts them",
		after.Val("halb_frontend_sessions_total", `proxy="web"`))
}
