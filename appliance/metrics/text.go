package metrics

import (
	"bytes"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// textSink writes the samples of a scrape straight into the text
// exposition format (version 0.0.4), the format Prometheus and every
// scraper without native histograms negotiate: no client_model struct
// per sample, no per-sample allocation, so a scrape leaves little
// garbage for the collector to chase while the proxy runs beside it.
// Rows are written as they come and sorted afterwards by reference, in
// the registry's order (families by name, samples by label values);
// TestTextAsRegistry holds the output to expfmt's text of the registry's
// families, byte for byte.
type textSink struct {
	buf  []byte
	fams map[*metricDesc]*textFam
	list []*textFam
}

type textFam struct {
	d    *metricDesc
	t    dto.MetricType
	rows []textRow
}

// textRow is one sample's (or one histogram's) lines in the sink's buf;
// labels are its values in d.labels' order, kept to sort by.
type textRow struct {
	labels     []string
	start, end int
}

var textPool = sync.Pool{New: func() any {
	return &textSink{buf: make([]byte, 0, 64<<10), fams: map[*metricDesc]*textFam{}}
}}

// reset readies s for the next scrape; its families stay (the
// descriptions are fixed), with no rows.
func (s *textSink) reset() {
	s.buf = s.buf[:0]
	for _, f := range s.list {
		clear(f.rows) // let the label slices go
		f.rows = f.rows[:0]
	}
}

func (s *textSink) family(d *metricDesc, t dto.MetricType) *textFam {
	f := s.fams[d]
	if f == nil {
		f = &textFam{d: d, t: t}
		s.fams[d] = f
		s.list = append(s.list, f)
	}
	return f
}

func (s *textSink) sample(d *metricDesc, t dto.MetricType, v float64, labels []string) {
	f := s.family(d, t)
	start := len(s.buf)
	s.buf = appendSeries(s.buf, d, "", labels, "", 0)
	s.buf = appendValue(s.buf, v)
	f.rows = append(f.rows, textRow{labels: labels, start: start, end: len(s.buf)})
}

func (s *textSink) histogram(d *metricDesc, count uint64, sum float64, bounds []float64, cum []uint64, labels []string) {
	f := s.family(d, dto.MetricType_HISTOGRAM)
	start := len(s.buf)
	order := sortedBounds(bounds)
	inf := false
	for _, i := range order {
		s.buf = appendSeries(s.buf, d, "_bucket", labels, "le", bounds[i])
		s.buf = appendValue(s.buf, float64(cum[i]))
		inf = inf || math.IsInf(bounds[i], +1)
	}
	if !inf {
		s.buf = appendSeries(s.buf, d, "_bucket", labels, "le", math.Inf(+1))
		s.buf = appendValue(s.buf, float64(count))
	}
	s.buf = appendSeries(s.buf, d, "_sum", labels, "", 0)
	s.buf = appendValue(s.buf, sum)
	s.buf = appendSeries(s.buf, d, "_count", labels, "", 0)
	s.buf = appendValue(s.buf, float64(count))
	f.rows = append(f.rows, textRow{labels: labels, start: start, end: len(s.buf)})
}

// sortedBounds is the order of bounds from the lowest (the histograms'
// bounds are ascending already; then no allocation).
func sortedBounds(bounds []float64) []int {
	if len(bounds) <= len(ascending) && slices.IsSorted(bounds) {
		return ascending[:len(bounds)]
	}
	order := make([]int, len(bounds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case bounds[a] < bounds[b]:
			return -1
		case bounds[a] > bounds[b]:
			return 1
		}
		return 0
	})
	return order
}

var ascending = func() []int {
	a := make([]int, 64)
	for i := range a {
		a[i] = i
	}
	return a
}()

// appendSeries appends name+suffix and its labels in the order of their
// names (the registry's), with one more label (le) when extra is set.
// Our names are all of Prometheus' legacy alphabet (descriptions are
// fixed), so they need no quoting.
func appendSeries(b []byte, d *metricDesc, suffix string, labels []string, extra string, extraValue float64) []byte {
	b = append(b, d.name...)
	b = append(b, suffix...)
	if len(labels) == 0 && extra == "" {
		return b
	}
	sep := byte('{')
	for _, i := range d.sorted {
		b = append(b, sep)
		b = append(b, d.labels[i]...)
		b = append(b, '=', '"')
		b = appendEscaped(b, labels[i], true)
		b = append(b, '"')
		sep = ','
	}
	if extra != "" {
		b = append(b, sep)
		b = append(b, extra...)
		b = append(b, '=', '"')
		b = appendFloat(b, extraValue)
		b = append(b, '"')
	}
	return append(b, '}')
}

func appendValue(b []byte, v float64) []byte {
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

// appendFloat is expfmt's writeFloat.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendEscaped escapes as expfmt does: backslash and newline, and the
// double quote inside a label value.
func appendEscaped(b []byte, s string, quoted bool) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quoted:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// writeTo writes the families in the order of their names, each with its
// HELP and TYPE lines and its rows in the order of their label values;
// other's families (the runtime's, text from expfmt) go in their places by
// name.
func (s *textSink) writeTo(w *bytes.Buffer, other []*dto.MetricFamily) error {
	slices.SortFunc(s.list, func(a, b *textFam) int { return strings.Compare(a.d.name, b.d.name) })
	sortFamilies(other)
	for _, f := range s.list {
		if len(f.rows) == 0 { // none this scrape: no family
			continue
		}
		for len(other) > 0 && other[0].GetName() < f.d.name {
			if err := writeFamily(w, other[0]); err != nil {
				return err
			}
			other = other[1:]
		}
		d := f.d
		slices.SortStableFunc(f.rows, func(a, b textRow) int {
			for _, i := range d.sorted {
				if c := strings.Compare(a.labels[i], b.labels[i]); c != 0 {
					return c
				}
			}
			return 0
		})
		w.WriteString("# HELP ")
		w.WriteString(d.name)
		w.WriteByte(' ')
		w.Write(appendEscaped(w.AvailableBuffer(), d.help, false))
		w.WriteString("\n# TYPE ")
		w.WriteString(d.name)
		w.WriteString(typeNames[f.t])
		for _, r := range f.rows {
			w.Write(s.buf[r.start:r.end])
		}
	}
	for _, f := range other {
		if err := writeFamily(w, f); err != nil {
			return err
		}
	}
	return nil
}

func writeFamily(w *bytes.Buffer, f *dto.MetricFamily) error {
	if len(f.Metric) == 0 {
		return nil
	}
	_, err := expfmt.MetricFamilyToText(w, f)
	return err
}

var typeNames = map[dto.MetricType]string{
	dto.MetricType_COUNTER:   " counter\n",
	dto.MetricType_GAUGE:     " gauge\n",
	dto.MetricType_HISTOGRAM: " histogram\n",
}

// textHandler serves /metrics: the text format from a textSink when the
// client negotiates it (and filters no names), anything else through
// promhttp with the gatherer (same families, same bytes in text).
type textHandler struct {
	g    gatherer
	slow http.Handler
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h textHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	if format.FormatType() != expfmt.TypeTextPlain || (r.URL != nil && r.URL.Query().Has("name[]")) {
		h.slow.ServeHTTP(w, r)
		return
	}
	rest, err := h.g.runtime.Gather()
	if err != nil {
		h.g.srv.log.Warn("gathering the runtime's metrics", "err", err)
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	s := textPool.Get().(*textSink)
	defer func() { s.reset(); textPool.Put(s) }()
	emit(s, h.g.srv.stats())
	out := bufPool.Get().(*bytes.Buffer)
	defer func() { out.Reset(); bufPool.Put(out) }()
	if err := s.writeTo(out, rest); err != nil {
		h.g.srv.log.Warn("writing /metrics", "err", err)
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Add("Vary", "Accept")
	w.Header().Set("Content-Type", string(format))
	w.Write(out.Bytes())
}

var _ prometheus.Gatherer = gatherer{}
