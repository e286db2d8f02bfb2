package deploytest

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeInstance stands in for a brisk API instance behind the edge: it
// answers like brisk does (Cache-Control, Vary) and counts what it sees.
type fakeInstance struct {
	name    string
	addr    string
	conns   atomic.Int64 // TCP connections accepted
	hits    sync.Map     // path -> *atomic.Int64
	posts   atomic.Int64
	dropped atomic.Int64 // requests answered by closing the connection
}

func (f *fakeInstance) count(path string) int64 {
	v, _ := f.hits.LoadOrStore(path, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func startFake(t *testing.T, name string, drop bool) *fakeInstance {
	f := &fakeInstance{name: name}
	mux := http.NewServeMux()
	hit := func(r *http.Request) {
		v, _ := f.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	dropConn := func(w http.ResponseWriter) {
		f.dropped.Add(1)
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		hit(r)
		w.Header().Set("Cache-Control", "public, max-age=60, stale-while-revalidate=300")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("ETag", `"p`+r.PathValue("id")+`"`)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%s,"from":%q}`, r.PathValue("id"), name)
	})
	mux.HandleFunc("GET /v1/cart", func(w http.ResponseWriter, r *http.Request) {
		hit(r)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"items":[],"from":%q}`, name)
	})
	mux.HandleFunc("GET /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		hit(r)
		if drop {
			dropConn(w)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, name)
	})
	mux.HandleFunc("GET /v1/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"pad":%q}`, strings.Repeat("brisk ", 1000))
	})
	mux.HandleFunc("GET /v1/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	mux.HandleFunc("POST /v1/checkout", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		f.posts.Add(1)
		if drop {
			dropConn(w)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, name)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Upstream", name)
			mux.ServeHTTP(w, r)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// TestNginxEdge runs the real nginx with deploy/nginx in front of fake
// instances and checks each promise of the config.
func TestNginxEdge(t *testing.T) {
	nginxPath(t)
	a, b := startFake(t, "a", false), startFake(t, "b", false)
	flaky := startFake(t, "flaky", true)
	canary := startFake(t, "canary", false)
	e := prepareEdge(t, []string{a.addr, b.addr, flaky.addr}, []string{canary.addr})
	e.start(t)
	c := e.client(true)

	t.Run("TLS and HTTP/2", func(t *testing.T) {
		res, _ := get(t, c, e.url("/v1/small"), "X-Brisk-Track", "stable")
		if res.ProtoMajor != 2 || res.TLS == nil {
			t.Errorf("protocol %s, TLS %v: want HTTP/2 over TLS", res.Proto, res.TLS != nil)
		}
		if res.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("no HSTS header")
		}
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r2, err := plain.Get("http://" + e.httpAddr + "/v1/products/1")
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(r2.Header.Get("Location"), "https://") {
			t.Errorf("plain HTTP: %d Location %q, want 308 to https", r2.StatusCode, r2.Header.Get("Location"))
		}
	})

	t.Run("edge cache honours Cache-Control", func(t *testing.T) {
		var statuses []string
		for range 5 {
			res, body := get(t, c, e.url("/v1/products/42"), "X-Brisk-Track", "stable")
			if !strings.Contains(body, `"id":42`) {
				t.Fatalf("body %q", body)
			}
			statuses = append(statuses, res.Header.Get("X-Cache-Status"))
		}
		if statuses[0] != "MISS" || statuses[4] != "HIT" {
			t.Errorf("cache statuses %v: want a MISS then HITs", statuses)
		}
		if n := a.count("/v1/products/42") + b.count("/v1/products/42") + flaky.count("/v1/products/42"); n != 1 {
			t.Errorf("instances served /v1/products/42 %d times, want 1 (the rest from the edge)", n)
		}
		for range 3 {
			res, _ := get(t, c, e.url("/v1/cart"), "X-Brisk-Track", "stable")
			if s := res.Header.Get("X-Cache-Status"); s == "HIT" {
				t.Errorf("a no-store cart was served from the cache")
			}
		}
		if n := a.count("/v1/cart") + b.count("/v1/cart") + flaky.count("/v1/cart"); n != 3 {
			t.Errorf("instances served /v1/cart %d times, want 3 (no-store is never cached)", n)
		}
	})

	t.Run("gzip above the threshold only", func(t *testing.T) {
		for _, tt := range []struct {
			path string
			gz   bool
		}{{"/v1/big", true}, {"/v1/small", false}} {
			res, body := get(t, c, e.url(tt.path), "Accept-Encoding", "gzip", "X-Brisk-Track", "stable")
			if got := res.Header.Get("Content-Encoding") == "gzip"; got != tt.gz {
				t.Errorf("%s gzipped = %v, want %v", tt.path, got, tt.gz)
			}
			if tt.gz {
				zr, err := gzip.NewReader(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				if !strings.Contains(string(plain), "brisk brisk") {
					t.Errorf("%s: gunzipped body %q", tt.path, plain[:min(len(plain), 40)])
				}
			}
		}
	})

	t.Run("idempotent requests retried, POST never", func(t *testing.T) {
		for i := range 30 {
			res, body := get(t, c, e.url("/v1/orders"), "X-Brisk-Track", "stable")
			if res.StatusCode != 200 || body == "flaky" {
				t.Fatalf("GET %d: %d %q: want a retry on a healthy instance", i, res.StatusCode, body)
			}
		}
		if flaky.dropped.Load() == 0 {
			t.Fatalf("the flaky instance got no request: nothing tested")
		}
		// POSTs until one reaches the flaky instance (back in the pool once
		// fail_timeout has passed): the client gets the error, and no other
		// instance sees that request.
		time.Sleep(4500 * time.Millisecond) // fail_timeout 3s, counted in whole seconds
		var failed int
		for range 60 {
			req, _ := http.NewRequest("POST", e.url("/v1/checkout"), strings.NewReader(`{}`))
			req.Header.Set("X-Brisk-Track", "stable")
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode == http.StatusBadGateway {
				failed++
			}
		}
		total := a.posts.Load() + b.posts.Load() + flaky.posts.Load()
		if failed == 0 || failed != int(flaky.posts.Load()) || total != 60 {
			t.Errorf("60 POSTs: %d answered 502, flaky got %d, instances got %d in all: want each POST sent once, failures not retried",
				failed, flaky.posts.Load(), total)
		}
	})

	t.Run("upstream keepalive", func(t *testing.T) {
		before := a.conns.Load() + b.conns.Load()
		for range 200 {
			get(t, c, e.url("/v1/small"), "X-Brisk-Track", "stable")
		}
		// 2 workers x 2 healthy instances, some slack for the flaky one's
		// closed connections.
		if opened := a.conns.Load() + b.conns.Load() - before; opened > 8 {
			t.Errorf("200 requests opened %d upstream connections: keepalive not working", opened)
		}
	})

	t.Run("weighted, sticky canary split", func(t *testing.T) {
		n, toCanary := 600, 0
		for i := range n {
			auth := fmt.Sprintf("Bearer user-%d", i)
			res, _ := get(t, c, e.url("/v1/small"), "Authorization", auth)
			side := res.Header.Get("X-Upstream")
			if side == "canary" {
				toCanary++
			}
			if i%50 == 0 { // the same client stays on its side
				for range 3 {
					again, _ := get(t, c, e.url("/v1/small"), "Authorization", auth)
					if (again.Header.Get("X-Upstream") == "canary") != (side == "canary") {
						t.Fatalf("client %s switched sides", auth)
					}
				}
			}
		}
		if share := float64(toCanary) / float64(n); share < 0.015 || share > 0.10 {
			t.Errorf("canary got %.1f%% of %d clients, want about 5%%", share*100, n)
		}
		res, _ := get(t, c, e.url("/v1/small"), "X-Brisk-Track", "canary")
		if res.Header.Get("X-Upstream") != "canary" {
			t.Errorf("X-Brisk-Track: canary went to %s", res.Header.Get("X-Upstream"))
		}
	})

	t.Run("operations endpoints not exposed", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/debug/pprof/"} {
			if res, _ := get(t, c, e.url(p)); res.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s through the edge = %d, want 404", p, res.StatusCode)
			}
		}
	})
}
