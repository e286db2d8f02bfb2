package telemetry

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/briskhq/brisk/internal/slo"
)

// HTTPConfig configures the HTTP middleware. Every part is optional.
type HTTPConfig struct {
	// Metrics receives the golden signals; nil: no metrics.
	Metrics *Metrics
	// Tracing makes a server span per request (otelhttp) that continues
	// an incoming W3C traceparent; nil or disabled: no spans.
	Tracing *Tracing
	// SLO assigns requests to journeys (the journey label) and Tracker
	// counts them for the live SLO view; nil: journey "none".
	SLO     *slo.Spec
	Tracker *slo.Tracker
	// Logger receives the access log; nil: none.
	Logger *slog.Logger
	// AccessLogRatio is the share of successful requests logged (0..1);
	// every 4xx and 5xx is logged, and every request slower than
	// SlowRequest (when > 0).
	AccessLogRatio float64
	SlowRequest    time.Duration
}

// HTTP is the HTTP server instrumentation.
type HTTP struct {
	cfg      HTTPConfig
	journeys map[string][]slo.RouteJourney // by ServeMux pattern
	router   atomic.Pointer[func(*http.Request) string]

	mu      sync.Mutex                               // serializes writers of entries
	entries atomic.Pointer[map[entryKey]*routeEntry] // copy on write: reads take no lock
}

type entryKey struct{ method, pattern string }

// routeEntry holds the metrics of one method and pattern, one variant per
// journey the pattern's requests may belong to (query-conditioned first).
type routeEntry struct {
	route    string
	variants []variant
}

type variant struct {
	query   string // "" matches every request
	journey string
	rm      *routeMetrics // nil without metrics and tracker
}

// NewHTTP returns the HTTP instrumentation.
func NewHTTP(cfg HTTPConfig) *HTTP {
	h := &HTTP{cfg: cfg, journeys: map[string][]slo.RouteJourney{}}
	if cfg.SLO != nil {
		h.journeys = cfg.SLO.RouteJourneys()
	}
	h.entries.Store(&map[entryKey]*routeEntry{})
	return h
}

// SetRouter sets how a request's route pattern is found when no handler
// called SetRoute (requests turned away before routing: rate limited,
// shed, too large). Typically (*http.ServeMux).Handler's pattern.
func (h *HTTP) SetRouter(route func(*http.Request) string) { h.router.Store(&route) }

// Preload resolves the metrics of the given patterns ("GET /v1/cart")
// ahead of traffic, so that their 2xx and 5xx counters exist from the
// start.
func (h *HTTP) Preload(patterns []string) {
	for _, p := range patterns {
		method, _, ok := strings.Cut(p, " ")
		if !ok {
			method = "GET"
		}
		h.entry(method, p)
	}
}

// entry returns the metrics of (method, pattern), creating them once.
func (h *HTTP) entry(method, pattern string) *routeEntry {
	k := entryKey{method, pattern}
	if e, ok := (*h.entries.Load())[k]; ok {
		return e
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.entries.Load()
	if e, ok := old[k]; ok {
		return e
	}
	e := h.newEntry(method, pattern)
	m := make(map[entryKey]*routeEntry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = e
	h.entries.Store(&m)
	return e
}

func (h *HTTP) newEntry(method, pattern string) *routeEntry {
	route := Unmatched
	if pattern != "" {
		route = pattern
		if _, path, ok := strings.Cut(pattern, " "); ok {
			route = path
		}
	}
	e := &routeEntry{route: route}
	rjs := h.journeys[pattern]
	if !hasDefault(rjs) {
		rjs = append(rjs, slo.RouteJourney{Journey: NoJourney})
	}
	for _, rj := range rjs {
		v := variant{query: rj.Query, journey: rj.Journey}
		if h.cfg.Metrics != nil {
			var c *slo.Counter
			if h.cfg.Tracker != nil {
				c = h.cfg.Tracker.Counter(rj.Journey)
			}
			v.rm = h.cfg.Metrics.route(method, route, rj.Journey, c)
		} else if h.cfg.Tracker != nil {
			v.rm = &routeMetrics{key: routeKey{method, route, rj.Journey}, counter: h.cfg.Tracker.Counter(rj.Journey)}
		}
		e.variants = append(e.variants, v)
	}
	return e
}

func hasDefault(rjs []slo.RouteJourney) bool {
	for _, rj := range rjs {
		if rj.Query == "" {
			return true
		}
	}
	return false
}

// pick returns the variant of e that r belongs to.
func (e *routeEntry) pick(r *http.Request) variant {
	for _, v := range e.variants {
		if v.query == "" || slo.HasQueryParam(r.URL.RawQuery, v.query) {
			return v
		}
	}
	return e.variants[len(e.variants)-1]
}

// state is the per-request record: the response writer's status and
// size, and the route pattern a handler reported with SetRoute.
type state struct {
	http.ResponseWriter
	embedded.Span // state is also the non-recording span (stateSpan)
	status        int
	bytes         int64
	pattern       string
	entry         *routeEntry       // resolved route, once known
	span          trace.SpanContext // of the server span, for the access log
	traceID       trace.TraceID     // picked for a new trace (see idGenerator)
}

func (s *state) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *state) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client, if the writer can.
func (s *state) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *state) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type stateKey struct{}

// stateCtx carries a request's state: one allocation for both.
type stateCtx struct {
	context.Context
	st state
}

func (c *stateCtx) Value(key any) any {
	if key == (stateKey{}) {
		return &c.st
	}
	return c.Context.Value(key)
}

// SetRoute reports the ServeMux pattern that serves the request of ctx
// ("GET /v1/products/{id}"); the middleware labels the request's metrics
// and names its span with it. Call it where the pattern is known (after
// routing); without the middleware it does nothing.
func SetRoute(ctx context.Context, pattern string) {
	if s, ok := ctx.Value(stateKey{}).(*state); ok {
		s.pattern = pattern
	}
}

// Middleware instruments next: a server span (outermost, so the request
// id can be its trace id), in-flight, count and duration per route
// template, the SLO counters and the sampled access log.
func (h *HTTP) Middleware(next http.Handler) http.Handler {
	var inFlight interface {
		Inc()
		Dec()
	} = nopGauge{}
	if h.cfg.Metrics != nil {
		inFlight = h.cfg.Metrics.inFlight
	}
	traced := next
	if h.cfg.Tracing.Enabled() {
		t := h.cfg.Tracing
		traced = otelhttp.NewMiddleware("http.server",
			otelhttp.WithTracerProvider(t.provider),
			otelhttp.WithPropagators(t.propagator),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(spanName),
		)(h.nameSpan(next))
	}
	t := h.cfg.Tracing
	tracing := t.Enabled()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		inFlight.Inc()
		sc := &stateCtx{Context: r.Context()}
		st := &sc.st
		st.ResponseWriter = w
		var ctx context.Context = sc
		// Head sampling first: a sampled request gets otelhttp's full
		// server span; the others only a non-recording span, which gives
		// the request its trace id (the request id, in the logs, sent on
		// to the payment service) at a fraction of the cost.
		sampled := false
		if tracing {
			var parent trace.SpanContext
			ctx, parent, sampled = t.headSample(ctx, r.Header, st)
			if !sampled {
				ctx, st.span = unsampled(ctx, parent, st)
			}
		}
		r = r.WithContext(ctx)
		defer func() {
			p := recover()
			inFlight.Dec()
			if st.status == 0 {
				st.status = http.StatusOK // nothing written: net/http sends 200
				if p != nil {
					st.status = http.StatusInternalServerError
				}
			}
			h.finish(r, st, time.Since(start))
			if p != nil {
				panic(p)
			}
		}()
		if sampled {
			traced.ServeHTTP(st, r)
		} else {
			next.ServeHTTP(st, r)
		}
	})
}

// nameSpan names the server span after the route template once next has
// routed the request, and keeps its context for the access log.
func (h *HTTP) nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		st, ok := r.Context().Value(stateKey{}).(*state)
		if !ok {
			return
		}
		span := trace.SpanFromContext(r.Context())
		st.span = span.SpanContext()
		if span.IsRecording() {
			e := h.resolve(r, st)
			span.SetName(spanName("", r))
			span.SetAttributes(attribute.String("http.route", e.route))
		}
	})
}

// spanName is "METHOD /route/{template}" once the route is known, else
// the method alone.
func spanName(_ string, r *http.Request) string {
	if st, ok := r.Context().Value(stateKey{}).(*state); ok && st.entry != nil {
		return methodLabel(r.Method) + " " + st.entry.route
	}
	return methodLabel(r.Method)
}

type nopGauge struct{}

func (nopGauge) Inc() {}
func (nopGauge) Dec() {}

// resolve finds the route entry of the request, once.
func (h *HTTP) resolve(r *http.Request, st *state) *routeEntry {
	if st.entry != nil {
		return st.entry
	}
	pattern := st.pattern
	if pattern == "" {
		if f := h.router.Load(); f != nil {
			pattern = (*f)(r)
		}
	}
	st.entry = h.entry(methodLabel(r.Method), pattern)
	return st.entry
}

// finish records one finished request.
func (h *HTTP) finish(r *http.Request, st *state, d time.Duration) {
	e := h.resolve(r, st)
	v := e.pick(r)
	if v.rm != nil {
		if h.cfg.Metrics != nil {
			h.cfg.Metrics.observe(v.rm, st.status, d)
		} else {
			v.rm.counter.Observe(st.status, d)
		}
	}
	if h.cfg.Logger == nil {
		return
	}
	slow := h.cfg.SlowRequest > 0 && d >= h.cfg.SlowRequest
	if st.status < 400 && !slow && (h.cfg.AccessLogRatio <= 0 || rand.Float64() >= h.cfg.AccessLogRatio) {
		return
	}
	level := slog.LevelInfo
	if st.status >= 500 {
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if st.span.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, st.span)
	}
	h.cfg.Logger.LogAttrs(ctx, level, "request",
		slog.String("method", r.Method),
		slog.String("route", e.route),
		slog.String("path", r.URL.Path),
		slog.Int("status", st.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int64("bytes", st.bytes),
		slog.String("journey", v.journey),
		slog.String("request_id", st.Header().Get("X-Request-Id")),
		slog.Bool("slow", slow),
	)
}

// Lone is the telemetry of one request that a handler answers itself,
// outside Middleware (the API's cache hits). Begin starts it; End
// records it.
type Lone struct {
	span  trace.SpanContext // a non-recording span of a new trace
	id    string
	began time.Duration // Begin's reading of the monotonic clock (since monoEpoch)
}

// monoEpoch is the origin of Lone's clock readings. time.Since(monoEpoch)
// reads only the monotonic clock; time.Now reads the wall clock too, and
// clock reads are a measurable part of a cache hit on virtual machines.
var monoEpoch = time.Now()

// ID is the request's id: its trace id, as Middleware would give it.
func (l Lone) ID() string { return l.id }

// Begin starts the telemetry of a request answered outside Middleware,
// and its clock: End records the time since. ok is false when the
// request needs Middleware's full treatment: it continues a trace
// (traceparent or baggage), or tracing samples it. Begin records nothing.
func (h *HTTP) Begin(r *http.Request) (l Lone, ok bool) {
	t := h.cfg.Tracing
	tid := newTraceID()
	if t.Enabled() {
		if len(r.Header["Traceparent"]) > 0 || len(r.Header["Baggage"]) > 0 || t.exporting && t.samples(r.Context(), tid) {
			return Lone{}, false
		}
	}
	l.span = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: newSpanID()})
	l.id = HexID(tid)
	l.began = time.Since(monoEpoch)
	return l, true
}

// Route is the telemetry of one route, resolved once (HTTP.Route) for a
// handler that answers its requests outside Middleware.
type Route struct{ e *routeEntry }

// Route returns the telemetry of the route that the ServeMux pattern
// ("GET /v1/products/{id}") names.
func (h *HTTP) Route(pattern string) Route {
	method, _, _ := strings.Cut(pattern, " ")
	return Route{h.entry(methodLabel(method), pattern)}
}

// End records a request begun with Begin as Middleware would have: its
// route's count and duration (rt is the route that would have served
// it), the SLO counters and the sampled access log. It is not counted in
// flight: such a request never waits.
func (h *HTTP) End(w http.ResponseWriter, r *http.Request, l Lone, rt Route, status int, bytes int64) {
	st := state{ResponseWriter: w, status: status, bytes: bytes, entry: rt.e, span: l.span}
	h.finish(r, &st, time.Since(monoEpoch)-l.began)
}
