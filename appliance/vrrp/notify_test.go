package vrrp

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedRunner is a programRunner that reports each start and runs until
// the test releases it.
type gatedRunner struct {
	started chan string // "NAME STATE PRIORITY" of each run
	release chan struct{}
	active  atomic.Int32
	overlap atomic.Bool
}

func newGatedRunner() *gatedRunner {
	return &gatedRunner{started: make(chan string), release: make(chan struct{})}
}

func (g *gatedRunner) run(ctx context.Context, argv []string) error {
	if g.active.Add(1) > 1 {
		g.overlap.Store(true)
	}
	defer g.active.Add(-1)
	g.started <- strings.Join(argv[1:], " ")
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func TestNotifyState(t *testing.T) {
	for s, want := range map[State]string{StateInit: "STOP", StateBackup: "BACKUP", StateMaster: "MASTER", StateFault: "FAULT"} {
		if got := notifyState(s); got != want {
			t.Errorf("notifyState(%s) = %q, want %q", s, got, want)
		}
	}
}

// TestNotifierInOrderOneAtATime: notify never blocks; the runs happen one
// after the other, in the order of the changes.
func TestNotifierInOrderOneAtATime(t *testing.T) {
	g := newGatedRunner()
	n := newNotifier("web-a", "/notify", time.Minute, g.run, slog.New(slog.DiscardHandler))
	go n.loop()

	// All three are queued while the program cannot even start.
	n.notify(StateBackup, 100)
	n.notify(StateMaster, 150)
	n.notify(StateFault, 150)
	for _, want := range []string{"web-a BACKUP 100", "web-a MASTER 150", "web-a FAULT 150"} {
		if got := <-g.started; got != want {
			t.Fatalf("run %q, want %q", got, want)
		}
		// Queued meanwhile: runs after the ones before it.
		if want == "web-a MASTER 150" {
			n.notify(StateInit, 150)
		}
		g.release <- struct{}{}
	}
	if got := <-g.started; got != "web-a STOP 150" {
		t.Fatalf("run %q, want the STOP queued during a run", got)
	}
	g.release <- struct{}{}
	n.close()
	if g.overlap.Load() {
		t.Error("two runs of the notify program overlapped")
	}
	n.notify(StateMaster, 1) // after close: dropped, no panic, no run
}

// TestNotifierQueueBound: with the program hung, the oldest waiting
// changes are dropped; the newest always runs.
func TestNotifierQueueBound(t *testing.T) {
	g := newGatedRunner()
	var logs bytes.Buffer
	var mu sync.Mutex
	n := newNotifier("a", "/notify", time.Minute, g.run, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	go n.loop()
	n.notify(StateBackup, 1)
	if got := <-g.started; got != "a BACKUP 1" {
		t.Fatalf("run %q", got)
	}
	// The program hangs; maxNotifyQueue+3 more changes arrive.
	for i := range maxNotifyQueue + 3 {
		n.notify(StateMaster, 100+i)
	}
	g.release <- struct{}{}
	var runs []string
	for range maxNotifyQueue {
		runs = append(runs, <-g.started)
		g.release <- struct{}{}
	}
	n.close()
	if runs[0] != "a MASTER 103" || runs[len(runs)-1] != "a MASTER 166" {
		t.Errorf("ran %q … %q; want 103 … 166 (the 3 oldest dropped)", runs[0], runs[len(runs)-1])
	}
	mu.Lock()
	defer mu.Unlock()
	if c := strings.Count(logs.String(), "notify program falls behind"); c != 3 {
		t.Errorf("%d drops logged, want 3:\n%s", c, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestNotifierRealProgram runs a real program and logs its exit status;
// one that hangs is killed after the timeout. The timeout leaves a loaded
// machine time to start a shell (200ms did not, once, under a full test run).
func TestNotifierRealProgram(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	prog := filepath.Join(dir, "notify.sh")
	body := "#!/bin/sh\necho \"$@\" >> " + out + "\n[ \"$2\" = FAULT ] && sleep 60\nexit 0\n"
	if err := os.WriteFile(prog, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	n := newNotifier("web-a", prog, 2*time.Second, execProgram, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	go n.loop()
	n.notify(StateBackup, 100)
	n.notify(StateFault, 100)
	n.notify(StateMaster, 150)
	n.notify(StateInit, 150)
	n.close() // runs what is queued, then returns
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "web-a BACKUP 100\nweb-a FAULT 100\nweb-a MASTER 150\nweb-a STOP 150\n"; string(b) != want {
		t.Errorf("the program saw\n%s\nwant\n%s", b, want)
	}
	mu.Lock()
	defer mu.Unlock()
	l := logs.String()
	if strings.Count(l, "notify program ran") != 3 || !strings.Contains(l, "exit=\"status 0\"") {
		t.Errorf("successful runs not logged with their exit status:\n%s", l)
	}
	if !strings.Contains(l, "notify program failed") || !strings.Contains(l, `exit="timed out after 2s"`) || !strings.Contains(l, "state=FAULT") {
		t.Errorf("the hung run is not logged as timed out:\n%s", l)
	}
}
