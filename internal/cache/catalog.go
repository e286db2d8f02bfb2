package cache

import (
	"context"
	"strconv"
	"strings"

	"github.com/briskhq/brisk/internal/catalog"
)

// ProductKey is the cache key of the encoded product id. (Keys name
// entries in L2 and in invalidations, which instances of different
// versions share during a rolling or canary deploy: keep the format.)
func ProductKey(id int64) string { return ProductKeyPrefix + strconv.FormatInt(id, 10) }

// ProductKeyPrefix is what ProductKey puts before the id's decimal digits.
const ProductKeyPrefix = "product/"

// ListingKey is the cache key of the encoded listing or search page q
// under the current catalog version. The text is reduced to its search
// terms, so queries that the stores answer alike share one entry.
func (c *Cache) ListingKey(q catalog.Query) string {
	var b strings.Builder
	b.WriteString(c.version.Load().key)
	b.WriteString("/list/")
	b.WriteString(strconv.FormatInt(q.AfterID, 10))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(q.Limit))
	b.WriteByte('/')
	b.WriteString(q.Category)
	if strings.TrimSpace(q.Text) != "" {
		b.WriteString("/t:")
		b.WriteString(strings.Join(catalog.SearchTerms(q.Text), " "))
	}
	return b.String()
}

// Product returns the encoded product id, fresh for ProductTTL; load
// encodes it from the store on a miss.
func (c *Cache) Product(ctx context.Context, id int64, load LoadFunc) (Result, error) {
	return c.Get(ctx, ProductKey(id), c.cfg.ProductTTL, load)
}

// Listing returns the encoded listing or search page q, fresh for
// ListTTL or until the next catalog change.
func (c *Cache) Listing(ctx context.Context, q catalog.Query, load LoadFunc) (Result, error) {
	return c.Get(ctx, c.ListingKey(q), c.cfg.ListTTL, load)
}

// ProductChanged invalidates product id in every layer of every instance
// and moves to a new catalog version, so listings and searches miss too.
// Call it after the change is committed.
func (c *Cache) ProductChanged(ctx context.Context, id int64) error {
	return c.Invalidate(ctx, true, ProductKey(id))
}

// Peek returns the fresh L1 entry of key when serving it needs nothing
// else: present, not expired, no early refresh due. It counts a hit.
// Anything else is false, and the caller takes the full path (Get).
//
// Peek tells freshness by L1's coarse clock (a variable's load; Get reads
// the precise one): an entry may be served about coarseClock past its TTL
// (more when the clock's goroutine runs late), and its early refresh may
// come as much later. Invalidation, which keeps changes visible within
// 100 ms, does not depend on either.
func (c *Cache) Peek(key string) (*Entry, bool) {
	e, ok := c.l1.GetIfPresent(key)
	if !ok {
		return nil, false
	}
	if now := c.coarseNano(); now >= e.expires || c.shouldRefresh(e, now) {
		return nil, false
	}
	c.st.l1Hits.Add(1)
	return e, true
}
