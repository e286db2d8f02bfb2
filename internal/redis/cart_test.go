package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/redis"
	"github.com/briskhq/brisk/internal/storetest"
)

func TestCartContract(t *testing.T) {
	c := openClient(t)
	carts := redis.NewCarts(c, time.Hour)
	storetest.RunCart(t, func(t *testing.T) cart.Store { return carts })
}

func TestCartTTL(t *testing.T) {
	t.Parallel()
	c := openClient(t)
	carts := redis.NewCarts(c, time.Hour)
	ctx := t.Context()
	key := c.Prefix() + "cart:{42}"
	if err := carts.SetItem(ctx, 42, 7, 1, cart.MaxLines); err != nil {
		t.Fatal(err)
	}
	// Age the cart, then write again: the TTL is refreshed.
	if err := c.Redis().PExpire(ctx, key, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := carts.SetItem(ctx, 42, 8, 2, cart.MaxLines); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.Redis().PTTL(ctx, key).Result()
	if err != nil || ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL(%s) = %v, %v; want about 1h", key, ttl, err)
	}
	if err := carts.SetItem(ctx, 42, 9, 0, cart.MaxLines); !errors.Is(err, derrors.Invalid) {
		t.Errorf("SetItem(quantity 0) = %v, want kind Invalid", err)
	}
	if err := carts.SetItem(ctx, 42, 9, cart.MaxQuantity+1, cart.MaxLines); !errors.Is(err, derrors.Invalid) {
		t.Errorf("SetItem(quantity %d) = %v, want kind Invalid", cart.MaxQuantity+1, err)
	}
	// A corrupt line is an internal error, not a silent drop.
	c.Redis().HSet(ctx, key, "x", "1")
	if _, err := carts.Items(ctx, 42); err == nil || derrors.Kind(err) != nil {
		t.Errorf("Items(corrupt cart) = %v, want an internal error", err)
	}
}

func BenchmarkCart(b *testing.B) {
	c := openClient(b)
	carts := redis.NewCarts(c, time.Hour)
	ctx := context.Background()
	for i := range 10 {
		if err := carts.SetItem(ctx, 1, int64(i+1), 1, cart.MaxLines); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("SetItem", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if err := carts.SetItem(ctx, int64(i%100+2), int64(i%20+1), i%9+1, cart.MaxLines); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Items10", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := carts.Items(ctx, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	cache := redis.NewCache(c)
	cache.Set(ctx, "p", make([]byte, 512), time.Minute)
	b.Run("CacheGet512B", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := cache.Get(ctx, "p"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	lim := redis.NewLimiter(c)
	b.Run("Allow", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := lim.Allow(ctx, "bench", redis.PerSecond(1<<30)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
