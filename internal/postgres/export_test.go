package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Internals for the external tests.
var (
	WrapErr = wrapErr
	TSQuery = tsQuery
)

// InTx runs fn in a transaction with the store's retry policy.
func (db *DB) InTx(ctx context.Context, fn func(pgx.Tx) error) error { return db.inTx(ctx, fn) }
