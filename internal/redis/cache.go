package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TTLJitter is the relative spread of cache TTLs (±10%), so that entries
// written together do not all expire, and reload, together.
const TTLJitter = 0.10

// Cache is the shared L2 cache: opaque values (encoded responses) under
// "cache:<key>".
type Cache struct {
	c *Client
}

// NewCache returns the L2 cache on c.
func NewCache(c *Client) *Cache { return &Cache{c: c} }

func (s *Cache) key(k string) string { return s.c.key("cache:" + k) }

// Get returns the value under key and whether it was there.
func (s *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := s.c.rdb.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapErr("cache get", err)
	}
	return b, true, nil
}

// Set stores val under key for ttl ± TTLJitter.
func (s *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return wrapErr("cache set", s.c.rdb.Set(ctx, s.key(key), val, jitter(ttl)).Err())
}

// jitter returns ttl scaled by a random factor in [1-TTLJitter, 1+TTLJitter],
// at least 1ms (a zero TTL would mean "forever" to Redis).
func jitter(ttl time.Duration) time.Duration {
	f := 1 + TTLJitter*(2*rand.Float64()-1)
	return max(time.Millisecond, time.Duration(float64(ttl)*f))
}

// Del removes keys. Each key is its own DEL in one pipeline, so keys on
// different Redis Cluster slots are fine.
func (s *Cache) Del(ctx context.Context, keys ...string) error {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		return wrapErr("cache delete", s.c.rdb.Del(ctx, s.key(keys[0])).Err())
	}
	_, err := s.c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, s.key(k))
		}
		return nil
	})
	return wrapErr("cache delete", err)
}
