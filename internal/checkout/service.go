package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
	"github.com/briskhq/brisk/internal/problem"
)

// Request is the body of POST /v1/checkout. Without Items the user's cart
// is checked out.
type Request struct {
	PaymentToken string        `json:"payment_token"`
	Items        []RequestItem `json:"items,omitempty"`
}

// RequestItem is one product bought directly.
type RequestItem struct {
	ProductID int64 `json:"product_id"`
	Quantity  int   `json:"quantity"`
}

// Config tunes the checkout service.
type Config struct {
	// PaymentTimeout bounds one authorization, all retries included.
	PaymentTimeout time.Duration
	// InFlightWait is how long a duplicate request waits for the first one
	// to finish before it is answered 409.
	InFlightWait time.Duration
	// PendingAfter is the age after which the reconciler, or a retry of the
	// same request, takes over an order still pending. It must exceed
	// PaymentTimeout, so that no live request still holds the order.
	PendingAfter time.Duration
	// PaymentGate, when set, is asked before any stock is reserved whether
	// a payment call would be refused without being sent (an open circuit
	// breaker). Its error, of kind derrors.Unavailable, answers the request
	// at once and nothing is written.
	PaymentGate func() error
}

// DefaultConfig is used for zero fields of Config.
var DefaultConfig = Config{PaymentTimeout: 3 * time.Second, InFlightWait: 5 * time.Second, PendingAfter: 10 * time.Second}

// Service runs checkouts and reconciles pending orders.
type Service struct {
	store    Store
	catalog  catalog.Store
	carts    cart.Store
	payments Payments
	cfg      Config
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	inflight map[string]chan struct{} // user/key -> closed when this process finishes it

	// prices is used when store is a PriceChecker (see there); nil otherwise.
	prices *priceCache
}

// NewService returns a checkout service.
func NewService(store Store, cat catalog.Store, carts cart.Store, payments Payments, cfg Config, log *slog.Logger) *Service {
	if cfg.PaymentTimeout <= 0 {
		cfg.PaymentTimeout = DefaultConfig.PaymentTimeout
	}
	if cfg.InFlightWait <= 0 {
		cfg.InFlightWait = DefaultConfig.InFlightWait
	}
	if cfg.PendingAfter <= cfg.PaymentTimeout {
		cfg.PendingAfter = max(DefaultConfig.PendingAfter, 2*cfg.PaymentTimeout)
	}
	s := &Service{
		store: store, catalog: cat, carts: carts, payments: payments, cfg: cfg, log: log,
		now: time.Now, inflight: make(map[string]chan struct{}),
	}
	if pc, ok := store.(PriceChecker); ok && pc.ChecksPrices() {
		s.prices = &priceCache{}
	}
	return s
}

// ValidateKey checks an Idempotency-Key header value: 1 to 255 visible ASCII characters.
func ValidateKey(key string) error {
	if key == "" {
		return derrors.New(derrors.Invalid, "Idempotency-Key header is required")
	}
	if len(key) > 255 {
		return derrors.New(derrors.Invalid, "Idempotency-Key is longer than 255 characters")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return derrors.New(derrors.Invalid, "Idempotency-Key must be visible ASCII characters")
		}
	}
	return nil
}

// Validate checks a request and returns it normalized (items sorted by id)
// together with the hash that identifies it for idempotency.
func (r Request) Validate() (Request, string, error) {
	if r.PaymentToken == "" {
		return r, "", derrors.New(derrors.Invalid, "payment_token is required")
	}
	if len(r.PaymentToken) > 64 {
		return r, "", derrors.New(derrors.Invalid, "payment_token is longer than 64 characters")
	}
	if len(r.Items) > cart.MaxLines {
		return r, "", derrors.New(derrors.Invalid, "items has more than %d lines", cart.MaxLines)
	}
	items := slices.Clone(r.Items)
	slices.SortFunc(items, func(a, b RequestItem) int { return cmpInt(a.ProductID, b.ProductID) })
	for i, it := range items {
		if it.ProductID <= 0 {
			return r, "", derrors.New(derrors.Invalid, "items: product_id must be a positive integer")
		}
		if it.Quantity < 1 || it.Quantity > cart.MaxQuantity {
			return r, "", derrors.New(derrors.Invalid, "items: quantity must be from 1 to %d", cart.MaxQuantity)
		}
		if i > 0 && items[i-1].ProductID == it.ProductID {
			return r, "", derrors.New(derrors.Invalid, "items: product %d is listed twice", it.ProductID)
		}
	}
	r.Items = items
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return r, hex.EncodeToString(sum[:]), nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// PaymentKey is the idempotency key sent to the payment service for a
// user's checkout key: the client's key, scoped to the user.
func PaymentKey(userID int64, key string) string { return fmt.Sprintf("u%d/%s", userID, key) }

// Checkout runs the checkout for (userID, key) and returns the response to
// send: a stored one for a replay. Errors are for requests that changed
// nothing (bad input, out of stock, key reused, still in flight, unavailable).
func (s *Service) Checkout(ctx context.Context, userID int64, key string, req Request, requestID string) (Response, error) {
	if err := ValidateKey(key); err != nil {
		return Response{}, err
	}
	req, hash, err := req.Validate()
	if err != nil {
		return Response{}, err
	}
	// Step 1: a known key is a replay, a mismatch or in flight. A new key
	// is the common case, so the key is not looked up first: Begin records
	// it and reports a known one (ErrKeyExists, below). Only when this
	// request cannot go on (payment gate closed, pricing failed, e.g. a
	// cart already cleared by the first request) is the key looked up, so
	// that a replay still gets its stored answer rather than that error.
	fromCart := len(req.Items) == 0
	var (
		lines []Line
		total money.Money
	)
	if s.cfg.PaymentGate != nil {
		err = s.cfg.PaymentGate()
	}
	if err == nil {
		lines, total, err = s.price(ctx, userID, req, s.prices != nil)
	}
	if err != nil {
		return s.storedOr(ctx, userID, key, hash, req, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Response{}, fmt.Errorf("checkout: order id: %w", err)
	}
	done := s.markInFlight(userID, key)
	defer done()

	// Step 2: pending order, reservation and key in one transaction.
	begin := Begin{
		OrderID: id.String(), UserID: userID, Key: key, RequestHash: hash,
		Lines: lines, Total: total, Now: s.now().UTC(),
	}
	rec, order, err := s.store.Begin(ctx, begin)
	for try := 0; errors.Is(err, ErrPriceChanged) && try < 3; try++ {
		// Priced from a stale cache entry (or the price changed since):
		// price again from the catalog.
		s.prices.drop(begin.Lines)
		if begin.Lines, begin.Total, err = s.price(ctx, userID, req, false); err != nil {
			// E.g. the cart was cleared meanwhile by a request with the
			// same key that went first: answer what it stored.
			done()
			return s.storedOr(ctx, userID, key, hash, req, err)
		}
		rec, order, err = s.store.Begin(ctx, begin)
	}
	if errors.Is(err, ErrKeyExists) {
		done()
		return s.existing(ctx, rec, hash, req)
	}
	if err != nil {
		return Response{}, fmt.Errorf("checkout: %w", err)
	}

	// Steps 3 and 4, detached from the client: once stock is reserved the
	// order is driven to an end even if the client goes away.
	res, err := s.drive(context.WithoutCancel(ctx), order, req.PaymentToken, requestID, true)
	if err == nil && fromCart && res.Status == http.StatusCreated {
		if cerr := s.carts.Clear(ctx, userID); cerr != nil {
			s.log.WarnContext(ctx, "clear cart after checkout", "user_id", userID, "err", cerr)
		}
	}
	return res, err
}

// storedOr answers a request that cannot go on with err: with the stored
// answer of its key when there is one (a replay), else err.
func (s *Service) storedOr(ctx context.Context, userID int64, key, hash string, req Request, err error) (Response, error) {
	rec, rerr := s.store.Record(ctx, userID, key)
	switch {
	case rerr == nil:
		return s.existing(ctx, rec, hash, req)
	case !errors.Is(rerr, derrors.NotFound):
		return Response{}, fmt.Errorf("checkout: %w", rerr)
	}
	return Response{}, err
}

// price resolves the lines of a request (its items or the user's cart) at
// current catalog prices, sorted by product id.
// With cached set, products are taken from the price cache when all are
// there (see PriceChecker).
func (s *Service) price(ctx context.Context, userID int64, req Request, cached bool) ([]Line, money.Money, error) {
	items := req.Items
	if len(items) == 0 {
		stored, err := s.carts.Items(ctx, userID)
		if err != nil {
			return nil, money.Money{}, fmt.Errorf("checkout: read cart: %w", err)
		}
		for _, it := range stored {
			items = append(items, RequestItem{ProductID: it.ProductID, Quantity: it.Quantity})
		}
		slices.SortFunc(items, func(a, b RequestItem) int { return cmpInt(a.ProductID, b.ProductID) })
	}
	if len(items) == 0 {
		return nil, money.Money{}, derrors.New(derrors.Invalid, "cart is empty and no items were given")
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	var (
		products map[int64]catalog.Product
		ok       bool
		err      error
	)
	if cached {
		products, ok = s.prices.get(ids)
	}
	if !ok {
		if products, err = s.catalog.Products(ctx, ids); err != nil {
			return nil, money.Money{}, fmt.Errorf("checkout: price: %w", err)
		}
		if s.prices != nil {
			s.prices.put(products)
		}
	}
	lines := make([]Line, len(items))
	var total money.Money
	for i, it := range items {
		p, ok := products[it.ProductID]
		if !ok {
			return nil, money.Money{}, derrors.New(derrors.NotFound, "product %d does not exist", it.ProductID)
		}
		lines[i] = Line{ProductID: p.ID, Name: p.Name, Quantity: it.Quantity, UnitPrice: p.Price}
		if total, err = total.Add(p.Price.Times(int64(it.Quantity))); err != nil {
			return nil, money.Money{}, derrors.New(derrors.Invalid, "items are priced in different currencies")
		}
	}
	return lines, total, nil
}

// existing answers a request whose key is already recorded.
func (s *Service) existing(ctx context.Context, rec Record, hash string, req Request) (Response, error) {
	if rec.RequestHash != hash {
		return Response{}, derrors.Wrap(derrors.Mismatch, ErrKeyExists, "Idempotency-Key was already used with a different request body")
	}
	if rec.Done() {
		return rec.Response, nil
	}
	rec, err := s.wait(ctx, rec)
	if err != nil {
		return Response{}, err
	}
	if rec.Done() {
		return rec.Response, nil
	}
	// Still pending: take the order over once no live request can hold it.
	// Driving a pending order is safe from several actors at once: the
	// payment is idempotent per key and every transition is conditional.
	order, err := s.store.Order(ctx, rec.UserID, rec.OrderID)
	if err != nil {
		return Response{}, fmt.Errorf("checkout: %w", err)
	}
	if order.Status == StatusPending && s.now().Sub(order.CreatedAt) >= s.cfg.PaymentTimeout+time.Second {
		return s.drive(context.WithoutCancel(ctx), order, req.PaymentToken, "", false)
	}
	return Response{}, derrors.New(derrors.Conflict, "a request with this Idempotency-Key is still in flight; retry later")
}

// wait polls the key's record until it has a response, the wait bound
// passes or ctx ends; a request in flight in this process is waited for
// without polling.
func (s *Service) wait(ctx context.Context, rec Record) (Record, error) {
	deadline := time.NewTimer(s.cfg.InFlightWait)
	defer deadline.Stop()
	delay := 5 * time.Millisecond
	for {
		s.mu.Lock()
		ch := s.inflight[inflightKey(rec.UserID, rec.Key)]
		s.mu.Unlock()
		tick := time.NewTimer(delay)
		if ch != nil {
			tick.Stop() // woken by the local request instead
		} else {
			delay = min(2*delay, 100*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			tick.Stop()
			return rec, ctx.Err()
		case <-deadline.C:
			tick.Stop()
			return rec, nil
		case <-ch:
		case <-tick.C:
		}
		tick.Stop()
		cur, err := s.store.Record(ctx, rec.UserID, rec.Key)
		if errors.Is(err, derrors.NotFound) {
			// The first request released its order (payment not sent).
			return rec, derrors.Wrap(derrors.Unavailable, ErrNotSent, "the payment service is unavailable and nothing was charged; retry later with the same Idempotency-Key")
		}
		if err != nil {
			return rec, fmt.Errorf("checkout: %w", err)
		}
		if cur.Done() {
			return cur, nil
		}
		rec = cur
	}
}

func inflightKey(userID int64, key string) string { return fmt.Sprintf("%d/%s", userID, key) }

func (s *Service) markInFlight(userID int64, key string) (done func()) {
	k := inflightKey(userID, key)
	ch := make(chan struct{})
	s.mu.Lock()
	if _, busy := s.inflight[k]; busy {
		s.mu.Unlock()
		return func() {}
	}
	s.inflight[k] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.inflight, k)
			s.mu.Unlock()
			close(ch)
		})
	}
}

// drive runs steps 3 and 4 for a pending order: authorize, then mark it
// paid or failed. When the payment's outcome is unknown the order stays
// pending for a retry or the reconciler, and the client gets a 503. When
// the payment was definitely not sent (ErrNotSent) and this request made
// the order (first), nothing can have been charged under its key: the
// order is released at once, stock and key included, and the client gets
// a 503 it can retry with the same key. An order taken over from an
// earlier request is never released here: that request's payment may
// have gone through; the reconciler settles it.
func (s *Service) drive(ctx context.Context, order Order, token, requestID string, first bool) (Response, error) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PaymentTimeout)
	p, err := s.payments.Authorize(pctx, Authorization{
		Key: PaymentKey(order.UserID, order.IdempotencyKey), OrderID: order.ID, Amount: order.Total, Token: token,
	})
	cancel()
	if err != nil {
		if errors.Is(err, derrors.Invalid) || errors.Is(err, derrors.Conflict) {
			// The processor refused the request itself (e.g. unknown card
			// token): nothing was charged.
			return s.fail(ctx, order, "payment rejected: "+derrors.Detail(err), http.StatusUnprocessableEntity, problem.TypeValidation, "Payment rejected", requestID)
		}
		if first && errors.Is(err, ErrNotSent) {
			return s.release(ctx, order, err)
		}
		s.log.WarnContext(ctx, "payment outcome unknown; order left pending", "order_id", order.ID, "err", err)
		return Response{}, derrors.Wrap(derrors.Unavailable, err, "the payment service is unavailable; retry with the same Idempotency-Key")
	}
	return s.settle(ctx, order, p, requestID)
}

// ReasonNotSent is the failure reason of an order released because its
// payment was never sent (see Store.Release). Its key was forgotten, so
// the key may have a later order too; nothing was ever charged for this one.
const ReasonNotSent = "payment service unavailable; nothing was charged"

// release undoes an order whose payment was not sent (see drive).
func (s *Service) release(ctx context.Context, order Order, cause error) (Response, error) {
	released, err := s.store.Release(ctx, order.ID, ReasonNotSent, s.now().UTC())
	if err != nil {
		s.log.WarnContext(ctx, "release order; left pending for the reconciler", "order_id", order.ID, "err", err)
		return Response{}, derrors.Wrap(derrors.Unavailable, cause, "the payment service is unavailable; retry with the same Idempotency-Key")
	}
	if !released {
		// Another actor finished the order first: its answer stands.
		o, err := s.store.Order(ctx, order.UserID, order.ID)
		if err != nil {
			return Response{}, fmt.Errorf("checkout: %w", err)
		}
		return s.stored(ctx, o)
	}
	s.log.InfoContext(ctx, "payment not sent; order released", "order_id", order.ID, "err", cause)
	return Response{}, derrors.Wrap(derrors.Unavailable, cause, "the payment service is unavailable and nothing was charged; retry later with the same Idempotency-Key")
}

// settle records a known payment outcome on the order.
func (s *Service) settle(ctx context.Context, order Order, p Payment, requestID string) (Response, error) {
	if p.Charged() {
		var (
			made     bool
			madeFor  Order
			response Response
		)
		o, err := s.store.Complete(ctx, order.ID, p.ID, func(o Order) Response {
			made, madeFor, response = true, o, orderResponse(o)
			return response
		}, s.now().UTC())
		if err != nil {
			return Response{}, fmt.Errorf("checkout: complete order %s: %w", order.ID, err)
		}
		// The response of a paid order is a function of the order alone
		// (orderResponse), and a paid order never changes. So when the
		// order Complete returns is the one this call made a response
		// for, that response is the one stored on the key, whoever stored
		// it (the store may have retried, and another actor may have
		// finished first): no need to read it back.
		if made && reflect.DeepEqual(madeFor, o) {
			return response, nil
		}
		return s.stored(ctx, o)
	}
	reason := "payment " + string(p.Status)
	if p.DeclineReason != "" {
		reason += ": " + p.DeclineReason
	}
	return s.fail(ctx, order, reason, http.StatusPaymentRequired, problem.TypePaymentDecline, "Payment declined", requestID)
}

func (s *Service) fail(ctx context.Context, order Order, reason string, status int, typ, title, requestID string) (Response, error) {
	o, err := s.store.Fail(ctx, order.ID, reason, func(o Order) Response {
		return Response{Status: status, Body: problem.Problem{
			Type: typ, Title: title, Status: status, Detail: reason, RequestID: requestID, OrderID: o.ID,
		}.JSON()}
	}, s.now().UTC())
	if err != nil {
		return Response{}, fmt.Errorf("checkout: fail order %s: %w", order.ID, err)
	}
	return s.stored(ctx, o)
}

// stored returns the response recorded on the order's key, which may be
// another actor's if it finished the order first.
func (s *Service) stored(ctx context.Context, o Order) (Response, error) {
	rec, err := s.store.Record(ctx, o.UserID, o.IdempotencyKey)
	if err != nil {
		return Response{}, fmt.Errorf("checkout: read stored response: %w", err)
	}
	if !rec.Done() {
		return Response{}, fmt.Errorf("checkout: order %s is %s but its key has no response", o.ID, o.Status)
	}
	return rec.Response, nil
}

func orderResponse(o Order) Response {
	b, err := json.Marshal(o)
	if err != nil {
		panic(fmt.Sprintf("encode order: %v", err)) // an Order always encodes
	}
	return Response{Status: http.StatusCreated, Body: b}
}
