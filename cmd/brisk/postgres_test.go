package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/postgres"
	"github.com/briskhq/brisk/internal/postgres/pgtest"
	"github.com/briskhq/brisk/internal/problem"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

// stack is a production-shaped deployment in one test: PostgreSQL, Redis,
// one payment service and several API instances sharing them.
type stack struct {
	dsn, redisURL, prefix, payAddr, keys string
	apis                                 []*proc
	clients                              []*client
	db                                   *postgres.DB
}

// startStack seeds a fresh PostgreSQL database and starts a payment
// service and n API instances on it and on redisURL ("" = a shared test
// prefix on the machine's Redis).
func startStack(t *testing.T, n int, redisURL string, apiArgs ...string) *stack {
	t.Helper()
	dir := t.TempDir()
	s := &stack{dsn: pgtest.NewDatabase(t), keys: filepath.Join(dir, "jwt-keys.json")}
	if redisURL == "" {
		s.redisURL, s.prefix = redistest.New(t)
	} else {
		s.redisURL, s.prefix = redisURL, "brisk-test:"
	}
	runOnce(t, append([]string{"seed", "--db", s.dsn}, fastArgs...)...)
	pay := start(t, nil, `payment: grpc://\S+`, "payment", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "payment.db"), "--payment-latency", "5ms")
	s.payAddr = pay.find(`payment: grpc://(\S+)`)
	if _, err := loadKeys(s.keys, slog.New(slog.DiscardHandler)); err != nil { // shared by every instance
		t.Fatal(err)
	}
	for range n {
		s.addAPI(t, apiArgs...)
	}
	db, err := postgres.Open(context.Background(), s.dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s.db = db
	return s
}

func (s *stack) addAPI(t *testing.T, extra ...string) *client {
	t.Helper()
	args := append([]string{"api", "--addr", "127.0.0.1:0", "--db", s.dsn, "--redis", s.redisURL, "--redis-prefix", s.prefix,
		"--payment-addr", s.payAddr, "--jwt-keys", s.keys, "--argon2-memory", "64", "--argon2-time", "1",
		"--pending-after", "2s", "--reconcile-interval", "200ms", "--concurrency-limit", "off"}, extra...)
	p := start(t, nil, `api: http://\S+`, args...)
	c := newClient(t, p.find(`api: (http://\S+)`))
	s.apis = append(s.apis, p)
	s.clients = append(s.clients, c)
	return c
}

func TestPostgresRedisTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL + Redis stack; skipped in -short")
	}
	s := startStack(t, 2, "")
	a, b := s.clients[0], s.clients[1]

	// A token from instance A works on B; a cart written through A is read through B.
	tok := a.login("shopper@brisk.test", "shopper-pass-1")
	a.as(tok).do("PUT", "/v1/cart/items/12", map[string]int{"quantity": 3}).want(t, 200, "cart via A")
	var cart struct {
		ItemCount int `json:"item_count"`
	}
	b.as(tok).do("GET", "/v1/cart", nil).want(t, 200, "cart via B").json(t, &cart)
	if cart.ItemCount != 3 {
		t.Errorf("cart via B has %d items, want 3", cart.ItemCount)
	}
	var page struct{ Items []product }
	b.do("GET", "/v1/products?q=oak", nil).want(t, 200, "search on postgres").json(t, &page)
	if len(page.Items) == 0 {
		t.Error("search for oak on PostgreSQL found nothing")
	}
	r := b.as(tok).do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_visa"}, "Idempotency-Key", "pg-cart")
	r.want(t, 201, "checkout the cart via B")
	replay := a.as(tok).do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_visa"}, "Idempotency-Key", "pg-cart")
	if replay.status != 201 || string(replay.body) != string(r.body) {
		t.Errorf("replay via A: %d %s, want the stored 201", replay.status, replay.body)
	}

	// 500 checkouts from 50 users spread over both instances, 100 in stock.
	admin := a.as(a.login("admin@brisk.test", "admin-pass-1"))
	const productID, stock, users, perUser = 77, 100, 50, 10
	setStock(t, admin, productID, stock)
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = s.clients[i%2].register(fmt.Sprintf("pgbuyer%d@example.com", i))
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for u := range users {
		for k := range perUser {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.clients[(u+k)%2].as(tokens[u]).try("POST", "/v1/checkout",
					map[string]any{"payment_token": "tok_visa", "items": []map[string]int64{{"product_id": productID, "quantity": 1}}},
					"Idempotency-Key", fmt.Sprintf("pg-%d-%d", u, k))
				if err != nil {
					t.Error(err)
				}
				if r.status == http.StatusConflict && !strings.Contains(string(r.body), problem.TypeOutOfStock) {
					t.Errorf("409 is not out of stock: %s", r.body)
				}
				mu.Lock()
				statuses[r.status]++
				if r.status == 503 && statuses[503] == 1 {
					t.Logf("first 503: %s", r.body)
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if statuses[201] != stock || statuses[409] != users*perUser-stock {
		t.Errorf("statuses = %v, want %d x 201 and %d x 409", statuses, stock, users*perUser-stock)
	}
	st := checkStockInvariant(t, s.db)[productID]
	if st.Available != 0 || st.Sold != stock || st.Reserved != 0 {
		t.Errorf("stock = %+v, want all %d sold", st, stock)
	}

	// The same key 50 times over both instances: one order, identical answers.
	buyer := tokens[0]
	bodies := make([]string, 50)
	codes := make([]int, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.clients[i%2].as(buyer).try("POST", "/v1/checkout",
				map[string]any{"payment_token": "tok_visa", "items": []map[string]int64{{"product_id": 3, "quantity": 1}}},
				"Idempotency-Key", "pg-same-key")
			if err != nil {
				t.Error(err)
			}
			codes[i], bodies[i] = r.status, string(r.body)
		}()
	}
	wg.Wait()
	for i := range 50 {
		if codes[i] != 201 || bodies[i] != bodies[0] {
			t.Fatalf("same key, response %d: %d %s, want 201 identical to %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	var orders struct{ Items []order }
	a.as(buyer).do("GET", "/v1/orders?limit=100", nil).want(t, 200, "orders").json(t, &orders)
	n := 0
	for _, o := range orders.Items {
		if len(o.Items) == 1 && o.Items[0].ProductID == 3 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d orders for the repeated key, want 1", n)
	}
	checkStockInvariant(t, s.db)
}

// TestRedisOutage kills Redis under a running API: catalog and checkout
// keep answering from the database, carts answer 503 quickly (never 500),
// and carts work again when Redis is back, without a restart.
func TestRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis outage; skipped in -short")
	}
	rs := redistest.StartServer(t)
	s := startStack(t, 1, rs.URL())
	c := s.clients[0]
	tok := c.login("shopper@brisk.test", "shopper-pass-1")
	shopper := c.as(tok)
	shopper.do("PUT", "/v1/cart/items/5", map[string]int{"quantity": 1}).want(t, 200, "cart with Redis up")

	rs.Stop()
	startAt := time.Now()
	r := shopper.do("GET", "/v1/cart", nil)
	checkProblem(t, r, 503, "cart with Redis down")
	if d := time.Since(startAt); d > time.Second {
		t.Errorf("cart with Redis down took %v, want a fast 503", d)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	checkProblem(t, shopper.do("PUT", "/v1/cart/items/6", map[string]int{"quantity": 1}), 503, "cart write with Redis down")
	c.do("GET", "/v1/products/5", nil).want(t, 200, "product with Redis down")
	c.do("GET", "/v1/products?q=oak", nil).want(t, 200, "search with Redis down")
	shopper.do("POST", "/v1/checkout", map[string]any{"payment_token": "tok_visa", "items": []map[string]int64{{"product_id": 9, "quantity": 1}}},
		"Idempotency-Key", "redis-down").want(t, 201, "checkout with Redis down")
	c.do("GET", "/readyz", nil).want(t, 200, "ready with Redis down (degraded, not dead)")

	rs.Start() // empty: Redis keeps nothing on disk here
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := shopper.do("PUT", "/v1/cart/items/6", map[string]int{"quantity": 2})
		if r.status == 200 {
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("cart after Redis restart: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var cart struct {
		ItemCount int `json:"item_count"`
	}
	shopper.do("GET", "/v1/cart", nil).want(t, 200, "cart after restart").json(t, &cart)
	if cart.ItemCount != 2 {
		t.Errorf("cart after restart has %d items, want 2", cart.ItemCount)
	}
}

func TestPostgresUnreachable(t *testing.T) {
	var out syncBuffer
	err := run(t.Context(), []string{"api", "--addr", "127.0.0.1:0", "--db", "postgres://postgres:secret@127.0.0.1:1/brisk?connect_timeout=1"},
		func(string) string { return "" }, &out, &out)
	if err == nil {
		t.Fatal("brisk api with an unreachable database started, want an error")
	}
	if code := exitCode(err); code == 0 {
		t.Errorf("exit code %d, want non-zero", code)
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "secret") || strings.Contains(msg, "panic") {
		t.Errorf("error %q: want the address, no password, no panic", msg)
	}
}

// TestPostgresConnectionsKilled cuts every connection of the API's pool
// mid-run: requests answer 503 (never 500) or succeed, and the API
// recovers without a restart.
func TestPostgresConnectionsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL connection loss; skipped in -short")
	}
	s := startStack(t, 1, "")
	c := s.clients[0]
	c.do("GET", "/v1/products/1", nil).want(t, 200, "before")
	dbName := s.dsn[strings.LastIndex(s.dsn, "/")+1:]
	if i := strings.IndexByte(dbName, '?'); i >= 0 {
		dbName = dbName[:i]
	}
	admin, err := postgres.Open(context.Background(), pgtest.AdminDSN(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Pool().Exec(context.Background(),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", dbName); err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i := range 40 {
		r := c.do("GET", fmt.Sprintf("/v1/products/%d", 1+i), nil)
		switch r.status {
		case 200:
			ok++
		case 503:
			checkProblem(t, r, 503, "product while connections die")
		default:
			t.Errorf("product %d while connections die: %d %s", 1+i, r.status, r.body)
		}
	}
	if ok == 0 {
		t.Error("the API did not recover after its connections were killed")
	}
}
