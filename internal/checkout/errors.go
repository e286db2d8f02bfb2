package checkout

import "errors"

// Errors wrapped (with a derrors kind) by Store.Begin.
var (
	ErrKeyExists  = errors.New("idempotency key already recorded")
	ErrOutOfStock = errors.New("out of stock")
	// ErrPriceChanged is wrapped (with derrors.Conflict) by the Begin of a
	// PriceChecker store when a line's name or unit price is not the
	// product's current one.
	ErrPriceChanged = errors.New("product name or price changed")
)

// ErrNotSent is wrapped (with derrors.Unavailable) by a Payments error when
// the request was definitely not sent to the processor, e.g. refused by an
// open circuit breaker: nothing can have been charged under its key, so a
// checkout may release the order's stock at once and forget the key.
var ErrNotSent = errors.New("payment request not sent")
