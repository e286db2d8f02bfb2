package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/derrors"
)

// DefaultCartTTL is how long an untouched cart lives.
const DefaultCartTTL = 30 * 24 * time.Hour

// Carts is a cart.Store keeping one hash per user, product id -> quantity,
// under "cart:{<userID>}" (the braces are a Redis Cluster hash tag). Every
// write refreshes the cart's TTL.
type Carts struct {
	c   *Client
	ttl time.Duration
}

var _ cart.Store = (*Carts)(nil)

// NewCarts returns the cart store on c; ttl <= 0 means DefaultCartTTL.
func NewCarts(c *Client, ttl time.Duration) *Carts {
	if ttl <= 0 {
		ttl = DefaultCartTTL
	}
	return &Carts{c: c, ttl: ttl}
}

func (s *Carts) key(userID int64) string {
	return s.c.key("cart:{" + strconv.FormatInt(userID, 10) + "}")
}

// Items returns the user's cart lines, ordered by product id.
func (s *Carts) Items(ctx context.Context, userID int64) ([]cart.Item, error) {
	m, err := s.c.rdb.HGetAll(ctx, s.key(userID)).Result()
	if err != nil {
		return nil, wrapErr("get cart", err)
	}
	items := make([]cart.Item, 0, len(m))
	for f, v := range m {
		id, err1 := strconv.ParseInt(f, 10, 64)
		q, err2 := strconv.Atoi(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("get cart of user %d: malformed line %q=%q", userID, f, v)
		}
		items = append(items, cart.Item{ProductID: id, Quantity: q})
	}
	slices.SortFunc(items, func(a, b cart.Item) int { return cmp.Compare(a.ProductID, b.ProductID) })
	return items, nil
}

// setItem sets one line unless that would add a line beyond the limit,
// and refreshes the TTL, atomically.
// KEYS[1] cart; ARGV: product id, quantity, max lines, TTL in ms.
// Returns 1 when set, 0 when the cart is full.
var setItem = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
	return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// SetItem sets the quantity of one line (1..cart.MaxQuantity), adding it
// if absent; it fails with derrors.Conflict if that would exceed maxLines
// distinct products.
func (s *Carts) SetItem(ctx context.Context, userID, productID int64, quantity, maxLines int) error {
	if quantity < 1 || quantity > cart.MaxQuantity {
		return derrors.New(derrors.Invalid, "quantity must be from 1 to %d", cart.MaxQuantity)
	}
	ok, err := setItem.Run(ctx, s.c.rdb, []string{s.key(userID)},
		productID, quantity, maxLines, s.ttl.Milliseconds()).Int()
	if err != nil {
		return wrapErr("set cart item", err)
	}
	if ok == 0 {
		return derrors.New(derrors.Conflict, "the cart holds at most %d different products", maxLines)
	}
	return nil
}

// RemoveItem deletes one line; removing an absent line is not an error.
func (s *Carts) RemoveItem(ctx context.Context, userID, productID int64) error {
	return wrapErr("remove cart item", s.c.rdb.HDel(ctx, s.key(userID), strconv.FormatInt(productID, 10)).Err())
}

// Clear empties the cart.
func (s *Carts) Clear(ctx context.Context, userID int64) error {
	return wrapErr("clear cart", s.c.rdb.Del(ctx, s.key(userID)).Err())
}
