package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/internal/testutil"
)

// nodeConfig is a valid config whose bytes differ for each i.
func nodeConfig(i int) string { return fmt.Sprintf("node: {name: lb1}\n# revision %d\n", i) }

// versions lists the versions of a history, as given.
func versions(l []api.HistoryEntry) []int {
	var out []int
	for _, e := range l {
		out = append(out, e.Version)
	}
	return out
}

// historyFiles lists the files of the history directory.
func historyFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestHistory: every applied config is recorded with its source (the file
// at start and on reload, the API, the console), the config running at
// start only when it is not the newest already, the newest first with the
// running one marked; the history keeps 20 versions on disk while the
// numbers keep growing, across restarts.
func TestHistory(t *testing.T) {
	dir := t.TempDir()
	td := startDaemon(t, dir, nodeConfig(0))
	l := td.History()
	if len(l) != 1 || l[0].Version != 1 || l[0].Source != api.SourceFile || !l[0].Running ||
		l[0].SHA256 != digest([]byte(nodeConfig(0))) || l[0].Summary != "1 change(s): node changed: name" || l[0].Time.IsZero() {
		t.Fatalf("history at first start: %+v", l)
	}
	if st := td.Status(); st.Config.Version != 1 {
		t.Errorf("status says version %d, want 1", st.Config.Version)
	}
	if res, err := td.ApplyFrom(api.SourceConsole, "", []byte(nodeConfig(1))); err != nil || res.Version != 2 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	// The same bytes again are no new version.
	if res, err := td.ApplyFrom(api.SourceAPI, "", []byte(nodeConfig(1))); err != nil || res.Version != 2 {
		t.Fatalf("apply again: %+v %v", res, err)
	}
	l = td.History()
	if !slices.Equal(versions(l), []int{2, 1}) || l[0].Source != api.SourceConsole || !l[0].Running || l[1].Running ||
		l[0].Summary != "no changes" {
		t.Fatalf("history after an apply: %+v", l)
	}
	td.stop()

	// A restart on the newest config adds nothing; an edited file does.
	td = startDaemon(t, dir, "")
	if got := versions(td.History()); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("a restart on the newest config changed the history: %v", got)
	}
	os.WriteFile(td.opts.ConfigPath, []byte(nodeConfig(2)), 0o640)
	td.Reload()
	if l := td.History(); l[0].Version != 3 || l[0].Source != api.SourceFile {
		t.Fatalf("a reload from the file: %+v", l[0])
	}

	// 25 more: the history keeps the last 20, on disk too.
	for i := 3; i < 28; i++ {
		if _, err := td.Apply("", []byte(nodeConfig(i))); err != nil {
			t.Fatal(err)
		}
	}
	l = td.History()
	if len(l) != HistorySize || l[0].Version != 28 || l[HistorySize-1].Version != 9 {
		t.Fatalf("after 28 configs the history has %v", versions(l))
	}
	hdir := filepath.Join(dir, "state", "history")
	files := historyFiles(t, hdir)
	if len(files) != HistorySize+1 || !slices.Contains(files, "9.yaml") || slices.Contains(files, "8.yaml") || !slices.Contains(files, "index.json") {
		t.Fatalf("history directory: %v", files)
	}
	for _, f := range files {
		if fi, _ := os.Stat(filepath.Join(hdir, f)); fi.Mode().Perm() != config.FileMode {
			t.Errorf("%s has mode %v", f, fi.Mode())
		}
	}
	if raw, err := td.HistoryConfig(9); err != nil || string(raw) != nodeConfig(8) {
		t.Fatalf("version 9: %q %v", raw, err)
	}
	_, err := td.HistoryConfig(8)
	if !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "config version 8 is not in the history (it keeps versions 9 to 28)") {
		t.Fatalf("a pruned version: %v", err)
	}
	td.stop()

	// Numbers keep growing after a restart.
	td = startDaemon(t, dir, nodeConfig(100))
	if l := td.History(); l[0].Version != 29 || len(l) != HistorySize {
		t.Fatalf("after a restart on a new file: %v", versions(l))
	}
}

// TestRollback: a rollback applies an old version through the normal
// path (the file, the components) and is recorded as a new version; one
// that is not kept, or that the node cannot take now, changes nothing.
func TestRollback(t *testing.T) {
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	srv := namer(t, "srv")
	v1 := configOf(service("web", x, "b", 1), backend("b", "s1="+srv))
	v2 := configOf(service("web", x, "b", 1)+service("db", y, "b", 1), backend("b", "s1="+srv))
	td := startDaemon(t, t.TempDir(), v1)
	if _, err := td.Apply("", []byte(v2)); err != nil {
		t.Fatal(err)
	}
	waitName(t, y, "srv")

	res, err := td.Rollback(1)
	if err != nil || res.Version != 3 || len(res.Changes) != 1 || res.Changes[0].String() != `services "db" removed` {
		t.Fatalf("rollback to 1: %+v %v", res, err)
	}
	if td.running() != v1 || td.onDisk() != v1 {
		t.Fatalf("after the rollback the running config or the file is not version 1")
	}
	l := td.History()
	if l[0].Version != 3 || l[0].Source != api.SourceRollback || l[0].Summary != `rollback to 1: 1 change(s): services "db" removed` ||
		l[0].SHA256 != l[2].SHA256 || !l[0].Running {
		t.Fatalf("the rollback's entry: %+v", l[0])
	}
	if n := td.vrrp.appliedCount(); n != 3 {
		t.Errorf("VRRP got %d configs, want 3", n)
	}

	if _, err := td.Rollback(7); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "config version 7 is not in the history (it keeps versions 1 to 3)") {
		t.Fatalf("rollback to an unknown version: %v", err)
	}

	// Version 2 cannot be taken while another socket holds y (once the
	// proxy has closed db's listener).
	var held net.Listener
	eventually(t, "another socket holds "+y, func() bool {
		held, err = net.Listen("tcp", y)
		return err == nil
	})
	defer held.Close()
	_, err = td.Rollback(2)
	es := config.AsErrors(err)
	path := filepath.Join(td.opts.StateDir, "history", "2.yaml")
	if !errors.Is(err, api.ErrConflict) || len(es) != 1 || !strings.HasPrefix(es[0].Error(), path+":4: services[1].listen[0]: ") {
		t.Fatalf("rollback to a version this node cannot take: %v", err)
	}
	if td.running() != v1 || len(td.History()) != 3 {
		t.Fatalf("a refused rollback changed the config or the history")
	}
	if r := td.Status().Config.LastError; r == nil || r.Source != api.SourceRollback {
		t.Fatalf("the refused rollback is not in status: %+v", r)
	}
}

// TestHistoryDamage: the history survives what a crash or a bad disk
// leaves: a YAML file without an entry is removed by the next record, a
// broken index is rebuilt from the files without reusing a number, a
// file that does not hold what was recorded is refused, and a history
// that cannot be written does not stop a config from applying.
func TestHistoryDamage(t *testing.T) {
	dir := t.TempDir()
	h := newHistory(dir)
	for i := 1; i <= 3; i++ {
		if v, err := h.record(api.SourceAPI, "x", []byte(nodeConfig(i))); err != nil || v != i {
			t.Fatalf("record %d: %v %v", i, v, err)
		}
	}
	// A crash after version 4's file, before the index.
	os.WriteFile(filepath.Join(dir, "4.yaml"), []byte(nodeConfig(4)), 0o640)
	os.WriteFile(filepath.Join(dir, ".index.json.tmp-123"), []byte("{"), 0o640)
	h = newHistory(dir)
	if err := h.load(); err != nil {
		t.Fatal(err)
	}
	if v, err := h.record(api.SourceAPI, "x", []byte(nodeConfig(5))); err != nil || v != 4 {
		t.Fatalf("record after the crash: %v %v", v, err)
	}
	if raw, _, err := h.get(4); err != nil || string(raw) != nodeConfig(5) {
		t.Fatalf("version 4 after the crash: %q %v", raw, err)
	}
	if files := historyFiles(t, dir); !slices.Equal(files, []string{"1.yaml", "2.yaml", "3.yaml", "4.yaml", "index.json"}) {
		t.Fatalf("files after the crash: %v", files)
	}

	// A broken index.
	os.WriteFile(filepath.Join(dir, "index.json"), []byte("{\"last_version\": 4, \"entr"), 0o640)
	h = newHistory(dir)
	if err := h.load(); err == nil || !strings.Contains(err.Error(), "rebuilt from the 4 config file(s) present") {
		t.Fatalf("load of a broken index: %v", err)
	}
	if l := h.list(); !slices.Equal(versions(l), []int{4, 3, 2, 1}) || l[0].Source != "unknown" {
		t.Fatalf("rebuilt history: %+v", l)
	}
	if v, err := h.record(api.SourceAPI, "x", []byte(nodeConfig(6))); err != nil || v != 5 {
		t.Fatalf("record after the rebuild: %v %v", v, err)
	}

	// A changed file.
	os.WriteFile(filepath.Join(dir, "2.yaml"), []byte(nodeConfig(99)), 0o640)
	if _, _, err := h.get(2); err == nil || !strings.Contains(err.Error(), "does not hold what was applied") {
		t.Fatalf("a changed file: %v", err)
	}

	// A history that cannot be written: its index is a directory.
	ddir := t.TempDir()
	td := startDaemon(t, ddir, nodeConfig(0))
	hdir := filepath.Join(ddir, "state", "history")
	os.Remove(filepath.Join(hdir, "index.json"))
	if err := os.Mkdir(filepath.Join(hdir, "index.json"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := td.Apply("", []byte(nodeConfig(1))); err != nil {
		t.Fatalf("apply with a broken history: %v", err)
	}
	if ev := td.waitEvent("config.history_failed"); !strings.Contains(ev.Message, "config history") {
		t.Errorf("event %q", ev.Message)
	}
	if td.running() != nodeConfig(1) || td.onDisk() != nodeConfig(1) {
		t.Fatalf("a history that cannot be written stopped the config")
	}
	if files := historyFiles(t, hdir); !slices.Equal(files, []string{"1.yaml", "index.json"}) {
		t.Errorf("files after a failed record: %v", files)
	}
}
