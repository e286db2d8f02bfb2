package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/briskhq/brisk/internal/problem"
)

type product struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Category  string `json:"category"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
	Price     struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"price"`
}

type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Items  []struct {
		ProductID int64 `json:"product_id"`
		Quantity  int   `json:"quantity"`
	} `json:"items"`
	Total struct {
		Amount int64 `json:"amount"`
	} `json:"total"`
}

// checkProblem asserts r is problem+json with the status and a request id
// equal to the X-Request-Id header.
func checkProblem(t *testing.T, r response, status int, what string) problem.Problem {
	t.Helper()
	r.want(t, status, what)
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("%s: Content-Type %q, want %s", what, ct, problem.ContentType)
	}
	var p problem.Problem
	r.json(t, &p)
	if p.Status != status || p.Title == "" || p.Type == "" || p.Detail == "" {
		t.Errorf("%s: problem %+v incomplete", what, p)
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("%s: request_id %q, X-Request-Id %q", what, p.RequestID, r.header.Get("X-Request-Id"))
	}
	return p
}

func TestEndToEnd(t *testing.T) {
	p, c, _ := startUp(t)
	if !strings.Contains(p.stdout.String(), "shopper@brisk.test  password: shopper-pass-1") {
		t.Errorf("stdout does not print the demo shopper:\n%s", p.stdout)
	}

	// Ops endpoints.
	c.do("GET", "/healthz", nil).want(t, 200, "healthz")
	c.do("GET", "/readyz", nil).want(t, 200, "readyz")
	if r := c.do("GET", "/openapi.yaml", nil).want(t, 200, "openapi"); !strings.HasPrefix(string(r.body), "openapi: 3.1") {
		t.Errorf("openapi.yaml starts %q", r.body[:20])
	}
	if r := c.do("GET", "/.well-known/jwks.json", nil).want(t, 200, "jwks"); !strings.Contains(string(r.body), `"OKP"`) || strings.Contains(string(r.body), `"d"`) {
		t.Errorf("jwks = %s", r.body)
	}

	// Browse and search.
	var page struct {
		Items      []product `json:"items"`
		NextCursor string    `json:"next_cursor"`
	}
	c.do("GET", "/v1/products?limit=5", nil).want(t, 200, "list").json(t, &page)
	if len(page.Items) != 5 || page.NextCursor == "" || page.Items[0].ID != 1 {
		t.Fatalf("first page = %+v", page)
	}
	first := page.Items[4].ID
	c.do("GET", "/v1/products?limit=5&cursor="+page.NextCursor, nil).want(t, 200, "page 2").json(t, &page)
	if page.Items[0].ID <= first {
		t.Errorf("page 2 starts at %d, after %d", page.Items[0].ID, first)
	}
	c.do("GET", "/v1/products?q=oak&limit=100", nil).want(t, 200, "search").json(t, &page)
	if len(page.Items) == 0 {
		t.Fatal("search for oak found nothing")
	}
	for _, it := range page.Items {
		if !strings.Contains(strings.ToLower(it.Name), "oak") {
			t.Errorf("search oak returned %q", it.Name)
		}
	}
	cat := page.Items[0].Category
	c.do("GET", "/v1/products?category="+cat, nil).want(t, 200, "category").json(t, &page)
	for _, it := range page.Items {
		if it.Category != cat {
			t.Errorf("category %s returned %s", cat, it.Category)
		}
	}
	var cats struct {
		Items []struct{ Slug string } `json:"items"`
	}
	c.do("GET", "/v1/categories", nil).want(t, 200, "categories").json(t, &cats)
	if len(cats.Items) < 40 {
		t.Errorf("%d categories, want about 50", len(cats.Items))
	}

	// Product with ETag and 304.
	r := c.do("GET", "/v1/products/7", nil).want(t, 200, "product")
	etag := r.header.Get("ETag")
	if etag == "" || !strings.Contains(r.header.Get("Cache-Control"), "max-age") {
		t.Errorf("product headers: ETag %q Cache-Control %q", etag, r.header.Get("Cache-Control"))
	}
	c.do("GET", "/v1/products/7", nil, "If-None-Match", etag).want(t, 304, "conditional GET")
	var p7 product
	r.json(t, &p7)

	// Sign in and fill the cart.
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	checkProblem(t, c.do("GET", "/v1/cart", nil), 401, "cart without token")
	shopper.do("PUT", "/v1/cart/items/7", map[string]int{"quantity": 2}).want(t, 200, "add 7")
	shopper.do("PUT", "/v1/cart/items/3", map[string]int{"quantity": 1}).want(t, 200, "add 3")
	shopper.do("PUT", "/v1/cart/items/9", map[string]int{"quantity": 1}).want(t, 200, "add 9")
	var cart struct {
		Items []struct {
			ProductID int64 `json:"product_id"`
		} `json:"items"`
		ItemCount int `json:"item_count"`
	}
	r = shopper.do("DELETE", "/v1/cart/items/9", nil).want(t, 200, "remove 9")
	r.json(t, &cart)
	if cart.ItemCount != 3 || len(cart.Items) != 2 || cart.Items[0].ProductID != 3 {
		t.Errorf("cart = %+v, want 3 and 7", cart)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("cart Cache-Control %q, want no-store", cc)
	}

	// Checkout the cart.
	body := map[string]string{"payment_token": "tok_visa"}
	checkProblem(t, shopper.do("POST", "/v1/checkout", body), 400, "checkout without key")
	r = shopper.do("POST", "/v1/checkout", body, "Idempotency-Key", "e2e-1").want(t, 201, "checkout")
	var o order
	r.json(t, &o)
	var p3 product
	c.do("GET", "/v1/products/3", nil).want(t, 200, "product 3").json(t, &p3)
	if o.Status != "paid" || len(o.Items) != 2 || o.Total.Amount != 2*p7.Price.Amount+p3.Price.Amount {
		t.Errorf("order = %+v", o)
	}
	if loc := r.header.Get("Location"); loc != "/v1/orders/"+o.ID {
		t.Errorf("Location %q", loc)
	}
	replay := shopper.do("POST", "/v1/checkout", body, "Idempotency-Key", "e2e-1").want(t, 201, "replay")
	if string(replay.body) != string(r.body) {
		t.Errorf("replay body differs:\n%s\n%s", replay.body, r.body)
	}
	checkProblem(t, shopper.do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_mastercard"}, "Idempotency-Key", "e2e-1"), 422, "same key, other body")
	shopper.do("GET", "/v1/cart", nil).want(t, 200, "cart after").json(t, &cart)
	if cart.ItemCount != 0 {
		t.Errorf("cart after checkout has %d items", cart.ItemCount)
	}
	checkProblem(t, shopper.do("POST", "/v1/checkout", body, "Idempotency-Key", "e2e-2"), 400, "empty cart")

	// Orders: mine, and another user's is a 404.
	var orders struct{ Items []order }
	shopper.do("GET", "/v1/orders", nil).want(t, 200, "orders").json(t, &orders)
	if len(orders.Items) != 1 || orders.Items[0].ID != o.ID {
		t.Errorf("orders = %+v", orders)
	}
	shopper.do("GET", "/v1/orders/"+o.ID, nil).want(t, 200, "order")
	other := c.as(c.register("other@example.com"))
	checkProblem(t, other.do("GET", "/v1/orders/"+o.ID, nil), 404, "another user's order")
	checkProblem(t, other.do("GET", "/v1/orders/not-a-uuid", nil), 400, "malformed order id")

	// Admin: shopper 403, admin 200, change visible.
	upd := map[string]any{"price": map[string]any{"amount": 1234, "currency": "USD"}}
	checkProblem(t, shopper.do("PUT", "/v1/admin/products/7", upd), 403, "admin as shopper")
	admin := c.as(c.login("admin@brisk.test", "admin-pass-1"))
	admin.do("PUT", "/v1/admin/products/7", upd).want(t, 200, "admin update")
	var p7b product
	r = c.do("GET", "/v1/products/7", nil, "If-None-Match", etag).want(t, 200, "product after update")
	r.json(t, &p7b)
	if p7b.Price.Amount != 1234 || p7b.Version != p7.Version+1 || r.header.Get("ETag") == etag {
		t.Errorf("after update: %+v etag %s (was %s)", p7b, r.header.Get("ETag"), etag)
	}
}

// TestSQLiteSyncFull: brisk up with --sqlite-sync full checks out, and
// after a restart on the same data dir the order is there, paid, and a
// retry with the same key replays it rather than charging again.
func TestSQLiteSyncFull(t *testing.T) {
	dir := t.TempDir()
	args := append([]string{"up", "--addr", "127.0.0.1:0", "--data-dir", dir, "--sqlite-sync", "full"}, fastArgs...)
	checkout := func(c *client) (*client, order) {
		shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
		shopper.do("PUT", "/v1/cart/items/5", map[string]int{"quantity": 1}).want(t, 200, "add 5")
		var o order
		shopper.do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_visa"}, "Idempotency-Key", "sync-full-1").
			want(t, 201, "checkout").json(t, &o)
		return shopper, o
	}
	p := start(t, nil, `api:\s+http://\S+`, args...)
	_, first := checkout(newClient(t, p.find(`api:\s+(http://\S+)`)))
	if first.Status != "paid" {
		t.Fatalf("order = %+v, want paid", first)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	p = start(t, nil, `api:\s+http://\S+`, args...)
	shopper, again := checkout(newClient(t, p.find(`api:\s+(http://\S+)`)))
	if again.ID != first.ID || again.Status != "paid" {
		t.Errorf("the same key after a restart = %+v, want order %s replayed", again, first.ID)
	}
	var orders struct{ Items []order }
	shopper.do("GET", "/v1/orders", nil).want(t, 200, "orders").json(t, &orders)
	if len(orders.Items) != 1 || orders.Items[0].ID != first.ID {
		t.Errorf("orders after a restart = %+v, want only %s", orders.Items, first.ID)
	}
}

func TestBadInput(t *testing.T) {
	_, c, _ := startUp(t)
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	big := `{"quantity": 1, "x": "` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name    string
		c       *client
		method  string
		path    string
		body    any
		header  []string
		status  int
		contain string
	}{
		{"413 body", shopper, "PUT", "/v1/cart/items/1", big, nil, 413, "larger than"},
		{"unknown field", shopper, "PUT", "/v1/cart/items/1", `{"quantity":1,"qty":2}`, nil, 400, `unknown field "qty"`},
		{"bad type", shopper, "PUT", "/v1/cart/items/1", `{"quantity":"two"}`, nil, 400, "must be a number"},
		{"negative quantity", shopper, "PUT", "/v1/cart/items/1", `{"quantity":-1}`, nil, 400, "quantity must be"},
		{"quantity over bound", shopper, "PUT", "/v1/cart/items/1", `{"quantity":100}`, nil, 400, "quantity must be"},
		{"malformed product id", c, "GET", "/v1/products/abc", nil, nil, 400, "positive integer"},
		{"zero product id", c, "GET", "/v1/products/0", nil, nil, 400, "positive integer"},
		{"unknown product", c, "GET", "/v1/products/999999", nil, nil, 404, "not found"},
		{"cart unknown product", shopper, "PUT", "/v1/cart/items/999999", `{"quantity":1}`, nil, 404, ""},
		{"bad cursor", c, "GET", "/v1/products?cursor=xyz", nil, nil, 400, "cursor"},
		{"bad limit", c, "GET", "/v1/products?limit=1000", nil, nil, 400, "limit"},
		{"unknown param", c, "GET", "/v1/products?sort=price", nil, nil, 400, "unknown query parameter"},
		{"wrong method", c, "DELETE", "/v1/products/1", nil, nil, 405, "not allowed"},
		{"no route", c, "GET", "/v1/nothing", nil, nil, 404, "no route"},
		{"bad json", shopper, "POST", "/v1/checkout", `{"payment_token":`, []string{"Idempotency-Key", "k1"}, 400, "JSON"},
		{"bad key", shopper, "POST", "/v1/checkout", `{"payment_token":"tok_visa"}`, []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "Idempotency-Key"},
		{"negative checkout quantity", shopper, "POST", "/v1/checkout", `{"payment_token":"tok_visa","items":[{"product_id":1,"quantity":-2}]}`, []string{"Idempotency-Key", "k2"}, 400, "quantity"},
		{"bad token", c, "GET", "/v1/cart", nil, []string{"Authorization", "Bearer abc.def.ghi"}, 401, "token"},
		{"register bad email", c, "POST", "/v1/auth/register", `{"email":"nope","password":"long-enough"}`, nil, 400, "email"},
		{"login wrong password", c, "POST", "/v1/auth/login", `{"email":"shopper@brisk.test","password":"wrong-pass"}`, nil, 401, "incorrect"},
		{"wrong content type", c, "POST", "/v1/auth/login", `x`, []string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"admin empty update", c.as(c.login("admin@brisk.test", "admin-pass-1")), "PUT", "/v1/admin/products/1", `{}`, nil, 400, "nothing to update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.do(tt.method, tt.path, tt.body, tt.header...)
			p := checkProblem(t, r, tt.status, tt.name)
			if !strings.Contains(p.Detail, tt.contain) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.contain)
			}
			if tt.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
	// Nothing was half-written: the cart is still empty.
	var cart struct {
		ItemCount int `json:"item_count"`
	}
	shopper.do("GET", "/v1/cart", nil).want(t, 200, "cart").json(t, &cart)
	if cart.ItemCount != 0 {
		t.Errorf("cart has %d items after only bad requests", cart.ItemCount)
	}
	var orders struct{ Items []json.RawMessage }
	shopper.do("GET", "/v1/orders", nil).want(t, 200, "orders").json(t, &orders)
	if len(orders.Items) != 0 {
		t.Errorf("%d orders after only bad requests", len(orders.Items))
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, cmd := range []string{"up", "api", "payment", "migrate", "seed", "load"} {
		var out syncBuffer
		err := run(t.Context(), []string{cmd, "-h"}, func(string) string { return "" }, &out, &out)
		if code := exitCode(err); code != 0 {
			t.Errorf("brisk %s -h: exit %d (%v)", cmd, code, err)
		}
		if !strings.Contains(out.String(), "usage: brisk "+cmd) && !strings.Contains(out.String(), "brisk "+cmd) {
			t.Errorf("brisk %s -h printed %q", cmd, out.String())
		}
	}
	var out syncBuffer
	if code := exitCode(run(t.Context(), []string{"nope"}, func(string) string { return "" }, &out, &out)); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := exitCode(run(t.Context(), []string{"up", "--addr"}, func(string) string { return "" }, &out, &out)); code != 2 {
		t.Errorf("missing flag value: exit %d, want 2", code)
	}
	for _, cmd := range []string{"up", "api", "payment"} {
		if code := exitCode(run(t.Context(), []string{cmd, "--sqlite-sync", "off"}, func(string) string { return "" }, &out, &out)); code != 2 {
			t.Errorf("brisk %s --sqlite-sync off: exit %d, want 2", cmd, code)
		}
	}
	env := map[string]string{"BRISK_LOG_LEVEL": "loud"}
	if code := exitCode(run(t.Context(), []string{"payment"}, func(k string) string { return env[k] }, &out, &out)); code != 2 {
		t.Errorf("bad BRISK_LOG_LEVEL: exit %d, want 2", code)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(exitError); ok {
		return ee.code
	}
	return 1
}

func TestConfigLogMasksSecrets(t *testing.T) {
	p, _, _ := startUp(t, "--jwt-issuer", "brisk-test")
	p.stop()
	logs := p.stderr.String()
	for _, secret := range []string{"shopper-pass-1", "admin-pass-1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the secret %q", secret)
		}
	}
	if !strings.Contains(logs, `"jwt-issuer":"brisk-test"`) {
		t.Errorf("effective config not logged:\n%s", tail(logs))
	}
}
