package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, a config it
// accepts must validate, and a config it refuses must come with a list of
// located errors.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no examples: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"# comment only\n",
		"---\n",
		"node: {name: lb1}\n---\nnode: {name: lb2}\n",
		"- a\n- b\n",
		"node: [\n",
		"node:\n  name: lb1: x\n",
		"node:\n  name: lb1\n\tfoo: 1\n",
		"node: lb1\n",
		"node: {name: lb1}\nnode: {name: lb2}\n",
		"node: {name: &n lb1}\npeers: [{name: *n, address: 1.2.3.4}]\n",
		"node: {&k name: lb1}\npeers: [{*k : lb2, address: 1.2.3.4}]\n",
		"node: {name: lb1}\n<<: {time: {}}\n",
		"node: {name: lb1}\n? [a, b]\n: c\n",
		"node: {name: lb1}\nvrrp: [5, [], {}, ~]\n",
		"node: {name: lb1}\nvrrp: [{name: a, interface: eth0, vrid: !!int x, vips: [10.0.0.1/24], preempt: !!bool y}]\n",
		"node: {name: lb1}\ntime: {max_offset: 5, servers: 1}\n",
		"node: {name: lb1}\nbackends: [{name: b, health: {check: http, expect_status: 99999999999999999999999, interval: -1s}, servers: [{name: s, address: ':0', weight: -1}]}]\n",
		"node: {name: lb1}\nservices: [{name: s, listen: ['[::1%lo]:80'], mode: tcp, routes: [{host: '*.', path_prefix: x}]}]\n",
		"node: {name: lb1}\nvrrp: [{name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 9999999999h, vips: ['::ffff:10.0.0.1/120']}]\n",
		"node: {name: \"\\xff\\xfe\"}\n",
		"node: {name: lb1}\nx: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
		"%YAML 1.1\n---\nnode: {name: lb1}\n",
		"!!map {node: !!map {name: !!str lb1}}\n",
		"node: !foo {name: lb1}\n",
	} {
		f.Add([]byte(s))
	}
	for _, tc := range syntaxCases {
		f.Add([]byte(tc.yaml))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			if es := Validate(cfg); len(es) > 0 {
				t.Fatalf("Parse accepted a config that does not validate:\n%v", es)
			}
			if d := Diff(cfg, cfg); len(d) > 0 {
				t.Fatalf("Diff of a config with itself: %v", d)
			}
			return
		}
		if cfg != nil {
			t.Fatal("Parse returned a config and an error")
		}
		es := AsErrors(err)
		if len(es) == 0 {
			t.Fatalf("Parse error is not a non-empty Errors: %T %v", err, err)
		}
		last := 0
		for _, e := range es {
			if e == nil || e.Msg == "" {
				t.Fatalf("error without a message in %#v", es)
			}
			if e.File != "fuzz.yaml" {
				t.Fatalf("error %q does not name the file", e)
			}
			if e.Line < last {
				t.Fatalf("errors not sorted by line:\n%v", err)
			}
			last = e.Line
		}
	})
}
