// Package chaos runs fault experiments against brisk and checks, after
// each, the invariants that must hold whatever failed: no oversell, no
// double charge, no lost acknowledged order, nothing left pending.
package chaos

import (
	"fmt"
	"sort"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
)

// Charge is one payment as the payment service recorded it.
type Charge struct {
	ID      string
	Key     string // the payment idempotency key (checkout.PaymentKey)
	OrderID string
	Status  checkout.PaymentStatus
}

// Snapshot is everything the invariants are checked against, read after
// an experiment once the system has settled.
type Snapshot struct {
	Stock        []catalog.Stock
	Orders       []checkout.Order
	Charges      []Charge
	Acknowledged []string  // order ids the load generator was answered 201 for
	TakenAt      time.Time // when the snapshot was read
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string // short name, e.g. "stock-balance"
	Detail    string
}

func (v Violation) String() string { return v.Invariant + ": " + v.Detail }

// Invariant names.
const (
	StockNonNegative   = "stock-non-negative"
	StockBalance       = "stock-balance"
	OneOrderPerKey     = "one-order-per-key"
	OneChargePerKey    = "one-charge-per-key"
	ChargeHasPaidOrder = "charge-has-paid-order"
	PaidOrderHasCharge = "paid-order-has-charge"
	AckedOrderExists   = "acknowledged-order-exists"
	AckedOrderPaid     = "acknowledged-order-paid"
	NoStalePending     = "no-stale-pending"
	SoldMatchesOrders  = "sold-matches-paid-orders"
)

// Check returns every invariant s breaks; pendingBound is how long an
// order may stay pending (the reconciler's bound plus its interval).
func Check(s Snapshot, pendingBound time.Duration) []Violation {
	var vs []Violation
	add := func(inv, format string, args ...any) {
		vs = append(vs, Violation{inv, fmt.Sprintf(format, args...)})
	}

	// Stock: never negative, initial = available + reserved + sold.
	for _, st := range s.Stock {
		if st.Available < 0 || st.Reserved < 0 || st.Sold < 0 {
			add(StockNonNegative, "product %d: available %d reserved %d sold %d", st.ProductID, st.Available, st.Reserved, st.Sold)
		}
		if st.Initial != st.Available+st.Reserved+st.Sold {
			add(StockBalance, "product %d: initial %d != available %d + reserved %d + sold %d",
				st.ProductID, st.Initial, st.Available, st.Reserved, st.Sold)
		}
	}

	// Orders by id and by payment key; at most one order per key.
	orders := map[string]checkout.Order{}
	byKey := map[string]checkout.Order{}
	sold := map[int64]int64{}
	reserved := map[int64]int64{}
	for _, o := range s.Orders {
		orders[o.ID] = o
		k := checkout.PaymentKey(o.UserID, o.IdempotencyKey)
		// An order released before its payment was sent (breaker open)
		// forgot its key, so a retry may own a later order with it.
		released := o.Status == checkout.StatusFailed && o.FailureReason == checkout.ReasonNotSent
		if prev, dup := byKey[k]; dup && !released {
			add(OneOrderPerKey, "key %s has orders %s and %s", k, prev.ID, o.ID)
		} else if !released {
			byKey[k] = o
		}
		for _, l := range o.Lines {
			switch o.Status {
			case checkout.StatusPaid:
				sold[l.ProductID] += int64(l.Quantity)
			case checkout.StatusPending:
				reserved[l.ProductID] += int64(l.Quantity)
			}
		}
		if o.Status == checkout.StatusPending && pendingBound > 0 && s.TakenAt.Sub(o.CreatedAt) > pendingBound {
			add(NoStalePending, "order %s pending for %v (bound %v)", o.ID, s.TakenAt.Sub(o.CreatedAt).Round(time.Millisecond), pendingBound)
		}
	}
	// Sold and reserved stock agree with the orders (only products that
	// were never sold before the orders seen, i.e. all: the snapshot holds
	// every order).
	for _, st := range s.Stock {
		if st.Sold != sold[st.ProductID] {
			add(SoldMatchesOrders, "product %d: sold %d, paid orders hold %d", st.ProductID, st.Sold, sold[st.ProductID])
		}
		if st.Reserved != reserved[st.ProductID] {
			add(SoldMatchesOrders, "product %d: reserved %d, pending orders hold %d", st.ProductID, st.Reserved, reserved[st.ProductID])
		}
	}

	// Charges: one per key, each with a paid order; each paid order charged once.
	chargedKeys := map[string]Charge{}
	for _, c := range s.Charges {
		if c.Status != checkout.PaymentAuthorized && c.Status != checkout.PaymentCaptured {
			continue
		}
		if prev, dup := chargedKeys[c.Key]; dup {
			add(OneChargePerKey, "key %s charged twice: %s and %s", c.Key, prev.ID, c.ID)
		}
		chargedKeys[c.Key] = c
		o, ok := byKey[c.Key]
		switch {
		case !ok:
			add(ChargeHasPaidOrder, "charge %s (key %s) has no order", c.ID, c.Key)
		case o.Status != checkout.StatusPaid && o.Status != checkout.StatusPending:
			add(ChargeHasPaidOrder, "charge %s belongs to order %s, which is %s", c.ID, o.ID, o.Status)
		case o.Status == checkout.StatusPaid && o.PaymentID != c.ID:
			add(ChargeHasPaidOrder, "charge %s belongs to order %s, which records payment %s", c.ID, o.ID, o.PaymentID)
		}
	}
	for k, o := range byKey {
		if o.Status != checkout.StatusPaid {
			continue
		}
		if _, ok := chargedKeys[k]; !ok {
			add(PaidOrderHasCharge, "paid order %s has no charge", o.ID)
		}
	}

	// Acknowledged orders: exist and are paid.
	for _, id := range s.Acknowledged {
		o, ok := orders[id]
		switch {
		case !ok:
			add(AckedOrderExists, "order %s was acknowledged with 201 but does not exist", id)
		case o.Status != checkout.StatusPaid:
			add(AckedOrderPaid, "order %s was acknowledged with 201 but is %s", id, o.Status)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].String() < vs[j].String() })
	return vs
}
