package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateWarnsInactiveKeys: a valid file passes with a warning per
// key this build does not use (none since the peer component landed).
func TestValidateWarnsInactiveKeys(t *testing.T) {
	f := filepath.Join(t.TempDir(), "halb.yaml")
	cfg := "node:\n  name: lb1\n  management: {interface: eth0, dhcp: true}\ntime: {servers: [172.16.0.254]}\npeers: [{name: lb2, address: 172.16.0.2}]\n"
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCtl("-socket", "/nonexistent.sock", "config", "validate", f)
	if code != 0 || out != f+": ok\n" {
		t.Fatalf("exit %d, stdout %q, want 0 and %q", code, out, f+": ok\n")
	}
	var lines []string
	if errOut != "" {
		lines = strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	}
	inactive := []string{}
	if len(lines) != len(inactive) {
		t.Fatalf("want a warning per inactive key %q, got:\n%s", inactive, errOut)
	}
	for i, key := range inactive {
		if want := f + ": warning: " + key + " is not active in this build: parsed and validated, but nothing uses it until "; !strings.HasPrefix(lines[i], want) {
			t.Errorf("warning %d = %q, want it to start with %q", i, lines[i], want)
		}
	}
}
