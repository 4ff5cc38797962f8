package config

import "testing"

func TestLineOf(t *testing.T) {
	data := []byte(`node:
  name: lb1
services:
  - name: web
    listen:
      - "10.0.0.1:80"
      - "10.0.0.1:443"
  - {name: db, listen: ["10.0.0.1:5432"], mode: tcp, default_backend: pg}
`)
	for path, want := range map[string]int{
		"node.name":             2,
		"services":              3,
		"services[0]":           4,
		"services[0].listen[1]": 7,
		"services[1].listen[0]": 8,
		"services[1].mode":      8,
		"services[2]":           0,
		"services[0].nope":      0,
		"node[0]":               0,
	} {
		if got := LineOf(data, path); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", path, got, want)
		}
	}
	if got := LineOf([]byte("a: ["), "a"); got != 0 {
		t.Errorf("LineOf of broken YAML = %d, want 0", got)
	}
}
