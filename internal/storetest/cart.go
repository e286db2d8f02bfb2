package storetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/derrors"
)

// RunCart runs the contract tests of a cart store. Each subtest is
// parallel, calls open once and uses user ids no other subtest (or earlier
// run) uses, so open may return a shared store, such as one Redis server;
// the subtests clear their carts when they end.
func RunCart(t *testing.T, open func(t *testing.T) cart.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c cart.Store, user func() int64)
	}{
		{"empty", testCartEmpty},
		{"SetItem", testCartSet},
		{"RemoveItem", testCartRemove},
		{"Clear", testCartClear},
		{"max lines", testCartMaxLines},
		{"users are separate", testCartUsers},
		{"concurrent adds", testCartConcurrent},
	}
	for _, tc := range tests {
		t.Run("cart/"+tc.name, func(t *testing.T) {
			t.Parallel()
			c := open(t)
			user := func() int64 {
				id := rand.Int64N(1<<50) + 1
				t.Cleanup(func() {
					if err := c.Clear(context.Background(), id); err != nil {
						t.Errorf("Clear(%d) at cleanup = %v", id, err)
					}
				})
				return id
			}
			tc.fn(t, c, user)
		})
	}
}

func checkItems(t *testing.T, c cart.Store, userID int64, want ...cart.Item) {
	t.Helper()
	got, err := c.Items(t.Context(), userID)
	if err != nil {
		t.Fatalf("Items(%d) = %v", userID, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Items(%d) = %v, want %v", userID, got, want)
	}
}

// line is a cart line, short for tables.
func line(productID int64, quantity int) cart.Item {
	return cart.Item{ProductID: productID, Quantity: quantity}
}

func setItem(t *testing.T, c cart.Store, userID, productID int64, n int) {
	t.Helper()
	if err := c.SetItem(t.Context(), userID, productID, n, cart.MaxLines); err != nil {
		t.Fatalf("SetItem(%d, %d, %d) = %v", userID, productID, n, err)
	}
}

func testCartEmpty(t *testing.T, c cart.Store, user func() int64) {
	checkItems(t, c, user())
}

func testCartSet(t *testing.T, c cart.Store, user func() int64) {
	u := user()
	setItem(t, c, u, 30, 1)
	setItem(t, c, u, 10, 2)
	setItem(t, c, u, 1000, 3)
	setItem(t, c, u, 20, cart.MaxQuantity)
	checkItems(t, c, u, line(10, 2), line(20, cart.MaxQuantity), line(30, 1), line(1000, 3))
	setItem(t, c, u, 10, 7) // overwrite, not add
	setItem(t, c, u, 30, 1) // same value
	checkItems(t, c, u, line(10, 7), line(20, cart.MaxQuantity), line(30, 1), line(1000, 3))
}

func testCartRemove(t *testing.T, c cart.Store, user func() int64) {
	u := user()
	setItem(t, c, u, 1, 1)
	setItem(t, c, u, 2, 2)
	setItem(t, c, u, 3, 3)
	if err := c.RemoveItem(t.Context(), u, 2); err != nil {
		t.Fatalf("RemoveItem(2) = %v", err)
	}
	checkItems(t, c, u, line(1, 1), line(3, 3))
	if err := c.RemoveItem(t.Context(), u, 2); err != nil {
		t.Errorf("RemoveItem(absent line) = %v, want nil", err)
	}
	if err := c.RemoveItem(t.Context(), user(), 1); err != nil {
		t.Errorf("RemoveItem(empty cart) = %v, want nil", err)
	}
	checkItems(t, c, u, line(1, 1), line(3, 3))
	setItem(t, c, u, 2, 5)
	checkItems(t, c, u, line(1, 1), line(2, 5), line(3, 3))
}

func testCartClear(t *testing.T, c cart.Store, user func() int64) {
	u := user()
	for id := int64(1); id <= 5; id++ {
		setItem(t, c, u, id, int(id))
	}
	if err := c.Clear(t.Context(), u); err != nil {
		t.Fatalf("Clear() = %v", err)
	}
	checkItems(t, c, u)
	if err := c.Clear(t.Context(), u); err != nil {
		t.Errorf("Clear(empty cart) = %v, want nil", err)
	}
	setItem(t, c, u, 9, 1)
	checkItems(t, c, u, line(9, 1))
}

func testCartMaxLines(t *testing.T, c cart.Store, user func() int64) {
	ctx := t.Context()
	u := user()
	const maxLines = 3
	for id := int64(1); id <= maxLines; id++ {
		if err := c.SetItem(ctx, u, id, 1, maxLines); err != nil {
			t.Fatalf("SetItem(line %d of %d) = %v", id, maxLines, err)
		}
	}
	err := c.SetItem(ctx, u, 4, 1, maxLines)
	wantKind(t, "SetItem(one line too many)", err, derrors.Conflict)
	checkItems(t, c, u, line(1, 1), line(2, 1), line(3, 1))
	// Changing a line of a full cart is fine.
	if err := c.SetItem(ctx, u, 2, 8, maxLines); err != nil {
		t.Errorf("SetItem(existing line of a full cart) = %v", err)
	}
	// After a removal there is room again.
	if err := c.RemoveItem(ctx, u, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.SetItem(ctx, u, 4, 1, maxLines); err != nil {
		t.Errorf("SetItem(after a removal) = %v", err)
	}
	checkItems(t, c, u, line(2, 8), line(3, 1), line(4, 1))
}

func testCartUsers(t *testing.T, c cart.Store, user func() int64) {
	a, b := user(), user()
	setItem(t, c, a, 1, 1)
	setItem(t, c, b, 1, 2)
	setItem(t, c, b, 2, 3)
	checkItems(t, c, a, line(1, 1))
	checkItems(t, c, b, line(1, 2), line(2, 3))
	if err := c.Clear(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	checkItems(t, c, a, line(1, 1))
	checkItems(t, c, b)
}

// testCartConcurrent adds more distinct products at once than the cart
// may hold: exactly maxLines adds may succeed.
func testCartConcurrent(t *testing.T, c cart.Store, user func() int64) {
	const (
		adders   = 20
		maxLines = 10
	)
	u := user()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
		start    = make(chan struct{})
	)
	for i := range adders {
		wg.Go(func() {
			<-start
			err := c.SetItem(t.Context(), u, int64(100+i), 1, maxLines)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case derrors.Kind(err) == derrors.Conflict:
				full++
			default:
				t.Errorf("SetItem(%d) = %v", 100+i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != maxLines || full != adders-maxLines {
		t.Errorf("%d concurrent adds to a cart of %d lines: %d added, %d refused; want %d, %d", adders, maxLines, ok, full, maxLines, adders-maxLines)
	}
	items, err := c.Items(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != maxLines {
		t.Errorf("Items() after concurrent adds = %d lines, want %d", len(items), maxLines)
	}
	if !slices.IsSortedFunc(items, func(a, b cart.Item) int { return int(a.ProductID - b.ProductID) }) {
		t.Errorf("Items() = %v, want ordered by product id", items)
	}
}
