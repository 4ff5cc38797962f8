package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// fileLine is what a file target writes for an access line.
var fileLineRE = regexp.MustCompile(`^(\S+) lb1 access: (.*)$`)

// readLines reads path and its rotated files PATH.1..PATH.keep and returns
// every line of all of them, failing on a partial (unterminated) line or
// a rotated file beyond maxSize.
func readLines(t *testing.T, path string, keep int, maxSize int64) []string {
	t.Helper()
	var lines []string
	// Oldest first: PATH.(keep+1) (which must not exist), ..., PATH.1, PATH.
	for i := keep + 1; i >= 0; i-- {
		name := path
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > keep {
			t.Fatalf("%s exists: more than keep=%d rotated files", name, keep)
		}
		if len(b) == 0 {
			continue
		}
		if b[len(b)-1] != '\n' {
			t.Fatalf("%s ends in a partial line", name)
		}
		if i > 0 && int64(len(b)) > maxSize {
			t.Fatalf("%s is %d bytes, beyond max_size %d", name, len(b), maxSize)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	return lines
}

func TestFileTarget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "access.log")
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{fileTarget("f", path)}, opts)
	for i := range 3 {
		m.Access(httpRecord(i))
	}
	m.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("file not created with its parents: %v", err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	lines := readLines(t, path, 0, 0)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), lines)
	}
	for i, l := range lines {
		mm := fileLineRE.FindStringSubmatch(l)
		if mm == nil {
			t.Fatalf("line %q is not TIMESTAMP HOST access: LINE", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, mm[1]); err != nil {
			t.Errorf("timestamp %q: %v", mm[1], err)
		}
		if want := string(appendAccess(nil, httpRecord(i))); mm[2] != want {
			t.Errorf("line %d\n got %s\nwant %s", i, mm[2], want)
		}
	}
	if s := status(t, m, "f"); s.Written != 3 || s.Dropped != 0 || s.Queued != 0 || s.Where != path {
		t.Errorf("status %+v", s)
	}
}

// Many writers, a small max_size: every line is in exactly one of PATH,
// PATH.1, ... whole, and no rotated file is beyond max_size.
func TestFileRotationConcurrent(t *testing.T) {
	// About 60 rotations: keep (the config's most) holds every line.
	const writers, each, keep = 8, 150, 100
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := fileTarget("f", path)
	cfg.MaxSize, cfg.Keep, cfg.Queue = 4096, new(keep), writers*each
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{cfg}, opts)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.Access(httpRecord(w*each + i))
			}
		}()
	}
	wg.Wait()
	m.Close()
	lines := readLines(t, path, keep, cfg.MaxSize)
	seen := map[int]int{}
	re := regexp.MustCompile(`"GET /item/(\d+) HTTP/1.1"$`)
	for _, l := range lines {
		if !fileLineRE.MatchString(l) {
			t.Fatalf("malformed line %q", l)
		}
		mm := re.FindStringSubmatch(l)
		if mm == nil {
			t.Fatalf("line without its request %q", l)
		}
		id, _ := strconv.Atoi(mm[1])
		seen[id]++
	}
	for id := range writers * each {
		if seen[id] != 1 {
			t.Fatalf("line %d found %d times", id, seen[id])
		}
	}
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	s := status(t, m, "f")
	if s.Written != writers*each || s.Dropped != 0 {
		t.Fatalf("status %+v", s)
	}
	// About 200 bytes a line, 4096 a file: many rotations.
	if s.Rotations < 50 {
		t.Fatalf("only %d rotations", s.Rotations)
	}
}

// keep bounds the rotated files; keep 0 truncates in place.
func TestFileKeep(t *testing.T) {
	for _, keep := range []int{0, 2} {
		t.Run(fmt.Sprint("keep", keep), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			cfg := fileTarget("f", path)
			cfg.MaxSize, cfg.Keep = 4096, new(keep)
			opts, _ := testOptions(t)
			m := newManager(t, []config.LogTarget{cfg}, opts)
			const n = 200 // about 10 files' worth
			for i := range n {
				m.Access(httpRecord(i))
			}
			m.Close()
			lines := readLines(t, path, keep, cfg.MaxSize) // fails on PATH.(keep+1)
			if len(lines) == 0 || len(lines) >= n {
				t.Fatalf("%d lines kept of %d", len(lines), n)
			}
			// What is kept is the newest lines, in order, ending with the last.
			re := regexp.MustCompile(`/item/(\d+) HTTP`)
			for i, l := range lines {
				id, _ := strconv.Atoi(re.FindStringSubmatch(l)[1])
				if want := n - len(lines) + i; id != want {
					t.Fatalf("line %d of %d is item %d, want %d", i, len(lines), id, want)
				}
			}
			if st, _ := os.Stat(path); st.Size() > cfg.MaxSize {
				t.Fatalf("PATH is %d bytes", st.Size())
			}
		})
	}
}

// A file removed or renamed by someone else is noticed and PATH begun
// anew; no line goes to the lost file after the check.
func TestFileRemovedOrRenamed(t *testing.T) {
	for _, how := range []string{"remove", "rename"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			opts, _ := testOptions(t)
			m := newManager(t, []config.LogTarget{fileTarget("f", path)}, opts)
			m.Access(httpRecord(0))
			testutil.WaitFor(t, "the first line written", func() bool { return status(t, m, "f").Written == 1 })
			if how == "remove" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
			// Lines written before the periodic check go to the old file;
			// then PATH is created again and takes the next ones.
			id := 1
			testutil.WaitFor(t, "PATH created again", func() bool {
				m.Access(httpRecord(id))
				id++
				_, err := os.Stat(path)
				return err == nil
			})
			m.Access(httpRecord(1000))
			m.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "/item/1000 ") {
				t.Fatalf("the last line is not in the new PATH:\n%s", b)
			}
			if how == "rename" {
				old, _ := os.ReadFile(path + ".old")
				if !strings.Contains(string(old), "/item/0 ") {
					t.Fatalf("the renamed file lost its line:\n%s", old)
				}
			}
			if s := status(t, m, "f"); s.Dropped != 0 || s.Written != uint64(id+1) {
				t.Fatalf("status %+v, want %d written and none dropped", s, id+1)
			}
		})
	}
}

// A path that cannot be a file is an error of New naming the target.
func TestFileOpenError(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(t)
	_, err := New([]config.LogTarget{fileTarget("f", dir)}, opts)
	if err == nil || !strings.Contains(err.Error(), `"f"`) {
		t.Fatalf("err = %v, want one naming target \"f\"", err)
	}
	_, err = New([]config.LogTarget{fileTarget("a", dir+"/x"), fileTarget("b", dir+"/./x")}, opts)
	if err == nil || !strings.Contains(err.Error(), "also target") {
		t.Fatalf("two targets on one file: err = %v", err)
	}
}

// A full disk (a tmpfs of 64 KiB): lines that do not fit are dropped and
// counted, no partial line stays in the file, and once there is room again
// lines are written again.
func TestFileDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "access.log")
	cfg := fileTarget("f", path)
	cfg.Queue = 4096
	opts, logs := testOptions(t)
	m := newManager(t, []config.LogTarget{cfg}, opts)
	const n = 2000 // about 420 KB: far beyond 64 KiB
	for i := range n {
		m.Access(httpRecord(i))
	}
	testutil.WaitFor(t, "every line written or dropped", func() bool {
		s := status(t, m, "f")
		return s.Written+s.Dropped == n
	})
	s := status(t, m, "f")
	if s.Written == 0 || s.DroppedFailed == 0 || !s.Failing || !strings.Contains(s.LastError, "no space") {
		t.Fatalf("status %+v", s)
	}
	if !strings.Contains(logs.String(), "log target failing") {
		t.Errorf("the daemon log does not report the failure:\n%s", logs)
	}
	if lines := readLines(t, path, 0, 0); uint64(len(lines)) != s.Written { // fails on a partial line
		t.Fatalf("%d whole lines in the file, %d counted written", len(lines), s.Written)
	}
	// Room again: the next line is written.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	m.Access(httpRecord(n))
	testutil.WaitFor(t, "a line written after room was made", func() bool { return !status(t, m, "f").Failing })
	m.Close()
	lines := readLines(t, path, 0, 0)
	if len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("/item/%d ", n)) {
		t.Fatalf("after room was made: %q", lines)
	}
}
