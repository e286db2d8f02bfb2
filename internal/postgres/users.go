package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/derrors"
)

var _ auth.Store = (*DB)(nil)

const userCols = `id, email, name, role, password_hash, created_at`

func scanUser(row pgx.Row) (auth.User, error) {
	var u auth.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.CreatedAt)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// CreateUser inserts u with a new id and creation time and returns it; an
// email already taken (compared lower-case) is derrors.Conflict.
func (db *DB) CreateUser(ctx context.Context, u auth.User) (auth.User, error) {
	out, err := scanUser(db.pool.QueryRow(ctx, `
		INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, $4)
		RETURNING `+userCols,
		strings.ToLower(u.Email), u.Name, string(u.Role), u.PasswordHash))
	if pgCode(err) == codeUniqueViolation {
		return auth.User{}, derrors.Wrap(derrors.Conflict, err, "email already registered")
	}
	if err != nil {
		return auth.User{}, wrapErr("create user", err)
	}
	return out, nil
}

// UserByEmail returns the user with that email (compared lower-case), or derrors.NotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE email = $1`, strings.ToLower(email)))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, derrors.New(derrors.NotFound, "user not found")
	}
	if err != nil {
		return auth.User{}, wrapErr("get user by email", err)
	}
	return u, nil
}

// UserByID returns one user, or derrors.NotFound.
func (db *DB) UserByID(ctx context.Context, id int64) (auth.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, derrors.New(derrors.NotFound, "user %d not found", id)
	}
	if err != nil {
		return auth.User{}, wrapErr("get user", err)
	}
	return u, nil
}

// SetPassword replaces a user's password hash and role; an unknown user is derrors.NotFound.
func (db *DB) SetPassword(ctx context.Context, id int64, hash string, role auth.Role) error {
	tag, err := db.pool.Exec(ctx, `UPDATE users SET password_hash = $2, role = $3 WHERE id = $1`, id, hash, string(role))
	if err != nil {
		return wrapErr("set password", err)
	}
	if tag.RowsAffected() == 0 {
		return derrors.New(derrors.NotFound, "user %d not found", id)
	}
	return nil
}
