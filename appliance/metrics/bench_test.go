package metrics

import (
	"fmt"
	"net/http/httptest"
	"testing"
)

// BenchmarkScrape measures one GET /metrics (text format, plain and
// gzipped as Prometheus asks) with services × backends × servers (each
// service its own backends), all http and checked: the time and bytes of a
// scrape, and the series in it.
//
//	go test -run '^$' -bench Scrape -benchmem ./appliance/metrics
func BenchmarkScrape(b *testing.B) {
	for _, n := range [][3]int{{10, 10, 10}, {2, 2, 4}} {
		for _, gz := range []bool{false, true} {
			name := fmt.Sprintf("%dx%dx%d", n[0], n[1], n[2])
			if gz {
				name += "/gzip"
			}
			b.Run(name, func(b *testing.B) { benchScrape(b, bigSnapshot(n[0], n[1], n[2]), gz) })
		}
	}
}

func benchScrape(b *testing.B, snap Snapshot, gz bool) {
	s := New(func() Snapshot { return snap }, quiet())
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip") // as Prometheus asks
		}
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("GET /metrics: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
	fams, err := s.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	series := 0
	for _, f := range fams {
		series += len(f.Metric)
	}
	b.ReportMetric(float64(series), "series")
}

// BenchmarkStatsPage measures one GET /stats (HTML) of the same node.
func BenchmarkStatsPage(b *testing.B) {
	snap := bigSnapshot(10, 10, 10)
	s := New(func() Snapshot { return snap }, quiet())
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}
