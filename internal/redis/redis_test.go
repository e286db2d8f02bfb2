package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/redis"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openClient returns a client on the test Redis with a prefix of its own.
func openClient(t testing.TB) *redis.Client {
	t.Helper()
	url, prefix := redistest.New(t)
	c, err := redis.Open(context.Background(), url, testLogger(t), redis.WithPrefix(prefix))
	if err != nil {
		t.Fatalf("Open(%s) = %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startServer starts a private redis-server (see redistest.StartServer).
func startServer(t *testing.T) *server { return &server{redistest.StartServer(t)} }

type server struct{ *redistest.Server }

func (s *server) url() string { return s.URL() }
func (s *server) start()      { s.Start() }
func (s *server) stop()       { s.Stop() }

// eventually retries f until it returns nil or 5s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 5s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c, err := redis.Open(t.Context(), "redis://127.0.0.1:1/0", testLogger(t))
	if err == nil {
		c.Close()
		t.Fatal("Open(closed port) = nil error")
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("Open(closed port) took %v, want under 300ms", d)
	}
	if !errors.Is(err, derrors.Unavailable) {
		t.Errorf("Open(closed port) = %v, want kind Unavailable", err)
	}
	if _, err := redis.Open(t.Context(), "http://nope", testLogger(t)); !errors.Is(err, derrors.Invalid) {
		t.Errorf("Open(bad URL) = %v, want kind Invalid", err)
	}
}

// TestNewWhileDown starts a client while Redis is down: calls fail fast
// as Unavailable, then work once Redis is up.
func TestNewWhileDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops its own redis-server")
	}
	t.Parallel()
	srv := startServer(t)
	srv.stop()
	c, err := redis.New(srv.url(), testLogger(t))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	defer c.Close()
	cache := redis.NewCache(c)
	start := time.Now()
	if _, _, err := cache.Get(t.Context(), "k"); !errors.Is(err, derrors.Unavailable) || time.Since(start) > 300*time.Millisecond {
		t.Errorf("Get with Redis down = %v after %v, want kind Unavailable within 300ms", err, time.Since(start))
	}
	srv.start()
	eventually(t, "Set once Redis is up", func() error { return cache.Set(t.Context(), "k", []byte("v"), time.Minute) })
}

// TestOutageAndRecovery stops a Redis under a connected client: every
// component fails fast with derrors.Unavailable, and works again once
// Redis is back, without a new client.
func TestOutageAndRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops its own redis-server")
	}
	t.Parallel()
	srv := startServer(t)
	c, err := redis.Open(t.Context(), srv.url(), testLogger(t), redis.WithPrefix("t:"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	carts, cache, limiter := redis.NewCarts(c, time.Hour), redis.NewCache(c), redis.NewLimiter(c)
	ctx := t.Context()
	if err := carts.SetItem(ctx, 1, 10, 2, 50); err != nil {
		t.Fatalf("SetItem before outage = %v", err)
	}

	srv.stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"Items", func() error { _, err := carts.Items(ctx, 1); return err }},
		{"SetItem", func() error { return carts.SetItem(ctx, 1, 11, 1, 50) }},
		{"RemoveItem", func() error { return carts.RemoveItem(ctx, 1, 10) }},
		{"Clear", func() error { return carts.Clear(ctx, 1) }},
		{"cache Get", func() error { _, _, err := cache.Get(ctx, "k"); return err }},
		{"cache Set", func() error { return cache.Set(ctx, "k", []byte("v"), time.Minute) }},
		{"cache Del", func() error { return cache.Del(ctx, "k", "l") }},
		{"Allow", func() error { _, err := limiter.Allow(ctx, "ip", redis.PerSecond(5)); return err }},
		{"Publish", func() error { return c.Publish(ctx, "ch", "m") }},
		{"Ping", func() error { return c.Ping(ctx) }},
	}
	for round := range 2 { // the first round meets stale pooled connections
		for _, tc := range calls {
			start := time.Now()
			err := tc.call()
			d := time.Since(start)
			if !errors.Is(err, derrors.Unavailable) {
				t.Errorf("round %d: %s with Redis down = %v, want kind Unavailable", round, tc.name, err)
			}
			if d > 300*time.Millisecond {
				t.Errorf("round %d: %s with Redis down took %v, want under 300ms", round, tc.name, d)
			}
		}
	}

	srv.start() // an empty Redis: the cart is gone, the client is not
	eventually(t, "SetItem after restart", func() error { return carts.SetItem(ctx, 1, 12, 3, 50) })
	items, err := carts.Items(ctx, 1)
	if err != nil || len(items) != 1 || items[0].ProductID != 12 || items[0].Quantity != 3 {
		t.Errorf("Items after restart = %v, %v, want [{12 3}]", items, err)
	}
	for _, tc := range calls {
		if err := tc.call(); err != nil {
			t.Errorf("%s after restart = %v", tc.name, err)
		}
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	c := openClient(t)
	cache := redis.NewCache(c)
	ctx := t.Context()
	if v, ok, err := cache.Get(ctx, "p:1"); ok || err != nil || v != nil {
		t.Errorf("Get(missing) = %q, %v, %v; want miss", v, ok, err)
	}
	body := []byte(`{"id":1}`)
	for i := range 20 {
		if err := cache.Set(ctx, fmt.Sprint("p:", i), body, 10*time.Second); err != nil {
			t.Fatalf("Set = %v", err)
		}
	}
	if v, ok, err := cache.Get(ctx, "p:1"); !ok || err != nil || string(v) != string(body) {
		t.Errorf("Get(p:1) = %q, %v, %v; want %q", v, ok, err, body)
	}
	// TTLs spread over 10s ± 10%, and not all equal.
	seen := map[time.Duration]bool{}
	for i := range 20 {
		ttl, err := c.Redis().PTTL(ctx, c.Prefix()+"cache:p:"+fmt.Sprint(i)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 8900*time.Millisecond || ttl > 11*time.Second {
			t.Errorf("TTL of p:%d = %v, want 9s..11s", i, ttl)
		}
		seen[ttl] = true
	}
	if len(seen) < 5 {
		t.Errorf("only %d distinct TTLs among 20 entries: no jitter", len(seen))
	}
	if err := cache.Del(ctx, "p:1", "p:2", "missing"); err != nil {
		t.Fatalf("Del = %v", err)
	}
	for _, k := range []string{"p:1", "p:2"} {
		if _, ok, err := cache.Get(ctx, k); ok || err != nil {
			t.Errorf("Get(%s) after Del = %v, %v; want miss", k, ok, err)
		}
	}
	if _, ok, _ := cache.Get(ctx, "p:3"); !ok {
		t.Error("Del removed p:3 too")
	}
	if err := cache.Set(ctx, "short", body, 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if _, ok, _ := cache.Get(ctx, "short"); ok {
		t.Error("entry outlived its TTL")
	}
}

// TestRateLimitShared checks that two clients (two API instances) draw
// from one GCRA budget.
func TestRateLimitShared(t *testing.T) {
	t.Parallel()
	url, prefix := redistest.New(t)
	var ls []*redis.Limiter
	for range 2 {
		c, err := redis.Open(t.Context(), url, testLogger(t), redis.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ls = append(ls, redis.NewLimiter(c))
	}
	limit := redis.Limit{Rate: 10, Burst: 10, Period: time.Minute}
	allowed := 0
	var denied redis.Result
	for i := range 30 {
		r, err := ls[i%2].Allow(t.Context(), "login:ip:10.0.0.1", limit)
		if err != nil {
			t.Fatalf("Allow = %v", err)
		}
		if r.Allowed {
			allowed++
			if r.Remaining != 10-allowed {
				t.Errorf("call %d: Remaining = %d, want %d", i, r.Remaining, 10-allowed)
			}
		} else {
			denied = r
		}
	}
	if allowed != 10 {
		t.Errorf("%d of 30 calls across two clients allowed, want 10 (one shared burst)", allowed)
	}
	// One event per 6s: the next one is about 6s away.
	if denied.Allowed || denied.RetryAfter < 5*time.Second || denied.RetryAfter > 6*time.Second || denied.ResetAfter < 50*time.Second {
		t.Errorf("denied result = %+v, want RetryAfter ~6s, ResetAfter ~60s", denied)
	}
	// Another key has its own budget.
	if r, err := ls[0].Allow(t.Context(), "login:ip:10.0.0.2", limit); err != nil || !r.Allowed {
		t.Errorf("Allow(other key) = %+v, %v; want allowed", r, err)
	}
}

func TestPubSub(t *testing.T) {
	t.Parallel()
	url, prefix := redistest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Two API instances listen; a third publishes.
	var got [2]chan string
	var wg sync.WaitGroup
	for i := range 2 {
		c, err := redis.Open(ctx, url, testLogger(t), redis.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got[i] = make(chan string, 10)
		subscribed := make(chan struct{}, 1)
		wg.Go(func() {
			err := c.Subscribe(ctx, "invalidate", func(m string) { got[i] <- m },
				redis.OnSubscribed(func() { subscribed <- struct{}{} }))
			if err != nil {
				t.Errorf("Subscribe = %v", err)
			}
		})
		select {
		case <-subscribed:
		case <-time.After(5 * time.Second):
			t.Fatal("no subscription after 5s")
		}
	}
	pub := openClient(t) // another prefix: must not reach the subscribers
	if err := pub.Publish(ctx, "invalidate", "wrong prefix"); err != nil {
		t.Fatal(err)
	}
	pc, err := redis.Open(ctx, url, testLogger(t), redis.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, m := range []string{"product:1", "product:2"} {
		if err := pc.Publish(ctx, "invalidate", m); err != nil {
			t.Fatalf("Publish = %v", err)
		}
	}
	for i := range 2 {
		for _, want := range []string{"product:1", "product:2"} {
			select {
			case m := <-got[i]:
				if m != want {
					t.Errorf("subscriber %d got %q, want %q", i, m, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("subscriber %d: no message %q after 5s", i, want)
			}
		}
	}
	cancel()
	wg.Wait() // Subscribe returns when ctx is done
}

// TestSubscribeSurvivesRestart restarts Redis under a subscriber: it
// subscribes again by itself, says so, and receives new messages.
func TestSubscribeSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops its own redis-server")
	}
	t.Parallel()
	srv := startServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := redis.Open(ctx, srv.url(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := make(chan string, 10)
	var subs atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Subscribe(ctx, "inv", func(m string) { msgs <- m }, redis.OnSubscribed(func() { subs.Add(1) }))
	}()
	eventually(t, "first subscription", func() error {
		if subs.Load() < 1 {
			return errors.New("not subscribed")
		}
		return nil
	})
	srv.stop()
	time.Sleep(200 * time.Millisecond)
	srv.start()
	eventually(t, "resubscription", func() error {
		if subs.Load() < 2 {
			return errors.New("not subscribed again")
		}
		return nil
	})
	eventually(t, "publish after restart", func() error { return c.Publish(ctx, "inv", "after") })
	select {
	case m := <-msgs:
		if m != "after" {
			t.Errorf("got %q, want %q", m, "after")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message after restart")
	}
	cancel()
	<-done
}
