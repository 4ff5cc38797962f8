package metrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestMetricsGzip: a scraper that accepts gzip gets the same text
// compressed (and Vary), one that does not gets it plain; HEAD has no body.
func TestMetricsGzip(t *testing.T) {
	s := New(fullSnapshot, quiet())
	get := func(method, enc string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/metrics", nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s /metrics (Accept-Encoding %q): %d", method, enc, rec.Code)
		}
		return rec
	}
	plain := get("GET", "")
	if ce := plain.Header().Get("Content-Encoding"); ce != "" {
		t.Fatalf("without Accept-Encoding: Content-Encoding %q", ce)
	}
	for _, enc := range []string{"gzip", "deflate, gzip;q=0.5", "GZIP"} {
		rec := get("GET", enc)
		if rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding") {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, Vary %q", enc, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		// The process figures and the listener's count of requests
		// differ between two scrapes; the snapshot's may not.
		want, got := halbLines(plain.Body.String()), halbLines(string(text))
		if want != got || want == "" {
			t.Fatalf("gzipped text differs from the plain one:\n%s\n---\n%s", got, want)
		}
	}
	if rec := get("GET", "gzip;q=0, identity"); rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("gzip;q=0: Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
	if rec := get("HEAD", "gzip"); rec.Body.Len() != 0 {
		t.Fatalf("HEAD with gzip: %d bytes of body", rec.Body.Len())
	}
}

func halbLines(text string) string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(l, "halb_") && !strings.HasPrefix(l, "halb_observe_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type countingCollector struct {
	n int
	m prometheus.Metric
}

func (c *countingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c *countingCollector) Collect(ch chan<- prometheus.Metric) {
	c.n++
	ch <- c.m
}

// TestCachedCollector: the wrapped collector runs at most once per every;
// its metrics are sent again in between.
func TestCachedCollector(t *testing.T) {
	d := prometheus.NewDesc("x", "x", nil, nil)
	inner := &countingCollector{m: prometheus.MustNewConstMetric(d, prometheus.GaugeValue, 1)}
	now := t0
	cc := &cachedCollector{c: inner, every: time.Second, now: func() time.Time { return now }}
	collect := func() int {
		ch := make(chan prometheus.Metric, 8)
		cc.Collect(ch)
		close(ch)
		n := 0
		for range ch {
			n++
		}
		return n
	}
	for i, step := range []struct {
		advance time.Duration
		calls   int
	}{{0, 1}, {500 * time.Millisecond, 1}, {499 * time.Millisecond, 1}, {time.Millisecond, 2}, {-time.Hour, 3}} {
		now = now.Add(step.advance)
		if got := collect(); got != 1 {
			t.Fatalf("step %d: %d metrics, want 1", i, got)
		}
		if inner.n != step.calls {
			t.Fatalf("step %d: the collector ran %d times, want %d", i, inner.n, step.calls)
		}
	}
}

// TestFamiliesAsRegistry: /metrics builds its families without the
// registry (famSink); their text is the registry's, byte for byte, for a
// node with everything, a bigger one and an empty one.
func TestFamiliesAsRegistry(t *testing.T) {
	for name, snap := range map[string]Snapshot{"full": fullSnapshot(), "big": bigSnapshot(3, 2, 4), "empty": {}} {
		s := New(func() Snapshot { return snap }, quiet())
		reg, err := s.Registry().Gather()
		if err != nil {
			t.Fatalf("%s: registry: %v", name, err)
		}
		fs := newFamSink()
		emit(fs, s.stats())
		want, got := familiesText(t, reg), familiesText(t, fs.families())
		if got != want || !strings.Contains(want, "halb_up 1") {
			t.Errorf("%s: the families differ from the registry's:\n%s\n--- registry:\n%s", name, got, want)
		}
	}
}

// familiesText is the text exposition of the halb_ families.
func familiesText(t *testing.T, fams []*dto.MetricFamily) string {
	var b strings.Builder
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "halb_") {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestTextAsRegistry: /metrics in the text format is written straight
// from the snapshot (textSink); it is the registry's families in
// expfmt's text, byte for byte, runtime families included in their
// places, for a node with everything, a bigger one and an empty one; a
// client that asks for protobuf or filters names gets promhttp's answer
// with the same families.
func TestTextAsRegistry(t *testing.T) {
	for name, snap := range map[string]Snapshot{"full": fullSnapshot(), "big": bigSnapshot(3, 2, 4), "empty": {}} {
		s := New(func() Snapshot { return snap }, quiet())
		fams, err := s.Registry().Gather()
		if err != nil {
			t.Fatalf("%s: registry: %v", name, err)
		}
		var want strings.Builder
		for _, f := range fams {
			if _, err := expfmt.MetricFamilyToText(&want, f); err != nil {
				t.Fatal(err)
			}
		}
		get := func(accept, target string) (string, http.Header) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", target, nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			s.metric.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("%s: GET %s: %d %s", name, target, rec.Code, rec.Body)
			}
			return rec.Body.String(), rec.Header()
		}
		got, h := get("", "/metrics")
		// The runtime's figures move between two gatherings: compare the
		// lines of our families exactly and the runtime's by name.
		if ours(got) != ours(want.String()) || !strings.Contains(got, "halb_up 1") {
			t.Errorf("%s: /metrics differs from the registry's text:\n%s\n--- registry:\n%s", name, ours(got), ours(want.String()))
		}
		if names(got) != names(want.String()) {
			t.Errorf("%s: /metrics series\n%s\n--- registry's:\n%s", name, names(got), names(want.String()))
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if got, _ := get("", "/metrics?name[]=halb_up"); strings.TrimSpace(got) != "# HELP halb_up "+mUp.help+"\n# TYPE halb_up gauge\nhalb_up 1" {
			t.Errorf("%s: name[]=halb_up: %q", name, got)
		}
		pb, h := get("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "/metrics")
		if !strings.Contains(h.Get("Content-Type"), "protobuf") || !strings.Contains(pb, "halb_up") {
			t.Errorf("%s: protobuf answer %q", name, h.Get("Content-Type"))
		}
	}
}

// ours is the text's halb_ lines.
func ours(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.Contains(line, "halb_") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// names is the text's lines without their values, in order.
func names(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestTextEscapes: label values and help with backslashes, quotes and
// newlines, special and large values, and unsorted bounds come out as
// expfmt writes them.
func TestTextEscapes(t *testing.T) {
	g := &metricDesc{name: "halb_test_gauge", help: "a \\ help\nwith \"quotes\"", labels: []string{"b", "a"}, sorted: []int{1, 0}}
	h := &metricDesc{name: "halb_test_hist", help: "h", labels: []string{"x"}, sorted: []int{0}}
	fs, ts := newFamSink(), textPool.Get().(*textSink)
	for _, sk := range []sink{fs, ts} {
		sk.sample(g, dto.MetricType_GAUGE, 1.5e6, []string{"x\"y", "a\\b\nc"})
		sk.sample(g, dto.MetricType_GAUGE, math.NaN(), []string{"a", "b"})
		sk.sample(g, dto.MetricType_GAUGE, math.Inf(-1), []string{"a", "a"})
		sk.sample(g, dto.MetricType_GAUGE, -1, []string{"", "z"})
		sk.histogram(h, 7, 0.25, []float64{1, 0.1, 2.5e-4}, []uint64{5, 1, 0}, []string{"q"})
		sk.histogram(h, 9, 1e9, []float64{0.1, math.Inf(1)}, []uint64{3, 9}, []string{"p"})
	}
	var want strings.Builder
	for _, f := range fs.families() {
		if _, err := expfmt.MetricFamilyToText(&want, f); err != nil {
			t.Fatal(err)
		}
	}
	var got bytes.Buffer
	if err := ts.writeTo(&got, nil); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("text\n%s\n--- expfmt:\n%s", got.String(), want.String())
	}
}
