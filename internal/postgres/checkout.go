package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

var _ checkout.Store = (*DB)(nil)

// Sentinels that end a transaction early (it rolls back); never returned.
var (
	errKeyTaken  = errors.New("idempotency key taken")
	errShortLine = errors.New("line short of stock")
)

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Begin records the key, creates the pending order and reserves stock
// for each line in product-id order, all in one transaction sent as one
// pipelined batch. See checkout.Store for the outcomes.
func (db *DB) Begin(ctx context.Context, b checkout.Begin) (checkout.Record, checkout.Order, error) {
	if len(b.Lines) == 0 {
		return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "an order needs at least one line")
	}
	lines := slices.Clone(b.Lines)
	// Rows are locked in product-id order so that checkouts cannot deadlock.
	slices.SortFunc(lines, func(x, y checkout.Line) int { return cmp.Compare(x.ProductID, y.ProductID) })
	for i, l := range lines {
		if l.Quantity < 1 {
			return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "quantity of product %d must be positive", l.ProductID)
		}
		if i > 0 && lines[i-1].ProductID == l.ProductID {
			return checkout.Record{}, checkout.Order{}, derrors.New(derrors.Invalid, "product %d is in the order twice", l.ProductID)
		}
	}
	now := dbTime(b.Now)

	var short int64 // product id of the first line short of stock
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		short = 0
		batch := &pgx.Batch{}
		batch.Queue(`
			INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, response_status, created_at)
			VALUES ($1, $2, $3, $4, 0, $5)
			ON CONFLICT DO NOTHING`, b.UserID, b.Key, b.RequestHash, b.OrderID, now)
		batch.Queue(`
			INSERT INTO orders (id, user_id, status, total_amount, currency, idempotency_key, created_at, updated_at)
			VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6)`,
			b.OrderID, b.UserID, b.Total.Amount, b.Total.Currency, b.Key, now)
		for _, l := range lines {
			batch.Queue(`
				UPDATE products SET available = available - $2, reserved = reserved + $2
				WHERE id = $1 AND available >= $2`, l.ProductID, int64(l.Quantity))
		}
		ids, names, qty, amounts, currencies := lineArrays(lines)
		batch.Queue(`
			INSERT INTO order_lines (order_id, product_id, name, quantity, unit_amount, currency)
			SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::int[], $5::bigint[], $6::text[])`,
			b.OrderID, ids, names, qty, amounts, currencies)

		// One round trip for all statements. When the key is taken the
		// rest of the batch has run too, but it all rolls back; replays
		// rarely get here, since the service looks the key up first.
		br := tx.SendBatch(ctx, batch)
		defer br.Close()
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errKeyTaken
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		for _, l := range lines {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				short = l.ProductID
				return errShortLine
			}
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		return br.Close()
	})
	switch {
	case errors.Is(err, errKeyTaken):
		rec, rerr := db.Record(ctx, b.UserID, b.Key)
		if rerr != nil {
			return checkout.Record{}, checkout.Order{}, fmt.Errorf("begin checkout: %w", rerr)
		}
		return rec, checkout.Order{}, derrors.Wrap(derrors.Conflict, checkout.ErrKeyExists, "idempotency key already used")
	case errors.Is(err, errShortLine):
		var avail int64
		serr := db.pool.QueryRow(ctx, `SELECT available FROM products WHERE id = $1`, short).Scan(&avail)
		if errors.Is(serr, pgx.ErrNoRows) {
			return checkout.Record{}, checkout.Order{}, derrors.New(derrors.NotFound, "product %d not found", short)
		}
		if serr != nil {
			return checkout.Record{}, checkout.Order{}, wrapErr("begin checkout", serr)
		}
		return checkout.Record{}, checkout.Order{}, derrors.Wrap(derrors.Conflict,
			fmt.Errorf("product %d: %w", short, checkout.ErrOutOfStock),
			fmt.Sprintf("product %d is out of stock (%d available)", short, avail))
	case pgCode(err) == codeUniqueViolation:
		return checkout.Record{}, checkout.Order{}, derrors.Wrap(derrors.Conflict, err, "order already exists")
	case err != nil:
		return checkout.Record{}, checkout.Order{}, wrapErr("begin checkout", err)
	}
	rec := checkout.Record{
		UserID: b.UserID, Key: b.Key, RequestHash: b.RequestHash, OrderID: b.OrderID, CreatedAt: now,
	}
	o := checkout.Order{
		ID: b.OrderID, UserID: b.UserID, Status: checkout.StatusPending, Lines: lines, Total: b.Total,
		IdempotencyKey: b.Key, CreatedAt: now, UpdatedAt: now,
	}
	return rec, o, nil
}

func lineArrays(lines []checkout.Line) (ids []int64, names []string, qty []int32, amounts []int64, currencies []string) {
	for _, l := range lines {
		ids = append(ids, l.ProductID)
		names = append(names, l.Name)
		qty = append(qty, int32(l.Quantity))
		amounts = append(amounts, l.UnitPrice.Amount)
		currencies = append(currencies, l.UnitPrice.Currency)
	}
	return
}

// Record returns the idempotency record of (userID, key), or derrors.NotFound.
func (db *DB) Record(ctx context.Context, userID int64, key string) (checkout.Record, error) {
	r := checkout.Record{UserID: userID, Key: key}
	err := db.pool.QueryRow(ctx, `
		SELECT request_hash, order_id, response_status, response_body, created_at
		FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key).
		Scan(&r.RequestHash, &r.OrderID, &r.Response.Status, &r.Response.Body, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return checkout.Record{}, derrors.New(derrors.NotFound, "idempotency key not found")
	}
	if err != nil {
		return checkout.Record{}, wrapErr("get idempotency record", err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// finish describes how Complete or Fail ends a pending order.
type finish struct {
	op        string
	status    checkout.Status
	paymentID string
	reason    string
	stockSQL  string // one product's stock move: $1 id, $2 quantity
	topic     string
}

// Complete marks a pending order paid, moves its stock reserved -> sold,
// stores resp on its key and queues an order.paid outbox event, in one
// transaction. An order no longer pending is returned unchanged.
func (db *DB) Complete(ctx context.Context, orderID, paymentID string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	return db.finish(ctx, orderID, finish{
		op: "complete order", status: checkout.StatusPaid, paymentID: paymentID,
		stockSQL: `UPDATE products SET reserved = reserved - $2, sold = sold + $2 WHERE id = $1`,
		topic:    "order.paid",
	}, resp, now)
}

// Fail marks a pending order failed with reason, moves its stock reserved
// -> available, stores resp on its key and queues an order.failed outbox
// event, in one transaction. An order no longer pending is returned unchanged.
func (db *DB) Fail(ctx context.Context, orderID, reason string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	return db.finish(ctx, orderID, finish{
		op: "fail order", status: checkout.StatusFailed, reason: reason,
		stockSQL: `UPDATE products SET reserved = reserved - $2, available = available + $2 WHERE id = $1`,
		topic:    "order.failed",
	}, resp, now)
}

// outboxEvent is the JSON payload of order.paid and order.failed events.
type outboxEvent struct {
	OrderID       string          `json:"order_id"`
	UserID        int64           `json:"user_id"`
	Status        checkout.Status `json:"status"`
	Total         money.Money     `json:"total"`
	PaymentID     string          `json:"payment_id,omitempty"`
	FailureReason string          `json:"failure_reason,omitempty"`
	At            time.Time       `json:"at"`
}

func (db *DB) finish(ctx context.Context, orderID string, f finish, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	now = dbTime(now)
	var out checkout.Order
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// The order row is locked first, then products in id order (the
		// lines' order), the same order Begin uses.
		batch := &pgx.Batch{}
		batch.Queue(`
			UPDATE orders SET status = $2, payment_id = $3, failure_reason = $4, updated_at = $5
			WHERE id = $1 AND status = 'pending'
			RETURNING `+orderCols, orderID, string(f.status), f.paymentID, f.reason, now)
		batch.Queue(`SELECT `+lineCols+` FROM order_lines WHERE order_id = $1 ORDER BY product_id`, orderID)
		br := tx.SendBatch(ctx, batch)
		o, err := scanOrder(br.QueryRow())
		finished := errors.Is(err, pgx.ErrNoRows)
		if err != nil && !finished {
			br.Close()
			return err
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		lines, err := pgx.CollectRows(rows, scanLine)
		if err != nil {
			br.Close()
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		if finished {
			// Someone else finished (or never created) the order: change nothing.
			o, err = scanOrder(tx.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1`, orderID))
			if errors.Is(err, pgx.ErrNoRows) {
				return derrors.New(derrors.NotFound, "order %s not found", orderID)
			}
			if err != nil {
				return err
			}
			o.Lines = lines
			out = o
			return nil
		}
		o.Lines = lines

		ev, err := json.Marshal(outboxEvent{
			OrderID: o.ID, UserID: o.UserID, Status: o.Status, Total: o.Total,
			PaymentID: o.PaymentID, FailureReason: o.FailureReason, At: now,
		})
		if err != nil {
			return err
		}
		batch = &pgx.Batch{}
		for _, l := range lines {
			batch.Queue(f.stockSQL, l.ProductID, int64(l.Quantity))
		}
		if resp != nil {
			r := resp(o)
			batch.Queue(`UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE user_id = $1 AND key = $2`,
				o.UserID, o.IdempotencyKey, r.Status, r.Body)
		}
		batch.Queue(`INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2, $3)`, f.topic, string(ev), now)
		br = tx.SendBatch(ctx, batch)
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
		out = o
		return nil
	})
	if pgCode(err) == codeCheckViolation {
		// reserved would go negative: the stock books disagree with the order.
		return checkout.Order{}, fmt.Errorf("%s %s: stock accounting broken: %w", f.op, orderID, err)
	}
	if err != nil {
		return checkout.Order{}, wrapErr(f.op, err)
	}
	return out, nil
}

const (
	orderCols = `id, user_id, status, total_amount, currency, payment_id, failure_reason, idempotency_key, created_at, updated_at`
	lineCols  = `product_id, name, quantity, unit_amount, currency`
)

func scanOrder(row pgx.Row) (checkout.Order, error) {
	var o checkout.Order
	err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.Total.Amount, &o.Total.Currency,
		&o.PaymentID, &o.FailureReason, &o.IdempotencyKey, &o.CreatedAt, &o.UpdatedAt)
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, err
}

func scanLine(row pgx.CollectableRow) (checkout.Line, error) {
	var l checkout.Line
	err := row.Scan(&l.ProductID, &l.Name, &l.Quantity, &l.UnitPrice.Amount, &l.UnitPrice.Currency)
	return l, err
}

// queryOrders selects orders (where: a WHERE clause with $1.. args; order:
// an ORDER BY list of order columns) and their lines in one round trip.
func (db *DB) queryOrders(ctx context.Context, op, where, order string, limit int, args ...any) ([]checkout.Order, error) {
	args = append(args, limit)
	lim := fmt.Sprintf(" LIMIT $%d", len(args))
	const o = `o.id, o.user_id, o.status, o.total_amount, o.currency, o.payment_id, o.failure_reason,
		o.idempotency_key, o.created_at, o.updated_at`
	rows, err := db.pool.Query(ctx, `
		WITH o AS (SELECT `+orderCols+` FROM orders WHERE `+where+` ORDER BY `+order+lim+`)
		SELECT `+o+`, l.product_id, l.name, l.quantity, l.unit_amount, l.currency
		FROM o JOIN order_lines l ON l.order_id = o.id
		ORDER BY `+order+`, l.product_id`, args...)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	out := []checkout.Order{}
	for rows.Next() {
		var (
			or checkout.Order
			l  checkout.Line
		)
		err := rows.Scan(&or.ID, &or.UserID, &or.Status, &or.Total.Amount, &or.Total.Currency,
			&or.PaymentID, &or.FailureReason, &or.IdempotencyKey, &or.CreatedAt, &or.UpdatedAt,
			&l.ProductID, &l.Name, &l.Quantity, &l.UnitPrice.Amount, &l.UnitPrice.Currency)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		if n := len(out); n == 0 || out[n-1].ID != or.ID {
			or.CreatedAt, or.UpdatedAt = or.CreatedAt.UTC(), or.UpdatedAt.UTC()
			out = append(out, or)
		}
		last := &out[len(out)-1]
		last.Lines = append(last.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(op, err)
	}
	return out, nil
}

// Order returns one order of one user; another user's order is derrors.NotFound.
func (db *DB) Order(ctx context.Context, userID int64, orderID string) (checkout.Order, error) {
	os, err := db.queryOrders(ctx, "get order", `id = $1 AND user_id = $2`, `id`, 1, orderID, userID)
	if err != nil {
		return checkout.Order{}, err
	}
	if len(os) == 0 {
		return checkout.Order{}, derrors.New(derrors.NotFound, "order %s not found", orderID)
	}
	return os[0], nil
}

// Orders returns the user's orders newest first (id descending: ids are
// UUIDv7), only ids below after when after is not empty, at most limit.
func (db *DB) Orders(ctx context.Context, userID int64, after string, limit int) ([]checkout.Order, error) {
	limit = max(1, limit)
	if after == "" {
		return db.queryOrders(ctx, "list orders", `user_id = $1`, `id DESC`, limit, userID)
	}
	return db.queryOrders(ctx, "list orders", `user_id = $1 AND id < $2`, `id DESC`, limit, userID, after)
}

// Pending returns up to limit orders still pending that were created
// before cutoff, oldest first.
func (db *DB) Pending(ctx context.Context, cutoff time.Time, limit int) ([]checkout.Order, error) {
	limit = max(1, limit)
	return db.queryOrders(ctx, "list pending orders", `status = 'pending' AND created_at < $1`,
		`created_at, id`, limit, dbTime(cutoff))
}
