package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// syntaxError turns an error of dec.Decode (a YAML syntax error) into an
// Error at the place where the parser found the problem.
//
// The yaml package's message names a line, but not the offending one: it
// prefers the line where the enclosing construct began (the "context mark",
// e.g. the mapping that a stray key breaks), and for parser errors it prints
// that line counted from 0. Its parser keeps the exact marks, as libyaml and
// PyYAML do: the problem mark (where the offending token or character is)
// and the context mark (where the construct being parsed started). The yaml
// package does not export them, so they are read from the decoder by
// reflection, which can read but not change unexported fields. go.sum pins
// the version; TestSyntaxErrors fails if a new version moves the fields, and
// until then the message's line is used.
func syntaxError(name string, data []byte, dec *yaml.Decoder, err error) *Error {
	m, ok := readMarks(dec)
	if !ok {
		return yamlError(name, err)
	}
	e := &Error{File: name}
	switch {
	case m.kind == yamlReaderError:
		// The reader knows only a byte offset, not a line.
		e.Line, e.Column = position(data, m.offset)
		e.Msg = "yaml: " + m.problem
		if m.offset < len(data) {
			e.Msg += fmt.Sprintf(" (found %s)", describeByte(data[m.offset:]))
		}
	case m.kind == yamlScannerError || m.kind == yamlParserError:
		e.Line, e.Column = m.problemAt.line+1, m.problemAt.column+1
		e.Msg = "yaml: " + explain(m.problem, charAt(data, m.problemAt))
		if l, c := position(data, len(data)); m.problemAt == (mark{l - 1, c - 1}) && !strings.Contains(m.problem, "end of stream") {
			e.Msg += " at the end of the file"
		}
		if m.context != "" && m.contextAt != m.problemAt {
			e.Msg += fmt.Sprintf(" (%s that starts at line %d, column %d)",
				m.context, m.contextAt.line+1, m.contextAt.column+1)
		}
	case m.kind == yamlNoError && m.eventAt != nil:
		// The composer failed on the current event (an alias of an
		// unknown anchor, say); the parser itself had no error.
		e = yamlError(name, err)
		e.Line, e.Column = m.eventAt.line+1, m.eventAt.column+1
	default:
		return yamlError(name, err)
	}
	return e
}

// The error kinds of the yaml package's parser (yaml_error_type_t).
const (
	yamlNoError      = 0
	yamlReaderError  = 2
	yamlScannerError = 3
	yamlParserError  = 4
)

// mark is a position in the input: line and column count from 0, the column
// in characters.
type mark struct{ line, column int }

type marks struct {
	kind                 int
	problem, context     string
	problemAt, contextAt mark
	offset               int   // reader errors: the byte offset
	eventAt              *mark // the pending event, if any
}

// readMarks reads the parser's error state from the decoder (see
// syntaxError). ok is false when the fields are not where this code expects
// them.
func readMarks(dec *yaml.Decoder) (m marks, ok bool) {
	p := field(reflect.ValueOf(dec), "parser")
	yp := field(p, "parser")
	kind, ok1 := intField(yp, "error")
	problem, ok2 := stringField(yp, "problem")
	context, ok3 := stringField(yp, "context")
	offset, ok4 := intField(yp, "problem_offset")
	problemAt, ok5 := markField(yp, "problem_mark")
	contextAt, ok6 := markField(yp, "context_mark")
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return marks{}, false
	}
	m = marks{kind: kind, problem: problem, context: context, offset: offset,
		problemAt: problemAt, contextAt: contextAt}
	ev := field(p, "event")
	if typ, ok := intField(ev, "typ"); ok && typ != 0 { // 0: yaml_NO_EVENT
		if at, ok := markField(ev, "start_mark"); ok {
			m.eventAt = &at
		}
	}
	return m, true
}

// field follows pointers and struct fields by name; the zero Value when a
// step is missing.
func field(v reflect.Value, names ...string) reflect.Value {
	for _, n := range names {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}
		}
		v = v.FieldByName(n)
	}
	return v
}

func intField(v reflect.Value, name string) (int, bool) {
	f := field(v, name)
	if !f.CanInt() {
		return 0, false
	}
	return int(f.Int()), true
}

func stringField(v reflect.Value, name string) (string, bool) {
	f := field(v, name)
	if f.Kind() != reflect.String {
		return "", false
	}
	return f.String(), true
}

func markField(v reflect.Value, name string) (mark, bool) {
	f := field(v, name)
	line, ok1 := intField(f, "line")
	col, ok2 := intField(f, "column")
	return mark{line, col}, ok1 && ok2
}

// position turns a byte offset into a line and a column in characters, both
// counted from 1.
func position(data []byte, offset int) (line, column int) {
	offset = min(offset, len(data))
	before := data[:offset]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[start:]) + 1
}

// charAt is the character at mark m, or -1 past the end of its line.
func charAt(data []byte, m mark) rune {
	for range m.line {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return -1
		}
		data = data[i+1:]
	}
	for range m.column {
		if len(data) == 0 || data[0] == '\n' {
			return -1
		}
		_, n := utf8.DecodeRune(data)
		data = data[n:]
	}
	if len(data) == 0 || data[0] == '\n' {
		return -1
	}
	r, _ := utf8.DecodeRune(data)
	return r
}

// explain names the offending character in the messages where the yaml
// package leaves it out, and says what to do about a tab.
func explain(problem string, r rune) string {
	switch {
	case problem == "found character that cannot start any token" && r >= 0:
		problem = fmt.Sprintf("found character %s that cannot start any token", quoteRune(r))
	case problem != "found a tab character that violates indentation":
		return problem
	}
	if r == '\t' {
		problem += "; indent with spaces, not tabs"
	}
	return problem
}

func quoteRune(r rune) string {
	if r == '\t' {
		return "'\\t' (a tab)"
	}
	return strconv.QuoteRune(r)
}

// describeByte names the byte at the start of b for a reader error.
func describeByte(b []byte) string {
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("byte 0x%02x", b[0])
	}
	return fmt.Sprintf("%s (U+%04X)", strconv.QuoteRune(r), r)
}
