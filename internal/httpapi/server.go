// Package httpapi is brisk's REST/JSON storefront API: routes, middleware,
// request decoding and the mapping of domain errors to problem+json.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/telemetry"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 1 << 20

// Deps are the services the API serves.
type Deps struct {
	Catalog  catalog.Store
	Carts    *cart.Service
	Auth     *auth.Service
	Tokens   *auth.Tokens
	Checkout *checkout.Service
	// Ready reports whether the dependencies needed to serve are up.
	Ready   func(ctx context.Context) error
	OpenAPI []byte // served at /openapi.yaml
	Logger  *slog.Logger
	// Web serves the storefront and dashboard (internal/web): every
	// request outside /v1/ that no API route matches. Nil: 404 problems.
	Web http.Handler
	// Cache holds encoded product and listing responses (L1 + L2);
	// admin changes invalidate it. Nil: every request reads the store.
	Cache *cache.Cache
	// Compress wraps the whole handler (cache.Gzip). Nil: no compression.
	Compress func(http.Handler) http.Handler
	// Instrument wraps the whole handler chain, outermost (internal/telemetry:
	// the server span, whose trace id becomes the request id, metrics and
	// access logs); nil: none.
	Instrument func(http.Handler) http.Handler
	// Ops are extra routes on the API's mux ("GET /metrics",
	// "GET /debug/slo"), outside the API's spec.
	Ops map[string]http.Handler
	// Edge wraps the routes inside the request id, so that its own
	// answers carry one (internal/resilience: security headers, request
	// deadline, rate limits, concurrency limit); nil: none.
	Edge func(http.Handler) http.Handler
	// Hot serves product, listing and search GETs that L1 holds fresh
	// before the chain (see Hot). It is off when Edge is set without
	// Hot.Admit, or Instrument without Hot.Telemetry, so that no hit
	// skips a limit or a count.
	Hot Hot
}

// Server is the HTTP API.
type Server struct {
	Deps
	log      *slog.Logger
	draining atomic.Bool
	hot      bool               // serveHit is on
	hotRoute [2]telemetry.Route // serveHit's routes, by hotProduct and hotListing
	handler  http.Handler
	mux      *http.ServeMux
}

// New returns a Server with every route registered.
func New(d Deps) *Server {
	s := &Server{Deps: d, log: d.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, rt.h)
	}
	for p, h := range d.Ops {
		s.mux.Handle(p, h)
	}
	inner := s.recoverPanics(s.limitBody(s.notFoundOrMethod(s.mux)))
	if d.Edge != nil {
		inner = d.Edge(inner)
	}
	s.hot = d.Cache != nil && (d.Edge == nil || d.Hot.Admit != nil) && (d.Instrument == nil || d.Hot.Telemetry != nil)
	if t := d.Hot.Telemetry; t != nil {
		s.hotRoute = [2]telemetry.Route{hotProduct: t.Route(productPattern), hotListing: t.Route(listPattern)}
	}
	s.handler = s.requestID(inner)
	if d.Compress != nil {
		s.handler = d.Compress(s.handler)
	}
	if d.Instrument != nil {
		s.handler = d.Instrument(s.handler)
	}
	return s
}

// Route returns the pattern of the route that serves r ("" if none).
func (s *Server) Route(r *http.Request) string {
	_, p := s.mux.Handler(r)
	return p
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveHit(w, r) {
		return
	}
	s.handler.ServeHTTP(w, r)
}

// SetDraining marks the server as draining: /readyz answers 503 so load
// balancers stop sending new requests, while requests keep being served.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

type route struct {
	pattern string // "METHOD /path"
	h       http.Handler
}

// routes lists every route of the API in one place.
func (s *Server) routes() []route {
	return []route{
		{"GET /healthz", http.HandlerFunc(s.healthz)},
		{"GET /readyz", http.HandlerFunc(s.readyz)},
		{"GET /openapi.yaml", http.HandlerFunc(s.openapi)},
		{"GET /.well-known/jwks.json", s.handle(s.jwks)},

		{"POST /v1/auth/register", s.handle(s.register)},
		{"POST /v1/auth/login", s.handle(s.login)},

		{"GET /v1/categories", s.handle(s.categories)},
		{"GET /v1/products", s.handle(s.listProducts)},
		{"GET /v1/products/{id}", s.handle(s.getProduct)},

		{"GET /v1/cart", s.handle(s.user(s.getCart))},
		{"PUT /v1/cart/items/{product_id}", s.handle(s.user(s.putCartItem))},
		{"DELETE /v1/cart/items/{product_id}", s.handle(s.user(s.deleteCartItem))},

		{"POST /v1/checkout", s.handle(s.user(s.checkout))},
		{"GET /v1/orders", s.handle(s.user(s.listOrders))},
		{"GET /v1/orders/{id}", s.handle(s.user(s.getOrder))},

		{"PUT /v1/admin/products/{id}", s.handle(s.admin(s.updateProduct))},
	}
}

// Patterns returns every route pattern ("METHOD /path"), for the spec test.
func (s *Server) Patterns() []string {
	var ps []string
	for _, rt := range s.routes() {
		ps = append(ps, rt.pattern)
	}
	return ps
}

// handlerFunc is a handler that returns its error to one adapter.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: a returned error becomes a problem+json response.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}
