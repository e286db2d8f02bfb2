// Package resilience protects the API from overload and abuse at its edge:
// rate limits per client and per user (a local token bucket, or GCRA in
// Redis when instances share a budget), an adaptive concurrency limit that
// sheds browse traffic before checkout traffic, a per-request deadline and
// security headers. Each piece is middleware, func(http.Handler)
// http.Handler, configured by a Config struct; rejections are RFC 9457
// problems (429 or 503) with Retry-After.
package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"

	"github.com/briskhq/brisk/internal/problem"
)

// Limit is a rate: Rate events per Period, in bursts of up to Burst. The
// zero Limit is off.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// On reports whether the limit limits anything.
func (l Limit) On() bool { return l.Rate > 0 && l.Period > 0 }

func (l Limit) burst() int { return max(1, l.Burst) }

// perSecond is the refill rate in events per second.
func (l Limit) perSecond() float64 { return float64(l.Rate) / l.Period.Seconds() }

// String formats l as ParseLimit reads it ("off" for the zero Limit).
func (l Limit) String() string {
	if !l.On() {
		return "off"
	}
	unit := l.Period.String()
	switch l.Period {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	s := fmt.Sprintf("%d/%s", l.Rate, unit)
	if l.Burst != l.Rate {
		s += fmt.Sprintf(":%d", l.Burst)
	}
	return s
}

// Set parses s into l (see ParseLimit), so that a *Limit is a flag.Value.
func (l *Limit) Set(s string) error {
	v, err := ParseLimit(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLimit reads "RATE/PERIOD[:BURST]": PERIOD is s, m, h or a Go
// duration ("100/s", "10/15m:10", "5/m:20"); the burst defaults to the
// rate. "off", "0" and "" are the zero (off) Limit.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "0" {
		return Limit{}, nil
	}
	spec, burstStr, hasBurst := strings.Cut(s, ":")
	rateStr, periodStr, ok := strings.Cut(spec, "/")
	if !ok {
		return Limit{}, fmt.Errorf("rate limit %q: want RATE/PERIOD[:BURST], e.g. 100/s or 10/15m:10", s)
	}
	n, err := strconv.Atoi(rateStr)
	if err != nil || n < 1 {
		return Limit{}, fmt.Errorf("rate limit %q: rate must be a positive integer", s)
	}
	var period time.Duration
	switch periodStr {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	default:
		if period, err = time.ParseDuration(periodStr); err != nil || period <= 0 {
			return Limit{}, fmt.Errorf("rate limit %q: period must be s, m, h or a positive duration", s)
		}
	}
	l := Limit{Rate: n, Burst: n, Period: period}
	if hasBurst {
		if l.Burst, err = strconv.Atoi(burstStr); err != nil || l.Burst < 1 {
			return Limit{}, fmt.Errorf("rate limit %q: burst must be a positive integer", s)
		}
	}
	return l, nil
}

// Decision is the outcome of one rate-limit check.
type Decision struct {
	Allowed    bool
	Remaining  int           // events still allowed right now
	RetryAfter time.Duration // when denied: the wait before one more event is allowed
	ResetAfter time.Duration // until the bucket is full again
}

// Store keeps rate-limit state: Local in this process, or a shared one
// (Shared, on Redis) when instances must draw from one budget.
type Store interface {
	// Allow takes one event from key's budget under l.
	Allow(ctx context.Context, key string, l Limit) (Decision, error)
}

// Local is a Store of token buckets (golang.org/x/time/rate) in this
// process, one per key, kept in a bounded cache (otter); a bucket idle
// long enough to have refilled is dropped, which changes nothing.
type Local struct {
	buckets *otter.Cache[string, *rate.Limiter]
}

// NewLocal returns a Local store holding at most maxKeys buckets.
func NewLocal(maxKeys int) *Local {
	return &Local{buckets: otter.Must(&otter.Options[string, *rate.Limiter]{
		MaximumSize:      max(maxKeys, 16),
		ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](time.Hour),
	})}
}

// Allow takes one event from key's bucket; see Store.
func (s *Local) Allow(_ context.Context, key string, l Limit) (Decision, error) {
	b, ok := s.buckets.GetIfPresent(key)
	if !ok {
		b, _ = s.buckets.SetIfAbsent(key, rate.NewLimiter(rate.Limit(l.perSecond()), l.burst()))
	}
	now := time.Now()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return Decision{RetryAfter: l.Period, ResetAfter: l.Period}, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return Decision{RetryAfter: d, ResetAfter: refill(l, b.TokensAt(now))}, nil
	}
	tokens := b.TokensAt(now)
	return Decision{Allowed: true, Remaining: max(0, int(tokens)), ResetAfter: refill(l, tokens)}, nil
}

// refill returns how long l's bucket takes to go from tokens to full.
func refill(l Limit, tokens float64) time.Duration {
	missing := float64(l.burst()) - tokens
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / l.perSecond() * float64(time.Second))
}

// KeyFunc names the bucket a request draws from under a policy, or
// returns ok false when the policy does not apply to the request.
type KeyFunc func(r *http.Request) (key string, ok bool)

// Policy is one rate limit: requests that its Key applies to draw from
// the bucket it names, under Limit.
type Policy struct {
	Name  string // in headers, metrics and store keys: "ip", "user", "login-ip", ...
	Limit Limit
	Key   KeyFunc
}

// RateLimitConfig configures RateLimit.
type RateLimitConfig struct {
	// Policies are checked in order; the first that denies answers 429.
	// Policies whose Limit is off are skipped.
	Policies []Policy
	// Store holds the buckets; nil: NewLocal(100_000).
	Store Store
	// Exempt, when set, lets requests it returns true for through
	// unlimited (trusted networks, load generators on loopback).
	Exempt func(r *http.Request) bool
	// Metrics counts rejections; nil: none.
	Metrics *Metrics
	// Logger logs store failures (at most once a minute); nil discards.
	Logger *slog.Logger
}

// RateLimit returns middleware that applies the policies. An allowed
// response carries the RateLimit-Policy and RateLimit header fields of
// the policies that applied (draft-ietf-httpapi-ratelimit-headers); a
// denied one is a 429 problem with the same fields and Retry-After. When
// the store fails, the request is allowed (a limiter outage must not take
// the API down) and the failure is logged.
func RateLimit(cfg RateLimitConfig) func(http.Handler) http.Handler {
	return NewRateLimiter(cfg).Middleware
}

// RateLimiter applies rate-limit policies (see RateLimit).
type RateLimiter struct {
	cfg      RateLimitConfig
	policies []Policy // those that are on
	lastLog  atomic.Int64
}

// NewRateLimiter returns the limiter of cfg's policies.
func NewRateLimiter(cfg RateLimitConfig) *RateLimiter {
	if cfg.Store == nil {
		cfg.Store = NewLocal(100_000)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &RateLimiter{cfg: cfg}
	for _, p := range cfg.Policies {
		if p.Limit.On() && p.Key != nil {
			l.policies = append(l.policies, p)
		}
	}
	return l
}

// On reports whether any policy is on.
func (l *RateLimiter) On() bool { return len(l.policies) > 0 }

// Middleware applies the policies before next.
func (l *RateLimiter) Middleware(next http.Handler) http.Handler {
	if !l.On() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.Check(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Check applies the policies to r. Allowed, it sets the rate-limit
// header fields on w and returns true; denied, it answers the 429 problem
// (its request_id is w's X-Request-Id) and returns false.
func (l *RateLimiter) Check(w http.ResponseWriter, r *http.Request) bool {
	cfg := &l.cfg
	if len(l.policies) == 0 || cfg.Exempt != nil && cfg.Exempt(r) {
		return true
	}
	var policyHdr, stateHdr []string
	for _, p := range l.policies {
		key, ok := p.Key(r)
		if !ok {
			continue
		}
		d, err := cfg.Store.Allow(r.Context(), p.Name+":"+key, p.Limit)
		if err != nil {
			if now := time.Now().Unix(); l.lastLog.Swap(now) < now-60 {
				cfg.Logger.WarnContext(r.Context(), "rate limit store failed; allowing", "policy", p.Name, "err", err)
			}
			continue
		}
		policyHdr = append(policyHdr, fmt.Sprintf(`"%s";q=%d;w=%d`, p.Name, p.Limit.burst(), seconds(p.Limit.Period)))
		if !d.Allowed {
			stateHdr = append(stateHdr, fmt.Sprintf(`"%s";r=0;t=%d`, p.Name, seconds(d.RetryAfter)))
			h := w.Header()
			h.Set("RateLimit-Policy", strings.Join(policyHdr, ", "))
			h.Set("RateLimit", strings.Join(stateHdr, ", "))
			h.Set("Retry-After", strconv.Itoa(seconds(d.RetryAfter)))
			cfg.Metrics.rateLimited(p.Name)
			writeProblem(w, http.StatusTooManyRequests, problem.TypeRateLimited, "Too Many Requests",
				fmt.Sprintf("rate limit %q exceeded (%s); retry after %d s", p.Name, p.Limit, seconds(d.RetryAfter)))
			return false
		}
		stateHdr = append(stateHdr, fmt.Sprintf(`"%s";r=%d;t=%d`, p.Name, d.Remaining, seconds(d.ResetAfter)))
	}
	if len(policyHdr) > 0 {
		h := w.Header()
		h.Set("RateLimit-Policy", strings.Join(policyHdr, ", "))
		h.Set("RateLimit", strings.Join(stateHdr, ", "))
	}
	return true
}

// seconds rounds d up to whole seconds, at least 1 for a positive d.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// writeProblem sends a problem+json whose request id is the one the
// request-id middleware already put in the X-Request-Id response header.
func writeProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	h := w.Header()
	h.Set("Content-Type", problem.ContentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(problem.Problem{
		Type: typ, Title: title, Status: status, Detail: detail, RequestID: h.Get("X-Request-Id"),
	}.JSON())
}
