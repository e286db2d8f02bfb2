package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/money"
)

var (
	benchOnce sync.Once
	benchDir  string
	bench     *DB
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench != nil {
		bench.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchDB returns one database with the demo catalog (10,000 products),
// shared by the benchmarks.
func benchDB(b *testing.B) *DB {
	benchOnce.Do(func() {
		ctx := context.Background()
		if benchDir, benchErr = os.MkdirTemp("", "brisk-sqlite-bench"); benchErr != nil {
			return
		}
		if bench, benchErr = Open(ctx, filepath.Join(benchDir, "bench.db"), SyncNormal, nil); benchErr != nil {
			return
		}
		if benchErr = bench.Migrate(ctx); benchErr != nil {
			return
		}
		benchErr = bench.LoadProducts(ctx, catalog.Generate(catalog.DefaultProducts))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func BenchmarkProduct(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		var id int64
		for b.Loop() {
			id = id%catalog.DefaultProducts + 1
			if _, err := db.Product(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := next.Add(1)%catalog.DefaultProducts + 1
				if _, err := db.Product(ctx, id); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkListProducts(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	tests := []struct {
		name string
		q    catalog.Query
	}{
		{"text", catalog.Query{Text: "walnut lamp", Limit: catalog.DefaultLimit}},
		{"text prefix", catalog.Query{Text: "wal", Limit: catalog.DefaultLimit}},
		{"text common word deep page", catalog.Query{Text: "brisk", AfterID: 5000, Limit: catalog.DefaultLimit}},
		{"text and category", catalog.Query{Text: "walnut", Category: "lamps", Limit: catalog.DefaultLimit}},
		{"category", catalog.Query{Category: "lamps", Limit: catalog.DefaultLimit}},
		{"all", catalog.Query{AfterID: 5000, Limit: catalog.DefaultLimit}},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := db.ListProducts(ctx, tc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Items) == 0 {
					b.Fatalf("ListProducts(%+v) found nothing", tc.q)
				}
			}
		})
	}
}

func BenchmarkBeginComplete(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	plenty := int64(1 << 40)
	for id := int64(1); id <= 10; id++ {
		if _, err := db.UpdateProduct(ctx, id, catalog.Update{Available: &plenty}); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	order := func() error {
		n := seq.Add(1)
		now := time.Now()
		a := n%9 + 1
		bg := checkout.Begin{
			OrderID: fmt.Sprintf("%016x-bench-%012d", now.UnixMilli(), n), UserID: n%100 + 1,
			Key: fmt.Sprintf("bench-%d", n), RequestHash: "h", Now: now,
			Lines: []checkout.Line{
				{ProductID: a, Name: "a", Quantity: 1, UnitPrice: money.Money{Amount: 100, Currency: "USD"}},
				{ProductID: a + 1, Name: "b", Quantity: 2, UnitPrice: money.Money{Amount: 250, Currency: "USD"}},
			},
			Total: money.Money{Amount: 600, Currency: "USD"},
		}
		if _, _, err := db.Begin(ctx, bg); err != nil {
			return err
		}
		_, err := db.Complete(ctx, bg.OrderID, "pay", func(o checkout.Order) checkout.Response {
			return checkout.Response{Status: 201, Body: []byte(`{"status":"paid"}`)}
		}, now)
		return err
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := order(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := order(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
