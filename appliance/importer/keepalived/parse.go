package keepalived

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"halb/appliance/importer/source"
)

// Word is one word of a statement, unquoted, with where it started.
type Word struct {
	Text string
	Pos  source.Pos
}

// Stmt is one statement: its words and, when it opens a block (`name {`,
// or `{` on the next line), the statements inside.
type Stmt struct {
	Words []Word
	Block []*Stmt
	// HasBlock is true when the statement opened a block (possibly empty).
	HasBlock bool
	// Cond is the conditional prefix (`@lb1`, `@^lb1`) the line had, if
	// any: keepalived keeps such a line only on the node whose config id
	// matches.
	Cond string
}

// Pos is where the statement starts.
func (s *Stmt) Pos() source.Pos { return s.Words[0].Pos }

// Key is the statement's first word.
func (s *Stmt) Key() string { return s.Words[0].Text }

// Args are the words after the first.
func (s *Stmt) Args() []string {
	a := make([]string, 0, len(s.Words)-1)
	for _, w := range s.Words[1:] {
		a = append(a, w.Text)
	}
	return a
}

// Text is the statement as one line (without its block).
func (s *Stmt) Text() string {
	a := make([]string, 0, len(s.Words))
	for _, w := range s.Words {
		a = append(a, w.Text)
	}
	t := strings.Join(a, " ")
	if s.Cond != "" {
		t = s.Cond + " " + t
	}
	return t
}

// Limits of what the parser reads.
const (
	maxIncludeDepth = 8
	maxFiles        = 256
	maxFileSize     = 4 << 20
	maxNesting      = 16
	maxSubst        = 64 << 10
)

// Warning is something the parser read and left out (an include that
// matched nothing); the mapping reports it.
type Warning struct {
	Pos       source.Pos
	Directive string
	Why       string
}

// token kinds of the lexer.
const (
	tWord = iota
	tOpen
	tClose
)

type token struct {
	kind int
	text string
	pos  source.Pos
	// line is true for the first token of a source line.
	line bool
	cond string
}

// parser reads a keepalived.conf and the files it includes into one token
// stream, then builds the statement tree.
type parser struct {
	readFile func(string) ([]byte, error)
	glob     func(string) ([]string, error)
	toks     []token
	vars     map[string]string
	stack    []string // files being read, for include loops
	files    int
	warnings []Warning
	// substTooLong is set when a $ substitution grew beyond maxSubst.
	substTooLong bool
	// configID decides conditional lines (@id, @^id) as keepalived -i
	// does; empty: they are kept marked, and reported by the mapping.
	configID string
}

// ParseFile reads path and its includes. Relative include patterns are
// relative to the directory of the file that holds them, as keepalived
// does. configID decides conditional lines as keepalived's -i does; with
// "" they stay in the result marked (Stmt.Cond).
func ParseFile(path, configID string) ([]*Stmt, []Warning, error) {
	p := &parser{readFile: os.ReadFile, glob: filepath.Glob, vars: map[string]string{}, configID: configID}
	return p.run(path, nil)
}

// Parse parses src as the file named name; includes are read from disk.
func Parse(name string, src []byte) ([]*Stmt, []Warning, error) {
	p := &parser{readFile: os.ReadFile, glob: filepath.Glob, vars: map[string]string{}}
	return p.run(name, src)
}

func (p *parser) run(path string, src []byte) ([]*Stmt, []Warning, error) {
	if src == nil {
		b, err := p.readFile(path)
		if err != nil {
			return nil, nil, err
		}
		src = b
	}
	if err := p.lexFile(path, src, source.Pos{File: path, Line: 1}); err != nil {
		return nil, nil, err
	}
	i := 0
	stmts, err := p.block(&i, nil, 0)
	if err != nil {
		return nil, nil, err
	}
	return stmts, p.warnings, nil
}

func (p *parser) lexFile(path string, src []byte, from source.Pos) error {
	if len(p.stack) >= maxIncludeDepth {
		return source.Errorf(from, "include nested deeper than %d files", maxIncludeDepth)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	for _, f := range p.stack {
		if f == abs {
			return source.Errorf(from, "include loop: %s includes itself", path)
		}
	}
	p.files++
	if p.files > maxFiles {
		return source.Errorf(from, "more than %d files included", maxFiles)
	}
	if len(src) > maxFileSize {
		return source.Errorf(from, "%s is larger than %d bytes", path, maxFileSize)
	}
	p.stack = append(p.stack, abs)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	for n, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSuffix(line, "\r")
		// keepalived spots include lines before anything else: the rest
		// of the line is the pattern.
		if f := strings.Fields(line); len(f) > 0 && isInclude(f[0]) {
			if err := p.include(path, n+1, line); err != nil {
				return err
			}
			continue
		}
		toks, err := p.lexLine(path, n+1, line)
		if err != nil {
			return err
		}
		p.toks = append(p.toks, toks...)
	}
	return nil
}

func isInclude(w string) bool {
	switch w {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

func (p *parser) include(path string, ln int, line string) error {
	kw := strings.Fields(line)[0]
	col := strings.Index(line, kw)
	at := source.Pos{File: path, Line: ln, Col: col + 1}
	rest := line[col+len(kw):]
	if c := strings.IndexAny(rest, "#!"); c >= 0 {
		rest = rest[:c]
	}
	argCol := col + len(kw) + len(rest) - len(strings.TrimLeft(rest, " \t")) + 1
	arg := strings.TrimSpace(rest)
	if len(arg) >= 2 && (arg[0] == '"' || arg[0] == '\'') && arg[len(arg)-1] == arg[0] {
		arg = arg[1 : len(arg)-1]
	}
	if arg == "" || strings.ContainsAny(arg, " \t\"'") {
		return source.Errorf(at, "%s takes one file name or pattern", kw)
	}
	argPos := source.Pos{File: path, Line: ln, Col: argCol}
	if strings.ContainsAny(arg, "{}") {
		return source.Errorf(argPos, "include with a brace expression is not supported: list the files, or use a * pattern")
	}
	pat := arg
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(filepath.Dir(path), pat)
	}
	names, err := p.glob(pat)
	if err != nil {
		return source.Errorf(argPos, "include %s: %v", arg, err)
	}
	if len(names) == 0 {
		p.warnings = append(p.warnings, Warning{Pos: at, Directive: kw + " " + arg,
			Why: "matched no file (keepalived ignores it too); nothing was read from it"})
		return nil
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := p.readFile(n)
		if err != nil {
			return source.Errorf(argPos, "include %s: %v", n, err)
		}
		if err := p.lexFile(n, b, argPos); err != nil {
			return err
		}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' }

// lexLine splits one line into words and braces: `#` and `!` outside
// quotes start a comment, " and ' quote (and may be joined to the rest of
// a word, as in the shell), backslash escapes work inside quotes, `$NAME`
// and `${NAME}` are replaced by earlier `$NAME=value` definitions, and a
// leading `@id` or `@^id` makes the line conditional.
func (p *parser) lexLine(file string, ln int, line string) ([]token, error) {
	var toks []token
	cond := ""
	i := 0
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	if i < len(line) && line[i] == '@' {
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		cond = line[i:j]
		if len(cond) == 1 || cond == "@^" {
			return nil, source.Errorf(source.Pos{File: file, Line: ln, Col: i + 1}, "conditional prefix %q names no config id", cond)
		}
		if p.configID != "" {
			// keepalived -i CONFIG_ID: keep the line (without its
			// prefix) or leave it out.
			neg := strings.HasPrefix(cond, "@^")
			if (strings.TrimPrefix(cond[1:], "^") == p.configID) == neg {
				return nil, nil
			}
			cond = ""
		}
		i = j
		for i < len(line) && isSpace(line[i]) {
			i++
		}
	}
	// A definition: $NAME=value (the rest of the line, comments stripped).
	if i < len(line) && line[i] == '$' {
		if eq := strings.IndexByte(line[i:], '='); eq > 1 && validVar(line[i+1:i+eq]) {
			val := line[i+eq+1:]
			if c := strings.IndexAny(val, "#!"); c >= 0 {
				val = val[:c]
			}
			val = strings.TrimSpace(val)
			if strings.HasSuffix(val, "\\") {
				return nil, source.Errorf(source.Pos{File: file, Line: ln, Col: i + 1}, "multiline $ definitions are not supported: write the lines out")
			}
			if cond != "" {
				p.warnings = append(p.warnings, Warning{Pos: source.Pos{File: file, Line: ln, Col: 1}, Directive: line,
					Why: "a conditional definition, and no config id (node name) to decide it: not applied"})
				return nil, nil
			}
			// Substituted when used, not here (keepalived's order).
			p.vars[line[i+1:i+eq]] = val
			return nil, nil
		}
	}
	for i < len(line) {
		c := line[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '#' || c == '!':
			i = len(line)
			continue
		case c == '{' || c == '}':
			k := tOpen
			if c == '}' {
				k = tClose
			}
			toks = append(toks, token{kind: k, text: string(c), pos: source.Pos{File: file, Line: ln, Col: i + 1}})
			i++
			continue
		}
		start := i
		var w strings.Builder
		for i < len(line) {
			c := line[i]
			if isSpace(c) || c == '{' || c == '}' || c == '#' || c == '!' {
				break
			}
			if c == '"' || c == '\'' {
				q := c
				j := i + 1
				var qs strings.Builder
				closed := false
				for j < len(line) {
					if line[j] == '\\' && j+1 < len(line) {
						n, adv := unescape(line[j+1:])
						qs.WriteString(n)
						j += 1 + adv
						continue
					}
					if line[j] == q {
						closed = true
						break
					}
					qs.WriteByte(line[j])
					j++
				}
				if !closed {
					return nil, source.Errorf(source.Pos{File: file, Line: ln, Col: i + 1}, "unterminated quoted string")
				}
				if q == '"' {
					w.WriteString(p.subst(qs.String()))
				} else {
					w.WriteString(qs.String())
				}
				i = j + 1
				continue
			}
			j := i
			for j < len(line) && !strings.ContainsRune(" \t\f\v\r{}#!\"'", rune(line[j])) {
				// ${NAME} is one piece of the word, braces included.
				if line[j] == '$' && j+1 < len(line) && line[j+1] == '{' {
					if k := strings.IndexByte(line[j:], '}'); k > 0 {
						j += k
					}
				}
				j++
			}
			w.WriteString(p.subst(line[i:j]))
			i = j
		}
		at := source.Pos{File: file, Line: ln, Col: start + 1}
		switch text := w.String(); {
		case strings.ContainsRune(text, 0):
			return nil, source.Errorf(at, "a NUL byte in a word")
		case !utf8.ValidString(text):
			return nil, source.Errorf(at, "a word that is not valid UTF-8")
		default:
			toks = append(toks, token{kind: tWord, text: text, pos: at})
		}
	}
	if p.substTooLong {
		return nil, source.Errorf(source.Pos{File: file, Line: ln, Col: 1}, "$ substitution makes the line longer than %d bytes", maxSubst)
	}
	if len(toks) > 0 {
		toks[0].line = true
		toks[0].cond = cond
	} else if cond != "" {
		return nil, source.Errorf(source.Pos{File: file, Line: ln, Col: 1}, "conditional prefix %s on an empty line", cond)
	}
	return toks, nil
}

func validVar(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// subst replaces ${NAME}, and $NAME at the end of s or before
// whitespace, of defined names, recursively (a value may use other
// names); others stay as written (a shell variable in a script is the
// shell's).
func (p *parser) subst(s string) string { return p.substDepth(s, 0) }

func (p *parser) substDepth(s string, depth int) string {
	if len(p.vars) == 0 || !strings.Contains(s, "$") || depth > 8 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		name, end := "", i+1
		if end < len(s) && s[end] == '{' {
			if k := strings.IndexByte(s[end:], '}'); k > 0 {
				name, end = s[end+1:end+k], end+k+1
			}
		} else {
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
			name = s[i+1 : end]
		}
		if v, ok := p.vars[name]; ok && name != "" {
			if b.Len() > maxSubst {
				p.substTooLong = true
				return b.String()
			}
			b.WriteString(p.substDepth(v, depth+1))
			i = end
			continue
		}
		b.WriteByte('$')
		i++
	}
	return b.String()
}

// unescape decodes the escape after a backslash in a quoted string; it
// returns the text and how many bytes it used.
func unescape(s string) (string, int) {
	switch s[0] {
	case 'a':
		return "\a", 1
	case 'b':
		return "\b", 1
	case 'E':
		return "\x1b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'v':
		return "\v", 1
	case 'x':
		v, n := 0, 1
		for n < 3 && n < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[n]) >= 0 {
			v = v*16 + hexVal(s[n])
			n++
		}
		if n == 1 {
			return "x", 1
		}
		return string(rune(v)), n
	case 'c':
		if len(s) > 1 {
			return string(rune(s[1] & 0x1f)), 2
		}
	}
	if s[0] >= '0' && s[0] <= '7' {
		v, n := 0, 0
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v*8 + int(s[n]-'0')
			n++
		}
		return string(rune(v & 0xff)), n
	}
	return s[:1], 1
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// block reads statements from *i until the closing brace of open (nil:
// the end of the input).
func (p *parser) block(i *int, open *token, depth int) ([]*Stmt, error) {
	var out []*Stmt
	var cur *Stmt
	for *i < len(p.toks) {
		t := p.toks[*i]
		*i++
		if t.line && cur != nil {
			out = append(out, cur)
			cur = nil
		}
		switch t.kind {
		case tWord:
			if cur == nil {
				cur = &Stmt{Cond: t.cond}
			}
			cur.Words = append(cur.Words, Word{Text: t.text, Pos: t.pos})
		case tOpen:
			target := cur
			if target == nil {
				// `{` on a line of its own opens the block of the
				// statement before it.
				if len(out) == 0 || out[len(out)-1].HasBlock {
					return nil, source.Errorf(t.pos, "'{' without a keyword before it")
				}
				target = out[len(out)-1]
				out = out[:len(out)-1]
			}
			if depth >= maxNesting {
				return nil, source.Errorf(t.pos, "blocks nested deeper than %d", maxNesting)
			}
			inner, err := p.block(i, &t, depth+1)
			if err != nil {
				return nil, err
			}
			target.Block = append(target.Block, inner...)
			target.HasBlock = true
			out = append(out, target)
			cur = nil
		case tClose:
			if cur != nil {
				out = append(out, cur)
			}
			if open == nil {
				return nil, source.Errorf(t.pos, "'}' without a matching '{'")
			}
			return out, nil
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	if open != nil {
		return nil, source.Errorf(open.pos, "'{' is never closed")
	}
	return out, nil
}
