package resilience

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

var headerSink [2]http.Header

// BenchmarkResponseHeaderFields measures what net/http does per response
// for n header fields set by the handler: the handler's map, net/http's
// copy of it at WriteHeader, and the sorted, validated write. A gzipped
// cache hit carries 8 (Cache-Control, Content-Encoding, CSP,
// Content-Type, ETag, Vary, nosniff, X-Request-Id); a ninth field (such
// as Referrer-Policy, which JSON does not need) outgrows the maps'
// single-group form: 1.6 times the cost of eight here, 10 allocations
// instead of 5.
func BenchmarkResponseHeaderFields(b *testing.B) {
	defer func() { headerSink = [2]http.Header{} }()
	fields := []struct{ k, v string }{
		{"Cache-Control", "public, max-age=30, stale-while-revalidate=60"},
		{"Content-Encoding", "gzip"},
		{"Content-Security-Policy", apiCSP},
		{"Content-Type", "application/json"},
		{"Etag", `"1j6ahlodthnec-gzip"`},
		{"Vary", "Accept-Encoding"},
		{"X-Content-Type-Options", "nosniff"},
		{"X-Request-Id", "e7348ebfe28ef9f564143907b5a33fe1"},
		{"Referrer-Policy", "no-referrer"},
	}
	for _, n := range []int{7, 8, 9} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			vals := make([][]string, n)
			for i := range vals {
				vals[i] = []string{fields[i].v}
			}
			w := bufio.NewWriterSize(io.Discard, 4096)
			b.ReportAllocs()
			for b.Loop() {
				h := make(http.Header)
				for i := range n {
					h[fields[i].k] = vals[i]
				}
				c := h.Clone()
				if err := c.Write(w); err != nil {
					b.Fatal(err)
				}
				w.Reset(io.Discard)
				headerSink = [2]http.Header{h, c} // on the heap, as net/http's are
			}
		})
	}
}

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
