package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"halb/appliance/api"
)

// LogRingSize is how many log records the daemon keeps in memory for
// GET /v1/logs.
const LogRingSize = 500

// logRing holds the last LogRingSize records logged, oldest overwritten.
// It keeps the records as slog gives them and formats them when asked:
// keeping one costs a copy under a lock.
type logRing struct {
	mu   sync.Mutex
	recs [LogRingSize]ringEntry
	next int // where the next record goes
	n    int // records held
}

// ringEntry is a record kept, with the attributes and groups of the
// handler that logged it (never changed once made).
type ringEntry struct {
	rec   slog.Record
	attrs []byte
	group string
}

func (l *logRing) add(e ringEntry) {
	l.mu.Lock()
	l.recs[l.next] = e
	l.next = (l.next + 1) % LogRingSize
	l.n = min(l.n+1, LogRingSize)
	l.mu.Unlock()
}

// last returns the newest n records (all when n is larger), oldest first.
func (l *logRing) last(n int) []api.LogRecord {
	l.mu.Lock()
	n = min(max(n, 0), l.n)
	es := make([]ringEntry, n)
	for i := range n {
		es[i] = l.recs[(l.next-n+i+LogRingSize)%LogRingSize]
	}
	l.mu.Unlock()
	out := make([]api.LogRecord, n)
	for i, e := range es {
		b := slices.Clone(e.attrs)
		e.rec.Attrs(func(a slog.Attr) bool {
			b = appendAttr(b, e.group, a)
			return true
		})
		out[i] = api.LogRecord{Time: e.rec.Time, Level: e.rec.Level.String(), Message: e.rec.Message, Attrs: string(b)}
	}
	return out
}

// ringHandler is a slog.Handler that hands each record to the handler it
// wraps and keeps a copy in a ring. Values that may change after the call
// (any value other than a string, number, bool, duration or time, and
// LogValuers) are kept as their text at the time of the call.
type ringHandler struct {
	inner slog.Handler
	ring  *logRing
	attrs []byte // the attributes of WithAttrs, formatted
	group string // the groups of WithGroup, "a.b."
}

func newRingHandler(inner slog.Handler, ring *logRing) *ringHandler {
	return &ringHandler{inner: inner, ring: ring}
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.inner.Handle(ctx, r)
	frozen := true
	r.Attrs(func(a slog.Attr) bool {
		frozen = isFrozen(a.Value)
		return frozen
	})
	var rec slog.Record
	if frozen {
		rec = r.Clone()
	} else {
		rec = slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			rec.AddAttrs(freeze(a))
			return true
		})
	}
	h.ring.add(ringEntry{rec: rec, attrs: h.attrs, group: h.group})
	return err
}

// isFrozen reports whether v cannot change after it was logged.
func isFrozen(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindAny, slog.KindLogValuer:
		return false
	case slog.KindGroup:
		for _, a := range v.Group() {
			if !isFrozen(a.Value) {
				return false
			}
		}
	}
	return true
}

// freeze returns a with a value that cannot change: a LogValuer
// resolved, any other value of kind Any as its text.
func freeze(a slog.Attr) slog.Attr {
	if a.Equal(slog.Attr{}) {
		return a // dropped when formatted
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindAny:
		return slog.String(a.Key, anyText(v.Any()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = freeze(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func anyText(x any) string {
	switch x := x.(type) {
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(x)
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.inner = h.inner.WithAttrs(as)
	h2.attrs = append([]byte(nil), h.attrs...)
	for _, a := range as {
		h2.attrs = appendAttr(h2.attrs, h.group, a)
	}
	return &h2
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.inner = h.inner.WithGroup(name)
	h2.group = h.group + name + "."
	return &h2
}

// appendAttr appends " key=value" (no space first in an empty b) as
// slog's text handler writes it: a group's attributes as group.key, a
// value quoted when it needs to be.
func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range v.Group() {
			b = appendAttr(b, prefix, ga)
		}
		return b
	}
	if len(b) > 0 {
		b = append(b, ' ')
	}
	b = appendText(append(b, prefix...), a.Key)
	b = append(b, '=')
	switch v.Kind() {
	case slog.KindString:
		return appendText(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return append(b, v.Duration().String()...)
	case slog.KindTime:
		return v.Time().AppendFormat(b, time.RFC3339Nano)
	}
	return appendText(b, anyText(v.Any()))
}

// appendText appends s, quoted when empty or when it holds a space, '=',
// '"' or a character that is not printable.
func appendText(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < utf8.RuneSelf {
			if !plainASCII[c] {
				return strconv.AppendQuote(b, s)
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.AppendQuote(b, s)
		}
		i += n - 1
	}
	return append(b, s...)
}

// plainASCII marks the ASCII characters a value may hold unquoted.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = c != '=' && c != '"'
	}
	return t
}()

// Logger returns the daemon's logger: the one of Options, teed into the
// records kept for GET /v1/logs.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// Logs returns the newest n log records kept (at most LogRingSize),
// oldest first.
func (d *Daemon) Logs(n int) []api.LogRecord { return d.logs.last(n) }
