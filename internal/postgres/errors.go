package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/briskhq/brisk/internal/derrors"
)

// SQLSTATE codes the store reacts to.
const (
	codeUniqueViolation      = "23505"
	codeCheckViolation       = "23514"
	codeNotNullViolation     = "23502"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether a whole transaction may be run again.
func retryable(err error) bool {
	switch pgCode(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return false
}

// unavailable reports whether err means the database cannot be reached or
// cannot serve right now (as opposed to a bug or a rejected statement).
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if code := pgCode(err); code != "" {
		switch {
		case code[:2] == "08": // connection exception
			return true
		case code == "57P01", code == "57P02", code == "57P03": // shutdown, crash, cannot connect now
			return true
		case code == "53300": // too many connections
			return true
		case code == codeSerializationFailure, code == codeDeadlockDetected: // retries used up
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, puddle.ErrClosedPool) || pgconn.SafeToRetry(err)
}

// wrapErr names the failed operation and gives err its domain kind:
// errors that already have one keep it; "no rows" is NotFound; a lost or
// unreachable database is Unavailable; anything else stays internal.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case derrors.Kind(err) != nil, errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, pgx.ErrNoRows):
		return derrors.Wrap(derrors.NotFound, fmt.Errorf("%s: %w", op, err), "not found")
	case pgCode(err) == codeUniqueViolation:
		return derrors.Wrap(derrors.Conflict, fmt.Errorf("%s: %w", op, err), "already exists")
	case unavailable(err):
		return derrors.Wrap(derrors.Unavailable, fmt.Errorf("%s: %w", op, err), "database unavailable")
	}
	return fmt.Errorf("%s: %w", op, err)
}

// retrier runs transactions and runs them again, with jittered
// exponential backoff, when PostgreSQL (or CockroachDB) aborted them with
// a serialization failure or a deadlock.
//
// Transactions use READ COMMITTED on PostgreSQL: every stock change is a
// single-row UPDATE that PostgreSQL re-evaluates on the newest row version
// after waiting for the row lock — a reservation takes stock under the
// CHECK (available >= 0), which fails the whole batch rather than
// oversell; finishing an order is conditional on WHERE status = 'pending'
// — so it can neither oversell nor finish an order twice; SERIALIZABLE
// would add nothing but 40001 aborts on hot products.
// Rows are locked in a fixed order (order row first, then products by id)
// so that deadlocks do not occur between checkouts. On CockroachDB, whose
// default is SERIALIZABLE, the same code is correct and 40001 is retried here.
type retrier struct {
	policy retrypolicy.RetryPolicy[any]
}

func newRetrier(logger *slog.Logger) retrier {
	return retrier{policy: retrypolicy.NewBuilder[any]().
		HandleIf(func(_ any, err error) bool { return retryable(err) }).
		WithMaxRetries(15).
		WithBackoff(2*time.Millisecond, 250*time.Millisecond).
		WithJitterFactor(0.5).
		ReturnLastFailure().
		OnRetry(func(e failsafe.ExecutionEvent[any]) {
			logger.Debug("postgres transaction retried", "attempt", e.Attempts(), "err", e.LastError())
		}).
		Build()}
}

// run runs fn, and runs it again as a whole on 40001/40P01. fn must reset
// any state it fills in, since it may run again.
func (r retrier) run(ctx context.Context, fn func() error) error {
	return failsafe.With[any](r.policy).WithContext(ctx).Run(fn)
}

// inTx runs fn in a READ COMMITTED transaction, retried as a whole on
// 40001/40P01. fn must reset any state it fills in, since it may run again.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.inTxIso(ctx, pgx.ReadCommitted, fn)
}

// inTxIso is inTx at another isolation level.
func (db *DB) inTxIso(ctx context.Context, iso pgx.TxIsoLevel, fn func(pgx.Tx) error) error {
	return db.retry.run(ctx, func() error {
		return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: iso}, fn)
	})
}
