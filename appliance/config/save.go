package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileMode is the mode of a saved config file.
const FileMode = 0o640

// renameFile is os.Rename; tests replace it to simulate a crash.
var renameFile = os.Rename

// Save writes data as the config file at path, atomically: the bytes go to a
// temporary file in the same directory, which is synced and renamed over
// path, and the directory is synced. The file being replaced is kept as
// path+".prev". data must parse as a valid config; an invalid one is refused
// and nothing is written. A crash at any point leaves either the old or the
// new file at path, never a truncated one.
func Save(path string, data []byte) error {
	if _, err := Parse(filepath.Base(path), data); err != nil {
		return err
	}
	return SaveParsed(path, data)
}

// SaveParsed is Save for data that the caller has had Parse take: it does
// not parse data again (a config of 10 000 servers takes a third of a
// second to parse).
func SaveParsed(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := writeAtomic(dir, base+".prev", old, FileMode); err != nil {
			return fmt.Errorf("keep previous config: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read current config: %w", err)
	}
	return writeAtomic(dir, base, data, FileMode)
}

// WriteFile writes data to the file at path atomically, as Save does, with
// permissions perm: a temporary file in the same directory, synced and
// renamed over path, then the directory synced. A crash leaves the old
// file or the new one, never a part. For the daemon's other state files.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return writeAtomic(dir, base, data, perm)
}

func writeAtomic(dir, name string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := renameFile(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
