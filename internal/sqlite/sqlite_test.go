package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/storetest"
)

// openTest opens and migrates a new database file in a temporary directory.
func openTest(t testing.TB) *DB {
	t.Helper()
	return openTestSync(t, SyncNormal)
}

// openTestSync is openTest with commits as mode says.
func openTestSync(t testing.TB, mode Sync) *DB {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "brisk.db"), mode, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := openTest(t)
		return storetest.Stores{Catalog: db, Loader: db, Users: db, Checkout: db}
	})
}

func TestCartContract(t *testing.T) {
	storetest.RunCart(t, func(t *testing.T) cart.Store { return openTest(t) })
}

func TestOpenRejectsNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if db, err := Open(t.Context(), path, SyncNormal, nil); err == nil {
			db.Close()
			t.Errorf("Open(%q) = nil error, want an error", path)
		}
	}
}

func TestMigrateTwiceAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "brisk.db")
	db, err := Open(t.Context(), path, SyncNormal, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate() = %v", err)
		}
	}
	if err := db.LoadProducts(t.Context(), catalog.Generate(10)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(t.Context(), path, SyncNormal, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate(reopened) = %v", err)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	if n, err := db.CountProducts(t.Context()); err != nil || n != 10 {
		t.Errorf("CountProducts() after reopening = %d, %v; want 10", n, err)
	}
}

func TestPragmas(t *testing.T) {
	db := openTest(t)
	tests := []struct {
		pool   string
		pragma string
		want   string
	}{
		{"write", "journal_mode", "wal"},
		{"write", "synchronous", "1"},
		{"write", "busy_timeout", "5000"},
		{"write", "foreign_keys", "1"},
		{"read", "journal_mode", "wal"},
		{"read", "foreign_keys", "1"},
		{"read", "query_only", "1"},
	}
	for _, tc := range tests {
		pool := db.w
		if tc.pool == "read" {
			pool = db.r
		}
		var got string
		if err := pool.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Errorf("%s pool: PRAGMA %s: %v", tc.pool, tc.pragma, err)
		} else if got != tc.want {
			t.Errorf("%s pool: PRAGMA %s = %q, want %q", tc.pool, tc.pragma, got, tc.want)
		}
	}
	if _, err := db.r.ExecContext(t.Context(), `DELETE FROM outbox`); err == nil {
		t.Errorf("a write on the read pool succeeded, want it refused")
	}
}

func TestSyncFull(t *testing.T) {
	db := openTestSync(t, SyncFull)
	for name, pool := range map[string]*sql.DB{"write": db.w, "read": db.r} {
		var got string
		if err := pool.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatalf("%s pool: PRAGMA synchronous: %v", name, err)
		}
		if got != "2" { // FULL
			t.Errorf("%s pool: PRAGMA synchronous = %q, want 2 (FULL)", name, got)
		}
	}
}

func TestSyncFlag(t *testing.T) {
	var s Sync
	if got := s.String(); got != "normal" {
		t.Errorf("zero Sync = %q, want normal", got)
	}
	for _, v := range []string{"normal", "full"} {
		if err := s.Set(v); err != nil || s.String() != v {
			t.Errorf("Set(%q) = %v, then %q", v, err, s.String())
		}
	}
	for _, v := range []string{"", "FULL", "off", "extra"} {
		s = SyncFull
		if err := s.Set(v); err == nil {
			t.Errorf("Set(%q) = nil, want an error", v)
		} else if s != SyncFull {
			t.Errorf("Set(%q) failed but changed the value to %q", v, s)
		}
	}
}

func TestSearchPrefixOfLastTerm(t *testing.T) {
	db := openTest(t)
	if err := db.LoadProducts(t.Context(), catalog.Generate(200)); err != nil {
		t.Fatal(err)
	}
	full, err := db.ListProducts(t.Context(), catalog.Query{Text: "walnut", Limit: catalog.MaxLimit})
	if err != nil || len(full.Items) == 0 {
		t.Fatalf("ListProducts(walnut) = %d items, %v", len(full.Items), err)
	}
	for _, text := range []string{"walnu", "WAL", "brisk walnu"} {
		got, err := db.ListProducts(t.Context(), catalog.Query{Text: text, Limit: catalog.MaxLimit})
		if err != nil {
			t.Fatalf("ListProducts(%q) = %v", text, err)
		}
		ids := func(p catalog.Page) []int64 {
			var out []int64
			for _, it := range p.Items {
				out = append(out, it.ID)
			}
			return out
		}
		if !slices.Equal(ids(got), ids(full)) {
			t.Errorf("ListProducts(%q) = %v, want the walnut products %v", text, ids(got), ids(full))
		}
	}
	// FTS5 syntax in the text is not passed through.
	for _, text := range []string{`walnut OR oak`, `"walnut`, `walnut*`, `NEAR(walnut oak)`, `name:walnut`, `-walnut`, `^walnut`} {
		if _, err := db.ListProducts(t.Context(), catalog.Query{Text: text, Limit: 10}); err != nil {
			t.Errorf("ListProducts(%q) = %v, want no syntax error", text, err)
		}
	}
}

func TestOutboxEvents(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	if err := db.LoadProducts(ctx, catalog.Generate(5)); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	resp := func(o checkout.Order) checkout.Response { return checkout.Response{Status: 201, Body: []byte(o.ID)} }
	var ids []string
	for i, id := range []string{"0190a000-0000-7000-8000-000000000001", "0190a000-0000-7000-8000-000000000002"} {
		b := checkout.Begin{OrderID: id, UserID: 1, Key: id, RequestHash: "h", Now: now,
			Lines: []checkout.Line{{ProductID: int64(i + 1), Name: "x", Quantity: 1}}}
		if _, _, err := db.Begin(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := db.Complete(ctx, ids[0], "pay-1", resp, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Fail(ctx, ids[1], "declined", resp, now); err != nil {
		t.Fatal(err)
	}
	// No-ops write no event.
	if _, err := db.Complete(ctx, ids[1], "pay-2", resp, now); err != nil {
		t.Fatal(err)
	}

	rows, err := db.r.QueryContext(ctx, `SELECT topic, payload FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type got struct {
		topic string
		ev    event
	}
	var events []got
	for rows.Next() {
		var g got
		var payload string
		if err := rows.Scan(&g.topic, &payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(payload), &g.ev); err != nil {
			t.Fatalf("outbox payload %q: %v", payload, err)
		}
		events = append(events, g)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("outbox holds %d events, want 2: %+v", len(events), events)
	}
	if e := events[0]; e.topic != TopicOrderPaid || e.ev.OrderID != ids[0] || e.ev.PaymentID != "pay-1" || e.ev.Status != "paid" {
		t.Errorf("event 0 = %+v, want order.paid for %s", e, ids[0])
	}
	if e := events[1]; e.topic != TopicOrderFailed || e.ev.OrderID != ids[1] || e.ev.Reason != "declined" || e.ev.Status != "failed" {
		t.Errorf("event 1 = %+v, want order.failed for %s", e, ids[1])
	}
}

func TestBeginValidates(t *testing.T) {
	db := openTest(t)
	if err := db.LoadProducts(t.Context(), catalog.Generate(5)); err != nil {
		t.Fatal(err)
	}
	line := func(id int64, n int) checkout.Line { return checkout.Line{ProductID: id, Name: "x", Quantity: n} }
	tests := []struct {
		name  string
		lines []checkout.Line
	}{
		{"no lines", nil},
		{"no key", []checkout.Line{line(1, 1)}},
		{"zero quantity", []checkout.Line{line(1, 0)}},
		{"unsorted", []checkout.Line{line(2, 1), line(1, 1)}},
		{"duplicate", []checkout.Line{line(1, 1), line(1, 1)}},
	}
	for _, tc := range tests {
		b := checkout.Begin{OrderID: "o-" + tc.name, UserID: 1, Key: tc.name, Lines: tc.lines, Now: time.Now()}
		if tc.name == "no key" {
			b.Key = ""
		}
		_, _, err := db.Begin(t.Context(), b)
		if !errors.Is(err, derrors.Invalid) {
			t.Errorf("%s: Begin() = %v, want invalid", tc.name, err)
		}
	}
}

// TestLoadProductsDefault loads the demo catalog that "brisk up" seeds and
// reports how long it takes.
func TestLoadProductsDefault(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("loads 10,000 products; a timing test, meaningless under -race")
	}
	db := openTest(t)
	ps := catalog.Generate(catalog.DefaultProducts)
	start := time.Now()
	if err := db.LoadProducts(t.Context(), ps); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("LoadProducts(%d) took %v (%v per product)", len(ps), d, d/time.Duration(len(ps)))
	if n, err := db.CountProducts(t.Context()); err != nil || n != int64(len(ps)) {
		t.Errorf("CountProducts() = %d, %v; want %d", n, err, len(ps))
	}
	if d > 5*time.Second {
		t.Errorf("LoadProducts(%d) took %v, want well under 5s", len(ps), d)
	}
}
