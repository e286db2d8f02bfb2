package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // substring of the error; "" for success
	}{
		{"ok", `{"quantity": 3}`, ""},
		{"ok trailing space", "{\"quantity\": 3}\n ", ""},
		{"empty", ``, "empty"},
		{"unknown field", `{"quantity": 3, "qty": 1}`, `unknown field "qty"`},
		{"wrong type", `{"quantity": "3"}`, `"quantity" must be a number`},
		{"float", `{"quantity": 1.5}`, `"quantity" must be a number`},
		{"array", `[1]`, "must be a JSON object"},
		{"two objects", `{"quantity": 1}{"quantity": 2}`, "single JSON object"},
		{"syntax", `{"quantity": }`, "malformed JSON"},
		{"truncated", `{"quantity": 1`, "truncated"},
	}
	for _, tt := range tests {
		var v cartItemRequest
		err := decode(strings.NewReader(tt.body), &v)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: decode = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, derrors.Invalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: decode = %v, want Invalid containing %q", tt.name, err, tt.want)
		}
	}
}

func TestToProblemStatuses(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{derrors.New(derrors.Invalid, "x"), 400},
		{derrors.New(derrors.NotFound, "x"), 404},
		{derrors.Wrap(derrors.Conflict, checkout.ErrOutOfStock, "x"), 409},
		{derrors.New(derrors.Mismatch, "x"), 422},
		{derrors.New(derrors.Unauthenticated, "x"), 401},
		{derrors.New(derrors.Forbidden, "x"), 403},
		{derrors.New(derrors.Unavailable, "x"), 503},
		{errors.New("boom"), 500},
		{errStatus(http.StatusRequestEntityTooLarge, "t", "big"), 413},
	}
	for _, tt := range tests {
		p, _ := toProblem(tt.err, "rid")
		if p.Status != tt.want || p.RequestID != "rid" || p.Title == "" || p.Type == "" {
			t.Errorf("toProblem(%v) = %+v, want status %d", tt.err, p, tt.want)
		}
	}
	if p, _ := toProblem(errors.New("secret internals"), "r"); strings.Contains(p.Detail, "secret") {
		t.Errorf("500 detail leaks the cause: %q", p.Detail)
	}
}

// fuzzDecoder checks that no input panics the decoder and that every
// failure is a client error (400 or 413), never a 500.
func fuzzDecoder[T any](f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v T
		err := decode(strings.NewReader(string(body)), &v)
		if err == nil {
			return
		}
		p, _ := toProblem(err, "r")
		if p.Status != 400 && p.Status != 413 {
			t.Fatalf("decode(%q) = %v, status %d, want 400", body, err, p.Status)
		}
	})
}

func FuzzDecodeCheckout(f *testing.F) {
	fuzzDecoder[checkout.Request](f, `{"payment_token":"tok_visa"}`, `{"payment_token":"t","items":[{"product_id":1,"quantity":2}]}`, `{"items":null}`, `{`)
}

func FuzzDecodeCredentials(f *testing.F) {
	fuzzDecoder[credentials](f, `{"email":"a@b.c","password":"12345678","name":"A"}`, `{"email":1}`)
}

func FuzzDecodeCartItem(f *testing.F) {
	fuzzDecoder[cartItemRequest](f, `{"quantity":1}`, `{"quantity":-1}`, `{"quantity":1e99}`)
}

func FuzzDecodeProductUpdate(f *testing.F) {
	fuzzDecoder[productUpdate](f, `{"price":{"amount":100,"currency":"USD"}}`, `{"available":-1}`, `{"name":""}`)
}
