package metrics

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rates on the stats page are the change of the counters since an
// earlier view: the sampler keeps the counters of recent views (at most
// one sample a second, the last maxSamples), and a view's rates are
// measured against the newest sample at least minRateWindow old. Nothing
// samples while nobody looks; the first view shows no rates.
const (
	minRateWindow = time.Second
	maxSamples    = 16
)

type sample struct {
	at time.Time
	c  map[string]int64
}

type sampler struct {
	mu      sync.Mutex
	samples []sample
}

// counts are the counters the page shows rates of.
func counts(st *Stats) map[string]int64 {
	c := make(map[string]int64, 2*len(st.Frontends)+len(st.Backends)*4)
	for _, f := range st.Frontends {
		c["f\x00"+f.Name] = f.Sessions.Total
		c["r\x00"+f.Name] = f.Requests
	}
	for _, b := range st.Backends {
		c["b\x00"+b.Name] = b.Sessions.Total
		for _, s := range b.Servers {
			c["s\x00"+b.Name+"\x00"+s.Name] = s.Sessions.Total
		}
	}
	return c
}

// fill sets st's rates from the samples and records st as one.
func (sm *sampler) fill(st *Stats) {
	now := st.Now
	cur := counts(st)
	sm.mu.Lock()
	var base *sample
	for i := len(sm.samples) - 1; i >= 0; i-- {
		if now.Sub(sm.samples[i].at) >= minRateWindow {
			base = &sm.samples[i]
			break
		}
	}
	var prev map[string]int64
	var dt float64
	if base != nil {
		prev, dt = base.c, now.Sub(base.at).Seconds()
	}
	if n := len(sm.samples); n == 0 || now.Sub(sm.samples[n-1].at) >= minRateWindow {
		sm.samples = append(sm.samples, sample{at: now, c: cur})
		if len(sm.samples) > maxSamples {
			sm.samples = append(sm.samples[:0], sm.samples[len(sm.samples)-maxSamples:]...)
		}
	}
	sm.mu.Unlock()
	if prev == nil {
		return
	}
	st.RateWindow = dt
	rate := func(key string) *float64 {
		was, ok := prev[key]
		if !ok || cur[key] < was { // new, or counters restarted
			return nil
		}
		r := float64(cur[key]-was) / dt
		return &r
	}
	for i := range st.Frontends {
		f := &st.Frontends[i]
		f.Sessions.Rate = rate("f\x00" + f.Name)
		f.RequestRate = rate("r\x00" + f.Name)
	}
	for i := range st.Backends {
		b := &st.Backends[i]
		b.Sessions.Rate = rate("b\x00" + b.Name)
		for j := range b.Servers {
			b.Servers[j].Sessions.Rate = rate("s\x00" + b.Name + "\x00" + b.Servers[j].Name)
		}
	}
}

// pageStats is a Stats for a view, with rates.
func (s *Server) pageStats() *Stats {
	st := s.stats()
	s.rates.fill(st)
	return st
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	st := s.pageStats()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(st); err != nil {
		s.log.Debug("observe: write /stats;json", "err", err)
	}
}

//go:embed stats.html
var statsHTML string

var statsTmpl = template.Must(template.New("stats").Funcs(template.FuncMap{
	"rate": func(r *float64) string {
		if r == nil {
			return "-"
		}
		return strconv.FormatFloat(*r, 'f', 1, 64)
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return dur(now.Sub(t)) + " ago"
	},
	"dur": func(sec float64) string { return dur(time.Duration(sec * float64(time.Second))) },
	"ms":  func(sec float64) string { return strconv.FormatFloat(sec*1000, 'f', 1, 64) + " ms" },
	"lower": func(s string) string {
		return map[string]string{StateUp: "up", StateDown: "down", StateDrain: "drain", StateMaint: "maint"}[s]
	},
	"state": func(i Instance) string {
		return map[string]string{"MASTER": "up", "BACKUP": "backup", "FAULT": "down"}[i.State]
	},
	"code": func(m map[string]int64, c string) int64 { return m[c] },
	"limit": func(n int64) string {
		if n == 0 {
			return "-"
		}
		return strconv.FormatInt(n, 10)
	},
	"classes": func() []string { return classes[:] },
	"deref":   func(b *bool) bool { return b != nil && *b },
	"clock":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"refresh": func() int { return refreshSeconds },
	"nonzero": nonzero,
	"join":    func(s []string) string { return strings.Join(s, ", ") },
	"expiry":  expiry,
	"certClass": func(now time.Time, c Certificate) string {
		switch {
		case c.Error != "" || !c.NotAfter.After(now):
			return "down"
		case c.ExpiresSoon:
			return "ss"
		}
		return ""
	},
	// tlsBad: a backend's TLS is verify none or did not load (red).
	"tlsBad": func(tls string) bool { return !verifies(tls) || strings.HasPrefix(tls, "ERROR") },
}).Parse(statsHTML))

// nonzero writes the non-zero counts of m by key: "timeout 9, version 3";
// "" when all are 0.
func nonzero(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] != 0 {
			parts = append(parts, k+" "+strconv.FormatInt(m[k], 10))
		}
	}
	return strings.Join(parts, ", ")
}

// expiry says when a certificate expires, as halbctl status does:
// "2027-03-05 (in 90 days)", "EXPIRES SOON: 2026-12-12 (in 7 days)",
// "EXPIRED 2026-12-01 (3 days ago)", "NOT LOADED: why".
func expiry(now time.Time, c Certificate) string {
	if c.Error != "" {
		return "NOT LOADED: " + c.Error
	}
	date := c.NotAfter.UTC().Format(time.DateOnly)
	days := int(c.NotAfter.Sub(now).Hours() / 24)
	switch {
	case !c.NotAfter.After(now):
		return fmt.Sprintf("EXPIRED %s (%d days ago)", date, -days)
	case c.ExpiresSoon:
		return fmt.Sprintf("EXPIRES SOON: %s (in %d days)", date, days)
	}
	return fmt.Sprintf("%s (in %d days)", date, days)
}

// refreshSeconds is how often the page reloads itself.
const refreshSeconds = 5

// dur writes a duration as HAProxy's stats page does: "3d4h", "2h5m",
// "4m10s", "12s", "0s".
func dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s >= 86400:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	case s >= 3600:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	}
	return fmt.Sprintf("%ds", s)
}

func (s *Server) serveHTML(w http.ResponseWriter, r *http.Request) {
	st := s.pageStats()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := statsTmpl.Execute(w, st); err != nil {
		s.log.Debug("observe: write /stats", "err", err)
	}
}
