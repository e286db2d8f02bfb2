package checkout_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/sqlite"
)

// payments answers Authorize with err when set, else approves.
type payments struct {
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (p *payments) fail(err error) { p.err.Store(&err) }

func (p *payments) Authorize(_ context.Context, a checkout.Authorization) (checkout.Payment, error) {
	p.calls.Add(1)
	if e := p.err.Load(); e != nil && *e != nil {
		return checkout.Payment{}, *e
	}
	return checkout.Payment{ID: "pay-" + a.Key, Key: a.Key, Status: checkout.PaymentAuthorized, Amount: a.Amount}, nil
}

func (p *payments) Lookup(context.Context, string) (checkout.Payment, error) {
	return checkout.Payment{}, derrors.New(derrors.NotFound, "no payment")
}

func (p *payments) Void(_ context.Context, key string) (checkout.Payment, error) {
	return checkout.Payment{Key: key, Status: checkout.PaymentVoided}, nil
}

var (
	notSent = derrors.Wrap(derrors.Unavailable, checkout.ErrNotSent, "payment service unavailable")
	unknown = derrors.New(derrors.Unavailable, "payment service unavailable")
)

type fixture struct {
	db   *sqlite.DB
	pay  *payments
	svc  *checkout.Service
	user int64
}

func newFixture(t *testing.T, cfg checkout.Config) *fixture {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "brisk.db"), sqlite.SyncNormal, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.LoadProducts(ctx, catalog.Generate(20)); err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, auth.User{Email: "u@example.com", Name: "U", Role: auth.RoleShopper, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	pay := &payments{}
	return &fixture{db: db, pay: pay, user: u.ID,
		svc: checkout.NewService(db, db, db, pay, cfg, slog.New(slog.DiscardHandler))}
}

func (f *fixture) available(t *testing.T, id int64) int64 {
	t.Helper()
	st, err := f.db.Stock(t.Context(), []int64{id})
	if err != nil || len(st) != 1 {
		t.Fatalf("Stock(%d) = %v, %v", id, st, err)
	}
	return st[0].Available
}

var buy = checkout.Request{PaymentToken: "tok_visa", Items: []checkout.RequestItem{{ProductID: 3, Quantity: 2}}}

func TestCheckoutReleasesWhenPaymentNotSent(t *testing.T) {
	f := newFixture(t, checkout.Config{})
	ctx := t.Context()
	before := f.available(t, 3)

	f.pay.fail(notSent)
	_, err := f.svc.Checkout(ctx, f.user, "key-1", buy, "req-1")
	if !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Checkout(payment not sent) = %v, want unavailable", err)
	}
	if got := f.available(t, 3); got != before {
		t.Errorf("available after a not-sent payment = %d, want %d (released)", got, before)
	}
	if _, err := f.db.Record(ctx, f.user, "key-1"); !errors.Is(err, derrors.NotFound) {
		t.Errorf("Record(key-1) after release = %v, want NotFound (key forgotten)", err)
	}
	orders, err := f.db.Orders(ctx, f.user, "", 10)
	if err != nil || len(orders) != 1 || orders[0].Status != checkout.StatusFailed || orders[0].FailureReason != checkout.ReasonNotSent {
		t.Fatalf("Orders = %+v, %v; want one order failed with ReasonNotSent", orders, err)
	}

	// The client retries with the same key once payments work: a fresh order.
	f.pay.fail(nil)
	res, err := f.svc.Checkout(ctx, f.user, "key-1", buy, "req-2")
	if err != nil || res.Status != http.StatusCreated {
		t.Fatalf("Checkout(retry, same key) = %d %s, %v; want 201", res.Status, res.Body, err)
	}
	if got := f.available(t, 3); got != before-2 {
		t.Errorf("available after the retry = %d, want %d", got, before-2)
	}
}

func TestCheckoutPaymentGate(t *testing.T) {
	var open atomic.Bool
	open.Store(true)
	f := newFixture(t, checkout.Config{PaymentGate: func() error {
		if open.Load() {
			return notSent
		}
		return nil
	}})
	ctx := t.Context()
	before := f.available(t, 3)
	_, err := f.svc.Checkout(ctx, f.user, "key-1", buy, "req-1")
	if !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Checkout(gate closed) = %v, want unavailable", err)
	}
	if f.pay.calls.Load() != 0 {
		t.Errorf("payments called %d times with the gate closed, want 0", f.pay.calls.Load())
	}
	if orders, _ := f.db.Orders(ctx, f.user, "", 10); len(orders) != 0 || f.available(t, 3) != before {
		t.Errorf("gate closed: %d orders, available %d; want nothing written", len(orders), f.available(t, 3))
	}

	// A stored answer is still replayed while the gate is closed.
	open.Store(false)
	first, err := f.svc.Checkout(ctx, f.user, "key-2", buy, "req-2")
	if err != nil || first.Status != http.StatusCreated {
		t.Fatalf("Checkout(gate open) = %d, %v; want 201", first.Status, err)
	}
	open.Store(true)
	again, err := f.svc.Checkout(ctx, f.user, "key-2", buy, "req-3")
	if err != nil || again.Status != first.Status || string(again.Body) != string(first.Body) {
		t.Errorf("replay with the gate closed = %d %s, %v; want the stored 201", again.Status, again.Body, err)
	}
}

// TestCheckoutTakeoverNeverReleases: an order whose first payment attempt
// may have gone through is never released by a later request, even when
// that request's payment call is not sent.
func TestCheckoutTakeoverNeverReleases(t *testing.T) {
	f := newFixture(t, checkout.Config{PaymentTimeout: time.Millisecond, InFlightWait: 10 * time.Millisecond, PendingAfter: time.Hour})
	ctx := t.Context()
	before := f.available(t, 3)
	f.pay.fail(unknown)
	if _, err := f.svc.Checkout(ctx, f.user, "key-1", buy, "req-1"); !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Checkout(outcome unknown) = %v, want unavailable", err)
	}
	time.Sleep(1100 * time.Millisecond) // past PaymentTimeout + 1s: a retry takes the order over
	f.pay.fail(notSent)
	if _, err := f.svc.Checkout(ctx, f.user, "key-1", buy, "req-2"); !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Checkout(takeover, not sent) = %v, want unavailable", err)
	}
	if f.pay.calls.Load() != 2 {
		t.Errorf("payment calls = %d, want 2 (the retry took the order over)", f.pay.calls.Load())
	}
	rec, err := f.db.Record(ctx, f.user, "key-1")
	if err != nil || rec.Done() {
		t.Fatalf("Record(key-1) = %+v, %v; want kept, in flight", rec, err)
	}
	o, err := f.db.Order(ctx, f.user, rec.OrderID)
	if err != nil || o.Status != checkout.StatusPending {
		t.Errorf("order after takeover = %+v, %v; want still pending", o, err)
	}
	if got := f.available(t, 3); got != before-2 {
		t.Errorf("available = %d, want %d (still reserved)", got, before-2)
	}
}
