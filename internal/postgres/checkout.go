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

var (
	_ checkout.Store        = (*DB)(nil)
	_ checkout.PriceChecker = (*DB)(nil)
)

// ChecksPrices reports that Begin refuses a line whose name or unit price
// is not the product's current one (see checkout.PriceChecker).
func (db *DB) ChecksPrices() bool { return true }

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Begin records the key, creates the pending order and reserves stock
// for each line in product-id order, all in one transaction sent as one
// pipelined batch: one round trip. See checkout.Store for the outcomes.
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

	// One round trip: the statements go as one pipelined batch outside an
	// explicit transaction, so PostgreSQL runs them as one implicit
	// transaction that commits at the batch's end or rolls back whole at
	// the first error. Every way the checkout can fail therefore is an
	// error of the statement concerned:
	//   - the key is taken: unique violation of the key insert;
	//   - a line is short of stock: the unconditional decrement violates
	//     products_available_check (available >= 0). Under READ COMMITTED
	//     the UPDATE waits for the row lock and recomputes on the newest
	//     row version, so, as with a conditional WHERE available >= n,
	//     stock cannot be oversold;
	//   - the product does not exist, or the line's name or unit price is
	//     not the product's current one (see checkout.PriceChecker): the
	//     reservation updates no row, the line's product_id, taken from its
	//     RETURNING, is NULL and violates order_lines.product_id NOT NULL.
	// Rows are locked in product-id order (one statement per line, sent in
	// that order) so that checkouts cannot deadlock.
	batch := &pgx.Batch{}
	batch.Queue(`
		INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, response_status, created_at)
		VALUES ($1, $2, $3, $4, 0, $5)`, b.UserID, b.Key, b.RequestHash, b.OrderID, now)
	batch.Queue(`
		INSERT INTO orders (id, user_id, status, total_amount, currency, idempotency_key, created_at, updated_at)
		VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6)`,
		b.OrderID, b.UserID, b.Total.Amount, b.Total.Currency, b.Key, now)
	for _, l := range lines {
		batch.Queue(`
			WITH r AS (
				UPDATE products SET available = available - $2, reserved = reserved + $2
				WHERE id = $1 AND name = $4 AND price_amount = $5 AND currency = $6 RETURNING id)
			INSERT INTO order_lines (order_id, product_id, name, quantity, unit_amount, currency)
			VALUES ($3, (SELECT id FROM r), $4, $2, $5, $6)`,
			l.ProductID, int64(l.Quantity), b.OrderID, l.Name, l.UnitPrice.Amount, l.UnitPrice.Currency)
	}
	const firstLine = 2 // index in the batch of the first line's statement
	failed := -1        // index in the batch of the statement that failed
	err := db.retry.run(ctx, func() (err error) {
		failed, err = db.sendBatch(ctx, batch)
		return err
	})
	code := pgCode(err)
	switch {
	case err == nil:
	case failed == 0 && code == codeUniqueViolation:
		rec, rerr := db.Record(ctx, b.UserID, b.Key)
		if rerr != nil {
			return checkout.Record{}, checkout.Order{}, fmt.Errorf("begin checkout: %w", rerr)
		}
		return rec, checkout.Order{}, derrors.Wrap(derrors.Conflict, checkout.ErrKeyExists, "idempotency key already used")
	case failed >= firstLine && (code == codeCheckViolation || code == codeNotNullViolation):
		l := lines[failed-firstLine]
		short := l.ProductID
		var (
			avail int64
			cur   checkout.Line
		)
		serr := db.pool.QueryRow(ctx, `SELECT available, name, price_amount, currency FROM products WHERE id = $1`, short).
			Scan(&avail, &cur.Name, &cur.UnitPrice.Amount, &cur.UnitPrice.Currency)
		if errors.Is(serr, pgx.ErrNoRows) {
			return checkout.Record{}, checkout.Order{}, derrors.New(derrors.NotFound, "product %d not found", short)
		}
		if serr != nil {
			return checkout.Record{}, checkout.Order{}, wrapErr("begin checkout", serr)
		}
		if code == codeNotNullViolation {
			// The row exists, so it was the name or price that did not match.
			return checkout.Record{}, checkout.Order{}, derrors.Wrap(derrors.Conflict,
				fmt.Errorf("product %d: %w", short, checkout.ErrPriceChanged),
				fmt.Sprintf("the price of product %d changed; check out again", short))
		}
		return checkout.Record{}, checkout.Order{}, derrors.Wrap(derrors.Conflict,
			fmt.Errorf("product %d: %w", short, checkout.ErrOutOfStock),
			fmt.Sprintf("product %d is out of stock (%d available)", short, avail))
	case code == codeUniqueViolation:
		return checkout.Record{}, checkout.Order{}, derrors.Wrap(derrors.Conflict, err, "order already exists")
	default:
		return checkout.Record{}, checkout.Order{}, wrapErr("begin checkout", err)
	}
	rec := checkout.Record{
		UserID: b.UserID, Key: b.Key, RequestHash: b.RequestHash, OrderID: b.OrderID, CreatedAt: now,
	}
	o := checkout.Order{
		ID: b.OrderID, UserID: b.UserID, Status: checkout.StatusPending, Lines: lines, Total: b.Total,
		IdempotencyKey: b.Key, CreatedAt: now, UpdatedAt: now,
	}
	db.begun.put(o)
	return rec, o, nil
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

// finish runs in two round trips: the first opens the transaction, moves
// the order out of pending (locking its row) and reads its lines; the
// second moves the stock, stores the response, queues the outbox event and
// commits. pgx's transaction helpers would add a round trip each for BEGIN
// and COMMIT, so the transaction is driven by hand on one pooled
// connection: any error rolls it back, and a connection released in a
// transaction (a failed ROLLBACK) is closed by the pool, which aborts it.
func (db *DB) finish(ctx context.Context, orderID string, f finish, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	now = dbTime(now)
	if o, ok := db.begun.take(orderID); ok {
		out, err := db.finishBegun(ctx, o, f, resp, now)
		if !errors.Is(err, errNotPending) {
			return out, err
		}
		// Finished by another actor meanwhile: the slow path reads it.
	}
	var out checkout.Order
	err := db.retry.run(ctx, func() error {
		c, err := db.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		out, err = db.finishTx(ctx, c.Conn(), orderID, f, resp, now)
		if err != nil && c.Conn().PgConn().TxStatus() != 'I' {
			// Roll back before the connection goes back to the pool (or
			// before a retry); if this fails too, Release closes it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			c.Exec(rctx, "ROLLBACK")
			cancel()
		}
		return err
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

// errNotPending ends finishBegun when the order is no longer pending.
var errNotPending = errors.New("order no longer pending")

// finishBegun is finish for an order this process began (o, as Begin
// wrote it): one round trip. The order's final state is known in advance
// (o with the new status, payment id, reason and time), so the response
// and the outbox event are made first and every statement goes in one
// batch, which PostgreSQL runs as one implicit transaction. Its first
// statement moves the order out of pending and fails (division by zero)
// when the order is not pending any more, which rolls the whole batch
// back; errNotPending is then returned and nothing was changed.
func (db *DB) finishBegun(ctx context.Context, o checkout.Order, f finish, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	o.Status, o.PaymentID, o.FailureReason, o.UpdatedAt = f.status, f.paymentID, f.reason, now
	ev, err := json.Marshal(outboxEvent{
		OrderID: o.ID, UserID: o.UserID, Status: o.Status, Total: o.Total,
		PaymentID: o.PaymentID, FailureReason: o.FailureReason, At: now,
	})
	if err != nil {
		return checkout.Order{}, err
	}
	batch := &pgx.Batch{}
	// The order row is locked first, then products in id order (the
	// lines' order), the same order Begin uses.
	batch.Queue(`
		WITH o AS (
			UPDATE orders SET status = $2, payment_id = $3, failure_reason = $4, updated_at = $5
			WHERE id = $1 AND status = 'pending' RETURNING id)
		SELECT 1 / count(*) FROM o`, o.ID, string(f.status), f.paymentID, f.reason, now)
	queueFinishWrites(batch, o, f, resp, ev, now)
	failed := -1
	err = db.retry.run(ctx, func() (err error) {
		failed, err = db.sendBatch(ctx, batch)
		return err
	})
	switch {
	case err == nil:
		return o, nil
	case failed == 0 && pgCode(err) == codeDivisionByZero:
		return checkout.Order{}, errNotPending
	case failed >= 1 && failed <= len(o.Lines) && pgCode(err) == codeDivisionByZero:
		return checkout.Order{}, wrapErr(f.op, fmt.Errorf("product %d of order %s is missing", o.Lines[failed-1].ProductID, o.ID))
	case pgCode(err) == codeCheckViolation:
		return checkout.Order{}, fmt.Errorf("%s %s: stock accounting broken: %w", f.op, o.ID, err)
	}
	return checkout.Order{}, wrapErr(f.op, err)
}

// sendBatch sends batch and reads every result. On an error it returns
// the index of the statement that failed (PostgreSQL skipped the rest),
// else -1.
func (db *DB) sendBatch(ctx context.Context, batch *pgx.Batch) (failed int, err error) {
	br := db.pool.SendBatch(ctx, batch)
	for i := range batch.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return i, err
		}
	}
	return -1, br.Close()
}

// queueFinishWrites queues the writes that finish order o (its lines in
// o.Lines): each line's stock move in line order, the idempotency key's
// stored response when resp is set, and the outbox event ev.
func queueFinishWrites(batch *pgx.Batch, o checkout.Order, f finish, resp func(checkout.Order) checkout.Response, ev []byte, now time.Time) {
	for _, l := range o.Lines {
		batch.Queue(stockMove(f.stockSQL), l.ProductID, int64(l.Quantity))
	}
	if resp != nil {
		r := resp(o)
		batch.Queue(`UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE user_id = $1 AND key = $2`,
			o.UserID, o.IdempotencyKey, r.Status, r.Body)
	}
	batch.Queue(`INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2, $3)`, f.topic, string(ev), now)
}

// codeDivisionByZero is the SQLSTATE of the guard in stockMove: division by
// zero, raised when the product row of a line is gone.
const codeDivisionByZero = "22012"

// stockMove wraps one product's stock move (f.stockSQL, an UPDATE by id)
// so that it fails, aborting the transaction before its COMMIT (sent in
// the same batch), when it updates no row.
func stockMove(update string) string {
	return `WITH m AS (` + update + ` RETURNING id) SELECT 1 / count(*) FROM m`
}

func (db *DB) finishTx(ctx context.Context, conn *pgx.Conn, orderID string, f finish, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	// The order row is locked first, then products in id order (the
	// lines' order), the same order Begin uses.
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	batch.Queue(`
		UPDATE orders SET status = $2, payment_id = $3, failure_reason = $4, updated_at = $5
		WHERE id = $1 AND status = 'pending'
		RETURNING `+orderCols, orderID, string(f.status), f.paymentID, f.reason, now)
	batch.Queue(`SELECT `+lineCols+` FROM order_lines WHERE order_id = $1 ORDER BY product_id`, orderID)
	br := conn.SendBatch(ctx, batch)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return checkout.Order{}, err
	}
	o, err := scanOrder(br.QueryRow())
	finished := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !finished {
		br.Close()
		return checkout.Order{}, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return checkout.Order{}, err
	}
	lines, err := pgx.CollectRows(rows, scanLine)
	if err != nil {
		br.Close()
		return checkout.Order{}, err
	}
	if err := br.Close(); err != nil {
		return checkout.Order{}, err
	}
	if finished {
		// Someone else finished (or never created) the order: change nothing.
		o, err = scanOrder(conn.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1`, orderID))
		if errors.Is(err, pgx.ErrNoRows) {
			return checkout.Order{}, derrors.New(derrors.NotFound, "order %s not found", orderID)
		}
		if err != nil {
			return checkout.Order{}, err
		}
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return checkout.Order{}, err
		}
		o.Lines = lines
		return o, nil
	}
	o.Lines = lines

	ev, err := json.Marshal(outboxEvent{
		OrderID: o.ID, UserID: o.UserID, Status: o.Status, Total: o.Total,
		PaymentID: o.PaymentID, FailureReason: o.FailureReason, At: now,
	})
	if err != nil {
		return checkout.Order{}, err
	}
	batch = &pgx.Batch{}
	queueFinishWrites(batch, o, f, resp, ev, now)
	// After an error PostgreSQL skips the rest of the batch, COMMIT
	// included, and the caller rolls back.
	batch.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, batch)
	defer br.Close()
	for _, l := range lines {
		if _, err := br.Exec(); err != nil {
			if pgCode(err) == codeDivisionByZero {
				return checkout.Order{}, fmt.Errorf("product %d of order %s is missing", l.ProductID, orderID)
			}
			return checkout.Order{}, err
		}
	}
	for range batch.Len() - len(lines) - 1 {
		if _, err := br.Exec(); err != nil {
			return checkout.Order{}, err
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return checkout.Order{}, err
	}
	if tag.String() != "COMMIT" {
		return checkout.Order{}, fmt.Errorf("%s %s: commit answered %q", f.op, orderID, tag.String())
	}
	if err := br.Close(); err != nil {
		return checkout.Order{}, err
	}
	return o, nil
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
