package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/klauspost/compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/catalog"
)

// listingBody is a realistic listing page: 20 generated products.
func listingBody(t testing.TB) []byte {
	b, err := json.Marshal(map[string]any{"items": catalog.Generate(20)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func productBody(t testing.TB) []byte {
	b, err := json.Marshal(catalog.Generate(1)[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

var testCC = cache.CacheControl("public, max-age=60")

func TestWrite(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx := context.Background()
	big, small := listingBody(t), productBody(t)
	get := func(key string, body []byte) cache.Result {
		r, err := c.Get(ctx, key, time.Minute, func(context.Context) ([]byte, error) { return body, nil })
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bigR, smallR := get("big", big), get("small", small)
	if bigR.Gzip == nil || smallR.Gzip != nil {
		t.Fatalf("gzip variants: big %d bytes, small %d; want one for the %d-byte body only", len(bigR.Gzip), len(smallR.Gzip), len(big))
	}
	t.Logf("listing of 20: %d bytes, gzip %d (%.0f%%); product: %d bytes, not compressed",
		len(big), len(bigR.Gzip), 100*float64(len(bigR.Gzip))/float64(len(big)), len(small))
	gzTag := cache.GzipETag(bigR.ETag)

	for _, tc := range []struct {
		name       string
		res        cache.Result
		method     string
		ae, inm    string
		wantStatus int
		wantCE     string
		wantETag   string
		wantBody   []byte
	}{
		{"identity", bigR, "GET", "", "", 200, "", bigR.ETag, big},
		{"gzip", bigR, "GET", "gzip, deflate, br", "", 200, "gzip", gzTag, big},
		{"gzip refused", bigR, "GET", "gzip;q=0, br", "", 200, "", bigR.ETag, big},
		{"gzip with q", bigR, "GET", "br;q=1.0, gzip;q=0.5", "", 200, "gzip", gzTag, big},
		{"small not compressed", smallR, "GET", "gzip", "", 200, "", smallR.ETag, small},
		{"304 identity tag", bigR, "GET", "", bigR.ETag, 304, "", bigR.ETag, nil},
		{"304 gzip tag", bigR, "GET", "gzip", `"x", ` + gzTag, 304, "", gzTag, nil},
		{"304 weak", bigR, "GET", "", "W/" + bigR.ETag, 304, "", bigR.ETag, nil},
		{"304 star", smallR, "GET", "", "*", 304, "", smallR.ETag, nil},
		{"other tag", bigR, "GET", "", `"nope"`, 200, "", bigR.ETag, big},
		{"head", smallR, "HEAD", "", "", 200, "", smallR.ETag, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/x", nil)
			if tc.ae != "" {
				r.Header.Set("Accept-Encoding", tc.ae)
			}
			if tc.inm != "" {
				r.Header.Set("If-None-Match", tc.inm)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cache.Write(w, r, tc.res, testCC)
			}))
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL, nil)
			req.Header = r.Header
			tr := &http.Transport{DisableCompression: true}
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if ce := res.Header.Get("Content-Encoding"); ce != tc.wantCE {
				t.Errorf("Content-Encoding = %q, want %q", ce, tc.wantCE)
			}
			if et := res.Header.Get("ETag"); et != tc.wantETag {
				t.Errorf("ETag = %q, want %q", et, tc.wantETag)
			}
			if cc := res.Header.Get("Cache-Control"); cc != testCC[0] {
				t.Errorf("Cache-Control = %q", cc)
			}
			if v := res.Header.Get("Vary"); v != "Accept-Encoding" {
				t.Errorf("Vary = %q, want Accept-Encoding", v)
			}
			if tc.wantCE == "gzip" {
				body = gunzip(t, body)
			}
			if !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body = %.60q..., want %.60q...", body, tc.wantBody)
			}
			if tc.wantStatus == 200 && tc.method == "GET" {
				if cl := res.Header.Get("Content-Length"); cl == "" {
					t.Errorf("no Content-Length")
				}
			}
			if res.Header.Get("Age") != "" {
				t.Errorf("Age on a fresh response")
			}
		})
	}
}

func TestWriteStaleAge(t *testing.T) {
	res := cache.Result{Entry: cache.NewEntry([]byte(`{}`)), Stale: true, Age: 95 * time.Second}
	w := httptest.NewRecorder()
	cache.Write(w, httptest.NewRequest("GET", "/", nil), res, testCC)
	if w.Code != 200 || w.Header().Get("Age") != "95" {
		t.Errorf("stale: status %d, Age %q; want 200, 95", w.Code, w.Header().Get("Age"))
	}
}

// TestGzip: the middleware compresses compressible responses from
// minSize on, leaves small, incompressible and already encoded ones alone
// and suffixes the ETag of what it compresses.
func TestGzip(t *testing.T) {
	mw, err := cache.Gzip(1400, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("brisk checkout ", 200) // 3,000 bytes
	pre := cache.NewEntry([]byte(text))
	for _, tc := range []struct {
		name     string
		ct       string
		size     int
		ae       string
		etag     string
		want     bool // compressed by the middleware
		wantETag string
	}{
		{"json big", "application/json", 3000, "gzip", `"a"`, true, `"a-gzip"`},
		{"problem json", "application/problem+json", 3000, "gzip", "", true, ""},
		{"yaml", "application/yaml", 3000, "gzip", "", true, ""},
		{"html", "text/html; charset=utf-8", 3000, "gzip", "", true, ""},
		{"below threshold", "application/json", 1399, "gzip", `"a"`, false, `"a"`},
		{"at threshold", "application/json", 1400, "gzip", "", true, ""},
		{"png", "image/png", 3000, "gzip", "", false, ""},
		{"no accept", "application/json", 3000, "", `"a"`, false, `"a"`},
		{"refused", "application/json", 3000, "gzip;q=0", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				if tc.etag != "" {
					w.Header().Set("ETag", tc.etag)
				}
				w.Write([]byte(text[:tc.size]))
			}))
			r := httptest.NewRequest("GET", "/", nil)
			if tc.ae != "" {
				r.Header.Set("Accept-Encoding", tc.ae)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get("Content-Encoding") == "gzip"
			if got != tc.want {
				t.Fatalf("compressed = %v, want %v", got, tc.want)
			}
			body := w.Body.Bytes()
			if got {
				body = gunzip(t, body)
			}
			if string(body) != text[:tc.size] {
				t.Errorf("body corrupted")
			}
			if et := w.Header().Get("ETag"); et != tc.wantETag {
				t.Errorf("ETag = %q, want %q", et, tc.wantETag)
			}
			if !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary = %q", w.Header().Get("Vary"))
			}
		})
	}
	t.Run("precompressed passes through", func(t *testing.T) {
		c := newCache(t, cache.Config{})
		res, _ := c.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) { return []byte(text), nil })
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cache.Write(w, r, res, testCC) }))
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if string(gunzip(t, w.Body.Bytes())) != text {
			t.Errorf("double-compressed or corrupted: %d bytes", w.Body.Len())
		}
		if et := w.Header().Get("ETag"); et != cache.GzipETag(res.ETag) || res.ETag != pre.ETag {
			t.Errorf("ETag = %q, want %q", et, cache.GzipETag(res.ETag))
		}
		if cl, _ := strconv.Atoi(w.Header().Get("Content-Length")); cl != w.Body.Len() {
			t.Errorf("Content-Length %d, body %d", cl, w.Body.Len())
		}
	})
}

// BenchmarkGzip measures what compressing a listing page costs per
// response and what it saves, at the middleware's level (BestSpeed) and
// at the level of the cached variants (default), against the time the
// bytes take on a 10 Mbit/s link.
func BenchmarkGzip(b *testing.B) {
	body := listingBody(b)
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run("level"+strconv.Itoa(level), func(b *testing.B) {
			var buf bytes.Buffer
			w, _ := gzip.NewWriterLevel(&buf, level)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				w.Reset(&buf)
				w.Write(body)
				w.Close()
			}
			saved := len(body) - buf.Len()
			b.ReportMetric(float64(buf.Len())/float64(len(body)), "ratio")
			b.ReportMetric(float64(saved)*8/10e6*1e6, "µs-saved@10Mbit")
		})
	}
}

// TestGzipRevalidation: a client revalidating a copy the middleware
// compressed (ETag "x-gzip") gets a 304 from a handler that knows only
// its identity ETag.
func TestGzipRevalidation(t *testing.T) {
	mw, err := cache.Gzip(10, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		if strings.Contains(r.Header.Get("If-None-Match"), `"x"`) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(strings.Repeat("<p>page</p>", 100)))
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	etag := w.Header().Get("ETag")
	if w.Header().Get("Content-Encoding") != "gzip" || etag != `"x-gzip"` {
		t.Fatalf("first response: encoding %q, ETag %q", w.Header().Get("Content-Encoding"), etag)
	}
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified {
		t.Errorf("revalidation with %s: status %d, want 304", etag, w.Code)
	}
}
