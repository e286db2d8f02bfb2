//lint:file-ignore ST1012 the kinds read as derrors.NotFound, derrors.Invalid (as in pkgsite's derrors), not ErrFoo

// Package derrors defines the few kinds of error the domain reports. Each
// transport (HTTP, gRPC) maps a kind to its own status in one table.
package derrors

import (
	"errors"
	"fmt"
)

// Kinds of error. Wrap them with fmt.Errorf("...: %w", derrors.NotFound)
// or build one with New.
var (
	// NotFound: the thing does not exist, or the caller may not see it.
	NotFound = errors.New("not found")
	// Invalid: the request is malformed or breaks a rule.
	Invalid = errors.New("invalid argument")
	// Conflict: the request conflicts with the current state (out of stock,
	// duplicate email, an idempotent request still in flight).
	Conflict = errors.New("conflict")
	// Mismatch: an idempotency key was reused with a different request.
	Mismatch = errors.New("idempotency key reused with a different request")
	// Unauthenticated: no valid credentials.
	Unauthenticated = errors.New("unauthenticated")
	// Forbidden: valid credentials without the needed role.
	Forbidden = errors.New("forbidden")
	// PaymentDeclined: the payment processor declined the charge.
	PaymentDeclined = errors.New("payment declined")
	// Unavailable: a dependency is down or overloaded; retry later.
	Unavailable = errors.New("unavailable")
)

// Error is a domain error with a message safe to show to a client.
type Error struct {
	Kind   error  // one of the kinds above
	Detail string // client-safe detail
	Err    error  // underlying cause, for logs; may be nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

// Unwrap lets errors.Is match both the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// New returns an error of the given kind with a client-safe detail.
func New(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the given kind with a client-safe detail and a cause.
func Wrap(kind error, err error, detail string) error {
	return &Error{Kind: kind, Detail: detail, Err: err}
}

// Kind reports which kind err is, or nil for an unexpected (internal) error.
func Kind(err error) error {
	for _, k := range []error{NotFound, Invalid, Conflict, Mismatch, Unauthenticated, Forbidden, PaymentDeclined, Unavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Detail returns the client-safe detail of err, or "" when it has none.
func Detail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return ""
}
