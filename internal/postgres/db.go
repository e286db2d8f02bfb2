// Package postgres is brisk's production store on PostgreSQL (pgx v5 and
// pgxpool). *DB implements catalog.Store, catalog.Loader, auth.Store and
// checkout.Store with the same behaviour as package sqlite. The SQL stays
// within what CockroachDB accepts too: no advisory locks, no SKIP LOCKED,
// and every transaction is retried as a whole on serialization failures
// (40001) and deadlocks (40P01).
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/briskhq/brisk/internal/derrors"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Connection defaults, used unless the DSN sets its own
// (connect_timeout, pool_max_conns, pool_min_conns, ...).
const (
	defaultConnectTimeout = 5 * time.Second
	openTimeout           = 6 * time.Second
	healthCheckPeriod     = 15 * time.Second
	maxConnIdleTime       = 5 * time.Minute
	maxConnLifetime       = 30 * time.Minute
	maxConnLifetimeJitter = 5 * time.Minute
)

// DB is a PostgreSQL-backed store. It is safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	retry  retrier
	begun  begunOrders
}

// Open connects to PostgreSQL at dsn (URL or key=value form) and pings it.
// It fails with an error of kind derrors.Unavailable when the server
// cannot be reached: at once when the port is closed, after the connect
// timeout (5s unless the DSN sets connect_timeout) when packets go
// nowhere. Requests are bounded by their own contexts. Pool parameters in the DSN
// (pool_max_conns, pool_min_conns, pool_health_check_period, ...) override
// the defaults, which suit a 2-core machine: MaxConns = 4 x GOMAXPROCS
// (at least 4), MinConns 2, health checks every 15s.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may echo the password: do not wrap it.
		return nil, derrors.New(derrors.Invalid, "open postgres: malformed DSN")
	}
	has := func(param string) bool { return strings.Contains(dsn, param) }
	if !has("connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if !has("pool_max_conns") {
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	if !has("pool_min_conns") {
		cfg.MinConns = min(2, cfg.MaxConns)
	}
	if !has("pool_health_check_period") {
		cfg.HealthCheckPeriod = healthCheckPeriod
	}
	if !has("pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = maxConnIdleTime
	}
	if !has("pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = maxConnLifetime
	}
	if !has("pool_max_conn_lifetime_jitter") {
		cfg.MaxConnLifetimeJitter = maxConnLifetimeJitter
	}
	rp := cfg.ConnConfig.RuntimeParams
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "brisk"
	}
	// A transaction left open (a bug, a stuck client) must not hold row
	// locks on hot products for long.
	if _, ok := rp["idle_in_transaction_session_timeout"]; !ok {
		rp["idle_in_transaction_session_timeout"] = "10000"
	}
	// Checkout's batches run as implicit transactions, which take the
	// session's default isolation: READ COMMITTED, whatever the server or
	// role default is (a stricter one would turn hot-product contention
	// into serialization failures and retries).
	if _, ok := rp["default_transaction_isolation"]; !ok {
		rp["default_transaction_isolation"] = "read committed"
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := &DB{pool: pool, logger: logger}
	db.retry = newRetrier(logger)

	pctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
		return nil, derrors.Wrap(derrors.Unavailable, fmt.Errorf("open postgres %s: %w", where, err),
			"database unavailable")
	}
	logger.Info("postgres connected",
		"host", cfg.ConnConfig.Host, "port", cfg.ConnConfig.Port, "database", cfg.ConnConfig.Database,
		"user", cfg.ConnConfig.User, "max_conns", cfg.MaxConns, "min_conns", cfg.MinConns,
		"connect_timeout", cfg.ConnConfig.ConnectTimeout)
	return db, nil
}

// Migrate brings the schema up to date with the embedded goose migrations.
// It takes no lock (CockroachDB has no advisory locks): run it from one
// process (brisk migrate), not from every API instance at once.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return wrapErr("migrate", err)
	}
	for _, r := range results {
		db.logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return wrapErr("ping postgres", db.pool.Ping(ctx))
}

// Stat returns the connection pool's statistics (for metrics).
func (db *DB) Stat() *pgxpool.Stat { return db.pool.Stat() }

// Pool returns the underlying pool, for tools (tests, benchmarks, chaos
// checks) that need raw SQL.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes all connections; it waits for acquired ones to be released.
func (db *DB) Close() { db.pool.Close() }
