package payment

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

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

// ResilienceConfig tunes Resilient. Zero fields take DefaultResilience's
// values. The deadline of one attempt is the wrapped Client's Timeout; the
// deadline of a whole call, retries included, is the caller's context.
type ResilienceConfig struct {
	// MaxAttempts bounds the attempts of one call, the first included.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the backoff before retry n: a uniformly
	// random wait in [0, min(MaxDelay, BaseDelay*2^(n-1))] ("full jitter").
	BaseDelay, MaxDelay time.Duration
	// RetryRatio is the retry budget: each call earns RetryRatio of a
	// retry and each retry spends one, so retries add at most this share
	// of load on top of the calls (plus RetryBurst).
	RetryRatio float64
	// RetryBurst caps the retries saved up while all is well.
	RetryBurst float64
	// FailureRate and Calls open the breaker: it opens when FailureRate
	// or more of the last Calls attempts failed (unavailable or timed out;
	// answers such as a decline are successes). A window of attempts, not
	// of time, so that a burst of earlier successes cannot hold it closed
	// through an outage.
	FailureRate float64
	Calls       uint
	// OpenFor is how long the breaker stays open before it lets trial
	// calls through (half-open).
	OpenFor time.Duration
	// HalfOpenCalls trial calls must all succeed to close the breaker;
	// one failure opens it again.
	HalfOpenCalls uint
	// Logger logs breaker transitions; nil discards.
	Logger *slog.Logger
}

// DefaultResilience is used for zero fields of ResilienceConfig.
var DefaultResilience = ResilienceConfig{
	MaxAttempts: 3, BaseDelay: 20 * time.Millisecond, MaxDelay: 250 * time.Millisecond,
	RetryRatio: 0.1, RetryBurst: 10,
	FailureRate: 0.5, Calls: 20,
	OpenFor: 5 * time.Second, HalfOpenCalls: 3,
}

func (c ResilienceConfig) withDefaults() ResilienceConfig {
	d := DefaultResilience
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = d.BaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = d.MaxDelay
	}
	if c.RetryRatio <= 0 {
		c.RetryRatio = d.RetryRatio
	}
	if c.RetryBurst <= 0 {
		c.RetryBurst = d.RetryBurst
	}
	if c.FailureRate <= 0 || c.FailureRate > 1 {
		c.FailureRate = d.FailureRate
	}
	if c.Calls == 0 {
		c.Calls = d.Calls
	}
	if c.OpenFor <= 0 {
		c.OpenFor = d.OpenFor
	}
	if c.HalfOpenCalls == 0 {
		c.HalfOpenCalls = d.HalfOpenCalls
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Calls is the part of Client that Resilient wraps: checkout.Payments
// and Capture.
type Calls interface {
	checkout.Payments
	Capture(ctx context.Context, key string) (checkout.Payment, error)
}

var _ Calls = (*Client)(nil)

// Resilient wraps the payment client with retries and a circuit breaker
// (failsafe-go): an attempt that fails as unavailable (UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, or the attempt's own
// deadline) is retried with full-jitter backoff, with the same request and
// so the same idempotency key, while the call's context, MaxAttempts and
// the retry budget allow. Answers (a decline, NOT_FOUND, INVALID_ARGUMENT,
// FAILED_PRECONDITION) are never retried.
//
// Every attempt goes through one breaker. While it is open, calls fail at
// once with an error of kind derrors.Unavailable that wraps
// checkout.ErrNotSent when no attempt of the call reached the wire. It
// implements checkout.Payments.
type Resilient struct {
	c       Calls
	cfg     ResilienceConfig
	breaker circuitbreaker.CircuitBreaker[checkout.Payment]
	retry   retrypolicy.RetryPolicy[checkout.Payment]
	budget  *retryBudget

	attempts, retries, rejected atomic.Int64
}

var _ checkout.Payments = (*Resilient)(nil)

// NewResilient wraps c.
func NewResilient(c Calls, cfg ResilienceConfig) *Resilient {
	cfg = cfg.withDefaults()
	r := &Resilient{c: c, cfg: cfg, budget: newRetryBudget(cfg.RetryRatio, cfg.RetryBurst)}
	r.breaker = circuitbreaker.NewBuilder[checkout.Payment]().
		HandleIf(func(_ checkout.Payment, err error) bool { return failure(err) }).
		WithFailureThresholdRatio(max(1, uint(math.Ceil(cfg.FailureRate*float64(cfg.Calls)))), cfg.Calls).
		WithDelay(cfg.OpenFor).
		WithSuccessThreshold(cfg.HalfOpenCalls).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			cfg.Logger.Warn("payment circuit breaker", "from", stateName(e.OldState), "to", stateName(e.NewState))
		}).
		Build()
	base, maxDelay := cfg.BaseDelay, cfg.MaxDelay
	r.retry = retrypolicy.NewBuilder[checkout.Payment]().
		HandleIf(func(_ checkout.Payment, err error) bool { return failure(err) }).
		AbortOnErrors(circuitbreaker.ErrOpen).
		WithMaxAttempts(cfg.MaxAttempts).
		WithDelayFunc(func(e failsafe.ExecutionAttempt[checkout.Payment]) time.Duration {
			return fullJitter(base, maxDelay, e.Attempts())
		}).
		WithBudget(r.budget).
		ReturnLastFailure().
		OnRetry(func(failsafe.ExecutionEvent[checkout.Payment]) { r.retries.Add(1) }).
		Build()
	return r
}

// failure reports whether an attempt's error means the service did not
// answer (so it counts against the breaker and may be retried). An answer
// of another kind, or a cancellation by the caller, is not a failure.
func failure(err error) bool {
	return err != nil && errors.Is(err, derrors.Unavailable) && !errors.Is(err, context.Canceled)
}

// fullJitter returns a random delay in [0, min(maxDelay, base*2^(n-1))]
// for retry n (AWS's "full jitter").
func fullJitter(base, maxDelay time.Duration, n int) time.Duration {
	d := maxDelay
	if n < 30 {
		d = min(maxDelay, base<<max(0, n-1))
	}
	return rand.N(d + 1)
}

// Authorize charges a.Amount to a.Token under a.Key; see checkout.Payments.
func (r *Resilient) Authorize(ctx context.Context, a checkout.Authorization) (checkout.Payment, error) {
	return r.do(ctx, "authorize payment", func(ctx context.Context) (checkout.Payment, error) { return r.c.Authorize(ctx, a) })
}

// Lookup returns the payment made under key, or derrors.NotFound.
func (r *Resilient) Lookup(ctx context.Context, key string) (checkout.Payment, error) {
	return r.do(ctx, "look up payment", func(ctx context.Context) (checkout.Payment, error) { return r.c.Lookup(ctx, key) })
}

// Void cancels the payment under key; see Client.Void.
func (r *Resilient) Void(ctx context.Context, key string) (checkout.Payment, error) {
	return r.do(ctx, "void payment", func(ctx context.Context) (checkout.Payment, error) { return r.c.Void(ctx, key) })
}

// Capture takes the money authorized under key.
func (r *Resilient) Capture(ctx context.Context, key string) (checkout.Payment, error) {
	return r.do(ctx, "capture payment", func(ctx context.Context) (checkout.Payment, error) { return r.c.Capture(ctx, key) })
}

func (r *Resilient) do(ctx context.Context, op string, call func(context.Context) (checkout.Payment, error)) (checkout.Payment, error) {
	var sent atomic.Bool
	p, err := failsafe.With[checkout.Payment](r.retry, r.breaker).WithContext(ctx).
		GetWithExecution(func(e failsafe.Execution[checkout.Payment]) (checkout.Payment, error) {
			sent.Store(true)
			r.attempts.Add(1)
			return call(e.Context())
		})
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, circuitbreaker.ErrOpen):
		r.rejected.Add(1)
		if !sent.Load() {
			return checkout.Payment{}, derrors.Wrap(derrors.Unavailable, fmt.Errorf("%s: %w: %w", op, checkout.ErrNotSent, err),
				op+": payment service unavailable")
		}
		return checkout.Payment{}, derrors.Wrap(derrors.Unavailable, fmt.Errorf("%s: %w", op, err), op+": payment service unavailable")
	case errors.Is(err, budget.ErrExceeded):
		return checkout.Payment{}, derrors.Wrap(derrors.Unavailable, fmt.Errorf("%s: retry budget exhausted: %w", op, err),
			op+": payment service unavailable")
	}
	return checkout.Payment{}, err
}

// Ready returns nil unless the breaker is open, in which case a call now
// would not be sent: the error is of kind derrors.Unavailable and wraps
// checkout.ErrNotSent. It fits checkout.Config.PaymentGate.
func (r *Resilient) Ready() error {
	if d := r.RetryAfter(); d > 0 {
		return derrors.Wrap(derrors.Unavailable, checkout.ErrNotSent,
			fmt.Sprintf("the payment service is unavailable; retry in %s", d.Round(100*time.Millisecond)))
	}
	return nil
}

// State returns the breaker's state: "closed", "open" or "half_open".
func (r *Resilient) State() string { return stateName(r.breaker.State()) }

// RetryAfter returns how long the breaker stays open: 0 when it is not,
// or when its delay is over and the next call will be a trial.
func (r *Resilient) RetryAfter() time.Duration { return r.breaker.RemainingDelay() }

// ResilienceStats counts what Resilient did since it was made.
type ResilienceStats struct {
	Attempts       int64 // attempts sent (first tries and retries)
	Retries        int64 // retries sent
	BreakerRejects int64 // calls refused or cut short by the open breaker
	BudgetRejects  int64 // retries refused by the retry budget
}

// Stats returns the counters.
func (r *Resilient) Stats() ResilienceStats {
	return ResilienceStats{
		Attempts: r.attempts.Load(), Retries: r.retries.Load(),
		BreakerRejects: r.rejected.Load(), BudgetRejects: r.budget.exceeded.Load(),
	}
}

func stateName(s circuitbreaker.State) string {
	switch s {
	case circuitbreaker.OpenState:
		return "open"
	case circuitbreaker.HalfOpenState:
		return "half_open"
	}
	return "closed"
}

// retryBudget is a retry budget in the manner of gRPC's retry throttling
// and Finagle's RetryBudget: every call deposits ratio of a token, every
// retry withdraws a whole one, and the balance is capped at burst. Over
// any stretch of time, retries are at most ratio x calls + burst.
// failsafe-go's own budget bounds concurrent retries instead, which lets
// fast failures retry every call; this one plugs into the same
// retrypolicy.WithBudget hook (failsafe-go's budget interface, v0.9.8).
type retryBudget struct {
	ratio, burst float64

	mu       sync.Mutex
	tokens   float64
	exceeded atomic.Int64
}

var _ budget.Budget = (*retryBudget)(nil)

func newRetryBudget(ratio, burst float64) *retryBudget {
	return &retryBudget{ratio: ratio, burst: burst, tokens: burst}
}

// Rate returns the share of the burst spent, from 0 to 1.
func (b *retryBudget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return 1 - b.tokens/b.burst
}

// RecordExecution is called when a call starts: it earns ratio of a retry.
func (b *retryBudget) RecordExecution() {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+b.ratio)
	b.mu.Unlock()
}

// ReleaseExecution is called when a call ends.
func (b *retryBudget) ReleaseExecution() {}

// TryAcquirePermit is called before a retry: it spends a token if there is one.
func (b *retryBudget) TryAcquirePermit() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// ReleasePermit is called when a retry ends.
func (b *retryBudget) ReleasePermit() {}

// OnBudgetExceeded is called when a retry was refused.
func (b *retryBudget) OnBudgetExceeded(budget.ExecutionType, failsafe.ExecutionInfo) {
	b.exceeded.Add(1)
}
