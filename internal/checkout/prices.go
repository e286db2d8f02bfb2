package checkout

import (
	"sync"

	"github.com/briskhq/brisk/internal/catalog"
)

// maxCachedPrices bounds the price cache.
const maxCachedPrices = 20_000

// priceCache remembers the name and price of products read from the
// catalog, for stores that check them in Begin (PriceChecker): an entry
// may be stale, but an order is never made at a stale price, since Begin
// refuses it and the service then reads the catalog. Safe for concurrent use.
type priceCache struct {
	mu sync.Mutex
	m  map[int64]catalog.Product
}

// get returns the cached products of ids, or false if one is missing.
func (c *priceCache) get(ids []int64) (map[int64]catalog.Product, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]catalog.Product, len(ids))
	for _, id := range ids {
		p, ok := c.m[id]
		if !ok {
			return nil, false
		}
		out[id] = p
	}
	return out, true
}

func (c *priceCache) put(ps map[int64]catalog.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[int64]catalog.Product)
	}
	for id, p := range ps {
		if _, ok := c.m[id]; !ok && len(c.m) >= maxCachedPrices {
			for k := range c.m { // arbitrary entry
				delete(c.m, k)
				break
			}
		}
		// Only what pricing uses is kept.
		c.m[id] = catalog.Product{ID: p.ID, Name: p.Name, Price: p.Price}
	}
}

func (c *priceCache) drop(lines []Line) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range lines {
		delete(c.m, l.ProductID)
	}
}
