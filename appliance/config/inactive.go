package config

import (
	"reflect"
	"slices"
	"strings"
)

// InactiveKey is a key that this build parses and validates but that no
// component uses yet.
type InactiveKey struct {
	// Key is a top-level key (time) or a key of a top-level mapping
	// (node.management).
	Key string `json:"key"`
	// Until says what will use it.
	Until string `json:"until"`
}

// inactiveKeys is the one list of keys that do nothing in this build. Remove
// an entry when the component that uses the key lands.
var inactiveKeys = []InactiveKey{}

// InactiveKeys lists every key that this build parses and validates but
// does not use.
func InactiveKeys() []InactiveKey { return slices.Clone(inactiveKeys) }

func (k InactiveKey) String() string {
	return k.Key + " is not active in this build: parsed and validated, but nothing uses it until " + k.Until
}

// Inactive returns the inactive keys that cfg sets: those whose value
// differs from what leaving the key out gives.
func Inactive(cfg *Config) []InactiveKey {
	if cfg == nil {
		return nil
	}
	def := reflect.ValueOf(emptyConfig()).Elem()
	got := reflect.ValueOf(cfg).Elem()
	var out []InactiveKey
	for _, k := range inactiveKeys {
		if !equal(valueAt(got, k.Key), valueAt(def, k.Key)) {
			out = append(out, k)
		}
	}
	return out
}

// inactiveIn names the inactive keys that change c touches.
func inactiveIn(c Change) []string {
	var out []string
	for _, k := range inactiveKeys {
		section, field, sub := strings.Cut(k.Key, ".")
		if section == c.Section && (!sub || slices.Contains(c.Fields, field)) {
			out = append(out, k.Key)
		}
	}
	return out
}

// emptyConfig is what a file that sets nothing gives: the defaults.
func emptyConfig() *Config {
	c := new(Config)
	applyDefaults(c, func(string) bool { return false })
	return c
}

// valueAt follows a dotted path of YAML keys through structs.
func valueAt(v reflect.Value, key string) reflect.Value {
	for name := range strings.SplitSeq(key, ".") {
		f, ok := yamlFields(v.Type())[name]
		if !ok {
			panic("config: no key " + key) // inactiveKeys names a key that does not exist
		}
		v = v.FieldByIndex(f.Index)
	}
	return v
}
