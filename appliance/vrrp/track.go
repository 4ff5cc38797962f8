package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"halb/appliance/config"
)

// Tracking (keepalived's track_interface, track_script and, for halb's own
// services, "no healthy backend"): each tracked object passes or fails; a
// failing object adds its weight to the priority, or, with weight 0, puts
// the instance in FAULT. Interfaces are polled by the instance loop, scripts
// run in goroutines of their own and send their changes to the loop, and
// service health is pushed in by the component (SetServiceHealth).

// Kinds of tracked object.
const (
	TrackInterface = "interface"
	TrackService   = "service"
	TrackScript    = "script"
)

// TrackedStatus is one tracked object of an instance in status.
type TrackedStatus struct {
	Kind string `json:"kind"` // interface, service or script
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Weight is added to the priority while the object fails; 0 means a
	// failure puts the instance in FAULT.
	Weight int `json:"weight"`
	// Detail says why the object fails ("link down", "exit status 1",
	// "timed out after 1s", ...); empty while it passes.
	Detail string `json:"detail,omitempty"`
}

// tracker holds the state of an instance's tracked objects, in config order
// (interfaces, services, scripts). Everything starts as passing.
type tracker struct {
	objs []TrackedStatus
}

func newTracker(cfg config.VRRPInstance) *tracker {
	t := &tracker{}
	for _, n := range cfg.Track.Interfaces {
		t.objs = append(t.objs, TrackedStatus{Kind: TrackInterface, Name: n, OK: true, Weight: cfg.Track.Weight})
	}
	for _, n := range cfg.Track.Services {
		t.objs = append(t.objs, TrackedStatus{Kind: TrackService, Name: n, OK: true, Weight: cfg.Track.Weight})
	}
	for _, s := range cfg.Track.Scripts {
		t.objs = append(t.objs, TrackedStatus{Kind: TrackScript, Name: s.Name, OK: true, Weight: s.EffectiveWeight(cfg.Track.Weight)})
	}
	return t
}

// set records an object's state; it reports whether the object changed
// between passing and failing (a new detail alone is recorded quietly).
func (t *tracker) set(kind, name string, ok bool, detail string) bool {
	if ok {
		detail = ""
	}
	changed := false
	for i := range t.objs {
		o := &t.objs[i]
		if o.Kind != kind || o.Name != name {
			continue
		}
		changed = changed || o.OK != ok
		o.OK, o.Detail = ok, detail
	}
	return changed
}

// failingWeights lists the weights of the failing objects that change the
// priority (weight 0 ones force FAULT instead).
func (t *tracker) failingWeights() []int {
	var ws []int
	for _, o := range t.objs {
		if !o.OK && o.Weight != 0 {
			ws = append(ws, o.Weight)
		}
	}
	return ws
}

// faults returns, for every object of weight 0, its fault source and the
// reason (empty while it passes), so that recovered objects clear theirs.
func (t *tracker) faults() []fault {
	var fs []fault
	for _, o := range t.objs {
		if o.Weight != 0 {
			continue
		}
		f := fault{source: faultTrack + o.Kind + "/" + o.Name}
		if !o.OK {
			f.reason = o.describe()
		}
		fs = append(fs, f)
	}
	return fs
}

// describe says why o fails, for fault reasons, logs and events.
func (o TrackedStatus) describe() string {
	s := "tracked " + o.Kind + " " + o.Name
	if o.Detail != "" {
		s += ": " + o.Detail
	}
	return s
}

func (t *tracker) snapshot() []TrackedStatus {
	if len(t.objs) == 0 {
		return nil
	}
	return append([]TrackedStatus(nil), t.objs...)
}

// interfaces lists the tracked interfaces (to poll).
func (t *tracker) interfaces() []string {
	var ns []string
	for _, o := range t.objs {
		if o.Kind == TrackInterface {
			ns = append(ns, o.Name)
		}
	}
	return ns
}

// services lists the tracked services.
func (t *tracker) services() []string {
	var ns []string
	for _, o := range t.objs {
		if o.Kind == TrackService {
			ns = append(ns, o.Name)
		}
	}
	return ns
}

// riseFall turns a script's results into its state. It starts passing; the
// first result sets the state at once; after that it takes rise passes in a
// row to pass again and fall failures in a row to fail.
type riseFall struct {
	rise, fall int
	ok         bool
	seen       bool // a result arrived
	run        int  // results in a row that disagree with ok
}

func newRiseFall(rise, fall int) *riseFall {
	return &riseFall{rise: max(rise, 1), fall: max(fall, 1), ok: true}
}

// observe takes one result and reports whether the state changed.
func (r *riseFall) observe(pass bool) bool {
	if !r.seen {
		r.seen = true
		changed := r.ok != pass
		r.ok = pass
		return changed
	}
	if pass == r.ok {
		r.run = 0
		return false
	}
	r.run++
	need := r.fall
	if pass {
		need = r.rise
	}
	if r.run < need {
		return false
	}
	r.ok, r.run = pass, 0
	return true
}

// programRunner runs argv until it exits or ctx ends; nil error means exit
// status 0. Tests replace execProgram with a fake.
type programRunner func(ctx context.Context, argv []string) error

// maxOutput is how much of a program's output is kept for its error.
const maxOutput = 256

// execProgram runs argv without a shell, in a process group of its own so
// that a timeout kills what it started too. A failure's error carries the
// start of the program's output.
func execProgram(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no program")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out := &headBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err != nil {
		if s := strings.TrimSpace(out.String()); s != "" {
			s, _, _ = strings.Cut(s, "\n")
			err = fmt.Errorf("%w: %s", err, s)
		}
	}
	return err
}

// headBuffer keeps the first max bytes written to it and drops the rest.
type headBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - h.b.Len(); room > 0 {
		h.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b.String()
}

// runProgram runs argv with a timeout and describes a failure.
func runProgram(ctx context.Context, run programRunner, argv []string, timeout time.Duration) (ok bool, detail string) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := run(rctx, argv)
	switch {
	case err == nil:
		return true, ""
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return false, "timed out after " + timeout.String()
	}
	return false, err.Error()
}

// scriptResult is a tracked script's change of state.
type scriptResult struct {
	name   string
	ok     bool
	detail string
}

// runScript runs one tracked script every interval until ctx ends and sends
// its changes of state to out. Runs never overlap: the next starts at the
// first tick after the previous one ended.
func runScript(ctx context.Context, s config.TrackScript, run programRunner, out chan<- scriptResult) {
	interval := s.Interval.D()
	if interval <= 0 {
		interval = config.DefaultScriptInterval
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = interval
	}
	rf := newRiseFall(s.Rise, s.Fall)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, detail := runProgram(ctx, run, s.Command, timeout)
		if ctx.Err() != nil {
			return
		}
		if rf.observe(ok) {
			select {
			case out <- scriptResult{name: s.Name, ok: ok, detail: detail}:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
