package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

var releaseTests = []test{
	{"checkout/Release", testRelease},
	{"checkout/Release finished order", testReleaseFinished},
	{"checkout/Release unknown order", testReleaseUnknown},
	{"checkout/concurrent Release and Complete", testConcurrentRelease},
}

func testRelease(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "release@example.com")
	before := stock(t, s, 21, 22)
	b, _ := begin(t, s, u.ID, "key", base, item{21, 2}, item{22, 1})

	at := base.Add(time.Second)
	released, err := s.Checkout.Release(ctx, b.OrderID, "payment not sent", at)
	if err != nil || !released {
		t.Fatalf("Release() = %v, %v; want true, nil", released, err)
	}
	want := pendingOrder(b)
	want.Status, want.FailureReason, want.UpdatedAt = checkout.StatusFailed, "payment not sent", at
	checkOrder(t, s, want)
	_, err = s.Checkout.Record(ctx, u.ID, "key")
	wantKind(t, "Record(released key)", err, derrors.NotFound)
	if got := stock(t, s, 21, 22); !reflect.DeepEqual(got, before) {
		t.Errorf("Stock after Release = %v, want released back to %v", got, before)
	}
	if p, err := s.Checkout.Pending(ctx, base.Add(time.Hour), 10); err != nil || len(p) != 0 {
		t.Errorf("Pending after Release = %d orders, %v; want none", len(p), err)
	}

	// Released again: a no-op that reports false.
	if released, err := s.Checkout.Release(ctx, b.OrderID, "again", at.Add(time.Second)); err != nil || released {
		t.Errorf("Release(again) = %v, %v; want false, nil", released, err)
	}
	checkOrder(t, s, want)

	// The key is free: a retry with it starts a new order, which completes.
	again := beginInput(u.ID, "key", at.Add(time.Second), item{21, 2}, item{22, 1})
	rec, o, err := s.Checkout.Begin(ctx, again)
	if err != nil {
		t.Fatalf("Begin(same key after Release) = %v", err)
	}
	if rec.OrderID != again.OrderID || o.ID == b.OrderID {
		t.Errorf("Begin(same key after Release) = record for %s, order %s; want the new order %s", rec.OrderID, o.ID, again.OrderID)
	}
	if _, err := s.Checkout.Complete(ctx, again.OrderID, "pay-1", respond(201, nil), at.Add(2*time.Second)); err != nil {
		t.Fatalf("Complete(new order) = %v", err)
	}
	r, err := s.Checkout.Record(ctx, u.ID, "key")
	if err != nil || r.OrderID != again.OrderID || r.Response.Status != 201 {
		t.Errorf("Record after the retry = %+v, %v; want the new order's 201", r, err)
	}
	checkOrder(t, s, want) // the released order stays failed
	after := stock(t, s, 21, 22)
	for _, it := range []item{{21, 2}, {22, 1}} {
		a, bf := after[it.id], before[it.id]
		if a.Available != bf.Available-int64(it.n) || a.Sold != bf.Sold+int64(it.n) || a.Reserved != bf.Reserved {
			t.Errorf("Stock(%d) after the retry sold %d = %+v, was %+v", it.id, it.n, a, bf)
		}
	}
	checkInvariant(t, s)
}

func testReleaseFinished(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "release-paid@example.com")
	b, _ := begin(t, s, u.ID, "key", base, item{23, 1})
	at := base.Add(time.Second)
	paid, err := s.Checkout.Complete(ctx, b.OrderID, "pay-1", respond(201, nil), at)
	if err != nil {
		t.Fatal(err)
	}
	st := stock(t, s, 23)
	released, err := s.Checkout.Release(ctx, b.OrderID, "payment not sent", at.Add(time.Second))
	if err != nil || released {
		t.Fatalf("Release(paid order) = %v, %v; want false, nil", released, err)
	}
	checkOrder(t, s, paid)
	checkRecord(t, s, checkout.Record{UserID: u.ID, Key: "key", RequestHash: b.RequestHash, OrderID: b.OrderID, CreatedAt: base,
		Response: respond(201, nil)(paid)})
	if got := stock(t, s, 23); !reflect.DeepEqual(got, st) {
		t.Errorf("Stock after Release(paid order) = %v, want unchanged %v", got, st)
	}
	checkInvariant(t, s)
}

func testReleaseUnknown(t *testing.T, s Stores) {
	_, err := s.Checkout.Release(t.Context(), newOrderID(base), "payment not sent", base)
	wantKind(t, "Release(unknown order)", err, derrors.NotFound)
}

// testConcurrentRelease races Release against Complete on several orders:
// each ends either paid with its key and a 201, or failed with its key
// gone, and stock adds up.
func testConcurrentRelease(t *testing.T, s Stores) {
	const orders = 8
	u := newUser(t, s, "release-race@example.com")
	before := stock(t, s, 24)[24]
	ins := make([]checkout.Begin, orders)
	for i := range ins {
		ins[i], _ = begin(t, s, u.ID, fmt.Sprintf("key-%d", i), base, item{24, 1})
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 2*orders)
	for i := range 2 * orders {
		wg.Go(func() {
			<-start
			in := ins[i/2]
			at := base.Add(time.Second)
			if i%2 == 0 {
				_, errs[i] = s.Checkout.Complete(t.Context(), in.OrderID, fmt.Sprintf("pay-%d", i), respond(201, nil), at)
			} else {
				_, errs[i] = s.Checkout.Release(t.Context(), in.OrderID, "payment not sent", at)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call #%d = %v", i, err)
		}
	}
	paid := 0
	for _, in := range ins {
		o, err := s.Checkout.Order(t.Context(), u.ID, in.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.Checkout.Record(t.Context(), u.ID, in.Key)
		switch o.Status {
		case checkout.StatusPaid:
			paid++
			if err != nil || rec.Response.Status != 201 {
				t.Errorf("paid order %s: Record = %+v, %v; want its 201", o.ID, rec, err)
			}
		case checkout.StatusFailed:
			wantKind(t, "Record(released order's key)", err, derrors.NotFound)
		default:
			t.Errorf("order %s is %s after Release and Complete, want paid or failed", o.ID, o.Status)
		}
	}
	got := stock(t, s, 24)[24]
	if got.Sold != before.Sold+int64(paid) || got.Available != before.Available-int64(paid) || got.Reserved != before.Reserved {
		t.Errorf("Stock(24) = %+v after %d of %d orders paid, was %+v", got, paid, orders, before)
	}
	checkInvariant(t, s)
}
