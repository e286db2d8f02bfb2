package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// TestCacheHTTP runs brisk up and checks the browser/CDN layer end to
// end: ETag + Cache-Control + Vary, 304 on If-None-Match, gzip only
// above the threshold, no-store on private responses, and an admin
// change visible at once with a new ETag, in the product and listings.
func TestCacheHTTP(t *testing.T) {
	_, c, _ := startUp(t)

	// 304 round trip.
	r := c.do("GET", "/v1/products/5", nil).want(t, 200, "product")
	etag := r.header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-z]+"$`).MatchString(etag) {
		t.Errorf("ETag %q is not a strong tag", etag)
	}
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "public") || !strings.Contains(cc, "max-age=") || !strings.Contains(cc, "stale-while-revalidate=") {
		t.Errorf("Cache-Control %q", cc)
	}
	if v := r.header.Get("Vary"); !strings.Contains(v, "Accept-Encoding") {
		t.Errorf("Vary %q", v)
	}
	nm := c.do("GET", "/v1/products/5", nil, "If-None-Match", etag).want(t, 304, "revalidation")
	if len(nm.body) != 0 || nm.header.Get("ETag") != etag {
		t.Errorf("304: body %q, ETag %q", nm.body, nm.header.Get("ETag"))
	}
	if len(r.body) >= 1400 {
		t.Fatalf("a product is %d bytes: the gzip threshold test below needs a small one", len(r.body))
	}
	if g := c.do("GET", "/v1/products/5", nil, "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "" || g.header.Get("ETag") != etag {
		t.Errorf("small product with gzip accepted: Content-Encoding %q, ETag %q; want identity", g.header.Get("Content-Encoding"), g.header.Get("ETag"))
	}

	// A listing page is big enough to compress: the cached gzip variant
	// with its own ETag, which revalidates too.
	// (Without an Accept-Encoding of its own, Go's client asks for gzip
	// and decompresses transparently.)
	plain := c.do("GET", "/v1/products?limit=20", nil, "Accept-Encoding", "identity").want(t, 200, "listing")
	gz := c.do("GET", "/v1/products?limit=20", nil, "Accept-Encoding", "gzip").want(t, 200, "gzipped listing")
	if gz.header.Get("Content-Encoding") != "gzip" || len(gz.body) >= len(plain.body)/2 {
		t.Fatalf("listing with gzip: Content-Encoding %q, %d bytes for %d", gz.header.Get("Content-Encoding"), len(gz.body), len(plain.body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.body))
	if err != nil {
		t.Fatal(err)
	}
	if unz, _ := io.ReadAll(zr); !bytes.Equal(unz, plain.body) {
		t.Error("gzipped listing differs from the plain one")
	}
	gzTag := gz.header.Get("ETag")
	if gzTag == plain.header.Get("ETag") || !strings.HasSuffix(gzTag, `-gzip"`) {
		t.Errorf("gzip ETag %q, identity %q: want a distinct -gzip tag", gzTag, plain.header.Get("ETag"))
	}
	c.do("GET", "/v1/products?limit=20", nil, "Accept-Encoding", "gzip", "If-None-Match", gzTag).want(t, 304, "gzip revalidation")
	t.Logf("listing of 20: %d bytes, gzip %d", len(plain.body), len(gz.body))

	// Private responses are never stored.
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	for _, path := range []string{"/v1/cart", "/v1/orders"} {
		if cc := shopper.do("GET", path, nil).want(t, 200, path).header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
		}
	}

	// An admin price change: the next GET has the new price and a new
	// ETag (the old one no longer gives 304), and so does the listing.
	admin := c.as(c.login("admin@brisk.test", "admin-pass-1"))
	var before product
	r.json(t, &before)
	newPrice := before.Price.Amount + 111
	admin.do("PUT", "/v1/admin/products/5", map[string]any{"price": map[string]any{"amount": newPrice, "currency": "USD"}}).want(t, 200, "price change")
	var after product
	r2 := c.do("GET", "/v1/products/5", nil, "If-None-Match", etag).want(t, 200, "product after change")
	r2.json(t, &after)
	if after.Price.Amount != newPrice || r2.header.Get("ETag") == etag {
		t.Errorf("after change: price %d (want %d), ETag %q (old %q)", after.Price.Amount, newPrice, r2.header.Get("ETag"), etag)
	}
	var page struct{ Items []product }
	c.do("GET", "/v1/products?limit=20", nil).want(t, 200, "listing after change").json(t, &page)
	for _, p := range page.Items {
		if p.ID == 5 && p.Price.Amount != newPrice {
			t.Errorf("listing after change: product 5 costs %d, want %d", p.Price.Amount, newPrice)
		}
	}

	// The cache's metrics are exported.
	m := c.do("GET", "/metrics", nil).want(t, 200, "metrics")
	for _, name := range []string{`brisk_cache_hits_total{layer="l1"}`, `brisk_cache_misses_total{layer="l1"}`, "brisk_cache_load_duration_seconds_count",
		"brisk_cache_coalesced_waits_total", "brisk_cache_early_refreshes_total", "brisk_cache_stale_served_total", `brisk_cache_evictions_total{cause="size",layer="l1"}`} {
		if !bytes.Contains(m.body, []byte(name)) {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

// TestCacheInvalidationAcrossInstances: two brisk api instances on one
// PostgreSQL and one Redis. After an admin price change through one,
// both return the new price and a new ETag within 100 ms.
func TestCacheInvalidationAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL + Redis stack; skipped in -short")
	}
	s := startStack(t, 2, "")
	a, b := s.clients[0], s.clients[1]
	const path = "/v1/products/9"
	var p product
	etags := map[*client]string{}
	for _, c := range s.clients {
		// Twice: the second is a cache hit (L1), so a stale copy is there
		// to be invalidated.
		c.do("GET", path, nil).want(t, 200, "warm")
		r := c.do("GET", path, nil).want(t, 200, "warm")
		r.json(t, &p)
		etags[c] = r.header.Get("ETag")
		c.do("GET", "/v1/products?limit=20", nil).want(t, 200, "warm listing")
	}
	admin := a.as(a.login("admin@brisk.test", "admin-pass-1"))
	newPrice := p.Price.Amount + 1
	admin.do("PUT", "/v1/admin/products/9", map[string]any{"price": map[string]any{"amount": newPrice, "currency": "USD"}}).want(t, 200, "price change")
	changed := time.Now()
	for _, c := range []*client{b, a} {
		for {
			r := c.do("GET", path, nil).want(t, 200, "after change")
			var got product
			r.json(t, &got)
			var page struct{ Items []product }
			c.do("GET", "/v1/products?limit=20", nil).want(t, 200, "listing after change").json(t, &page)
			listed := int64(0)
			for _, lp := range page.Items {
				if lp.ID == 9 {
					listed = lp.Price.Amount
				}
			}
			if got.Price.Amount == newPrice && r.header.Get("ETag") != etags[c] && listed == newPrice {
				break
			}
			if time.Since(changed) > 100*time.Millisecond {
				t.Fatalf("%s: %v after the change: price %d, listed %d (want %d), ETag %q (before %q)",
					c.base, time.Since(changed), got.Price.Amount, listed, newPrice, r.header.Get("ETag"), etags[c])
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("both instances serve the new price %v after the admin change returned", time.Since(changed))
}

// TestCacheThroughput compares cached product GETs through brisk up with
// a bare net/http server answering the same bytes, with wrk, in one run.
// It is a measurement: set BRISK_WRK=1 (and install wrk) to run it;
// BRISK_WRK_DURATION (10s), BRISK_WRK_ROUNDS (1) and BRISK_WRK_ARGS
// (extra flags of brisk up, e.g. "--telemetry=false") tune it.
func TestCacheThroughput(t *testing.T) {
	if os.Getenv("BRISK_WRK") == "" {
		t.Skip("a 2 x 10 s wrk measurement: set BRISK_WRK=1 to run it")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk not installed (apt-get install -y wrk)")
	}
	extra := strings.Fields(os.Getenv("BRISK_WRK_ARGS")) // e.g. --telemetry=false
	_, c, _ := startUp(t, extra...)
	r := c.do("GET", "/v1/products/42", nil).want(t, 200, "product")
	body := r.body

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})}
	go bare.Serve(ln)
	defer bare.Close()

	dur := os.Getenv("BRISK_WRK_DURATION")
	if dur == "" {
		dur = "10s"
	}
	wrk := func(url string) float64 {
		out, err := exec.Command("wrk", "-t2", "-c64", "-d"+dur, "--latency", url).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", url, err, out)
		}
		t.Logf("wrk %s\n%s", url, out)
		if bytes.Contains(out, []byte("Non-2xx")) {
			t.Errorf("wrk %s saw non-2xx responses", url)
		}
		m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no Requests/sec in wrk output")
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	// Interleaved rounds, so that a change in the machine's load hits
	// both sides alike.
	rounds, _ := strconv.Atoi(os.Getenv("BRISK_WRK_ROUNDS"))
	rounds = max(rounds, 1)
	var bareRPS, briskRPS float64
	for range rounds {
		bareRPS += wrk("http://"+ln.Addr().String()+"/v1/products/42") / float64(rounds)
		briskRPS += wrk(c.base+"/v1/products/42") / float64(rounds)
	}
	t.Logf("cached product GET: brisk %.0f req/s, bare net/http %.0f req/s, ratio %.2f (args %q)", briskRPS, bareRPS, briskRPS/bareRPS, extra)
	fmt.Fprintf(os.Stderr, "CACHE-THROUGHPUT brisk=%.0f bare=%.0f ratio=%.3f args=%q\n", briskRPS, bareRPS, briskRPS/bareRPS, extra)
}
