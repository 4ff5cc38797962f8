package netlab

// Named network namespaces beside iproute2. `ip netns add` turns /run/netns
// into a mount point of its own with shared propagation before it mounts a
// namespace there (bind-mounting the directory on itself, recursively, when
// it is not one yet). Had the lab already mounted namespaces in the plain
// directory, that bind copies them into the new mount and hides the
// originals under it: unmounting the path then removes only the copy, and
// the file stays busy. So the lab does what iproute2 does before it mounts
// anything, and removes a namespace whatever mounts lie on top of it.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/<pid>/mountinfo (proc(5)).
type mountEntry struct {
	ID, Parent int
	// Major and Minor are the device of the mounted file system.
	Major, Minor uint32
	// Root is the mounted path inside its file system; for a namespace
	// file it names the namespace ("net:[4026532181]").
	Root string
	// Point is the mount point, in this process's view.
	Point  string
	FSType string
}

// netnsIno is the inode of the network namespace the entry mounts, or 0.
func (m mountEntry) netnsIno() uint64 {
	s, ok := strings.CutPrefix(m.Root, "net:[")
	if !ok || m.FSType != "nsfs" {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// parseMountInfo reads mountinfo lines.
func parseMountInfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		// id parent major:minor root point options [optional...] - fstype source superoptions
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: %q: too few fields", line, sc.Text())
		}
		var m mountEntry
		var err1, err2 error
		m.ID, err1 = strconv.Atoi(f[0])
		m.Parent, err2 = strconv.Atoi(f[1])
		maj, min, ok := strings.Cut(f[2], ":")
		ma, err3 := strconv.ParseUint(maj, 10, 32)
		mi, err4 := strconv.ParseUint(min, 10, 32)
		if err := errors.Join(err1, err2, err3, err4); err != nil || !ok {
			return nil, fmt.Errorf("mountinfo line %d: %q: %w", line, sc.Text(), errors.Join(err, errors.New("bad id or device")))
		}
		m.Major, m.Minor = uint32(ma), uint32(mi)
		m.Root, m.Point, m.FSType = unescapeMount(f[3]), unescapeMount(f[4]), unescapeMount(f[sep+1])
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readMountInfo reads the mount table of file (/proc/self/mountinfo: the
// process's mount namespace; /proc/thread-self/mountinfo: the calling
// thread's, after it unshared one).
func readMountInfo(file string) ([]mountEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := parseMountInfo(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ms, nil
}

// mountsAt returns the entries mounted at path, hidden ones included.
func mountsAt(ms []mountEntry, path string) []mountEntry {
	var out []mountEntry
	for _, m := range ms {
		if m.Point == path {
			out = append(out, m)
		}
	}
	return out
}

// shareNetnsDir makes NetnsDir a mount point with shared propagation, as
// `ip netns add` does before it mounts a namespace there: bind-mount the
// directory on itself (recursively) when it is not a mount point yet, then
// mark it shared. Done before the lab mounts anything, a later `ip netns
// add` finds the mount point and stacks nothing on the lab's namespaces.
// It takes iproute2's lock on the directory, so the two never both make
// the mount point.
func shareNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	fd, err := unix.Open(NetnsDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netlab: open %s: %w", NetnsDir, err)
	}
	defer unix.Close(fd)
	// As iproute2: without the lock, go on (it only narrows a race).
	if unix.Flock(fd, unix.LOCK_EX) == nil {
		defer unix.Flock(fd, unix.LOCK_UN)
	}
	for made := false; ; made = true {
		err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || made {
			return fmt.Errorf("netlab: make %s a shared mount: %w", NetnsDir, err)
		}
		// EINVAL: not a mount point yet.
		if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netlab: bind-mount %s on itself: %w", NetnsDir, err)
		}
	}
}

// maxMountLayers bounds the unmount loops: more mounts than this stacked at
// one path is not a lab leftover but something else at work.
const maxMountLayers = 64

// deleteNamespace removes the named namespace NetnsDir/name: every mount
// at its path, however many are stacked there or hidden under a mount on
// top of NetnsDir, then the file. Processes inside must be gone already
// (killNamespaceProcesses).
func deleteNamespace(name string) error {
	path := filepath.Join(NetnsDir, name)
	// What the path shows, layer by layer.
	for i := 0; ; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				break // no mount (left) on top
			}
			return fmt.Errorf("delete namespace %s: unmount: %w", name, err)
		}
		if i == maxMountLayers {
			return fmt.Errorf("delete namespace %s: still mounted after %d unmounts", name, i+1)
		}
	}
	err := os.Remove(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	ms, rerr := readMountInfo("/proc/self/mountinfo")
	if rerr != nil {
		return fmt.Errorf("delete namespace %s: %w", name, rerr)
	}
	if !errors.Is(err, syscall.EBUSY) && len(mountsAt(ms, path)) == 0 {
		return nil // removed, or never there
	}
	// Busy, or mounts left at the path: they are hidden under a mount on
	// top of NetnsDir (iproute2's, or anyone's). Unlink the file from a
	// private copy of the mount table without them; the kernel then
	// detaches the mounts on it in every namespace (Linux 3.18+).
	if err := unlinkHidden(path); err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	if ms, err = readMountInfo("/proc/self/mountinfo"); err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	if left := mountsAt(ms, path); len(left) > 0 {
		return fmt.Errorf("delete namespace %s: %d mount(s) left at %s", name, len(left), path)
	}
	// A cover that is another file system shows a file of its own there.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// unlinkHidden unlinks path from a private mount namespace of a discarded
// thread in which every mount at path, and every mount covering them, has
// been detached. Nothing detached there reaches the host's mount table
// (the copy is made private first); the unlink does, as the kernel detaches
// mounts on an unlinked file in all namespaces.
func unlinkHidden(path string) error {
	return onNewThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make the private mount table private: %w", err)
		}
		for i := 0; ; i++ {
			ms, err := readMountInfo("/proc/thread-self/mountinfo")
			if err != nil {
				return err
			}
			if len(mountsAt(ms, path)) == 0 {
				break
			}
			if i == maxMountLayers {
				return fmt.Errorf("%s: still mounted after %d unmounts in a private mount table", path, i)
			}
			if unix.Unmount(path, unix.MNT_DETACH) == nil {
				continue
			}
			// The path shows no mount, yet mounts are listed at it:
			// something covers them. Detach the cover, the deepest
			// mount point above the path ("/" never is).
			cover := ""
			for _, m := range ms {
				if m.Point != "/" && strings.HasPrefix(path, m.Point+"/") && len(m.Point) > len(cover) {
					cover = m.Point
				}
			}
			if cover == "" {
				return fmt.Errorf("%s: mounted, but neither it nor a directory above it can be unmounted", path)
			}
			if err := unix.Unmount(cover, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s covering %s in a private mount table: %w", cover, path, err)
			}
		}
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unlink %s from a private mount table: %w", path, err)
		}
		return nil
	})
}

// netnsIDs are the identities (device, inode) of the network namespaces
// mounted at path: the one the path shows and any hidden under a mount on
// top of NetnsDir.
func netnsIDs(path string) [][2]uint64 {
	var ids [][2]uint64
	var st unix.Stat_t
	if unix.Stat(path, &st) == nil {
		ids = append(ids, [2]uint64{st.Dev, st.Ino})
	}
	ms, _ := readMountInfo("/proc/self/mountinfo")
	for _, m := range mountsAt(ms, path) {
		if ino := m.netnsIno(); ino != 0 {
			ids = append(ids, [2]uint64{unix.Mkdev(m.Major, m.Minor), ino})
		}
	}
	return ids
}
