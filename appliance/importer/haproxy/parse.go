package haproxy

import (
	"fmt"
	"strings"

	"halb/appliance/importer/source"
)

// The line grammar is HAProxy's (configuration.txt section 2.2): a line is
// words separated by spaces or tabs; '#' outside quotes starts a comment; a
// backslash escapes a space, '#', a backslash or a quote, and writes \n,
// \r, \t and \xNN; double quotes (weak) keep escapes and expand "${VAR}",
// single quotes (strong) keep everything as written. There is no line
// continuation. A line whose first word is a section keyword starts a
// section.

// Word is one word of a line, after quotes and escapes.
type Word struct {
	Text string
	Pos  source.Pos
	// Env lists the environment variables the word names in double
	// quotes ("${VAR}"); Text keeps them as written.
	Env []string
}

// Line is one directive.
type Line struct {
	Words []Word
	Raw   string // as written, without the comment
}

// Pos is the position of the line's first word.
func (l *Line) Pos() source.Pos { return l.Words[0].Pos }

// Arg returns word i's text, or "" past the end.
func (l *Line) Arg(i int) string {
	if i < len(l.Words) {
		return l.Words[i].Text
	}
	return ""
}

// Section is a section with its header and its lines.
type Section struct {
	Kind   string // global, defaults, frontend, ...
	Name   string // empty for global and an unnamed defaults
	From   string // the defaults named by "from NAME"
	Header Line
	Lines  []Line
}

// What names the section as an operator wrote it ("frontend web").
func (s *Section) What() string {
	if s.Name == "" {
		return s.Kind
	}
	return s.Kind + " " + s.Name
}

// File is a parsed haproxy.cfg.
type File struct {
	Sections []*Section
}

// proxySections are the sections the importer maps; otherSections are
// sections it knows and drops with a reason.
var (
	proxySections = map[string]bool{"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true}
	otherSections = map[string]string{
		"peers":          "halb synchronises no stick tables between nodes (its peer link carries the config); source persistence is per node",
		"resolvers":      "halb resolves server names with the system resolver when it applies the config",
		"userlist":       "halb has no HTTP authentication of clients",
		"cache":          "halb has no response cache",
		"program":        "halbd starts no other programs",
		"http-errors":    "halb sends its own error pages",
		"ring":           "halb's log targets are observe.logs",
		"mailers":        "halb sends no mail; alerts are on its status and metrics",
		"log-forward":    "halb forwards no syslog",
		"fcgi-app":       "halb has no FastCGI",
		"crt-store":      "halb keeps certificates in its store (halbctl cert add) or names PEM files per service",
		"traces":         "halb has no HAProxy traces",
		"acme":           "halb has no ACME client",
		"namespace_list": "halb has no network namespaces per server",
	}
)

// Parse reads a haproxy.cfg. Errors are *source.Error naming
// file:line:column.
func Parse(path string, data []byte) (*File, error) {
	f := &File{}
	var cur *Section
	lines := strings.Split(string(data), "\n")
	for i, text := range lines {
		text = strings.TrimSuffix(text, "\r")
		l, err := splitLine(path, i+1, text)
		if err != nil {
			return nil, err
		}
		if len(l.Words) == 0 {
			continue
		}
		kw := l.Words[0].Text
		if strings.HasPrefix(kw, ".") {
			return nil, source.Errorf(l.Pos(), "%s: conditional blocks and messages (.if, .notice, ...) are not supported by the importer; resolve them first", kw)
		}
		if proxySections[kw] || otherSections[kw] != "" {
			s, err := header(l)
			if err != nil {
				return nil, err
			}
			f.Sections = append(f.Sections, s)
			cur = s
			continue
		}
		if cur == nil {
			return nil, source.Errorf(l.Pos(), "%q outside a section: not a section keyword (global, defaults, frontend, backend, listen, ...)", kw)
		}
		cur.Lines = append(cur.Lines, l)
	}
	// "from" names a defaults section declared before.
	seen := map[string]bool{}
	for _, s := range f.Sections {
		if s.From != "" && !seen[s.From] {
			return nil, source.Errorf(s.Header.Pos(), "%s: from %q: no defaults section of that name before it", s.What(), s.From)
		}
		if s.Kind == "defaults" && s.Name != "" {
			seen[s.Name] = true
		}
	}
	return f, nil
}

func header(l Line) (*Section, error) {
	s := &Section{Kind: l.Words[0].Text, Header: l}
	rest := l.Words[1:]
	switch s.Kind {
	case "global":
		return s, nil // extra words are reported by the mapping
	case "frontend", "backend", "listen":
		if len(rest) == 0 {
			return nil, source.Errorf(l.Pos(), "%s needs a name", s.Kind)
		}
	}
	if len(rest) > 0 && rest[0].Text != "from" {
		s.Name = rest[0].Text
		if s.Name == "" {
			return nil, source.Errorf(rest[0].Pos, "%s: empty name", s.Kind)
		}
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0].Text == "from" && proxySections[s.Kind] {
		if len(rest) < 2 || rest[1].Text == "" {
			return nil, source.Errorf(rest[0].Pos, "%s: from needs the name of a defaults section", s.What())
		}
		s.From = rest[1].Text
	}
	return s, nil
}

// splitLine splits one line into words.
func splitLine(path string, n int, text string) (Line, error) {
	var (
		l       Line
		w       strings.Builder
		inWord  bool
		start   int
		env     []string
		squote  bool
		dquote  bool
		qpos    int
		comment = len(text)
	)
	pos := func(i int) source.Pos { return source.Pos{File: path, Line: n, Col: i + 1} }
	end := func() {
		if inWord {
			l.Words = append(l.Words, Word{Text: w.String(), Pos: pos(start), Env: env})
		}
		w.Reset()
		inWord, env = false, nil
	}
	begin := func(i int) {
		if !inWord {
			inWord, start = true, i
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case squote:
			if c == '\'' {
				squote = false
			} else {
				w.WriteByte(c)
			}
		case c == '\\':
			begin(i)
			if i+1 >= len(text) {
				return l, source.Errorf(pos(i), "a backslash at the end of the line: HAProxy has no line continuation")
			}
			i++
			switch e := text[i]; e {
			case ' ', '#', '\\', '\'', '"', '\t':
				w.WriteByte(e)
			case 'n':
				w.WriteByte('\n')
			case 'r':
				w.WriteByte('\r')
			case 't':
				w.WriteByte('\t')
			case 'x':
				if i+2 >= len(text) || !isHex(text[i+1]) || !isHex(text[i+2]) {
					return l, source.Errorf(pos(i-1), `\x needs two hex digits`)
				}
				w.WriteByte(unhex(text[i+1])<<4 | unhex(text[i+2]))
				i += 2
			default:
				w.WriteByte('\\')
				w.WriteByte(e)
			}
		case dquote:
			switch {
			case c == '"':
				dquote = false
			case c == '$' && i+1 < len(text) && text[i+1] == '{':
				j := strings.IndexByte(text[i:], '}')
				if j < 0 {
					return l, source.Errorf(pos(i), "unterminated ${ in double quotes")
				}
				name := text[i+2 : i+j]
				if k := strings.IndexAny(name, "[-"); k >= 0 {
					name = name[:k]
				}
				env = append(env, name)
				w.WriteString(text[i : i+j+1])
				i += j
			case c == '$' && i+1 < len(text) && (isAlpha(text[i+1]) || text[i+1] == '_'):
				// the older "$VAR" form
				j := i + 1
				for j < len(text) && (isAlpha(text[j]) || text[j] == '_' || text[j] >= '0' && text[j] <= '9') {
					j++
				}
				env = append(env, text[i+1:j])
				w.WriteString(text[i:j])
				i = j - 1
			default:
				w.WriteByte(c)
			}
		case c == '\'':
			begin(i)
			squote, qpos = true, i
		case c == '"':
			begin(i)
			dquote, qpos = true, i
		case c == '#':
			end()
			comment = i
			i = len(text)
		case c == ' ' || c == '\t':
			end()
		default:
			begin(i)
			w.WriteByte(c)
		}
	}
	if squote || dquote {
		return l, source.Errorf(pos(qpos), "unterminated quote")
	}
	end()
	l.Raw = strings.TrimSpace(text[:comment])
	var open []source.Pos
	for _, wd := range l.Words {
		switch wd.Text {
		case "{", "!{":
			open = append(open, wd.Pos)
		case "}":
			if len(open) == 0 {
				return l, source.Errorf(wd.Pos, "} without {")
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return l, source.Errorf(open[len(open)-1], "{ not closed by } on this line")
	}
	return l, nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// String writes the line's words back (for tests).
func (l Line) String() string {
	var parts []string
	for _, w := range l.Words {
		parts = append(parts, fmt.Sprintf("%q@%d", w.Text, w.Pos.Col))
	}
	return strings.Join(parts, " ")
}
