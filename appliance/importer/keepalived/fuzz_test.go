package keepalived

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// memParser reads includes from files only (never the disk).
func memParser(files map[string][]byte) *parser {
	return &parser{
		vars: map[string]string{},
		readFile: func(n string) ([]byte, error) {
			if b, ok := files[n]; ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		glob: func(pat string) ([]string, error) {
			var out []string
			for n := range files {
				if ok, err := path.Match(pat, n); err != nil {
					return nil, err
				} else if ok {
					out = append(out, n)
				}
			}
			return out, nil
		},
	}
}

// FuzzParse feeds the parser and the mapping arbitrary input: they must not
// panic, errors must name a position, and statements carry positions.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/*/keepalived.conf")
	more, _ := filepath.Glob("../testdata/*/*/keepalived.conf")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"a {\n", "}\n", "a \"b\n", "{\n}", "include inc.conf\n", "include *.conf\n", "$X=1\na $X ${X}\n",
		"@lb1 a\n", "vrrp_instance A{interface eth0\nvirtual_router_id 1\nvirtual_ipaddress{10.0.0.1}}",
		"virtual_server 10.0.0.1 80 { real_server 10.0.0.2 80 { TCP_CHECK { connect_timeout 1 } } }",
		"a 'x\\x41\\101' \"\\c\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		files := map[string][]byte{"/k/keepalived.conf": src, "/k/inc.conf": src, "/k/other.conf": []byte("x {\n y\n}\n")}
		p := memParser(files)
		stmts, warns, err := p.run("/k/keepalived.conf", src)
		if err != nil {
			var se *source.Error
			if !errors.As(err, &se) || se.Pos.Line < 1 || se.Pos.File == "" {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		var walk func([]*Stmt)
		walk = func(l []*Stmt) {
			for _, s := range l {
				if len(s.Words) == 0 {
					t.Fatal("statement without words")
				}
				if w := s.Words[0].Pos; w.Line < 1 || w.Col < 1 || !strings.HasPrefix(w.File, "/k/") {
					t.Fatalf("bad position %v", w)
				}
				walk(s.Block)
			}
		}
		walk(stmts)
		b := source.NewBuilder()
		b.Config.Services = []config.Service{{Name: "web", Listen: []string{"10.0.0.1:80"}}}
		if apply(stmts, warns, b) != nil {
			return
		}
		// What the mapping accepts, halb's validation must accept.
		b.Config.Backends = append(b.Config.Backends, config.Backend{Name: "be"})
		b.Config.Services[0].DefaultBackend = "be"
		if b.Config.Node.Name == "" {
			b.Config.Node.Name = "lb1"
		}
		raw, err := config.Marshal(b.Config)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse("halb.yaml", raw); err != nil {
			t.Fatalf("the result does not validate: %v\n%s", err, raw)
		}
	})
}
