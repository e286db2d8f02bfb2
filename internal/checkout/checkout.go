// Package checkout turns a cart into a paid order, exactly once per
// idempotency key, without overselling, under concurrency, retries and
// faults. It follows five steps:
//
//  1. recognize a known idempotency key (replay, mismatch or in flight):
//     step 2 refuses a recorded key, whose record then answers;
//  2. in one transaction create the pending order, reserve stock with a
//     conditional decrement per item in id order, and record the key;
//  3. authorize the payment over gRPC with the same key and a deadline;
//  4. in one transaction mark the order paid (stock reserved -> sold) or
//     failed (stock released), storing the response for replays;
//  5. a reconciler finishes orders left pending by asking the payment
//     service about their key.
package checkout

import (
	"context"
	"time"

	"github.com/briskhq/brisk/internal/money"
)

// Status of an order.
type Status string

// Order statuses.
const (
	StatusPending Status = "pending"
	StatusPaid    Status = "paid"
	StatusFailed  Status = "failed"
)

// Line is one product of an order at the price it was bought for.
type Line struct {
	ProductID int64       `json:"product_id"`
	Name      string      `json:"name"`
	Quantity  int         `json:"quantity"`
	UnitPrice money.Money `json:"unit_price"`
}

// Order is a checkout's result.
type Order struct {
	ID             string      `json:"id"`
	UserID         int64       `json:"-"`
	Status         Status      `json:"status"`
	Lines          []Line      `json:"items"`
	Total          money.Money `json:"total"`
	PaymentID      string      `json:"payment_id,omitempty"`
	FailureReason  string      `json:"failure_reason,omitempty"`
	IdempotencyKey string      `json:"-"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
}

// Response is the HTTP answer stored with an idempotency key, replayed
// byte for byte when the same request comes again.
type Response struct {
	Status int
	Body   []byte
}

// Record is the state of one idempotency key of one user.
type Record struct {
	UserID      int64
	Key         string
	RequestHash string
	OrderID     string   // empty until an order exists
	Response    Response // Status 0 while the request is in flight
	CreatedAt   time.Time
}

// Done reports whether the request has a final stored response.
func (r Record) Done() bool { return r.Response.Status != 0 }

// Begin is step 2's input.
type Begin struct {
	OrderID     string
	UserID      int64
	Key         string
	RequestHash string
	Lines       []Line // sorted by ProductID, no duplicates, priced
	Total       money.Money
	Now         time.Time
}

// Store is the checkout's persistence. Implementations: sqlite, postgres.
type Store interface {
	// Begin runs step 2 in one transaction: it records the key, creates
	// the pending order and reserves stock (available -= n, reserved += n)
	// for each line in id order, only where available >= n.
	//   - key already recorded for this user: returns that Record and an
	//     error of kind derrors.Conflict wrapping ErrKeyExists; nothing written;
	//   - some line short of stock: derrors.Conflict wrapping ErrOutOfStock
	//     naming the product; nothing written;
	//   - unknown product: derrors.NotFound; nothing written.
	Begin(ctx context.Context, b Begin) (Record, Order, error)
	// Record returns the idempotency record of (userID, key), or derrors.NotFound.
	Record(ctx context.Context, userID int64, key string) (Record, error)
	// Complete marks a pending order paid (reserved -> sold per line),
	// sets its payment id and stores resp on its key, in one transaction.
	// An order that is no longer pending is returned unchanged with no error
	// (another actor finished it first); its stored response is kept.
	Complete(ctx context.Context, orderID, paymentID string, resp func(Order) Response, now time.Time) (Order, error)
	// Fail marks a pending order failed (reserved -> available per line)
	// with a reason and stores resp on its key, in one transaction. An order
	// that is no longer pending is returned unchanged with no error.
	Fail(ctx context.Context, orderID, reason string, resp func(Order) Response, now time.Time) (Order, error)
	// Release undoes a pending order whose payment was never sent, in one
	// transaction: the order is marked failed with reason, its stock goes
	// reserved -> available per line, and its idempotency key record is
	// deleted, so that a retry with the same key starts afresh. It reports
	// whether it released the order; an order that is no longer pending is
	// left unchanged, key included, with (false, nil). An unknown order is
	// derrors.NotFound.
	Release(ctx context.Context, orderID, reason string, now time.Time) (bool, error)
	// Order returns one order of one user; another user's order is derrors.NotFound.
	Order(ctx context.Context, userID int64, orderID string) (Order, error)
	// Orders returns the user's orders newest first, after the cursor
	// (an order id; empty for the first page), at most limit.
	Orders(ctx context.Context, userID int64, after string, limit int) ([]Order, error)
	// Pending returns up to limit orders still pending that were created before cutoff, oldest first.
	Pending(ctx context.Context, cutoff time.Time, limit int) ([]Order, error)
}

// PriceChecker is implemented by a Store whose Begin checks, in its
// transaction, that every line's name and unit price are the product's
// current ones, and otherwise fails with an error of kind derrors.Conflict
// wrapping ErrPriceChanged, writing nothing. The service then prices from
// a cache of products and lets Begin catch stale entries, which saves a
// catalog read per checkout; with other stores it reads the catalog every
// time.
type PriceChecker interface {
	ChecksPrices() bool
}

// Payments is the payment service as checkout uses it. Implemented by the
// gRPC client in package payment.
type Payments interface {
	// Authorize charges amount to token under key. Idempotent per key:
	// the same key never charges twice. A decline is a result, not an error.
	Authorize(ctx context.Context, a Authorization) (Payment, error)
	// Lookup returns the payment made under key, or derrors.NotFound.
	Lookup(ctx context.Context, key string) (Payment, error)
	// Void cancels the payment under key; for an unknown key it records a
	// tombstone so that a late Authorize with that key is refused.
	Void(ctx context.Context, key string) (Payment, error)
}

// Authorization is a payment request.
type Authorization struct {
	Key     string
	OrderID string
	Amount  money.Money
	Token   string // card token, e.g. tok_visa
}

// PaymentStatus is the state of a payment at the processor.
type PaymentStatus string

// Payment statuses.
const (
	PaymentAuthorized PaymentStatus = "authorized"
	PaymentCaptured   PaymentStatus = "captured"
	PaymentDeclined   PaymentStatus = "declined"
	PaymentVoided     PaymentStatus = "voided"
)

// Payment is the processor's answer.
type Payment struct {
	ID            string
	Key           string
	Status        PaymentStatus
	DeclineReason string
	Amount        money.Money
}

// Charged reports whether money was taken (or is held) for the payment.
func (p Payment) Charged() bool {
	return p.Status == PaymentAuthorized || p.Status == PaymentCaptured
}
