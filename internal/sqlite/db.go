// Package sqlite is the embedded store: one SQLite file (pure Go driver,
// modernc.org/sqlite) that implements the catalog, cart, account and
// checkout stores. It keeps two connection pools on the file: a write pool
// of one connection whose transactions start with BEGIN IMMEDIATE, so
// writers queue in Go instead of failing on a lock upgrade, and a read pool
// of several read-only connections, which WAL mode lets run alongside the
// writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
)

// Interfaces the DB implements.
var (
	_ catalog.Store  = (*DB)(nil)
	_ catalog.Loader = (*DB)(nil)
	_ cart.Store     = (*DB)(nil)
	_ auth.Store     = (*DB)(nil)
	_ checkout.Store = (*DB)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open SQLite store. It is safe for concurrent use.
type DB struct {
	logger *slog.Logger
	w      *sql.DB // write pool: one connection, BEGIN IMMEDIATE
	r      *sql.DB // read pool: several query-only connections

	mu    sync.RWMutex
	stmts map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	write bool
	query string
}

// Open opens (creating it if needed) the SQLite database file at path,
// its commits as mode says. path must name a file: the two pools must
// share one database, which an in-memory database cannot do. Call Migrate
// before using a new file.
func Open(ctx context.Context, path string, mode Sync, logger *slog.Logger) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite: path %q must be a plain file name", path)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pragmas := []string{"busy_timeout(5000)", "journal_mode(WAL)", mode.Pragma(), "foreign_keys(1)"}
	dsn := func(extra url.Values) string {
		v := url.Values{"_pragma": pragmas}
		for k, vs := range extra {
			v[k] = append(v[k], vs...)
		}
		return path + "?" + v.Encode()
	}

	w, err := sql.Open("sqlite", dsn(url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The first connection switches the file to WAL before readers open it.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	readers := max(4, 2*runtime.GOMAXPROCS(0))
	r, err := sql.Open("sqlite", dsn(url.Values{"_query_only": {"1"}}))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	logger.Info("sqlite opened", "path", path, "readers", readers)
	return &DB{logger: logger, w: w, r: r, stmts: make(map[stmtKey]*sql.Stmt)}, nil
}

// Migrate applies the embedded schema migrations that are not applied yet.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.w, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		db.logger.Info("migration applied", "file", r.Source.Path, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// Ping checks that both pools can reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes the prepared statements and both pools.
func (db *DB) Close() error {
	db.mu.Lock()
	for k, s := range db.stmts {
		s.Close()
		delete(db.stmts, k)
	}
	db.mu.Unlock()
	return errors.Join(db.r.Close(), db.w.Close())
}

// stmt returns query prepared on the read or the write pool, preparing it
// on first use. database/sql re-prepares it on each pool connection once.
func (db *DB) stmt(ctx context.Context, write bool, query string) (*sql.Stmt, error) {
	k := stmtKey{write, query}
	db.mu.RLock()
	s, ok := db.stmts[k]
	db.mu.RUnlock()
	if ok {
		return s, nil
	}
	pool := db.r
	if write {
		pool = db.w
	}
	// Prepare without holding mu: preparing waits for a pool connection,
	// which a transaction may hold while it looks up statements.
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if prev, ok := db.stmts[k]; ok {
		s.Close()
		return prev, nil
	}
	db.stmts[k] = s
	return s, nil
}

// readRow runs a single-row query on the read pool.
func (db *DB) readRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	s, err := db.stmt(ctx, false, query)
	if err != nil {
		return nil, err
	}
	return s.QueryRowContext(ctx, args...), nil
}

// read runs a query on the read pool.
func (db *DB) read(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := db.stmt(ctx, false, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// cached returns query's prepared statement if it has one.
func (db *DB) cached(write bool, query string) *sql.Stmt {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.stmts[stmtKey{write, query}]
}

// tx is a transaction with access to the prepared statements. Preparing on
// the pool inside a transaction could wait forever for the connection the
// transaction holds (the write pool has one), so a statement not prepared
// yet is prepared on the transaction and added to the cache after it ends.
type tx struct {
	db     *DB
	ctx    context.Context
	tx     *sql.Tx
	write  bool
	missed []string
}

func (t *tx) stmt(query string) (*sql.Stmt, error) {
	if s := t.db.cached(t.write, query); s != nil {
		return t.tx.StmtContext(t.ctx, s), nil
	}
	t.missed = append(t.missed, query)
	return t.tx.PrepareContext(t.ctx, query)
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(t.ctx, args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(t.ctx, args...)
}

func (t *tx) queryRow(query string, args ...any) (*sql.Row, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryRowContext(t.ctx, args...), nil
}

// end prepares the statements the transaction missed, once it no longer
// holds its connection. Failing to prepare only costs speed.
func (t *tx) end() {
	for _, q := range t.missed {
		if _, err := t.db.stmt(t.ctx, t.write, q); err != nil && t.ctx.Err() == nil {
			t.db.logger.Warn("prepare statement", "err", err)
		}
	}
}

// write runs fn in a write transaction (BEGIN IMMEDIATE), committing when
// fn returns nil and rolling back otherwise.
func (db *DB) write(ctx context.Context, fn func(t *tx) error) error {
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t := &tx{db: db, ctx: ctx, tx: sqlTx, write: true}
	defer t.end()
	if err := fn(t); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// readTx runs fn in a read transaction on the read pool, so that several
// queries see one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(t *tx) error) error {
	sqlTx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	t := &tx{db: db, ctx: ctx, tx: sqlTx}
	defer t.end()
	defer sqlTx.Rollback()
	return fn(t)
}

// exec runs one statement on the write pool outside a transaction.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := db.stmt(ctx, true, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// sqliteCode returns the extended result code of a SQLite error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isCheck(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_CHECK }

// micros and fromMicros convert times to the stored form: unix
// microseconds, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// normal returns t as it reads back from the store.
func normal(t time.Time) time.Time { return fromMicros(micros(t)) }

// idList encodes ids as a JSON array for "IN (SELECT value FROM json_each(?))",
// so that one prepared statement serves any number of ids.
func idList(ids []int64) string {
	b := make([]byte, 0, 2+8*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// stringList encodes strings as a JSON array for json_each.
func stringList(ss []string) (string, error) {
	b, err := json.Marshal(ss)
	return string(b), err
}
