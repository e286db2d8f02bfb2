package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

// spanner starts the client spans of one dependency ("sqlite",
// "postgresql", "redis"): one span per call, named "<store>.<Method>".
type spanner struct {
	tracer trace.Tracer
	opts   []trace.SpanStartOption
}

func newSpanner(t *Tracing, system string) spanner {
	return spanner{
		tracer: t.Tracer(),
		opts: []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", system)),
		},
	}
}

func (s spanner) start(ctx context.Context, name string) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, name, s.opts...)
}

// end ends span, marking it failed for errors other than the expected
// answers (not found, invalid, conflict and the like).
func end(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		if k := derrors.Kind(err); k != nil && k != derrors.Unavailable {
			span.SetAttributes(attribute.String("error.kind", k.Error()))
		} else {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// TraceCatalog wraps s so that each call is a span; system names the
// database ("sqlite", "postgresql").
func TraceCatalog(s catalog.Store, t *Tracing, system string) catalog.Store {
	if !t.Enabled() {
		return s
	}
	return tracedCatalog{s, newSpanner(t, system)}
}

type tracedCatalog struct {
	s catalog.Store
	t spanner
}

func (c tracedCatalog) Product(ctx context.Context, id int64) (catalog.Product, error) {
	ctx, span := c.t.start(ctx, "catalog.Product")
	p, err := c.s.Product(ctx, id)
	end(span, err)
	return p, err
}

func (c tracedCatalog) Products(ctx context.Context, ids []int64) (map[int64]catalog.Product, error) {
	ctx, span := c.t.start(ctx, "catalog.Products")
	ps, err := c.s.Products(ctx, ids)
	end(span, err)
	return ps, err
}

func (c tracedCatalog) ListProducts(ctx context.Context, q catalog.Query) (catalog.Page, error) {
	ctx, span := c.t.start(ctx, "catalog.ListProducts")
	p, err := c.s.ListProducts(ctx, q)
	end(span, err)
	return p, err
}

func (c tracedCatalog) Categories(ctx context.Context) ([]catalog.Category, error) {
	ctx, span := c.t.start(ctx, "catalog.Categories")
	cs, err := c.s.Categories(ctx)
	end(span, err)
	return cs, err
}

func (c tracedCatalog) UpdateProduct(ctx context.Context, id int64, u catalog.Update) (catalog.Product, error) {
	ctx, span := c.t.start(ctx, "catalog.UpdateProduct")
	p, err := c.s.UpdateProduct(ctx, id, u)
	end(span, err)
	return p, err
}

func (c tracedCatalog) Stock(ctx context.Context, ids []int64) ([]catalog.Stock, error) {
	ctx, span := c.t.start(ctx, "catalog.Stock")
	st, err := c.s.Stock(ctx, ids)
	end(span, err)
	return st, err
}

// TraceCheckout wraps s so that each call is a span.
func TraceCheckout(s checkout.Store, t *Tracing, system string) checkout.Store {
	if !t.Enabled() {
		return s
	}
	return tracedCheckout{s, newSpanner(t, system)}
}

type tracedCheckout struct {
	s checkout.Store
	t spanner
}

// ChecksPrices passes on the store's checkout.PriceChecker answer: the
// tracing must not switch the service's price cache off.
func (c tracedCheckout) ChecksPrices() bool {
	pc, ok := c.s.(checkout.PriceChecker)
	return ok && pc.ChecksPrices()
}

func (c tracedCheckout) Begin(ctx context.Context, b checkout.Begin) (checkout.Record, checkout.Order, error) {
	ctx, span := c.t.start(ctx, "checkout.Begin")
	rec, o, err := c.s.Begin(ctx, b)
	end(span, err)
	return rec, o, err
}

func (c tracedCheckout) Record(ctx context.Context, userID int64, key string) (checkout.Record, error) {
	ctx, span := c.t.start(ctx, "checkout.Record")
	rec, err := c.s.Record(ctx, userID, key)
	end(span, err)
	return rec, err
}

func (c tracedCheckout) Complete(ctx context.Context, orderID, paymentID string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	ctx, span := c.t.start(ctx, "checkout.Complete")
	o, err := c.s.Complete(ctx, orderID, paymentID, resp, now)
	end(span, err)
	return o, err
}

func (c tracedCheckout) Fail(ctx context.Context, orderID, reason string, resp func(checkout.Order) checkout.Response, now time.Time) (checkout.Order, error) {
	ctx, span := c.t.start(ctx, "checkout.Fail")
	o, err := c.s.Fail(ctx, orderID, reason, resp, now)
	end(span, err)
	return o, err
}

func (c tracedCheckout) Release(ctx context.Context, orderID, reason string, now time.Time) (bool, error) {
	ctx, span := c.t.start(ctx, "checkout.Release")
	ok, err := c.s.Release(ctx, orderID, reason, now)
	end(span, err)
	return ok, err
}

func (c tracedCheckout) Order(ctx context.Context, userID int64, orderID string) (checkout.Order, error) {
	ctx, span := c.t.start(ctx, "checkout.Order")
	o, err := c.s.Order(ctx, userID, orderID)
	end(span, err)
	return o, err
}

func (c tracedCheckout) Orders(ctx context.Context, userID int64, after string, limit int) ([]checkout.Order, error) {
	ctx, span := c.t.start(ctx, "checkout.Orders")
	os, err := c.s.Orders(ctx, userID, after, limit)
	end(span, err)
	return os, err
}

func (c tracedCheckout) Pending(ctx context.Context, cutoff time.Time, limit int) ([]checkout.Order, error) {
	ctx, span := c.t.start(ctx, "checkout.Pending")
	os, err := c.s.Pending(ctx, cutoff, limit)
	end(span, err)
	return os, err
}

// TraceCarts wraps s so that each call is a span.
func TraceCarts(s cart.Store, t *Tracing, system string) cart.Store {
	if !t.Enabled() {
		return s
	}
	return tracedCarts{s, newSpanner(t, system)}
}

type tracedCarts struct {
	s cart.Store
	t spanner
}

func (c tracedCarts) Items(ctx context.Context, userID int64) ([]cart.Item, error) {
	ctx, span := c.t.start(ctx, "cart.Items")
	items, err := c.s.Items(ctx, userID)
	end(span, err)
	return items, err
}

func (c tracedCarts) SetItem(ctx context.Context, userID, productID int64, quantity, maxLines int) error {
	ctx, span := c.t.start(ctx, "cart.SetItem")
	err := c.s.SetItem(ctx, userID, productID, quantity, maxLines)
	end(span, err)
	return err
}

func (c tracedCarts) RemoveItem(ctx context.Context, userID, productID int64) error {
	ctx, span := c.t.start(ctx, "cart.RemoveItem")
	err := c.s.RemoveItem(ctx, userID, productID)
	end(span, err)
	return err
}

func (c tracedCarts) Clear(ctx context.Context, userID int64) error {
	ctx, span := c.t.start(ctx, "cart.Clear")
	err := c.s.Clear(ctx, userID)
	end(span, err)
	return err
}

// TraceUsers wraps s so that each call is a span.
func TraceUsers(s auth.Store, t *Tracing, system string) auth.Store {
	if !t.Enabled() {
		return s
	}
	return tracedUsers{s, newSpanner(t, system)}
}

type tracedUsers struct {
	s auth.Store
	t spanner
}

func (u tracedUsers) CreateUser(ctx context.Context, user auth.User) (auth.User, error) {
	ctx, span := u.t.start(ctx, "users.CreateUser")
	out, err := u.s.CreateUser(ctx, user)
	end(span, err)
	return out, err
}

func (u tracedUsers) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	ctx, span := u.t.start(ctx, "users.UserByEmail")
	out, err := u.s.UserByEmail(ctx, email)
	end(span, err)
	return out, err
}

func (u tracedUsers) UserByID(ctx context.Context, id int64) (auth.User, error) {
	ctx, span := u.t.start(ctx, "users.UserByID")
	out, err := u.s.UserByID(ctx, id)
	end(span, err)
	return out, err
}

func (u tracedUsers) SetPassword(ctx context.Context, id int64, hash string, role auth.Role) error {
	ctx, span := u.t.start(ctx, "users.SetPassword")
	err := u.s.SetPassword(ctx, id, hash, role)
	end(span, err)
	return err
}

// CacheL2 is the shared (L2) layer of the response cache, as
// internal/cache declares it (cache.L2).
type CacheL2 interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Del(ctx context.Context, keys ...string) error
}

// TraceCacheL2 wraps the response cache's shared layer so that each call
// is a span ("cache.l2.Get" with cache.hit). L1 hits stay span-free: a
// span would cost more than the hit.
func TraceCacheL2(l2 CacheL2, t *Tracing, system string) CacheL2 {
	if !t.Enabled() {
		return l2
	}
	return tracedL2{l2, newSpanner(t, system)}
}

type tracedL2 struct {
	l2 CacheL2
	t  spanner
}

func (c tracedL2) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, span := c.t.start(ctx, "cache.l2.Get")
	b, ok, err := c.l2.Get(ctx, key)
	if span.IsRecording() {
		span.SetAttributes(attribute.Bool("cache.hit", ok))
	}
	end(span, err)
	return b, ok, err
}

func (c tracedL2) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	ctx, span := c.t.start(ctx, "cache.l2.Set")
	err := c.l2.Set(ctx, key, val, ttl)
	end(span, err)
	return err
}

func (c tracedL2) Del(ctx context.Context, keys ...string) error {
	ctx, span := c.t.start(ctx, "cache.l2.Del")
	err := c.l2.Del(ctx, keys...)
	end(span, err)
	return err
}
