package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Change is one difference between two configs.
type Change struct {
	// Section is the top-level key: node, time, peers, vrrp,
	// vrrp_sync_groups, services, backends, console, observe, bgp.
	Section string `json:"section"`
	// Name is the list element's name; empty for node and time.
	Name string `json:"name,omitempty"`
	// Kind is added, removed or changed.
	Kind string `json:"kind"`
	// Fields lists the changed keys of a changed element.
	Fields []string `json:"fields,omitempty"`
	// Inactive names the keys of this change that this build parses but
	// does not use (see InactiveKeys): applying the change does nothing
	// for them.
	Inactive []string `json:"inactive,omitempty"`
}

func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.Section)
	if c.Name != "" {
		fmt.Fprintf(&b, " %q", c.Name)
	}
	b.WriteString(" " + c.Kind)
	if len(c.Fields) > 0 {
		b.WriteString(": " + strings.Join(c.Fields, ", "))
	}
	if len(c.Inactive) > 0 {
		b.WriteString(" (not active in this build: " + strings.Join(c.Inactive, ", ") + ")")
	}
	return b.String()
}

// Diff lists what changed from old to new, section by section, in the order
// of the file, each change marked with the inactive keys it touches. A nil
// config is an empty file: every key at its default.
func Diff(old, new *Config) []Change {
	if old == nil {
		old = emptyConfig()
	}
	if new == nil {
		new = emptyConfig()
	}
	var out []Change
	if f := changedFields(old.Node, new.Node); len(f) > 0 {
		out = append(out, Change{Section: "node", Kind: "changed", Fields: f})
	}
	if f := changedFields(old.Time, new.Time); len(f) > 0 {
		out = append(out, Change{Section: "time", Kind: "changed", Fields: f})
	}
	out = append(out, diffList("peers", old.Peers, new.Peers, func(p Peer) string { return p.Name })...)
	out = append(out, diffList("vrrp", old.VRRP, new.VRRP, func(v VRRPInstance) string { return v.Name })...)
	out = append(out, diffList("vrrp_sync_groups", old.VRRPSyncGroups, new.VRRPSyncGroups, func(g VRRPSyncGroup) string { return g.Name })...)
	out = append(out, diffList("services", old.Services, new.Services, func(s Service) string { return s.Name })...)
	out = append(out, diffList("backends", old.Backends, new.Backends, func(b Backend) string { return b.Name })...)
	if f := changedFields(old.Console.explicit(), new.Console.explicit()); len(f) > 0 {
		out = append(out, Change{Section: "console", Kind: "changed", Fields: f})
	}
	if f := changedFields(old.Observe, new.Observe); len(f) > 0 {
		out = append(out, Change{Section: "observe", Kind: "changed", Fields: f})
	}
	if f := changedFields(old.BGP, new.BGP); len(f) > 0 {
		out = append(out, Change{Section: "bgp", Kind: "changed", Fields: f})
	}
	for i := range out {
		out[i].Inactive = inactiveIn(out[i])
	}
	return out
}

func diffList[T any](section string, old, new []T, name func(T) string) []Change {
	var out []Change
	before := make(map[string]T, len(old))
	for _, x := range old {
		before[name(x)] = x
	}
	after := make(map[string]bool, len(new))
	for _, x := range new {
		n := name(x)
		after[n] = true
		o, ok := before[n]
		if !ok {
			out = append(out, Change{Section: section, Name: n, Kind: "added"})
		} else if f := changedFields(o, x); len(f) > 0 {
			out = append(out, Change{Section: section, Name: n, Kind: "changed", Fields: f})
		}
	}
	for _, x := range old {
		if !after[name(x)] {
			out = append(out, Change{Section: section, Name: name(x), Kind: "removed"})
		}
	}
	return out
}

// changedFields names the YAML keys of struct a and b that differ.
func changedFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !equal(va.Field(i), vb.Field(i)) {
			out = append(out, yamlName(va.Type().Field(i)))
		}
	}
	return out
}

// equal is reflect.DeepEqual except that a nil and an empty slice are equal:
// "unicast_peers: []" and no unicast_peers key mean the same.
func equal(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equal(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !equal(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equal(a.Elem(), b.Elem())
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// explicit is c with every default spelled out, so that an absent key and
// its default value compare equal.
func (c Console) explicit() Console {
	on := c.PasswordRequired()
	c.RequirePassword = &on
	return c
}
