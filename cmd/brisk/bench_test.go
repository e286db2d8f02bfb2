package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/payment"
	"github.com/briskhq/brisk/internal/sqlite"
)

// benchServer wires the real API handler to a seeded SQLite store and a
// real payment service on loopback gRPC, without an HTTP listener, so the
// benchmarks measure the handler, the store and the payment call.
func benchServer(b *testing.B) (*apiServer, string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	log := slog.New(slog.DiscardHandler)
	be, err := openBackend(ctx, "", dir, sqlite.SyncNormal, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(be.close)
	if err := be.migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := seedCatalog(ctx, be.loader, 10_000, log); err != nil {
		b.Fatal(err)
	}
	af := &apiFlags{jwtIssuer: "brisk", jwtAudience: "brisk-api", tokenTTL: 1 << 40, argonMemoryKiB: 64, argonTime: 1}
	if _, err := ensureAccounts(ctx, be.users, af.argon(), accountFlags{"shopper@brisk.test", "shopper-pass-1", "admin@brisk.test", "admin-pass-1"}, ""); err != nil {
		b.Fatal(err)
	}
	keys, err := loadKeys("", log)
	if err != nil {
		b.Fatal(err)
	}
	store, err := payment.Open(filepath.Join(dir, "payment.db"), sqlite.SyncNormal)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	sim, _ := payment.New(store, payment.Faults{}, log)
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(startPayment(ln, sim, log))
	conn, err := payment.Dial(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	a := newAPIServer(be, payment.NewClient(conn, payment.ClientConfig{}), keys, af, log)
	u, err := be.users.UserByEmail(ctx, "shopper@brisk.test")
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := (&auth.Tokens{Keys: keys, Issuer: af.jwtIssuer, Audience: af.jwtAudience, TTL: af.tokenTTL}).Issue(u)
	if err != nil {
		b.Fatal(err)
	}
	return a, tok
}

func BenchmarkProductGET(b *testing.B) {
	a, _ := benchServer(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("GET", fmt.Sprintf("/v1/products/%d", 1+i%10_000), nil)
		w := httptest.NewRecorder()
		a.http.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkCheckout(b *testing.B) {
	a, tok := benchServer(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf(`{"payment_token":"tok_visa","items":[{"product_id":%d,"quantity":1}]}`, 1+i%10_000)
		req := httptest.NewRequest("POST", "/v1/checkout", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
		w := httptest.NewRecorder()
		a.http.ServeHTTP(w, req)
		if w.Code != http.StatusCreated && w.Code != http.StatusConflict {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
