package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"halb/netlab"
)

func TestBenchCommand(t *testing.T) {
	t.Setenv("MAKELEVEL", "")
	if got := benchCommand([]string{"bin/netlab", "bench", "-out", "out/bench"}); got != "bin/netlab bench -out out/bench" {
		t.Errorf("got %q", got)
	}
	if got := benchCommand([]string{"bin/netlab", "bench", "-out", "my dir", "it's"}); got != `bin/netlab bench -out 'my dir' 'it'\''s'` {
		t.Errorf("quoting: got %q", got)
	}
	t.Setenv("MAKELEVEL", "1")
	if got := benchCommand([]string{"bin/netlab", "bench"}); got != "make bench: bin/netlab bench" {
		t.Errorf("under make: got %q", got)
	}
}

// TestInLabDir: a lab that served its command leaves no directory behind;
// one whose command failed keeps it, and the error says where.
func TestInLabDir(t *testing.T) {
	if r := netlab.RootReason(); r != "" {
		t.Skip(r)
	}
	var dir string
	if err := inLab(func(l *netlab.Lab) error { dir = l.Dir; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after success %s: %v, want it removed", dir, err)
	}
	failed := errors.New("bench failed")
	err := inLab(func(l *netlab.Lab) error { dir = l.Dir; return failed })
	defer os.RemoveAll(dir)
	if !errors.Is(err, failed) || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %v: want the failure, naming %s", err, dir)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("after a failure %s: %v, want it kept", dir, err)
	}
}
