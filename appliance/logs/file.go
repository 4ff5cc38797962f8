package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"halb/appliance/config"
)

// fileSink appends lines to a file and rotates it by size.
//
//   - The file is opened O_APPEND, created 0640 with its missing parent
//     directories (0750).
//   - Before a line that would take the file beyond maxSize, the file is
//     rotated: PATH.(keep-1) to PATH.keep, ..., PATH to PATH.1, and a new
//     PATH begun; with keep 0 the file is truncated instead. Lines are
//     written whole by the one writer goroutine, so no line is split or
//     lost across a rotation. A line longer than maxSize goes alone into a
//     file.
//   - About once a second the sink stats PATH: when it is gone or is
//     another file (removed or renamed by someone else, as logrotate does)
//     it reopens PATH; it also takes the size from the open file then, so
//     an external truncation (copytruncate) is noticed.
//   - There is no fsync: a line is written when write(2) returned.
//   - A failed open is retried with backoff while the batch waits (the
//     queue fills, then drops); a failed write drops the lines it did not
//     write (a partial line is cut off again) and reopens the file next.
type fileSink struct {
	t       *target
	path    string
	maxSize int64
	keep    int

	f    *os.File
	size int64
	buf  []byte
	back backoff
}

func newFileSink(t *target, cfg config.LogTarget) (*fileSink, error) {
	if !filepath.IsAbs(cfg.Path) {
		return nil, fmt.Errorf("path %q is not absolute", cfg.Path)
	}
	s := &fileSink{t: t, path: cfg.Path, maxSize: cfg.MaxSize, keep: cfg.Kept(),
		back: backoff{min: t.m.opts.backoffMin, max: t.m.opts.backoffMax}}
	if s.maxSize <= 0 {
		s.maxSize = config.DefaultLogMaxSize
	}
	// Open now, so that a path that cannot be written is an error of New
	// or Apply, not a silent drop.
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return fmt.Errorf("create directory of %s: %w", s.path, err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("%s is not a regular file", s.path)
	}
	s.f, s.size = f, st.Size()
	return nil
}

func (s *fileSink) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// tick reopens the file when PATH no longer names it, and resyncs size.
func (s *fileSink) tick() {
	if s.f == nil {
		return
	}
	fst, err := s.f.Stat()
	if err != nil {
		s.close()
		return
	}
	pst, err := os.Stat(s.path)
	if err != nil || !os.SameFile(fst, pst) {
		s.close() // the next batch opens PATH anew
		return
	}
	s.size = fst.Size()
}

func (s *fileSink) deliver(ctx context.Context, batch []entry) {
	c := s.t.c
	force := false // a rotation failed: write beyond max_size rather than lose lines
	for len(batch) > 0 {
		if ctx.Err() != nil { // past the drain deadline
			c.droppedFailed.Add(uint64(len(batch)))
			return
		}
		if s.f == nil {
			if err := s.open(); err != nil {
				if !s.t.retry(ctx, &s.back, err, batch) {
					return
				}
				continue
			}
			s.back.reset()
		}
		// Gather whole lines up to the rotation point.
		s.buf = s.buf[:0]
		n := 0
		for n < len(batch) {
			before := len(s.buf)
			s.buf = appendFileLine(s.buf, &batch[n], s.t.m.hostname())
			if !force && s.size+int64(len(s.buf)) > s.maxSize && s.size+int64(before) > 0 {
				s.buf = s.buf[:before]
				break
			}
			n++
		}
		if n > 0 {
			w, err := s.f.Write(s.buf)
			s.size += int64(w)
			if err != nil {
				// Count the lines written whole; cut a partial one off.
				whole, off := 0, 0
				for i := range n {
					l := len(appendFileLine(nil, &batch[i], s.t.m.hostname()))
					if off+l > w {
						break
					}
					off += l
					whole++
				}
				if off < w {
					if s.f.Truncate(s.size-int64(w-off)) == nil {
						s.size -= int64(w - off)
					}
				}
				c.written.Add(uint64(whole))
				c.droppedFailed.Add(uint64(n - whole))
				if c.fail(fmt.Errorf("write %s: %w", s.path, err), time.Now()) {
					s.t.logf(slog.LevelWarn, "log target failing: lines are dropped", "err", err)
				}
				s.close()
				batch = batch[n:]
				continue
			}
			c.written.Add(uint64(n))
			if c.ok() {
				s.t.logf(slog.LevelInfo, "log target writing again")
			}
			batch = batch[n:]
			force = false
		}
		if len(batch) > 0 {
			if err := s.rotate(); err != nil {
				if c.fail(err, time.Now()) {
					s.t.logf(slog.LevelWarn, "log target cannot rotate", "err", err)
				}
				// Write to PATH beyond max_size rather than lose lines;
				// the next batch tries again.
				force = true
			}
		}
	}
}

// rotate renames PATH.(keep-1)..PATH.1 one up, PATH to PATH.1, and opens
// a new PATH; keep 0 truncates PATH.
func (s *fileSink) rotate() error {
	s.t.c.rotations.Add(1)
	if s.keep <= 0 {
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("truncate %s: %w", s.path, err)
		}
		s.size = 0
		return nil
	}
	s.close()
	for i := s.keep - 1; i >= 1; i-- {
		from := s.path + "." + strconv.Itoa(i)
		if err := os.Rename(from, s.path+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rotate %s: %w", from, err)
		}
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	return s.open()
}
