package metrics

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// famSink builds the metric families of a scrape directly, as the
// registry would from const metrics but without making, checking and
// sorting one const metric per sample first (two thirds of a scrape's
// CPU when it went through the registry). The descriptions are ours and
// fixed, so what the registry checks at every scrape (names, label
// names, label counts) holds by construction; TestFamiliesAsRegistry
// holds the output to the registry's, byte for byte.
type famSink struct {
	fams  map[*metricDesc]*dto.MetricFamily
	order []*metricDesc
	// Slabs: one allocation for many samples.
	metrics []dto.Metric
	pairs   []dto.LabelPair
	values  []float64
}

func newFamSink() *famSink { return &famSink{fams: map[*metricDesc]*dto.MetricFamily{}} }

func (f *famSink) family(d *metricDesc, t dto.MetricType) *dto.MetricFamily {
	fam := f.fams[d]
	if fam == nil {
		fam = &dto.MetricFamily{Name: &d.name, Help: &d.help, Type: t.Enum()}
		f.fams[d] = fam
		f.order = append(f.order, d)
	}
	return fam
}

func (f *famSink) metric(d *metricDesc, t dto.MetricType, labels []string) *dto.Metric {
	if len(f.metrics) == 0 {
		f.metrics = make([]dto.Metric, 256)
	}
	m := &f.metrics[0]
	f.metrics = f.metrics[1:]
	if len(f.pairs) < len(labels) {
		f.pairs = make([]dto.LabelPair, max(1024, len(labels)))
	}
	ps := f.pairs[:len(labels)]
	f.pairs = f.pairs[len(labels):]
	m.Label = make([]*dto.LabelPair, len(labels))
	for k, i := range d.sorted {
		ps[k].Name, ps[k].Value = &d.labels[i], &labels[i]
		m.Label[k] = &ps[k]
	}
	fam := f.family(d, t)
	fam.Metric = append(fam.Metric, m)
	return m
}

func (f *famSink) value(v float64) *float64 {
	if len(f.values) == 0 {
		f.values = make([]float64, 512)
	}
	p := &f.values[0]
	f.values = f.values[1:]
	*p = v
	return p
}

func (f *famSink) sample(d *metricDesc, t dto.MetricType, v float64, labels []string) {
	m := f.metric(d, t, labels)
	if t == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: f.value(v)}
	} else {
		m.Gauge = &dto.Gauge{Value: f.value(v)}
	}
}

func (f *famSink) histogram(d *metricDesc, count uint64, sum float64, bounds []float64, cum []uint64, labels []string) {
	m := f.metric(d, dto.MetricType_HISTOGRAM, labels)
	h := &dto.Histogram{SampleCount: &count, SampleSum: &sum, Bucket: make([]*dto.Bucket, len(bounds))}
	bs := make([]dto.Bucket, len(bounds))
	for i := range bounds {
		bs[i].UpperBound, bs[i].CumulativeCount = &bounds[i], &cum[i]
		h.Bucket[i] = &bs[i]
	}
	slices.SortFunc(h.Bucket, func(a, b *dto.Bucket) int {
		switch {
		case a.GetUpperBound() < b.GetUpperBound():
			return -1
		case a.GetUpperBound() > b.GetUpperBound():
			return 1
		}
		return 0
	})
	m.Histogram = h
}

// families returns the families in the order of their names, each with
// its samples in the order of their label values (as the registry sorts
// them).
func (f *famSink) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(f.order))
	for _, d := range f.order {
		fam := f.fams[d]
		slices.SortStableFunc(fam.Metric, compareLabels)
		out = append(out, fam)
	}
	sortFamilies(out)
	return out
}

func sortFamilies(fams []*dto.MetricFamily) {
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
}

func compareLabels(a, b *dto.Metric) int {
	for i := range min(len(a.Label), len(b.Label)) {
		if c := strings.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return len(a.Label) - len(b.Label)
}

// gatherer is what /metrics serves: the snapshot's families built by a
// famSink, and the runtime collectors' through a registry of their own.
type gatherer struct {
	srv     *Server
	runtime *prometheus.Registry
}

func (g gatherer) Gather() ([]*dto.MetricFamily, error) {
	fs := newFamSink()
	emit(fs, g.srv.stats())
	ours := fs.families()
	rest, err := g.runtime.Gather()
	all := append(ours, rest...)
	sortFamilies(all)
	return all, err
}
