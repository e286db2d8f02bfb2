package cache

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
)

// ProductKey is the cache key of the encoded product id.
func ProductKey(id int64) string { return "product/" + strconv.FormatInt(id, 10) }

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
// else: present, not expired, no early refresh due, at now (the cache's
// clock, Now). It counts a hit. Anything else is false, and the caller
// takes the full path (Get).
func (c *Cache) Peek(key string, now time.Time) (*Entry, bool) {
	e, ok := c.l1.GetIfPresent(key)
	if !ok {
		return nil, false
	}
	if now := now.UnixNano(); now >= e.expires || c.shouldRefresh(e, now) {
		return nil, false
	}
	c.st.l1Hits.Add(1)
	return e, true
}

// Now is the time on the cache's clock (Config.Now).
func (c *Cache) Now() time.Time { return c.cfg.Now() }
