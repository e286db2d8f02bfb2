package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/briskhq/brisk/internal/slo"
)

// BenchmarkMiddleware measures the per-request cost of the HTTP
// instrumentation on a product GET: bare, metrics only, and metrics plus
// tracing at the default sampling ratio (no exporter).
func BenchmarkMiddleware(b *testing.B) {
	body := make([]byte, 350)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r.Context(), "GET /v1/products/{id}")
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	spec := slo.Default()
	tr, _ := NewTracing(context.Background(), TracingConfig{Getenv: func(string) string { return "" }})
	off, _ := NewTracing(context.Background(), TracingConfig{Disabled: true})
	log := NewLogger(io.Discard, slog.LevelInfo)
	cases := []struct {
		name string
		h    http.Handler
	}{
		{"bare", api},
		{"metrics", NewHTTP(HTTPConfig{Metrics: NewMetrics(MetricsConfig{}), SLO: spec, Tracker: slo.NewTracker(spec, nil), Tracing: off, Logger: log, AccessLogRatio: 0.01}).Middleware(api)},
		{"metrics+tracing", NewHTTP(HTTPConfig{Metrics: NewMetrics(MetricsConfig{}), SLO: spec, Tracker: slo.NewTracker(spec, nil), Tracing: tr, Logger: log, AccessLogRatio: 0.01}).Middleware(api)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest("GET", "/v1/products/42", nil)
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					c.h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// BenchmarkLone measures the telemetry of a request answered outside
// Middleware (the API's cache hits): Begin and End.
func BenchmarkLone(b *testing.B) {
	spec := slo.Default()
	tr, _ := NewTracing(context.Background(), TracingConfig{Getenv: func(string) string { return "" }})
	h := NewHTTP(HTTPConfig{Metrics: NewMetrics(MetricsConfig{Buckets: spec.Buckets()}), SLO: spec, Tracker: slo.NewTracker(spec, nil), Tracing: tr,
		Logger: NewLogger(io.Discard, slog.LevelInfo), AccessLogRatio: 0.01})
	rt := h.Route("GET /v1/products/{id}")
	req := httptest.NewRequest("GET", "/v1/products/42", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		l, ok := h.Begin(req)
		if !ok {
			b.Fatal("Begin refused a plain GET")
		}
		h.End(w, req, l, rt, http.StatusOK, 350)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
