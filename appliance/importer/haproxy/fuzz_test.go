package haproxy

import (
	"os"
	"path/filepath"
	"testing"

	"halb/appliance/importer/source"
)

// FuzzParse: the parser and the mapping never panic, and a parse error
// always names a line and column of the input.
func FuzzParse(f *testing.F) {
	for _, p := range CorpusFiles() {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"frontend a\n bind :80\n use_backend b if { hdr(host) -i x.com } !{ path_beg /a } || c\n acl c path /x\nbackend b\n server s 1.2.3.4\n",
		"defaults\n mode http\nlisten l :80,:81-83\n server s h.example:80 check ssl verify none\n",
		`global` + "\n" + ` log "${LOGHOST}" local0` + "\n",
		"backend b\n stick-table type ip\n stick on src\n cookie C prefix\n option redis-check\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		file, err := Parse("f.cfg", data)
		if err != nil {
			se, ok := err.(*source.Error)
			if !ok || se.Pos.Line < 1 || se.Pos.Col < 1 || se.Pos.File != "f.cfg" {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		b := source.NewBuilder()
		newMapper(file, b).run()
		for _, fd := range b.Report.Findings {
			if fd.Pos.Line < 1 {
				t.Fatalf("finding without a line: %+v", fd)
			}
		}
		// what the mapping makes passes halb's validation
		valid(t, b)
	})
}

// CorpusFiles lists the haproxy.cfg files of the shared corpus (cases,
// and the nodes of pair cases).
func CorpusFiles() []string {
	files, _ := filepath.Glob("../testdata/*/haproxy.cfg")
	more, _ := filepath.Glob("../testdata/*/*/haproxy.cfg")
	return append(files, more...)
}
