// Package pgtest gives each test its own empty PostgreSQL database (or a
// schema of its own in a test's database), so that tests of any package
// can run against the real server in parallel.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server tests use when BRISK_TEST_PG is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminDSN returns the DSN of the test server's maintenance database:
// $BRISK_TEST_PG, or DefaultDSN.
func AdminDSN() string {
	if dsn := os.Getenv("BRISK_TEST_PG"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// NewDatabase creates a database named brisk_t_<random> on the test
// server and returns a DSN for it; the database is dropped when the test
// ends. When the server cannot be reached the test is skipped, or fails
// when the environment has CI=true (CI must not pass by skipping).
func NewDatabase(t testing.TB) (dsn string) {
	t.Helper()
	dsn, drop, err := CreateDatabase(context.Background())
	if err != nil {
		Check(t, err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// CreateDatabase creates a database named brisk_t_<random> on the test
// server, for a TestMain that shares one database among a package's tests
// (each test then takes a schema with NewSchema). drop removes it. A test
// that finds err set should call Check(t, err).
func CreateDatabase(ctx context.Context) (dsn string, drop func() error, err error) {
	admin := AdminDSN()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer conn.Close(context.Background())

	var b [6]byte
	rand.Read(b[:])
	name := "brisk_t_" + hex.EncodeToString(b[:])
	dsn, err = withDatabase(admin, name)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := connect(ctx, admin)
		if err != nil {
			return fmt.Errorf("pgtest: drop database %s: %w", name, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("pgtest: drop database %s: %w", name, err)
		}
		return nil
	}
	return dsn, drop, nil
}

// NewSchema creates a schema named brisk_s_<random> in the database at dsn
// (made by NewDatabase or CreateDatabase) and returns dsn with search_path set to it, so that
// unqualified tables (and goose's version table) land there. It is much
// cheaper than a database when one test needs many fresh stores; the
// schema is dropped when the test ends.
func NewSchema(t testing.TB, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		Check(t, fmt.Errorf("%w: %v", ErrUnreachable, err))
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "brisk_s_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := connect(ctx, dsn)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	out, err := withParam(dsn, "search_path", name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return out
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// ErrUnreachable is the error of CreateDatabase when the test server
// cannot be reached.
var ErrUnreachable = errors.New("PostgreSQL test server unreachable (set BRISK_TEST_PG to the DSN of a server that allows CREATE DATABASE)")

// Check ends the test because of err (from CreateDatabase): when the
// server is unreachable the test is skipped, or fails when the environment
// has CI=true; any other error fails it.
func Check(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnreachable) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// withParam returns dsn (URL or key=value form) with one more parameter.
func withParam(dsn, key, value string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " " + key + "=" + value, nil
}

// withDatabase returns dsn (URL or key=value form) pointing at database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}
