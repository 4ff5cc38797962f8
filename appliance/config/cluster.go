package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// A config has cluster parts, which paired nodes keep equal (the peer
// component replicates them), and node parts, which belong to one machine
// and are never copied to a peer: the fields tagged `halb:"node"` in
// types.go. That tag is the one list; NodeKeys, ClusterPart, Merge, the
// docs and the tests all read it.

// nodeTag marks a node part.
func nodeTag(f reflect.StructField) bool { return f.Tag.Get("halb") == "node" }

// NodeKeys lists the node parts as key paths (node, peers,
// vrrp[].priority, ...), in the order of the types.
func NodeKeys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			if nodeTag(f) {
				keys = append(keys, key)
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
				key += "[]"
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Duration]() {
				walk(ft, key)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

// ClusterPart returns a copy of c without its node parts: what is the same
// on every node of a cluster.
func ClusterPart(c *Config) *Config {
	out := clone(c)
	clearNode(reflect.ValueOf(out).Elem())
	return out
}

// ClusterDigest identifies the cluster parts of a parsed config (defaults
// filled, so that a default written out and one left out are the same): the
// hex SHA-256 of their YAML.
func ClusterDigest(c *Config) string {
	b, err := clusterYAML(ClusterPart(c))
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// clusterYAML is Marshal(cp), byte for byte, with the YAML of each service
// and backend taken from the last call where the element was the same:
// YAML encoding is most of a reload of 10 000 servers (0.3 s), and a
// reload changes few elements. Marshal renders each element of a
// top-level list on its own, at the same indent, so the document is the
// rest of the config with the lists' YAML put back where their keys go
// (before console and observe). TestClusterYAML holds it to Marshal.
func clusterYAML(cp *Config) ([]byte, error) {
	svcs, bes := cp.Services, cp.Backends
	rest := *cp
	rest.Services, rest.Backends = nil, nil
	b, err := Marshal(&rest)
	if err != nil {
		return nil, err
	}
	yamlCache.mu.Lock()
	defer yamlCache.mu.Unlock()
	var lists []byte
	if len(svcs) > 0 {
		lists = append(lists, "services:\n"...)
		if lists, err = yamlCache.services.appendYAML(lists, svcs); err != nil {
			return nil, err
		}
	}
	if len(bes) > 0 {
		lists = append(lists, "backends:\n"...)
		if lists, err = yamlCache.backends.appendYAML(lists, bes); err != nil {
			return nil, err
		}
	}
	for name := range yamlCache.chunks { // of elements gone
		kind, n, _ := strings.Cut(name, "/")
		if kind == "services" && !slices.ContainsFunc(svcs, func(s Service) bool { return s.Name == n }) ||
			kind == "backends" && !slices.ContainsFunc(bes, func(b Backend) bool { return b.Name == n }) {
			delete(yamlCache.chunks, name)
		}
	}
	at := len(b)
	for _, key := range []string{"console:", "observe:"} {
		if i := bytes.Index(b, []byte("\n"+key)); i >= 0 && i+1 < at {
			at = i + 1
		} else if bytes.HasPrefix(b, []byte(key)) {
			at = 0
		}
	}
	return slices.Concat(b[:at], lists, b[at:]), nil
}

// yamlCache holds the YAML of the services and backends of the last
// clusterYAML.
var yamlCache struct {
	mu       sync.Mutex
	services elemYAML[Service]
	backends elemYAML[Backend]
	// chunks: the YAML of each chunk of a long list (spliceList) by
	// "services/NAME" or "backends/NAME", kept from the last call.
	chunks map[string][]chunkYAML
}

// chunkYAML is the YAML of one chunk of a long list, and the chunk.
type chunkYAML struct {
	items any
	text  []byte
}

// elemYAML remembers the YAML of the elements of a top-level list, as
// Marshal renders them under the list's key.
type elemYAML[T any] struct {
	elems []T
	text  [][]byte
}

// appendYAML appends the YAML of the list xs to b (without its key) and
// remembers it. An element equal to the one at its place last time (a
// reload changes few) reuses its YAML.
func (e *elemYAML[T]) appendYAML(b []byte, xs []T) ([]byte, error) {
	text := make([][]byte, len(xs))
	for i, x := range xs {
		if i < len(e.elems) && reflect.DeepEqual(e.elems[i], x) {
			text[i] = e.text[i]
		} else {
			t, err := elemText(any(x))
			if err != nil {
				return nil, err
			}
			text[i] = t
		}
		b = append(b, text[i]...)
	}
	e.elems, e.text = xs, text
	return b, nil
}

// itemsYAML is the YAML of xs as Marshal renders a top-level list's items
// (at indent 2, without the list's key).
func itemsYAML[T any](xs []T) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		L []T `yaml:"l"`
	}{xs}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return bytes.TrimPrefix(b.Bytes(), []byte("l:\n")), nil
}

// longList is the length from which a service's routes or a backend's
// servers are rendered in chunks of that many: YAML's emitter keeps every
// event of a document until its end, so one service of 10 000 routes
// took 120 MB of garbage per digest (halbd's RSS at start was 110 MB
// with such a config, a tenth of it live).
const longList = 256

// elemText is the YAML of one service or backend as an item of its
// top-level list: a long list in it (routes, servers) is rendered in
// chunks (spliceList).
func elemText(x any) ([]byte, error) {
	switch v := x.(type) {
	case Service:
		return withList(v, v.Routes, "routes", "services/"+v.Name, func(s *Service, r []Route) { s.Routes = r })
	case Backend:
		return withList(v, v.Servers, "servers", "backends/"+v.Name, func(b *Backend, s []Server) { b.Servers = s })
	}
	return nil, fmt.Errorf("config: no YAML for %T", x)
}

// withList is the YAML of x whose list under key is list (set puts a
// list in x's copy).
func withList[T, E any](x T, list []E, key, name string, set func(*T, []E)) ([]byte, error) {
	if len(list) <= longList {
		return itemsYAML([]T{x})
	}
	return spliceList(x, key, list, name, set)
}

// spliceList renders x, whose list under key is all, as x with only the
// list's first element, then puts all in that element's place, encoded
// longList at a time and indented as Marshal nests them (set puts a list
// in a copy of x). When a line of all's would come out
// longer than the emitter's width (80: a nested scalar may then be folded
// where a less indented one was not) it renders the whole item at once.
// A chunk equal to the one at its place in the last call under name
// (yamlCache.chunks, whose lock the caller holds) reuses its YAML: a
// reload that changes one route of 10 000 renders 256.
func spliceList[T, E any](x T, key string, all []E, name string, set func(*T, []E)) ([]byte, error) {
	whole := func() ([]byte, error) { return itemsYAML([]T{x}) }
	one := x
	set(&one, all[:1])
	text, err := itemsYAML([]T{one})
	if err != nil {
		return nil, err
	}
	// The item's keys are at indent 4, its list's items at 6.
	marker := []byte("\n    " + key + ":\n")
	i := bytes.Index(text, marker)
	if i < 0 {
		return whole()
	}
	start := i + len(marker)
	end := start
	for end < len(text) && bytes.HasPrefix(text[end:], []byte("      ")) {
		n := bytes.IndexByte(text[end:], '\n')
		if n < 0 {
			return whole()
		}
		end += n + 1
	}
	out := append([]byte(nil), text[:start]...)
	prev := yamlCache.chunks[name]
	var chunks []chunkYAML
	for k := 0; k < len(all); k += longList {
		items := all[k:min(k+longList, len(all))]
		var nested []byte
		if i := k / longList; i < len(prev) && reflect.DeepEqual(prev[i].items, items) {
			nested = prev[i].text
		} else {
			chunk, err := itemsYAML(items)
			if err != nil {
				return nil, err
			}
			for line := range bytes.Lines(chunk) {
				if len(line)+4 > 80+1 { // with its newline
					return whole()
				}
				nested = append(nested, "    "...)
				nested = append(nested, line...)
			}
		}
		chunks = append(chunks, chunkYAML{items: items, text: nested})
		out = append(out, nested...)
	}
	if yamlCache.chunks == nil {
		yamlCache.chunks = map[string][]chunkYAML{}
	}
	yamlCache.chunks[name] = chunks
	return append(out, text[end:]...), nil
}

// Merge is the config this node runs when a peer's config arrives: the
// cluster parts of remote and the node parts of local. Elements of a list
// (vrrp, services, ...) are matched by name. A VRRP instance that local
// does not have yet takes remote's priority less 50 (at least 1), so the
// node where it was made stays its MASTER, and when remote unicasts its
// adverts, unicasts them to peerAddress (remote's management address).
// Both configs are as written (Decode, not Parse: defaults not filled).
func Merge(local, remote *Config, peerAddress string) *Config {
	out := clone(remote)
	mergeNode(reflect.ValueOf(out).Elem(), reflect.ValueOf(local).Elem(), true)
	for i := range out.VRRP {
		v := &out.VRRP[i]
		if hasVRRP(local, v.Name) {
			continue
		}
		r := remote.VRRP[i]
		p := r.Priority
		if p == 0 {
			p = DefaultPriority
			if r.AddressOwner {
				p = 255
			}
		}
		v.Priority = max(1, min(p, 254)-50)
		if len(r.UnicastPeers) > 0 && peerAddress != "" {
			v.UnicastPeers = []string{peerAddress}
		}
	}
	return out
}

func hasVRRP(c *Config, name string) bool {
	for _, v := range c.VRRP {
		if v.Name == name {
			return true
		}
	}
	return false
}

// Decode reads a config as written: strict about unknown keys as Parse is
// (call Parse first for the errors), but without defaults or validation.
func Decode(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &c, nil
}

// Marshal renders c as halb.yaml (two-space indent).
func Marshal(c *Config) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b.Bytes(), nil
}

// clone copies c deeply: no slice, map or pointer of the copy is shared
// with c. (A YAML round trip did this before; on a config of 10 000
// servers it took half a second of every reload.)
func clone(c *Config) *Config {
	out := new(Config)
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(c).Elem())
	return out
}

// deepCopy sets dst, settable, to a deep copy of src, of the same type.
// Config types hold only exported fields of plain kinds, structs, slices,
// maps and pointers.
func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			deepCopy(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		if plain(src.Type().Elem()) {
			reflect.Copy(s, src)
		} else {
			for i := range src.Len() {
				deepCopy(s.Index(i), src.Index(i))
			}
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(src.Type().Elem()).Elem()
			deepCopy(v, it.Value())
			m.SetMapIndex(it.Key(), v)
		}
		dst.Set(m)
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		deepCopy(p.Elem(), src.Elem())
		dst.Set(p)
	default:
		dst.Set(src)
	}
}

// plain reports whether values of t hold no reference: copying one
// copies it deeply.
func plain(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if !plain(t.Field(i).Type) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Array, reflect.Chan, reflect.Func:
		return false
	}
	return true
}

// clearNode zeroes every node part under v.
func clearNode(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if nodeTag(t.Field(i)) {
				v.Field(i).SetZero()
				continue
			}
			clearNode(v.Field(i))
		}
	case reflect.Slice:
		for i := range v.Len() {
			clearNode(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			clearNode(v.Elem())
		}
	}
}

// mergeNode sets the node parts under dst to local's (found: local is the
// element of the same name) or to zero (not found: the key is absent and
// takes its default).
func mergeNode(dst, local reflect.Value, found bool) {
	switch dst.Kind() {
	case reflect.Struct:
		t := dst.Type()
		for i := range t.NumField() {
			if nodeTag(t.Field(i)) {
				if found {
					dst.Field(i).Set(local.Field(i))
				} else {
					dst.Field(i).SetZero()
				}
				continue
			}
			var lf reflect.Value
			if found {
				lf = local.Field(i)
			}
			mergeNode(dst.Field(i), lf, found)
		}
	case reflect.Slice:
		for i := range dst.Len() {
			e := dst.Index(i)
			l, ok := namedElement(local, found, e)
			mergeNode(e, l, ok)
		}
	case reflect.Pointer:
		if !dst.IsNil() {
			var l reflect.Value
			ok := found && !local.IsNil()
			if ok {
				l = local.Elem()
			}
			mergeNode(dst.Elem(), l, ok)
		}
	}
}

// namedElement finds in the list local the element with e's name (a
// struct's Name field); elements without a name match by index.
func namedElement(local reflect.Value, found bool, e reflect.Value) (reflect.Value, bool) {
	if !found || e.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	name := e.FieldByName("Name")
	if !name.IsValid() || name.Kind() != reflect.String {
		return reflect.Value{}, false
	}
	for i := range local.Len() {
		if l := local.Index(i); l.FieldByName("Name").String() == name.String() {
			return l, true
		}
	}
	return reflect.Value{}, false
}

// NodeKeysText is NodeKeys as one line, for messages and docs.
func NodeKeysText() string { return strings.Join(NodeKeys(), ", ") }
