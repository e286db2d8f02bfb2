package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeBytes(w, http.StatusOK, "application/json", []byte(`{"status":"ok"}`))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		writeBytes(w, http.StatusServiceUnavailable, "application/json", []byte(`{"status":"draining"}`))
		return
	}
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeBytes(w, http.StatusServiceUnavailable, "application/json", []byte(`{"status":"unavailable"}`))
			return
		}
	}
	writeBytes(w, http.StatusOK, "application/json", []byte(`{"status":"ready"}`))
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeBytes(w, http.StatusOK, "application/yaml", s.OpenAPI)
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) error {
	b, err := s.Tokens.Keys.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeBytes(w, http.StatusOK, "application/jwk-set+json", b)
	return nil
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := decodeJSON(r, &c); err != nil {
		return err
	}
	sess, err := s.Auth.Register(r.Context(), c.Email, c.Password, c.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, sess)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var c loginRequest
	if err := decodeJSON(r, &c); err != nil {
		return err
	}
	sess, err := s.Auth.Login(r.Context(), c.Email, c.Password)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, sess)
}

func (s *Server) categories(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.Catalog.Categories(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=60, stale-while-revalidate=300")
	return writeJSON(w, http.StatusOK, struct {
		Items []catalog.Category `json:"items"`
	}{cs})
}

type productPage struct {
	Items      []catalog.Product `json:"items"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// Cache-Control of catalog responses (built once: see cache.CacheControl).
var (
	listCacheControl    = cache.CacheControl("public, max-age=30, stale-while-revalidate=60")
	productCacheControl = cache.CacheControl("public, max-age=60, stale-while-revalidate=30")
)

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) error {
	q, err := catalog.ParseQuery(r.URL.Query())
	if err != nil {
		return err
	}
	load := func(ctx context.Context) ([]byte, error) {
		page, err := s.Catalog.ListProducts(ctx, q)
		if err != nil {
			return nil, err
		}
		if page.Items == nil {
			page.Items = []catalog.Product{}
		}
		b, err := json.Marshal(productPage{Items: page.Items, NextCursor: catalog.EncodeCursor(page.NextAfterID)})
		if err != nil {
			return nil, fmt.Errorf("encode products: %w", err)
		}
		return b, nil
	}
	if s.Cache == nil {
		return s.writeUncached(w, r, load, listCacheControl)
	}
	res, err := s.Cache.Listing(r.Context(), q, load)
	if err != nil {
		return err
	}
	cache.Write(w, r, res, listCacheControl)
	return nil
}

func (s *Server) getProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	load := func(ctx context.Context) ([]byte, error) {
		p, err := s.Catalog.Product(ctx, id)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode product: %w", err)
		}
		return b, nil
	}
	if s.Cache == nil {
		return s.writeUncached(w, r, load, productCacheControl)
	}
	res, err := s.Cache.Product(r.Context(), id, load)
	if err != nil {
		return err
	}
	cache.Write(w, r, res, productCacheControl)
	return nil
}

// writeUncached loads a public JSON body and sends it as a cached one
// would be sent: strong ETag (a hash of the exact bytes), 304 when
// If-None-Match has it.
func (s *Server) writeUncached(w http.ResponseWriter, r *http.Request, load cache.LoadFunc, cacheControl []string) error {
	b, err := load(r.Context())
	if err != nil {
		return err
	}
	cache.Write(w, r, cache.Result{Entry: cache.NewEntry(b)}, cacheControl)
	return nil
}

func (s *Server) getCart(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Carts.Get(r.Context(), claims(r.Context()).UserID)
	if err != nil {
		return err
	}
	return writePrivate(w, http.StatusOK, c)
}

type cartItemRequest struct {
	Quantity int `json:"quantity"`
}

func (s *Server) putCartItem(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathID(r, "product_id")
	if err != nil {
		return err
	}
	var req cartItemRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := s.Carts.Set(r.Context(), claims(r.Context()).UserID, pid, req.Quantity)
	if err != nil {
		return err
	}
	return writePrivate(w, http.StatusOK, c)
}

func (s *Server) deleteCartItem(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathID(r, "product_id")
	if err != nil {
		return err
	}
	c, err := s.Carts.Remove(r.Context(), claims(r.Context()).UserID, pid)
	if err != nil {
		return err
	}
	return writePrivate(w, http.StatusOK, c)
}

func writePrivate(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, status, v)
}

func (s *Server) checkout(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get("Idempotency-Key")
	if err := checkout.ValidateKey(key); err != nil {
		return err
	}
	var req checkout.Request
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Checkout.Checkout(r.Context(), claims(r.Context()).UserID, key, req, requestID(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	ct := "application/json"
	if res.Status >= 400 {
		ct = "application/problem+json"
	} else {
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(res.Body, &o) == nil && o.ID != "" {
			w.Header().Set("Location", "/v1/orders/"+o.ID)
		}
	}
	writeBytes(w, res.Status, ct, res.Body)
	return nil
}

type orderPage struct {
	Items      []checkout.Order `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if k != "cursor" && k != "limit" {
			return derrors.New(derrors.Invalid, "unknown query parameter %q", k)
		}
	}
	limit := 20
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			return derrors.New(derrors.Invalid, "limit must be an integer from 1 to 100")
		}
		limit = n
	}
	os, next, err := s.Checkout.Orders(r.Context(), claims(r.Context()).UserID, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	if os == nil {
		os = []checkout.Order{}
	}
	return writePrivate(w, http.StatusOK, orderPage{Items: os, NextCursor: next})
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) error {
	o, err := s.Checkout.Order(r.Context(), claims(r.Context()).UserID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writePrivate(w, http.StatusOK, o)
}

type productUpdate struct {
	Name        *string      `json:"name,omitempty"`
	Description *string      `json:"description,omitempty"`
	Price       *money.Money `json:"price,omitempty"`
	Available   *int64       `json:"available,omitempty"`
}

// validate checks an admin product update.
func (u productUpdate) validate() (catalog.Update, error) {
	if u.Name == nil && u.Description == nil && u.Price == nil && u.Available == nil {
		return catalog.Update{}, derrors.New(derrors.Invalid, "nothing to update: give name, description, price or available")
	}
	if u.Name != nil && (strings.TrimSpace(*u.Name) == "" || utf8.RuneCountInString(*u.Name) > 200) {
		return catalog.Update{}, derrors.New(derrors.Invalid, "name must be 1 to 200 characters")
	}
	if u.Description != nil && utf8.RuneCountInString(*u.Description) > 5000 {
		return catalog.Update{}, derrors.New(derrors.Invalid, "description is longer than 5000 characters")
	}
	if u.Price != nil {
		if u.Price.Amount <= 0 || u.Price.Amount > 100_000_000 {
			return catalog.Update{}, derrors.New(derrors.Invalid, "price.amount must be from 1 to 100000000 minor units")
		}
		if u.Price.Currency != "USD" {
			return catalog.Update{}, derrors.New(derrors.Invalid, "price.currency must be USD, the catalog's currency")
		}
	}
	if u.Available != nil && (*u.Available < 0 || *u.Available > 1_000_000_000) {
		return catalog.Update{}, derrors.New(derrors.Invalid, "available must be from 0 to 1000000000")
	}
	return catalog.Update{Name: u.Name, Description: u.Description, Price: u.Price, Available: u.Available}, nil
}

func (s *Server) updateProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req productUpdate
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	u, err := req.validate()
	if err != nil {
		return err
	}
	p, err := s.Catalog.UpdateProduct(r.Context(), id, u)
	if err != nil {
		return err
	}
	if s.Cache != nil {
		// Every layer of every instance, even if the client goes away;
		// a failed broadcast is retried in the background.
		if err := s.Cache.ProductChanged(context.WithoutCancel(r.Context()), id); err != nil {
			s.log.WarnContext(r.Context(), "cache invalidation incomplete", "product_id", id, "err", err)
		}
	}
	return writePrivate(w, http.StatusOK, p)
}
