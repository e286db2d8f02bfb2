package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/postgres"
)

// TestInTxRetries checks that a transaction aborted by the server with a
// serialization failure or a deadlock runs again as a whole, and that
// other errors do not.
func TestInTxRetries(t *testing.T) {
	t.Parallel()
	db := openDSN(t, newDSN(t))
	if _, err := db.Pool().Exec(t.Context(), `CREATE TABLE hits (n INT)`); err != nil {
		t.Fatal(err)
	}
	raise := func(ctx context.Context, tx pgx.Tx, code string) error {
		_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '`+code+`'; END $$`)
		return err
	}
	tests := []struct {
		name      string
		code      string // raised by the first two attempts
		attempts  int
		wantRows  int
		wantKind  error
		wantError bool
	}{
		{"serialization failure", "40001", 3, 1, nil, false},
		{"deadlock", "40P01", 3, 1, nil, false},
		{"unique violation is final", "23505", 1, 0, derrors.Conflict, true},
		{"division by zero is final", "22012", 1, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if _, err := db.Pool().Exec(ctx, `DELETE FROM hits`); err != nil {
				t.Fatal(err)
			}
			attempts := 0
			err := db.InTx(ctx, func(tx pgx.Tx) error {
				attempts++
				if _, err := tx.Exec(ctx, `INSERT INTO hits VALUES (1)`); err != nil {
					return err
				}
				if attempts <= 2 {
					return raise(ctx, tx, tc.code)
				}
				return nil
			})
			err = postgres.WrapErr("test", err)
			if (err != nil) != tc.wantError || attempts != tc.attempts {
				t.Errorf("inTx: %d attempts, err %v; want %d attempts, error %v", attempts, err, tc.attempts, tc.wantError)
			}
			if tc.wantKind != nil && !errors.Is(err, tc.wantKind) {
				t.Errorf("inTx err = %v, want kind %v", err, tc.wantKind)
			}
			var rows int
			db.Pool().QueryRow(ctx, `SELECT count(*) FROM hits`).Scan(&rows)
			if rows != tc.wantRows {
				t.Errorf("%d rows committed, want %d (aborted attempts must roll back)", rows, tc.wantRows)
			}
		})
	}
}

func TestTSQuery(t *testing.T) {
	tests := []struct {
		terms []string
		want  string
	}{
		{[]string{"oak"}, "'oak':*"},
		{[]string{"oak", "lamp"}, "'oak' & 'lamp':*"},
		{[]string{"crème", "brûlée", "42"}, "'crème' & 'brûlée' & '42':*"},
	}
	for _, tc := range tests {
		if got := postgres.TSQuery(tc.terms); got != tc.want {
			t.Errorf("tsQuery(%q) = %q, want %q", tc.terms, got, tc.want)
		}
	}
}
