package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/httpapi"
	"github.com/briskhq/brisk/internal/problem"
	"github.com/briskhq/brisk/internal/resilience"
	"github.com/briskhq/brisk/internal/slo"
	"github.com/briskhq/brisk/internal/telemetry"
)

// failingCatalog is a catalog.Store of generated products that fails
// every call while down is set, with an error no domain kind covers.
type failingCatalog struct {
	catalog.Store // nil: methods not overridden panic
	mu            sync.Mutex
	products      map[int64]catalog.Product
	down          atomic.Bool
	queries       atomic.Int64
}

func newFailingCatalog() *failingCatalog {
	f := &failingCatalog{products: map[int64]catalog.Product{}}
	for i, p := range catalog.Generate(50) {
		p.ID = int64(i + 1)
		f.products[p.ID] = p
	}
	return f
}

var errDown = errors.New("sql: database is closed")

func (f *failingCatalog) Product(ctx context.Context, id int64) (catalog.Product, error) {
	f.queries.Add(1)
	if f.down.Load() {
		return catalog.Product{}, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.products[id]
	if !ok {
		return catalog.Product{}, derrors.New(derrors.NotFound, "product %d not found", id)
	}
	return p, nil
}

func (f *failingCatalog) ListProducts(ctx context.Context, q catalog.Query) (catalog.Page, error) {
	f.queries.Add(1)
	if f.down.Load() {
		return catalog.Page{}, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var page catalog.Page
	for id := q.AfterID + 1; id <= int64(len(f.products)) && len(page.Items) < q.Limit; id++ {
		page.Items = append(page.Items, f.products[id])
	}
	return page, nil
}

// TestAPIStaleIfError: with the store failing, the API still serves
// cached products (with Age), and uncached ones get a 503 problem, not a
// 500. Without a cache, a failing store stays a 500 (an unexpected error).
func TestAPIStaleIfError(t *testing.T) {
	clk := newFakeClock()
	store := newFailingCatalog()
	c := newCache(t, cache.Config{Now: clk.Now, ProductTTL: time.Minute, ListTTL: time.Minute, StaleFor: 5 * time.Minute})
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{Catalog: store, Cache: c, Logger: testLogger(t)}))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, fresh := get("/v1/products/1")
	if res.StatusCode != 200 || res.Header.Get("Age") != "" {
		t.Fatalf("fresh: %d, Age %q", res.StatusCode, res.Header.Get("Age"))
	}
	etag := res.Header.Get("ETag")
	if res, _ := get("/v1/products?limit=5"); res.StatusCode != 200 {
		t.Fatalf("listing: %d", res.StatusCode)
	}

	store.down.Store(true)
	clk.Advance(2 * time.Minute) // expired
	for _, path := range []string{"/v1/products/1", "/v1/products?limit=5"} {
		res, b := get(path)
		if res.StatusCode != 200 {
			t.Fatalf("%s with store down: status %d, body %s; want the stale copy", path, res.StatusCode, b)
		}
		if age, _ := strconv.Atoi(res.Header.Get("Age")); age != 120 {
			t.Errorf("%s: Age %q, want 120", path, res.Header.Get("Age"))
		}
		if path == "/v1/products/1" && (string(b) != string(fresh) || res.Header.Get("ETag") != etag) {
			t.Errorf("stale body or ETag differs")
		}
	}
	for _, path := range []string{"/v1/products/2", "/v1/products?limit=7"} {
		res, b := get(path)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s uncached with store down: status %d, body %s; want 503", path, res.StatusCode, b)
		}
		var p problem.Problem
		if err := json.Unmarshal(b, &p); err != nil || p.Status != 503 || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: problem %+v (%v), Retry-After %q", path, p, err, res.Header.Get("Retry-After"))
		}
	}
	// Past the stale window: 503 for everything.
	clk.Advance(5 * time.Minute)
	if res, _ := get("/v1/products/1"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("past StaleFor: status %d, want 503", res.StatusCode)
	}
	// Back up: fresh, no Age.
	store.down.Store(false)
	if res, _ := get("/v1/products/1"); res.StatusCode != 200 || res.Header.Get("Age") != "" {
		t.Errorf("store back: status %d, Age %q", res.StatusCode, res.Header.Get("Age"))
	}
	// A missing product is a 404, cached or not.
	if res, _ := get("/v1/products/999"); res.StatusCode != 404 {
		t.Errorf("missing product: status %d, want 404", res.StatusCode)
	}
}

// TestAPIHitsDoNotQueryTheStore: repeated GETs and 304 revalidations of
// one product cost one store query.
func TestAPIHitsDoNotQueryTheStore(t *testing.T) {
	store := newFailingCatalog()
	c := newCache(t, cache.Config{})
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{Catalog: store, Cache: c}))
	defer srv.Close()
	var etag string
	for i := range 1000 {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/products/7", nil)
		if i%2 == 1 {
			req.Header.Set("If-None-Match", etag)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		want := 200
		if i%2 == 1 {
			want = 304
		}
		if res.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, res.StatusCode, want)
		}
		etag = res.Header.Get("ETag")
	}
	if n := store.queries.Load(); n != 1 {
		t.Errorf("store queries for 1,000 GETs = %d, want 1", n)
	}
}

// BenchmarkAPIProductHit measures a cached product GET through the API's
// handler (the hit path: request id, cache hit, headers) against a bare
// handler writing the same bytes, without the network: the CPU the cache
// path adds per request; and with telemetry on, the CPU telemetry adds.
func BenchmarkAPIProductHit(b *testing.B) {
	store := newFailingCatalog()
	c, err := cache.New(cache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	gz, err := cache.Gzip(cache.DefaultGzipMinSize, 1)
	if err != nil {
		b.Fatal(err)
	}
	api := httpapi.New(httpapi.Deps{Catalog: store, Cache: c, Compress: gz})
	// The same with brisk's telemetry: golden-signal metrics, SLO
	// counters, a sampled access log and tracing as it runs without an
	// exporter (trace ids, no spans).
	spec := slo.Default()
	tr, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{SampleRatio: 0.01, Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	tel := telemetry.NewHTTP(telemetry.HTTPConfig{
		Metrics: telemetry.NewMetrics(telemetry.MetricsConfig{Buckets: spec.Buckets()}), Tracing: tr, SLO: spec,
		Tracker: slo.NewTracker(spec, nil), Logger: slog.New(slog.DiscardHandler), AccessLogRatio: 0.01,
	})
	instrumented := httpapi.New(httpapi.Deps{Catalog: store, Cache: c, Compress: gz, Instrument: tel.Middleware, Hot: httpapi.Hot{Telemetry: tel}})
	w := httptest.NewRecorder()
	api.ServeHTTP(w, httptest.NewRequest("GET", "/v1/products/7", nil))
	body := w.Body.Bytes()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"api", api}, {"api+telemetry", instrumented}} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/v1/products/7", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := discardWriter{h: http.Header{}}
				bc.h.ServeHTTP(&w, r)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmark measures the handler rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(200)
	return len(p), nil
}

// TestAPIHitPath: a product GET that L1 holds fresh is answered before
// the middleware chain, with the response the chain gives (headers, 304,
// gzip variant), the edge's admission (a 429 it writes stands) and the
// same metrics; an edge without Admit, or instrumentation without
// Telemetry, keeps every request on the chain.
func TestAPIHitPath(t *testing.T) {
	const chainMark = "X-Test-Chain"
	edge := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(chainMark, "1")
			resilience.SetSecurityHeaders(w.Header(), r)
			next.ServeHTTP(w, r)
		})
	}
	var deny atomic.Bool
	admit := func(w http.ResponseWriter, r *http.Request) bool {
		resilience.SetSecurityHeaders(w.Header(), r)
		if deny.Load() {
			w.WriteHeader(http.StatusTooManyRequests)
			return false
		}
		return true
	}
	spec := slo.Default()
	metrics := telemetry.NewMetrics(telemetry.MetricsConfig{Buckets: spec.Buckets()})
	tel := telemetry.NewHTTP(telemetry.HTTPConfig{Metrics: metrics, SLO: spec})
	newServer := func(hot httpapi.Hot) (*httptest.Server, *failingCatalog) {
		store := newFailingCatalog()
		c := newCache(t, cache.Config{GzipMinSize: 64})
		srv := httptest.NewServer(httpapi.New(httpapi.Deps{Catalog: store, Cache: c, Edge: edge, Instrument: tel.Middleware, Hot: hot}))
		t.Cleanup(srv.Close)
		return srv, store
	}
	get := func(srv *httptest.Server, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/products/7", nil)
		req.Header.Set("Accept-Encoding", "identity")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Header.Set("X-Test-Body", string(b))
		return res
	}
	// The headers the two paths must agree on, and those that differ by
	// nature (request id, date) or by design (the test's chain mark).
	same := func(t *testing.T, chain, hit *http.Response) {
		t.Helper()
		if chain.StatusCode != hit.StatusCode {
			t.Fatalf("status: chain %d, hit %d", chain.StatusCode, hit.StatusCode)
		}
		for _, h := range []http.Header{chain.Header, hit.Header} {
			if id := h.Get("X-Request-Id"); len(id) != 32 {
				t.Errorf("X-Request-Id %q, want 32 hex digits", id)
			}
		}
		a, b := chain.Header.Clone(), hit.Header.Clone()
		for _, k := range []string{"X-Request-Id", "Date", chainMark} {
			a.Del(k)
			b.Del(k)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("headers differ:\nchain %v\nhit   %v", a, b)
		}
	}

	srv, store := newServer(httpapi.Hot{Admit: admit, Telemetry: tel})
	miss := get(srv)
	if miss.Header.Get(chainMark) == "" {
		t.Fatal("the first GET (a miss) did not take the chain")
	}
	hit := get(srv)
	if hit.Header.Get(chainMark) != "" {
		t.Fatal("a fresh L1 hit took the chain")
	}
	same(t, miss, hit)
	etag := hit.Header.Get("ETag")
	if res := get(srv, "If-None-Match", etag); res.StatusCode != 304 || res.Header.Get("X-Test-Body") != "" {
		t.Errorf("If-None-Match on a hit: %d with body %q, want an empty 304", res.StatusCode, res.Header.Get("X-Test-Body"))
	}
	if res := get(srv, "Accept-Encoding", "gzip"); res.Header.Get("Content-Encoding") != "gzip" || !strings.HasSuffix(res.Header.Get("ETag"), `-gzip"`) {
		t.Errorf("gzip on a hit: Content-Encoding %q, ETag %q", res.Header.Get("Content-Encoding"), res.Header.Get("ETag"))
	}
	deny.Store(true)
	if res := get(srv); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("denied by Admit: status %d, want 429", res.StatusCode)
	}
	deny.Store(false)
	if n := store.queries.Load(); n != 1 {
		t.Errorf("store queries = %d, want 1", n)
	}
	count := func(class string) float64 {
		mfs, err := metrics.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() != "brisk_http_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["method"] == "GET" && l["route"] == "/v1/products/{id}" && l["status_class"] == class {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	if got := count("2xx") + count("3xx") + count("4xx"); got != 5 {
		t.Errorf("requests counted = %v, want 5 (every GET above)", got)
	}
	if got := count("4xx"); got != 1 {
		t.Errorf("4xx counted = %v, want 1 (the 429)", got)
	}

	for name, hot := range map[string]httpapi.Hot{"edge without Admit": {Telemetry: tel}, "instrument without Telemetry": {Admit: admit}} {
		srv, _ := newServer(hot)
		get(srv)
		if get(srv).Header.Get(chainMark) == "" {
			t.Errorf("%s: a hit skipped the chain", name)
		}
	}
}

// TestAPIHitPathListings: listing and search pages are served from L1
// the same way; a bad query still gets the chain's 400 problem.
func TestAPIHitPathListings(t *testing.T) {
	const chainMark = "X-Test-Chain"
	edge := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(chainMark, "1")
			next.ServeHTTP(w, r)
		})
	}
	store := newFailingCatalog()
	c := newCache(t, cache.Config{})
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{Catalog: store, Cache: c, Edge: edge,
		Hot: httpapi.Hot{Admit: func(http.ResponseWriter, *http.Request) bool { return true }}}))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	for _, path := range []string{"/v1/products?limit=5", "/v1/products?limit=5&category=" + store.products[1].Category} {
		miss, mb := get(path)
		hit, hb := get(path)
		if miss.StatusCode != 200 || miss.Header.Get(chainMark) == "" || hit.Header.Get(chainMark) != "" || hb != mb {
			t.Errorf("%s: miss %d (chain %q), hit %d (chain %q), same body %v", path, miss.StatusCode, miss.Header.Get(chainMark),
				hit.StatusCode, hit.Header.Get(chainMark), hb == mb)
		}
	}
	if res, body := get("/v1/products?limit=abc"); res.StatusCode != 400 || res.Header.Get(chainMark) == "" || !strings.Contains(body, "request_id") {
		t.Errorf("bad query: %d (chain %q) %s, want the chain's 400 problem", res.StatusCode, res.Header.Get(chainMark), body)
	}
	if n := store.queries.Load(); n != 2 {
		t.Errorf("store queries = %d, want 2 (one per page)", n)
	}
}
