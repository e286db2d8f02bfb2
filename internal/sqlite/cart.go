package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/derrors"
)

// Items returns the user's cart lines, ordered by product id.
func (db *DB) Items(ctx context.Context, userID int64) ([]cart.Item, error) {
	rows, err := db.read(ctx, `SELECT product_id, quantity FROM cart_items WHERE user_id = ? ORDER BY product_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("get cart items: %w", err)
	}
	defer rows.Close()
	items := []cart.Item{}
	for rows.Next() {
		var it cart.Item
		if err := rows.Scan(&it.ProductID, &it.Quantity); err != nil {
			return nil, fmt.Errorf("get cart items: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get cart items: %w", err)
	}
	return items, nil
}

// SetItem sets the quantity of one line, adding it if absent and the cart
// has fewer than maxLines lines (derrors.Conflict otherwise). The check and
// the write are one statement, so concurrent adds cannot overshoot.
func (db *DB) SetItem(ctx context.Context, userID, productID int64, quantity, maxLines int) error {
	if quantity < 1 || quantity > cart.MaxQuantity {
		return derrors.New(derrors.Invalid, "quantity must be from 1 to %d", cart.MaxQuantity)
	}
	res, err := db.exec(ctx, `INSERT INTO cart_items (user_id, product_id, quantity, updated_at)
		SELECT ?1, ?2, ?3, ?4
		WHERE EXISTS (SELECT 1 FROM cart_items WHERE user_id = ?1 AND product_id = ?2)
		   OR (SELECT count(*) FROM cart_items WHERE user_id = ?1) < ?5
		ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity, updated_at = excluded.updated_at`,
		userID, productID, quantity, micros(time.Now()), maxLines)
	if err != nil {
		return fmt.Errorf("set cart item: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set cart item: %w", err)
	}
	if n == 0 {
		return derrors.New(derrors.Conflict, "a cart holds at most %d products", maxLines)
	}
	return nil
}

// RemoveItem deletes one line; removing an absent line is not an error.
func (db *DB) RemoveItem(ctx context.Context, userID, productID int64) error {
	if _, err := db.exec(ctx, `DELETE FROM cart_items WHERE user_id = ? AND product_id = ?`, userID, productID); err != nil {
		return fmt.Errorf("remove cart item: %w", err)
	}
	return nil
}

// Clear empties the cart.
func (db *DB) Clear(ctx context.Context, userID int64) error {
	if _, err := db.exec(ctx, `DELETE FROM cart_items WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("clear cart: %w", err)
	}
	return nil
}
