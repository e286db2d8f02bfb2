// Package auth holds accounts, password hashing and JWT access tokens.
package auth

import (
	"context"
	"time"
)

// Role is what a user may do.
type Role string

// Roles.
const (
	RoleShopper Role = "shopper"
	RoleAdmin   Role = "admin"
)

// User is an account. PasswordHash is an encoded argon2id hash.
type User struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Store keeps accounts. Implementations: sqlite, postgres.
type Store interface {
	// CreateUser inserts u (ID and CreatedAt are set by the store) and
	// returns it; an existing email (compared lower-case) is derrors.Conflict.
	CreateUser(ctx context.Context, u User) (User, error)
	// UserByEmail returns the user with that email (lower-case), or derrors.NotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByID returns one user, or derrors.NotFound.
	UserByID(ctx context.Context, id int64) (User, error)
	// SetPassword replaces a user's password hash and role (used by seeding
	// to make the demo accounts' passwords match the configured ones).
	SetPassword(ctx context.Context, id int64, hash string, role Role) error
}
