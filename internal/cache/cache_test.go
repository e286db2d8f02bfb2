package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

// TestStampede sends 1,000 concurrent requests for one cold or
// just-expired key: exactly one store load, with L1 only and with L1 +
// a real Redis L2.
func TestStampede(t *testing.T) {
	for _, tc := range []struct {
		name    string
		l2      bool
		expired bool
	}{
		{"cold L1", false, false},
		{"expired L1", false, true},
		{"cold L1+L2", true, false},
		{"expired L1+L2", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			cfg := cache.Config{Now: clk.Now, ProductTTL: time.Minute}
			if tc.l2 {
				url, prefix := redistest.New(t)
				cfg.L2, cfg.Bus = redisLayers(t, url, prefix)
			}
			c := newCache(t, cfg)
			st := newStore()
			st.set("k", "v1")
			key := "product/1"
			if tc.expired {
				if _, err := c.Get(context.Background(), key, time.Minute, st.loader("k")); err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Minute + time.Millisecond)
				st.set("k", "v2")
			}
			before := st.loads.Load()
			st.gate = make(chan struct{})

			const n = 1000
			var wg sync.WaitGroup
			start := make(chan struct{})
			bodies := make([]string, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					<-start
					r, err := c.Get(context.Background(), key, time.Minute, st.loader("k"))
					errs[i] = err
					if err == nil {
						bodies[i] = string(r.Body)
					}
				})
			}
			close(start)
			// Let every goroutine reach the cache before the load returns.
			time.Sleep(200 * time.Millisecond)
			close(st.gate)
			wg.Wait()
			want := "v1"
			if tc.expired {
				want = "v2"
			}
			for i := range n {
				if errs[i] != nil || bodies[i] != want {
					t.Fatalf("request %d: Get = %q, %v; want %q", i, bodies[i], errs[i], want)
				}
			}
			if got := st.loads.Load() - before; got != 1 {
				t.Errorf("store loads = %d, want 1", got)
			}
			s := c.Stats()
			t.Logf("stats: %+v", s)
			if s.Coalesced < n-1-s.L1Hits {
				t.Errorf("coalesced waits = %d, want >= %d", s.Coalesced, n-1-s.L1Hits)
			}
		})
	}
}

// TestCancelledCallerDoesNotFailOthers: the caller that started a load
// gives up; the load goes on and the others get its value.
func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	c := newCache(t, cache.Config{})
	st := newStore()
	st.set("k", "v")
	st.gate = make(chan struct{})

	ctx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "product/1", time.Minute, st.loader("k"))
		leaderErr <- err
	}()
	for st.loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	results := make([]string, 50)
	for i := range results {
		wg.Go(func() {
			r, err := c.Get(context.Background(), "product/1", time.Minute, st.loader("k"))
			if err != nil {
				results[i] = "error: " + err.Error()
				return
			}
			results[i] = string(r.Body)
		})
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: Get = %v, want context.Canceled", err)
	}
	close(st.gate)
	wg.Wait()
	for i, r := range results {
		if r != "v" {
			t.Errorf("caller %d: got %q, want %q", i, r, "v")
		}
	}
	if n := st.loads.Load(); n != 1 {
		t.Errorf("store loads = %d, want 1", n)
	}
	if s := c.Stats(); s.Abandoned != 1 {
		t.Errorf("abandoned = %d, want 1", s.Abandoned)
	}
}

// loadedOnce returns a cache with XFetch (beta 1, every draw rnd) on a
// fake clock, holding "product/1" (value "v1" of st's key "k"), loaded
// once for ttl by a load that took 1 s of fake time (XFetch's delta),
// and the time it expires.
func loadedOnce(t *testing.T, ttl time.Duration, rnd float64) (*cache.Cache, *fakeClock, *store, time.Time) {
	t.Helper()
	clk := newFakeClock()
	c := newCache(t, cache.Config{Now: clk.Now, Beta: 1, Rand: func() float64 { return rnd }})
	st := newStore()
	st.set("k", "v1")
	st.advance = func() { clk.Advance(time.Second) }
	if _, err := c.Get(context.Background(), "product/1", ttl, st.loader("k")); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.advance = nil
	st.mu.Unlock()
	return c, clk, st, clk.Now().Add(ttl - time.Second) // stored at the load's start
}

// TestEarlyRefresh: under steady traffic (a fake clock moving 100 ms per
// round of 20 requests), a hot key is reloaded before it expires, in the
// background: no request misses or waits for a load, even while the
// refresh is held up for a second.
func TestEarlyRefresh(t *testing.T) {
	const ttl = 10 * time.Second
	// rand = 0.05: XFetch fires once delta*beta*-ln(0.05) = 3 s remain.
	c, clk, st, expiry := loadedOnce(t, ttl, 0.05)
	ctx := context.Background()
	st.mu.Lock()
	st.values["k"] = "v2"
	st.gate = make(chan struct{}) // the refresh waits until released
	st.mu.Unlock()

	get := func(round int) string {
		done := make(chan string, 1)
		go func() {
			r, err := c.Get(ctx, "product/1", ttl, st.loader("k"))
			if err != nil {
				done <- "error: " + err.Error()
				return
			}
			done <- string(r.Body)
		}()
		select {
		case b := <-done:
			return b
		case <-time.After(time.Second):
			t.Fatalf("round %d: a Get waited for a load", round)
			return ""
		}
	}
	var refreshedAt time.Time
	released := false
	for round := 0; clk.Now().Before(expiry.Add(2 * time.Second)); round++ {
		clk.Advance(100 * time.Millisecond)
		for range 20 {
			if b := get(round); b != "v1" && b != "v2" {
				t.Fatalf("round %d: Get = %q", round, b)
			}
		}
		if refreshedAt.IsZero() && c.Stats().EarlyRefreshes > 0 {
			refreshedAt = clk.Now()
		}
		if !released && !refreshedAt.IsZero() && !clk.Now().Before(refreshedAt.Add(time.Second)) {
			close(st.gate)
			released = true
			// Wait (in real time) for the refresh to land.
			for deadline := time.Now().Add(2 * time.Second); get(round) != "v2"; {
				if time.Now().After(deadline) {
					t.Fatal("refreshed value not served")
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if refreshedAt.IsZero() {
		t.Fatal("no early refresh")
	}
	if left := expiry.Sub(refreshedAt); left < 2900*time.Millisecond || left > 3*time.Second {
		t.Errorf("early refresh %v before expiry, want 3s (XFetch with delta 1s, beta 1, rand 0.05)", left)
	}
	if b := get(-1); b != "v2" {
		t.Errorf("after expiry: Get = %q, want v2", b)
	}
	s := c.Stats()
	t.Logf("stats %+v", s)
	if s.L1Misses != 1 || s.EarlyRefreshes != 1 || s.Loads != 2 || s.Coalesced != 0 {
		t.Errorf("stats = %+v; want 1 miss (the first Get), 1 early refresh, 2 loads, no waits", s)
	}
}

// TestEarlyRefreshTail: XFetch's shortcut (no logarithm while no rand
// could reach the expiry) keeps its whole tail: with the smallest rand
// there is, a key loaded in 1 s is refreshed -ln(rand) s before it
// expires (709 s by Go's math.Log, 744 s exactly), and not 1 s earlier.
func TestEarlyRefreshTail(t *testing.T) {
	const ttl = 800 * time.Second
	rnd := math.SmallestNonzeroFloat64
	tail := time.Duration(-math.Log(rnd) * float64(time.Second))
	c, clk, st, expiry := loadedOnce(t, ttl, rnd)
	ctx := context.Background()
	for _, left := range []time.Duration{tail + time.Second, tail - time.Second} {
		clk.Advance(expiry.Sub(clk.Now()) - left)
		if _, err := c.Get(ctx, "product/1", ttl, st.loader("k")); err != nil {
			t.Fatal(err)
		}
		got, want := c.Stats().EarlyRefreshes, uint64(0)
		if left < tail {
			want = 1
		}
		if got != want {
			t.Errorf("%v before expiry: %d early refreshes, want %d", left, got, want)
		}
	}
}

// TestEarlyRefreshDisabled: without XFetch the key is served until it
// expires, then reloaded by a request that waits.
func TestEarlyRefreshDisabled(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, cache.Config{Now: clk.Now, DisableEarlyRefresh: true})
	st := newStore()
	st.advance = func() { clk.Advance(time.Second) }
	for range 200 {
		if _, err := c.Get(context.Background(), "k", 10*time.Second, st.loader("k")); err != nil {
			t.Fatal(err)
		}
		clk.Advance(50 * time.Millisecond)
	}
	// 200 requests over 10 s of traffic, plus the loads' 1 s each.
	if s := c.Stats(); s.EarlyRefreshes != 0 || s.L1Misses < 2 {
		t.Errorf("stats = %+v; want no early refresh and a miss at expiry", s)
	}
}

// TestStaleIfError: with the store failing, cached entries are served
// stale (with their age) up to StaleFor, and the store is asked at most
// once per RetryAfter; uncached keys fail as Unavailable; NotFound is an
// answer, never covered by a stale value.
func TestStaleIfError(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, cache.Config{Now: clk.Now, StaleFor: time.Minute, RetryAfter: time.Second})
	st := newStore()
	st.set("a", "A")
	ctx := context.Background()
	if _, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a")); err != nil {
		t.Fatal(err)
	}
	st.setFail(errors.New("database is down"))
	clk.Advance(30 * time.Second)

	r, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a"))
	if err != nil || !r.Stale || string(r.Body) != "A" || r.Age != 30*time.Second {
		t.Fatalf("Get with store down = %+v, %v; want stale A aged 30s", r, err)
	}
	loads := st.loads.Load()
	for range 10 {
		if r, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a")); err != nil || !r.Stale {
			t.Fatalf("Get = %+v, %v", r, err)
		}
	}
	if n := st.loads.Load() - loads; n != 0 {
		t.Errorf("%d store loads within RetryAfter, want 0", n)
	}
	clk.Advance(2 * time.Second)
	if r, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a")); err != nil || !r.Stale {
		t.Fatalf("Get = %+v, %v", r, err)
	}
	if n := st.loads.Load() - loads; n != 1 {
		t.Errorf("%d store loads after RetryAfter, want 1", n)
	}

	_, err = c.Get(ctx, "product/2", 10*time.Second, st.loader("b"))
	if !errors.Is(err, derrors.Unavailable) {
		t.Errorf("uncached key with store down: err = %v, want Unavailable", err)
	}

	// Past StaleFor: no more stale value.
	clk.Advance(time.Minute)
	if _, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a")); !errors.Is(err, derrors.Unavailable) {
		t.Errorf("past StaleFor: err = %v, want Unavailable", err)
	}

	// The store is back: fresh again.
	st.setFail(nil)
	if r, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a")); err != nil || r.Stale {
		t.Errorf("store back: Get = %+v, %v; want fresh", r, err)
	}

	// NotFound is an answer.
	clk.Advance(11 * time.Second)
	st.setFail(derrors.New(derrors.NotFound, "no such product"))
	if _, err := c.Get(ctx, "product/1", 10*time.Second, st.loader("a")); !errors.Is(err, derrors.NotFound) {
		t.Errorf("NotFound: err = %v, want NotFound", err)
	}
	if s := c.Stats(); s.StaleServed != 12 {
		t.Errorf("stale served = %d, want 12", s.StaleServed)
	}
}

// TestInvalidateDuringLoad: a load that read the store before an
// invalidation must not put its value back into the cache.
func TestInvalidateDuringLoad(t *testing.T) {
	c := newCache(t, cache.Config{})
	st := newStore()
	st.set("k", "old")
	st.gate = make(chan struct{})
	done := make(chan string)
	go func() {
		r, _ := c.Get(context.Background(), "product/1", time.Minute, st.loader("k"))
		done <- string(r.Body)
	}()
	for st.loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The loader reads after the gate; make it read "old" by changing
	// the store only after. Invalidate while it is in flight.
	if err := c.Invalidate(context.Background(), false, "product/1"); err != nil {
		t.Fatal(err)
	}
	close(st.gate)
	if got := <-done; got != "old" {
		t.Fatalf("in-flight Get = %q", got)
	}
	st.gate = nil
	st.set("k", "new")
	r, err := c.Get(context.Background(), "product/1", time.Minute, st.loader("k"))
	if err != nil || string(r.Body) != "new" {
		t.Errorf("Get after invalidation = %q, %v; want new (the in-flight value must not be kept)", r.Body, err)
	}
}

// TestListingVersion: a product change moves listing keys to a new
// version and frees the old listing entries; product keys stay.
func TestListingVersion(t *testing.T) {
	c := newCache(t, cache.Config{})
	st := newStore()
	ctx := context.Background()
	q := queryOf("oak", "")
	k1 := c.ListingKey(q)
	for i := range 5 {
		if _, err := c.Get(ctx, c.ListingKey(queryOf(fmt.Sprint("q", i), "")), time.Minute, st.loader("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, cache.ProductKey(int64(i)), time.Minute, st.loader("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ProductChanged(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if k2 := c.ListingKey(q); k2 == k1 {
		t.Errorf("ListingKey after a change = %q, unchanged", k2)
	}
	if n := c.Len(); n != 4 {
		t.Errorf("entries after change = %d, want 4 products (listings and product 3 dropped)", n)
	}
	if a, b := c.ListingKey(queryOf("  Oak ", "")), c.ListingKey(queryOf("oak", "")); a != b {
		t.Errorf("ListingKey(%q) = %q, ListingKey(%q) = %q; want equal", "  Oak ", a, "oak", b)
	}
	if a, b := c.ListingKey(queryOf("!!", "")), c.ListingKey(queryOf("", "")); a == b {
		t.Errorf("ListingKey(%q) = ListingKey(\"\") = %q; want different", "!!", a)
	}
}

// TestInvalidateDuringOutage: with the shared layers down, a change
// still clears this instance at once (with a version of its own, kept
// across retries), and reaches the other instance when they are back.
func TestInvalidateDuringOutage(t *testing.T) {
	bus := &memBus{}
	l2 := newMemL2(time.Now)
	a := newCache(t, cache.Config{L2: l2, Bus: bus})
	b := newCache(t, cache.Config{L2: l2, Bus: bus})
	st := newStore()
	st.set("p", "old")
	ctx := context.Background()
	q := queryOf("", "")
	for _, c := range []*cache.Cache{a, b} {
		if r, err := c.Product(ctx, 1, st.loader("p")); err != nil || string(r.Body) != "old" {
			t.Fatalf("Product = %q, %v", r.Body, err)
		}
	}
	if a.ListingKey(q) != b.ListingKey(q) {
		t.Fatalf("listing keys differ before: %q %q", a.ListingKey(q), b.ListingKey(q))
	}

	bus.setDown(true)
	l2.down.Store(true)
	st.set("p", "new")
	if err := a.ProductChanged(ctx, 1); err == nil {
		t.Fatal("ProductChanged with the bus down = nil, want an error")
	}
	if r, _ := a.Product(ctx, 1, st.loader("p")); string(r.Body) != "new" {
		t.Errorf("a after its own change: %q, want new", r.Body)
	}
	localKey := a.ListingKey(q)
	if localKey == b.ListingKey(q) {
		t.Errorf("a kept the shared listing version %q during the outage", localKey)
	}
	if r, _ := b.Product(ctx, 1, st.loader("p")); string(r.Body) != "old" {
		t.Fatalf("b heard of the change through a dead bus: %q", r.Body)
	}
	time.Sleep(400 * time.Millisecond) // several failed retries
	if k := a.ListingKey(q); k != localKey {
		t.Errorf("retries moved a's listing version again: %q, then %q", localKey, k)
	}

	bus.setDown(false)
	l2.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _ := b.Product(ctx, 1, st.loader("p"))
		if string(r.Body) == "new" && a.ListingKey(q) == b.ListingKey(q) && a.ListingKey(q) != localKey {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage: b serves %q; listing keys a %q, b %q", r.Body, a.ListingKey(q), b.ListingKey(q))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
