package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/postgres"
	"github.com/briskhq/brisk/internal/redis"
	"github.com/briskhq/brisk/internal/sqlite"
)

// backend is the set of stores one database provides.
type backend struct {
	name     string // "sqlite" or "postgres"
	catalog  catalog.Store
	loader   catalog.Loader
	users    auth.Store
	carts    cart.Store
	checkout checkout.Store
	ping     func(context.Context) error
	migrate  func(context.Context) error
	close    func()

	// redis is the shared Redis client when --redis is set (carts, L2
	// cache, distributed rate limits, invalidation fan-out); nil otherwise.
	redis *redis.Client
	// pg is the PostgreSQL store when --db is a postgres:// URL.
	pg *postgres.DB
}

// syncUsage is the help text of the --sqlite-sync flags.
const syncUsage = "when a SQLite commit is acknowledged: normal (in the WAL: survives a crash of brisk, " +
	"not a power loss) or full (fsynced first: survives a power loss, at about one fsync per write)"

// openBackend opens the database named by db: "" means the embedded SQLite
// file in dataDir; "sqlite:PATH" or a path ending in .db a SQLite file,
// its commits as syncMode says.
func openBackend(ctx context.Context, db, dataDir string, syncMode sqlite.Sync, log *slog.Logger) (*backend, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		s, err := postgres.Open(ctx, db, log)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", maskValue("db", db), err)
		}
		return &backend{
			name: "postgres", catalog: s, loader: s, users: s, carts: s, checkout: s,
			ping: s.Ping, migrate: s.Migrate, close: s.Close, pg: s,
		}, nil
	}
	path := ""
	switch {
	case db == "":
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		path = filepath.Join(dataDir, "brisk.db")
	case strings.HasPrefix(db, "sqlite:"):
		path = strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "//")
	case strings.HasSuffix(db, ".db") && !strings.Contains(db, "://"):
		path = db
	default:
		return nil, usageError("--db %q: want a postgres:// URL, sqlite:PATH or a .db file", maskValue("db", db))
	}
	s, err := sqlite.Open(ctx, path, syncMode, log)
	if err != nil {
		return nil, err
	}
	return &backend{
		name: "sqlite", catalog: s, loader: s, users: s, carts: s, checkout: s,
		ping: s.Ping, migrate: s.Migrate, close: func() { s.Close() },
	}, nil
}

// useRedis connects the backend to Redis at url (empty: no Redis): carts
// move to Redis and the client is kept for the cache and rate limits. The
// client connects lazily, so the API starts (and serves the catalog and
// checkout from the database) while Redis is down; cart calls then answer
// 503 until it is back.
func (b *backend) useRedis(url, prefix string, log *slog.Logger) error {
	if url == "" {
		return nil
	}
	c, err := redis.New(url, log, redis.WithPrefix(prefix))
	if err != nil {
		return usageError("--redis %s: %v", maskValue("redis", url), err)
	}
	b.redis = c
	b.carts = redis.NewCarts(c, 30*24*time.Hour)
	closeDB := b.close
	b.close = func() { c.Close(); closeDB() }
	return nil
}

// demoAccount is one seeded account, as printed at start.
type demoAccount struct {
	Role     auth.Role `json:"role"`
	Email    string    `json:"email"`
	Password string    `json:"password"`
}

// accountFlags are the demo accounts' configured emails and passwords.
type accountFlags struct {
	shopperEmail, shopperPassword, adminEmail, adminPassword string
}

// randomPassword returns a random password of 20 base32 characters.
func randomPassword() string { return rand.Text()[:20] }

// ensureAccounts creates or updates the demo shopper and admin. Passwords
// come from the flags, else from the saved file in dataDir (if any), else
// are generated at random; generated ones are saved there (mode 0600).
// There is never a fixed default password.
func ensureAccounts(ctx context.Context, users auth.Store, argon auth.Argon2Params, f accountFlags, dataDir string) ([]demoAccount, error) {
	saved := map[auth.Role]demoAccount{}
	file := ""
	if dataDir != "" {
		file = filepath.Join(dataDir, "demo-accounts.json")
		if b, err := os.ReadFile(file); err == nil {
			var list []demoAccount
			if err := json.Unmarshal(b, &list); err != nil {
				return nil, fmt.Errorf("read %s: %w", file, err)
			}
			for _, a := range list {
				saved[a.Role] = a
			}
		}
	}
	want := []demoAccount{
		{auth.RoleShopper, f.shopperEmail, f.shopperPassword},
		{auth.RoleAdmin, f.adminEmail, f.adminPassword},
	}
	generated := false
	for i, a := range want {
		if a.Password == "" {
			if s, ok := saved[a.Role]; ok && strings.EqualFold(s.Email, a.Email) && s.Password != "" {
				a.Password = s.Password
			} else {
				a.Password, generated = randomPassword(), true
			}
		}
		email, err := auth.NormalizeEmail(a.Email)
		if err != nil {
			return nil, fmt.Errorf("demo %s email: %w", a.Role, err)
		}
		if err := auth.ValidatePassword(a.Password); err != nil {
			return nil, fmt.Errorf("demo %s password: %w", a.Role, err)
		}
		a.Email = email
		if err := ensureAccount(ctx, users, argon, a); err != nil {
			return nil, err
		}
		want[i] = a
	}
	if generated && file != "" {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return nil, fmt.Errorf("save demo accounts: %w", err)
		}
	}
	return want, nil
}

func ensureAccount(ctx context.Context, users auth.Store, argon auth.Argon2Params, a demoAccount) error {
	u, err := users.UserByEmail(ctx, a.Email)
	if errors.Is(err, derrors.NotFound) {
		hash, err := auth.HashPassword(a.Password, argon)
		if err != nil {
			return err
		}
		_, err = users.CreateUser(ctx, auth.User{Email: a.Email, Name: "Demo " + string(a.Role), Role: a.Role, PasswordHash: hash})
		if err != nil {
			return fmt.Errorf("create demo %s: %w", a.Role, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("find demo %s: %w", a.Role, err)
	}
	if ok, _ := auth.CheckPassword(u.PasswordHash, a.Password); ok && u.Role == a.Role {
		return nil
	}
	hash, err := auth.HashPassword(a.Password, argon)
	if err != nil {
		return err
	}
	if err := users.SetPassword(ctx, u.ID, hash, a.Role); err != nil {
		return fmt.Errorf("update demo %s: %w", a.Role, err)
	}
	return nil
}

// seedCatalog loads n generated products if the catalog is empty.
func seedCatalog(ctx context.Context, l catalog.Loader, n int, log *slog.Logger) (bool, error) {
	have, err := l.CountProducts(ctx)
	if err != nil {
		return false, fmt.Errorf("count products: %w", err)
	}
	if have > 0 {
		return false, nil
	}
	if err := l.LoadProducts(ctx, catalog.Generate(n)); err != nil {
		return false, fmt.Errorf("seed catalog: %w", err)
	}
	log.Info("seeded catalog", "products", n)
	return true, nil
}

func printAccounts(w io.Writer, accounts []demoAccount) {
	for _, a := range accounts {
		fmt.Fprintf(w, "  %-8s %s  password: %s\n", a.Role, a.Email, a.Password)
	}
}
