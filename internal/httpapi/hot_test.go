package httpapi

import "testing"

// TestProductID: the hit path takes exactly the paths whose id pathID
// accepts; everything else goes to the chain, which answers it.
func TestProductID(t *testing.T) {
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
		id, ok := productID(tt.path)
		if id != tt.id || ok != tt.ok {
			t.Errorf("productID(%q) = %d, %v; want %d, %v", tt.path, id, ok, tt.id, tt.ok)
		}
	}
}
