package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"halb/appliance/config"
)

// Options are what a Manager needs beside its targets.
type Options struct {
	// Logger is the daemon's logger beneath Handler (not the one Handler
	// wraps into, though that works too): access lines go to it at Info
	// when no target takes the access stream, and the Manager reports
	// its targets' failures and recoveries on it. Default: slog.Default().
	Logger *slog.Logger
	// Hostname is the node name: the HOSTNAME of syslog messages and the
	// host in file lines (SetHostname changes it). Default: os.Hostname().
	Hostname string
	// WriteTimeout bounds one write to a syslog server and one connect:
	// a server that stops reading is noticed within it. Default: 5s.
	WriteTimeout time.Duration
	// DrainTimeout is how long a removed target (Apply) or every target
	// (Close) may take to write what is queued; the rest is dropped and
	// counted. Default: 3s.
	DrainTimeout time.Duration

	// backoffMin and backoffMax bound the wait between reconnects and
	// reopens (tests shorten them). Default: 100ms and 10s.
	backoffMin, backoffMax time.Duration
}

var _ AccessLogger = (*Manager)(nil)

// Manager owns the log targets: one queue and one writer goroutine each.
// It is the proxy's AccessLogger, and its Handler wraps the daemon's log
// handler to feed the daemon stream. Its methods are safe for concurrent
// use.
type Manager struct {
	opts Options
	log  *slog.Logger
	host atomic.Pointer[string] // SetHostname

	// mu guards set and closed. Senders (Access, the daemon handler) hold
	// it for reading while they hand a line to the queues, so that Apply
	// and Close, holding it for writing, know no sender is left on a queue
	// they close.
	mu     sync.RWMutex
	set    *targetSet
	closed bool
	// daemonOn is whether a target takes the daemon stream, read without
	// the lock so that a record is formatted before it is taken.
	daemonOn atomic.Bool

	applyMu  sync.Mutex           // serialises Apply and Close
	counters map[string]*counters // by target name, for the Manager's life
	wg       sync.WaitGroup       // every writer goroutine
}

// targetSet is the published configuration: every target in config order,
// and those taking each stream.
type targetSet struct {
	all            []*target
	access, daemon []*target
	fields         bool // a journald target takes access: copy the fields
}

// New starts a Manager with targets (defaults applied, as config.Load
// leaves them). An error names the target that cannot start (a file that
// cannot be opened, a bad address), and nothing is left running.
func New(targets []config.LogTarget, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 3 * time.Second
	}
	if opts.backoffMin <= 0 {
		opts.backoffMin = 100 * time.Millisecond
	}
	if opts.backoffMax <= 0 {
		opts.backoffMax = 10 * time.Second
	}
	m := &Manager{opts: opts, counters: map[string]*counters{}, set: &targetSet{}}
	m.log = slog.New(unwrap(opts.Logger.Handler()))
	m.SetHostname(opts.Hostname)
	if err := m.Apply(targets); err != nil {
		return nil, err
	}
	return m, nil
}

// Apply replaces the targets. A target whose configuration is unchanged
// (same name, same settings) is kept as it is, its queue included: it
// loses no line. A removed target stops taking lines and writes what is
// queued (for at most DrainTimeout) in the background; a changed one is
// replaced by a new target that starts writing when the old one is done,
// its counters going on. Apply does not wait for I/O. On error nothing
// changes.
func (m *Manager) Apply(targets []config.LogTarget) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.RLock()
	old, closed := m.set, m.closed
	m.mu.RUnlock()
	if closed {
		return errors.New("log targets: manager closed")
	}
	if err := checkTargets(targets); err != nil {
		return err
	}

	byName := map[string]*target{}
	for _, t := range old.all {
		byName[t.cfg.Name] = t
	}
	next := &targetSet{}
	var fresh []*target // created here, started once published
	var replaced []*target
	for _, cfg := range targets {
		if t := byName[cfg.Name]; t != nil && sameTarget(t.cfg, cfg) {
			next.add(t)
			delete(byName, cfg.Name)
			continue
		}
		c := m.counters[cfg.Name]
		if c == nil {
			c = &counters{}
		}
		t, err := newTarget(m, cfg, c)
		if err != nil {
			for _, f := range fresh {
				f.discard()
			}
			return err
		}
		if prev := byName[cfg.Name]; prev != nil {
			t.prev.Store(prev)
			replaced = append(replaced, prev)
			delete(byName, cfg.Name)
		}
		m.counters[cfg.Name] = c
		fresh = append(fresh, t)
		next.add(t)
	}

	m.mu.Lock()
	m.set = next
	m.daemonOn.Store(len(next.daemon) > 0)
	m.mu.Unlock()

	// No sender can hold a queue of the old set now.
	for _, t := range replaced {
		t.stop(m.opts.DrainTimeout)
	}
	for _, t := range byName {
		t.stop(m.opts.DrainTimeout)
	}
	for _, t := range fresh {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			t.run()
		}()
	}
	return nil
}

// checkTargets rejects what config validation does not see: two targets
// of one name, or two file targets writing one file (their rotations
// would fight).
func checkTargets(targets []config.LogTarget) error {
	names := map[string]bool{}
	paths := map[string]string{}
	for i, t := range targets {
		if t.Name == "" {
			return fmt.Errorf("log target %d: no name", i)
		}
		if names[t.Name] {
			return fmt.Errorf("log target %q: the name is used twice", t.Name)
		}
		names[t.Name] = true
		if t.To == "file" {
			p := filepath.Clean(t.Path)
			if other, ok := paths[p]; ok {
				return fmt.Errorf("log target %q: path %s is also target %q's", t.Name, t.Path, other)
			}
			paths[p] = t.Name
		}
	}
	return nil
}

// sameTarget reports whether a and b configure the same target.
func sameTarget(a, b config.LogTarget) bool {
	return reflect.DeepEqual(a, b)
}

func (s *targetSet) add(t *target) {
	s.all = append(s.all, t)
	if t.access {
		s.access = append(s.access, t)
		if t.cfg.To == "journald" {
			s.fields = true
		}
	}
	if t.daemon {
		s.daemon = append(s.daemon, t)
	}
}

// discard releases a target that never started.
func (t *target) discard() {
	t.cancel()
	t.sink.close()
}

// Close stops taking lines, lets every target write what is queued (for at
// most DrainTimeout) and returns when every writer goroutine has returned.
// Access and the daemon handler do nothing for the targets after Close.
func (m *Manager) Close() error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	old := m.set
	m.closed = true // the set stays, for Status's final totals
	m.daemonOn.Store(false)
	m.mu.Unlock()
	for _, t := range old.all {
		t.stop(m.opts.DrainTimeout)
	}
	m.wg.Wait()
	return nil
}

// Access formats r into its line at once (r may be reused as soon as it
// returns) and hands the line to every target taking the access stream,
// without blocking: a target whose queue is full drops it (counted). With
// no such target the line goes to the daemon's logger at Info, message
// "access", attribute line. After Close it does nothing.
func (m *Manager) Access(r *Access) {
	m.mu.RLock()
	s, closed := m.set, m.closed
	if closed || len(s.access) == 0 {
		m.mu.RUnlock()
		if !closed {
			// Outside the lock: the logger may lead back to the Manager.
			var buf [512]byte
			m.log.LogAttrs(context.Background(), slog.LevelInfo, "access",
				slog.String("line", string(appendAccess(buf[:0], r))))
		}
		return
	}
	defer m.mu.RUnlock()
	sc := scratch.Get().(*[]byte)
	b := appendAccess((*sc)[:0], r)
	e := entry{line: append(make([]byte, 0, len(b)), b...), at: time.Now().UnixNano(), sev: sevInfo, stream: streamAccess}
	*sc = b
	scratch.Put(sc)
	if s.fields {
		e.fields = &accessFields{r: *r}
	}
	for _, t := range s.access {
		t.enqueue(e)
	}
}

var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// TargetStatus is one target's state and totals. Totals count lines and
// never go backwards while the Manager lives, across Apply too (a target
// keeps them by name).
type TargetStatus struct {
	// Name is the target's name (observe.logs[].name).
	Name string `json:"name"`
	// To is file, syslog or journald.
	To string `json:"to"`
	// Where is the file's path, "udp://ADDRESS" or "tcp://ADDRESS", or
	// "journald".
	Where string `json:"where"`
	// Streams are the streams the target takes (access, daemon).
	Streams []string `json:"streams"`
	// Written counts lines handed whole to the file (write(2) returned),
	// the socket (a datagram sent, or the bytes taken by the kernel over
	// TCP) or the journal.
	Written uint64 `json:"written"`
	// Dropped counts lines lost: DroppedQueueFull plus DroppedFailed.
	Dropped uint64 `json:"dropped"`
	// DroppedQueueFull counts lines refused because the queue was full
	// (the target was slower than the traffic, or could not write).
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	// DroppedFailed counts lines taken from the queue but not written: a
	// failed write, a UDP send refused, the journal absent, or still
	// queued when the drain deadline of Close or Apply passed.
	DroppedFailed uint64 `json:"dropped_failed"`
	// WriteErrors counts failed attempts: opens, connects, writes.
	WriteErrors uint64 `json:"write_errors"`
	// LastError is the latest failure ("" when none yet) and LastErrorAt
	// when it happened; both stay after a recovery.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failing is true while the latest attempt failed.
	Failing bool `json:"failing"`
	// Queued is how many lines wait now; QueueSize its bound.
	Queued    int `json:"queued"`
	QueueSize int `json:"queue_size"`
	// Connected (syslog over TCP only) is true while a connection is up.
	Connected bool `json:"connected"`
	// Reconnects (syslog) counts connections made after the first.
	Reconnects uint64 `json:"reconnects"`
	// Rotations (file) counts rotations (and truncations with keep 0).
	Rotations uint64 `json:"rotations"`
}

// SetHostname sets the HOSTNAME of syslog messages and the host of file
// lines from now on (the node name, which a reload may change); "" is the
// machine's host name.
func (m *Manager) SetHostname(name string) {
	if name == "" {
		name, _ = os.Hostname()
	}
	name = syslogHeaderField(name, 255)
	m.host.Store(&name)
}

func (m *Manager) hostname() string { return *m.host.Load() }

// Status returns every target's state in configuration order (after
// Close: their final totals).
func (m *Manager) Status() []TargetStatus {
	m.mu.RLock()
	s := m.set
	m.mu.RUnlock()
	out := make([]TargetStatus, 0, len(s.all))
	for _, t := range s.all {
		c := t.c
		st := TargetStatus{
			Name: t.cfg.Name, To: t.cfg.To, Where: t.where, Streams: slices.Clone(t.cfg.Streams),
			Written:          c.written.Load(),
			DroppedQueueFull: c.droppedFull.Load(),
			DroppedFailed:    c.droppedFailed.Load(),
			WriteErrors:      c.writeErrors.Load(),
			Queued:           len(t.q),
			QueueSize:        cap(t.q),
			Connected:        c.connected.Load(),
			Reconnects:       c.reconnects.Load(),
			Rotations:        c.rotations.Load(),
		}
		if p := t.prev.Load(); p != nil {
			st.Queued += len(p.q)
		}
		st.Dropped = st.DroppedQueueFull + st.DroppedFailed
		st.Failing = c.failing.Load()
		c.mu.Lock()
		st.LastError, st.LastErrorAt = c.lastErr, c.errAt
		c.mu.Unlock()
		out = append(out, st)
	}
	return out
}
