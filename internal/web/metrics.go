package web

import (
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/slo"
)

// Metrics names the Prometheus metrics the dashboard reads. A metric that
// is not registered is shown as absent, not as zero. A gauge may be given
// as a selector of one label, `name{label="value"}`.
type Metrics struct {
	// Requests is a histogram of request durations in seconds with one
	// series per route template, method and status.
	Requests string
	// RouteLabel, MethodLabel, StatusLabel and JourneyLabel are Requests'
	// labels. The status may be a code ("503") or a class ("5xx"). The
	// route may include the method ("GET /v1/products"). The journey, when
	// present, is what objectives are computed over (else the route group
	// of the objective's journey name).
	RouteLabel, MethodLabel, StatusLabel, JourneyLabel string
	// ServerErrors is a counter of 5xx responses by route and CodeLabel
	// (the dashboard reads 503s, shed or unavailable, from it).
	ServerErrors string
	CodeLabel    string
	// InFlight is a gauge of requests being served.
	InFlight string
	// ConcurrencyLimit is a gauge of the adaptive concurrency limit.
	ConcurrencyLimit string
	// DBPoolInUse and DBPoolMax are gauges of database connections in use
	// and the pool's size.
	DBPoolInUse, DBPoolMax string
	// Goroutines is a gauge of goroutines.
	Goroutines string
	// CacheHits and CacheMisses are counters with a CacheLayerLabel label
	// ("l1", "l2", ...). When both name the same family, CacheResultLabel
	// tells hits ("hit") from misses (any other value).
	CacheHits, CacheMisses string
	CacheLayerLabel        string
	CacheResultLabel       string
	// BreakerState is a gauge of the payment circuit breaker: one series
	// per BreakerStateLabel value with the current state at 1, or one
	// series valued 0 closed, 1 half-open, 2 open.
	BreakerState      string
	BreakerStateLabel string
}

// DefaultMetrics are the names internal/telemetry and internal/cache
// register (their constants are in internal/slo).
var DefaultMetrics = Metrics{
	Requests:          slo.MetricDuration,
	RouteLabel:        "route",
	MethodLabel:       "method",
	StatusLabel:       slo.LabelStatusClass,
	JourneyLabel:      slo.LabelJourney,
	ServerErrors:      slo.MetricServerErrors,
	CodeLabel:         "code",
	InFlight:          slo.MetricInFlight,
	ConcurrencyLimit:  slo.MetricConcurrencyLimit,
	DBPoolInUse:       slo.MetricDBConns + `{state="in_use"}`,
	DBPoolMax:         slo.MetricDBMaxConns,
	Goroutines:        "go_goroutines",
	CacheHits:         slo.MetricCacheHits,
	CacheMisses:       slo.MetricCacheMisses,
	CacheLayerLabel:   "layer",
	CacheResultLabel:  "result",
	BreakerState:      slo.MetricBreakerState,
	BreakerStateLabel: "state",
}

func (m Metrics) withDefaults() Metrics {
	d := DefaultMetrics
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&m.Requests, d.Requests)
	set(&m.RouteLabel, d.RouteLabel)
	set(&m.MethodLabel, d.MethodLabel)
	set(&m.StatusLabel, d.StatusLabel)
	set(&m.JourneyLabel, d.JourneyLabel)
	set(&m.ServerErrors, d.ServerErrors)
	set(&m.CodeLabel, d.CodeLabel)
	set(&m.InFlight, d.InFlight)
	set(&m.ConcurrencyLimit, d.ConcurrencyLimit)
	set(&m.DBPoolInUse, d.DBPoolInUse)
	set(&m.DBPoolMax, d.DBPoolMax)
	set(&m.Goroutines, d.Goroutines)
	set(&m.CacheHits, d.CacheHits)
	set(&m.CacheMisses, d.CacheMisses)
	set(&m.CacheLayerLabel, d.CacheLayerLabel)
	set(&m.CacheResultLabel, d.CacheResultLabel)
	set(&m.BreakerState, d.BreakerState)
	set(&m.BreakerStateLabel, d.BreakerStateLabel)
	return m
}

// selector is a metric name with at most one label matcher.
type selector struct{ name, label, value string }

// parseSelector parses `name` or `name{label="value"}`.
func parseSelector(s string) selector {
	name, rest, ok := strings.Cut(s, "{")
	if !ok {
		return selector{name: s}
	}
	label, value, _ := strings.Cut(strings.TrimSuffix(rest, "}"), "=")
	return selector{name: name, label: strings.TrimSpace(label), value: strings.Trim(strings.TrimSpace(value), `"`)}
}

// Objective is a service level objective of one user journey.
type Objective struct {
	Name string // e.g. "checkout-latency"
	// Journey is the value of the journey label of the requests it counts;
	// without that label, the route group of the same name (see Group).
	Journey string
	Goal    float64 // share of good requests, e.g. 0.999
	// Latency is the threshold of a latency objective (a request not
	// answered 5xx is good when it took at most Latency; 5xx answers are
	// left to the availability objective); 0 makes an availability
	// objective (a request is good unless it got a 5xx).
	Latency time.Duration
}

// DefaultObjectives are the objectives of slo.yaml (slo.Default), one
// per journey and SLI.
func DefaultObjectives() []Objective {
	var out []Objective
	for _, o := range slo.Default().SLOs() {
		out = append(out, Objective{Name: o.Name, Journey: o.Journey, Goal: o.Objective, Latency: o.Threshold})
	}
	return out
}

// Route groups, in display order.
var groupOrder = []string{"all", "browse", "search", "cart", "checkout", "orders", "auth", "admin", "web", "ops", "other"}

// Group returns the route group of a route template, which may start with
// its method ("GET /v1/products/{id}"): browse, search, cart, checkout,
// orders, auth, admin, web (storefront pages, assets, dashboard), ops
// (health, metrics, docs) or other (unmatched).
func Group(route string) string {
	if _, path, ok := strings.Cut(route, " "); ok {
		route = path
	}
	if i := strings.IndexByte(route, '/'); i > 0 { // "host/path" patterns
		route = route[i:]
	}
	switch {
	case route == "" || route == "unmatched" || route == "/":
		if route == "/" {
			return "web"
		}
		return "other"
	case route == "/v1/products":
		return "search"
	case strings.HasPrefix(route, "/v1/products/"), route == "/v1/categories":
		return "browse"
	case strings.HasPrefix(route, "/v1/cart"):
		return "cart"
	case route == "/v1/checkout":
		return "checkout"
	case strings.HasPrefix(route, "/v1/orders"):
		return "orders"
	case strings.HasPrefix(route, "/v1/auth/"):
		return "auth"
	case strings.HasPrefix(route, "/v1/admin/"):
		return "admin"
	case strings.HasPrefix(route, "/v1/"):
		return "other"
	case route == "/healthz", route == "/readyz", route == "/metrics", route == "/openapi.yaml",
		strings.HasPrefix(route, "/debug/"), strings.HasPrefix(route, "/.well-known/"):
		return "ops"
	}
	return "web"
}
