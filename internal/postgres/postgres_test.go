package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/postgres"
	"github.com/briskhq/brisk/internal/postgres/pgtest"
	"github.com/briskhq/brisk/internal/storetest"
)

// testLogger logs through t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// The package's tests share one database; each takes a schema of its own
// (creating a database costs about a second on a busy machine).
var (
	sharedDSN string
	sharedErr error
)

func TestMain(m *testing.M) {
	dsn, drop, err := pgtest.CreateDatabase(context.Background())
	sharedDSN, sharedErr = dsn, err
	code := m.Run()
	if err == nil {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// newDSN returns the DSN of a new empty schema in the shared database.
func newDSN(t testing.TB) string {
	t.Helper()
	if sharedErr != nil {
		pgtest.Check(t, sharedErr)
	}
	return pgtest.NewSchema(t, sharedDSN)
}

// withParam adds a parameter to a DSN in URL or key=value form.
func withParam(t testing.TB, dsn, key, value string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// openDB returns a migrated store on a new schema of its own.
func openDB(t testing.TB) *postgres.DB {
	t.Helper()
	return openDSN(t, newDSN(t))
}

// openDSN opens and migrates the store at dsn; it is closed when the test ends.
func openDSN(t testing.TB, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s) = %v", dsn, err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	return db
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  string
	}{
		{"closed port", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable"},
		{"closed port key=value", "host=127.0.0.1 port=1 user=postgres sslmode=disable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			db, err := postgres.Open(t.Context(), tc.dsn, testLogger(t))
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) = nil error, want one", tc.dsn)
			}
			if !errors.Is(err, derrors.Unavailable) {
				t.Errorf("Open(%q) = %v, want kind Unavailable", tc.dsn, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Open(%q) took %v, want a fast failure", tc.dsn, d)
			}
		})
	}
	if _, err := postgres.Open(t.Context(), "postgres://x:y@[::1", testLogger(t)); !errors.Is(err, derrors.Invalid) {
		t.Errorf("Open(malformed) = %v, want kind Invalid", err)
	}
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate() = %v", err)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	if s := db.Stat(); s.MaxConns() < 4 {
		t.Errorf("Stat().MaxConns() = %d, want at least 4", s.MaxConns())
	}
}

func TestLoadDefaultCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 10,000 products")
	}
	t.Parallel()
	db := openDB(t)
	ps := catalog.Generate(catalog.DefaultProducts)
	start := time.Now()
	if err := db.LoadProducts(t.Context(), ps); err != nil {
		t.Fatalf("LoadProducts(%d) = %v", len(ps), err)
	}
	t.Logf("loaded %d products in %v", len(ps), time.Since(start))
	// Loading again leaves existing rows alone.
	if err := db.LoadProducts(t.Context(), ps[:100]); err != nil {
		t.Fatalf("LoadProducts(again) = %v", err)
	}
	n, err := db.CountProducts(t.Context())
	if err != nil || n != catalog.DefaultProducts {
		t.Fatalf("CountProducts() = %d, %v, want %d", n, err, catalog.DefaultProducts)
	}
	got, err := db.Product(t.Context(), 1234)
	if err != nil {
		t.Fatalf("Product(1234) = %v", err)
	}
	want := ps[1233]
	if got.Name != want.Name || got.Price != want.Price || got.Available != want.Available || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("Product(1234) = %+v, want %+v", got, want)
	}
	cats, err := db.Categories(t.Context())
	if err != nil {
		t.Fatalf("Categories() = %v", err)
	}
	var total int64
	for _, c := range cats {
		total += c.Products
		if c.Name != catalog.CategoryName(c.Slug) {
			t.Errorf("category %q named %q, want %q", c.Slug, c.Name, catalog.CategoryName(c.Slug))
		}
	}
	if total != catalog.DefaultProducts {
		t.Errorf("categories count %d products, want %d", total, catalog.DefaultProducts)
	}
}

func TestSearchPrefix(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ps := catalog.Generate(50)
	ps[9].Name = "Xylophone Deluxe"
	ps[19].Description = "Comes with a xylophonist's handbook."
	if err := db.LoadProducts(t.Context(), ps); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want []int64
	}{
		{"xylophone", []int64{10}},
		{"xylo", []int64{10, 20}},        // prefix of the last term
		{"xylo deluxe", nil},             // only the last term is a prefix
		{"deluxe xylo", []int64{10}},     // ... which product 10 has
		{"x'y & z | !(", nil},            // user syntax never reaches to_tsquery
		{"'); DROP TABLE products", nil}, // nor SQL
		{"!!!", nil},                     // no searchable word: nothing
	}
	for _, tc := range tests {
		p, err := db.ListProducts(t.Context(), catalog.Query{Text: tc.text, Limit: 10})
		if err != nil {
			t.Errorf("ListProducts(%q) = %v", tc.text, err)
			continue
		}
		var got []int64
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ListProducts(%q) ids = %v, want %v", tc.text, got, tc.want)
		}
	}
	if n, err := db.CountProducts(t.Context()); n != 50 || err != nil {
		t.Errorf("CountProducts() = %d, %v, want 50", n, err)
	}
}

// loadStock loads n products with the given stock each.
func loadStock(t testing.TB, db *postgres.DB, n int, stock int64) []catalog.Product {
	t.Helper()
	ps := catalog.Generate(n)
	for i := range ps {
		ps[i].Available = stock
	}
	if err := db.LoadProducts(context.Background(), ps); err != nil {
		t.Fatalf("LoadProducts = %v", err)
	}
	return ps
}

var orderSeq atomic.Int64

func begin(userID int64, key string, now time.Time, ps ...catalog.Product) checkout.Begin {
	b := checkout.Begin{
		OrderID: fmt.Sprintf("%016x-%06d", now.UnixNano(), orderSeq.Add(1)),
		UserID:  userID, Key: key, RequestHash: "h-" + key, Now: now,
	}
	for _, p := range ps {
		b.Lines = append(b.Lines, checkout.Line{ProductID: p.ID, Name: p.Name, Quantity: 2, UnitPrice: p.Price})
		b.Total, _ = b.Total.Add(p.Price.Times(2))
	}
	return b
}

func TestCheckoutFlow(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	ps := loadStock(t, db, 5, 10)
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

	rec, o, err := db.Begin(ctx, begin(7, "k1", now, ps[0], ps[2]))
	if err != nil {
		t.Fatalf("Begin = %v", err)
	}
	if o.Status != checkout.StatusPending || len(o.Lines) != 2 || rec.Done() || rec.OrderID != o.ID {
		t.Errorf("Begin = %+v, %+v", rec, o)
	}
	checkStock(t, db, ps[0].ID, catalog.Stock{Initial: 10, Available: 8, Reserved: 2})

	// Same key again: the stored record, Conflict + ErrKeyExists, nothing written.
	rec2, _, err := db.Begin(ctx, begin(7, "k1", now, ps[1]))
	if !errors.Is(err, derrors.Conflict) || !errors.Is(err, checkout.ErrKeyExists) {
		t.Errorf("Begin(same key) = %v, want Conflict + ErrKeyExists", err)
	}
	if rec2.OrderID != o.ID || rec2.RequestHash != "h-k1" {
		t.Errorf("Begin(same key) record = %+v, want order %s", rec2, o.ID)
	}
	checkStock(t, db, ps[1].ID, catalog.Stock{Initial: 10, Available: 10})

	resp := func(o checkout.Order) checkout.Response {
		return checkout.Response{Status: 201, Body: []byte(`{"id":"` + o.ID + `","status":"` + string(o.Status) + `"}`)}
	}
	paid, err := db.Complete(ctx, o.ID, "pay_1", resp, now.Add(time.Second))
	if err != nil || paid.Status != checkout.StatusPaid || paid.PaymentID != "pay_1" || len(paid.Lines) != 2 {
		t.Fatalf("Complete = %+v, %v", paid, err)
	}
	checkStock(t, db, ps[0].ID, catalog.Stock{Initial: 10, Available: 8, Sold: 2})
	// Finishing again changes nothing.
	again, err := db.Fail(ctx, o.ID, "late decline", resp, now.Add(2*time.Second))
	if err != nil || again.Status != checkout.StatusPaid || !again.UpdatedAt.Equal(paid.UpdatedAt) {
		t.Errorf("Fail(paid order) = %+v, %v, want it unchanged", again, err)
	}
	checkStock(t, db, ps[0].ID, catalog.Stock{Initial: 10, Available: 8, Sold: 2})
	rec, err = db.Record(ctx, 7, "k1")
	if err != nil || rec.Response.Status != 201 || string(rec.Response.Body) != `{"id":"`+o.ID+`","status":"paid"}` {
		t.Errorf("Record(k1) = %+v, %v", rec, err)
	}

	// Out of stock: nothing written, not even the key.
	b := begin(7, "k2", now, ps[1], ps[3])
	b.Lines[1].Quantity = 11
	if _, _, err := db.Begin(ctx, b); !errors.Is(err, derrors.Conflict) || !errors.Is(err, checkout.ErrOutOfStock) {
		t.Errorf("Begin(too many) = %v, want Conflict + ErrOutOfStock", err)
	}
	if _, err := db.Record(ctx, 7, "k2"); !errors.Is(err, derrors.NotFound) {
		t.Errorf("Record(k2) after failed Begin = %v, want NotFound", err)
	}
	checkStock(t, db, ps[1].ID, catalog.Stock{Initial: 10, Available: 10})
	// Unknown product: NotFound.
	b = begin(7, "k3", now, ps[1])
	b.Lines = append(b.Lines, checkout.Line{ProductID: 999, Quantity: 1, UnitPrice: ps[1].Price})
	if _, _, err := db.Begin(ctx, b); !errors.Is(err, derrors.NotFound) {
		t.Errorf("Begin(unknown product) = %v, want NotFound", err)
	}

	// A failed order releases its stock.
	_, o2, err := db.Begin(ctx, begin(7, "k4", now.Add(time.Minute), ps[4]))
	if err != nil {
		t.Fatal(err)
	}
	if pend, err := db.Pending(ctx, now.Add(2*time.Minute), 10); err != nil || len(pend) != 1 || pend[0].ID != o2.ID {
		t.Errorf("Pending = %v, %v, want [%s]", pend, err, o2.ID)
	}
	failed, err := db.Fail(ctx, o2.ID, "card declined", resp, now.Add(time.Hour))
	if err != nil || failed.Status != checkout.StatusFailed || failed.FailureReason != "card declined" {
		t.Errorf("Fail = %+v, %v", failed, err)
	}
	checkStock(t, db, ps[4].ID, catalog.Stock{Initial: 10, Available: 10})
	if _, err := db.Complete(ctx, "no-such-order", "p", resp, now); !errors.Is(err, derrors.NotFound) {
		t.Errorf("Complete(unknown) = %v, want NotFound", err)
	}

	// Orders: newest first, paged by id; another user's order is hidden.
	list, err := db.Orders(ctx, 7, "", 10)
	if err != nil || len(list) != 2 || list[0].ID != o2.ID || list[1].ID != o.ID {
		t.Errorf("Orders(7) = %v, %v, want [%s %s]", list, err, o2.ID, o.ID)
	}
	if list, err := db.Orders(ctx, 7, o2.ID, 10); err != nil || len(list) != 1 || list[0].ID != o.ID {
		t.Errorf("Orders(7, after %s) = %v, %v", o2.ID, list, err)
	}
	if _, err := db.Order(ctx, 8, o.ID); !errors.Is(err, derrors.NotFound) {
		t.Errorf("Order(other user) = %v, want NotFound", err)
	}
	got, err := db.Order(ctx, 7, o.ID)
	if err != nil || got.Status != checkout.StatusPaid || !got.CreatedAt.Equal(o.CreatedAt) || len(got.Lines) != 2 {
		t.Errorf("Order(7, %s) = %+v, %v", o.ID, got, err)
	}

	// One outbox event per finished order, in the same transactions.
	var topics []string
	rows, err := db.Pool().Query(ctx, `SELECT topic || ':' || (payload->>'order_id') FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		topics = append(topics, s)
	}
	if want := fmt.Sprint([]string{"order.paid:" + o.ID, "order.failed:" + o2.ID}); fmt.Sprint(topics) != want {
		t.Errorf("outbox = %v, want %v", topics, want)
	}
}

func checkStock(t *testing.T, db *postgres.DB, id int64, want catalog.Stock) {
	t.Helper()
	want.ProductID = id
	st, err := db.Stock(t.Context(), []int64{id})
	if err != nil || len(st) != 1 || st[0] != want {
		t.Errorf("Stock(%d) = %+v, %v, want %+v", id, st, err, want)
	}
}

// TestNoOversell races many checkouts for the same few items: exactly the
// stock is reserved, never more, and the invariant holds.
func TestNoOversell(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ps := loadStock(t, db, 3, 20)
	now := time.Now()
	const buyers = 40 // each wants 2 of products 1 and 3 (and 2 of 2 for odd buyers)
	var ok, short, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			items := []catalog.Product{ps[0], ps[2]}
			if i%2 == 1 {
				items = []catalog.Product{ps[0], ps[1], ps[2]}
			}
			_, o, err := db.Begin(context.Background(), begin(int64(i), "race", now, items...))
			switch {
			case err == nil:
				ok.Add(1)
				if i%3 == 0 {
					if _, err := db.Fail(context.Background(), o.ID, "test", nil, now); err != nil {
						t.Errorf("Fail = %v", err)
					}
					failed.Add(1)
				}
			case errors.Is(err, checkout.ErrOutOfStock):
				short.Add(1)
			default:
				t.Errorf("Begin = %v", err)
			}
		})
	}
	wg.Wait()
	st, err := db.Stock(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Available < 0 || s.Reserved < 0 || s.Initial != s.Available+s.Reserved+s.Sold {
			t.Errorf("stock invariant broken: %+v", s)
		}
	}
	// Product 1 is in every order: 2 per order still pending.
	if st[0].Reserved != 2*(ok.Load()-failed.Load()) || st[0].Available != 20-st[0].Reserved ||
		ok.Load()+short.Load() != buyers || short.Load() == 0 {
		t.Errorf("stock %+v after %d ok / %d short", st[0], ok.Load(), short.Load())
	}
	t.Logf("%d checkouts reserved, %d out of stock, product 1: %+v", ok.Load(), short.Load(), st[0])
}

// TestConnectionLoss kills the store's server connections: the calls that
// hit a dead connection fail as Unavailable, and the pool recovers alone.
func TestConnectionLoss(t *testing.T) {
	t.Parallel()
	// A name of its own tells this store's connections from other tests'.
	app := fmt.Sprintf("brisk_conn_loss_%d", time.Now().UnixNano())
	db := openDSN(t, withParam(t, newDSN(t), "application_name", app))
	loadStock(t, db, 3, 5)
	ctx := t.Context()
	admin, err := postgres.Open(ctx, pgtest.AdminDSN(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	sawUnavailable := false
	for round := range 3 {
		// Hold several connections so that the kill reaches idle pooled ones.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { db.Pool().Exec(ctx, `SELECT pg_sleep(0.01)`) })
		}
		wg.Wait()
		if _, err := admin.Pool().Exec(ctx,
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		for range 4 {
			_, err := db.Product(ctx, 1)
			if err == nil {
				continue
			}
			if !errors.Is(err, derrors.Unavailable) {
				t.Errorf("round %d: Product after connection loss = %v, want kind Unavailable", round, err)
			}
			sawUnavailable = true
		}
	}
	if !sawUnavailable {
		t.Error("no call hit a dead connection: the test did not test anything")
	}
	// Recovery without restart.
	if _, err := db.Product(ctx, 1); err != nil {
		t.Errorf("Product after recovery = %v", err)
	}
}

func TestDeadlineIsUnavailable(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	loadStock(t, db, 1, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := db.Product(ctx, 1); !errors.Is(err, derrors.Unavailable) {
		t.Errorf("Product(expired ctx) = %v, want kind Unavailable", err)
	}
	if _, err := db.Product(t.Context(), 1); err != nil {
		t.Errorf("Product after deadline = %v", err)
	}
}

func BenchmarkProduct(b *testing.B) {
	db := openDB(b)
	loadStock(b, db, 1000, 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := int64(1)
		for pb.Next() {
			if _, err := db.Product(ctx, id); err != nil {
				b.Error(err)
				return
			}
			id = id%1000 + 1
		}
	})
}

// BenchmarkBeginComplete measures checkout's two transactions (reserve,
// then pay) for 2-line orders on 100 products.
func BenchmarkBeginComplete(b *testing.B) {
	db := openDB(b)
	ps := loadStock(b, db, 100, 1<<40)
	ctx := context.Background()
	resp := func(o checkout.Order) checkout.Response { return checkout.Response{Status: 201, Body: []byte(o.ID)} }
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4) // 4 x GOMAXPROCS checkouts in flight: commits share fsyncs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			now := time.Now()
			bg := begin(i%50, fmt.Sprint("bench-", i), now, ps[i%100], ps[(i+37)%100])
			if bg.Lines[0].ProductID > bg.Lines[1].ProductID {
				bg.Lines[0], bg.Lines[1] = bg.Lines[1], bg.Lines[0]
			}
			_, o, err := db.Begin(ctx, bg)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := db.Complete(ctx, o.ID, "pay", resp, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestContract runs the store contract; each subtest gets a schema of its own.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := openDB(t)
		return storetest.Stores{Catalog: db, Loader: db, Users: db, Checkout: db}
	})
}

func TestCartContract(t *testing.T) {
	db := openDB(t)
	storetest.RunCart(t, func(t *testing.T) cart.Store { return db })
}
