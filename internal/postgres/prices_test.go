package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

// TestBeginChecksPrices: Begin refuses a line whose name or price is not
// the product's current one, writing nothing.
func TestBeginChecksPrices(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	ps := loadStock(t, db, 2, 10)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for name, mod := range map[string]func(*checkout.Line){
		"price":    func(l *checkout.Line) { l.UnitPrice.Amount++ },
		"currency": func(l *checkout.Line) { l.UnitPrice.Currency = "XYZ" },
		"name":     func(l *checkout.Line) { l.Name += " (old)" },
	} {
		b := begin(7, "k-"+name, now, ps[0], ps[1])
		mod(&b.Lines[1])
		_, _, err := db.Begin(ctx, b)
		if !errors.Is(err, derrors.Conflict) || !errors.Is(err, checkout.ErrPriceChanged) {
			t.Errorf("Begin(stale %s) = %v, want Conflict + ErrPriceChanged", name, err)
		}
		if _, err := db.Record(ctx, 7, "k-"+name); !errors.Is(err, derrors.NotFound) {
			t.Errorf("Record after refused Begin = %v, want NotFound", err)
		}
	}
	checkStock(t, db, ps[0].ID, catalog.Stock{Initial: 10, Available: 10})
	checkStock(t, db, ps[1].ID, catalog.Stock{Initial: 10, Available: 10})
}

// countingCatalog counts Products calls.
type countingCatalog struct {
	catalog.Store
	reads atomic.Int64
}

func (c *countingCatalog) Products(ctx context.Context, ids []int64) (map[int64]catalog.Product, error) {
	c.reads.Add(1)
	return c.Store.Products(ctx, ids)
}

type approve struct{}

func (approve) Authorize(_ context.Context, a checkout.Authorization) (checkout.Payment, error) {
	return checkout.Payment{ID: "pay-" + a.Key, Key: a.Key, Status: checkout.PaymentAuthorized, Amount: a.Amount}, nil
}
func (approve) Lookup(context.Context, string) (checkout.Payment, error) {
	return checkout.Payment{}, derrors.New(derrors.NotFound, "no payment")
}
func (approve) Void(_ context.Context, key string) (checkout.Payment, error) {
	return checkout.Payment{Key: key, Status: checkout.PaymentVoided}, nil
}

// TestCheckoutPriceCache: the checkout service prices from its cache on a
// PostgreSQL store, and a price change is never missed: the order is made
// at the new price.
func TestCheckoutPriceCache(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	ps := loadStock(t, db, 3, 100)
	cat := &countingCatalog{Store: db}
	svc := checkout.NewService(db, cat, db, approve{}, checkout.Config{}, slog.New(slog.DiscardHandler))
	buy := func(key string) checkout.Order {
		t.Helper()
		res, err := svc.Checkout(ctx, 1, key, checkout.Request{PaymentToken: "tok_visa",
			Items: []checkout.RequestItem{{ProductID: ps[0].ID, Quantity: 2}}}, "req")
		if err != nil || res.Status != 201 {
			t.Fatalf("Checkout(%s) = %+v, %v", key, res, err)
		}
		var o checkout.Order
		if err := json.Unmarshal(res.Body, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := buy("a")
	if o.Total != ps[0].Price.Times(2) {
		t.Errorf("total = %v, want %v", o.Total, ps[0].Price.Times(2))
	}
	buy("b")
	if n := cat.reads.Load(); n != 1 {
		t.Errorf("catalog reads after two checkouts = %d, want 1 (second from the cache)", n)
	}
	newPrice := money.Money{Amount: ps[0].Price.Amount + 100, Currency: ps[0].Price.Currency}
	newName := ps[0].Name + " v2"
	if _, err := db.UpdateProduct(ctx, ps[0].ID, catalog.Update{Price: &newPrice, Name: &newName}); err != nil {
		t.Fatal(err)
	}
	o = buy("c")
	if o.Total != newPrice.Times(2) || o.Lines[0].UnitPrice != newPrice || o.Lines[0].Name != newName {
		t.Errorf("order after a price change = %+v, want %v each, named %q", o, newPrice, newName)
	}
	stored, err := db.Order(ctx, 1, o.ID)
	if err != nil || stored.Total != newPrice.Times(2) || stored.Lines[0].UnitPrice != newPrice {
		t.Errorf("stored order = %+v, %v", stored, err)
	}
	checkStock(t, db, ps[0].ID, catalog.Stock{Initial: 100, Available: 94, Sold: 6})
}
