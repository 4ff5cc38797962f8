package haproxy

import (
	"errors"
	"strings"
	"testing"

	"halb/appliance/importer/source"
)

func TestSplitLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		cols []int
	}{
		{"  server web1 10.0.0.1:80 check", []string{"server", "web1", "10.0.0.1:80", "check"}, []int{3, 10, 15, 27}},
		{"\tbind\t:80 # the VIP", []string{"bind", ":80"}, []int{2, 7}},
		{`option httpchk HEAD / HTTP/1.1\r\nHost:\ www`, []string{"option", "httpchk", "HEAD", "/", "HTTP/1.1\r\nHost: www"}, []int{1, 8, 16, 21, 23}},
		{`http-response set-header X-A "a b # c"`, []string{"http-response", "set-header", "X-A", "a b # c"}, []int{1, 15, 26, 30}},
		{`acl a hdr(host) 'it''s' \#x`, []string{"acl", "a", "hdr(host)", "its", "#x"}, []int{1, 5, 7, 17, 25}},
		{`log "foo"bar'baz'`, []string{"log", "foobarbaz"}, []int{1, 5}},
		{`x "a\"b" 'a\b' \x41\t`, []string{"x", `a"b`, `a\b`, "A\t"}, []int{1, 3, 10, 16}},
		{`x ""`, []string{"x", ""}, []int{1, 3}},
		{"# only a comment", nil, nil},
		{"bind :80#no space", []string{"bind", ":80"}, []int{1, 6}},
	} {
		l, err := splitLine("f", 1, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var got []string
		var cols []int
		for _, w := range l.Words {
			got = append(got, w.Text)
			cols = append(cols, w.Pos.Col)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q: words %q, want %q", tc.in, got, tc.want)
		}
		for i := range cols {
			if i < len(tc.cols) && cols[i] != tc.cols[i] {
				t.Errorf("%q: word %d at column %d, want %d", tc.in, i, cols[i], tc.cols[i])
			}
		}
	}
}

func TestSplitLineEnv(t *testing.T) {
	l, err := splitLine("f", 1, `bind "${VIP}:80" '${NOT}'`)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Words[1].Env) != 1 || l.Words[1].Env[0] != "VIP" || l.Words[1].Text != "${VIP}:80" {
		t.Errorf("word 1 = %+v, want env VIP", l.Words[1])
	}
	if l, _ := splitLine("f", 1, `x "$HOME/a"`); len(l.Words[1].Env) != 1 || l.Words[1].Env[0] != "HOME" {
		t.Errorf("$HOME: %+v", l.Words[1])
	}
	if len(l.Words[2].Env) != 0 {
		t.Errorf("single quotes expand nothing: %+v", l.Words[2])
	}
}

// TestParseErrors: malformed input is an error naming file:line:column.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"bind :80\n", `h.cfg:1:1: "bind" outside a section`},
		{"global\n  log \"127.0.0.1 local0\n", "h.cfg:2:7: unterminated quote"},
		{"global\n  log '127.0.0.1\n", "h.cfg:2:7: unterminated quote"},
		{"frontend web\n  bind :80 \\\n  mode http\n", "h.cfg:2:12: a backslash at the end of the line"},
		{"frontend web\n  use_backend a if { path_beg /a\n", "h.cfg:2:20: { not closed by }"},
		{"frontend web\n  use_backend a if path_beg /a }\n", "h.cfg:2:32: } without {"},
		{"frontend\n", "h.cfg:1:1: frontend needs a name"},
		{"backend b from base\n", `h.cfg:1:1: backend b: from "base": no defaults section of that name before it`},
		{"defaults\n  timeout client \"${T\"\n", "h.cfg:2:19: unterminated ${"},
		{"global\n.if defined(X)\n.endif\n", "h.cfg:2:1: .if: conditional blocks"},
		{"frontend web\n  x \\x4\n", `h.cfg:2:5: \x needs two hex digits`},
		{"frontnd web\n", `h.cfg:1:1: "frontnd" outside a section`},
	} {
		_, err := Parse("h.cfg", []byte(tc.in))
		var se *source.Error
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a *source.Error", tc.in, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s...", tc.in, err, tc.want)
		}
	}
}

func TestParseSections(t *testing.T) {
	f, err := Parse("h.cfg", []byte(`# header
global
	daemon
defaults base
	mode http
defaults web from base
	timeout client 5s
frontend fe from web
	bind :80
listen db 10.0.0.1:3306
peers p
	peer lb1 10.0.0.2:1024
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range f.Sections {
		got = append(got, s.What()+"<"+s.From+">")
	}
	want := "global<>|defaults base<>|defaults web<base>|frontend fe<web>|listen db<>|peers p<>"
	if strings.Join(got, "|") != want {
		t.Errorf("sections %s, want %s", strings.Join(got, "|"), want)
	}
	if l := f.Sections[3].Lines[0]; l.Pos().String() != "h.cfg:9:2" || l.Raw != "bind :80" {
		t.Errorf("line %s %q", l.Pos(), l.Raw)
	}
}
