package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// HistorySize is how many applied configs the history keeps.
const HistorySize = 20

// history keeps the last configs the daemon applied, in a directory of the
// state directory: N.yaml holds version N's bytes, index.json the entries
// (oldest first) and the last version number given, so that numbers keep
// growing after the oldest are pruned. Every file is written atomically
// and the index last: a crash leaves at worst a YAML file that no entry
// names, removed by the next record.
type history struct {
	dir string
	now func() time.Time

	mu  sync.Mutex
	idx historyIndex
}

type historyIndex struct {
	Last    int                `json:"last_version"`
	Entries []api.HistoryEntry `json:"entries"`
}

func newHistory(dir string) *history { return &history{dir: dir, now: time.Now} }

func (h *history) file(version int) string {
	return filepath.Join(h.dir, strconv.Itoa(version)+".yaml")
}

func (h *history) indexFile() string { return filepath.Join(h.dir, "index.json") }

// load reads the index. A missing directory is an empty history. An index
// that cannot be read is rebuilt from the YAML files present (their times
// from the files, their source "unknown"), so that version numbers never
// repeat; the error says what happened, for the log.
func (h *history) load() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := os.ReadFile(h.indexFile())
	switch {
	case err == nil:
		var idx historyIndex
		if err = json.Unmarshal(b, &idx); err == nil {
			h.idx = idx
			return nil
		}
		err = fmt.Errorf("config history: %s: %w", h.indexFile(), err)
	case errors.Is(err, fs.ErrNotExist):
		// No index yet; a crash before the first one was written leaves
		// at most a YAML file, which the rebuild takes.
		err = nil
	default:
		err = fmt.Errorf("config history: %w", err)
	}
	h.idx = h.rebuild()
	if err != nil {
		return fmt.Errorf("%w; rebuilt from the %d config file(s) present", err, len(h.idx.Entries))
	}
	return nil
}

// rebuild makes an index of the YAML files in the directory.
func (h *history) rebuild() historyIndex {
	var idx historyIndex
	ents, _ := os.ReadDir(h.dir) // none when the directory is missing
	for _, e := range ents {
		v, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".yaml"))
		if err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		raw, err := os.ReadFile(h.file(v))
		if err != nil {
			continue
		}
		var at time.Time
		if fi, err := e.Info(); err == nil {
			at = fi.ModTime()
		}
		idx.Entries = append(idx.Entries, api.HistoryEntry{Version: v, Time: at, Source: "unknown",
			SHA256: digest(raw), Summary: "(history index lost)"})
		idx.Last = max(idx.Last, v)
	}
	slices.SortFunc(idx.Entries, func(a, b api.HistoryEntry) int { return a.Version - b.Version })
	return idx
}

// newest returns the newest entry; ok is false for an empty history.
func (h *history) newest() (api.HistoryEntry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.idx.Entries) == 0 {
		return api.HistoryEntry{}, false
	}
	return h.idx.Entries[len(h.idx.Entries)-1], true
}

// record adds raw as a new version from source, with summary, unless it is
// the newest entry already (same bytes); it returns the version raw has in
// the history. The oldest entries beyond HistorySize are removed.
func (h *history) record(source, summary string, raw []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := digest(raw)
	if n := len(h.idx.Entries); n > 0 && h.idx.Entries[n-1].SHA256 == sum {
		return h.idx.Entries[n-1].Version, nil
	}
	if err := os.MkdirAll(h.dir, 0o750); err != nil {
		return 0, fmt.Errorf("config history: %w", err)
	}
	v := h.idx.Last + 1
	if err := config.WriteFile(h.file(v), raw, config.FileMode); err != nil {
		return 0, fmt.Errorf("config history: version %d: %w", v, err)
	}
	idx := historyIndex{Last: v, Entries: append(slices.Clone(h.idx.Entries),
		api.HistoryEntry{Version: v, Time: h.now(), Source: source, SHA256: sum, Summary: summary})}
	if n := len(idx.Entries); n > HistorySize {
		idx.Entries = idx.Entries[n-HistorySize:]
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("config history: %w", err)
	}
	if err := config.WriteFile(h.indexFile(), append(b, '\n'), config.FileMode); err != nil {
		os.Remove(h.file(v))
		return 0, fmt.Errorf("config history: %w", err)
	}
	h.idx = idx
	return v, h.prune()
}

// prune removes the YAML files no entry names.
func (h *history) prune() error {
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		return fmt.Errorf("config history: %w", err)
	}
	keep := map[string]bool{"index.json": true}
	for _, e := range h.idx.Entries {
		keep[filepath.Base(h.file(e.Version))] = true
	}
	var errs []error
	for _, e := range ents {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(h.dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config history: prune: %w", errors.Join(errs...))
	}
	return nil
}

// list returns the entries, newest first.
func (h *history) list() []api.HistoryEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.idx.Entries)
	slices.Reverse(out)
	if out == nil {
		out = []api.HistoryEntry{}
	}
	return out
}

// get returns version v's bytes and the path they were read from. A
// version the history does not keep is an error wrapping api.ErrNotFound
// that says which versions it keeps; a file whose bytes are not what was
// recorded is an error.
func (h *history) get(v int) ([]byte, string, error) {
	h.mu.Lock()
	i := slices.IndexFunc(h.idx.Entries, func(e api.HistoryEntry) bool { return e.Version == v })
	var e api.HistoryEntry
	if i >= 0 {
		e = h.idx.Entries[i]
	}
	kept := "it is empty"
	if n := len(h.idx.Entries); n > 0 {
		kept = fmt.Sprintf("it keeps versions %d to %d", h.idx.Entries[0].Version, h.idx.Entries[n-1].Version)
	}
	h.mu.Unlock()
	if i < 0 {
		return nil, "", api.Errorf(api.ErrNotFound, "config version %d is not in the history (%s)", v, kept)
	}
	path := h.file(v)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("config version %d: %w", v, err)
	}
	if digest(raw) != e.SHA256 {
		return nil, "", fmt.Errorf("config version %d: %s does not hold what was applied (sha256 %.12s, recorded %.12s)", v, path, digest(raw), e.SHA256)
	}
	return raw, path, nil
}

// forget empties the in-memory history (its directory is gone: a factory
// reset); numbering starts again at 1.
func (h *history) forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idx = historyIndex{}
}

// summarize is the one-line summary of changes kept in the history: the
// changes, "; "-separated, the last ones counted when the line would get
// long.
func summarize(changes []config.Change) string {
	if len(changes) == 0 {
		return "no changes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d change(s): ", len(changes))
	for i, c := range changes {
		s := c.String()
		if i > 0 && b.Len()+len(s) > 160 {
			fmt.Fprintf(&b, "; and %d more", len(changes)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}
