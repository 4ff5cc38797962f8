package logs

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// selfKey marks, in a record's context, a message the Manager logs about
// one of its targets (its value is the target's name): the daemon handler
// does not hand such a record to that target, so a failing target's
// reports cannot feed it.
type selfKey struct{}

// Handler returns a slog.Handler that passes every record to next and
// also, as a line of the daemon stream, to every target taking it, without
// blocking (a full queue drops the line, counted). A record is enabled
// when next enables it: the targets get what next gets. The line is the
// message and the attributes as slog's text handler writes them, without
// time and level (syslog and files carry those), e.g.
// `vrrp state changed instance=vi1 from=BACKUP to=MASTER`; the level
// becomes the syslog severity (debug, info, warning, err).
func (m *Manager) Handler(next slog.Handler) slog.Handler {
	h := &daemonHandler{m: m, next: next, fmt: &textFormatter{}}
	h.text = slog.NewTextHandler(h.fmt, &slog.HandlerOptions{
		Level: slog.Level(-1 << 20), // next decides
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return h
}

type daemonHandler struct {
	m    *Manager
	next slog.Handler
	text slog.Handler
	fmt  *textFormatter
}

// textFormatter receives the text handler's output for one record at a
// time (its mutex is held across the Handle call that writes it).
type textFormatter struct {
	mu  sync.Mutex
	buf []byte
}

func (f *textFormatter) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (h *daemonHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *daemonHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	h.m.daemon(ctx, h, r)
	return err
}

func (h *daemonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &daemonHandler{m: h.m, next: h.next.WithAttrs(as), text: h.text.WithAttrs(as), fmt: h.fmt}
}

func (h *daemonHandler) WithGroup(name string) slog.Handler {
	return &daemonHandler{m: h.m, next: h.next.WithGroup(name), text: h.text.WithGroup(name), fmt: h.fmt}
}

// unwrap returns the handler beneath a daemon handler (so that the
// Manager's own logger never goes through one), or h itself.
func unwrap(h slog.Handler) slog.Handler {
	if d, ok := h.(*daemonHandler); ok {
		return d.next
	}
	return h
}

// daemon formats r as a daemon line and queues it on every target taking
// the daemon stream (but the one r reports about).
//
// The record is formatted before the Manager's lock is taken (a LogValuer
// that logs would otherwise take it twice).
func (m *Manager) daemon(ctx context.Context, h *daemonHandler, r slog.Record) {
	if !m.daemonOn.Load() {
		return
	}
	self, _ := ctx.Value(selfKey{}).(string)
	// Resolve LogValuers before taking the formatter's lock: one that
	// logs would otherwise take it twice.
	rr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		rr.AddAttrs(resolve(a))
		return true
	})
	r = rr
	h.fmt.mu.Lock()
	h.fmt.buf = h.fmt.buf[:0]
	herr := h.text.Handle(ctx, r)
	line := daemonLine(h.fmt.buf)
	h.fmt.mu.Unlock()
	if herr != nil {
		return
	}
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	e := entry{line: line, at: at.UnixNano(), sev: levelSeverity(r.Level), stream: streamDaemon}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	for _, t := range m.set.daemon {
		if t.cfg.Name != self {
			t.enqueue(e)
		}
	}
}

// resolve resolves a's LogValuers, in groups too.
func resolve(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		g := a.Value.Group()
		out := make([]slog.Attr, len(g))
		for i, m := range g {
			out[i] = resolve(m)
		}
		a.Value = slog.GroupValue(out...)
	}
	return a
}

// daemonLine turns the text handler's `msg="text" k=v` into a fresh
// `text k=v`, at most MaxLine bytes.
func daemonLine(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimPrefix(b, []byte("msg="))
	var msg []byte
	if len(b) > 0 && b[0] == '"' {
		if q, err := strconv.QuotedPrefix(string(b)); err == nil {
			if u, err := strconv.Unquote(q); err == nil {
				msg = append(msg, u...)
				b = b[len(q):]
			}
		}
	}
	msg = append(msg, b...)
	for i, c := range msg {
		if c == '\n' || c == '\r' {
			msg[i] = ' '
		}
	}
	return bytes.Clone(cutUTF8(bytes.TrimLeft(msg, " "), MaxLine))
}

// levelSeverity maps a slog level to a syslog severity.
func levelSeverity(l slog.Level) severity {
	switch {
	case l >= slog.LevelError:
		return sevErr
	case l >= slog.LevelWarn:
		return sevWarning
	case l >= slog.LevelInfo:
		return sevInfo
	}
	return sevDebug
}
