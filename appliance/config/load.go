package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxSize bounds a config file; larger inputs are refused before parsing.
const MaxSize = 4 << 20

// MaxErrors bounds the problems reported for one file (the first ones by
// line), so that a huge broken file is rejected quickly and readably.
const MaxErrors = 100

// Error is one problem in a config, located by field path and line, or by
// line and column where there is no field path (a YAML syntax error).
type Error struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Column counts characters from 1; 0 when the field path locates the
	// problem.
	Column int    `json:"column,omitempty"`
	Path   string `json:"path,omitempty"`
	Msg    string `json:"message"`
}

// Error formats the problem as file:line:column: path: message, leaving out
// the parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// AsErrors returns the list of config errors inside err, or nil when err is
// not (or does not wrap) an Errors value.
func AsErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	return nil
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	cfg, err := Parse(filepath.Base(path), data)
	return cfg, data, err
}

// Parse decodes, defaults and validates a config. name is used in error
// messages (usually the file's base name). On failure the error is an Errors
// listing every problem found.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxSize {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("config is larger than %d bytes", MaxSize)}}
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, Errors{{File: name, Msg: "config is empty: at least node.name is required"}}
	}
	// A decoder rather than yaml.Unmarshal, which would silently ignore
	// everything after the first document.
	var root, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		return nil, Errors{syntaxError(name, data, dec, err)}
	}
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, Errors{syntaxError(name, data, dec, err)}
	default:
		return nil, Errors{{File: name, Line: extra.Line, Msg: "only one YAML document is allowed (remove the second ---)"}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		// A document of only comments decodes to a zero node, "---" alone
		// to a null scalar.
		if doc.Kind == 0 || doc.Kind == yaml.DocumentNode || (doc.Kind == yaml.ScalarNode && doc.Tag == "!!null") {
			return nil, Errors{{File: name, Msg: "config is empty: at least node.name is required"}}
		}
		return nil, Errors{{File: name, Line: doc.Line, Msg: "the top level must be a mapping (node:, vrrp:, services:, ...)"}}
	}

	w := walker{lines: map[string]int{}, bad: map[string]bool{}}
	w.walk(doc, reflect.TypeOf(Config{}), "")
	if len(w.errs) > MaxErrors {
		return nil, w.finish(name)
	}
	cfg := new(Config)
	if err := doc.Decode(cfg); err != nil {
		// walk fixed every type mismatch it knows of; report what is left.
		// The decoder gives up on the mapping that failed, so validating
		// the partial result would report errors that are not there.
		w.errs = append(w.errs, yamlError(name, err))
		return nil, w.finish(name)
	}
	// Validate even after the walker's errors, so that one run reports every
	// problem; a field that already failed to decode is not reported twice,
	// nor are the fields inside it.
	applyDefaults(cfg, w.present)
	for _, e := range Validate(cfg) {
		if !failedAt(w.bad, e.Path) {
			w.errs = append(w.errs, e)
		}
	}
	if len(w.errs) > 0 {
		return nil, w.finish(name)
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml package error into an Error with the line its
// message names (for a syntax error, see syntaxError).
func yamlError(name string, err error) *Error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	e := &Error{File: name, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "yaml: " + m[2]
	}
	return e
}

// walker indexes the YAML tree against the Go types: it records the line of
// every field path, reports unknown keys, and checks scalar types so that one
// bad value does not hide the others.
type walker struct {
	lines map[string]int
	errs  Errors
	bad   map[string]bool // paths whose value failed to decode
}

func (w *walker) present(path string) bool {
	_, ok := w.lines[path]
	return ok
}

// failedAt reports whether path or one of its parents is in bad.
func failedAt(bad map[string]bool, path string) bool {
	for path != "" {
		if bad[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
	return false
}

// fail reports a value that cannot be decoded; validation errors at path or
// below are then not reported.
func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.failKey(n, path, format, args...)
	w.bad[path] = true
}

// failKey reports a key that is dropped.
func (w *walker) failKey(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, &Error{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if len(w.errs) > MaxErrors {
		return // enough to report; the decoder stops at what is left
	}
	if n.Kind == yaml.AliasNode {
		w.fail(n, path, "YAML aliases are not supported in halb.yaml")
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(StatusCodes{}) && n.Kind == yaml.SequenceNode {
		// expect_status: [200, 204, 300-399] is the list "200,204,300-399".
		parts := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				w.fail(item, path, "want statuses or ranges in the list, got %s", describe(item))
				*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
				return
			}
			parts = append(parts, item.Value)
		}
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.Join(parts, ","), Line: n.Line, Column: n.Column}
	}
	switch {
	case reflect.PointerTo(t).Implements(textUnmarshaler):
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a single value")
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
			return
		}
		v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := v.UnmarshalText([]byte(n.Value)); err != nil {
			w.fail(n, path, "%v", err)
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want a mapping of keys (%s)", strings.Join(yamlKeys(t), ", "))
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line}
			return
		}
		// Only known keys, each once, are kept for the decoder: it would
		// drop the whole mapping on a duplicate key and follow "<<" merges.
		fields := yamlFields(t)
		seen := map[string]int{}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			f, ok := fields[k.Value]
			switch {
			case k.Kind == yaml.AliasNode:
				w.failKey(k, path, "YAML aliases are not supported in halb.yaml")
				continue
			case k.Kind != yaml.ScalarNode || !ok:
				w.failKey(k, p, "unknown key %q%s (known keys here: %s)", k.Value, suggest(k.Value, yamlKeys(t)), strings.Join(yamlKeys(t), ", "))
				continue
			case seen[k.Value] > 0:
				w.failKey(k, p, "is already set on line %d", seen[k.Value])
				continue
			}
			seen[k.Value] = k.Line
			kept = append(kept, k, v)
			w.lines[p] = k.Line
			w.walk(v, f.Type, p)
		}
		n.Content = kept
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "want a list")
			*n = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: n.Line}
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	case t.Kind() == reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(new(int)) != nil {
			w.fail(n, path, "want a whole number, got %s", describe(n))
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(new(bool)) != nil {
			w.fail(n, path, "want true or false, got %s", describe(n))
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a single value, got %s", describe(n))
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
		}
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if len(n.Value) > 40 {
		return strconv.Quote(n.Value[:40] + "...")
	}
	return strconv.Quote(n.Value)
}

// finish attaches file name and lines to the collected errors and sorts them
// by line.
func (w *walker) finish(name string) Errors {
	for _, e := range w.errs {
		e.File = name
		if e.Line == 0 {
			e.Line = w.lineOf(e.Path)
		}
	}
	sort.SliceStable(w.errs, func(i, j int) bool { return w.errs[i].Line < w.errs[j].Line })
	if n := len(w.errs); n > MaxErrors {
		w.errs = append(w.errs[:MaxErrors:MaxErrors], &Error{File: name,
			Msg: fmt.Sprintf("and more problems after line %d (only the first %d are shown)", w.errs[MaxErrors-1].Line, MaxErrors)})
	}
	return w.errs
}

// lineOf finds the line of path, or of its nearest parent that has one.
func (w *walker) lineOf(path string) int {
	for path != "" {
		if l, ok := w.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// yamlFields maps the YAML keys of struct type t to its fields. The map
// is made once per type and shared: callers must not change it.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldsByType.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if n := yamlName(f); n != "" && n != "-" {
			m[n] = f
		}
	}
	fieldsByType.Store(t, m)
	return m
}

// fieldsByType caches yamlFields: the walker asks once per mapping of the
// file (10 000 servers, 10 000 times).
var fieldsByType sync.Map

func yamlKeys(t reflect.Type) []string {
	var ks []string
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); n != "" && n != "-" {
			ks = append(ks, n)
		}
	}
	return ks
}

// suggest returns `; did you mean "KEY"?` naming the known keys closest to
// an unknown one, or "" when none is close: at most 2 edits (a transposition
// counts as one, case is ignored) and at most a third of the known key's
// length, so that "wieght" gets "weight" and "lb" gets nothing.
func suggest(unknown string, known []string) string {
	best, names := 3, []string(nil)
	for _, k := range known {
		d := editDistance(strings.ToLower(unknown), k)
		if d > max(1, utf8.RuneCountInString(k)/3) || d > best {
			continue
		}
		if d < best {
			best, names = d, nil
		}
		names = append(names, strconv.Quote(k))
	}
	if len(names) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(names, " or ") + "?"
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and transpositions of two adjacent
// characters, each counting one.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// d[i][j] is the distance of x[:i] and y[:j]; three rows suffice.
	prev2, prev, cur := make([]int, len(y)+1), make([]int, len(y)+1), make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}
