package cache_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/redis"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// fakeClock is a clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// memL2 is an in-memory L2 with the Redis client's semantics (TTL, no
// jitter), for tests that need many operations fast.
type memL2 struct {
	mu   sync.Mutex
	now  func() time.Time
	m    map[string]memItem
	gets atomic.Int64
	down atomic.Bool // every call fails, as in a Redis outage
}

type memItem struct {
	b   []byte
	exp time.Time
}

func newMemL2(now func() time.Time) *memL2 { return &memL2{now: now, m: map[string]memItem{}} }

func (l *memL2) Get(ctx context.Context, key string) ([]byte, bool, error) {
	l.gets.Add(1)
	if l.down.Load() {
		return nil, false, errBusDown
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	it, ok := l.m[key]
	if !ok || !l.now().Before(it.exp) {
		return nil, false, nil
	}
	return it.b, true, nil
}

func (l *memL2) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if l.down.Load() {
		return errBusDown
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[key] = memItem{b: append([]byte(nil), val...), exp: l.now().Add(ttl)}
	return nil
}

func (l *memL2) Del(ctx context.Context, keys ...string) error {
	if l.down.Load() {
		return errBusDown
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.m, k)
	}
	return nil
}

// redisLayers returns an L2 and a Bus on the test Redis under prefix, and
// a second client for the same prefix when two instances are wanted.
func redisLayers(t testing.TB, url, prefix string) (*redis.Cache, *cache.RedisBus) {
	t.Helper()
	c, err := redis.Open(context.Background(), url, testLogger(t), redis.WithPrefix(prefix))
	if err != nil {
		t.Fatalf("redis.Open(%s) = %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return redis.NewCache(c), cache.NewRedisBus(c, "cache-inv")
}

// newCache returns a cache closed at the end of the test, with Run going
// when it has a Bus.
func newCache(t testing.TB, cfg cache.Config) *cache.Cache {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := cache.New(cfg)
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
	})
	select {
	case <-c.Subscribed():
	case <-time.After(5 * time.Second):
		t.Fatal("cache did not subscribe within 5s")
	}
	return c
}

// store is a fake source of encoded values: it counts loads, can block
// them and can fail.
type store struct {
	loads   atomic.Int64
	mu      sync.Mutex
	values  map[string]string
	fail    error
	gate    chan struct{} // when not nil, loads wait for it to close
	advance func()        // when not nil, called by each load (moves a fake clock)
}

func newStore() *store { return &store{values: map[string]string{}} }

func (s *store) set(key, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = v
}

func (s *store) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// loader returns the LoadFunc of key.
func (s *store) loader(key string) cache.LoadFunc {
	return func(ctx context.Context) ([]byte, error) {
		s.loads.Add(1)
		s.mu.Lock()
		gate, adv := s.gate, s.advance
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if adv != nil {
			adv()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail != nil {
			return nil, s.fail
		}
		return []byte(s.values[key]), nil
	}
}

func queryOf(text, category string) catalog.Query {
	return catalog.Query{Text: text, Category: category, Limit: catalog.DefaultLimit}
}

// memBus is an in-memory Bus shared by the caches of a test; it can fail
// every call, as a Redis outage does. Messages are delivered at once.
type memBus struct {
	mu        sync.Mutex
	down      bool
	n         uint64
	subs      []func(string)
	published int
}

var errBusDown = errors.New("bus down")

func (b *memBus) setDown(v bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = v
}

func (b *memBus) Publish(ctx context.Context, msg string) error {
	b.mu.Lock()
	if b.down {
		b.mu.Unlock()
		return errBusDown
	}
	b.published++
	subs := append([]func(string){}, b.subs...)
	b.mu.Unlock()
	for _, fn := range subs {
		fn(msg)
	}
	return nil
}

func (b *memBus) Subscribe(ctx context.Context, fn func(string), onSubscribed func()) error {
	b.mu.Lock()
	b.subs = append(b.subs, fn)
	b.mu.Unlock()
	onSubscribed()
	<-ctx.Done()
	return nil
}

func (b *memBus) NextVersion(ctx context.Context, atLeast uint64) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return 0, errBusDown
	}
	b.n = max(b.n, atLeast) + 1
	return b.n, nil
}

func (b *memBus) Version(ctx context.Context, atLeast uint64) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return 0, errBusDown
	}
	b.n = max(b.n, atLeast)
	return b.n, nil
}
