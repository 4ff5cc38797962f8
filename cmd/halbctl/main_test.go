package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/proxy"
)

func runCtl(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidateExamplesWithoutDaemon(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	code, out, errOut := runCtl(append([]string{"-socket", "/nonexistent.sock", "config", "validate"}, files...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Count(out, ": ok\n") != len(files) {
		t.Errorf("output:\n%s", out)
	}
}

func TestValidateBrokenFileNamesEveryField(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("node: {name: lb1}\nvrrp:\n  - {name: a, interface: eth0, vrid: 0, vips: [10.0.0.1]}\nbogus: 1\n"), 0o644)
	code, _, errOut := runCtl("config", "validate", bad)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + ":3: vrrp[0].vrid: 0 is out of range 1..255",
		bad + `:3: vrrp[0].vips[0]: "10.0.0.1" is not an address in CIDR form`,
		bad + `:4: bogus: unknown key "bogus"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"config"}, {"config", "apply"}, {"config", "validate"},
		{"config", "rollback"}, {"config", "rollback", "x"}, {"config", "rollback", "0"}, {"config", "show", "-1"},
		{"config", "show", "1", "2"}, {"config", "history", "1"}, {"logs", "-n", "0"}, {"logs", "x"}, {"logs", "-n", "x"},
		{"system"}, {"system", "reboot", "now"}, {"system", "factory-reset"}, {"console", "password", "x"}} {
		if code, _, _ := runCtl(args...); code != 2 {
			t.Errorf("halbctl %v: exit %d, want 2", args, code)
		}
	}
}

func TestNoDaemonIsAClearError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	code, _, errOut := runCtl("-socket", sock, "status")
	if code != 1 || !strings.Contains(errOut, "is halbd running? (socket "+sock) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestHelpExits0: asking for help is not an error: the usage goes to
// stdout and the exit status is 0.
func TestHelpExits0(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"status", "-h"}} {
		code, out, errOut := runCtl(args...)
		if code != 0 || !strings.Contains(out, "usage: halbctl") || !strings.Contains(out, "-socket") || errOut != "" {
			t.Errorf("halbctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	if code, _, errOut := runCtl("-bogus"); code != 2 || !strings.Contains(errOut, "usage: halbctl") {
		t.Errorf("halbctl -bogus: exit %d, want 2 with the usage\n%s", code, errOut)
	}
}

// TestVersionWithoutDaemon: halbctl's own version is printed even when the
// daemon's cannot be asked.
func TestVersionWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	code, out, errOut := runCtl("-socket", sock, "version")
	if code != 1 || out != "halbctl "+version+"\n" || !strings.Contains(errOut, "is halbd running?") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestStatusTable(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	st := &api.Status{
		Node: api.NodeStatus{Name: "lb1", Version: "v1", PID: 42, Started: now.Add(-90 * time.Second)},
		Config: api.ConfigStatus{Path: "/etc/halb/halb.yaml", Loaded: true, SHA256: "0123456789abcdef", AppliedAt: now, Version: 7,
			LastError: &api.Rejection{Time: now, Source: "api", Errors: config.Errors{{File: "halb.yaml", Line: 3, Path: "node.x", Msg: "bad"}}}},
	}
	st.VRRP = json.RawMessage(`[{"name":"web-a","interface":"eth1","vrid":51,"state":"FAULT","priority":150,"effective_priority":90,
		"vips":["10.0.0.100/24"],"held_vips":[],"fault_reasons":["maintenance"],
		"tracked":[{"kind":"script","name":"gw","ok":false,"weight":-60,"detail":"exit status 1"}],
		"counters":{"adverts_sent":7,"adverts_received":3,"dropped":1,"transitions":2}}]`)
	st.Backends = json.RawMessage(`[{"name":"pg","check":"tcp","servers":[{"name":"pg1","address":"10.0.0.31:5432","state":"down",
		"checks":7,"latency_ms":1.5,"last_error":"connect 10.0.0.31:5432: connection refused","last_change":"2026-11-26T10:00:00Z",
		"reason":"connect 10.0.0.31:5432: connection refused, 3/3 failures","ups":0,"downs":1},
		{"name":"pg9","address":"10.0.0.39:5432","state":"disabled"}]}]`)
	st.Services = json.RawMessage(`[{"name":"db","mode":"tcp","listen":["10.0.0.100:5432"],"listening":["10.0.0.100:5432"],
		"backend":"pg","stats":{"connections":12,"active_connections":2,"requests":0,"retries":1,"bytes_in":10,"bytes_out":20},
		"backends":[{"name":"pg","balance":"source","persistence":"source","requests":12,
		"servers":[{"name":"pg1","address":"10.0.0.31:5432","up":true,"drained":true,"weight":1,"slowstart_pct":40,"active":2,"total":12,"connect_errors":1,"responses":{"2xx":3}},
		{"name":"pg2","address":"10.0.0.32:5432","up":true,"backup":true,"weight":1},
		{"name":"pg9","address":"10.0.0.39:5432","disabled":true,"weight":1}]}]}]`)
	var b bytes.Buffer
	printStatus(&b, st, now)
	out := b.String()
	for _, want := range []string{"lb1", "halbd v1, pid 42, up 1m30s", "version 7, applied ", "sha256 0123456789ab", "1 problem(s)", "halb.yaml:3: node.x: bad",
		"vrrp web-a", "FAULT", "priority 90 (configured 150)", "holds none", "adverts 7 sent 3 received, 1 dropped",
		"fault: maintenance", "track script gw: FAILING (exit status 1), weight -60",
		"service db", "listening 10.0.0.100:5432 → pg, 12 connections (2 open), 0 requests, no responses, 1 retried",
		"backend pg source: 12 requests, persistence source",
		"server pg/pg1", "DOWN", "tcp check, 7 checks, last 1.5 ms, 0 up / 1 down transitions, last error: connect 10.0.0.31:5432: connection refused",
		"connection refused, 3/3 failures)", "server pg1 10.0.0.31:5432 weight 1 DRAINED (slow start: 40%): 2 active, 12 total, 1 connect errors, 0 idle, 2xx 3",
		"server pg2 10.0.0.32:5432 weight 1 backup: 0 active", "server pg9 10.0.0.39:5432 weight 1 DISABLED (maintenance: no traffic, not checked): 0 active",
		"server pg/pg9", "DISABLED", "10.0.0.39:5432 maintenance: not checked, no traffic",
		"peer           -                     not running\n", "not running\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}

// TestStatusNetworkAndTime: the management network with its lease, the
// clock with its servers and alarm, and a change awaiting confirmation.
func TestStatusNetworkAndTime(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	st := &api.Status{
		Node:   api.NodeStatus{Name: "lb1", Version: "v1", PID: 42, Started: now},
		Config: api.ConfigStatus{Loaded: true, Version: 4, Pending: &api.PendingChange{Version: 4, RevertTo: 3, Deadline: now.Add(time.Minute)}},
	}
	st.Network = json.RawMessage(`{"mode":"dhcp","gateway":"10.0.0.1","dns":["10.0.0.53"],"ntp":["10.0.0.123"],
		"interfaces":[{"name":"eth0","mac":"52:54:00:00:00:01","carrier":true,"addresses":["10.0.0.5/24","10.0.0.100/32"],"managed":["10.0.0.5/24"],
		"lease":{"state":"BOUND","address":"10.0.0.5/24","server":"10.0.0.1","obtained":"2026-11-26T09:59:00Z","t1":"2026-11-26T10:29:00Z","expiry":"2026-11-26T10:59:00Z","renewals":3}}]}`)
	st.Time = json.RawMessage(`{"synchronized":false,"offset_ns":3000000000,"server":"10.0.0.123","last_sync":"2026-11-26T09:59:50Z",
		"alarm":"offset +3s beyond max_offset 500ms","servers":[
		{"name":"10.0.0.123","source":"dhcp","reachable":true,"offset_ns":15300,"delay_ns":200000,"jitter_ns":3000,"stratum":2,"chosen":true},
		{"name":"liar","source":"config","reachable":true,"offset_ns":3000000000,"stratum":1,"falseticker":true},
		{"name":"gone","source":"config","error":"i/o timeout"}]}`)
	var b bytes.Buffer
	printStatus(&b, st, now)
	// Columns are padded to the widest cell: compare words.
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{"AWAITS CONFIRMATION", "version 4 reverts to version 3 at ",
		"network dhcp gateway 10.0.0.1, dns 10.0.0.53, ntp 10.0.0.123",
		"eth0 link up, 52:54:00:00:00:01, 10.0.0.5/24 10.0.0.100/32",
		"dhcp BOUND 10.0.0.5/24 from 10.0.0.1, renew in 29m0s, expires in 59m0s, 3 renewal(s)",
		"time not synchronised offset +3s from 10.0.0.123, 10s ago (clock not set by halbd: time.set_clock off)",
		"ALARM offset +3s beyond max_offset 500ms",
		"10.0.0.123 offset +15µs, delay 200µs, jitter 3µs, stratum 2, chosen (dhcp)",
		"FALSETICKER (dropped) (config)", "gone unreachable: i/o timeout (config)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestHistoryTable(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.Local)
	var b bytes.Buffer
	printHistory(&b, []api.HistoryEntry{
		{Version: 12, Time: at, Source: api.SourceRollback, SHA256: "00112233445566778899", Summary: "rollback to 10: 1 change(s): node changed: name", Running: true},
		{Version: 11, Time: at, Source: api.SourceConsole, SHA256: "aabbccddeeff00112233", Summary: "no changes"},
	})
	want := `  VERSION  APPLIED              SOURCE    SHA256        CHANGES
* 12       2026-11-26 10:00:00  rollback  001122334455  rollback to 10: 1 change(s): node changed: name
  11       2026-11-26 10:00:00  console   aabbccddeeff  no changes
`
	if b.String() != want {
		t.Errorf("history table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printHistory(&b, nil)
	if b.String() != "no config applied yet\n" {
		t.Errorf("empty history: %q", b.String())
	}
}

func TestLogsLines(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 5e6, time.Local)
	var b bytes.Buffer
	printLogs(&b, []api.LogRecord{
		{Time: at, Level: "INFO", Message: "halbd started", Attrs: "config=/etc/halb/halb.yaml"},
		{Time: at, Level: "ERROR", Message: "config rejected"},
	})
	want := "2026-11-26 10:00:00.005 INFO  halbd started config=/etc/halb/halb.yaml\n2026-11-26 10:00:00.005 ERROR config rejected\n"
	if b.String() != want {
		t.Errorf("logs:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintTLS(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	sv := proxy.ServiceStatus{Name: "web",
		TLS: &proxy.TLSStatus{Policy: "intermediate", MinVersion: "1.2", Default: "www", Certificates: []proxy.CertStatus{
			{Name: "www", DNSNames: []string{"www.example.com"}, NotAfter: now.Add(60 * 24 * time.Hour)},
			{Name: "old", DNSNames: []string{"old.example.com"}, NotAfter: now.Add(3 * 24 * time.Hour), ExpiresSoon: true},
			{Name: "gone", Error: "certificate \"gone\": not found"}}},
		Stats: proxy.ServiceCounters{TLS: &proxy.TLSCounters{Handshakes: 10, Resumed: 4, TLS12: 3, TLS13: 7, Failed: map[string]int64{"version": 2, "timeout": 1}}}}
	var b strings.Builder
	printTLS(&b, sv, now)
	want := "\t\t  tls intermediate min 1.2: 10 handshakes (4 resumed, TLS 1.2 3, 1.3 7), failed: timeout 1 version 2\n" +
		"\t\t    certificate www (default): www.example.com, expires 2027-02-03 (in 60 days)\n" +
		"\t\t    certificate old: old.example.com, EXPIRES SOON: expires 2026-12-08 (in 3 days)\n" +
		"\t\t    certificate gone: NOT LOADED: certificate \"gone\": not found\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
