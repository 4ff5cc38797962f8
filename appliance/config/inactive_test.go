package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func inactiveNames(ks []InactiveKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Key)
	}
	return out
}

func TestInactive(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"none", "node: {name: lb1}\n", nil},
		{"defaults written out are not set", "node: {name: lb1, management: {}}\ntime: {max_offset: 500ms}\npeers: []\n", nil},
		{"management and time are active", "node: {name: lb1, management: {interface: eth0, dhcp: true}}\ntime: {servers: [172.16.0.254]}\n", nil},
		{"peers are active", "node: {name: lb1}\npeers: [{name: lb2, address: 172.16.0.2}]\n", nil},
		{"all", `
node:
  name: lb1
  management: {interface: eth0, address: 172.16.0.1/16}
time: {servers: [ntp.example.com]}
peers: [{name: lb2, address: 172.16.0.2}]
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inactiveNames(Inactive(mustParse(t, tc.yaml))); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Inactive = %q, want %q", got, tc.want)
			}
		})
	}
	if got := Inactive(nil); got != nil {
		t.Errorf("Inactive(nil) = %v", got)
	}
}

// TestInactiveKeysExist: every entry names a key of the config, and its
// message says what it is.
func TestInactiveKeysExist(t *testing.T) {
	ks := InactiveKeys()
	if len(ks) == 0 {
		t.Skip("every key is active")
	}
	def := reflect.ValueOf(emptyConfig()).Elem()
	for _, k := range ks {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %v", k.Key, r)
				}
			}()
			valueAt(def, k.Key)
		}()
		if s := k.String(); !strings.HasPrefix(s, k.Key+" is not active in this build") || k.Until == "" {
			t.Errorf("%s: message %q", k.Key, s)
		}
	}
	ks[0].Key = "changed"
	if InactiveKeys()[0].Key == "changed" {
		t.Error("InactiveKeys returned the list itself, not a copy")
	}
}

// TestExamplesCommentedKeysParse uncomments the commented-out settings of
// the examples (a comment line whose text starts with a key or a list item)
// and checks that the result is valid and sets the inactive keys: the
// commented settings are ready to use once the keys are active.
func TestExamplesCommentedKeysParse(t *testing.T) {
	setting := regexp.MustCompile(`(?m)^(\s*)# ?(\s*(?:[a-z_]+:|- ).*)$`)
	for name, want := range map[string][]string{
		"lb1.yaml":         nil,
		"lb2.yaml":         nil,
		"dual-master.yaml": nil,
	} {
		data, err := os.ReadFile(filepath.Join("../../examples", name))
		if err != nil {
			t.Fatal(err)
		}
		uncommented := setting.ReplaceAll(data, []byte("$1$2"))
		cfg, err := Parse(name, uncommented)
		if err != nil {
			t.Errorf("%s uncommented:\n%v\n%s", name, err, uncommented)
			continue
		}
		if got := inactiveNames(Inactive(cfg)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s uncommented sets inactive keys %q, want %q", name, got, want)
		}
	}
}

// TestInactiveKeysDocumented: docs/config.md lists exactly the inactive
// keys, so that removing one from inactiveKeys removes it from the docs too.
func TestInactiveKeysDocumented(t *testing.T) {
	documented := docTableKeys(t, "Keys not active in this build", "(?m)^\\| `([a-z_.]+)` \\|")
	if want := inactiveNames(InactiveKeys()); !reflect.DeepEqual(documented, want) {
		t.Errorf("docs/config.md lists %q as not active, inactiveKeys has %q", documented, want)
	}
}

// docTableKeys lists the first submatch of pattern on every line of the
// section of docs/config.md headed "## heading".
func docTableKeys(t *testing.T, heading, pattern string) []string {
	t.Helper()
	data, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("docs/config.md has no section %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var keys []string
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(section, -1) {
		keys = append(keys, m[1])
	}
	return keys
}
