package chaos

import (
	"slices"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func order(id string, user int64, key string, status checkout.Status, payID string, product int64, qty int) checkout.Order {
	return checkout.Order{ID: id, UserID: user, IdempotencyKey: key, Status: status, PaymentID: payID,
		Lines: []checkout.Line{{ProductID: product, Quantity: qty}}, CreatedAt: t0}
}

// healthy is a consistent history: two paid orders, one failed.
func healthy() Snapshot {
	return Snapshot{
		Stock: []catalog.Stock{
			{ProductID: 1, Initial: 10, Available: 7, Sold: 3},
			{ProductID: 2, Initial: 5, Available: 5},
		},
		Orders: []checkout.Order{
			order("o1", 1, "k1", checkout.StatusPaid, "p1", 1, 2),
			order("o2", 2, "k1", checkout.StatusPaid, "p2", 1, 1),
			order("o3", 2, "k2", checkout.StatusFailed, "", 2, 4),
		},
		Charges: []Charge{
			{ID: "p1", Key: checkout.PaymentKey(1, "k1"), OrderID: "o1", Status: checkout.PaymentCaptured},
			{ID: "p2", Key: checkout.PaymentKey(2, "k1"), OrderID: "o2", Status: checkout.PaymentAuthorized},
			{ID: "p3", Key: checkout.PaymentKey(2, "k2"), OrderID: "o3", Status: checkout.PaymentDeclined},
		},
		Acknowledged: []string{"o1", "o2"},
		TakenAt:      t0.Add(time.Minute),
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Snapshot)
		want   []string // invariants that must be reported
	}{
		{"healthy", func(*Snapshot) {}, nil},
		{"oversell: negative stock", func(s *Snapshot) {
			s.Stock[0] = catalog.Stock{ProductID: 1, Initial: 10, Available: -1, Sold: 11}
			s.Orders = append(s.Orders, order("o4", 3, "k9", checkout.StatusPaid, "p4", 1, 8))
			s.Charges = append(s.Charges, Charge{ID: "p4", Key: checkout.PaymentKey(3, "k9"), Status: checkout.PaymentAuthorized})
		}, []string{StockNonNegative}},
		{"stock does not balance", func(s *Snapshot) { s.Stock[1].Available = 6 }, []string{StockBalance}},
		{"sold without an order", func(s *Snapshot) {
			s.Stock[1] = catalog.Stock{ProductID: 2, Initial: 5, Available: 4, Sold: 1}
		}, []string{SoldMatchesOrders}},
		{"double charge", func(s *Snapshot) {
			s.Charges = append(s.Charges, Charge{ID: "p9", Key: checkout.PaymentKey(1, "k1"), Status: checkout.PaymentAuthorized})
		}, []string{OneChargePerKey}},
		{"a released order and its retry share a key", func(s *Snapshot) {
			o := order("o0", 1, "k1", checkout.StatusFailed, "", 2, 1)
			o.FailureReason = checkout.ReasonNotSent
			s.Orders = append([]checkout.Order{o}, s.Orders...)
		}, nil},
		{"two orders for one key", func(s *Snapshot) {
			s.Orders = append(s.Orders, order("o5", 1, "k1", checkout.StatusFailed, "", 2, 1))
		}, []string{OneOrderPerKey}},
		{"charge without a paid order", func(s *Snapshot) {
			s.Orders[2].Status = checkout.StatusFailed
			s.Charges[2].Status = checkout.PaymentAuthorized
		}, []string{ChargeHasPaidOrder}},
		{"orphan charge", func(s *Snapshot) {
			s.Charges = append(s.Charges, Charge{ID: "p7", Key: "u9/nobody", Status: checkout.PaymentAuthorized})
		}, []string{ChargeHasPaidOrder}},
		{"paid order without a charge", func(s *Snapshot) { s.Charges[1].Status = checkout.PaymentVoided }, []string{PaidOrderHasCharge}},
		{"lost order", func(s *Snapshot) { s.Acknowledged = append(s.Acknowledged, "o-lost") }, []string{AckedOrderExists}},
		{"acknowledged order not paid", func(s *Snapshot) { s.Acknowledged = append(s.Acknowledged, "o3") }, []string{AckedOrderPaid}},
		{"stale pending order", func(s *Snapshot) {
			s.Orders = append(s.Orders, order("o6", 4, "k6", checkout.StatusPending, "", 2, 1))
			s.Stock[1] = catalog.Stock{ProductID: 2, Initial: 5, Available: 4, Reserved: 1}
		}, []string{NoStalePending}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy()
			tt.mutate(&s)
			vs := Check(s, 30*time.Second)
			var got []string
			for _, v := range vs {
				if !slices.Contains(got, v.Invariant) {
					got = append(got, v.Invariant)
				}
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("Check = %v, want it to report %s", vs, w)
				}
			}
			if tt.want == nil && len(vs) > 0 {
				t.Errorf("Check(healthy) = %v, want no violations", vs)
			}
		})
	}
}
