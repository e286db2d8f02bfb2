package checkout

import (
	"errors"
	"strings"
	"testing"

	"github.com/briskhq/brisk/internal/derrors"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"uuid", "5f0c7d7e-2d1b-4c56-9d55-8d7b0b1f6a3e", true},
		{"one char", "k", true},
		{"255 chars", strings.Repeat("a", 255), true},
		{"empty", "", false},
		{"256 chars", strings.Repeat("a", 256), false},
		{"space", "a b", false},
		{"non-ascii", "ключ", false},
		{"control", "a\x00b", false},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, derrors.Invalid)) {
			t.Errorf("%s: ValidateKey = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string // substring of the error; "" for valid
	}{
		{"cart", Request{PaymentToken: "tok_visa"}, ""},
		{"items", Request{PaymentToken: "tok_visa", Items: []RequestItem{{2, 1}, {1, 99}}}, ""},
		{"no token", Request{}, "payment_token is required"},
		{"long token", Request{PaymentToken: strings.Repeat("t", 65)}, "longer than 64"},
		{"zero quantity", Request{PaymentToken: "t", Items: []RequestItem{{1, 0}}}, "quantity"},
		{"negative quantity", Request{PaymentToken: "t", Items: []RequestItem{{1, -3}}}, "quantity"},
		{"too many", Request{PaymentToken: "t", Items: []RequestItem{{1, 100}}}, "quantity"},
		{"bad product", Request{PaymentToken: "t", Items: []RequestItem{{0, 1}}}, "product_id"},
		{"duplicate", Request{PaymentToken: "t", Items: []RequestItem{{3, 1}, {3, 2}}}, "listed twice"},
		{"too many lines", Request{PaymentToken: "t", Items: make([]RequestItem, 51)}, "more than 50"},
	}
	for _, tt := range tests {
		got, hash, err := tt.req.Validate()
		if tt.want == "" {
			if err != nil || len(hash) != 64 {
				t.Errorf("%s: Validate = %v (hash %q), want valid", tt.name, err, hash)
			}
			for i := 1; i < len(got.Items); i++ {
				if got.Items[i-1].ProductID > got.Items[i].ProductID {
					t.Errorf("%s: items not sorted: %v", tt.name, got.Items)
				}
			}
			continue
		}
		if err == nil || !errors.Is(err, derrors.Invalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate err = %v, want Invalid containing %q", tt.name, err, tt.want)
		}
	}
	// Item order does not change the request's identity; content does.
	_, h1, _ := Request{PaymentToken: "tok_visa", Items: []RequestItem{{1, 1}, {2, 2}}}.Validate()
	_, h2, _ := Request{PaymentToken: "tok_visa", Items: []RequestItem{{2, 2}, {1, 1}}}.Validate()
	_, h3, _ := Request{PaymentToken: "tok_visa", Items: []RequestItem{{1, 1}, {2, 3}}}.Validate()
	if h1 != h2 {
		t.Error("same items in another order hash differently")
	}
	if h1 == h3 {
		t.Error("different quantities hash the same")
	}
}
