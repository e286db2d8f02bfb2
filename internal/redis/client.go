// Package redis holds brisk's Redis components (go-redis v9): the cart
// store, the shared L2 response cache, the distributed GCRA rate limit
// and the pub/sub fan-out that drops L1 cache entries on every API
// instance. Timeouts are short so that a dead Redis fails calls within a
// few hundred milliseconds, as derrors.Unavailable, and the client heals
// by itself when Redis comes back.
package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/briskhq/brisk/internal/derrors"
)

// Timeouts of every connection; a call on a dead Redis fails within about
// DialTimeout + one retry.
const (
	DialTimeout  = 200 * time.Millisecond
	ReadTimeout  = 200 * time.Millisecond
	WriteTimeout = 200 * time.Millisecond
	PoolTimeout  = 300 * time.Millisecond
)

// Client is a Redis connection pool with a key prefix. It is safe for
// concurrent use.
type Client struct {
	rdb    *goredis.Client
	prefix string
	logger *slog.Logger
	addr   string
}

// Option configures Open.
type Option func(*Client)

// WithPrefix puts prefix before every key and channel name, so that
// several deployments (or tests) can share one Redis.
func WithPrefix(prefix string) Option { return func(c *Client) { c.prefix = prefix } }

// Open connects to the Redis at url (redis://[user:pass@]host:port/db or
// rediss://...) and pings it. An unreachable Redis is an error of kind
// derrors.Unavailable. A process that must start while Redis is down
// (and serve from L1 and the database meanwhile) uses New instead.
func Open(ctx context.Context, url string, logger *slog.Logger, opts ...Option) (*Client, error) {
	c, err := New(url, logger, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		c.rdb.Close()
		return nil, fmt.Errorf("open redis %s: %w", c.addr, err)
	}
	c.logger.Info("redis connected", "addr", c.addr, "prefix", c.prefix)
	return c, nil
}

// New returns a client for the Redis at url without connecting: calls
// fail with derrors.Unavailable until Redis answers, then work. Its only
// error is a malformed URL (derrors.Invalid).
func New(url string, logger *slog.Logger, opts ...Option) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, derrors.New(derrors.Invalid, "open redis: malformed URL")
	}
	o.DialTimeout = DialTimeout
	o.ReadTimeout = ReadTimeout
	o.WriteTimeout = WriteTimeout
	o.PoolTimeout = PoolTimeout
	o.ContextTimeoutEnabled = true
	// One dial per attempt and one retry per command: a stale connection
	// after a Redis restart is retried on a fresh one, a dead Redis fails fast.
	o.DialerRetries = 1
	o.MaxRetries = 1
	o.MinRetryBackoff = 5 * time.Millisecond
	o.MaxRetryBackoff = 50 * time.Millisecond
	o.DisableIdentity = true // no CLIENT SETINFO round trip per connection

	c := &Client{rdb: goredis.NewClient(o), logger: logger, addr: o.Addr}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	return wrapErr("ping redis", c.rdb.Ping(ctx).Err())
}

// Close closes the connection pool.
func (c *Client) Close() error { return c.rdb.Close() }

// Prefix returns the key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Redis returns the underlying go-redis client, for tools and tests.
// Keys written through it do not get the prefix.
func (c *Client) Redis() *goredis.Client { return c.rdb }

// PoolStats returns the connection pool's statistics (for metrics).
func (c *Client) PoolStats() *goredis.PoolStats { return c.rdb.PoolStats() }

func (c *Client) key(k string) string { return c.prefix + k }

// wrapErr names the failed operation and makes errors that mean "Redis is
// not reachable or not serving" derrors.Unavailable. Error replies that
// are bugs (WRONGTYPE, a script error) stay internal. Cancellation by the
// caller is passed through.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if derrors.Kind(err) != nil || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if unavailable(err) {
		return derrors.Wrap(derrors.Unavailable, fmt.Errorf("%s: %w", op, err), "cache or cart storage unavailable")
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	var re goredis.Error
	if errors.As(err, &re) {
		// A reply from a server that is loading, read-only, failing over or busy.
		msg := re.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "MISCONF"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, goredis.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) ||
		errors.Is(err, goredis.ErrPoolExhausted)
}
