package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestParseMountInfo(t *testing.T) {
	const in = `22 27 0:21 / /proc rw,relatime - proc proc rw
152 151 0:4 net:[4026532181] /run/netns/hl1x0000-a rw - nsfs nsfs rw
153 151 0:48 /netns /run/netns rw,relatime shared:27 - tmpfs tmpfs rw
154 153 0:4 net:[4026532181] /run/netns/hl1x0000-a rw shared:28 master:3 - nsfs nsfs rw
160 27 8:1 /a\040b /mnt/with\040space\134x rw - ext4 /dev/sda1 rw
`
	ms, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("%d entries, want 5: %+v", len(ms), ms)
	}
	want := mountEntry{ID: 154, Parent: 153, Major: 0, Minor: 4, Root: "net:[4026532181]", Point: "/run/netns/hl1x0000-a", FSType: "nsfs"}
	if ms[3] != want {
		t.Errorf("entry 4 = %+v, want %+v", ms[3], want)
	}
	if got := ms[4].Point; got != `/mnt/with space\x` {
		t.Errorf("escaped mount point = %q", got)
	}
	if got := ms[4].Root; got != "/a b" {
		t.Errorf("escaped root = %q", got)
	}
	at := mountsAt(ms, "/run/netns/hl1x0000-a")
	if len(at) != 2 || at[0].ID != 152 || at[1].ID != 154 {
		t.Errorf("mountsAt = %+v, want entries 152 and 154", at)
	}
	if ino := at[0].netnsIno(); ino != 4026532181 {
		t.Errorf("netnsIno = %d", ino)
	}
	if ino := ms[2].netnsIno(); ino != 0 {
		t.Errorf("netnsIno of a tmpfs = %d, want 0", ino)
	}
	for _, bad := range []string{"1 2 0:3 / /x rw\n", "x 2 0:3 / /x rw - t s rw\n", "1 2 03 / /x rw - t s rw\n", "1 2 0:3 / /x rw -\n"} {
		if _, err := parseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// envIsolated names the test a child process runs in a mount namespace of
// its own (see isolated); envHalbd hands it the halbd the parent built.
const (
	envIsolated = "NETLAB_ISOLATED_TEST"
	envHalbd    = "NETLAB_HALBD"
)

// isolated runs the calling (top-level) test again in a child process with
// a mount namespace of its own, where /run is an empty tmpfs: /run/netns
// starts as a plain directory, as on a host where neither iproute2 nor a
// lab has run yet, and nothing the test does to /run/netns reaches the
// host. In the child it returns true and the test goes on; in the parent it
// waits for the child, fails t with the child's output if it failed, kills
// whatever the child left running in its mount namespace, and returns
// false.
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envIsolated) == t.Name() {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Fatalf("make the mount table private: %v", err)
		}
		// The copies of the host's mounts under /run (its /run/netns
		// and the namespaces there) go first, deepest first: hidden
		// under the new /run they would still be listed in mountinfo.
		ms, err := readMountInfo("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ms, func(a, b mountEntry) int { return len(b.Point) - len(a.Point) })
		for _, m := range ms {
			if strings.HasPrefix(m.Point, "/run/") {
				unix.Unmount(m.Point, unix.MNT_DETACH)
			}
		}
		if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=755"); err != nil {
			t.Fatalf("mount a fresh /run: %v", err)
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=4m")
	cmd.Env = append(os.Environ(), envIsolated+"="+t.Name(), envHalbd+"="+HalbdPath, "NETLAB_REPORT_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the isolated run: %v", err)
	}
	var mnt syscall.Stat_t
	mntErr := syscall.Stat(fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid), &mnt)
	err := cmd.Wait()
	if mntErr == nil {
		killMountNamespace(mnt.Dev, mnt.Ino)
	}
	if err != nil {
		t.Fatalf("isolated run: %v\n%s", err, out.String())
	}
	t.Logf("isolated run:\n%s", out.String())
	return false
}

// killMountNamespace SIGKILLs every process left in the mount namespace
// (dev, ino): all were started by the isolated run, which has exited.
func killMountNamespace(dev, ino uint64) {
	for range 50 {
		procs, _ := os.ReadDir("/proc")
		found := false
		for _, p := range procs {
			var st syscall.Stat_t
			if syscall.Stat("/proc/"+p.Name()+"/ns/mnt", &st) != nil || st.Dev != dev || st.Ino != ino {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(p.Name(), &pid); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ipCmd runs ip(8) and fails t with its output on an error.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needIP(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 (scripts/deps.sh): ", err)
	}
}

// mountedLabEntries lists the mount points in this mount table that start
// with prefix under NetnsDir, hidden ones included.
func mountedLabEntries(t *testing.T, prefix string) []string {
	t.Helper()
	ms, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.Point, filepath.Join(NetnsDir, prefix)) {
			out = append(out, m.Point)
		}
	}
	return out
}

func isMountPoint(t *testing.T, path string) bool {
	t.Helper()
	ms, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return len(mountsAt(ms, path)) > 0
}

// TestLabBesideIPNetns: iproute2 at work on the same host while a lab runs
// (ip netns add, exec and del, as an admin or another tool would) must not
// disturb the lab, its teardown or the next run, and the lab must not
// disturb iproute2's namespaces. Precondition (the isolated run): /run/netns
// is a plain directory when the lab starts, so the first `ip netns add`
// turns it into a mount point while the lab's namespaces are mounted there.
func TestLabBesideIPNetns(t *testing.T) {
	SkipUnlessRoot(t)
	needIP(t)
	if !isolated(t) {
		return
	}
	if isMountPoint(t, NetnsDir) {
		t.Fatalf("precondition: %s is already a mount point", NetnsDir)
	}
	l, err := NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := NewClassic(l, ClassicOptions{Flavor: FlavorHalb})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitConverged(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	probe := c.StartProbe(context.Background(), false)

	// iproute2's namespaces: one that outlives the lab with a process in
	// it, and add/exec/del cycles while the lab serves and while it adds
	// and removes hosts of its own.
	base := fmt.Sprintf("netlab-iproute2-%d", os.Getpid())
	keep := base + "-keep"
	ipCmd(t, "netns", "add", keep)
	defer exec.Command("ip", "netns", "del", keep).Run()
	holder := exec.Command("ip", "netns", "exec", keep, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()

	var wg sync.WaitGroup
	ipErrs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 10 {
			name := fmt.Sprintf("%s-%d", base, i)
			for _, args := range [][]string{
				{"netns", "add", name},
				{"netns", "exec", name, "ip", "link", "set", "lo", "up"},
				{"netns", "exec", name, "ip", "-br", "link", "show", "lo"},
				{"netns", "del", name},
			} {
				if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
					select {
					case ipErrs <- fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out):
					default:
					}
					exec.Command("ip", "netns", "del", name).Run()
					return
				}
			}
		}
	}()
	var labErr error
	for i := range 5 {
		h, err := l.AddHost(fmt.Sprintf("extra%d", i))
		if err == nil {
			_, err = h.Connect(c.Back, "eth0", fmt.Sprintf("10.0.0.%d/24", 200+i))
		}
		if err == nil {
			err = h.Remove()
		}
		if err != nil {
			labErr = err
			break
		}
	}
	wg.Wait()
	res := probe.Stop()
	select {
	case err := <-ipErrs:
		t.Error(err)
	default:
	}
	if labErr != nil {
		t.Errorf("the lab beside iproute2: %v", labErr)
	}
	if res.Failed > 0 {
		t.Errorf("%d of %d client requests failed while iproute2 worked beside the lab: %s", res.Failed, res.Sent, firstError(res))
	}

	c.Close()
	if err := l.Close(); err != nil {
		t.Errorf("teardown beside iproute2: %v", err)
	}
	if left := l.LeftoverNamespaces(); len(left) > 0 {
		t.Errorf("namespace files left: %v", left)
	}
	if left := mountedLabEntries(t, l.Prefix); len(left) > 0 {
		t.Errorf("namespace mounts left: %v", left)
	}
	// The next run starts, and iproute2's namespace still works.
	l2, err := NewLab(t.TempDir())
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Error(err)
	}
	ipCmd(t, "netns", "exec", keep, "true")
}

// deadPID returns a pid no process has.
func deadPID() int {
	dead := 1 << 22 // above pid_max's usual ceiling
	for syscall.Kill(dead, 0) == nil {
		dead--
	}
	return dead
}

// TestRecoverStackedMounts: leftovers whatever mounts lie on top of them
// are removed by `netlab down` (and every run's start), and a lab whose
// namespaces got a mount stacked over NetnsDir tears down cleanly.
// Precondition (the isolated run): /run/netns is a plain directory.
func TestRecoverStackedMounts(t *testing.T) {
	SkipUnlessRoot(t)
	needIP(t)
	if !isolated(t) {
		return
	}
	prefix := fmt.Sprintf("hl%dxdead-", deadPID())
	hidden, stacked := prefix+"hidden", prefix+"stacked"
	hiddenPath, stackedPath := filepath.Join(NetnsDir, hidden), filepath.Join(NetnsDir, stacked)
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A dead run's namespaces in the plain directory, one with a process
	// still inside.
	var sleeper *exec.Cmd
	for _, name := range []string{hidden, stacked} {
		err := onNewThread(func() error {
			h, err := netns.NewNamed(name)
			if err != nil {
				return err
			}
			defer h.Close()
			if name == hidden {
				sleeper = exec.Command("sleep", "300")
				return sleeper.Start()
			}
			return nil
		})
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
	}
	sleeperDone := make(chan error, 1)
	go func() { sleeperDone <- sleeper.Wait() }()
	defer func() { sleeper.Process.Kill(); <-sleeperDone }()
	// iproute2 turns /run/netns into a mount point over them.
	other := fmt.Sprintf("netlab-iproute2-%d", os.Getpid())
	ipCmd(t, "netns", "add", other)
	defer exec.Command("ip", "netns", "del", other).Run()
	// The state the failed teardown left: the visible copy unmounted, the
	// original hidden under iproute2's mount, the file busy.
	if err := unix.Unmount(hiddenPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(hiddenPath); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("precondition: removing %s: %v, want busy", hiddenPath, err)
	}
	// And two more mounts stacked on the other one.
	for range 2 {
		if err := unix.Mount(stackedPath, stackedPath, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Down(false)
	if err != nil {
		t.Errorf("down: %v", err)
	}
	for _, p := range []string{hiddenPath, stackedPath} {
		if !slices.Contains(removed, filepath.Base(p)) {
			t.Errorf("%s not reported removed (removed %v)", filepath.Base(p), removed)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if left := mountedLabEntries(t, prefix); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
	select {
	case err := <-sleeperDone:
		sleeperDone <- err // for the deferred cleanup
	case <-time.After(5 * time.Second):
		t.Errorf("the process in the hidden namespace was not killed")
	}
	ipCmd(t, "netns", "exec", other, "true")

	// The next run starts; then someone stacks a private bind of /run/netns
	// over its namespaces: teardown must still remove them.
	l, _, _ := twoHosts(t)
	if err := unix.Mount(NetnsDir, NetnsDir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", NetnsDir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("teardown under a stacked %s: %v", NetnsDir, err)
	}
	if left := mountedLabEntries(t, l.Prefix); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
	if left := l.LeftoverNamespaces(); len(left) > 0 {
		t.Errorf("namespace files left: %v", left)
	}
	ipCmd(t, "netns", "exec", other, "true")
}
