package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/money"
	"github.com/briskhq/brisk/internal/sqlite"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Record is one payment as the processor stores it: one per idempotency key.
type Record struct {
	ID            string
	Key           string
	OrderID       string
	Status        checkout.PaymentStatus
	Amount        money.Money
	Token         string // card token; empty for a void tombstone
	DeclineReason string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Tombstone reports whether r was stored by a Void of a key that had no
// payment: it blocks a later Authorize with that key.
func (r Record) Tombstone() bool { return r.Token == "" }

// Charged reports whether money was taken (or is held) for the payment.
func (r Record) Charged() bool {
	return r.Status == checkout.PaymentAuthorized || r.Status == checkout.PaymentCaptured
}

// Store keeps payment records, one per idempotency key: in memory, or in a
// SQLite file so that a restarted payment service still knows its keys.
// Its methods are safe for concurrent use.
type Store struct {
	db *sql.DB // nil: in memory

	mu  sync.Mutex
	mem map[string]Record
}

const schema = `CREATE TABLE IF NOT EXISTS payments (
	idempotency_key TEXT PRIMARY KEY,
	id              TEXT NOT NULL UNIQUE,
	order_id        TEXT NOT NULL,
	status          TEXT NOT NULL,
	amount_minor    INTEGER NOT NULL,
	currency        TEXT NOT NULL,
	card_token      TEXT NOT NULL,
	decline_reason  TEXT NOT NULL,
	created_at      INTEGER NOT NULL, -- unix nanoseconds
	updated_at      INTEGER NOT NULL
)`

// Open opens the payment store at path: "" keeps payments in memory; any
// other path is a SQLite file, created if missing, its commits as mode
// says.
func Open(path string, mode sqlite.Sync) (*Store, error) {
	if path == "" {
		return &Store{mem: make(map[string]Record)}, nil
	}
	// Pragmas go in the DSN so that every pooled connection gets them.
	q := url.Values{"_pragma": {"journal_mode(WAL)", mode.Pragma(), "busy_timeout(5000)"}}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open payment store %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open payment store %s: create table: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close releases the store's database.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

const columns = `id, idempotency_key, order_id, status, amount_minor, currency, card_token, decline_reason, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (Record, error) {
	var (
		r              Record
		status         string
		created, updat int64
	)
	err := row.Scan(&r.ID, &r.Key, &r.OrderID, &status, &r.Amount.Amount, &r.Amount.Currency,
		&r.Token, &r.DeclineReason, &created, &updat)
	r.Status = checkout.PaymentStatus(status)
	r.CreatedAt = time.Unix(0, created).UTC()
	r.UpdatedAt = time.Unix(0, updat).UTC()
	return r, err
}

// get returns the record of key; ok is false when there is none.
func (s *Store) get(ctx context.Context, key string) (r Record, ok bool, err error) {
	if s.db == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		r, ok = s.mem[key]
		return r, ok, nil
	}
	r, err = scanRecord(s.db.QueryRowContext(ctx,
		`SELECT `+columns+` FROM payments WHERE idempotency_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("get payment: %w", err)
	}
	return r, true, nil
}

// insert stores r unless its key already has a record; it returns the
// record now stored under the key and whether it is r.
func (s *Store) insert(ctx context.Context, r Record) (Record, bool, error) {
	if s.db == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if old, ok := s.mem[r.Key]; ok {
			return old, false, nil
		}
		s.mem[r.Key] = r
		return r, true, nil
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO payments (`+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (idempotency_key) DO NOTHING`,
		r.ID, r.Key, r.OrderID, string(r.Status), r.Amount.Amount, r.Amount.Currency,
		r.Token, r.DeclineReason, r.CreatedAt.UnixNano(), r.UpdatedAt.UnixNano())
	if err != nil {
		return Record{}, false, fmt.Errorf("insert payment: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Record{}, false, fmt.Errorf("insert payment: %w", err)
	} else if n == 1 {
		return r, true, nil
	}
	old, ok, err := s.get(ctx, r.Key)
	if err == nil && !ok {
		err = fmt.Errorf("insert payment: key %q conflicted but is gone", r.Key)
	}
	return old, false, err
}

// transition moves the record of key from status from to status to and
// returns the record now stored; ok is false (and the record unchanged)
// when the record was not in status from.
func (s *Store) transition(ctx context.Context, key string, from, to checkout.PaymentStatus, now time.Time) (r Record, ok bool, err error) {
	if s.db == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		r, found := s.mem[key]
		if !found {
			return Record{}, false, fmt.Errorf("transition payment: key %q: %w", key, errNoRecord)
		}
		if r.Status != from {
			return r, false, nil
		}
		r.Status, r.UpdatedAt = to, now
		s.mem[key] = r
		return r, true, nil
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE payments SET status = ?, updated_at = ? WHERE idempotency_key = ? AND status = ?`,
		string(to), now.UnixNano(), key, string(from))
	if err != nil {
		return Record{}, false, fmt.Errorf("transition payment: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Record{}, false, fmt.Errorf("transition payment: %w", err)
	}
	r, found, err := s.get(ctx, key)
	if err == nil && !found {
		err = fmt.Errorf("transition payment: key %q: %w", key, errNoRecord)
	}
	return r, n == 1, err
}

var errNoRecord = errors.New("no payment record")

// list returns every record, oldest first.
func (s *Store) list(ctx context.Context) ([]Record, error) {
	if s.db == nil {
		s.mu.Lock()
		out := make([]Record, 0, len(s.mem))
		for _, r := range s.mem {
			out = append(out, r)
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b Record) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.Key, b.Key)
		})
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM payments ORDER BY created_at, idempotency_key`)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("list payments: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return out, nil
}
