package logs

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"halb/appliance/config"
)

// entry is one line waiting for a target. line is shared by every target
// it was handed to and never written to after.
type entry struct {
	line   []byte
	at     int64 // unix nanoseconds: when the line was made
	fields *accessFields
	sev    severity
	stream stream
}

// accessFields are the journal's structured fields of an access line,
// copied from the record (the caller reuses it) only when a journald target
// takes the access stream.
type accessFields struct {
	r Access
}

// maxBatch bounds how many lines a writer takes from its queue at once,
// and batchBytes how many bytes it gathers before one write.
const (
	maxBatch   = 512
	batchBytes = 64 << 10
)

// linger is how long a writer whose last batch held more than one line
// (lines are coming in faster than it wakes) waits before it takes the
// next: meanwhile senders only append to the queue's buffer, instead of
// waking the writer's goroutine for each line, and the next batch is one
// write (or one sendmmsg) for many lines. A writer that took a single
// line does not wait (a quiet log is written at once), nor one whose
// batch was full (the queue is backing up).
const linger = time.Millisecond

// counters are a target's totals. They live as long as the Manager and
// are shared by every incarnation of a target name, so they never go
// backwards across Apply (a reconfigured target drains its old queue while
// the new one starts, both counting here).
type counters struct {
	written, droppedFull, droppedFailed, writeErrors atomic.Uint64
	reconnects, rotations                            atomic.Uint64
	connected                                        atomic.Bool

	failing atomic.Bool // the last write or connection attempt failed

	mu      sync.Mutex // guards lastErr and errAt
	lastErr string
	errAt   time.Time
}

// fail records err; it returns true when it starts a failure streak (the
// previous attempt succeeded), which is when it is worth a log message.
func (c *counters) fail(err error, now time.Time) bool {
	c.writeErrors.Add(1)
	c.mu.Lock()
	c.lastErr, c.errAt = err.Error(), now
	c.mu.Unlock()
	return !c.failing.Swap(true)
}

// ok records a success; it returns true when it ends a failure streak.
func (c *counters) ok() bool {
	return c.failing.Load() && c.failing.Swap(false)
}

// sink is where a target's writer goroutine puts lines.
type sink interface {
	// deliver writes batch, retrying as the sink's policy says while ctx
	// lasts, and accounts for every entry of it exactly once: written, or
	// dropped (failed).
	deliver(ctx context.Context, batch []entry)
	// tick runs about once a second between batches (a file re-checks
	// its path).
	tick()
	// close releases the sink's descriptors.
	close()
}

// target is one configured log target: its queue, its writer goroutine
// and its sink.
type target struct {
	cfg            config.LogTarget
	access, daemon bool
	where          string
	q              chan entry
	c              *counters
	sink           sink
	m              *Manager

	ctx    context.Context // ends at the drain deadline after the queue is closed
	cancel context.CancelFunc
	prev   atomic.Pointer[target] // an earlier target of the same name: runs first
	done   chan struct{}          // closed when the writer has returned
}

func newTarget(m *Manager, cfg config.LogTarget, c *counters) (*target, error) {
	t := &target{
		cfg:    cfg,
		access: slices.Contains(cfg.Streams, "access"),
		daemon: slices.Contains(cfg.Streams, "daemon"),
		q:      make(chan entry, max(cfg.Queue, 1)),
		c:      c,
		m:      m,
		done:   make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	var err error
	switch cfg.To {
	case "file":
		t.where = cfg.Path
		t.sink, err = newFileSink(t, cfg)
	case "syslog":
		t.where = cfg.Transport + "://" + cfg.Address
		t.sink, err = newSyslogSink(t, cfg)
	case "journald":
		t.where = "journald"
		t.sink = &journalSink{t: t, tag: cfg.Tag}
	default:
		err = fmt.Errorf("to %q is not file, syslog or journald", cfg.To)
	}
	if err != nil {
		t.cancel()
		return nil, fmt.Errorf("log target %q: %w", cfg.Name, err)
	}
	return t, nil
}

// enqueue hands e to the writer without blocking; a full queue drops it.
func (t *target) enqueue(e entry) {
	select {
	case t.q <- e:
	default:
		t.c.droppedFull.Add(1)
	}
}

// run is the writer goroutine: it waits for the previous incarnation of
// its name, then writes batches until its queue is closed and drained (or
// the drain deadline passes: what is left is dropped and counted).
func (t *target) run() {
	defer close(t.done)
	defer t.sink.close()
	defer t.cancel()
	if p := t.prev.Load(); p != nil {
		<-p.done
		t.prev.Store(nil)
		t.sink.tick() // the old self may have rotated the file we opened
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	batch := make([]entry, 0, maxBatch)
	for {
		select {
		case e, ok := <-t.q:
			if !ok {
				return
			}
			batch = append(batch[:0], e)
			size := len(e.line)
		more:
			for len(batch) < maxBatch && size < batchBytes {
				select {
				case e, ok := <-t.q:
					if !ok {
						break more
					}
					batch = append(batch, e)
					size += len(e.line)
				default:
					break more
				}
			}
			if t.ctx.Err() != nil {
				t.c.droppedFailed.Add(uint64(len(batch)))
			} else {
				t.sink.deliver(t.ctx, batch)
			}
			clear(batch) // let the lines go
			if n := len(batch); n > 1 && n < min(maxBatch, cap(t.q)/2) && size < batchBytes {
				time.Sleep(linger)
			}
		case <-tick.C:
			t.sink.tick()
		}
	}
}

// stop closes the queue (no sender holds it: the caller took the target
// out of the published set under the Manager's write lock) and gives the
// writer drain to finish, after which it drops what is left.
func (t *target) stop(drain time.Duration) {
	close(t.q)
	time.AfterFunc(drain, t.cancel)
}

// retry records err (an open or connect failed), reports the start of a
// failure streak, and waits the next backoff; when ctx ends first it drops
// batch (counted) and returns false.
func (t *target) retry(ctx context.Context, b *backoff, err error, batch []entry) bool {
	if t.c.fail(err, time.Now()) {
		t.logf(slog.LevelWarn, "log target unreachable: lines wait, then are dropped", "err", err)
	}
	if !b.wait(ctx) {
		t.c.droppedFailed.Add(uint64(len(batch)))
		return false
	}
	return true
}

// logf reports a state change of the target on the daemon's logger. The
// record carries the target's name in its context, so the daemon handler
// does not hand it back to this target (no loop through a failing sink).
func (t *target) logf(level slog.Level, msg string, args ...any) {
	ctx := context.WithValue(context.Background(), selfKey{}, t.cfg.Name)
	t.m.log.Log(ctx, level, msg, append([]any{"target", t.cfg.Name, "to", t.where}, args...)...)
}

// journalSink sends each line to the journal with go-systemd's journal
// package; when the journal's socket is absent every line fails (dropped,
// counted, the error in Status).
type journalSink struct {
	t   *target
	tag string
}

func (s *journalSink) deliver(ctx context.Context, batch []entry) {
	for i := range batch {
		e := &batch[i]
		vars := journalVars(e, s.tag)
		if err := journal.Send(string(e.line), journal.Priority(e.sev), vars); err != nil {
			s.t.c.droppedFailed.Add(1)
			if s.t.c.fail(fmt.Errorf("journal: %w", err), time.Now()) {
				s.t.logf(slog.LevelWarn, "log target failing: lines are dropped", "err", err)
			}
			continue
		}
		s.t.c.written.Add(1)
		if s.t.c.ok() {
			s.t.logf(slog.LevelInfo, "log target writing again")
		}
	}
}

func (s *journalSink) tick()  {}
func (s *journalSink) close() {}

// journalVars are the journal fields of e beside MESSAGE and PRIORITY.
func journalVars(e *entry, tag string) map[string]string {
	vars := map[string]string{
		"SYSLOG_IDENTIFIER": tag,
		"HALB_STREAM":       e.stream.String(),
	}
	if e.fields == nil {
		return vars
	}
	r := &e.fields.r
	mode := "tcp"
	if r.HTTP {
		mode = "http"
	}
	vars["HALB_MODE"] = mode
	vars["HALB_SERVICE"] = r.Service
	vars["HALB_BACKEND"] = r.Backend
	vars["HALB_SERVER"] = r.Server
	vars["HALB_CLIENT"] = string(appendClient(nil, r.Client))
	vars["HALB_START"] = r.Start.UTC().Format(time.RFC3339Nano)
	vars["HALB_BYTES_IN"] = fmt.Sprint(r.BytesIn)
	vars["HALB_BYTES_OUT"] = fmt.Sprint(r.BytesOut)
	vars["HALB_TIME_QUEUE_MS"] = string(appendMillis(nil, r.Queue))
	vars["HALB_TIME_CONNECT_MS"] = string(appendMillis(nil, r.Connect))
	vars["HALB_TIME_TOTAL_MS"] = string(appendMillis(nil, r.Total))
	vars["HALB_TERMINATION"] = string([]byte{termChar(r.Termination[0]), termChar(r.Termination[1])})
	vars["HALB_RETRIES"] = fmt.Sprint(r.Retries)
	if r.Redispatched {
		vars["HALB_REDISPATCHED"] = "1"
	}
	if r.TLSVersion != "" {
		vars["HALB_TLS_VERSION"] = r.TLSVersion
		vars["HALB_TLS_CIPHER"] = r.TLSCipher
		vars["HALB_TLS_SNI"] = r.SNI
		vars["HALB_TIME_HANDSHAKE_MS"] = string(appendMillis(nil, r.Handshake))
	}
	if r.HTTP {
		vars["HALB_STATUS"] = fmt.Sprint(r.Status)
		vars["HALB_TIME_REQUEST_MS"] = string(appendMillis(nil, r.Request))
		vars["HALB_TIME_RESPONSE_MS"] = string(appendMillis(nil, r.Response))
		vars["HALB_METHOD"] = r.Method
		vars["HALB_HOST"] = r.Host
		vars["HALB_PATH"] = r.Path
		vars["HALB_PROTO"] = r.Proto
	}
	for k, v := range vars {
		if v == "" {
			delete(vars, k)
		}
	}
	return vars
}
