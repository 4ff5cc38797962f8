package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"halb/appliance/config"
)

const importKeepalived = `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.168.10.100/24
    }
}
`

const importHAProxy = `defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend web
    bind 192.168.10.100:80
    default_backend www

backend www
    balance roundrobin
    server www1 10.0.0.11:80 check
    server www2 10.0.0.12:80 check
`

// TestImportCommand: a partial import prints the report and writes nothing
// (exit 1); with --allow-partial it writes a config that validates; usage
// errors exit 2; a parse error names the file and line.
func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	kc, hc := filepath.Join(dir, "keepalived.conf"), filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(kc, []byte(importKeepalived), 0o644)
	os.WriteFile(hc, []byte(importHAProxy), 0o644)
	out := filepath.Join(dir, "halb.yaml")

	code, _, errOut := runCtl("import", "--keepalived", kc, "--haproxy", hc, "-o", out)
	if code != 1 {
		t.Fatalf("partial import without --allow-partial: exit %d, want 1\n%s", code, errOut)
	}
	if !strings.Contains(errOut, kc+":7:") || !strings.Contains(errOut, "auth") || !strings.Contains(errOut, "nothing written") {
		t.Errorf("the report does not name the authentication block at %s:7, or does not say nothing was written:\n%s", kc, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s written without --allow-partial", out)
	}

	report := filepath.Join(dir, "report.txt")
	code, _, errOut = runCtl("import", "--keepalived", kc, "--haproxy", hc, "--node-name", "lb1", "-o", out, "--report", report, "--allow-partial")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	cfg, _, err := config.Load(out)
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	if cfg.Node.Name != "lb1" || len(cfg.VRRP) != 1 || len(cfg.Services) != 1 || len(cfg.Backends) != 1 || len(cfg.Backends[0].Servers) != 2 {
		t.Errorf("imported config: node %q, %d vrrp, %d services, %d backends", cfg.Node.Name, len(cfg.VRRP), len(cfg.Services), len(cfg.Backends))
	}
	if r, err := os.ReadFile(report); err != nil || !strings.Contains(string(r), "auth") {
		t.Errorf("report file: %v\n%s", err, r)
	}
	if code, _, errOut := runCtl("config", "validate", out); code != 0 {
		t.Errorf("halbctl config validate of the import: exit %d\n%s", code, errOut)
	}

	// A path that is not a regular file is written to, not replaced
	// (-o /dev/null once replaced /dev/null with a file).
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- b
	}()
	if code, _, errOut := runCtl("import", "--haproxy", hc, "-o", fifo); code != 0 {
		t.Fatalf("import to a FIFO: exit %d\n%s", code, errOut)
	}
	if b := <-got; !strings.Contains(string(b), "backends:") {
		t.Errorf("the FIFO's reader got %q", b)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}

	// Standard output without -o.
	code, stdout, _ := runCtl("import", "--haproxy", hc)
	if code != 0 || !strings.Contains(stdout, "backends:") {
		t.Errorf("import to stdout: exit %d\n%s", code, stdout)
	}

	bad := filepath.Join(dir, "bad.cfg")
	os.WriteFile(bad, []byte("frontend web\n    bind :80\n    default_backend \"www\n"), 0o644)
	if code, _, errOut := runCtl("import", "--haproxy", bad); code != 1 || !strings.Contains(errOut, bad+":3:") {
		t.Errorf("unterminated quote: exit %d, want 1 and %s:3: in\n%s", code, bad, errOut)
	}

	for _, args := range [][]string{{"import"}, {"import", "x"}, {"import", "--haproxy", hc, "--peer-haproxy", hc},
		{"import", "--haproxy", hc, "--peer-o", out}} {
		if code, _, _ := runCtl(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
