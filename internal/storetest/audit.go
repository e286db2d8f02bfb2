package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/checkout"
)

var auditTests = []test{
	{"audit/AllOrders", testAllOrders},
}

// orderAuditor is implemented by relational stores that can list the
// orders of every user (for the chaos invariant checker).
type orderAuditor interface {
	AllOrders(ctx context.Context, afterID string, limit int) ([]checkout.Order, error)
}

func testAllOrders(t *testing.T, s Stores) {
	ctx := t.Context()
	a, ok := s.Checkout.(orderAuditor)
	if !ok {
		t.Fatalf("%T has no AllOrders(ctx, afterID, limit)", s.Checkout)
	}
	none, err := a.AllOrders(ctx, "", 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("AllOrders(empty store) = %v, %v; want none", orderIDs(none), err)
	}
	u1 := newUser(t, s, "audit-a@example.com")
	u2 := newUser(t, s, "audit-b@example.com")
	var want []checkout.Order // oldest first, both users interleaved
	for i := range 3 {
		at := base.Add(time.Duration(i) * time.Minute)
		in, _ := begin(t, s, u1.ID, fmt.Sprintf("audit-a-%d", i), at, item{int64(10 + i), 1}, item{20, 2})
		want = append(want, pendingOrder(in))
		in, _ = begin(t, s, u2.ID, fmt.Sprintf("audit-b-%d", i), at.Add(time.Second), item{30, 1})
		want = append(want, pendingOrder(in))
	}
	o, err := s.Checkout.Complete(ctx, want[1].ID, "pay-audit", respond(201, nil), base.Add(time.Hour))
	if err != nil {
		t.Fatalf("Complete() = %v", err)
	}
	want[1] = o

	var got []checkout.Order
	after := ""
	for page := 0; ; page++ {
		os, err := a.AllOrders(ctx, after, 4)
		if err != nil {
			t.Fatalf("AllOrders(after %q) = %v", after, err)
		}
		if len(os) > 4 {
			t.Fatalf("AllOrders(limit 4) returned %d orders", len(os))
		}
		if len(os) == 0 || page > len(want) {
			break
		}
		got = append(got, os...)
		after = os[len(os)-1].ID
	}
	if len(got) != len(want) {
		t.Fatalf("AllOrders pages = %v, want %v", orderIDs(got), orderIDs(want))
	}
	for i := range got {
		if d := sameOrder(got[i], want[i]); d != "" {
			t.Errorf("AllOrders[%d]: %s", i, d)
		}
	}
}
