// Package web is brisk's storefront and live operations dashboard, served
// by the API process itself: server-rendered html/template pages with a
// little JavaScript (no build step), content-hashed immutable assets
// embedded with go:embed, a Service Worker that caches them, and a
// dashboard at /dashboard fed by a small JSON endpoint computed in-process
// from the Prometheus registry.
//
// Catalog pages (home, category, search, product) are rendered on the
// server from catalog.Store and are public and cacheable; pages with a
// user's data (cart, checkout, orders) are shells that the page's script
// fills from the same-origin REST API with the bearer token it keeps in
// localStorage.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/slo"
)

// Config configures the storefront and the dashboard.
type Config struct {
	// Catalog renders the catalog pages.
	Catalog catalog.Store
	// Tokens verifies the bearer token of the dashboard's data endpoint,
	// which then needs the admin role. Nil leaves the dashboard open
	// (auth off).
	Tokens *auth.Tokens
	// Gatherer is read by the dashboard; nil: prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Metrics names the metrics the dashboard reads; zero fields take
	// DefaultMetrics' values.
	Metrics Metrics
	// Objectives are the SLOs whose burn rates the dashboard computes from
	// the request histograms; nil: DefaultObjectives().
	Objectives []Objective
	// SLO, when set, is the in-process SLO tracker's status (slo.Tracker's
	// Status, behind /debug/slo); the dashboard then shows it instead of
	// its own computation.
	SLO func() slo.Status
	// OnRoute, when set, is told the storefront's route pattern of each
	// request before it is served (telemetry.SetRoute labels metrics with it).
	OnRoute func(ctx context.Context, pattern string)
	// SampleInterval is how often the dashboard samples the registry
	// (default 1s).
	SampleInterval time.Duration
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// Handler serves the storefront pages, static assets, the Service Worker
// and the dashboard. Close stops its metrics sampler.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	assets  *assetSet
	pages   map[string]*template.Template
	sampler *Sampler
	cats    atomic.Pointer[categoryCache]
	catMu   sync.Mutex
	stop    context.CancelFunc
	done    chan struct{}
}

// New returns a Handler and starts the dashboard's sampler.
func New(cfg Config) (*Handler, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("web: Config.Catalog is required")
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.Objectives == nil {
		cfg.Objectives = DefaultObjectives()
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = time.Second
	}
	cfg.Metrics = cfg.Metrics.withDefaults()
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), done: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if h.assets, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if h.pages, err = parsePages(h.assets); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h.sampler = NewSampler(cfg.Gatherer, cfg.Metrics, cfg.Objectives, cfg.SampleInterval)
	if cfg.SLO != nil {
		h.sampler.UseTracker(cfg.SLO)
	}
	for _, rt := range h.routes() {
		rh := rt.h
		if cfg.OnRoute != nil {
			pattern, next := rt.pattern, rt.h
			rh = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cfg.OnRoute(r.Context(), pattern)
				next.ServeHTTP(w, r)
			})
		}
		h.mux.Handle(rt.pattern, rh)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() {
		defer close(h.done)
		h.sampler.Run(ctx, h.log)
	}()
	return h, nil
}

// Close stops the dashboard's sampler.
func (h *Handler) Close() error {
	h.stop()
	<-h.done
	return nil
}

// ServeHTTP serves the storefront.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type route struct {
	pattern string
	h       http.Handler
}

// routes lists every route of the storefront and dashboard.
func (h *Handler) routes() []route {
	return []route{
		{"GET /{$}", h.page(h.home)},
		{"GET /c/{slug}", h.page(h.category)},
		{"GET /search", h.page(h.search)},
		{"GET /p/{id}", h.page(h.product)},
		{"GET /cart", h.shell("cart", "Your cart")},
		{"GET /checkout", h.shell("checkout", "Checkout")},
		{"GET /orders", h.shell("orders", "Your orders")},
		{"GET /orders/{id}", h.shell("order", "Order")},
		{"GET /login", h.shell("login", "Sign in")},
		{"GET /register", h.shell("register", "Create an account")},
		{"GET /dashboard", h.shell("dashboard", "Operations dashboard")},
		{"GET /dashboard/data", http.HandlerFunc(h.dashboardData)},
		{"GET /static/{name}", http.HandlerFunc(h.static)},
		{"GET /sw.js", http.HandlerFunc(h.serviceWorker)},
		{"GET /favicon.ico", http.HandlerFunc(h.favicon)},
		{"/", h.page(h.notFound)},
	}
}
