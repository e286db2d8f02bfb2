package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/briskhq/brisk/internal/derrors"
)

// Release undoes a pending order whose payment was never sent: in one
// transaction it marks the order failed with reason, moves its stock
// reserved -> available, deletes its idempotency key record and queues an
// order.failed outbox event. An order no longer pending is left as it is
// and Release reports false. See checkout.Store.
func (db *DB) Release(ctx context.Context, orderID, reason string, now time.Time) (bool, error) {
	now = dbTime(now)
	db.begun.take(orderID) // released here, never finished from memory
	released := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		released = false // the transaction may be retried
		// The order row is locked first, then products in id order, as in Begin.
		o, err := scanOrder(tx.QueryRow(ctx, `
			UPDATE orders SET status = 'failed', failure_reason = $2, updated_at = $3
			WHERE id = $1 AND status = 'pending'
			RETURNING `+orderCols, orderID, reason, now))
		if errors.Is(err, pgx.ErrNoRows) {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM orders WHERE id = $1`, orderID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return derrors.New(derrors.NotFound, "order %s not found", orderID)
			}
			return err // nil: finished before, nothing to do
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+lineCols+` FROM order_lines WHERE order_id = $1 ORDER BY product_id`, orderID)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, scanLine)
		if err != nil {
			return err
		}
		ev, err := json.Marshal(outboxEvent{
			OrderID: o.ID, UserID: o.UserID, Status: o.Status, Total: o.Total,
			FailureReason: o.FailureReason, At: now,
		})
		if err != nil {
			return err
		}
		batch := &pgx.Batch{}
		for _, l := range lines {
			batch.Queue(`UPDATE products SET reserved = reserved - $2, available = available + $2 WHERE id = $1`,
				l.ProductID, int64(l.Quantity))
		}
		batch.Queue(`DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND order_id = $3`,
			o.UserID, o.IdempotencyKey, o.ID)
		batch.Queue(`INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2, $3)`, "order.failed", string(ev), now)
		br := tx.SendBatch(ctx, batch)
		defer br.Close()
		for _, l := range lines {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("product %d of order %s is missing", l.ProductID, orderID)
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		released = true
		return nil
	})
	if pgCode(err) == codeCheckViolation {
		return false, fmt.Errorf("release order %s: stock accounting broken: %w", orderID, err)
	}
	if err != nil {
		return false, wrapErr("release order", err)
	}
	return released, nil
}
