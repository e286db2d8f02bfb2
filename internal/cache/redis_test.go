package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

// TestInvalidationAcrossInstances: two instances share a Redis L2 and
// Bus. After a product change on one, both serve the new product and a
// new listing version within 100 ms.
func TestInvalidationAcrossInstances(t *testing.T) {
	url, prefix := redistest.New(t)
	newInstance := func() *cache.Cache {
		l2, bus := redisLayers(t, url, prefix)
		return newCache(t, cache.Config{L2: l2, Bus: bus})
	}
	a, b := newInstance(), newInstance()
	st := newStore()
	st.set("p1", `{"price":100}`)
	st.set("list", `[{"price":100}]`)
	ctx := context.Background()
	q := queryOf("", "")
	get := func(c *cache.Cache) (product, listing string) {
		t.Helper()
		p, err := c.Product(ctx, 1, st.loader("p1"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.Listing(ctx, q, st.loader("list"))
		if err != nil {
			t.Fatal(err)
		}
		return string(p.Body), string(l.Body)
	}
	for _, c := range []*cache.Cache{a, b} {
		if p, l := get(c); p != `{"price":100}` || l != `[{"price":100}]` {
			t.Fatalf("before: %s %s", p, l)
		}
	}
	if n := st.loads.Load(); n != 2 {
		t.Errorf("loads for two instances = %d, want 2 (the second instance hits L2)", n)
	}
	if ka, kb := a.ListingKey(q), b.ListingKey(q); ka != kb {
		t.Errorf("listing keys differ across instances: %q, %q", ka, kb)
	}
	oldKey := b.ListingKey(q)
	etag, _ := b.Product(ctx, 1, st.loader("p1"))

	st.set("p1", `{"price":200}`)
	st.set("list", `[{"price":200}]`)
	start := time.Now()
	if err := a.ProductChanged(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*cache.Cache{a, b} {
		for {
			p, l := get(c)
			if p == `{"price":200}` && l == `[{"price":200}]` {
				break
			}
			if time.Since(start) > 100*time.Millisecond {
				t.Fatalf("after %v: %s %s; want the new price", time.Since(start), p, l)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Logf("both instances serve the change %v after it", time.Since(start))
	if e, _ := b.Product(ctx, 1, st.loader("p1")); e.ETag == etag.ETag {
		t.Errorf("ETag unchanged: %s", e.ETag)
	}
	if ka, kb := a.ListingKey(q), b.ListingKey(q); ka != kb || kb == oldKey {
		t.Errorf("listing keys after change: %q, %q (before %q)", ka, kb, oldKey)
	}
	if s := b.Stats(); s.Remote == 0 {
		t.Errorf("b received no invalidation: %+v", s)
	}
}

// TestLateL2WriteRedeleted: a load on an instance that missed the
// invalidation wrote the old value to L2 after the first delete; the
// second delete and broadcast (Redelete) remove it everywhere.
func TestLateL2WriteRedeleted(t *testing.T) {
	url, prefix := redistest.New(t)
	l2a, busA := redisLayers(t, url, prefix)
	l2b, busB := redisLayers(t, url, prefix)
	l2c, _ := redisLayers(t, url, prefix)
	a := newCache(t, cache.Config{L2: l2a, Bus: busA, Redelete: 50 * time.Millisecond})
	b := newCache(t, cache.Config{L2: l2b, Bus: busB})
	late := newCache(t, cache.Config{L2: l2c}) // hears no invalidation
	ctx := context.Background()
	st := newStore()
	st.set("p1", "new")

	// late reads "old" from the store, then its write to L2 is held up
	// past the change and the first delete.
	read, release := make(chan struct{}), make(chan struct{})
	slow := func(ctx context.Context) ([]byte, error) {
		close(read)
		<-release
		return []byte("old"), nil
	}
	done := make(chan struct{})
	go func() {
		late.Product(ctx, 1, slow)
		close(done)
	}()
	<-read
	if err := a.ProductChanged(ctx, 1); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	start := time.Now()
	// Right after the late write, L2 may serve "old" to b; within the
	// Redelete delay plus delivery it must be gone for good.
	for {
		p, err := b.Product(ctx, 1, st.loader("p1"))
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Body) == "new" {
			break
		}
		if time.Since(start) > 150*time.Millisecond {
			t.Fatalf("b still serves %q %v after the late write", p.Body, time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	for _, c := range []*cache.Cache{a, b} {
		if p, err := c.Product(ctx, 1, st.loader("p1")); err != nil || string(p.Body) != "new" {
			t.Errorf("Product = %q, %v; want new", p.Body, err)
		}
	}
}
