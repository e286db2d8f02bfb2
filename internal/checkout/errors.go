package checkout

import "errors"

// Errors wrapped (with a derrors kind) by Store.Begin.
var (
	ErrKeyExists  = errors.New("idempotency key already recorded")
	ErrOutOfStock = errors.New("out of stock")
)
