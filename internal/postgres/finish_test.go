package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

// TestFinishPaths covers both ways an order is finished: from the order
// Begin wrote, in one round trip (the instance that began it), and by
// reading it first (any other instance, e.g. the reconciler's).
func TestFinishPaths(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	a := openDSN(t, dsn) // begins the orders
	b := openDSN(t, dsn) // another API instance on the same database
	ctx := t.Context()
	ps := loadStock(t, a, 4, 10)
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	resp := func(o checkout.Order) checkout.Response {
		body, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return checkout.Response{Status: 201, Body: body}
	}

	// Fast path: the order Complete returns, and the response it stores,
	// are exactly what reading the order back gives.
	_, o1, err := a.Begin(ctx, begin(7, "k1", now, ps[0], ps[1]))
	if err != nil {
		t.Fatal(err)
	}
	paid, err := a.Complete(ctx, o1.ID, "pay_1", resp, now.Add(time.Second))
	if err != nil || paid.Status != checkout.StatusPaid {
		t.Fatalf("Complete = %+v, %v", paid, err)
	}
	stored, err := a.Order(ctx, 7, o1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp(paid).Body, resp(stored).Body; string(got) != string(want) {
		t.Errorf("Complete returned\n%s\nthe database has\n%s", got, want)
	}
	rec, err := a.Record(ctx, 7, "k1")
	if err != nil || string(rec.Response.Body) != string(resp(stored).Body) {
		t.Errorf("stored response = %s, %v, want %s", rec.Response.Body, err, resp(stored).Body)
	}
	checkStock(t, a, ps[0].ID, catalog.Stock{Initial: 10, Available: 8, Sold: 2})

	// Finished by another instance first: the instance that began it
	// changes nothing and returns the order as it is.
	_, o2, err := a.Begin(ctx, begin(7, "k2", now, ps[2]))
	if err != nil {
		t.Fatal(err)
	}
	failed, err := b.Fail(ctx, o2.ID, "card declined", resp, now.Add(time.Second))
	if err != nil || failed.Status != checkout.StatusFailed {
		t.Fatalf("Fail on b = %+v, %v", failed, err)
	}
	late, err := a.Complete(ctx, o2.ID, "pay_2", resp, now.Add(2*time.Second))
	if err != nil || late.Status != checkout.StatusFailed || !late.UpdatedAt.Equal(failed.UpdatedAt) || len(late.Lines) != 1 {
		t.Errorf("Complete after Fail elsewhere = %+v, %v, want the failed order", late, err)
	}
	checkStock(t, a, ps[2].ID, catalog.Stock{Initial: 10, Available: 10})
	rec, err = a.Record(ctx, 7, "k2")
	if err != nil || string(rec.Response.Body) != string(resp(failed).Body) {
		t.Errorf("stored response = %s, %v, want Fail's", rec.Response.Body, err)
	}

	// A product row gone between Begin and Complete: nothing is written on
	// either path and the order stays pending.
	_, o3, err := a.Begin(ctx, begin(7, "k3", now, ps[3]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pool().Exec(ctx, `DELETE FROM products WHERE id = $1`, ps[3].ID); err != nil {
		t.Fatal(err)
	}
	for _, db := range []interface {
		Complete(_ context.Context, orderID, paymentID string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error)
	}{b, a} {
		if _, err := db.Complete(ctx, o3.ID, "pay_3", resp, now.Add(time.Second)); err == nil {
			t.Error("Complete with a missing product succeeded")
		}
	}
	if o, err := a.Order(ctx, 7, o3.ID); err != nil || o.Status != checkout.StatusPending {
		t.Errorf("order after failed Complete = %+v, %v, want pending", o, err)
	}
	if rec, err := a.Record(ctx, 7, "k3"); err != nil || rec.Done() {
		t.Errorf("key after failed Complete = %+v, %v, want no response", rec, err)
	}
	var events int
	if err := a.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox WHERE payload->>'order_id' = $1`, o3.ID).Scan(&events); err != nil || events != 0 {
		t.Errorf("outbox events of the order = %d, %v, want 0", events, err)
	}
	// The connections are usable afterwards.
	if _, err := a.Complete(ctx, "no-such-order", "p", resp, now); !errors.Is(err, derrors.NotFound) {
		t.Errorf("Complete(unknown) = %v, want NotFound", err)
	}
}
