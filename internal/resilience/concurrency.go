package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/briskhq/brisk/internal/problem"
)

// Class is a request's priority under overload: at the concurrency limit,
// lower classes are shed first.
type Class int

// Priority classes, highest first.
const (
	Critical    Class = iota // checkout, admin: shed last
	Interactive              // cart, orders, sign-in
	Browse                   // product pages, search, the storefront: shed first
	Exempt                   // health checks and metrics: never limited
)

var classNames = [...]string{"critical", "interactive", "browse", "exempt"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "class" + strconv.Itoa(int(c))
	}
	return classNames[c]
}

// ConcurrencyConfig configures NewConcurrency. Zero fields take
// DefaultConcurrency's values.
type ConcurrencyConfig struct {
	// MinLimit, MaxLimit and InitialLimit bound the adaptive limit on
	// requests in flight. With MinLimit == MaxLimit the limit is fixed.
	MinLimit, MaxLimit, InitialLimit int
	// Shares are, for Critical, Interactive and Browse, the share of the
	// limit that requests of the class may fill; the rest is kept for the
	// classes above, so that browsing is shed before checkouts are.
	Shares [3]float64
	// Classify gives a request's class; nil: every request is Interactive.
	Classify func(*http.Request) Class
	// RetryAfter is sent with a shed request's 503.
	RetryAfter time.Duration
	// Metrics counts shed requests; nil: none.
	Metrics *Metrics
	// Logger, at debug level, logs limit changes; nil discards.
	Logger *slog.Logger
}

// DefaultConcurrency is used for zero fields of ConcurrencyConfig. The
// floor is high enough for bursts of a few dozen requests (which the
// limit, rising a step per sampling window, could not follow), and low
// enough that requests queued behind it stay within the browse SLO.
var DefaultConcurrency = ConcurrencyConfig{
	MinLimit: 64, MaxLimit: 1000, InitialLimit: 128,
	Shares:     [3]float64{1, 0.85, 0.7},
	RetryAfter: time.Second,
}

// Concurrency is an adaptive concurrency limit (failsafe-go's
// adaptivelimiter, of the gradient/Vegas family: the limit falls when
// recent latency rises above its baseline and grows while it does not).
// Requests above the limit, or above their class's share of it, are
// answered 503 at once with Retry-After.
type Concurrency struct {
	cfg     ConcurrencyConfig
	limiter adaptivelimiter.AdaptiveLimiter[any]
}

// NewConcurrency returns a concurrency limit.
func NewConcurrency(cfg ConcurrencyConfig) (*Concurrency, error) {
	d := DefaultConcurrency
	if cfg.MinLimit <= 0 {
		cfg.MinLimit = min(d.MinLimit, max(1, cfg.MaxLimit))
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = max(d.MaxLimit, cfg.MinLimit)
	}
	if cfg.InitialLimit <= 0 {
		cfg.InitialLimit = min(max(d.InitialLimit, cfg.MinLimit), cfg.MaxLimit)
	}
	if cfg.MinLimit > cfg.MaxLimit || cfg.InitialLimit < cfg.MinLimit || cfg.InitialLimit > cfg.MaxLimit {
		return nil, fmt.Errorf("concurrency limit: want min %d <= initial %d <= max %d", cfg.MinLimit, cfg.InitialLimit, cfg.MaxLimit)
	}
	for i, s := range cfg.Shares {
		if s == 0 {
			cfg.Shares[i] = d.Shares[i]
		} else if s < 0 || s > 1 {
			return nil, fmt.Errorf("concurrency limit: share %v of %s is not in (0, 1]", s, Class(i))
		}
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = d.RetryAfter
	}
	if cfg.Classify == nil {
		cfg.Classify = func(*http.Request) Class { return Interactive }
	}
	b := adaptivelimiter.NewBuilder[any]().
		WithLimits(uint(cfg.MinLimit), uint(cfg.MaxLimit), uint(cfg.InitialLimit))
	if cfg.Logger != nil {
		b = b.WithLogger(cfg.Logger)
	}
	return &Concurrency{cfg: cfg, limiter: b.Build()}, nil
}

// Limit returns the current limit on requests in flight.
func (c *Concurrency) Limit() int { return c.limiter.Limit() }

// Inflight returns the requests holding a slot now.
func (c *Concurrency) Inflight() int { return c.limiter.Inflight() }

// admit returns a permit for a request of class cl, or false to shed it.
func (c *Concurrency) admit(cl Class) (adaptivelimiter.Permit, bool) {
	if share := c.cfg.Shares[cl]; share < 1 {
		if float64(c.limiter.Inflight()) >= share*float64(c.limiter.Limit()) {
			return nil, false
		}
	}
	return c.limiter.TryAcquirePermit()
}

// Middleware limits next. The time a request takes counts toward the
// limit's latency samples unless the client went away first.
func (c *Concurrency) Middleware(next http.Handler) http.Handler {
	retryAfter := strconv.Itoa(seconds(c.cfg.RetryAfter))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl := c.cfg.Classify(r)
		if cl < Critical || cl >= Exempt {
			next.ServeHTTP(w, r)
			return
		}
		p, ok := c.admit(cl)
		if !ok {
			c.cfg.Metrics.shedOne(cl)
			w.Header().Set("Retry-After", retryAfter)
			writeProblem(w, http.StatusServiceUnavailable, problem.TypeOverloaded, "Service Unavailable",
				"the service is overloaded; retry later")
			return
		}
		defer func() {
			if errors.Is(r.Context().Err(), context.Canceled) {
				p.Drop()
			} else {
				p.Record()
			}
		}()
		next.ServeHTTP(w, r)
	})
}
