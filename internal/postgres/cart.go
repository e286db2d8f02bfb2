package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/derrors"
)

// *DB is also a cart.Store on the cart_items table, for deployments with
// PostgreSQL and no Redis.
var _ cart.Store = (*DB)(nil)

// Items returns the user's cart lines, ordered by product id.
func (db *DB) Items(ctx context.Context, userID int64) ([]cart.Item, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY product_id`, userID)
	if err != nil {
		return nil, wrapErr("get cart", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cart.Item, error) {
		var it cart.Item
		err := r.Scan(&it.ProductID, &it.Quantity)
		return it, err
	})
	if err != nil {
		return nil, wrapErr("get cart", err)
	}
	return items, nil
}

// SetItem sets the quantity of one line (1..cart.MaxQuantity), adding it
// if absent; it fails with derrors.Conflict if that would exceed maxLines.
// The count and the insert run in a SERIALIZABLE transaction, so two
// concurrent adds cannot both take the last free line (one is aborted
// with 40001 and runs again).
func (db *DB) SetItem(ctx context.Context, userID, productID int64, quantity, maxLines int) error {
	if quantity < 1 || quantity > cart.MaxQuantity {
		return derrors.New(derrors.Invalid, "quantity must be from 1 to %d", cart.MaxQuantity)
	}
	now := time.Now().UTC()
	full := false
	err := db.inTxIso(ctx, pgx.Serializable, func(tx pgx.Tx) error {
		full = false
		var lines int
		var present bool
		if err := tx.QueryRow(ctx, `
			SELECT count(*), coalesce(bool_or(product_id = $2), false)
			FROM cart_items WHERE user_id = $1`, userID, productID).Scan(&lines, &present); err != nil {
			return err
		}
		if !present && lines >= maxLines {
			full = true
			return nil
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO cart_items (user_id, product_id, quantity, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity, updated_at = excluded.updated_at`,
			userID, productID, quantity, now)
		return err
	})
	if err != nil {
		return wrapErr("set cart item", err)
	}
	if full {
		return derrors.New(derrors.Conflict, "the cart holds at most %d different products", maxLines)
	}
	return nil
}

// RemoveItem deletes one line; removing an absent line is not an error.
func (db *DB) RemoveItem(ctx context.Context, userID, productID int64) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2`, userID, productID)
	return wrapErr("remove cart item", err)
}

// Clear empties the cart.
func (db *DB) Clear(ctx context.Context, userID int64) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM cart_items WHERE user_id = $1`, userID)
	return wrapErr("clear cart", err)
}
