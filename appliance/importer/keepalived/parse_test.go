package keepalived

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// words flattens statements as "key args | child ; child" for comparison.
func flat(stmts []*Stmt) string {
	var out []string
	for _, s := range stmts {
		t := s.Text()
		if s.HasBlock {
			t += " {" + flat(s.Block) + "}"
		}
		out = append(out, t)
	}
	return strings.Join(out, "; ")
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"brace on the line", "a {\n b 1\n}\n", "a {b 1}"},
		{"brace glued", "a{\n b 1\n}", "a {b 1}"},
		{"brace on the next line", "a\n{\n b 1\n}\n", "a {b 1}"},
		{"one line", "a { b 1 c 2 }", "a {b 1 c 2}"},
		{"empty block", "a {}\nb", "a {}; b"},
		{"nested", "a {\n b {\n  c\n }\n d\n}", "a {b {c}; d}"},
		{"comments", "! head\n# head\na 1 # tail\nb 2 ! tail\nc#x\n", "a 1; b 2; c"},
		{"comment chars in quotes", `a "x # y ! z"`, "a x # y ! z"},
		{"quotes join", `a pre"fix x"post 'q "d"'`, `a prefix xpost q "d"`},
		{"escapes", `a "t\tn\x41\101\"q"`, "a t\tnAA\"q"},
		{"single quotes keep backslash escapes too", `a 'x\ty'`, "a x\ty"},
		{"tabs and CRLF", "a\t{\r\n\tb\t1\r\n}\r\n", "a {b 1}"},
		{"close then keyword", "a {\n} b {\n}", "a {}; b {}"},
		{"definitions", "$IF=eth1\n$N=7 # comment\ni $IF ${IF}x \"$N\" '$N' $OTHER $N.x", "i eth1 eth1x 7 $N $OTHER $N.x"},
		{"definitions used late and recursively", "$A=10.2.${B}\n$B=0\n${A}.1\n$B=10\n${A}.1", "10.2.0.1; 10.2.10.1"},
		{"conditional", "@lb1 priority 100\n@^lb1 priority 50\n", "@lb1 priority 100; @^lb1 priority 50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, err := Parse("k.conf", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(st); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParsePositions(t *testing.T) {
	st, _, err := Parse("k.conf", []byte("# c\nvrrp_instance  VI_1\n{\n\tstate \"MASTER\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := st[0].Words[1].Pos.String(); got != "k.conf:2:16" {
		t.Errorf("VI_1 at %s, want k.conf:2:16", got)
	}
	if got := st[0].Block[0].Words[1].Pos.String(); got != "k.conf:4:8" {
		t.Errorf("MASTER at %s, want k.conf:4:8", got)
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("a {\n", maxNesting+1) + strings.Repeat("}\n", maxNesting+1)
	for _, tc := range []struct{ name, src, want string }{
		{"unclosed", "a {\n b\n", "k.conf:1:3: '{' is never closed"},
		{"unclosed inner", "a {\n b {\n}\n", "k.conf:1:3: '{' is never closed"},
		{"stray close", "a\n}\n", "k.conf:2:1: '}' without a matching '{'"},
		{"open without keyword", "{\n}\n", "k.conf:1:1: '{' without a keyword"},
		{"open twice", "a {\n}\n{\n}\n", "k.conf:3:1: '{' without a keyword"},
		{"unterminated double", "a \"b\n", "k.conf:1:3: unterminated quoted string"},
		{"unterminated single", "a {\n  b 'c }\n}", "k.conf:2:5: unterminated quoted string"},
		{"too deep", deep, "blocks nested deeper than"},
		{"bare condition", "@ a\n", "k.conf:1:1: conditional prefix"},
		{"include without name", "include\n", "k.conf:1:1: include takes one file name"},
		{"include braces", "include {a,b}.conf\n", "brace expression"},
		{"substitution bomb", "$A=${A}${A}${A}${A}${A}${A}${A}${A}\nx $A\n", "k.conf:2:1: $ substitution makes the line longer"},
		{"NUL escape", `a "b\x00"`, "k.conf:1:3: a NUL byte"},
		{"NUL byte", "a b\x00c\n", "k.conf:1:3: a NUL byte"},
		{"not UTF-8", "a \xff\n", "k.conf:1:3: a word that is not valid UTF-8"},
		{"multiline definition", "$I= \\\n a\n", "k.conf:1:1: multiline $ definitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("k.conf", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func write(t *testing.T, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInclude(t *testing.T) {
	dir := t.TempDir()
	main := write(t, dir, "keepalived.conf", "a 1\ninclude conf.d/*.conf\nz 26\n")
	write(t, dir, "conf.d/20-b.conf", "b {\n include sub/x.inc\n}\n")
	write(t, dir, "conf.d/10-a.conf", "c 3\nincluder nothing/*.conf\n")
	write(t, dir, "conf.d/sub/x.inc", "x 24 # relative to conf.d, the including file's directory\n")
	write(t, dir, "conf.d/ignored.txt", "not read\n")
	st, warns, err := ParseFile(main, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flat(st), "a 1; c 3; b {x 24}; z 26"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := st[2].Block[0].Pos().String(); !strings.HasSuffix(got, "conf.d/sub/x.inc:1:1") {
		t.Errorf("x at %s", got)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].Why, "matched no file") {
		t.Errorf("warnings %+v, want the include that matched nothing", warns)
	}
}

func TestIncludeLimits(t *testing.T) {
	dir := t.TempDir()
	loop := write(t, dir, "a.conf", "include b.conf\n")
	write(t, dir, "b.conf", "x\ninclude a.conf\n")
	if _, _, err := ParseFile(loop, ""); err == nil || !strings.Contains(err.Error(), "b.conf:2:9: include loop") {
		t.Errorf("loop: %v", err)
	}
	// A chain deeper than the bound, without a loop.
	for i := 0; i < maxIncludeDepth+2; i++ {
		write(t, dir, "d"+string(rune('a'+i))+".conf", "include d"+string(rune('a'+i+1))+".conf\n")
	}
	if _, _, err := ParseFile(filepath.Join(dir, "da.conf"), ""); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("depth: %v", err)
	}
	if _, _, err := ParseFile(filepath.Join(dir, "missing.conf"), ""); err == nil {
		t.Error("a missing main file is not an error")
	}
}

func TestSplitScript(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  string
		shell bool
	}{
		{"/usr/bin/killall -0 haproxy", "/usr/bin/killall|-0|haproxy", false},
		{"  pidof   haproxy ", "pidof|haproxy", false},
		{"/usr/local/bin/chk 'two words' x", "/usr/local/bin/chk|two words|x", false},
		{"/bin/ping -c1 10.0.0.1 > /dev/null", "/bin/sh|-c|/bin/ping -c1 10.0.0.1 > /dev/null", true},
		{"pidof haproxy && exit 0", "/bin/sh|-c|pidof haproxy && exit 0", true},
		{"[ -f /run/haproxy.pid ]", "/bin/sh|-c|[ -f /run/haproxy.pid ]", true},
	} {
		argv, shell := splitScript(tc.in)
		if got := strings.Join(argv, "|"); got != tc.want || shell != tc.shell {
			t.Errorf("%q: got %q shell %v, want %q shell %v", tc.in, got, shell, tc.want, tc.shell)
		}
	}
}

func TestChecksHAProxy(t *testing.T) {
	for in, want := range map[string]bool{
		"/usr/bin/killall -0 haproxy":                          true,
		"killall -0 haproxy":                                   true,
		"pidof haproxy":                                        true,
		"/bin/pidof -s haproxy":                                true,
		"pgrep -x haproxy":                                     true,
		"systemctl is-active haproxy":                          true,
		"/usr/bin/systemctl is-active --quiet haproxy.service": true,
		"killall -0 nginx":                                     false,
		"killall haproxy":                                      true,
		"killall -9 haproxy":                                   false,
		"systemctl restart haproxy":                            false,
		"pidof haproxy || exit 1":                              false,
		"/etc/keepalived/check_haproxy.sh":                     false,
		"curl -fs http://127.0.0.1/haproxy":                    false,
	} {
		argv, shell := splitScript(in)
		if got := checksHAProxy(argv, shell); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func TestConditional(t *testing.T) {
	src := `$P=10
@main $P=240
@backup $P=200
global_defs {
	@main router_id main_router
	@backup router_id backup_router
}
unicast_peer {
	@^main 1.2.3.4
	@^backup 1.2.3.5
	@^backup2 1.2.3.6
}
priority $P
`
	for id, want := range map[string]string{
		"main":   "global_defs {router_id main_router}; unicast_peer {1.2.3.5; 1.2.3.6}; priority 240",
		"backup": "global_defs {router_id backup_router}; unicast_peer {1.2.3.4; 1.2.3.6}; priority 200",
		"other":  "global_defs {}; unicast_peer {1.2.3.4; 1.2.3.5; 1.2.3.6}; priority 10",
	} {
		p := memParser(map[string][]byte{})
		p.configID = id
		st, _, err := p.run("k.conf", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := flat(st); got != want {
			t.Errorf("%s: got %q, want %q", id, got, want)
		}
	}
	// Without a config id the lines stay marked and the definitions are
	// not applied (warned).
	st, warns, err := Parse("k.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := flat(st); !strings.Contains(got, "@main router_id main_router") || !strings.HasSuffix(got, "priority 10") || len(warns) != 2 {
		t.Errorf("got %q, warnings %v", got, warns)
	}
}
