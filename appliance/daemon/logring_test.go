package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// counter is a Stringer whose value changes after it is logged.
type counter struct{ n int }

func (c *counter) String() string { return fmt.Sprintf("count %d", c.n) }

// TestLogRing: the handler passes every record to the one it wraps and
// keeps the newest LogRingSize, each with its attributes as text as they
// were when logged (With, groups and every kind of value), oldest first;
// records the wrapped handler's level drops are not kept either.
func TestLogRing(t *testing.T) {
	var out bytes.Buffer
	ring := &logRing{}
	log := slog.New(newRingHandler(slog.NewTextHandler(&out, nil), ring))
	if got := ring.last(10); len(got) != 0 {
		t.Fatalf("an empty ring has %v", got)
	}
	for i := range LogRingSize + 10 {
		log.Info("filler", "i", i)
	}
	log.Debug("not at this level")
	c := &counter{n: 1}
	at := time.Date(2026, 12, 4, 10, 0, 0, 5, time.UTC)
	log.With("component", "vrrp").WithGroup("web-a").Warn("state changed",
		"from", "BACKUP", "to", "MASTER", "prio", 150, "up", true, "took", 1500*time.Millisecond,
		"ratio", 0.5, "big", uint64(1<<63), "at", at, "c", c, "err", errors.New("link eth0 down"),
		"empty", "", "quote", `say "hi"`, slog.Group("vip", "addr", "10.0.0.1/24"), slog.Attr{})
	c.n = 2
	log.Error("last")

	if n := strings.Count(out.String(), "\n"); n != LogRingSize+12 {
		t.Errorf("the wrapped handler got %d records, want %d", n, LogRingSize+12)
	}
	got := ring.last(3)
	if len(got) != 3 || got[0].Message != "filler" || got[0].Attrs != fmt.Sprintf("i=%d", LogRingSize+9) ||
		got[2].Message != "last" || got[2].Level != "ERROR" || got[2].Attrs != "" {
		t.Fatalf("the last 3: %+v", got)
	}
	r := got[1]
	want := `component=vrrp web-a.from=BACKUP web-a.to=MASTER web-a.prio=150 web-a.up=true web-a.took=1.5s web-a.ratio=0.5 ` +
		`web-a.big=9223372036854775808 web-a.at=2026-12-04T10:00:00.000000005Z web-a.c="count 1" web-a.err="link eth0 down" ` +
		`web-a.empty="" web-a.quote="say \"hi\"" web-a.vip.addr=10.0.0.1/24`
	if r.Level != "WARN" || r.Message != "state changed" || r.Attrs != want || r.Time.IsZero() {
		t.Fatalf("record:\n%+v\nwant attrs:\n%s", r, want)
	}
	all := ring.last(1000)
	if len(all) != LogRingSize || all[0].Attrs != "i=12" || all[LogRingSize-1].Message != "last" {
		t.Fatalf("all: %d records, first %+v", len(all), all[0])
	}
	for _, rec := range all {
		if rec.Message == "not at this level" {
			t.Fatal("a record below the level was kept")
		}
	}
}

// TestDaemonLogs: the daemon's own records are kept, in order.
func TestDaemonLogs(t *testing.T) {
	td := startDaemon(t, t.TempDir(), "node: {name: lb1}\n")
	var msgs []string
	// "halbd started" follows the daemon.started event startDaemon waits for.
	eventually(t, "halbd started is logged", func() bool {
		msgs = msgs[:0]
		for _, r := range td.Logs(LogRingSize) {
			msgs = append(msgs, r.Message)
		}
		return len(msgs) >= 2
	})
	if !strings.HasPrefix(msgs[0], "config applied: 1 change(s)") || msgs[1] != "halbd started" {
		t.Fatalf("the daemon's log: %q", msgs)
	}
}

// nopHandler takes every record and does nothing with it.
type nopHandler struct{}

func (nopHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (nopHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nopHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nopHandler) WithGroup(string) slog.Handler           { return h }

// BenchmarkLogRecord measures what keeping a record costs: one record of
// five attributes (as the daemon's "config applied") through the text
// handler alone, with the ring, and through the ring alone (over a
// handler that does nothing).
func BenchmarkLogRecord(b *testing.B) {
	text := slog.NewTextHandler(io.Discard, nil)
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"text", text},
		{"text+ring", newRingHandler(text, &logRing{})},
		{"nop", nopHandler{}},
		{"nop+ring", newRingHandler(nopHandler{}, &logRing{})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			log := slog.New(bc.h).With("component", "daemon")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(ctx, slog.LevelInfo, "config applied: 1 change(s)", slog.Int("changes", 1),
					slog.String("sha256", "9bf4b2e49d20962c1abbb4375c42fe1a67d3c50641949cfdfe58e0e3a3617937"),
					slog.Int("version", 7), slog.String("change", `services "web" added`))
			}
		})
	}
}
