// Package cache is brisk's response cache: encoded response bytes (with
// their strong ETag and a gzip variant, computed once per fill) kept in an
// in-process L1 (otter, W-TinyLFU, bounded) and, when configured, a shared
// L2 (Redis). Misses are coalesced per key, hot keys are refreshed early
// with XFetch, the last value is served for a bounded time when the store
// fails (stale-if-error), and invalidations reach every layer of every
// instance through a Bus (Redis pub/sub).
//
// Keys are opaque strings. Product keys are dropped one by one when a
// product changes; listing and search keys carry a catalog version that
// every admin change replaces, so every cached listing misses after it.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/briskhq/brisk/internal/derrors"
)

// Defaults of Config.
const (
	DefaultMaxBytes    = 64 << 20
	DefaultProductTTL  = 5 * time.Minute
	DefaultListTTL     = 5 * time.Minute
	DefaultStaleFor    = 5 * time.Minute
	DefaultBeta        = 1.0
	DefaultLoadTimeout = 5 * time.Second
	DefaultRetryAfter  = time.Second
	DefaultRedelete    = 50 * time.Millisecond
	DefaultGzipMinSize = 1400
)

// Config configures a Cache. Zero fields take the defaults above.
type Config struct {
	// MaxEntries bounds L1 by entry count; when 0, MaxBytes bounds it by
	// the bytes of the cached bodies (plus a small per-entry overhead).
	MaxEntries int
	MaxBytes   int64
	// ProductTTL and ListTTL are how long a product, and a listing or
	// search result, stays fresh. Admin changes invalidate explicitly; the
	// TTL bounds the staleness of stock counts, which change on every sale
	// without a version bump.
	ProductTTL time.Duration
	ListTTL    time.Duration
	// StaleFor is how long past its expiry an entry may still be served
	// when the store fails (stale-if-error).
	StaleFor time.Duration
	// Beta weighs XFetch's early refresh: a hit recomputes the entry when
	// now - delta*Beta*ln(rand) >= expiry, delta being the last load time.
	// Above 1 refreshes earlier. DisableEarlyRefresh turns it off.
	Beta                float64
	DisableEarlyRefresh bool
	// LoadTimeout bounds one store load. Loads run detached from the
	// requests that wait for them, so one caller giving up does not fail
	// the others.
	LoadTimeout time.Duration
	// RetryAfter: after a failed load, stale values are served without a
	// new load for this long, so a failing store is asked once per key and
	// interval, not once per request.
	RetryAfter time.Duration
	// Redelete is the delay of the second L2 delete and broadcast after an
	// invalidation, which removes a value that a concurrent load on
	// another instance wrote after the first. Negative: no second round.
	Redelete time.Duration
	// GzipMinSize: bodies of at least this many bytes also keep a gzip
	// variant, used when it is at most 90% of the body. Negative: never.
	GzipMinSize int

	// L2 is the shared cache; nil: L1 only.
	L2 L2
	// Bus carries invalidations to the other instances; nil: this
	// instance only. Run must be running for messages to arrive.
	Bus Bus

	// Registerer receives the cache's metrics; nil: none registered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now and Rand replace the clock and the random source, for tests.
	// Rand must return a value in (0, 1].
	Now  func() time.Time
	Rand func() float64
}

func (c *Config) setDefaults() {
	if c.MaxEntries <= 0 && c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.ProductTTL, DefaultProductTTL)
	setDur(&c.ListTTL, DefaultListTTL)
	setDur(&c.StaleFor, DefaultStaleFor)
	setDur(&c.LoadTimeout, DefaultLoadTimeout)
	setDur(&c.RetryAfter, DefaultRetryAfter)
	if c.Redelete == 0 {
		c.Redelete = DefaultRedelete
	}
	if c.Beta <= 0 {
		c.Beta = DefaultBeta
	}
	if c.GzipMinSize == 0 {
		c.GzipMinSize = DefaultGzipMinSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = func() float64 { return 1 - rand.Float64() }
	}
}

// LoadFunc computes the encoded response for a key from the store. An
// error of kind derrors.NotFound or derrors.Invalid is an answer, passed
// to the caller as is; any other error is a store failure, which serves
// the stale value if there is one and becomes derrors.Unavailable if not.
type LoadFunc func(ctx context.Context) ([]byte, error)

// Result is what Get returns: an entry, and whether it is stale (served
// past its expiry because the store failed) and then how old it is.
type Result struct {
	*Entry
	Stale bool
	Age   time.Duration // set when Stale
}

// Cache is a two-layer response cache. It is safe for concurrent use.
type Cache struct {
	cfg   Config
	l1    *otter.Cache[string, *Entry]
	sf    singleflight.Group
	log   *slog.Logger
	st    stats
	loadH prometheus.Histogram

	// mu orders L1 fills against invalidations: a fill takes it shared
	// and stores only when no invalidation happened since it started
	// (epoch unchanged); an invalidation takes it exclusively.
	mu    sync.RWMutex
	epoch atomic.Uint64

	version atomic.Pointer[version] // catalog version in listing keys

	subscribed     chan struct{}
	subscribedOnce sync.Once
	closed         chan struct{} // closed by Close: stops retries
	closeOnce      sync.Once

	l2DownUntil atomic.Int64 // unix ns: skip L2 until then after an error

	coarse *wallClock // L1's clock; nil with Config.Now
}

// coarseClock is the resolution of L1's clock (see New).
const coarseClock = 100 * time.Millisecond

// New returns a Cache.
func New(cfg Config) (*Cache, error) {
	ownClock := cfg.Now != nil
	cfg.setDefaults()
	c := &Cache{cfg: cfg, log: cfg.Logger, subscribed: make(chan struct{}), closed: make(chan struct{})}
	c.version.Store(provisionalVersion())
	o := &otter.Options[string, *Entry]{
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			// Kept until the end of its stale-if-error window.
			return time.Duration(e.Value.expires + int64(cfg.StaleFor) - c.nowNano())
		}),
		OnAtomicDeletion: func(e otter.DeletionEvent[string, *Entry]) {
			switch e.Cause {
			case otter.CauseOverflow:
				c.st.evictedSize.Add(1)
			case otter.CauseExpiration:
				c.st.evictedExpired.Add(1)
			}
		},
		Logger: otterLogger{c.log},
		// Maintenance after reads (draining the read buffer into the
		// eviction policy) runs on the reading goroutine, under otter's
		// try-lock, instead of on a new goroutine each time: on a busy
		// core a goroutine per drain costs more than the drain. (No
		// OnDeletion or refresh calculator runs on this executor.)
		Executor: func(fn func()) { fn() },
	}
	if cfg.MaxEntries > 0 {
		o.MaximumSize = cfg.MaxEntries
	} else {
		o.MaximumWeight = uint64(cfg.MaxBytes)
		o.Weigher = func(k string, e *Entry) uint32 { return uint32(min(e.size()+len(k), math.MaxUint32)) }
	}
	if ownClock {
		o.Clock = clock{c}
	} else {
		// otter reads its clock on every read, for the entry's expiry (the
		// end of its stale-if-error window); a coarse clock makes that a
		// variable's load instead of a clock read per hit. The window may
		// end up to coarseClock early. Peek decides freshness on it too;
		// Get, on the precise clock.
		c.coarse = newWallClock(coarseClock)
		o.Clock = c.coarse
	}
	l1, err := otter.New(o)
	if err != nil {
		c.stopClock()
		return nil, fmt.Errorf("new cache: %w", err)
	}
	c.l1 = l1
	if err := c.register(cfg.Registerer); err != nil {
		l1.StopAllGoroutines()
		c.stopClock()
		return nil, fmt.Errorf("new cache: %w", err)
	}
	return c, nil
}

func (c *Cache) stopClock() {
	if c.coarse != nil {
		c.coarse.Stop()
	}
}

// Close stops the cache's background goroutines (L1 maintenance,
// invalidation retries).
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.l1.StopAllGoroutines()
		c.stopClock()
	})
}

func (c *Cache) nowNano() int64 { return c.cfg.Now().UnixNano() }

// coarseNano is the time on L1's coarse clock, Config.Now's with it.
func (c *Cache) coarseNano() int64 {
	if c.coarse != nil {
		return c.coarse.NowNano()
	}
	return c.nowNano()
}

// Get returns the entry under key, loading it with load on a miss. ttl is
// how long a loaded value stays fresh. Concurrent misses of one key share
// one load; a caller whose ctx ends stops waiting, and the load goes on for
// the others. A hit may start an early refresh in the background (XFetch)
// and does not wait for it.
func (c *Cache) Get(ctx context.Context, key string, ttl time.Duration, load LoadFunc) (Result, error) {
	now := c.nowNano()
	e, ok := c.l1.GetIfPresent(key)
	if ok {
		if now < e.expires {
			c.st.l1Hits.Add(1)
			if c.shouldRefresh(e, now) {
				c.refresh(key, ttl, load, e)
			}
			return Result{Entry: e}, nil
		}
		// Expired, kept for stale-if-error. A load failed recently: do
		// not ask the store again yet.
		if now < e.retryAt.Load() && now < e.expires+int64(c.cfg.StaleFor) {
			c.st.l1Misses.Add(1)
			c.st.staleServed.Add(1)
			return Result{Entry: e, Stale: true, Age: time.Duration(now - e.stored)}, nil
		}
	} else {
		e = nil
	}
	c.st.l1Misses.Add(1)
	return c.wait(ctx, key, ttl, load, e)
}

// fillResult is the outcome of one fill, shared by every caller of it.
type fillResult struct {
	e      *Entry
	stale  bool
	leader *byte // identifies the caller whose fill ran
}

// wait joins or starts the fill of key and waits for it or for ctx.
func (c *Cache) wait(ctx context.Context, key string, ttl time.Duration, load LoadFunc, cur *Entry) (Result, error) {
	me := new(byte)
	ch := c.sf.DoChan(key, func() (any, error) {
		return c.fill(context.WithoutCancel(ctx), key, ttl, load, cur, me)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Result{}, r.Err
		}
		f := r.Val.(fillResult)
		if f.leader != me {
			c.st.coalesced.Add(1)
		}
		if f.stale {
			c.st.staleServed.Add(1)
			return Result{Entry: f.e, Stale: true, Age: time.Duration(c.nowNano() - f.e.stored)}, nil
		}
		return Result{Entry: f.e}, nil
	case <-ctx.Done():
		c.st.abandoned.Add(1)
		return Result{}, fmt.Errorf("wait for cache fill of %s: %w", key, context.Cause(ctx))
	}
}

// shouldRefresh is XFetch: refresh when now - delta*beta*ln(rand) >= expiry.
func (c *Cache) shouldRefresh(e *Entry, now int64) bool {
	if c.cfg.DisableEarlyRefresh || e.delta <= 0 || e.refreshing.Load() {
		return false
	}
	gap := float64(e.expires) - float64(now)
	window := float64(e.delta) * c.cfg.Beta
	if gap > window*maxNegLog {
		// No rand in (0, 1] can reach the expiry from here: skip the
		// logarithm, most of a hit's XFetch cost, for most of the TTL.
		return false
	}
	return -window*math.Log(c.cfg.Rand()) >= gap
}

// maxNegLog bounds -ln(u) for every float64 u in (0, 1]: the smallest
// positive float64 is 2^-1074, and 1074 ln 2 ≈ 744.44.
const maxNegLog = 745

// refresh starts one background fill of key that replaces e; hits keep
// getting e until it is done.
func (c *Cache) refresh(key string, ttl time.Duration, load LoadFunc, e *Entry) {
	if !e.refreshing.CompareAndSwap(false, true) {
		return
	}
	c.st.earlyRefreshes.Add(1)
	// DoChan's channel is buffered: nobody needs to read it.
	c.sf.DoChan(key, func() (any, error) {
		return c.fill(context.Background(), key, ttl, load, e, nil)
	})
}

// fill runs once per key at a time (singleflight): it takes a fresh value
// from L2 if there is one newer than cur, else loads from the store and
// writes both layers. When the store fails it falls back to the newest
// stale value within StaleFor.
func (c *Cache) fill(ctx context.Context, key string, ttl time.Duration, load LoadFunc, cur *Entry, leader *byte) (fillResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LoadTimeout)
	defer cancel()
	epoch := c.epoch.Load()
	stale := cur
	if c.cfg.L2 != nil && c.l2Usable() {
		e2, err := c.getL2(ctx, key)
		switch {
		case err != nil:
			c.l2Failed("get", err)
		case e2 == nil:
			c.st.l2Misses.Add(1)
		case c.nowNano() < e2.expires && (cur == nil || e2.stored > cur.stored):
			c.st.l2Hits.Add(1)
			c.setL1(key, e2, epoch)
			return fillResult{e: e2, leader: leader}, nil
		default:
			c.st.l2Misses.Add(1)
			if cur == nil || e2.stored > cur.stored {
				stale = e2
			}
		}
	}

	start := c.cfg.Now()
	body, err := load(ctx)
	took := c.cfg.Now().Sub(start)
	c.st.loads.Add(1)
	if c.loadH != nil {
		c.loadH.Observe(took.Seconds())
	}
	if err != nil {
		if k := derrors.Kind(err); k == derrors.NotFound || k == derrors.Invalid {
			return fillResult{}, err
		}
		c.st.loadErrors.Add(1)
		now := c.nowNano()
		if stale != nil && now < stale.expires+int64(c.cfg.StaleFor) {
			c.log.WarnContext(ctx, "cache load failed: serving stale", "key", key, "age", time.Duration(now-stale.stored), "err", err)
			stale.retryAt.Store(now + int64(c.cfg.RetryAfter))
			if stale != cur {
				c.setL1(key, stale, epoch)
			}
			return fillResult{e: stale, stale: true, leader: leader}, nil
		}
		if cur != nil {
			cur.refreshing.Store(false)
		}
		if derrors.Kind(err) != nil {
			return fillResult{}, fmt.Errorf("load %s: %w", key, err)
		}
		return fillResult{}, derrors.Wrap(derrors.Unavailable, fmt.Errorf("load %s: %w", key, err), "the catalog is temporarily unavailable; retry later")
	}
	e := newEntry(body, start, ttl, took, c.cfg.GzipMinSize)
	if c.setL1(key, e, epoch) && c.cfg.L2 != nil && c.l2Usable() {
		if err := c.cfg.L2.Set(ctx, key, e.marshal(), ttl+c.cfg.StaleFor); err != nil {
			c.l2Failed("set", err)
		}
	}
	return fillResult{e: e, leader: leader}, nil
}

// setL1 stores e unless an invalidation happened since epoch was read,
// and reports whether it did.
func (c *Cache) setL1(key string, e *Entry, epoch uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.epoch.Load() != epoch {
		return false
	}
	c.l1.Set(key, e)
	return true
}

func (c *Cache) getL2(ctx context.Context, key string) (*Entry, error) {
	b, ok, err := c.cfg.L2.Get(ctx, key)
	if err != nil || !ok {
		return nil, err
	}
	e, err := unmarshalEntry(b)
	if err != nil {
		c.log.WarnContext(ctx, "cache: undecodable L2 value ignored", "key", key, "err", err)
		return nil, nil
	}
	return e, nil
}

// l2Usable reports whether L2 may be asked: after an error it is skipped
// for a second, so that a dead Redis does not add its timeout to every miss.
func (c *Cache) l2Usable() bool { return c.nowNano() >= c.l2DownUntil.Load() }

func (c *Cache) l2Failed(op string, err error) {
	c.st.l2Errors.Add(1)
	if errors.Is(err, context.Canceled) {
		return
	}
	c.l2DownUntil.Store(c.nowNano() + int64(time.Second))
	c.log.Warn("cache: L2 failed; skipping it for 1s", "op", op, "err", err)
}

// Len returns the approximate number of L1 entries.
func (c *Cache) Len() int { return c.l1.EstimatedSize() }

// clock adapts Config.Now to otter.
type clock struct{ c *Cache }

func (k clock) NowNano() int64                        { return k.c.nowNano() }
func (k clock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// otterLogger sends otter's warnings to slog.
type otterLogger struct{ log *slog.Logger }

func (l otterLogger) Warn(ctx context.Context, msg string, err error) {
	l.log.WarnContext(ctx, "otter: "+msg, "err", err)
}

func (l otterLogger) Error(ctx context.Context, msg string, err error) {
	l.log.ErrorContext(ctx, "otter: "+msg, "err", err)
}
