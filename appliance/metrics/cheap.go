package metrics

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// processEvery is how long the process collector's figures are reused:
// reading them costs several files of /proc (among them /proc/stat for
// the boot time and /proc/self/net/netstat), a fifth of a scrape's CPU,
// for figures (CPU seconds, resident memory, descriptors) that a
// second's age does not change in meaning. Prometheus scrapes every 15 s
// by default; a scraper that asks more often gets the same process
// figures for up to a second.
const processEvery = time.Second

// cachedCollector collects c at most once per every and sends the same
// metrics in between (client_golang's process metrics are immutable
// const metrics).
type cachedCollector struct {
	c     prometheus.Collector
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	at   time.Time
	last []prometheus.Metric
}

func (cc *cachedCollector) Describe(ch chan<- *prometheus.Desc) { cc.c.Describe(ch) }

func (cc *cachedCollector) Collect(ch chan<- prometheus.Metric) {
	cc.mu.Lock()
	if now := cc.now(); cc.last == nil || now.Sub(cc.at) >= cc.every || now.Before(cc.at) {
		got := make(chan prometheus.Metric, 32)
		go func() { cc.c.Collect(got); close(got) }()
		var ms []prometheus.Metric
		for m := range got {
			ms = append(ms, m)
		}
		cc.last, cc.at = ms, now
	}
	last := cc.last
	cc.mu.Unlock()
	for _, m := range last {
		ch <- m
	}
}

// gzipPool holds writers at BestSpeed: a scrape's text compresses about
// 8:1 at that level in a third of the default level's time.
var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// gzipped serves h's answer gzip-compressed to clients that accept it.
func gzipped(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding")
		if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		if r.Method == http.MethodHead { // GET's headers, no body
			h.ServeHTTP(&gzipWriter{ResponseWriter: w, w: io.Discard}, r)
			return
		}
		gz := gzipPool.Get().(*gzip.Writer)
		defer gzipPool.Put(gz)
		gz.Reset(w)
		h.ServeHTTP(&gzipWriter{ResponseWriter: w, w: gz}, r)
		gz.Close()
	})
}

// acceptsGzip reports whether an Accept-Encoding value takes gzip (not
// with q=0).
func acceptsGzip(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

type gzipWriter struct {
	http.ResponseWriter
	w io.Writer
}

func (g *gzipWriter) WriteHeader(code int) {
	g.Header().Del("Content-Length")
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	g.Header().Del("Content-Length")
	return g.w.Write(b)
}
