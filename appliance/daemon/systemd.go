package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
)

// SdNotify sends a state string to systemd; a no-op when not run by systemd
// (no NOTIFY_SOCKET).
func SdNotify(state string) {
	sd.SdNotify(false, state)
}

// Watchdog pings systemd's watchdog at half its interval until ctx ends; it
// returns at once when the unit has no WatchdogSec.
func Watchdog(ctx context.Context) {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sd.SdNotify(false, sd.SdNotifyWatchdog)
		}
	}
}

// NewLogger returns a logger for halbd: to the journal, with priorities,
// when stderr is connected to it (running under systemd); otherwise text on
// stderr.
func NewLogger(level slog.Level) *slog.Logger {
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(newJournalHandler(level))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// journalHandler formats a record as "msg key=value ..." (the journal stamps
// the time) and sends it with the record's priority.
type journalHandler struct {
	inner slog.Handler
	out   *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) { return b.buf.Write(p) }

func newJournalHandler(level slog.Level) *journalHandler {
	out := &lockedBuffer{}
	inner := slog.NewTextHandler(out, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return &journalHandler{inner: inner, out: out}
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSuffix(h.out.buf.String(), "\n")
	msg = strings.TrimPrefix(msg, "msg=")
	return journal.Send(msg, priority(r.Level), nil)
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}
