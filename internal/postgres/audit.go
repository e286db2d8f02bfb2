package postgres

import (
	"context"

	"github.com/briskhq/brisk/internal/checkout"
)

// AllOrders returns the orders of every user in id order (ids are
// UUIDv7, so oldest first), only ids above afterID when it is not empty,
// at most limit, with their lines. It is for audits such as the chaos
// invariant checker, not for request paths.
func (db *DB) AllOrders(ctx context.Context, afterID string, limit int) ([]checkout.Order, error) {
	limit = max(1, limit)
	if afterID == "" {
		return db.queryOrders(ctx, "list all orders", `TRUE`, `id`, limit)
	}
	return db.queryOrders(ctx, "list all orders", `id > $1`, `id`, limit, afterID)
}
