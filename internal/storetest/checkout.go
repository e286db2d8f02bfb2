package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

var checkoutTests = []test{
	{"checkout/Begin", testBegin},
	{"checkout/Begin same key", testBeginSameKey},
	{"checkout/Begin out of stock", testBeginOutOfStock},
	{"checkout/Begin rolls back earlier lines", testBeginRollback},
	{"checkout/Begin unknown product", testBeginUnknownProduct},
	{"checkout/Complete", testComplete},
	{"checkout/Fail", testFail},
	{"checkout/Order of another user", testOrderOtherUser},
	{"checkout/Orders", testOrders},
	{"checkout/Pending", testPending},
	{"checkout/stock accounting", testAccounting},
	{"checkout/concurrent Begin", testConcurrentBegin},
	{"checkout/concurrent Begin same key", testConcurrentSameKey},
	{"checkout/concurrent Complete and Fail", testConcurrentFinish},
}

// base is the clock of the checkout tests; whole seconds, so every store
// keeps it exactly.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// item is a product and a quantity to order.
type item struct {
	id int64
	n  int
}

// beginInput builds a Begin for the items, priced from the fixture; ids
// outside the fixture get a made-up line.
func beginInput(userID int64, key string, at time.Time, items ...item) checkout.Begin {
	fx := fixture()
	b := checkout.Begin{
		OrderID: newOrderID(at), UserID: userID, Key: key, RequestHash: "hash-" + key,
		Total: money.Money{Currency: "USD"}, Now: at,
	}
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b item) int { return int(a.id - b.id) })
	for _, it := range items {
		l := checkout.Line{ProductID: it.id, Name: "unknown", Quantity: it.n, UnitPrice: money.Money{Amount: 100, Currency: "USD"}}
		if it.id >= 1 && it.id <= int64(len(fx)) {
			p := fx[it.id-1]
			l.Name, l.UnitPrice = p.Name, p.Price
		}
		b.Lines = append(b.Lines, l)
		b.Total.Amount += l.UnitPrice.Amount * int64(it.n)
	}
	return b
}

// begin runs Begin and fails the test on an error.
func begin(t *testing.T, s Stores, userID int64, key string, at time.Time, items ...item) (checkout.Begin, checkout.Order) {
	t.Helper()
	b := beginInput(userID, key, at, items...)
	_, o, err := s.Checkout.Begin(t.Context(), b)
	if err != nil {
		t.Fatalf("Begin(key %q, %v) = %v", key, items, err)
	}
	return b, o
}

// pendingOrder is the order Begin must create for b.
func pendingOrder(b checkout.Begin) checkout.Order {
	return checkout.Order{
		ID: b.OrderID, UserID: b.UserID, Status: checkout.StatusPending, Lines: b.Lines, Total: b.Total,
		IdempotencyKey: b.Key, CreatedAt: b.Now, UpdatedAt: b.Now,
	}
}

func sameOrder(got, want checkout.Order) string {
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		return fmt.Sprintf("order %s: CreatedAt, UpdatedAt = %v, %v; want %v, %v", want.ID, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func sameRecord(got, want checkout.Record) string {
	if !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("record %q: CreatedAt = %v, want %v", want.Key, got.CreatedAt, want.CreatedAt)
	}
	if got.UserID != want.UserID || got.Key != want.Key || got.RequestHash != want.RequestHash ||
		got.OrderID != want.OrderID || got.Response.Status != want.Response.Status || !bytes.Equal(got.Response.Body, want.Response.Body) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

// checkOrder compares the stored order with want.
func checkOrder(t *testing.T, s Stores, want checkout.Order) {
	t.Helper()
	got, err := s.Checkout.Order(t.Context(), want.UserID, want.ID)
	if err != nil {
		t.Errorf("Order(%d, %s) = %v", want.UserID, want.ID, err)
	} else if d := sameOrder(got, want); d != "" {
		t.Errorf("Order(%d, %s): %s", want.UserID, want.ID, d)
	}
}

// checkRecord compares the stored idempotency record with want.
func checkRecord(t *testing.T, s Stores, want checkout.Record) {
	t.Helper()
	got, err := s.Checkout.Record(t.Context(), want.UserID, want.Key)
	if err != nil {
		t.Errorf("Record(%d, %q) = %v", want.UserID, want.Key, err)
	} else if d := sameRecord(got, want); d != "" {
		t.Errorf("Record(%d, %q): %s", want.UserID, want.Key, d)
	}
}

// checkNothingWritten checks that b left no key and no order behind.
func checkNothingWritten(t *testing.T, s Stores, b checkout.Begin) {
	t.Helper()
	_, err := s.Checkout.Record(t.Context(), b.UserID, b.Key)
	wantKind(t, "Record after a failed Begin", err, derrors.NotFound)
	_, err = s.Checkout.Order(t.Context(), b.UserID, b.OrderID)
	wantKind(t, "Order after a failed Begin", err, derrors.NotFound)
}

// setAvailable sets a product's available stock through the catalog.
func setAvailable(t *testing.T, s Stores, id, n int64) {
	t.Helper()
	if _, err := s.Catalog.UpdateProduct(t.Context(), id, catalog.Update{Available: &n}); err != nil {
		t.Fatalf("UpdateProduct(%d, available %d) = %v", id, n, err)
	}
}

// respond returns a resp callback that records the order it was given.
func respond(status int, seen *checkout.Order) func(checkout.Order) checkout.Response {
	return func(o checkout.Order) checkout.Response {
		if seen != nil {
			*seen = o
		}
		return checkout.Response{Status: status, Body: fmt.Appendf(nil, `{"id":%q,"status":%q,"payment_id":%q}`, o.ID, o.Status, o.PaymentID)}
	}
}

func testBegin(t *testing.T, s Stores) {
	u := newUser(t, s, "begin@example.com")
	before := stock(t, s, 3, 8)
	b := beginInput(u.ID, "key-1", base, item{8, 1}, item{3, 2})
	rec, o, err := s.Checkout.Begin(t.Context(), b)
	if err != nil {
		t.Fatalf("Begin() = %v", err)
	}
	wantRec := checkout.Record{UserID: u.ID, Key: "key-1", RequestHash: "hash-key-1", OrderID: b.OrderID, CreatedAt: base}
	if d := sameRecord(rec, wantRec); d != "" {
		t.Errorf("Begin() record: %s", d)
	}
	if rec.Done() {
		t.Errorf("Begin() record is done, want in flight")
	}
	want := pendingOrder(b)
	if d := sameOrder(o, want); d != "" {
		t.Errorf("Begin() order: %s", d)
	}
	checkOrder(t, s, want)
	checkRecord(t, s, wantRec)

	after := stock(t, s, 3, 8)
	for _, it := range []item{{3, 2}, {8, 1}} {
		b, a := before[it.id], after[it.id]
		if a.Available != b.Available-int64(it.n) || a.Reserved != b.Reserved+int64(it.n) || a.Sold != b.Sold || a.Initial != b.Initial {
			t.Errorf("Stock(%d) after reserving %d = %+v, was %+v", it.id, it.n, a, b)
		}
	}
	_, err = s.Checkout.Record(t.Context(), u.ID, "key-2")
	wantKind(t, "Record(unknown key)", err, derrors.NotFound)
	checkInvariant(t, s)
}

func testBeginSameKey(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "samekey@example.com")
	first, _ := begin(t, s, u.ID, "key", base, item{4, 1})
	st := stock(t, s, 4, 5)

	// Same key, another request: the first record comes back, nothing is written.
	b := beginInput(u.ID, "key", base.Add(time.Minute), item{5, 2})
	b.RequestHash = "another-hash"
	rec, _, err := s.Checkout.Begin(ctx, b)
	wantKind(t, "Begin(same key)", err, derrors.Conflict, checkout.ErrKeyExists)
	wantRec := checkout.Record{UserID: u.ID, Key: "key", RequestHash: first.RequestHash, OrderID: first.OrderID, CreatedAt: base}
	if d := sameRecord(rec, wantRec); d != "" {
		t.Errorf("Begin(same key) record: %s", d)
	}
	if got := stock(t, s, 4, 5); !reflect.DeepEqual(got, st) {
		t.Errorf("Stock after Begin(same key) = %v, want unchanged %v", got, st)
	}
	_, err = s.Checkout.Order(ctx, u.ID, b.OrderID)
	wantKind(t, "Order(second order id)", err, derrors.NotFound)
	checkRecord(t, s, wantRec)

	// After the order finished, the key still answers with the record, now done.
	if _, err := s.Checkout.Complete(ctx, first.OrderID, "pay-1", respond(201, nil), base.Add(time.Second)); err != nil {
		t.Fatalf("Complete() = %v", err)
	}
	rec, _, err = s.Checkout.Begin(ctx, beginInput(u.ID, "key", base.Add(2*time.Minute), item{4, 1}))
	wantKind(t, "Begin(same key, after Complete)", err, derrors.Conflict, checkout.ErrKeyExists)
	if rec.OrderID != first.OrderID || !rec.Done() || rec.Response.Status != 201 {
		t.Errorf("Begin(same key, after Complete) record = %+v, want order %s, done with 201", rec, first.OrderID)
	}

	// Keys are per user: another user may use the same key.
	v := newUser(t, s, "samekey2@example.com")
	begin(t, s, v.ID, "key", base, item{4, 1})
	checkInvariant(t, s)
}

func testBeginOutOfStock(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "oos@example.com")
	setAvailable(t, s, 6, 3)
	st := stock(t, s, 6)
	b := beginInput(u.ID, "key", base, item{6, 4})
	_, _, err := s.Checkout.Begin(ctx, b)
	wantKind(t, "Begin(4 of 3)", err, derrors.Conflict, checkout.ErrOutOfStock)
	if errors.Is(err, checkout.ErrKeyExists) || errors.Is(err, derrors.NotFound) {
		t.Errorf("Begin(4 of 3) = %v, want only out of stock", err)
	}
	if got := stock(t, s, 6); !reflect.DeepEqual(got, st) {
		t.Errorf("Stock after Begin(out of stock) = %v, want unchanged %v", got, st)
	}
	checkNothingWritten(t, s, b)

	// The key was not used up: the same key works once stock suffices.
	b2, _ := begin(t, s, u.ID, "key", base, item{6, 3})
	if got := stock(t, s, 6)[6]; got.Available != 0 || got.Reserved != 3 {
		t.Errorf("Stock after reserving all = %+v, want available 0, reserved 3", got)
	}
	_, _, err = s.Checkout.Begin(ctx, beginInput(u.ID, "key-2", base, item{6, 1}))
	wantKind(t, "Begin(1 of 0)", err, derrors.Conflict, checkout.ErrOutOfStock)
	checkOrder(t, s, pendingOrder(b2))
	checkInvariant(t, s)
}

func testBeginRollback(t *testing.T, s Stores) {
	u := newUser(t, s, "rollback@example.com")
	setAvailable(t, s, 12, 1)
	st := stock(t, s, 11, 12, 13)
	// Line 11 reserves first, line 12 is short: 11's reservation must be undone.
	b := beginInput(u.ID, "key", base, item{11, 2}, item{12, 5}, item{13, 1})
	_, _, err := s.Checkout.Begin(t.Context(), b)
	wantKind(t, "Begin(second line short)", err, derrors.Conflict, checkout.ErrOutOfStock)
	if got := stock(t, s, 11, 12, 13); !reflect.DeepEqual(got, st) {
		t.Errorf("Stock after a rolled back Begin = %v, want unchanged %v", got, st)
	}
	checkNothingWritten(t, s, b)
	if os, err := s.Checkout.Orders(t.Context(), u.ID, "", 10); err != nil || len(os) != 0 {
		t.Errorf("Orders() after a rolled back Begin = %d orders, %v; want none", len(os), err)
	}
	checkInvariant(t, s)
}

func testBeginUnknownProduct(t *testing.T, s Stores) {
	u := newUser(t, s, "unknown@example.com")
	st := stock(t, s, 1)
	b := beginInput(u.ID, "key", base, item{1, 1}, item{FixtureSize + 1, 1})
	_, _, err := s.Checkout.Begin(t.Context(), b)
	wantKind(t, "Begin(unknown product)", err, derrors.NotFound)
	if got := stock(t, s, 1); !reflect.DeepEqual(got, st) {
		t.Errorf("Stock after Begin(unknown product) = %v, want unchanged %v", got, st)
	}
	checkNothingWritten(t, s, b)
	checkInvariant(t, s)
}

func testComplete(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "complete@example.com")
	before := stock(t, s, 14, 15)
	b, _ := begin(t, s, u.ID, "key", base, item{14, 2}, item{15, 1})

	var seen checkout.Order
	at := base.Add(time.Second)
	o, err := s.Checkout.Complete(ctx, b.OrderID, "pay-1", respond(201, &seen), at)
	if err != nil {
		t.Fatalf("Complete() = %v", err)
	}
	want := pendingOrder(b)
	want.Status, want.PaymentID, want.UpdatedAt = checkout.StatusPaid, "pay-1", at
	if d := sameOrder(o, want); d != "" {
		t.Errorf("Complete(): %s", d)
	}
	if d := sameOrder(seen, want); d != "" {
		t.Errorf("Complete() gave resp the order: %s", d)
	}
	checkOrder(t, s, want)
	wantRec := checkout.Record{UserID: u.ID, Key: "key", RequestHash: b.RequestHash, OrderID: b.OrderID, CreatedAt: base,
		Response: respond(201, nil)(want)}
	checkRecord(t, s, wantRec)
	after := stock(t, s, 14, 15)
	for _, it := range []item{{14, 2}, {15, 1}} {
		b, a := before[it.id], after[it.id]
		if a.Available != b.Available-int64(it.n) || a.Reserved != b.Reserved || a.Sold != b.Sold+int64(it.n) || a.Initial != b.Initial {
			t.Errorf("Stock(%d) after selling %d = %+v, was %+v", it.id, it.n, a, b)
		}
	}

	// Again, and Fail after Complete: no-ops that return the paid order.
	o, err = s.Checkout.Complete(ctx, b.OrderID, "pay-2", respond(500, nil), at.Add(time.Second))
	if err != nil || sameOrder(o, want) != "" {
		t.Errorf("Complete(again) = %+v, %v; want unchanged %+v", o, err, want)
	}
	o, err = s.Checkout.Fail(ctx, b.OrderID, "late decline", respond(402, nil), at.Add(2*time.Second))
	if err != nil || sameOrder(o, want) != "" {
		t.Errorf("Fail(after Complete) = %+v, %v; want unchanged %+v", o, err, want)
	}
	checkOrder(t, s, want)
	checkRecord(t, s, wantRec)
	if got := stock(t, s, 14, 15); !reflect.DeepEqual(got, after) {
		t.Errorf("Stock after no-op finishes = %v, want %v", got, after)
	}

	_, err = s.Checkout.Complete(ctx, newOrderID(base), "pay-3", respond(201, nil), at)
	wantKind(t, "Complete(unknown order)", err, derrors.NotFound)
	_, err = s.Checkout.Fail(ctx, newOrderID(base), "x", respond(402, nil), at)
	wantKind(t, "Fail(unknown order)", err, derrors.NotFound)
	checkInvariant(t, s)
}

func testFail(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "fail@example.com")
	before := stock(t, s, 16, 17)
	b, _ := begin(t, s, u.ID, "key", base, item{16, 3}, item{17, 1})

	var seen checkout.Order
	at := base.Add(time.Second)
	o, err := s.Checkout.Fail(ctx, b.OrderID, "card declined", respond(402, &seen), at)
	if err != nil {
		t.Fatalf("Fail() = %v", err)
	}
	want := pendingOrder(b)
	want.Status, want.FailureReason, want.UpdatedAt = checkout.StatusFailed, "card declined", at
	if d := sameOrder(o, want); d != "" {
		t.Errorf("Fail(): %s", d)
	}
	if d := sameOrder(seen, want); d != "" {
		t.Errorf("Fail() gave resp the order: %s", d)
	}
	checkOrder(t, s, want)
	wantRec := checkout.Record{UserID: u.ID, Key: "key", RequestHash: b.RequestHash, OrderID: b.OrderID, CreatedAt: base,
		Response: respond(402, nil)(want)}
	checkRecord(t, s, wantRec)
	if got := stock(t, s, 16, 17); !reflect.DeepEqual(got, before) {
		t.Errorf("Stock after Fail = %v, want released back to %v", got, before)
	}

	// Complete after Fail and Fail again are no-ops.
	o, err = s.Checkout.Complete(ctx, b.OrderID, "pay-1", respond(201, nil), at.Add(time.Second))
	if err != nil || sameOrder(o, want) != "" {
		t.Errorf("Complete(after Fail) = %+v, %v; want unchanged %+v", o, err, want)
	}
	o, err = s.Checkout.Fail(ctx, b.OrderID, "again", respond(500, nil), at.Add(2*time.Second))
	if err != nil || sameOrder(o, want) != "" {
		t.Errorf("Fail(again) = %+v, %v; want unchanged %+v", o, err, want)
	}
	checkOrder(t, s, want)
	checkRecord(t, s, wantRec)
	if got := stock(t, s, 16, 17); !reflect.DeepEqual(got, before) {
		t.Errorf("Stock after no-op finishes = %v, want %v", got, before)
	}
	checkInvariant(t, s)
}

func testOrderOtherUser(t *testing.T, s Stores) {
	ctx := t.Context()
	a := newUser(t, s, "a@example.com")
	b := newUser(t, s, "b@example.com")
	in, _ := begin(t, s, a.ID, "key", base, item{18, 1})
	_, err := s.Checkout.Order(ctx, b.ID, in.OrderID)
	wantKind(t, "Order(other user's order)", err, derrors.NotFound)
	_, err = s.Checkout.Order(ctx, a.ID, newOrderID(base))
	wantKind(t, "Order(unknown id)", err, derrors.NotFound)
	_, err = s.Checkout.Record(ctx, b.ID, "key")
	wantKind(t, "Record(other user's key)", err, derrors.NotFound)
	if os, err := s.Checkout.Orders(ctx, b.ID, "", 10); err != nil || len(os) != 0 {
		t.Errorf("Orders(other user) = %d orders, %v; want none", len(os), err)
	}
	checkOrder(t, s, pendingOrder(in))
}

func orderIDs(os []checkout.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

func testOrders(t *testing.T, s Stores) {
	ctx := t.Context()
	a := newUser(t, s, "orders-a@example.com")
	b := newUser(t, s, "orders-b@example.com")
	var want []checkout.Order // oldest first
	for i := range 5 {
		in, _ := begin(t, s, a.ID, fmt.Sprintf("a-%d", i), base.Add(time.Duration(i)*time.Minute), item{int64(40 + i), 1}, item{50, 1})
		want = append(want, pendingOrder(in))
		begin(t, s, b.ID, fmt.Sprintf("b-%d", i), base.Add(time.Duration(i)*time.Minute), item{60, 1})
	}
	o, err := s.Checkout.Complete(ctx, want[2].ID, "pay", respond(201, nil), base.Add(time.Hour))
	if err != nil {
		t.Fatalf("Complete() = %v", err)
	}
	want[2] = o
	newest := slices.Clone(want)
	slices.Reverse(newest)

	all, err := s.Checkout.Orders(ctx, a.ID, "", 100)
	if err != nil {
		t.Fatalf("Orders(all) = %v", err)
	}
	if len(all) != len(newest) {
		t.Fatalf("Orders(all) = %v, want %v", orderIDs(all), orderIDs(newest))
	}
	for i := range all {
		if d := sameOrder(all[i], newest[i]); d != "" {
			t.Errorf("Orders(all)[%d]: %s", i, d)
		}
	}

	tests := []struct {
		name  string
		after string
		limit int
		want  []checkout.Order
	}{
		{"first page", "", 2, newest[0:2]},
		{"second page", newest[1].ID, 2, newest[2:4]},
		{"last page", newest[3].ID, 2, newest[4:]},
		{"after the oldest", newest[4].ID, 2, nil},
		{"limit larger than the rest", newest[0].ID, 10, newest[1:]},
	}
	for _, tc := range tests {
		got, err := s.Checkout.Orders(ctx, a.ID, tc.after, tc.limit)
		if err != nil {
			t.Errorf("%s: Orders(after %q, %d) = %v", tc.name, tc.after, tc.limit, err)
			continue
		}
		if !slices.Equal(orderIDs(got), orderIDs(tc.want)) {
			t.Errorf("%s: Orders(after %q, %d) = %v, want %v", tc.name, tc.after, tc.limit, orderIDs(got), orderIDs(tc.want))
		}
	}
	if os, err := s.Checkout.Orders(ctx, b.ID, "", 100); err != nil || len(os) != 5 {
		t.Errorf("Orders(user b) = %d orders, %v; want 5", len(os), err)
	}
}

func testPending(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "pending@example.com")
	var os []checkout.Order
	for i := range 5 {
		in, _ := begin(t, s, u.ID, fmt.Sprintf("k%d", i), base.Add(time.Duration(i)*time.Minute), item{int64(70 + i), 1})
		os = append(os, pendingOrder(in))
	}
	if _, err := s.Checkout.Complete(ctx, os[1].ID, "pay", respond(201, nil), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkout.Fail(ctx, os[3].ID, "declined", respond(402, nil), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cutoff time.Time
		limit  int
		want   []checkout.Order
	}{
		{"all pending", base.Add(time.Hour), 10, []checkout.Order{os[0], os[2], os[4]}},
		{"limit", base.Add(time.Hour), 2, []checkout.Order{os[0], os[2]}},
		{"cutoff excludes newer", base.Add(3 * time.Minute), 10, []checkout.Order{os[0], os[2]}},
		{"cutoff is exclusive", base.Add(2 * time.Minute), 10, []checkout.Order{os[0]}},
		{"none before", base, 10, nil},
	}
	for _, tc := range tests {
		got, err := s.Checkout.Pending(ctx, tc.cutoff, tc.limit)
		if err != nil {
			t.Errorf("%s: Pending(%v, %d) = %v", tc.name, tc.cutoff, tc.limit, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: Pending(%v, %d) = %v, want %v", tc.name, tc.cutoff, tc.limit, orderIDs(got), orderIDs(tc.want))
			continue
		}
		for i := range got {
			if d := sameOrder(got[i], tc.want[i]); d != "" {
				t.Errorf("%s: Pending(%v, %d)[%d]: %s", tc.name, tc.cutoff, tc.limit, i, d)
			}
		}
	}
}

// testAccounting runs a mix of orders over three products and checks every
// number of their stock accounting.
func testAccounting(t *testing.T, s Stores) {
	ctx := t.Context()
	u := newUser(t, s, "accounting@example.com")
	const a, b, c = 20, 21, 22
	for _, id := range []int64{a, b, c} {
		setAvailable(t, s, id, 100)
	}
	if got := stock(t, s, a)[a]; got != (catalog.Stock{ProductID: a, Initial: 100, Available: 100}) {
		t.Fatalf("Stock(%d) after setting 100 = %+v, want initial = available = 100", a, got)
	}
	at := base
	next := func() time.Time { at = at.Add(time.Second); return at }
	o1, _ := begin(t, s, u.ID, "o1", next(), item{a, 2}, item{b, 3})
	o2, _ := begin(t, s, u.ID, "o2", next(), item{a, 1}, item{c, 5})
	begin(t, s, u.ID, "o3", next(), item{b, 4})
	o4, _ := begin(t, s, u.ID, "o4", next(), item{a, 3}, item{b, 1}, item{c, 2})
	o5, _ := begin(t, s, u.ID, "o5", next(), item{c, 1})
	for _, step := range []struct {
		id       string
		complete bool
	}{{o1.OrderID, true}, {o2.OrderID, false}, {o4.OrderID, true}, {o5.OrderID, false}, {o5.OrderID, true}, {o2.OrderID, true}} {
		var err error
		if step.complete {
			_, err = s.Checkout.Complete(ctx, step.id, "pay-"+step.id, respond(201, nil), next())
		} else {
			_, err = s.Checkout.Fail(ctx, step.id, "declined", respond(402, nil), next())
		}
		if err != nil {
			t.Fatalf("finish %s: %v", step.id, err)
		}
	}
	want := map[int64]catalog.Stock{
		a: {ProductID: a, Initial: 100, Available: 95, Reserved: 0, Sold: 5},
		b: {ProductID: b, Initial: 100, Available: 92, Reserved: 4, Sold: 4},
		c: {ProductID: c, Initial: 100, Available: 98, Reserved: 0, Sold: 2},
	}
	if got := stock(t, s, a, b, c); !reflect.DeepEqual(got, want) {
		t.Errorf("Stock = %v, want %v", got, want)
	}

	// An admin stock change with reservations outstanding keeps the invariant.
	setAvailable(t, s, b, 50)
	if got := stock(t, s, b)[b]; got != (catalog.Stock{ProductID: b, Initial: 58, Available: 50, Reserved: 4, Sold: 4}) {
		t.Errorf("Stock(%d) after setting available 50 = %+v, want initial 58", b, got)
	}
	checkInvariant(t, s)
}

func testConcurrentBegin(t *testing.T, s Stores) {
	const (
		id      = 30
		inStock = 50
		buyers  = 200
	)
	u := newUser(t, s, "rush@example.com")
	setAvailable(t, s, id, inStock)
	initial := stock(t, s, id)[id].Initial

	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		ok, outOfStock int
		start          = make(chan struct{})
	)
	for i := range buyers {
		wg.Go(func() {
			b := beginInput(u.ID, fmt.Sprintf("rush-%d", i), base, item{id, 1})
			<-start
			_, _, err := s.Checkout.Begin(t.Context(), b)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, checkout.ErrOutOfStock) && errors.Is(err, derrors.Conflict):
				outOfStock++
			default:
				t.Errorf("Begin(%d) = %v, want success or out of stock", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != inStock || outOfStock != buyers-inStock {
		t.Errorf("%d concurrent Begins for %d in stock: %d succeeded, %d out of stock; want %d, %d",
			buyers, inStock, ok, outOfStock, inStock, buyers-inStock)
	}
	want := catalog.Stock{ProductID: id, Initial: initial, Available: 0, Reserved: inStock}
	if got := stock(t, s, id)[id]; got != want {
		t.Errorf("Stock after the rush = %+v, want %+v", got, want)
	}
	os, err := s.Checkout.Orders(t.Context(), u.ID, "", buyers)
	if err != nil || len(os) != inStock {
		t.Errorf("Orders() after the rush = %d orders, %v; want %d", len(os), err, inStock)
	}
	checkInvariant(t, s)
}

func testConcurrentSameKey(t *testing.T, s Stores) {
	const (
		id      = 31
		clients = 20
	)
	u := newUser(t, s, "retry@example.com")
	before := stock(t, s, id)[id]
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		ins     [clients]checkout.Begin
		records [clients]checkout.Record
		errs    [clients]error
	)
	for i := range clients {
		ins[i] = beginInput(u.ID, "same-key", base, item{id, 2})
		wg.Go(func() {
			<-start
			records[i], _, errs[i] = s.Checkout.Begin(t.Context(), ins[i])
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Errorf("Begin with one key succeeded twice: orders %s and %s", ins[winner].OrderID, ins[i].OrderID)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no Begin with the key succeeded: %v", errs)
	}
	for i, err := range errs {
		if i == winner {
			continue
		}
		wantKind(t, fmt.Sprintf("Begin(same key) #%d", i), err, derrors.Conflict, checkout.ErrKeyExists)
		if records[i].OrderID != ins[winner].OrderID {
			t.Errorf("Begin(same key) #%d record names order %q, want the winner's %q", i, records[i].OrderID, ins[winner].OrderID)
		}
	}
	os, err := s.Checkout.Orders(t.Context(), u.ID, "", clients)
	if err != nil || len(os) != 1 || os[0].ID != ins[winner].OrderID {
		t.Errorf("Orders() = %v, %v; want only %s", orderIDs(os), err, ins[winner].OrderID)
	}
	if got := stock(t, s, id)[id]; got.Reserved != before.Reserved+2 || got.Available != before.Available-2 {
		t.Errorf("Stock = %+v, want 2 reserved once (was %+v)", got, before)
	}
	checkInvariant(t, s)
}

func testConcurrentFinish(t *testing.T, s Stores) {
	const (
		id    = 32
		each  = 10
		count = 3
	)
	u := newUser(t, s, "race@example.com")
	before := stock(t, s, id)[id]
	in, _ := begin(t, s, u.ID, "key", base, item{id, count})
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		orders [2 * each]checkout.Order
		errs   [2 * each]error
	)
	for i := range 2 * each {
		wg.Go(func() {
			<-start
			at := base.Add(time.Duration(i+1) * time.Second)
			if i%2 == 0 {
				orders[i], errs[i] = s.Checkout.Complete(t.Context(), in.OrderID, fmt.Sprintf("pay-%d", i), respond(201, nil), at)
			} else {
				orders[i], errs[i] = s.Checkout.Fail(t.Context(), in.OrderID, "declined", respond(402, nil), at)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("finish #%d = %v", i, err)
		}
	}
	final, err := s.Checkout.Order(t.Context(), u.ID, in.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range orders {
		if d := sameOrder(o, final); d != "" {
			t.Errorf("finish #%d returned %s; every caller must see the one final order", i, d)
		}
	}
	want := before
	status := 0
	switch final.Status {
	case checkout.StatusPaid:
		want.Available -= count
		want.Sold += count
		status = 201
	case checkout.StatusFailed:
		status = 402
	default:
		t.Fatalf("order status after the race = %q, want paid or failed", final.Status)
	}
	if got := stock(t, s, id)[id]; got != want {
		t.Errorf("Stock after the race (%s) = %+v, want %+v", final.Status, got, want)
	}
	if rec, err := s.Checkout.Record(t.Context(), u.ID, "key"); err != nil || rec.Response.Status != status {
		t.Errorf("Record after the race = %+v, %v; want response %d", rec, err, status)
	}
	checkInvariant(t, s)
}
