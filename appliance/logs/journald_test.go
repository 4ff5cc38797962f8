package logs

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// journalChildEnv marks the re-executed test binary that runs in a mount
// namespace of its own.
const journalChildEnv = "HALB_LOGS_PRIVATE_JOURNAL"

// TestJournaldPrivate runs a real systemd-journald of the test's own, in
// a private mount namespace (tmpfs over /run/systemd, /run/log and
// /var/log/journal, so the host's journal is neither used nor touched),
// sends an access line and a daemon line through a journald target and
// reads them back with journalctl -o json.
func TestJournaldPrivate(t *testing.T) {
	if os.Getenv(journalChildEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a private mount namespace and journald")
		}
		journald := "/lib/systemd/systemd-journald"
		if _, err := os.Stat(journald); err != nil {
			t.Skipf("no %s (Debian's systemd): %v", journald, err)
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("no unshare(1) (util-linux)")
		}
		cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0],
			"-test.run=^TestJournaldPrivate$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), journalChildEnv+"="+journald)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the test in its mount namespace failed: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "--- SKIP") {
			t.Skipf("skipped in its mount namespace:\n%s", out)
		}
		t.Logf("%s", out)
		return
	}

	// In the private mount namespace.
	for _, dir := range []string{"/run/systemd", "/run/log", "/var/log/journal"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			t.Skipf("mount tmpfs on %s: %v", dir, err)
		}
	}
	if err := os.MkdirAll("/run/systemd/journal", 0o755); err != nil {
		t.Fatal(err)
	}
	jd := exec.Command(os.Getenv(journalChildEnv))
	jd.Stdout, jd.Stderr = os.Stderr, os.Stderr
	jd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test
	if err := jd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		jd.Process.Signal(syscall.SIGTERM)
		jd.Wait()
	})
	testutil.WaitFor(t, "journald's socket", func() bool {
		_, err := os.Stat("/run/systemd/journal/socket")
		return err == nil
	})

	cfg := config.LogTarget{Name: "j", To: "journald", Streams: []string{"access", "daemon"}, Tag: "halbtest", Queue: 64}
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{cfg}, opts)
	unique := fmt.Sprintf("/journal-%d-%d", os.Getpid(), time.Now().UnixNano())
	r := httpRecord(1)
	r.Path = unique
	m.Access(r)
	slog.New(m.Handler(slog.NewTextHandler(&testutil.SyncBuffer{}, nil))).Warn("daemon line", "path", unique)
	testutil.WaitFor(t, "both lines written", func() bool { return status(t, m, "j").Written == 2 })

	read := func(match string) map[string]any {
		var fields map[string]any
		testutil.WaitFor(t, "the entry "+match+" in the journal", func() bool {
			b, err := exec.Command("journalctl", "--no-pager", "-o", "json", match).Output()
			if err != nil || len(b) == 0 {
				return false
			}
			first, _, _ := strings.Cut(string(b), "\n") // one JSON object a line
			return json.Unmarshal([]byte(first), &fields) == nil
		})
		return fields
	}
	acc := read("HALB_PATH=" + unique)
	want := map[string]string{
		"MESSAGE": string(appendAccess(nil, r)), "PRIORITY": "6", "SYSLOG_IDENTIFIER": "halbtest",
		"HALB_STREAM": "access", "HALB_MODE": "http", "HALB_SERVICE": "web", "HALB_BACKEND": "www",
		"HALB_SERVER": "web1", "HALB_STATUS": "200", "HALB_CLIENT": "10.0.0.5:51234", "HALB_METHOD": "GET",
		"HALB_HOST": "www.example.com", "HALB_TIME_TOTAL_MS": "5", "HALB_TERMINATION": "--",
	}
	for k, v := range want {
		if acc[k] != v {
			t.Errorf("access entry %s = %v, want %q", k, acc[k], v)
		}
	}
	d := read("HALB_STREAM=daemon")
	if d["MESSAGE"] != "daemon line path="+unique || d["PRIORITY"] != "4" || d["HALB_STREAM"] != "daemon" {
		t.Errorf("daemon entry %v", d)
	}
}
