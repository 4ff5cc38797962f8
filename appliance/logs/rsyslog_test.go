package logs

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// TestRsyslogInterop sends to a real rsyslogd (Debian's rsyslog, a
// receiver nobody here wrote) over UDP and TCP on loopback and checks what
// it parsed: facility, severity, host, app, procid, msgid, structured
// data and message.
func TestRsyslogInterop(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed (apt-get install -y rsyslog): the real-receiver test is skipped")
	}
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(testutil.ReservedAddr(t)) // TCP port kept; the same UDP port is free
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port=%q)
input(type="imtcp" address="127.0.0.1" port=%q)
template(name="fields" type="string" string="%%inputname%%|%%syslogfacility-text%%|%%syslogseverity-text%%|%%hostname%%|%%app-name%%|%%procid%%|%%msgid%%|%%structured-data%%|%%msg%%\n")
action(type="omfile" file=%q template="fields")
`, dir, port, port, out)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd said: %s", stderr)
		}
	})

	addr := net.JoinHostPort("127.0.0.1", port)
	udp, tcp := syslogTarget("udp", "udp", addr), syslogTarget("tcp", "tcp", addr)
	udp.Streams = []string{"access", "daemon"}
	tcp.Streams = []string{"access", "daemon"}
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{udp, tcp}, opts)
	log := slog.New(m.Handler(slog.NewTextHandler(&testutil.SyncBuffer{}, nil)))

	received := func() []string {
		b, _ := os.ReadFile(out)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rsyslogd wrote:\n%s", strings.Join(received(), "\n"))
		}
	})
	// Until rsyslogd listens, datagrams are refused: send until one of
	// each transport has arrived.
	id := 0
	testutil.WaitFor(t, "rsyslogd receiving over udp and tcp", func() bool {
		m.Access(httpRecord(id))
		id++
		var u, c bool
		for _, l := range received() {
			u = u || strings.HasPrefix(l, "imudp|")
			c = c || strings.HasPrefix(l, "imtcp|")
		}
		return u && c
	})

	r := httpRecord(1_000_000)
	m.Access(r)
	log.Warn("vrrp state changed", "instance", "vi1")
	pid := strconv.Itoa(os.Getpid())
	want := []string{
		"local3|info|lb1|halbtest|" + pid + "|access|-|" + string(appendAccess(nil, r)),
		"local3|warning|lb1|halbtest|" + pid + "|daemon|-|vrrp state changed instance=vi1",
	}
	testutil.WaitFor(t, "both lines over both transports", func() bool {
		n := 0
		for _, l := range received() {
			for _, w := range want {
				if l == "imudp|"+w || l == "imtcp|"+w {
					n++
				}
			}
		}
		return n == 4
	})
}
