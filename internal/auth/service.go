package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/briskhq/brisk/internal/derrors"
)

// Password length bounds, in characters.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// Service registers and signs in users.
type Service struct {
	Store  Store
	Tokens *Tokens
	Argon2 Argon2Params

	dummyOnce sync.Once
	dummyHash string // compared against on unknown emails, so timing does not reveal them
}

// Session is what register and login return.
type Session struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// NormalizeEmail validates an email address and returns it lower-cased.
func NormalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", derrors.New(derrors.Invalid, "email is required")
	}
	if len(email) > 254 {
		return "", derrors.New(derrors.Invalid, "email is longer than 254 characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", derrors.New(derrors.Invalid, "email is not a valid address")
	}
	return strings.ToLower(email), nil
}

// ValidatePassword checks a new password's length.
func ValidatePassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen || n > MaxPasswordLen {
		return derrors.New(derrors.Invalid, "password must be %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// Register creates a shopper account and signs it in.
func (s *Service) Register(ctx context.Context, email, password, name string) (Session, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Session{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return Session{}, err
	}
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 100 {
		return Session{}, derrors.New(derrors.Invalid, "name is longer than 100 characters")
	}
	hash, err := HashPassword(password, s.Argon2)
	if err != nil {
		return Session{}, err
	}
	u, err := s.Store.CreateUser(ctx, User{Email: email, Name: name, Role: RoleShopper, PasswordHash: hash})
	if err != nil {
		if errors.Is(err, derrors.Conflict) {
			return Session{}, derrors.New(derrors.Conflict, "an account with this email already exists")
		}
		return Session{}, fmt.Errorf("register: %w", err)
	}
	return s.session(u)
}

// Login checks an email and password and signs the user in. A wrong email
// and a wrong password fail alike.
func (s *Service) Login(ctx context.Context, email, password string) (Session, error) {
	bad := derrors.New(derrors.Unauthenticated, "email or password is incorrect")
	email, err := NormalizeEmail(email)
	if err != nil {
		return Session{}, bad
	}
	if len(password) > 4*MaxPasswordLen {
		return Session{}, bad
	}
	u, err := s.Store.UserByEmail(ctx, email)
	if errors.Is(err, derrors.NotFound) {
		s.burn(password)
		return Session{}, bad
	}
	if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	if !ok {
		return Session{}, bad
	}
	return s.session(u)
}

// burn spends the time of one password check so unknown emails are not
// faster to reject than known ones.
func (s *Service) burn(password string) {
	s.dummyOnce.Do(func() { s.dummyHash, _ = HashPassword("brisk-dummy-password", s.Argon2) })
	_, _ = CheckPassword(s.dummyHash, password)
}

func (s *Service) session(u User) (Session, error) {
	tok, exp, err := s.Tokens.Issue(u)
	if err != nil {
		return Session{}, err
	}
	return Session{Token: tok, TokenType: "Bearer", ExpiresAt: exp, User: u}, nil
}
