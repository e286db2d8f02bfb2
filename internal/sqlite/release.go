package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/briskhq/brisk/internal/derrors"
)

// Release undoes a pending order whose payment was never sent: in one
// transaction it marks the order failed with reason, moves its stock
// reserved -> available, deletes its idempotency key record and queues an
// order.failed event. An order no longer pending is left as it is and
// Release reports false. See checkout.Store.
func (db *DB) Release(ctx context.Context, orderID, reason string, now time.Time) (bool, error) {
	now = normal(now)
	released := false
	err := db.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE orders SET status = 'failed', failure_reason = ?, updated_at = ?
			WHERE id = ? AND status = 'pending'`, reason, micros(now), orderID)
		if err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		o, err := t.order(orderID)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // finished before: nothing to do
		}
		res, err = t.exec(releaseStock, orderID)
		if err != nil {
			if isCheck(err) {
				return derrors.Wrap(derrors.Conflict, err, "stock accounting does not match the order")
			}
			return fmt.Errorf("move stock: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("move stock: %w", err)
		} else if n != int64(len(o.Lines)) {
			return fmt.Errorf("move stock: %d products updated for %d lines", n, len(o.Lines))
		}
		if _, err := t.exec(`DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND order_id = ?`,
			o.UserID, o.IdempotencyKey, o.ID); err != nil {
			return fmt.Errorf("delete key: %w", err)
		}
		payload, err := json.Marshal(event{
			OrderID: o.ID, UserID: o.UserID, Status: string(o.Status), Total: o.Total,
			Reason: o.FailureReason, At: now,
		})
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if _, err := t.exec(`INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)`,
			TopicOrderFailed, string(payload), micros(now)); err != nil {
			return fmt.Errorf("queue event: %w", err)
		}
		released = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("release order %s: %w", orderID, err)
	}
	return released, nil
}
