package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

var (
	configV1 = doc(`
node: {name: lb1}
services:
  - {name: echo, listen: [":7000"], mode: tcp, default_backend: echo}
backends:
  - name: echo
    servers:
      - {name: e1, address: "127.0.0.1:7001"}
`)
	configV2 = doc(`
node: {name: lb1}
services:
  - {name: echo, listen: [":7000"], mode: tcp, default_backend: echo}
backends:
  - name: echo
    servers:
      - {name: e1, address: "127.0.0.1:7001"}
      - {name: e2, address: "127.0.0.1:7002"}
`)
)

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func checkDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds\n%s\nwant\n%s", filepath.Base(path), got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != FileMode {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), fs.FileMode(FileMode))
	}
}

// checkLoads checks that path loads and holds data.
func checkLoads(t *testing.T, path string, want []byte) *Config {
	t.Helper()
	cfg, data, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", filepath.Base(path), err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("Load(%s) read\n%s\nwant\n%s", filepath.Base(path), data, want)
	}
	return cfg
}

// failRename makes renameFile fail for the calls that match, until the test
// ends.
func failRename(t *testing.T, match func(newpath string) bool) *int {
	t.Helper()
	orig := renameFile
	t.Cleanup(func() { renameFile = orig })
	failed := new(int)
	renameFile = func(oldpath, newpath string) error {
		if match(newpath) {
			*failed++
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EIO}
		}
		return orig(oldpath, newpath)
	}
	return failed
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")

	// The first save has nothing to keep.
	if err := Save(path, configV1); err != nil {
		t.Fatalf("Save v1: %v", err)
	}
	checkFile(t, path, configV1)
	checkDir(t, dir, "halb.yaml")
	checkLoads(t, path, configV1)

	// The second keeps the first as .prev.
	if err := Save(path, configV2); err != nil {
		t.Fatalf("Save v2: %v", err)
	}
	checkFile(t, path, configV2)
	checkFile(t, path+".prev", configV1)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")
	if cfg := checkLoads(t, path, configV2); len(cfg.Backends[0].Servers) != 2 {
		t.Errorf("Load after Save: %+v", cfg.Backends)
	}
	checkLoads(t, path+".prev", configV1)

	// The third replaces .prev.
	if err := Save(path, configV1); err != nil {
		t.Fatalf("Save v1 again: %v", err)
	}
	checkFile(t, path, configV1)
	checkFile(t, path+".prev", configV2)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")
}

// TestSaveMode checks that an existing file of another mode ends up with
// FileMode.
func TestSaveMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := os.WriteFile(path, configV1, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, configV2); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, configV2)
	checkFile(t, path+".prev", configV1)
}

func TestSaveRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := Save("halb.yaml", configV1); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if err := Save("halb.yaml", configV2); err != nil {
		t.Fatalf("Save: %v", err)
	}
	checkFile(t, filepath.Join(dir, "halb.yaml"), configV2)
	checkFile(t, filepath.Join(dir, "halb.yaml.prev"), configV1)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")
}

func TestSaveInvalidRefused(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"validation", "node: {name: lb1}\nvrrp: [{name: a, interface: eth0, vrid: 300, vips: [10.0.0.1/24]}]\n",
			"halb.yaml:2: vrrp[0].vrid: 300 is out of range 1..255"},
		{"unknown key", "node: {name: lb1, nmae: x}\n",
			`halb.yaml:1: node.nmae: unknown key "nmae"; did you mean "name"? (known keys here: name, management, manage_system, peer_port)`},
		{"syntax", "node: {name: lb1\n", ""},
		{"empty", "", "halb.yaml: config is empty: at least node.name is required"},
		{"truncated", string(configV2[:len(configV2)/2]), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "halb.yaml")
			if err := Save(path, configV1); err != nil {
				t.Fatal(err)
			}
			err := Save(path, []byte(tc.data))
			if len(AsErrors(err)) == 0 {
				t.Fatalf("Save of an invalid config: %v, want Errors", err)
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Errorf("Save error = %q, want %q", err, tc.want)
			}
			checkFile(t, path, configV1)
			checkDir(t, dir, "halb.yaml")
			checkLoads(t, path, configV1)
		})
	}

	// Nothing is written in an empty directory either.
	dir := t.TempDir()
	if err := Save(filepath.Join(dir, "halb.yaml"), []byte("node: {}\n")); err == nil {
		t.Errorf("Save of an invalid config succeeded")
	}
	checkDir(t, dir)

	// An existing .prev is kept as it was.
	dir = t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	for _, data := range [][]byte{configV1, configV2} {
		if err := Save(path, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := Save(path, []byte("node: {name: lb_1}\n")); err == nil {
		t.Errorf("Save of an invalid config succeeded")
	}
	checkFile(t, path, configV2)
	checkFile(t, path+".prev", configV1)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")
}

func TestSaveTooLarge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := Save(path, configV1); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, validPadded(t, MaxSize+1)); len(AsErrors(err)) != 1 {
		t.Errorf("Save of MaxSize+1 bytes: %v", err)
	}
	checkFile(t, path, configV1)
	checkDir(t, dir, "halb.yaml")
}

// TestStrayTempFile simulates a crash in the middle of a Save: a temporary
// file with truncated content is left next to halb.yaml. Load ignores it and
// the next Save works.
func TestStrayTempFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := Save(path, configV1); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, ".halb.yaml.tmp-123")
	strayPrev := filepath.Join(dir, ".halb.yaml.prev.tmp-456")
	for _, p := range []string{stray, strayPrev} {
		if err := os.WriteFile(p, configV2[:len(configV2)/3], 0o600); err != nil {
			t.Fatal(err)
		}
	}

	checkLoads(t, path, configV1)
	if err := Save(path, configV2); err != nil {
		t.Fatalf("Save with a stray temp file: %v", err)
	}
	checkFile(t, path, configV2)
	checkFile(t, path+".prev", configV1)
	checkLoads(t, path, configV2)
	// Save does not touch files it did not create.
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev", ".halb.yaml.tmp-123", ".halb.yaml.prev.tmp-456")

	// A crash before the first rename leaves no halb.yaml at all: Load
	// reports it missing rather than reading the temp file.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".halb.yaml.tmp-1"), []byte("node:\n  na"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(filepath.Join(dir, "halb.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load with only a temp file: %v, want fs.ErrNotExist", err)
	}
}

// TestSaveRenameFails simulates a crash at the rename that replaces
// halb.yaml: the original stays byte-identical and loadable, and no temp file
// is left behind.
func TestSaveRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := Save(path, configV1); err != nil {
		t.Fatal(err)
	}

	failed := failRename(t, func(newpath string) bool { return newpath == path })
	err := Save(path, configV2)
	if err == nil {
		t.Fatal("Save succeeded although the rename failed")
	}
	if *failed != 1 {
		t.Errorf("rename of halb.yaml attempted %d times, want 1", *failed)
	}
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "rename") {
		t.Errorf("Save error = %v, want the rename's EIO", err)
	}
	if AsErrors(err) != nil {
		t.Errorf("a rename failure is not a config error: %v", err)
	}
	checkFile(t, path, configV1)
	checkLoads(t, path, configV1)
	// .prev was written before the failed rename; it holds the old config.
	checkFile(t, path+".prev", configV1)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")

	// Once renames work again, Save works.
	renameFile = os.Rename
	if err := Save(path, configV2); err != nil {
		t.Fatalf("Save after the failure: %v", err)
	}
	checkFile(t, path, configV2)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")
}

// TestSaveKeepPrevFails makes every rename fail, so that keeping .prev fails
// first: Save stops there and changes nothing.
func TestSaveKeepPrevFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := Save(path, configV1); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, configV2); err != nil {
		t.Fatal(err)
	}

	failed := failRename(t, func(string) bool { return true })
	err := Save(path, configV1)
	if err == nil || !errors.Is(err, syscall.EIO) || !strings.HasPrefix(err.Error(), "keep previous config: ") {
		t.Errorf("Save error = %v, want keep previous config: ... EIO", err)
	}
	if *failed != 1 {
		t.Errorf("%d renames attempted, want 1", *failed)
	}
	checkFile(t, path, configV2)
	checkFile(t, path+".prev", configV1)
	checkLoads(t, path, configV2)
	checkDir(t, dir, "halb.yaml", "halb.yaml.prev")
}

// TestSaveFirstRenameFails: with no halb.yaml yet, a failed rename leaves
// none and no temp file.
func TestSaveFirstRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	failRename(t, func(string) bool { return true })
	if err := Save(path, configV1); err == nil {
		t.Fatal("Save succeeded although the rename failed")
	}
	checkDir(t, dir)
	if _, _, err := Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after the failed first Save: %v, want fs.ErrNotExist", err)
	}
}

func TestSaveMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "halb.yaml")
	if err := Save(path, configV1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save into a missing directory: %v, want fs.ErrNotExist", err)
	}
}

// TestSaveReadOnlyDirectory: a directory Save cannot write to makes it fail
// before anything changes.
func TestSaveReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "halb.yaml")
	if err := Save(path, configV1); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if err := Save(path, configV2); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Save into a read-only directory: %v, want fs.ErrPermission", err)
	}
	checkFile(t, path, configV1)
	checkDir(t, dir, "halb.yaml")
}
