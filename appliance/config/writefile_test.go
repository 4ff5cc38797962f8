package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFile: WriteFile replaces a file whole with the mode asked for
// (0600 for a secret, whatever the old file's mode), and a failed rename
// leaves the old file and no temporary one.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkSecret(t, path, "new")

	failRename(t, func(newpath string) bool { return newpath == path })
	if err := WriteFile(path, []byte("newer"), 0o600); err == nil {
		t.Fatal("WriteFile succeeded although the rename failed")
	}
	checkSecret(t, path, "new")
	checkDir(t, dir, "secret")
}

func checkSecret(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s holds %q (%v), want %q", path, got, err, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode(), err)
	}
}
