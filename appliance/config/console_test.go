package config

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestConsolePasswordRequired: console.require_password is true when the
// key (or the whole section) is absent or written without a value, and
// false only when written so.
func TestConsolePasswordRequired(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"node: {name: lb1}\n", true},
		{"node: {name: lb1}\nconsole: {}\n", true},
		{"node: {name: lb1}\nconsole:\n  require_password:\n", true},
		{"node: {name: lb1}\nconsole: {require_password: true}\n", true},
		{"node: {name: lb1}\nconsole: {require_password: false}\n", false},
	} {
		if got := mustParse(t, tc.src).Console.PasswordRequired(); got != tc.want {
			t.Errorf("%q: password required %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestValidateConsole(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"not a bool", `
node: {name: lb1}
console: {require_password: "no"}
`, []string{`halb.yaml:2: console.require_password: want true or false, got "no"`}},
		{"unknown key", `
node: {name: lb1}
console:
  password: secret
`, []string{`halb.yaml:3: console.password: unknown key "password" (known keys here: require_password)`}},
	})
}

// TestConsoleRoundTrip: a config without the console section marshals
// back without it (the console's drafts add no defaults), and an explicit
// false survives.
func TestConsoleRoundTrip(t *testing.T) {
	for src, want := range map[string]string{
		"node: {name: lb1}\n": "node:\n    name: lb1\n    peer_port: 7900\ntime:\n    max_offset: 500ms\n    step_threshold: 128ms\n    min_poll: 1m4s\n    max_poll: 17m4s\n",
		"node: {name: lb1}\nconsole: {require_password: false}\n": "node:\n    name: lb1\n    peer_port: 7900\ntime:\n    max_offset: 500ms\n    step_threshold: 128ms\n    min_poll: 1m4s\n    max_poll: 17m4s\nconsole:\n    require_password: false\n",
	} {
		out, err := yaml.Marshal(mustParse(t, src))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != want {
			t.Errorf("%q marshals to:\n%s\nwant:\n%s", src, out, want)
		}
	}
}
