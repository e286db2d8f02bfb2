package resilience

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/problem"
)

func classOf(r *http.Request) Class {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/checkout"):
		return Critical
	case strings.HasPrefix(r.URL.Path, "/v1/cart"):
		return Interactive
	case strings.HasPrefix(r.URL.Path, "/healthz"):
		return Exempt
	}
	return Browse
}

// TestConcurrencySheds: at a fixed limit of 10, browse may fill 7 slots,
// cart 8 (0.85), checkout all 10; health checks are never limited.
func TestConcurrencySheds(t *testing.T) {
	c, err := NewConcurrency(ConcurrencyConfig{MinLimit: 10, MaxLimit: 10, InitialLimit: 10, Classify: classOf})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var started sync.WaitGroup
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
	}))
	do := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		w.Header().Set("X-Request-Id", "rid")
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	var done sync.WaitGroup
	hold := func(path string, n int) {
		for range n {
			started.Add(1)
			done.Go(func() {
				if w := do(path); w.Code != 200 {
					t.Errorf("held %s: %d", path, w.Code)
				}
			})
		}
		started.Wait()
	}
	defer func() { close(release); done.Wait() }()

	hold("/v1/products/1", 7)
	w := do("/v1/products/2")
	if w.Code != 503 {
		t.Fatalf("8th browse request: %d, want 503 (browse may fill 7 of 10)", w.Code)
	}
	if w.Header().Get("Retry-After") != "1" {
		t.Errorf("shed response Retry-After %q, want 1", w.Header().Get("Retry-After"))
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Type != problem.TypeOverloaded || p.Status != 503 || p.RequestID != "rid" {
		t.Errorf("shed problem = %s (%v)", w.Body, err)
	}
	hold("/v1/cart", 2) // admitted at 7 and 8 in flight (< 8.5)
	if w := do("/v1/cart"); w.Code != 503 {
		t.Errorf("cart at 9 of 10: %d, want 503", w.Code)
	}
	hold("/v1/checkout", 1) // checkout may fill the limit
	if got := c.Inflight(); got != 10 {
		t.Errorf("Inflight() = %d, want 10", got)
	}
	if w := do("/v1/checkout"); w.Code != 503 {
		t.Errorf("checkout beyond the limit: %d, want 503", w.Code)
	}
	hold("/healthz", 3) // exempt: admitted beyond the limit
	if got := c.Inflight(); got != 10 {
		t.Errorf("Inflight() with exempt requests = %d, want 10", got)
	}
}

func TestConcurrencyReleasesSlots(t *testing.T) {
	c, err := NewConcurrency(ConcurrencyConfig{MinLimit: 2, MaxLimit: 2, InitialLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
	}))
	for range 100 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Code != 200 {
			t.Fatalf("sequential request: %d, want 200", w.Code)
		}
		func() {
			defer func() { recover() }()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/panic", nil))
		}()
	}
	if got := c.Inflight(); got != 0 {
		t.Errorf("Inflight() after 200 finished requests = %d, want 0", got)
	}
}

func TestNewConcurrencyDefaults(t *testing.T) {
	tests := []struct {
		name             string
		cfg              ConcurrencyConfig
		wantLimit        int
		wantErr          bool
		minLimit, maxLim int
	}{
		{"defaults", ConcurrencyConfig{}, DefaultConcurrency.InitialLimit, false, 0, 0},
		{"fixed", ConcurrencyConfig{MinLimit: 8, MaxLimit: 8}, 8, false, 0, 0},
		{"max below default initial", ConcurrencyConfig{MaxLimit: 16}, 16, false, 0, 0},
		{"min above max", ConcurrencyConfig{MinLimit: 9, MaxLimit: 8}, 0, true, 0, 0},
		{"bad share", ConcurrencyConfig{Shares: [3]float64{1, 2, 0}}, 0, true, 0, 0},
	}
	for _, tt := range tests {
		c, err := NewConcurrency(tt.cfg)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: NewConcurrency = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && c.Limit() != tt.wantLimit {
			t.Errorf("%s: Limit() = %d, want %d", tt.name, c.Limit(), tt.wantLimit)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
		}
	}))
	tests := []struct {
		name, path string
		tls        bool
		wantCSP    string
		wantHSTS   bool
	}{
		{"api over http", "/v1/products", false, apiCSP, false},
		{"api over tls", "/v1/products", true, apiCSP, true},
		{"page sets its own CSP", "/page", false, "default-src 'self'", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.path, nil)
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		hd := w.Header()
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd["Referrer-Policy"] != nil {
			t.Errorf("%s: headers %v", tt.name, hd)
		}
		if hd.Get("Content-Security-Policy") != tt.wantCSP {
			t.Errorf("%s: CSP %q, want %q", tt.name, hd.Get("Content-Security-Policy"), tt.wantCSP)
		}
		if got := hd.Get("Strict-Transport-Security") != ""; got != tt.wantHSTS {
			t.Errorf("%s: HSTS %q, want present %v", tt.name, hd.Get("Strict-Transport-Security"), tt.wantHSTS)
		}
	}
}

func TestTimeout(t *testing.T) {
	var left time.Duration
	h := Timeout(50 * time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := r.Context().Deadline()
		if !ok {
			t.Error("no deadline on the request context")
		}
		left = time.Until(dl)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if left <= 0 || left > 50*time.Millisecond {
		t.Errorf("deadline in %v, want within 50ms", left)
	}
}
