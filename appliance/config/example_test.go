package config

import (
	"path/filepath"
	"testing"
)

// TestExamples loads every example config shipped in examples/. They set
// no inactive key (they comment them out), so that nobody copies a setting
// that does nothing.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, _, err := Load(f)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if ks := Inactive(cfg); len(ks) > 0 {
				t.Errorf("sets %q", inactiveNames(ks))
			}
		})
	}
}
