package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/money"
)

// newTestHandler returns a Handler over a fake catalog of n products.
func newTestHandler(t *testing.T, cfg Config) (*Handler, *fakeCatalog) {
	t.Helper()
	fc := newFakeCatalog(300)
	if cfg.Catalog == nil {
		cfg.Catalog = fc
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, fc
}

type result struct {
	status int
	header http.Header
	body   string
	wire   int // bytes on the wire (compressed when gzip was used)
}

// get serves one request; gz asks for gzip and decodes the body.
func get(t *testing.T, h http.Handler, method, target string, header ...string) result {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := result{status: w.Code, header: w.Header(), wire: w.Body.Len()}
	b := w.Body.Bytes()
	if w.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s %s: gzip: %v", method, target, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s %s: gunzip: %v", method, target, err)
		}
	}
	res.body = string(b)
	return res
}

func TestPages(t *testing.T) {
	h, _ := newTestHandler(t, Config{})
	p1 := h.cfg.Catalog.(*fakeCatalog).products[0]
	tests := []struct {
		name       string
		target     string
		wantStatus int
		want       []string // substrings of the body
		wantCC     string   // Cache-Control
	}{
		{"home", "/", 200, []string{"<h1>Everything you need", "Shop by category", `href="/p/1"`, `href="/c/`, `data-page="home"`}, catalogCacheControl},
		{"category", "/c/" + p1.Category, 200, []string{"<h1>" + htmlEscape(catalog.CategoryName(p1.Category)), `href="/p/1"`}, catalogCacheControl},
		{"category next page", "/c/" + p1.Category + "?cursor=" + catalog.EncodeCursor(1), 200, []string{"<h1>"}, catalogCacheControl},
		{"unknown category", "/c/no-such-thing", 404, []string{"There is no category"}, "no-store"},
		{"bad category", "/c/BAD_slug", 400, []string{"category must be a slug"}, "no-store"},
		{"search", "/search?q=" + strings.Fields(p1.Name)[1], 200, []string{"Results for", `href="/p/1"`, `value="` + strings.Fields(p1.Name)[1] + `"`}, catalogCacheControl},
		{"search no results", "/search?q=zzzzqqq", 200, []string{"No products match"}, catalogCacheControl},
		{"search bad cursor", "/search?q=a&cursor=!!", 400, []string{"cursor is malformed"}, "no-store"},
		{"search escapes", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", 200, []string{"&lt;script&gt;"}, catalogCacheControl},
		{"product", "/p/1", 200, []string{"<h1>" + htmlEscape(p1.Name) + "</h1>", `id="add-form"`, `data-product="1"`, p1.SKU, `for="qty"`}, catalogCacheControl},
		{"unknown product", "/p/99999", 404, []string{"does not exist"}, "no-store"},
		{"bad product id", "/p/abc", 404, []string{"no such product"}, "no-store"},
		{"cart shell", "/cart", 200, []string{`data-page="cart"`, `id="cart"`}, "no-cache"},
		{"checkout shell", "/checkout", 200, []string{`data-page="checkout"`, `id="place"`, `<label for="card">`}, "no-cache"},
		{"orders shell", "/orders", 200, []string{`data-page="orders"`}, "no-cache"},
		{"order shell", "/orders/0190-abc", 200, []string{`data-page="order"`}, "no-cache"},
		{"login", "/login", 200, []string{`data-action="login"`, `<label for="email">`, `<label for="password">`}, "no-cache"},
		{"register", "/register", 200, []string{`data-action="register"`, `autocomplete="new-password"`}, "no-cache"},
		{"dashboard", "/dashboard", 200, []string{`data-page="dashboard"`, "/static/dash.", "Route groups"}, "no-cache"},
		{"unknown page", "/nope", 404, []string{"There is no page at /nope"}, "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, "GET", tt.target, "Accept-Encoding", "gzip")
			if res.status != tt.wantStatus {
				t.Fatalf("GET %s = %d, want %d; body:\n%s", tt.target, res.status, tt.wantStatus, res.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("GET %s: body lacks %q", tt.target, w)
				}
			}
			if got := res.header.Get("Cache-Control"); got != tt.wantCC {
				t.Errorf("GET %s: Cache-Control = %q, want %q", tt.target, got, tt.wantCC)
			}
			if got := res.header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
				t.Errorf("GET %s: CSP = %q", tt.target, got)
			}
			if got := res.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("GET %s: Content-Type = %q", tt.target, got)
			}
			if got := res.header.Get("Referrer-Policy"); got != "same-origin" {
				t.Errorf("GET %s: Referrer-Policy = %q, want same-origin", tt.target, got)
			}
			if strings.Contains(res.body, "<script>") || strings.Contains(res.body, " style=") {
				t.Errorf("GET %s: inline script or style (the CSP forbids them)", tt.target)
			}
		})
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func TestStoreDownIs503(t *testing.T) {
	h, fc := newTestHandler(t, Config{})
	fc.down.Store(true)
	for _, target := range []string{"/", "/p/1", "/search?q=oak", "/c/audio"} {
		res := get(t, h, "GET", target)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" || !strings.Contains(res.body, "busy") {
			t.Errorf("GET %s with the store down = %d (Retry-After %q), want 503 with Retry-After", target, res.status, res.header.Get("Retry-After"))
		}
	}
	// Shells do not need the store.
	if res := get(t, h, "GET", "/cart"); res.status != 200 {
		t.Errorf("GET /cart with the store down = %d, want 200", res.status)
	}
}

func TestConditionalAndCompressed(t *testing.T) {
	h, _ := newTestHandler(t, Config{})
	first := get(t, h, "GET", "/p/2", "Accept-Encoding", "gzip")
	etag := first.header.Get("ETag")
	if etag == "" || first.header.Get("Content-Encoding") != "gzip" || first.header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("GET /p/2: ETag %q, Content-Encoding %q, Vary %q", etag, first.header.Get("Content-Encoding"), first.header.Get("Vary"))
	}
	if first.wire >= len(first.body) {
		t.Errorf("gzip did not shrink the page: %d >= %d", first.wire, len(first.body))
	}
	plain := get(t, h, "GET", "/p/2")
	if plain.header.Get("Content-Encoding") != "" || plain.body != first.body || plain.header.Get("ETag") != etag {
		t.Errorf("GET /p/2 without gzip: encoding %q, same body %v, ETag %q vs %q", plain.header.Get("Content-Encoding"), plain.body == first.body, plain.header.Get("ETag"), etag)
	}
	if res := get(t, h, "GET", "/p/2", "If-None-Match", etag); res.status != http.StatusNotModified || res.body != "" {
		t.Errorf("GET /p/2 If-None-Match = %d, want 304 and no body", res.status)
	}
	if res := get(t, h, "GET", "/p/2", "Accept-Encoding", "gzip;q=0"); res.header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 still got gzip")
	}
	if res := get(t, h, "HEAD", "/p/2"); res.status != 200 || res.body != "" {
		t.Errorf("HEAD /p/2 = %d with %d bytes, want 200 and no body", res.status, len(res.body))
	}
}

var assetRE = regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)

func TestStaticAssets(t *testing.T) {
	h, _ := newTestHandler(t, Config{})
	home := get(t, h, "GET", "/dashboard")
	urls := assetRE.FindAllStringSubmatch(home.body, -1)
	if len(urls) < 5 { // icon, app.css, dash.css, app.js, dash.js
		t.Fatalf("dashboard page references %d assets, want 5: %v", len(urls), urls)
	}
	for _, m := range urls {
		u := m[1]
		if !regexp.MustCompile(`^/static/[a-z]+\.[0-9a-f]{10}\.(css|js|svg)$`).MatchString(u) {
			t.Errorf("asset URL %q is not content-hashed", u)
		}
		res := get(t, h, "GET", u, "Accept-Encoding", "gzip")
		if res.status != 200 || res.header.Get("Cache-Control") != immutable {
			t.Errorf("GET %s = %d, Cache-Control %q; want 200 and %q", u, res.status, res.header.Get("Cache-Control"), immutable)
		}
		a := h.assets.byFile[strings.TrimPrefix(u, "/static/")]
		if res.body != string(a.body) {
			t.Errorf("GET %s: body differs from the embedded file", u)
		}
		if res304 := get(t, h, "GET", u, "If-None-Match", res.header.Get("ETag")); res304.status != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match = %d, want 304", u, res304.status)
		}
	}
	if u, err := h.assets.URL("nope.css"); err == nil {
		t.Errorf("URL(nope.css) = %q, want an error", u)
	}
	if res := get(t, h, "GET", "/static/app.css"); res.status != 404 {
		t.Errorf("unhashed asset name = %d, want 404", res.status)
	}
	// The API's edge sets a CSP that allows nothing; the worker's own must
	// replace it, or the worker cannot fetch what it caches.
	strict := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		h.ServeHTTP(w, r)
	})
	sw := get(t, strict, "GET", "/sw.js")
	if got := sw.header.Get("Content-Security-Policy"); !strings.Contains(got, "connect-src 'self'") {
		t.Errorf("sw.js CSP = %q, want one that lets the worker fetch from its origin", got)
	}
	if got := sw.header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("sw.js: Referrer-Policy = %q, want same-origin (the worker's requests follow it)", got)
	}
	if sw.status != 200 || sw.header.Get("Cache-Control") != "no-cache" || !strings.Contains(sw.header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET /sw.js = %d, Cache-Control %q, Content-Type %q", sw.status, sw.header.Get("Cache-Control"), sw.header.Get("Content-Type"))
	}
	for _, u := range h.assets.urls() {
		if !strings.Contains(sw.body, `"`+u+`"`) {
			t.Errorf("sw.js does not precache %s", u)
		}
	}
	if res := get(t, h, "GET", "/favicon.ico"); res.status != 200 || res.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET /favicon.ico = %d %q", res.status, res.header.Get("Content-Type"))
	}
}

// TestAssetHashChangesWithContent checks that the URL is a function of the bytes.
func TestAssetHashChangesWithContent(t *testing.T) {
	a, b := newAsset("x.css", []byte("a{}")), newAsset("x.css", []byte("b{}"))
	if a.etag == b.etag {
		t.Errorf("two different files got the same hash %s", a.etag)
	}
	if c := newAsset("x.css", []byte("a{}")); c.etag != a.etag {
		t.Errorf("the same bytes got two hashes: %s, %s", a.etag, c.etag)
	}
}

// pageWeightBudget is the budget: storefront HTML+CSS+JS on first
// load, compressed.
const pageWeightBudget = 100 << 10

// TestPageWeightBudget sums what a first visit to each storefront page
// downloads, gzip-compressed as served: the HTML and every asset it links.
func TestPageWeightBudget(t *testing.T) {
	h, _ := newTestHandler(t, Config{})
	for _, target := range []string{"/", "/search?q=oak", "/p/1", "/cart", "/checkout", "/orders", "/login", "/dashboard"} {
		page := get(t, h, "GET", target, "Accept-Encoding", "gzip")
		total := page.wire
		parts := []string{target + "=" + strconv.Itoa(page.wire)}
		for _, m := range assetRE.FindAllStringSubmatch(page.body, -1) {
			a := get(t, h, "GET", m[1], "Accept-Encoding", "gzip")
			total += a.wire
			parts = append(parts, m[1]+"="+strconv.Itoa(a.wire))
		}
		t.Logf("%s: %d bytes compressed (%s)", target, total, strings.Join(parts, ", "))
		if total > pageWeightBudget {
			t.Errorf("%s weighs %d bytes compressed on first load, budget %d", target, total, pageWeightBudget)
		}
	}
}

func TestFormatPrice(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{1234, "USD", "$12.34"},
		{5, "USD", "$0.05"},
		{123456789, "USD", "$1,234,567.89"},
		{-250, "USD", "-$2.50"},
		{1000, "EUR", "10.00 EUR"},
	}
	for _, tt := range tests {
		if got := formatPrice(money.Money{Amount: tt.amount, Currency: tt.currency}); got != tt.want {
			t.Errorf("formatPrice(%d %s) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}
