package main

import "testing"

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
