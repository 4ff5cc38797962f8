package tui

import (
	"bytes"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"halb/appliance/api"
	"halb/appliance/config"
)

// Draft is a config being built on the console, with the running config
// it started from. It is made of the daemon's own config types, checked
// by the daemon's own parser, and sent whole through the API.
//
// A draft of a running config keeps that file as it is written: the
// sections and list elements the console did not change keep their text
// and comments; what it changed is written in place; what it did not set
// stays unset (the daemon's defaults are not written into the file).
type Draft struct {
	// Running is the running config as the daemon reads it (defaults
	// applied), for the review's diff; nil when unconfigured.
	Running *config.Config
	// Cfg is the draft, as a file would write it (no defaults added).
	Cfg config.Config
	// doc is the running file's YAML and base what it holds (without
	// defaults): what did not change is written back from doc.
	doc  *yaml.Node
	base config.Config
	// ConsolePassword is set by the wizard's password step; the review
	// sets it on the daemon before it applies the config.
	ConsolePassword string
	// Peer is what the wizard's Peer step chose; the review carries it
	// out once the config is applied.
	Peer PeerPlan
	// ImportOffer is halbd's import of the keepalived.conf and
	// haproxy.cfg a seed disk brought (nil: none), which the wizard's
	// Import step offers; Imported: the draft's VRRP instances, services
	// and backends are that import's.
	ImportOffer *api.ImportResult
	Imported    bool
}

// NewDraft starts an empty draft (an unconfigured node).
func NewDraft() *Draft { return &Draft{} }

// DraftOf starts a draft from the running config's bytes.
func DraftOf(raw []byte) (*Draft, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	running, err := config.Parse("running", raw)
	if err != nil {
		return nil, err
	}
	var base, cfg config.Config
	if err := doc.Decode(&base); err != nil {
		return nil, err
	}
	if err := doc.Decode(&cfg); err != nil {
		return nil, err
	}
	d := &Draft{Running: running, Cfg: cfg, base: base}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		d.doc = &doc
	}
	return d, nil
}

// YAML is the draft as halb.yaml.
func (d *Draft) YAML() ([]byte, error) {
	if d.doc == nil {
		return marshalConfig(&d.Cfg)
	}
	if err := patchDoc(d.doc.Content[0], reflect.ValueOf(d.base), reflect.ValueOf(d.Cfg)); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d.doc); err != nil {
		return nil, err
	}
	enc.Close()
	// The document now holds the draft.
	d.base = cloneConfig(&d.Cfg)
	return b.Bytes(), nil
}

// patchDoc writes the top-level sections of cfg that differ from base into
// the mapping node m. A list of named elements (vrrp, services, ...) is
// patched element by element: unchanged elements keep their nodes.
func patchDoc(m *yaml.Node, base, cfg reflect.Value) error {
	t := cfg.Type()
	for i := range t.NumField() {
		key := yamlKey(t.Field(i))
		if key == "" || key == "-" {
			continue
		}
		bv, cv := base.Field(i), cfg.Field(i)
		if reflect.DeepEqual(bv.Interface(), cv.Interface()) {
			continue
		}
		ki := mapIndex(m, key)
		if cv.IsZero() {
			if ki >= 0 {
				m.Content = append(m.Content[:ki], m.Content[ki+2:]...)
			}
			continue
		}
		var old *yaml.Node
		if ki >= 0 {
			old = m.Content[ki+1]
		}
		n, err := patchValue(old, bv, cv)
		if err != nil {
			return err
		}
		if ki >= 0 {
			m.Content[ki+1] = n
		} else {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, n)
		}
	}
	return nil
}

// patchValue is the node for cv: for a list of named elements, a sequence
// that reuses old's node of every element equal to base's of that name.
func patchValue(old *yaml.Node, bv, cv reflect.Value) (*yaml.Node, error) {
	if old != nil && old.Kind == yaml.SequenceNode && cv.Kind() == reflect.Slice && bv.Kind() == reflect.Slice &&
		len(old.Content) == bv.Len() && named(cv.Type().Elem()) {
		byName := map[string]int{}
		for i := range bv.Len() {
			byName[bv.Index(i).FieldByName("Name").String()] = i
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: old.Style}
		for i := range cv.Len() {
			e := cv.Index(i)
			if j, ok := byName[e.FieldByName("Name").String()]; ok && reflect.DeepEqual(bv.Index(j).Interface(), e.Interface()) {
				seq.Content = append(seq.Content, old.Content[j])
				continue
			}
			var n yaml.Node
			if err := n.Encode(e.Interface()); err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, &n)
		}
		return seq, nil
	}
	var n yaml.Node
	if err := n.Encode(cv.Interface()); err != nil {
		return nil, err
	}
	return &n, nil
}

// named reports whether a struct type has a string field Name.
func named(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	f, ok := t.FieldByName("Name")
	return ok && f.Type.Kind() == reflect.String
}

func yamlKey(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return tag
}

// mapIndex is the index of key's key node in mapping m, -1 when absent.
func mapIndex(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func marshalConfig(c *config.Config) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}

// cloneConfig copies a config through YAML, so that editing the copy
// never touches the original.
func cloneConfig(c *config.Config) config.Config {
	b, err := marshalConfig(c)
	if err != nil {
		return *c
	}
	var out config.Config
	if err := yaml.Unmarshal(b, &out); err != nil {
		return *c
	}
	return out
}

// Check parses the draft as the daemon will and returns its problems, each
// with the field path it is about.
func (d *Draft) Check() config.Errors {
	raw, err := d.YAML()
	if err != nil {
		return config.Errors{{Msg: err.Error()}}
	}
	_, err = config.Parse("console", raw)
	if err == nil {
		return nil
	}
	if es := config.AsErrors(err); es != nil {
		return es
	}
	return config.Errors{{Msg: err.Error()}}
}

// pathIndex splits a field path such as "backends[0].servers[2].address"
// after prefix ("backends[0].servers"): the index (2) and the rest
// (".address"); ok is false when path does not start with prefix and an
// index.
var indexRE = regexp.MustCompile(`^\[(\d+)\]`)

func pathIndex(path, prefix string) (i int, rest string, ok bool) {
	tail, found := strings.CutPrefix(path, prefix)
	if !found {
		return 0, "", false
	}
	m := indexRE.FindStringSubmatch(tail)
	if m == nil {
		return 0, "", false
	}
	i, _ = strconv.Atoi(m[1])
	return i, tail[len(m[0]):], true
}

// under reports whether path is prefix or lies below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"[")
}
