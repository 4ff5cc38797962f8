package config

import (
	"path/filepath"
	"testing"
)

// TestExamples loads every example config shipped in examples/.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, _, err := Load(f); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}
