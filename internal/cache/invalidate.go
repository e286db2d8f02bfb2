package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// L2 is the shared second layer: opaque values with a TTL (the Redis
// client adds jitter). internal/redis.Cache implements it.
type L2 interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Del(ctx context.Context, keys ...string) error
}

// Bus carries invalidations to every instance and hands out catalog
// versions from one shared counter. NewRedisBus implements it.
type Bus interface {
	// Publish sends msg to every subscriber, this instance included.
	Publish(ctx context.Context, msg string) error
	// Subscribe calls fn with each message until ctx ends. onSubscribed
	// runs each time the subscription is (re)established; messages sent
	// while it was down are lost.
	Subscribe(ctx context.Context, fn func(msg string), onSubscribed func()) error
	// NextVersion returns a version greater than atLeast that it never
	// returned before.
	NextVersion(ctx context.Context, atLeast uint64) (uint64, error)
	// Version returns the current shared version, first raising it to
	// atLeast when it is lower (after the counter was lost).
	Version(ctx context.Context, atLeast uint64) (uint64, error)
}

// version is the catalog version in listing keys. n comes from the
// shared counter (or a local one without a Bus). local is non-zero when
// the version is this instance's own: after a bump that could not reach
// the counter, or, provisional, while the counter could not be read.
// Nothing is ever cached under a version before it is taken, so a new
// version can never find values older than the change that made it.
type version struct {
	n           uint64
	local       uint64
	provisional bool   // adopt the shared counter as soon as it is read
	key         string // "ver:<n>" or "ver:<n>.<local>", the key prefix
}

func newVersion(n, local uint64) *version {
	k := versionedPrefix + strconv.FormatUint(n, 10)
	if local != 0 {
		k += "." + strconv.FormatUint(local, 36)
	}
	return &version{n: n, local: local, key: k}
}

// provisionalVersion is a version of this instance's own, used until the
// shared counter has been read.
func provisionalVersion() *version {
	v := newVersion(0, 1+rand.Uint64N(1<<40))
	v.provisional = true
	return v
}

// replaces reports whether an instance at version cur must move to v.
func (v *version) replaces(cur *version) bool {
	switch {
	case v.provisional || cur.provisional:
		return true
	case v.n != cur.n:
		return v.n > cur.n
	default: // a local bump on top of the same counter value
		return v.local != 0 && v.local != cur.local
	}
}

// versionedPrefix starts every key that depends on the catalog version.
const versionedPrefix = "ver:"

// Invalidate drops keys from L1 and L2 on every instance and, when bump
// is true, moves every instance to a new catalog version, so that all
// versioned keys (listings, search) miss. Call it after the change is
// committed. L1 of this instance is cleared before it returns; when L2
// or the Bus fails, the error is returned and the broadcast is retried in
// the background until it succeeds or the entries expired anyway.
func (c *Cache) Invalidate(ctx context.Context, bump bool, keys ...string) error {
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, " \n") || strings.HasPrefix(k, versionedPrefix) {
			return fmt.Errorf("invalidate: key %q cannot be invalidated by name", k)
		}
	}
	c.st.invalidations.Add(1)
	err := c.broadcast(ctx, bump, false, keys)
	if err != nil {
		c.log.WarnContext(ctx, "cache invalidation did not reach every instance yet; retrying", "keys", keys, "err", err)
		go c.retryBroadcast(bump, keys)
	}
	if c.cfg.Redelete > 0 && len(keys) > 0 && (c.cfg.L2 != nil || c.cfg.Bus != nil) {
		// A load on another instance that read the store before the
		// change may write its value to L2 after our delete: delete and
		// broadcast once more.
		time.AfterFunc(c.cfg.Redelete, func() {
			select {
			case <-c.closed:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := c.broadcast(ctx, false, true, keys); err != nil {
				go c.retryBroadcast(false, keys)
			}
		})
	}
	return err
}

// broadcast bumps the version (when asked), applies the invalidation
// locally, deletes the keys from L2 and publishes it. When the shared
// counter cannot be reached, the bump takes a version of this instance's
// own; a retry (retry set) keeps that one instead of taking another, so
// that retries during an outage do not empty L1 again and again.
func (c *Cache) broadcast(ctx context.Context, bump, retry bool, keys []string) error {
	var v *version
	var errs []error
	if bump {
		cur := c.version.Load()
		if c.cfg.Bus == nil {
			v = newVersion(cur.n+1, 0)
		} else if n, err := c.cfg.Bus.NextVersion(ctx, cur.n); err != nil {
			errs = append(errs, fmt.Errorf("next catalog version: %w", err))
			if !retry || cur.local == 0 || cur.provisional {
				v = newVersion(cur.n, 1+rand.Uint64N(1<<40))
			}
		} else {
			v = newVersion(n, 0)
		}
	}
	c.apply(v, keys)
	if c.cfg.L2 != nil && len(keys) > 0 {
		if err := c.cfg.L2.Del(ctx, keys...); err != nil {
			errs = append(errs, fmt.Errorf("delete from L2: %w", err))
		}
	}
	if c.cfg.Bus != nil {
		var n uint64
		if v != nil && v.local == 0 {
			n = v.n
		}
		if n != 0 || len(keys) > 0 {
			if err := c.cfg.Bus.Publish(ctx, formatMessage(n, keys)); err != nil {
				errs = append(errs, fmt.Errorf("publish invalidation: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalidate: %w", err)
	}
	return nil
}

// retryBroadcast repeats a failed broadcast with backoff until it works
// or every entry it concerns has expired (with its stale window).
func (c *Cache) retryBroadcast(bump bool, keys []string) {
	deadline := time.Now().Add(max(c.cfg.ProductTTL, c.cfg.ListTTL) + c.cfg.StaleFor)
	wait := 50 * time.Millisecond
	for time.Now().Before(deadline) {
		select {
		case <-c.closed:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.broadcast(ctx, bump, true, keys)
		cancel()
		if err == nil {
			c.log.Info("cache invalidation delivered after retry", "keys", keys)
			return
		}
	}
	c.log.Warn("cache invalidation gave up: the entries have expired anyway", "keys", keys)
}

// apply drops keys from L1 and moves to version v (when not nil and newer).
func (c *Cache) apply(v *version, keys []string) {
	c.mu.Lock()
	c.epoch.Add(1)
	for _, k := range keys {
		c.l1.Invalidate(k)
		c.sf.Forget(k)
	}
	bumped := false
	if v != nil {
		if v.replaces(c.version.Load()) {
			c.version.Store(v)
			bumped = true
		}
	}
	c.mu.Unlock()
	if bumped {
		// Keys of older versions can no longer be asked for: free them.
		c.dropVersioned(v.key)
	}
}

// dropVersioned drops the L1 entries of every version but keep.
func (c *Cache) dropVersioned(keep string) {
	for k := range c.l1.Keys() {
		if strings.HasPrefix(k, versionedPrefix) && !strings.HasPrefix(k, keep+"/") {
			c.l1.Invalidate(k)
		}
	}
}

// formatMessage encodes an invalidation: "inv <version> <key>...", with
// version 0 when the catalog version does not change.
func formatMessage(v uint64, keys []string) string {
	return "inv " + strconv.FormatUint(v, 10) + " " + strings.Join(keys, " ")
}

func parseMessage(msg string) (v uint64, keys []string, err error) {
	f := strings.Fields(msg)
	if len(f) < 2 || f[0] != "inv" {
		return 0, nil, fmt.Errorf("unknown message %q", msg)
	}
	v, err = strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("bad version in %q", msg)
	}
	return v, f[2:], nil
}

// Run receives invalidations from other instances until ctx ends. Run it
// in its own goroutine when a Bus is configured; without one it only
// waits for ctx.
func (c *Cache) Run(ctx context.Context) error {
	if c.cfg.Bus == nil {
		c.subscribedOnce.Do(func() { close(c.subscribed) })
		<-ctx.Done()
		return nil
	}
	for {
		err := c.cfg.Bus.Subscribe(ctx, c.receive, c.resubscribed)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("cache invalidation subscription ended; resubscribing", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// Subscribed is closed once Run has subscribed to the Bus for the first
// time (at once when there is no Bus).
func (c *Cache) Subscribed() <-chan struct{} { return c.subscribed }

func (c *Cache) receive(msg string) {
	n, keys, err := parseMessage(msg)
	if err != nil {
		c.log.Warn("cache: ignored invalidation message", "err", err)
		return
	}
	c.st.remoteInvalidations.Add(1)
	var v *version
	if n != 0 {
		v = newVersion(n, 0)
	}
	c.apply(v, keys)
}

// resubscribed runs when the subscription is (re)established: messages
// may have been lost, so L1 is dropped whole and the version re-read.
func (c *Cache) resubscribed() {
	c.mu.Lock()
	c.epoch.Add(1)
	c.l1.InvalidateAll()
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cur := c.version.Load()
	n, err := c.cfg.Bus.Version(ctx, cur.n)
	switch {
	case err != nil:
		// A bump may have been missed: take a version of our own, with
		// nothing cached under it, until the counter can be read.
		c.log.Warn("cache: read catalog version", "err", err)
		c.apply(provisionalVersion(), nil)
	case n > cur.n || cur.provisional:
		c.apply(newVersion(n, 0), nil)
	}
	c.subscribedOnce.Do(func() { close(c.subscribed) })
}
