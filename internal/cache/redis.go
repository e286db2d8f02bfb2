package cache

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/briskhq/brisk/internal/redis"
)

// RedisBus is the Bus on Redis: pub/sub on one channel for the messages
// and an INCR counter for the catalog version, both under the client's
// key prefix.
type RedisBus struct {
	c       *redis.Client
	channel string
	counter string
}

// NewRedisBus returns the Bus on c. Instances that share a cache must use
// the same channel and prefix.
func NewRedisBus(c *redis.Client, channel string) *RedisBus {
	return &RedisBus{c: c, channel: channel, counter: c.Prefix() + "cache:version:" + channel}
}

// Publish sends msg to every instance.
func (b *RedisBus) Publish(ctx context.Context, msg string) error {
	return b.c.Publish(ctx, b.channel, msg)
}

// Subscribe calls fn with each message until ctx ends.
func (b *RedisBus) Subscribe(ctx context.Context, fn func(msg string), onSubscribed func()) error {
	return b.c.Subscribe(ctx, b.channel, fn, redis.OnSubscribed(onSubscribed))
}

// NextVersion increments the shared counter, jumping past atLeast when
// the counter is behind (Redis lost it).
func (b *RedisBus) NextVersion(ctx context.Context, atLeast uint64) (uint64, error) {
	rdb := b.c.Redis()
	n, err := rdb.Incr(ctx, b.counter).Uint64()
	if err != nil {
		return 0, fmt.Errorf("next cache version: %w", err)
	}
	if n <= atLeast {
		if n, err = rdb.IncrBy(ctx, b.counter, int64(atLeast-n+1)).Uint64(); err != nil {
			return 0, fmt.Errorf("next cache version: %w", err)
		}
	}
	return n, nil
}

// Version reads the shared counter, raising it to atLeast when it is
// behind.
func (b *RedisBus) Version(ctx context.Context, atLeast uint64) (uint64, error) {
	rdb := b.c.Redis()
	n, err := rdb.Get(ctx, b.counter).Uint64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("read cache version: %w", err)
	}
	if n < atLeast {
		if n, err = rdb.IncrBy(ctx, b.counter, int64(atLeast-n)).Uint64(); err != nil {
			return 0, fmt.Errorf("read cache version: %w", err)
		}
	}
	return n, nil
}
