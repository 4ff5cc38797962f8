package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// NetnsDir is where named network namespaces are bind-mounted (as by `ip netns`).
const NetnsDir = "/run/netns"

// namePrefix starts every namespace of every lab run: "hl<pid>x<rand>-".
// The owner's pid lets a later run remove the leftovers of a dead one
// without touching a run that is still going.
var runName = regexp.MustCompile(`^hl(\d+)x[0-9a-f]{4}-`)

// Lab is one run of the lab: a set of LANs and hosts, each a network
// namespace whose name carries the run's unique prefix.
type Lab struct {
	// Prefix starts the name of every namespace of this run.
	Prefix string
	// Dir holds the run's logs and generated configs.
	Dir string

	mu     sync.Mutex
	lans   []*LAN
	hosts  []*Host
	procs  []*Process
	closed bool
}

// RootReason is why the lab cannot run here, or "" when it can.
func RootReason() string {
	if os.Geteuid() != 0 {
		return "netlab needs root (network namespaces, veth, bridges, nftables): run `make netlab` as root"
	}
	return ""
}

// SkipUnlessRoot skips t with the one reason every lab test gives.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if r := RootReason(); r != "" {
		t.Skip(r)
	}
}

// New returns an empty lab for test t, removed when the test ends (even on
// failure or panic). It skips t when not root. Logs of every process are
// printed when the test failed.
func New(t testing.TB) *Lab {
	t.Helper()
	SkipUnlessRoot(t)
	l, err := NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.DumpLogs(t.Logf)
		}
		if err := l.Close(); err != nil {
			t.Errorf("netlab teardown: %v", err)
		}
	})
	return l
}

// NewLab returns an empty lab keeping its files under dir. Leftovers of lab
// runs whose process is gone are removed first.
func NewLab(dir string) (*Lab, error) {
	if r := RootReason(); r != "" {
		return nil, errors.New(r)
	}
	if err := shareNetnsDir(); err != nil {
		return nil, err
	}
	if _, err := Down(false); err != nil {
		return nil, fmt.Errorf("remove leftovers of earlier runs: %w", err)
	}
	var b [2]byte
	rand.Read(b[:])
	prefix := fmt.Sprintf("hl%dx%s-", os.Getpid(), hex.EncodeToString(b[:]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Lab{Prefix: prefix, Dir: dir}, nil
}

// Close stops every process of the lab and removes every namespace. It is
// safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, hosts, lans := l.procs, l.hosts, l.lans
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		p.kill()
	}
	for _, h := range hosts {
		errs = append(errs, h.remove())
	}
	for _, n := range lans {
		errs = append(errs, n.remove())
	}
	return errors.Join(errs...)
}

// DumpLogs writes the log of every process of the lab through logf.
func (l *Lab) DumpLogs(logf func(format string, args ...any)) {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.mu.Unlock()
	for _, p := range procs {
		logf("--- %s/%s (%s) ---\n%s", p.Host.Name, p.Name, p.LogPath, p.Log())
	}
}

// Hosts returns the lab's hosts in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hosts)
}

// Host returns the host named name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// newNamespace creates the named namespace prefix+name without moving the
// calling thread into it for longer than the call.
func (l *Lab) newNamespace(name string) (netns.NsHandle, string, error) {
	full := l.Prefix + name
	var h netns.NsHandle
	err := onNewThread(func() error {
		var err error
		h, err = netns.NewNamed(full) // moves this (discarded) thread
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("netlab: create namespace %s: %w", full, err)
	}
	return h, full, nil
}

// Down removes the namespaces of lab runs and kills the processes inside
// them, whatever mounts lie on top of them (see deleteNamespace). With all,
// every lab namespace goes (`netlab down -all`); without, only those of
// runs whose owning process has exited. It returns the names removed.
func Down(all bool) ([]string, error) {
	names, err := labNamespaces()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, name := range names {
		m := runName.FindStringSubmatch(name)
		pid, _ := strconv.Atoi(m[1])
		if !all && (pid == os.Getpid() || processAlive(pid)) {
			continue
		}
		killNamespaceProcesses(filepath.Join(NetnsDir, name))
		if err := deleteNamespace(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// labNamespaces names the lab namespaces present: files in NetnsDir and
// mounts listed under it (a mount hidden under another file system
// mounted over NetnsDir has no file in sight).
func labNamespaces() ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	ms, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if filepath.Dir(m.Point) == NetnsDir {
			names = append(names, filepath.Base(m.Point))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.DeleteFunc(names, func(n string) bool { return !runName.MatchString(n) }), nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// namespacePIDs lists the processes whose network namespace is one
// bind-mounted at path, in sight or hidden under a mount on top.
func namespacePIDs(path string) []int {
	ids := netnsIDs(path)
	if len(ids) == 0 {
		return nil
	}
	procs, _ := os.ReadDir("/proc")
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+p.Name()+"/ns/net", &st) == nil && slices.Contains(ids, [2]uint64{st.Dev, st.Ino}) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNamespaceProcesses SIGKILLs every process inside the namespace at path
// and waits briefly for them to go. Only lab namespaces are passed here, so
// every such process is one the lab started (or a child of one).
func killNamespaceProcesses(path string) {
	for range 50 {
		pids := namespacePIDs(path)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LeftoverNamespaces lists the namespaces of this lab run still present.
func (l *Lab) LeftoverNamespaces() []string {
	entries, _ := os.ReadDir(NetnsDir)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.Prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
