package sqlite

import (
	"context"
	"fmt"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

// AllOrders returns the orders of every user in id order (ids are
// UUIDv7, so oldest first), only ids above afterID when it is not empty,
// at most limit, with their lines. It is for audits such as the chaos
// invariant checker, not for request paths.
func (db *DB) AllOrders(ctx context.Context, afterID string, limit int) ([]checkout.Order, error) {
	if limit < 1 {
		return nil, derrors.New(derrors.Invalid, "limit must be positive")
	}
	os, err := db.orders(ctx, `SELECT `+orderCols+` FROM orders WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list all orders: %w", err)
	}
	return os, nil
}
