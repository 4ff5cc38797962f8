package tui

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"halb/appliance/config"
)

// Draft is a config being built on the console, with the running config
// it started from. It is made of the daemon's own config types, checked
// by the daemon's own parser, and sent whole through the API.
type Draft struct {
	// Base is the running config (nil when unconfigured); what the
	// console does not edit is kept from it.
	Base *config.Config
	Cfg  config.Config
}

// NewDraft starts a draft from the running config (nil: empty).
func NewDraft(base *config.Config) *Draft {
	d := &Draft{Base: base}
	if base != nil {
		d.Cfg = cloneConfig(base)
	}
	return d
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

// YAML is the draft as halb.yaml.
func (d *Draft) YAML() ([]byte, error) { return marshalConfig(&d.Cfg) }

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
