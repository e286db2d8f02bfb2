package web

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/slo"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	bs := []bucket{{0.01, 90}, {0.1, 90}, {1, 100}, {inf, 100}}
	tests := []struct {
		name string
		q    float64
		bs   []bucket
		want float64
	}{
		{"p50 in first bucket", 0.5, bs, 0.01 * 50 / 90},
		{"p95 interpolated", 0.95, bs, 0.1 + 0.9*0.5},
		{"p99 interpolated", 0.99, bs, 0.1 + 0.9*0.9},
		{"in +Inf bucket", 0.99, []bucket{{0.1, 50}, {inf, 100}}, 0.1},
		{"no observations", 0.5, []bucket{{0.1, 0}, {inf, 0}}, math.NaN()},
		{"no buckets", 0.5, nil, math.NaN()},
	}
	for _, tt := range tests {
		got := quantile(tt.q, tt.bs)
		if !(math.Abs(got-tt.want) < 1e-9 || math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s: quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

func TestGoodBelow(t *testing.T) {
	bs := []bucket{{0.1, 40}, {0.2, 80}, {math.Inf(1), 100}}
	tests := []struct {
		le, want float64
	}{{0.1, 40}, {0.2, 80}, {0.15, 60}, {0.05, 20}, {5, 80}}
	for _, tt := range tests {
		if got := goodBelow(bs, tt.le); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("goodBelow(%v) = %v, want %v", tt.le, got, tt.want)
		}
	}
}

func TestGroup(t *testing.T) {
	tests := []struct{ route, want string }{
		{"GET /v1/products/{id}", "browse"},
		{"/v1/products/{id}", "browse"},
		{"GET /v1/categories", "browse"},
		{"GET /v1/products", "search"},
		{"PUT /v1/cart/items/{product_id}", "cart"},
		{"GET /v1/cart", "cart"},
		{"POST /v1/checkout", "checkout"},
		{"GET /v1/orders/{id}", "orders"},
		{"POST /v1/auth/login", "auth"},
		{"PUT /v1/admin/products/{id}", "admin"},
		{"GET /healthz", "ops"},
		{"GET /metrics", "ops"},
		{"GET /.well-known/jwks.json", "ops"},
		{"GET /p/{id}", "web"},
		{"GET /{$}", "web"},
		{"GET /static/{name}", "web"},
		{"unmatched", "other"},
		{"", "other"},
	}
	for _, tt := range tests {
		if got := Group(tt.route); got != tt.want {
			t.Errorf("Group(%q) = %q, want %q", tt.route, got, tt.want)
		}
	}
}

// fixture is a registry with metrics named as DefaultMetrics says.
type fixture struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	inFlight prometheus.Gauge
	hits     *prometheus.CounterVec
	misses   *prometheus.CounterVec
	breaker  *prometheus.GaugeVec
	dbConns  *prometheus.GaugeVec

	serverErrors *prometheus.CounterVec
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry()}
	f.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: DefaultMetrics.Requests, Help: "h",
		Buckets: []float64{0.01, 0.1, 0.2, 1}}, []string{"method", "route", "journey", "status_class"})
	f.serverErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: DefaultMetrics.ServerErrors, Help: "h"}, []string{"method", "route", "code"})
	f.dbConns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "brisk_db_pool_connections", Help: "h"}, []string{"state"})
	f.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: DefaultMetrics.InFlight, Help: "h"})
	f.hits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: DefaultMetrics.CacheHits, Help: "h"}, []string{"layer"})
	f.misses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: DefaultMetrics.CacheMisses, Help: "h"}, []string{"layer"})
	f.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: DefaultMetrics.BreakerState, Help: "h"}, []string{"breaker", "state"})
	f.reg.MustRegister(f.requests, f.serverErrors, f.dbConns, f.inFlight, f.hits, f.misses, f.breaker)
	return f
}

// observe records n requests as internal/telemetry does; a 5xx code is
// also counted in the server errors counter.
func (f *fixture) observe(method, route, journey, code string, seconds float64, n int) {
	class := code[:1] + "xx"
	for range n {
		f.requests.WithLabelValues(method, route, journey, class).Observe(seconds)
	}
	if class == "5xx" {
		f.serverErrors.WithLabelValues(method, route, code).Add(float64(n))
	}
}

func TestSampler(t *testing.T) {
	f := newFixture(t)
	objs := []Objective{
		{Name: "checkout-availability", Journey: "checkout", Goal: 0.999},
		{Name: "checkout-latency", Journey: "checkout", Goal: 0.99, Latency: 200 * time.Millisecond},
		{Name: "cart-availability", Journey: "cart", Goal: 0.999},
		{Name: "search-availability", Journey: "search", Goal: 0.999},
	}
	s := NewSampler(f.reg, Metrics{}, objs, time.Second)
	t0 := time.Unix(1_700_000_000, 0)

	f.observe("GET", "/v1/products/{id}", "browse", "200", 0.005, 10) // before the first sample: not in rates
	if err := s.Sample(t0); err != nil {
		t.Fatal(err)
	}
	// Two seconds of traffic.
	f.observe("GET", "/v1/products/{id}", "browse", "200", 0.005, 90)
	f.observe("GET", "/v1/products/{id}", "browse", "304", 0.5, 10)
	f.observe("GET", "/v1/products", "search", "200", 0.001, 4) // a search: the journey, not the route, decides
	f.observe("POST", "/v1/checkout", "checkout", "201", 0.05, 995)
	f.observe("POST", "/v1/checkout", "checkout", "201", 0.5, 3) // slow: bad for latency
	f.observe("POST", "/v1/checkout", "checkout", "503", 0.001, 2)
	f.inFlight.Set(7)
	f.dbConns.WithLabelValues("in_use").Set(3)
	f.dbConns.WithLabelValues("idle").Set(5)
	f.hits.WithLabelValues("l1").Add(90)
	f.misses.WithLabelValues("l1").Add(10)
	for _, st := range []string{"closed", "half_open", "open"} {
		f.breaker.WithLabelValues("payment", st).Set(map[bool]float64{true: 1}[st == "half_open"])
	}
	if err := s.Sample(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}

	d := s.Data(0)
	if d.Seq != 2 || len(d.Points) != 2 {
		t.Fatalf("Data(0): seq %d, %d points, want 2 and 2", d.Seq, len(d.Points))
	}
	p := d.Points[1]
	near := func(what string, got num, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("browse rps", p.Groups["browse"].RPS, 50)
	near("checkout rps", p.Groups["checkout"].RPS, 500)
	near("checkout 5xx/s", p.Groups["checkout"].Errors, 1)
	near("checkout 429+503/s", p.Groups["checkout"].Limited, 1)
	near("all rps", p.Groups["all"].RPS, 552)
	near("all total", p.Groups["all"].Total, 1114)
	near("search rps", p.Groups["search"].RPS, 2)
	// Browse over the window: 100 at 5 ms, 10 at 500 ms (the 10 before the
	// first sample are outside the window).
	near("browse p50 ms", p.Groups["browse"].P50, 1000*0.01*50/90)
	near("browse p95 ms", p.Groups["browse"].P95, 1000*(0.2+0.8*5/10))
	near("in flight", p.InFlight, 7)
	near("db in use", p.DBInUse, 3)
	if !math.IsNaN(float64(p.Limit)) {
		t.Errorf("limit = %v, want NaN (not registered)", p.Limit)
	}
	if p.Breaker != "half-open" {
		t.Errorf("breaker = %q, want half-open", p.Breaker)
	}
	if !slices.Contains(d.Missing, DefaultMetrics.ConcurrencyLimit) || slices.Contains(d.Missing, DefaultMetrics.InFlight) {
		t.Errorf("missing = %v, want the concurrency limit and not in-flight", d.Missing)
	}
	if want := []string{"all", "browse", "search", "checkout"}; !slices.Equal(d.Groups, want) {
		t.Errorf("groups = %v, want %v", d.Groups, want)
	}

	// Cache: L1 as counted, HTTP 304s of browse + search.
	caches := map[string]CacheLayer{}
	for _, c := range d.Cache {
		caches[c.Layer] = c
	}
	near("l1 ratio", caches["l1"].Ratio, 0.9)
	near("http-304 ratio", caches["http-304"].Ratio, 10.0/114)

	// SLOs, by hand: availability 2 bad of 1000 with a 0.1% budget burns at
	// 2x and leaves 1-2 = -1 of the budget; latency 3 slow of the 998
	// non-5xx with a 1% budget burns at 3/998/0.01.
	slos := map[string]SLOStatus{}
	for _, o := range d.SLOs {
		slos[o.Name] = o
	}
	near("availability burn 5m", slos["checkout-availability"].Burn["5m"], 2)
	near("availability burn 1h", slos["checkout-availability"].Burn["1h"], 2)
	near("availability budget left", slos["checkout-availability"].BudgetLeft, -1)
	near("latency burn 5m", slos["checkout-latency"].Burn["5m"], 3.0/998/0.01)
	near("latency budget left", slos["checkout-latency"].BudgetLeft, 1-3.0/998/0.01)
	if b := slos["cart-availability"].Burn["5m"]; !math.IsNaN(float64(b)) {
		t.Errorf("cart burn without traffic = %v, want NaN (null)", b)
	}
	if n := slos["search-availability"].Requests; n != 4 {
		t.Errorf("search requests = %v, want 4 (by journey label)", n)
	}

	// Incremental fetch: only newer points.
	f.observe("GET", "/v1/cart", "cart", "200", 0.002, 30)
	if err := s.Sample(t0.Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	d = s.Data(2)
	if len(d.Points) != 1 || d.Points[0].Seq != 3 {
		t.Fatalf("Data(2) = %d points (first seq %d), want the one point 3", len(d.Points), d.Points[0].Seq)
	}
	near("cart rps", d.Points[0].Groups["cart"].RPS, 30)
	near("checkout rps after traffic stopped", d.Points[0].Groups["checkout"].RPS, 0)

	// NaN encodes as null.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("encode Data: %v", err)
	}
	var back struct {
		Points []struct {
			Limit *float64 `json:"limit"`
		} `json:"points"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Points[0].Limit != nil {
		t.Errorf("limit encodes as %v (err %v), want null", back.Points[0].Limit, err)
	}
}

// TestSamplerBurnWindows checks that a window uses the burn entry at its
// start: a burst of errors long ago burns in the 6h window only.
func TestSamplerBurnWindows(t *testing.T) {
	f := newFixture(t)
	s := NewSampler(f.reg, Metrics{}, []Objective{{Name: "a", Journey: "cart", Goal: 0.99}}, time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	f.observe("GET", "/v1/cart", "cart", "200", 0.001, 1)
	now := t0
	step := func(ok, bad int) {
		f.observe("GET", "/v1/cart", "cart", "200", 0.001, ok)
		f.observe("GET", "/v1/cart", "cart", "500", 0.001, bad)
		if err := s.Sample(now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	step(0, 0)
	step(50, 50) // a burst of errors at the start
	for range 2 * 3600 {
		step(1, 0) // two hours of clean traffic
	}
	got := map[string]SLOStatus{}
	for _, o := range s.Data(0).SLOs {
		got[o.Name] = o
	}
	burn := got["a"].Burn
	if burn["5m"] != 0 || burn["1h"] != 0 {
		t.Errorf("burn 5m %v, 1h %v, want 0 (the errors are older)", burn["5m"], burn["1h"])
	}
	want := 50.0 / (100 + 7199) / 0.01
	if math.Abs(float64(burn["6h"])-want) > 0.05*want {
		t.Errorf("burn 6h = %v, want about %v", burn["6h"], want)
	}
}

func TestDashboardDataAuth(t *testing.T) {
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	tokens := &auth.Tokens{Keys: keys, Issuer: "brisk", Audience: "brisk-api", TTL: time.Hour}
	issue := func(role auth.Role) string {
		tok, _, err := tokens.Issue(auth.User{ID: 7, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	h, _ := newTestHandler(t, Config{Tokens: tokens})
	tests := []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"garbage token", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"shopper", []string{"Authorization", "Bearer " + issue(auth.RoleShopper)}, http.StatusForbidden},
		{"admin", []string{"Authorization", "Bearer " + issue(auth.RoleAdmin)}, http.StatusOK},
	}
	for _, tt := range tests {
		res := get(t, h, "GET", "/dashboard/data", tt.header...)
		if res.status != tt.want {
			t.Errorf("%s: GET /dashboard/data = %d, want %d; body %s", tt.name, res.status, tt.want, res.body)
		}
		if tt.want != http.StatusOK && res.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q, want problem+json", tt.name, res.header.Get("Content-Type"))
		}
	}
	admin := []string{"Authorization", "Bearer " + issue(auth.RoleAdmin)}
	if res := get(t, h, "GET", "/dashboard/data?since=x", admin...); res.status != http.StatusBadRequest {
		t.Errorf("since=x = %d, want 400", res.status)
	}
	// Without Tokens the dashboard is open.
	open, _ := newTestHandler(t, Config{})
	res := get(t, open, "GET", "/dashboard/data")
	var d Data
	if err := json.Unmarshal([]byte(res.body), &d); res.status != 200 || err != nil {
		t.Fatalf("open dashboard: %d %v", res.status, err)
	}
	if res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", res.header.Get("Cache-Control"))
	}
}

// TestSamplerTracker checks the SLO view taken from slo.Tracker, the one
// behind /debug/slo.
func TestSamplerTracker(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tr := slo.NewTracker(slo.Default(), func() time.Time { return now })
	c := tr.Counter("checkout")
	for i := range 1000 {
		status := 201
		if i < 2 {
			status = 503
		}
		c.Observe(status, 10*time.Millisecond)
	}
	now = now.Add(time.Minute)
	f := newFixture(t)
	s := NewSampler(f.reg, Metrics{}, nil, time.Second)
	s.UseTracker(tr.Status)
	if err := s.Sample(now); err != nil {
		t.Fatal(err)
	}
	got := map[string]SLOStatus{}
	for _, o := range s.Data(0).SLOs {
		got[o.Name] = o
	}
	a, ok := got["checkout-availability"]
	if !ok {
		t.Fatalf("SLOs = %v, want checkout-availability", got)
	}
	// 2 bad of 1000 with a 0.1% budget: burn 2, budget left 1-2.
	if math.Abs(float64(a.Burn["5m"])-2) > 1e-9 || math.Abs(float64(a.BudgetLeft)+1) > 1e-9 || a.Requests != 1000 {
		t.Errorf("checkout availability: burn 5m %v, budget left %v, requests %v; want 2, -1, 1000", a.Burn["5m"], a.BudgetLeft, a.Requests)
	}
	if b := got["cart-availability"].Burn["5m"]; !math.IsNaN(float64(b)) {
		t.Errorf("cart burn without traffic = %v, want NaN", b)
	}
}

// BenchmarkSample measures one sample of a registry the size of brisk's:
// 20 routes in 3 status classes, plus gauges and cache counters.
func BenchmarkSample(b *testing.B) {
	f := newFixture(&testing.T{})
	for i := range 20 {
		for _, code := range []string{"200", "404", "503"} {
			f.observe("GET", fmt.Sprintf("/v1/route%d/{id}", i), "browse", code, 0.003, 1)
		}
	}
	s := NewSampler(f.reg, Metrics{}, DefaultObjectives(), time.Second)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		if err := s.Sample(now); err != nil {
			b.Fatal(err)
		}
	}
}
