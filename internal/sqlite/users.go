package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/derrors"
)

const userCols = `id, email, name, role, password_hash, created_at`

func scanUser(s scanner) (auth.User, error) {
	var u auth.User
	var created int64
	err := s.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &created)
	u.CreatedAt = fromMicros(created)
	return u, err
}

// CreateUser inserts u with its email lower-cased and returns it with ID
// and CreatedAt set. An existing email is derrors.Conflict. An empty role
// is stored as auth.RoleShopper.
func (db *DB) CreateUser(ctx context.Context, u auth.User) (auth.User, error) {
	u.Email = strings.ToLower(u.Email)
	if u.Role == "" {
		u.Role = auth.RoleShopper
	}
	u.CreatedAt = normal(time.Now())
	row, err := db.writeRow(ctx, `INSERT INTO users (email, name, role, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		u.Email, u.Name, string(u.Role), u.PasswordHash, micros(u.CreatedAt))
	if err == nil {
		err = row.Scan(&u.ID)
	}
	switch {
	case isUnique(err):
		return auth.User{}, derrors.Wrap(derrors.Conflict, err, "an account with this email already exists")
	case isCheck(err):
		return auth.User{}, derrors.Wrap(derrors.Invalid, err, fmt.Sprintf("role %q is not valid", u.Role))
	case err != nil:
		return auth.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with that email (compared lower-case), or
// derrors.NotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	row, err := db.readRow(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, strings.ToLower(email))
	if err != nil {
		return auth.User{}, fmt.Errorf("get user by email: %w", err)
	}
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.User{}, derrors.New(derrors.NotFound, "user not found")
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("get user by email: %w", err)
	}
	return u, nil
}

// UserByID returns one user, or derrors.NotFound.
func (db *DB) UserByID(ctx context.Context, id int64) (auth.User, error) {
	row, err := db.readRow(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id)
	if err != nil {
		return auth.User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.User{}, derrors.New(derrors.NotFound, "user %d not found", id)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// SetPassword replaces a user's password hash and role; an unknown user is
// derrors.NotFound.
func (db *DB) SetPassword(ctx context.Context, id int64, hash string, role auth.Role) error {
	res, err := db.exec(ctx, `UPDATE users SET password_hash = ?, role = ? WHERE id = ?`, hash, string(role), id)
	if isCheck(err) {
		return derrors.Wrap(derrors.Invalid, err, fmt.Sprintf("role %q is not valid", role))
	}
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	} else if n == 0 {
		return derrors.New(derrors.NotFound, "user %d not found", id)
	}
	return nil
}
