package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

const (
	orderCols  = `id, user_id, status, total_amount, currency, payment_id, failure_reason, idempotency_key, created_at, updated_at`
	recordCols = `user_id, key, request_hash, order_id, response_status, response_body, created_at`

	reserveStock = `UPDATE products SET available = available - ?1, reserved = reserved + ?1
		WHERE id = ?2 AND available >= ?1`
	// Finishing an order moves each line's quantity out of reserved, to
	// sold (paid) or back to available (failed), in one statement.
	sellStock = `UPDATE products SET reserved = reserved - l.quantity, sold = sold + l.quantity
		FROM order_lines l WHERE l.order_id = ? AND products.id = l.product_id`
	releaseStock = `UPDATE products SET reserved = reserved - l.quantity, available = available + l.quantity
		FROM order_lines l WHERE l.order_id = ? AND products.id = l.product_id`
)

// Outbox topics.
const (
	TopicOrderPaid   = "order.paid"
	TopicOrderFailed = "order.failed"
)

// Begin records the key, creates the pending order and reserves stock for
// each line in product-id order, all in one transaction. See checkout.Store.
func (db *DB) Begin(ctx context.Context, b checkout.Begin) (checkout.Record, checkout.Order, error) {
	if b.OrderID == "" || b.Key == "" {
		return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "an order needs an id and an idempotency key")
	}
	if len(b.Lines) == 0 {
		return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "an order needs at least one line")
	}
	for i, l := range b.Lines {
		if l.Quantity < 1 {
			return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "quantity of product %d must be positive", l.ProductID)
		}
		if i > 0 && l.ProductID <= b.Lines[i-1].ProductID {
			return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "order lines must be sorted by product id without duplicates")
		}
	}
	now := normal(b.Now)
	rec := checkout.Record{
		UserID: b.UserID, Key: b.Key, RequestHash: b.RequestHash, OrderID: b.OrderID, CreatedAt: now,
	}
	o := checkout.Order{
		ID: b.OrderID, UserID: b.UserID, Status: checkout.StatusPending,
		Lines: append([]checkout.Line(nil), b.Lines...), Total: b.Total,
		IdempotencyKey: b.Key, CreatedAt: now, UpdatedAt: now,
	}
	var existing checkout.Record
	err := db.write(ctx, func(t *tx) error {
		res, err := t.exec(`INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, response_status, created_at)
			VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (user_id, key) DO NOTHING`,
			b.UserID, b.Key, b.RequestHash, b.OrderID, micros(now))
		if err != nil {
			return fmt.Errorf("record key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("record key: %w", err)
		} else if n == 0 {
			row, err := t.queryRow(`SELECT `+recordCols+` FROM idempotency_keys WHERE user_id = ? AND key = ?`, b.UserID, b.Key)
			if err == nil {
				existing, err = scanRecord(row)
			}
			if err != nil {
				return fmt.Errorf("read existing key: %w", err)
			}
			return derrors.Wrap(derrors.Conflict, checkout.ErrKeyExists, "this idempotency key was already used")
		}
		if _, err := t.exec(`INSERT INTO orders (`+orderCols+`) VALUES (?, ?, ?, ?, ?, '', '', ?, ?, ?)`,
			b.OrderID, b.UserID, string(checkout.StatusPending), b.Total.Amount, b.Total.Currency,
			b.Key, micros(now), micros(now)); err != nil {
			if isUnique(err) {
				return derrors.Wrap(derrors.Conflict, err, "order id already exists")
			}
			return fmt.Errorf("create order: %w", err)
		}
		for _, l := range b.Lines {
			res, err := t.exec(reserveStock, l.Quantity, l.ProductID)
			if err != nil {
				return fmt.Errorf("reserve product %d: %w", l.ProductID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("reserve product %d: %w", l.ProductID, err)
			} else if n == 0 {
				return t.whyNotReserved(l.ProductID)
			}
			if _, err := t.exec(`INSERT INTO order_lines (order_id, product_id, name, quantity, unit_amount, currency)
				VALUES (?, ?, ?, ?, ?, ?)`,
				b.OrderID, l.ProductID, l.Name, l.Quantity, l.UnitPrice.Amount, l.UnitPrice.Currency); err != nil {
				return fmt.Errorf("add line for product %d: %w", l.ProductID, err)
			}
		}
		return nil
	})
	if errors.Is(err, checkout.ErrKeyExists) {
		return existing, checkout.Order{}, fmt.Errorf("begin checkout: %w", err)
	}
	if err != nil {
		return checkout.Record{}, checkout.Order{}, fmt.Errorf("begin checkout: %w", err)
	}
	return rec, o, nil
}

// whyNotReserved tells a missing product from one short of stock.
func (t *tx) whyNotReserved(productID int64) error {
	row, err := t.queryRow(`SELECT available FROM products WHERE id = ?`, productID)
	if err != nil {
		return fmt.Errorf("reserve product %d: %w", productID, err)
	}
	var available int64
	switch err := row.Scan(&available); {
	case errors.Is(err, sql.ErrNoRows):
		return derrors.New(derrors.NotFound, "product %d not found", productID)
	case err != nil:
		return fmt.Errorf("reserve product %d: %w", productID, err)
	}
	return derrors.Wrap(derrors.Conflict, checkout.ErrOutOfStock,
		fmt.Sprintf("product %d has only %d in stock", productID, available))
}

// Record returns the idempotency record of (userID, key), or derrors.NotFound.
func (db *DB) Record(ctx context.Context, userID int64, key string) (checkout.Record, error) {
	row, err := db.readRow(ctx, `SELECT `+recordCols+` FROM idempotency_keys WHERE user_id = ? AND key = ?`, userID, key)
	if err != nil {
		return checkout.Record{}, fmt.Errorf("get idempotency record: %w", err)
	}
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return checkout.Record{}, derrors.New(derrors.NotFound, "idempotency key not found")
	}
	if err != nil {
		return checkout.Record{}, fmt.Errorf("get idempotency record: %w", err)
	}
	return r, nil
}

func scanRecord(s scanner) (checkout.Record, error) {
	var r checkout.Record
	var created int64
	err := s.Scan(&r.UserID, &r.Key, &r.RequestHash, &r.OrderID, &r.Response.Status, &r.Response.Body, &created)
	r.CreatedAt = fromMicros(created)
	return r, err
}

// Complete marks a pending order paid, moves its stock reserved -> sold,
// stores resp on its key and queues an order.paid event, in one
// transaction. An order that is no longer pending is returned unchanged.
func (db *DB) Complete(ctx context.Context, orderID, paymentID string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	o, err := db.finish(ctx, orderID, checkout.StatusPaid, paymentID, "", resp, now)
	if err != nil {
		return checkout.Order{}, fmt.Errorf("complete order %s: %w", orderID, err)
	}
	return o, nil
}

// Fail marks a pending order failed, releases its stock reserved ->
// available, stores resp on its key and queues an order.failed event, in
// one transaction. An order that is no longer pending is returned unchanged.
func (db *DB) Fail(ctx context.Context, orderID, reason string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	o, err := db.finish(ctx, orderID, checkout.StatusFailed, "", reason, resp, now)
	if err != nil {
		return checkout.Order{}, fmt.Errorf("fail order %s: %w", orderID, err)
	}
	return o, nil
}

// event is the JSON payload of an outbox row.
type event struct {
	OrderID   string      `json:"order_id"`
	UserID    int64       `json:"user_id"`
	Status    string      `json:"status"`
	Total     money.Money `json:"total"`
	PaymentID string      `json:"payment_id,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	At        time.Time   `json:"at"`
}

func (db *DB) finish(ctx context.Context, orderID string, status checkout.Status, paymentID, reason string,
	resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	now = normal(now)
	var o checkout.Order
	err := db.write(ctx, func(t *tx) error {
		// The conditional update decides who finishes the order: only the
		// caller that moves it out of pending touches stock.
		res, err := t.exec(`UPDATE orders SET status = ?, payment_id = ?, failure_reason = ?, updated_at = ?
			WHERE id = ? AND status = 'pending'`,
			string(status), paymentID, reason, micros(now), orderID)
		if err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		if o, err = t.order(orderID); err != nil {
			return err
		}
		if n == 0 {
			return nil // finished before: nothing to do
		}
		move, topic := sellStock, TopicOrderPaid
		if status == checkout.StatusFailed {
			move, topic = releaseStock, TopicOrderFailed
		}
		res, err = t.exec(move, orderID)
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
		if resp != nil {
			r := resp(o)
			if _, err := t.exec(`UPDATE idempotency_keys SET response_status = ?, response_body = ?
				WHERE user_id = ? AND key = ?`, r.Status, r.Body, o.UserID, o.IdempotencyKey); err != nil {
				return fmt.Errorf("store response: %w", err)
			}
		}
		payload, err := json.Marshal(event{
			OrderID: o.ID, UserID: o.UserID, Status: string(o.Status), Total: o.Total,
			PaymentID: o.PaymentID, Reason: o.FailureReason, At: now,
		})
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if _, err := t.exec(`INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)`,
			topic, string(payload), micros(now)); err != nil {
			return fmt.Errorf("queue event: %w", err)
		}
		return nil
	})
	return o, err
}

// order reads one order with its lines inside the transaction.
func (t *tx) order(id string) (checkout.Order, error) {
	row, err := t.queryRow(`SELECT `+orderCols+` FROM orders WHERE id = ?`, id)
	if err != nil {
		return checkout.Order{}, fmt.Errorf("read order: %w", err)
	}
	o, err := scanOrder(row)
	if errors.Is(err, sql.ErrNoRows) {
		return checkout.Order{}, derrors.New(derrors.NotFound, "order %s not found", id)
	}
	if err != nil {
		return checkout.Order{}, fmt.Errorf("read order: %w", err)
	}
	rows, err := t.query(`SELECT `+lineCols+` FROM order_lines WHERE order_id = ? ORDER BY product_id`, id)
	if err != nil {
		return checkout.Order{}, fmt.Errorf("read order lines: %w", err)
	}
	if err := addLines(rows, map[string]*checkout.Order{id: &o}); err != nil {
		return checkout.Order{}, fmt.Errorf("read order lines: %w", err)
	}
	return o, nil
}

const lineCols = `order_id, product_id, name, quantity, unit_amount, currency`

// addLines appends the scanned lines to their orders and closes rows.
func addLines(rows *sql.Rows, orders map[string]*checkout.Order) error {
	defer rows.Close()
	for rows.Next() {
		var id string
		var l checkout.Line
		if err := rows.Scan(&id, &l.ProductID, &l.Name, &l.Quantity, &l.UnitPrice.Amount, &l.UnitPrice.Currency); err != nil {
			return err
		}
		if o := orders[id]; o != nil {
			o.Lines = append(o.Lines, l)
		}
	}
	return rows.Err()
}

func scanOrder(s scanner) (checkout.Order, error) {
	var o checkout.Order
	var created, updated int64
	err := s.Scan(&o.ID, &o.UserID, &o.Status, &o.Total.Amount, &o.Total.Currency,
		&o.PaymentID, &o.FailureReason, &o.IdempotencyKey, &created, &updated)
	o.CreatedAt, o.UpdatedAt = fromMicros(created), fromMicros(updated)
	return o, err
}

// Order returns one order of one user; another user's order is derrors.NotFound.
func (db *DB) Order(ctx context.Context, userID int64, orderID string) (checkout.Order, error) {
	os, err := db.orders(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ? AND user_id = ?`, orderID, userID)
	if err != nil {
		return checkout.Order{}, fmt.Errorf("get order %s: %w", orderID, err)
	}
	if len(os) == 0 {
		return checkout.Order{}, derrors.New(derrors.NotFound, "order %s not found", orderID)
	}
	return os[0], nil
}

// Orders returns the user's orders newest first (by id, a UUIDv7), those
// with ids below after when after is not empty, at most limit.
func (db *DB) Orders(ctx context.Context, userID int64, after string, limit int) ([]checkout.Order, error) {
	if limit < 1 {
		return nil, derrors.New(derrors.Invalid, "limit must be positive")
	}
	var (
		os  []checkout.Order
		err error
	)
	if after == "" {
		os, err = db.orders(ctx, `SELECT `+orderCols+` FROM orders WHERE user_id = ?
			ORDER BY id DESC LIMIT ?`, userID, limit)
	} else {
		os, err = db.orders(ctx, `SELECT `+orderCols+` FROM orders WHERE user_id = ? AND id < ?
			ORDER BY id DESC LIMIT ?`, userID, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return os, nil
}

// Pending returns up to limit orders still pending that were created
// before cutoff, oldest first.
func (db *DB) Pending(ctx context.Context, cutoff time.Time, limit int) ([]checkout.Order, error) {
	if limit < 1 {
		return nil, derrors.New(derrors.Invalid, "limit must be positive")
	}
	os, err := db.orders(ctx, `SELECT `+orderCols+` FROM orders
		WHERE status = 'pending' AND created_at < ? ORDER BY created_at, id LIMIT ?`, micros(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("list pending orders: %w", err)
	}
	return os, nil
}

// orders runs an order query on the read pool and attaches the lines.
// Both reads run in one read transaction so that they see one snapshot.
func (db *DB) orders(ctx context.Context, query string, args ...any) ([]checkout.Order, error) {
	os := []checkout.Order{}
	err := db.readTx(ctx, func(t *tx) error {
		rows, err := t.query(query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanOrder(rows)
			if err != nil {
				return err
			}
			os = append(os, o)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(os) == 0 {
			return nil
		}
		ids := make([]string, len(os))
		byID := make(map[string]*checkout.Order, len(os))
		for i := range os {
			ids[i] = os[i].ID
			byID[os[i].ID] = &os[i]
		}
		list, err := stringList(ids)
		if err != nil {
			return err
		}
		lines, err := t.query(`SELECT `+lineCols+` FROM order_lines
			WHERE order_id IN (SELECT value FROM json_each(?)) ORDER BY order_id, product_id`, list)
		if err != nil {
			return err
		}
		return addLines(lines, byID)
	})
	if err != nil {
		return nil, err
	}
	return os, nil
}
