package httpapi

import (
	"testing"

	"github.com/briskhq/brisk/internal/cache"
)

// TestProductKey: the hit path takes exactly the paths whose id pathID
// accepts, under the key the cache stores them by; everything else goes
// to the chain, which answers it.
func TestProductKey(t *testing.T) {
	tests := []struct {
		path string
		id   int64
		ok   bool
	}{
		{"/v1/products/42", 42, true},
		{"/v1/products/9223372036854775807", 9223372036854775807, true},
		{"/v1/products/9223372036854775808", 0, false},
		{"/v1/products/042", 0, false},
		{"/v1/products/0", 0, false},
		{"/v1/products/-1", 0, false},
		{"/v1/products/", 0, false},
		{"/v1/products/4a", 0, false},
		{"/v1/products/42/", 0, false},
		{"/v1/products", 0, false},
		{"/v2/products/42", 0, false},
	}
	for _, tt := range tests {
		want := ""
		if tt.ok {
			want = cache.ProductKey(tt.id)
		}
		if key, ok := productKey(tt.path); key != want || ok != tt.ok {
			t.Errorf("productKey(%q) = %q, %v; want %q, %v", tt.path, key, ok, want, tt.ok)
		}
	}
}
