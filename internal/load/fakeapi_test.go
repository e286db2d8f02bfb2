package load

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAPI is a small in-memory stand-in for the brisk API with the same
// routes and JSON shapes, strict about what a well-behaved client sends.
type fakeAPI struct {
	products int64

	mu        sync.Mutex
	passwords map[string]string // email -> password
	tokens    map[string]string // token -> email
	keys      map[string]string // idempotency key -> order id
	orders    []string
	hits      map[int64]int  // product id -> GET count
	routes    map[string]int // route -> requests
	bad       []string       // requests the fake rejected as malformed
}

func newFakeAPI(t *testing.T, products int64) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{
		products:  products,
		passwords: map[string]string{},
		tokens:    map[string]string{},
		keys:      map[string]string{},
		hits:      map[int64]int{},
		routes:    map[string]int{},
	}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/register", f.register)
	mux.HandleFunc("POST /v1/auth/login", f.login)
	mux.HandleFunc("GET /v1/products/{id}", f.product)
	mux.HandleFunc("GET /v1/products", f.search)
	mux.HandleFunc("GET /v1/cart", f.cart)
	mux.HandleFunc("PUT /v1/cart/items/{id}", f.cart)
	mux.HandleFunc("DELETE /v1/cart/items/{id}", f.cart)
	mux.HandleFunc("POST /v1/checkout", f.checkout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req")
		f.mu.Lock()
		f.routes[r.Method+" "+r.Pattern]++
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) reject(w http.ResponseWriter, r *http.Request, status int, why string) {
	f.mu.Lock()
	f.bad = append(f.bad, r.Method+" "+r.URL.String()+": "+why)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"title":%q,"status":%d}`, why, status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (f *fakeAPI) authAnswer(email string) map[string]any {
	tok := "tok-" + email
	f.tokens[tok] = email
	return map[string]any{"token": tok, "token_type": "Bearer", "user": map[string]any{"email": email, "role": "shopper"}}
}

func (f *fakeAPI) register(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.Email == "" || len(c.Password) < 8 || c.Name == "" {
		f.reject(w, r, 400, "bad registration")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.passwords[c.Email]; ok {
		w.WriteHeader(http.StatusConflict)
		return
	}
	f.passwords[c.Email] = c.Password
	writeJSON(w, http.StatusCreated, f.authAnswer(c.Email))
}

func (f *fakeAPI) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		f.reject(w, r, 400, "bad login")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pw, ok := f.passwords[c.Email]; !ok || pw != c.Password {
		f.bad = append(f.bad, "login: wrong password for "+c.Email)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, f.authAnswer(c.Email))
}

func (f *fakeAPI) productID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 || id > f.products {
		f.reject(w, r, 404, "no such product")
		return 0, false
	}
	return id, true
}

func (f *fakeAPI) product(w http.ResponseWriter, r *http.Request) {
	id, ok := f.productID(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	f.hits[id]++
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"id": id, "name": "x", "price": map[string]any{"amount": 100, "currency": "USD"}})
}

func (f *fakeAPI) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("q") == "" && q.Get("category") == "" || q.Get("limit") != "20" {
		f.reject(w, r, 400, "bad search")
		return
	}
	writeJSON(w, 200, map[string]any{"items": []any{}, "next_cursor": ""})
}

// user returns the signed-in user's email, or "" after answering 401.
func (f *fakeAPI) user(w http.ResponseWriter, r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	email := f.tokens[tok]
	f.mu.Unlock()
	if !ok || email == "" {
		f.reject(w, r, 401, "unauthenticated")
		return ""
	}
	return email
}

func (f *fakeAPI) cart(w http.ResponseWriter, r *http.Request) {
	if f.user(w, r) == "" {
		return
	}
	if r.Method != http.MethodGet {
		if _, ok := f.productID(w, r); !ok {
			return
		}
	}
	if r.Method == http.MethodPut {
		var body struct {
			Quantity int `json:"quantity"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Quantity < 1 {
			f.reject(w, r, 400, "bad quantity")
			return
		}
	}
	writeJSON(w, 200, map[string]any{"items": []any{}})
}

func (f *fakeAPI) checkout(w http.ResponseWriter, r *http.Request) {
	if f.user(w, r) == "" {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	var body struct {
		PaymentToken string `json:"payment_token"`
		Items        []struct {
			ProductID int64 `json:"product_id"`
			Quantity  int   `json:"quantity"`
		} `json:"items"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || key == "" || body.PaymentToken == "" ||
		len(body.Items) == 0 || body.Items[0].ProductID < 1 || body.Items[0].ProductID > f.products || body.Items[0].Quantity < 1 {
		f.reject(w, r, 400, "bad checkout")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[key]; ok {
		f.bad = append(f.bad, "idempotency key reused: "+key)
		writeJSON(w, http.StatusCreated, map[string]any{"id": f.keys[key], "status": "paid"})
		return
	}
	id := fmt.Sprintf("ord-%d", len(f.orders)+1)
	f.keys[key] = id
	f.orders = append(f.orders, id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "status": "paid"})
}
