package haproxy

import (
	"os"
	"testing"

	"halb/appliance/importer/source"
)

// exact are the directives that map onto halb without a finding when
// their values fit (the test below holds the corpus to it: every other
// line must have a finding).
var exact = map[string]bool{
	"mode": true, "timeout": true, "bind": true, "default_backend": true, "use_backend": true, "acl": true,
	"balance": true, "server": true, "default-server": true, "http-check": true, "tcp-check": true,
	"cookie": true, "stick": true, "stick-table": true, "log": true,
	"option httpchk": true, "option tcp-check": true, "option forwardfor": true, "option allbackups": true,
}

// TestNothingSilent: every line of the corpus either maps exactly (a
// directive of the list above) or is named by a finding.
func TestNothingSilent(t *testing.T) {
	for _, p := range CorpusFiles() {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(p, data)
		if err != nil {
			t.Fatal(err)
		}
		b := source.NewBuilder()
		m := newMapper(f, b)
		m.path = p
		m.run()
		lines := map[int]bool{}
		for _, fd := range b.Report.Findings {
			lines[fd.Pos.Line] = true
		}
		for _, s := range f.Sections {
			for _, l := range s.Lines {
				kw := l.Arg(0)
				if kw == "option" {
					kw += " " + l.Arg(1)
				}
				if kw == "log" && s.Kind == "global" {
					kw = "" // global logs become targets and say so
				}
				if !exact[kw] && !lines[l.Pos().Line] {
					t.Errorf("%s: %q: no finding, and not a directive that maps exactly", l.Pos(), l.Raw)
				}
			}
		}
	}
}
