package vrrp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
)

func TestRiseFall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rise, fall int
		results    string // p: pass, f: fail
		want       string // state after each result: + passing, - failing
	}{
		{"first result decides: pass", 3, 3, "p", "+"},
		{"first result decides: fail", 3, 3, "f", "-"},
		{"fall counts failures in a row", 2, 3, "pffpfff", "++++++-"},
		{"rise counts passes in a row", 2, 1, "fpfpp", "----+"},
		{"rise and fall of 1 follow every result", 1, 1, "pfpfp", "+-+-+"},
		{"zero counts act as 1", 0, 0, "pfp", "+-+"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRiseFall(tc.rise, tc.fall)
			if !r.ok {
				t.Fatal("a script starts failing; want passing until its first result")
			}
			var got strings.Builder
			prev := r.ok
			for _, c := range tc.results {
				changed := r.observe(c == 'p')
				if changed != (r.ok != prev) {
					t.Fatalf("observe reported changed=%v but state went %v→%v", changed, prev, r.ok)
				}
				prev = r.ok
				if r.ok {
					got.WriteByte('+')
				} else {
					got.WriteByte('-')
				}
			}
			if got.String() != tc.want {
				t.Errorf("results %s: states %s, want %s", tc.results, got.String(), tc.want)
			}
		})
	}
}

func TestTracker(t *testing.T) {
	minus10, zero := -10, 0
	tr := newTracker(config.VRRPInstance{Track: config.Track{
		Interfaces: []string{"eth1"}, Services: []string{"web"}, Weight: -30,
		Scripts: []config.TrackScript{{Name: "inherit"}, {Name: "own", Weight: &minus10}, {Name: "fatal", Weight: &zero}},
	}})
	want := []TrackedStatus{
		{Kind: "interface", Name: "eth1", OK: true, Weight: -30},
		{Kind: "service", Name: "web", OK: true, Weight: -30},
		{Kind: "script", Name: "inherit", OK: true, Weight: -30},
		{Kind: "script", Name: "own", OK: true, Weight: -10},
		{Kind: "script", Name: "fatal", OK: true, Weight: 0},
	}
	if got := tr.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("snapshot %+v\nwant %+v", got, want)
	}
	if w := tr.failingWeights(); len(w) != 0 {
		t.Fatalf("failing weights %v with everything passing", w)
	}
	if fs := tr.faults(); !slices.Equal(fs, []fault{{source: "track/script/fatal"}}) {
		t.Fatalf("faults %+v, want the weight-0 script's source, cleared", fs)
	}

	if !tr.set(TrackInterface, "eth1", false, "link down") || !tr.set(TrackScript, "own", false, "exit status 2") {
		t.Fatal("set did not report a change")
	}
	if tr.set(TrackInterface, "eth1", false, "Link not found") {
		t.Fatal("a new detail alone reported as a change")
	}
	if w := tr.failingWeights(); !slices.Equal(w, []int{-30, -10}) {
		t.Errorf("failing weights %v", w)
	}
	if got := effectivePriority(150, tr.failingWeights()); got != 110 {
		t.Errorf("priority %d, want 150-30-10", got)
	}
	tr.set(TrackScript, "fatal", false, "timed out after 1s")
	if fs := tr.faults(); !slices.Equal(fs, []fault{{"track/script/fatal", "tracked script fatal: timed out after 1s"}}) {
		t.Errorf("faults %+v", fs)
	}
	if w := tr.failingWeights(); len(w) != 2 {
		t.Errorf("a weight-0 object changes the priority: %v", w)
	}
	tr.set(TrackInterface, "eth1", true, "ignored")
	if s := tr.snapshot()[0]; !s.OK || s.Detail != "" {
		t.Errorf("passing object keeps a detail: %+v", s)
	}
	if !slices.Equal(tr.interfaces(), []string{"eth1"}) || !slices.Equal(tr.services(), []string{"web"}) {
		t.Errorf("interfaces %v services %v", tr.interfaces(), tr.services())
	}
}

// TestRunScript feeds a script's runs one result at a time and records the
// changes it reports, without sleeping: the runner takes each result from
// the test, and a pending change blocks the script until the test reads it.
func TestRunScript(t *testing.T) {
	results := make(chan error)
	out := make(chan scriptResult)
	run := func(ctx context.Context, argv []string) error {
		if !slices.Equal(argv, []string{"/check", "-q"}) {
			t.Errorf("argv %q", argv)
		}
		select {
		case err := <-results:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runScript(ctx, config.TrackScript{Name: "chk", Command: []string{"/check", "-q"},
			Interval: config.Duration(time.Millisecond), Timeout: config.Duration(time.Hour), Rise: 2, Fall: 2}, run, out)
	}()
	defer func() {
		cancel()
		<-done
	}()

	var changes []string
	sent := 0
	send := func(err error) {
		for {
			select {
			case c := <-out:
				changes = append(changes, fmt.Sprintf("after %d: %s ok=%v %s", sent, c.name, c.ok, c.detail))
			case results <- err:
				sent++
				return
			}
		}
	}
	fail := errors.New("exit status 1")
	for _, err := range []error{nil, fail, nil, fail, fail, nil, fail, nil, nil} {
		send(err)
	}
	send(nil) // flushes the change of the last result, if any
	want := []string{
		"after 5: chk ok=false exit status 1",
		"after 9: chk ok=true ",
	}
	if !slices.Equal(changes, want) {
		t.Errorf("changes\n\t%s\nwant\n\t%s", strings.Join(changes, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestRunProgramTimeout(t *testing.T) {
	block := func(ctx context.Context, _ []string) error {
		<-ctx.Done()
		return ctx.Err()
	}
	ok, detail := runProgram(context.Background(), block, []string{"/x"}, 10*time.Millisecond)
	if ok || detail != "timed out after 10ms" {
		t.Errorf("runProgram = %v, %q; want a timeout", ok, detail)
	}
}

// TestExecProgram runs real programs.
func TestExecProgram(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		argv   []string
		ok     bool
		detail string
	}{
		{"exit 0", []string{script("ok", "exit 0")}, true, ""},
		{"exit 3 with a message", []string{script("bad", "echo first line >&2; echo second; exit 3")}, false, "exit status 3: first line"},
		{"arguments without a shell", []string{script("args", `[ "$1" = 'a b' ] && [ "$2" = '$HOME' ]`), "a b", "$HOME"}, true, ""},
		{"missing program", []string{filepath.Join(dir, "nosuch")}, false, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, detail := runProgram(context.Background(), execProgram, tc.argv, time.Minute)
			if ok != tc.ok || !strings.Contains(detail, tc.detail) {
				t.Errorf("runProgram(%q) = %v, %q; want %v, %q", tc.argv, ok, detail, tc.ok, tc.detail)
			}
		})
	}

	// A timeout kills the program and what it started (its process
	// group), so the run ends long before the sleeps would.
	pidFile := filepath.Join(dir, "child.pid")
	slow := script("slow", "sleep 60 & echo $! > "+pidFile+"; sleep 60")
	start := time.Now()
	// 2s: the shell must have started its child and written the pid
	// file before the timeout (200ms was once too short for that on a
	// loaded machine in the notify test: ca482d0).
	ok, detail := runProgram(context.Background(), execProgram, []string{slow}, 2*time.Second)
	if ok || detail != "timed out after 2s" {
		t.Errorf("slow program: %v, %q; want a timeout", ok, detail)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the timed-out run took %v", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the slow program's child did not start: %v", err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Gone, or a zombie waiting to be reaped: dead either way.
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s of the timed-out program still runs: %s", pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
