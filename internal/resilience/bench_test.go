package resilience

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkEdge measures the edge's cost per admitted request: security
// headers, deadline, a per-IP rate limit (local bucket) and the
// concurrency limit, around an empty handler.
func BenchmarkEdge(b *testing.B) {
	c, err := NewConcurrency(ConcurrencyConfig{Classify: func(*http.Request) Class { return Browse }})
	if err != nil {
		b.Fatal(err)
	}
	h := Chain(SecurityHeaders, Timeout(10*time.Second), RateLimit(RateLimitConfig{Policies: []Policy{
		{Name: "ip", Limit: Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Second}, Key: ByIP(ClientIP(nil))},
	}}), c.Middleware)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/v1/products/1", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkShed measures the cost of a shed request (503 problem).
func BenchmarkShed(b *testing.B) {
	c, err := NewConcurrency(ConcurrencyConfig{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	if err != nil {
		b.Fatal(err)
	}
	p, _ := c.limiter.TryAcquirePermit() // the limit is full
	defer p.Drop()
	h := c.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/v1/products/1", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 503 {
			b.Fatal(w.Code)
		}
	}
}
