package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/telemetry"
)

// Hot is what the cache-hit path needs from outside the API. A product,
// listing or search GET that L1 holds fresh is the hottest request of a
// store and the cheapest to answer: the path answers it before the middleware chain,
// with the same response the chain would give (headers, request id,
// ETag and 304, gzip variant, rate limits) and the same telemetry, at a
// fraction of the chain's cost. Anything else — a miss, an entry due
// for early refresh, a traced request — takes the full chain.
type Hot struct {
	// Admit is the edge's work for such a request (security headers,
	// rate limits); false: it has answered (429). Nil: none.
	Admit func(w http.ResponseWriter, r *http.Request) bool
	// Telemetry records it (telemetry.HTTP's Begin and End); nil: none.
	Telemetry *telemetry.HTTP
}

// The patterns of the routes the hit path serves.
const (
	productPattern = "GET /v1/products/{id}"
	listPattern    = "GET /v1/products"
)

// The hit path's routes, as indexes of Server.hotRoute.
const (
	hotProduct = iota
	hotListing
)

// serveHit answers r from L1 when it is a GET of a product, listing or
// search page held fresh there, and reports whether it did.
func (s *Server) serveHit(w http.ResponseWriter, r *http.Request) bool {
	if !s.hot || r.Method != http.MethodGet || r.ContentLength != 0 || r.URL.RawPath != "" {
		return false
	}
	var (
		key string
		cc  []string
		rt  = hotProduct
	)
	if r.URL.Path == "/v1/products" {
		q, err := catalog.ParseQuery(r.URL.Query())
		if err != nil {
			return false // the chain answers the 400
		}
		key, cc, rt = s.Cache.ListingKey(q), listCacheControl, hotListing
	} else if k, ok := productKey(r.URL.Path); ok {
		key, cc = k, productCacheControl
	} else {
		return false
	}
	var (
		l   telemetry.Lone
		rid string
		ok  bool
	)
	if t := s.Hot.Telemetry; t != nil {
		if l, ok = t.Begin(r); !ok {
			return false
		}
		rid = l.ID()
	}
	e, ok := s.Cache.Peek(key)
	if !ok {
		return false
	}
	if rid == "" {
		rid = newRequestID()
	}
	w.Header()["X-Request-Id"] = []string{rid}
	status, n := http.StatusTooManyRequests, 0
	if s.Hot.Admit == nil || s.Hot.Admit(w, r) {
		status, n = cache.WriteLast(w, r, cache.Result{Entry: e}, cc)
	}
	if t := s.Hot.Telemetry; t != nil {
		t.End(w, r, l, s.hotRoute[rt], status, int64(n))
	}
	return true
}

// productKey returns the cache key of a path "/v1/products/{id}" whose
// id is canonical (as pathID accepts it): cache.ProductKey(id), made from
// the path's digits without formatting the id again.
func productKey(path string) (string, bool) {
	s, ok := strings.CutPrefix(path, "/v1/products/")
	if !ok || s == "" || len(s) > 19 || s[0] == '0' {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", false
	}
	return cache.ProductKeyPrefix + s, true
}
