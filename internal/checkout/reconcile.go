package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/briskhq/brisk/internal/derrors"
)

// Reconcile finishes orders left pending longer than PendingAfter (a crash,
// or a payment whose outcome was unknown) by asking the payment service
// about their key: a charge completes the order; a decline fails it; no
// payment at all is voided first (a tombstone, so a late authorization
// cannot land) and then the order fails and its stock is released. It
// returns how many orders it finished.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	pending, err := s.store.Pending(ctx, s.now().Add(-s.cfg.PendingAfter).UTC(), 100)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	n := 0
	var errs []error
	for _, o := range pending {
		if err := s.reconcile(ctx, o); err != nil {
			errs = append(errs, fmt.Errorf("reconcile order %s: %w", o.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (s *Service) reconcile(ctx context.Context, o Order) error {
	key := PaymentKey(o.UserID, o.IdempotencyKey)
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PaymentTimeout)
	defer cancel()
	p, err := s.payments.Lookup(pctx, key)
	if errors.Is(err, derrors.NotFound) {
		p, err = s.payments.Void(pctx, key)
	}
	if err != nil {
		return err
	}
	_, err = s.settle(ctx, o, p, "")
	if err == nil {
		s.log.InfoContext(ctx, "reconciled pending order", "order_id", o.ID, "payment_status", p.Status)
	}
	return err
}

// RunReconciler calls Reconcile every interval until ctx ends, logging failures.
func (s *Service) RunReconciler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reconcile pending orders", "err", err)
		}
	}
}
