// Package problem builds RFC 9457 problem details (application/problem+json).
package problem

import "encoding/json"

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem document with brisk's extension members.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id"`
	OrderID   string `json:"order_id,omitempty"`
}

// Type URIs of brisk's problems. They are relative references, resolved
// against the API's base URL; about:blank is used where the status says it all.
const (
	TypeBlank          = "about:blank"
	TypeValidation     = "/problems/validation"
	TypeNotFound       = "/problems/not-found"
	TypeConflict       = "/problems/conflict"
	TypeOutOfStock     = "/problems/out-of-stock"
	TypeKeyReused      = "/problems/idempotency-key-reused"
	TypeInFlight       = "/problems/request-in-flight"
	TypePaymentDecline = "/problems/payment-declined"
	TypeUnavailable    = "/problems/unavailable"
	TypeUnauthorized   = "/problems/unauthorized"
	TypeForbidden      = "/problems/forbidden"
	TypeTooLarge       = "/problems/body-too-large"
	TypeRateLimited    = "/problems/rate-limited"
	TypeOverloaded     = "/problems/overloaded"
)

// JSON encodes p.
func (p Problem) JSON() []byte {
	b, _ := json.Marshal(p) // a Problem of strings and ints always encodes
	return b
}
