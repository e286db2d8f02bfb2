package redis

import (
	"context"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Limit is a GCRA rate: Rate events per Period, with bursts of up to Burst.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// PerSecond returns a limit of rate events per second with an equal burst.
func PerSecond(rate int) Limit { return Limit{Rate: rate, Burst: rate, Period: time.Second} }

// PerMinute returns a limit of rate events per minute with an equal burst.
func PerMinute(rate int) Limit { return Limit{Rate: rate, Burst: rate, Period: time.Minute} }

// Result is the outcome of one Allow.
type Result struct {
	Allowed    bool
	Remaining  int           // events still allowed right now
	RetryAfter time.Duration // when denied: wait this long before the next try; else 0
	ResetAfter time.Duration // until the limiter is back to a full burst
}

// Limiter is a rate limit whose state lives in Redis, so that every API
// instance draws from one budget per key. It runs GCRA (go-redis/redis_rate)
// with Redis's clock. Its keys are "rate:<client prefix><key>" (redis_rate
// adds "rate:").
type Limiter struct {
	c *Client
	l *redis_rate.Limiter
}

// NewLimiter returns the distributed limiter on c.
func NewLimiter(c *Client) *Limiter { return &Limiter{c: c, l: redis_rate.NewLimiter(c.rdb)} }

// Allow takes one event from key's budget under limit.
func (l *Limiter) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	r, err := l.l.Allow(ctx, l.c.key(key), redis_rate.Limit{Rate: limit.Rate, Burst: limit.Burst, Period: limit.Period})
	if err != nil {
		return Result{}, wrapErr("rate limit", err)
	}
	res := Result{Allowed: r.Allowed > 0, Remaining: r.Remaining, ResetAfter: max(0, r.ResetAfter)}
	if !res.Allowed {
		res.RetryAfter = max(0, r.RetryAfter)
	}
	return res, nil
}
