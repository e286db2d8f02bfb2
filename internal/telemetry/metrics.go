// Package telemetry is brisk's observability: Prometheus metrics (the
// golden signals per route template, saturation of pools and limits, the
// payment client), OpenTelemetry tracing (OTLP export, otelhttp and
// otelgrpc, spans around store and payment calls) and slog logging with
// trace ids, sampled access logs and redaction of secrets.
package telemetry

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/briskhq/brisk/internal/slo"
)

// Label values for requests outside any route or journey.
const (
	Unmatched = "unmatched"
	NoJourney = "none"
)

// Metrics is brisk's Prometheus registry: Go runtime and process
// metrics, the HTTP server's golden signals and whatever else is
// registered on it (pools, limits, cache, breaker).
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec   // method, route, journey, status_class
	duration     *prometheus.HistogramVec // method, route, journey, status_class
	serverErrors *prometheus.CounterVec   // method, route, code
	inFlight     prometheus.Gauge

	mu     sync.Mutex
	routes map[routeKey]*routeMetrics // label children resolved once per route
}

// MetricsConfig configures NewMetrics.
type MetricsConfig struct {
	// Buckets are the request duration histogram's classic buckets, in
	// seconds; slo.Spec.Buckets places them around the SLO thresholds.
	// Default: the built-in spec's.
	Buckets []float64
}

// NewMetrics returns a registry with the runtime, process and HTTP metrics.
func NewMetrics(cfg MetricsConfig) *Metrics {
	if len(cfg.Buckets) == 0 {
		cfg.Buckets = slo.Default().Buckets()
	}
	labels := []string{"method", "route", slo.LabelJourney, slo.LabelStatusClass}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: slo.MetricRequests,
			Help: "HTTP requests finished, by method, route template, journey and status class.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            slo.MetricDuration,
			Help:                            "HTTP request duration in seconds, from the first handler to the last byte written.",
			Buckets:                         cfg.Buckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, labels),
		serverErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: slo.MetricServerErrors,
			Help: "HTTP responses with a 5xx status, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: slo.MetricInFlight,
			Help: "HTTP requests being served.",
		}),
		routes: map[routeKey]*routeMetrics{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.serverErrors, m.inFlight,
	)
	return m
}

// Registerer is where other packages register their metrics.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Gatherer reads the registry (for in-process views such as dashboards).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus text format, or in the
// protobuf format (with native histograms) to scrapers that ask for it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, // promhttp_* metrics about the handler itself
	})
}

// GaugeFunc registers a gauge read from f at each scrape.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) error {
	if err := m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)); err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	return nil
}

// RegisterConcurrency exports an adaptive concurrency limiter's current
// limit and the slots in use (brisk_concurrency_limit, _in_use).
func (m *Metrics) RegisterConcurrency(limit, inUse func() float64) error {
	if err := m.GaugeFunc(slo.MetricConcurrencyLimit, "Current adaptive concurrency limit of the API.", limit); err != nil {
		return err
	}
	return m.GaugeFunc(slo.MetricConcurrencyInUse, "Requests holding a concurrency limit slot.", inUse)
}

// statusClasses are the label values of status classes, by status/100.
var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(status int) int {
	c := status / 100
	if c < 1 || c > 5 {
		return 0
	}
	return c
}

// knownMethods bounds the method label: anything else is "other".
var knownMethods = map[string]string{
	"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH",
	"DELETE": "DELETE", "OPTIONS": "OPTIONS", "CONNECT": "CONNECT", "TRACE": "TRACE",
}

func methodLabel(m string) string {
	if v, ok := knownMethods[m]; ok {
		return v
	}
	return "other"
}

type routeKey struct{ method, route, journey string }

// routeMetrics are the label children of one method, route and journey,
// resolved once so that a request costs no label lookups.
type routeMetrics struct {
	key      routeKey
	children [6]atomic.Pointer[children] // by status class
	counter  *slo.Counter
}

type children struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// route returns the children of (method, route, journey). Its 2xx and
// 5xx request counters start at zero, so that error ratios exist before
// the first error; the other series appear when first used.
func (m *Metrics) route(method, route, journey string, counter *slo.Counter) *routeMetrics {
	k := routeKey{method, route, journey}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm, ok := m.routes[k]; ok {
		return rm
	}
	rm := &routeMetrics{key: k, counter: counter}
	m.requests.WithLabelValues(method, route, journey, statusClasses[2])
	m.requests.WithLabelValues(method, route, journey, statusClasses[5])
	m.routes[k] = rm
	return rm
}

func (m *Metrics) children(rm *routeMetrics, class int) *children {
	if ch := rm.children[class].Load(); ch != nil {
		return ch
	}
	k := rm.key
	ch := &children{
		requests: m.requests.WithLabelValues(k.method, k.route, k.journey, statusClasses[class]),
		duration: m.duration.WithLabelValues(k.method, k.route, k.journey, statusClasses[class]),
	}
	rm.children[class].Store(ch)
	return ch
}

// observe counts one finished request.
func (m *Metrics) observe(rm *routeMetrics, status int, d time.Duration) {
	c := statusClass(status)
	ch := m.children(rm, c)
	ch.requests.Inc()
	ch.duration.Observe(d.Seconds())
	if c == 5 {
		m.serverErrors.WithLabelValues(rm.key.method, rm.key.route, strconv.Itoa(status)).Inc()
	}
	rm.counter.Observe(status, d)
}
