package resilience

import (
	"context"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/briskhq/brisk/internal/redis"
)

// GCRA is the distributed limiter of package redis (GCRA in Redis, one
// budget per key across every API instance).
type GCRA interface {
	Allow(ctx context.Context, key string, limit redis.Limit) (redis.Result, error)
}

// sharedTimeout bounds one Redis check: a slow Redis must not slow every
// request down.
const sharedTimeout = 100 * time.Millisecond

// Shared is a Store whose buckets live in Redis, so that every instance
// draws from one budget per key. When Redis fails, the fallback store
// (Local, per instance) decides instead: a Redis outage neither blocks
// the API nor lifts its limits. After a few failures in a row a circuit
// breaker skips Redis for a second at a time, so that an outage costs no
// latency on every request.
type Shared struct {
	gcra     GCRA
	fallback Store
	breaker  circuitbreaker.CircuitBreaker[redis.Result]
}

// NewShared returns a Shared store over gcra with a fallback store.
func NewShared(gcra GCRA, fallback Store) *Shared {
	return &Shared{gcra: gcra, fallback: fallback, breaker: circuitbreaker.NewBuilder[redis.Result]().
		WithFailureThreshold(3).
		WithDelay(time.Second).
		Build()}
}

// Allow takes one event from key's shared budget; see Store.
func (s *Shared) Allow(ctx context.Context, key string, l Limit) (Decision, error) {
	r, err := failsafe.With(s.breaker).WithContext(ctx).Get(func() (redis.Result, error) {
		ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
		defer cancel()
		return s.gcra.Allow(ctx, key, redis.Limit{Rate: l.Rate, Burst: l.burst(), Period: l.Period})
	})
	if err != nil {
		return s.fallback.Allow(ctx, key, l)
	}
	return Decision{Allowed: r.Allowed, Remaining: r.Remaining, RetryAfter: r.RetryAfter, ResetAfter: r.ResetAfter}, nil
}
