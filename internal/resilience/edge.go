package resilience

import (
	"context"
	"net/http"
	"time"
)

// API responses' Content-Security-Policy: JSON may load nothing, and
// nothing may frame it (OWASP's REST cheat sheet asks for frame-ancestors
// 'none'). base-uri and form-action, which do not fall back to
// default-src, govern documents with links and forms, not JSON, which
// nosniff keeps from being read as one; the storefront's pages set their
// own CSP with them.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// SecurityHeaders sets headers every response should carry before the
// handler runs (a handler may override them, as the storefront's pages
// do with their own CSP): X-Content-Type-Options nosniff, a
// Content-Security-Policy that allows nothing and no framing (right for
// JSON), and on TLS (HTTP/2 or HTTP/3) Strict-Transport-Security: the
// headers OWASP's REST Security Cheat Sheet asks of every API response.
// Referrer-Policy is not among them: it governs the requests a response
// makes once rendered, and JSON, never sniffed and allowed to load
// nothing, makes none. The storefront's pages and assets, which do, set
// their own. (It would also be a ninth header field on a gzipped cache
// hit, where net/http's header maps outgrow their single-group form:
// 1.6 times the cost of eight fields, BenchmarkResponseHeaderFields.)
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header(), r)
		next.ServeHTTP(w, r)
	})
}

// The security header values, shared by every response (cap == len, so
// that an append elsewhere copies instead of writing into them).
var (
	nosniff     = []string{"nosniff"}
	apiCSPValue = []string{apiCSP}
	hsts        = []string{"max-age=63072000; includeSubDomains"}
)

// SetSecurityHeaders sets SecurityHeaders' fields on h for r, without
// allocating.
func SetSecurityHeaders(h http.Header, r *http.Request) {
	h["X-Content-Type-Options"] = nosniff
	h["Content-Security-Policy"] = apiCSPValue
	if r.TLS != nil {
		h["Strict-Transport-Security"] = hsts
	}
}

// Timeout gives every request a deadline d on its context, which the
// store, Redis and gRPC calls below honour; a handler that runs out of
// time returns context.DeadlineExceeded, which the API answers 503. (Work
// a handler detaches on purpose, such as a checkout after it reserved
// stock, keeps its own deadlines.) d <= 0 sets no deadline.
func Timeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if d <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Chain composes middleware: Chain(a, b)(h) is a(b(h)), so a runs first.
// Nil entries are skipped.
func Chain(mw ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		for i := len(mw) - 1; i >= 0; i-- {
			if mw[i] != nil {
				h = mw[i](h)
			}
		}
		return h
	}
}
