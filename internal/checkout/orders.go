package checkout

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/briskhq/brisk/internal/derrors"
)

// ParseOrderID checks that id is an order id (a UUID in canonical form).
func ParseOrderID(id string) error {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return derrors.New(derrors.Invalid, "order id must be a UUID in canonical lower-case form")
	}
	return nil
}

// Order returns one of the user's orders; another user's is NotFound.
func (s *Service) Order(ctx context.Context, userID int64, id string) (Order, error) {
	if err := ParseOrderID(id); err != nil {
		return Order{}, err
	}
	o, err := s.store.Order(ctx, userID, id)
	if err != nil {
		return Order{}, fmt.Errorf("get order: %w", err)
	}
	return o, nil
}

// Orders returns a page of the user's orders, newest first, and the cursor
// of the next page ("" on the last).
func (s *Service) Orders(ctx context.Context, userID int64, cursor string, limit int) ([]Order, string, error) {
	if cursor != "" {
		if err := ParseOrderID(cursor); err != nil {
			return nil, "", derrors.New(derrors.Invalid, "cursor is malformed")
		}
	}
	os, err := s.store.Orders(ctx, userID, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	next := ""
	if len(os) > limit {
		os = os[:limit]
		next = os[limit-1].ID
	}
	return os, next, nil
}
