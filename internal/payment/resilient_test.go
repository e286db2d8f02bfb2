package payment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/briskhq/brisk/api/payment/v1"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

// script decides, per attempt that reaches the server, what happens.
type script struct {
	mu    sync.Mutex
	keys  []string // idempotency key of every Authorize attempt, in order
	calls atomic.Int64
	// fn returns the fault for attempt n (0-based): "" serves it,
	// "fail" answers UNAVAILABLE without doing anything, "lose" serves it
	// and then answers UNAVAILABLE (a lost reply), "slow" waits past the
	// attempt's deadline.
	fn atomic.Pointer[func(n int) string]
}

func (s *script) set(fn func(n int) string) { s.fn.Store(&fn) }

func (s *script) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	n := int(s.calls.Add(1) - 1)
	if a, ok := req.(*paymentv1.AuthorizeRequest); ok {
		s.mu.Lock()
		s.keys = append(s.keys, a.GetIdempotencyKey())
		s.mu.Unlock()
	}
	fault := ""
	if fn := s.fn.Load(); fn != nil {
		fault = (*fn)(n)
	}
	switch fault {
	case "fail":
		return nil, status.Error(codes.Unavailable, "injected")
	case "lose":
		if _, err := h(ctx, req); err != nil {
			return nil, err
		}
		return nil, status.Error(codes.Unavailable, "reply lost")
	case "slow":
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return h(ctx, req)
}

// startScripted serves a simulator behind sc and returns a Resilient
// client of it with the given per-attempt timeout.
func startScripted(t *testing.T, sc *script, attempt time.Duration, cfg ResilienceConfig) (*Resilient, *Simulator) {
	t.Helper()
	sim := newSim(t, openStore(t, "memory"), Faults{})
	conn := serve(t, NewServer(sim, nil, grpc.UnaryInterceptor(sc.intercept)))
	return NewResilient(NewClient(conn, ClientConfig{Timeout: attempt}), cfg), sim
}

// noBreaker keeps the breaker closed in tests about retries.
var noBreaker = ResilienceConfig{FailureRate: 1, Calls: 1 << 20, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func TestResilientRetriesWithSameKey(t *testing.T) {
	tests := []struct {
		name        string
		faults      []string // per attempt; past the end: served
		wantErr     error
		wantCalls   int64
		wantCharges int64
	}{
		{"served at once", nil, nil, 1, 1},
		{"unavailable twice", []string{"fail", "fail"}, nil, 3, 1},
		{"reply lost, retry replays", []string{"lose"}, nil, 2, 1},
		{"reply lost twice", []string{"lose", "lose"}, nil, 3, 1},
		{"attempt deadline", []string{"slow"}, nil, 2, 1},
		{"all attempts fail", []string{"fail", "fail", "fail"}, derrors.Unavailable, 3, 0},
		{"all replies lost: charged once, outcome unknown", []string{"lose", "lose", "lose"}, derrors.Unavailable, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &script{}
			sc.set(func(n int) string {
				if n < len(tt.faults) {
					return tt.faults[n]
				}
				return ""
			})
			r, sim := startScripted(t, sc, 100*time.Millisecond, noBreaker)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			p, err := r.Authorize(ctx, auth("u1/key-1", TokenVisa, 1250))
			if tt.wantErr == nil && (err != nil || p.Status != checkout.PaymentAuthorized) {
				t.Fatalf("Authorize = %+v, %v; want authorized", p, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authorize = %+v, %v; want %v", p, err, tt.wantErr)
			}
			if errors.Is(err, checkout.ErrNotSent) {
				t.Errorf("Authorize error %v says not sent, but attempts were sent", err)
			}
			if got := sc.calls.Load(); got != tt.wantCalls {
				t.Errorf("attempts = %d, want %d", got, tt.wantCalls)
			}
			for i, k := range sc.keys {
				if k != "u1/key-1" {
					t.Errorf("attempt %d carried key %q, want u1/key-1", i, k)
				}
			}
			if got := sim.Stats().Charges; got != tt.wantCharges {
				t.Errorf("charges = %d, want %d", got, tt.wantCharges)
			}
		})
	}
}

func TestResilientAnswersAreNotRetried(t *testing.T) {
	sc := &script{}
	r, _ := startScripted(t, sc, time.Second, noBreaker)
	ctx := t.Context()
	tests := []struct {
		name string
		call func() (checkout.Payment, error)
		want error
	}{
		{"decline", func() (checkout.Payment, error) { return r.Authorize(ctx, auth("k-decline", TokenDecline, 100)) }, nil},
		{"invalid token", func() (checkout.Payment, error) { return r.Authorize(ctx, auth("k-invalid", "tok_nope", 100)) }, derrors.Invalid},
		{"unknown key", func() (checkout.Payment, error) { return r.Lookup(ctx, "nope") }, derrors.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sc.calls.Load()
			_, err := tt.call()
			if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if got := sc.calls.Load() - before; got != 1 {
				t.Errorf("attempts = %d, want 1", got)
			}
		})
	}
	if s := r.State(); s != "closed" {
		t.Errorf("State() = %q after answers, want closed", s)
	}
}

// TestResilientRetryBudget: with every attempt failing fast, retries add
// at most RetryRatio of the calls (plus the burst), not MaxAttempts-1 per call.
func TestResilientRetryBudget(t *testing.T) {
	sc := &script{}
	sc.set(func(int) string { return "fail" })
	cfg := noBreaker
	cfg.RetryRatio, cfg.RetryBurst, cfg.MaxAttempts = 0.1, 5, 4
	r, _ := startScripted(t, sc, time.Second, cfg)
	const calls = 300
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			if _, err := r.Authorize(t.Context(), auth(fmt.Sprintf("k%d", i), TokenVisa, 100)); !errors.Is(err, derrors.Unavailable) {
				t.Errorf("Authorize = %v, want unavailable", err)
			}
		})
		if i%10 == 9 {
			wg.Wait() // ten at a time
		}
	}
	wg.Wait()
	attempts := sc.calls.Load()
	maxRetries := int64(calls*cfg.RetryRatio + cfg.RetryBurst + 1)
	t.Logf("%d calls, %d attempts (%d retries); stats %+v", calls, attempts, attempts-calls, r.Stats())
	if attempts < calls || attempts-calls > maxRetries {
		t.Errorf("attempts = %d for %d calls, want at most %d retries (10%% + burst)", attempts, calls, maxRetries)
	}
	if r.Stats().BudgetRejects == 0 {
		t.Error("BudgetRejects = 0, want the budget to have refused retries")
	}
}

func TestResilientBreaker(t *testing.T) {
	sc := &script{}
	sc.set(func(int) string { return "fail" })
	cfg := ResilienceConfig{MaxAttempts: 1, FailureRate: 0.5, Calls: 8, OpenFor: 300 * time.Millisecond, HalfOpenCalls: 2}
	r, sim := startScripted(t, sc, time.Second, cfg)
	ctx := t.Context()

	for i := range 4 {
		if _, err := r.Authorize(ctx, auth(fmt.Sprintf("k%d", i), TokenVisa, 100)); !errors.Is(err, derrors.Unavailable) || errors.Is(err, checkout.ErrNotSent) {
			t.Fatalf("call %d = %v, want unavailable (sent)", i, err)
		}
	}
	if s := r.State(); s != "open" {
		t.Fatalf("State() after 4 failures = %q, want open", s)
	}
	if err := r.Ready(); !errors.Is(err, checkout.ErrNotSent) || !errors.Is(err, derrors.Unavailable) {
		t.Errorf("Ready() while open = %v, want unavailable + not sent", err)
	}
	if r.RetryAfter() <= 0 {
		t.Errorf("RetryAfter() while open = %v, want > 0", r.RetryAfter())
	}

	// Open: refused at once, without reaching the server.
	before := sc.calls.Load()
	start := time.Now()
	_, err := r.Authorize(ctx, auth("k-open", TokenVisa, 100))
	if took := time.Since(start); took > 20*time.Millisecond {
		t.Errorf("call while open took %v, want it refused at once", took)
	}
	if !errors.Is(err, checkout.ErrNotSent) || !errors.Is(err, derrors.Unavailable) {
		t.Errorf("call while open = %v, want unavailable + not sent", err)
	}
	if sc.calls.Load() != before {
		t.Errorf("call while open reached the server")
	}

	// After OpenFor: half-open; a failing trial opens it again.
	time.Sleep(350 * time.Millisecond)
	if _, err := r.Authorize(ctx, auth("k-trial-1", TokenVisa, 100)); !errors.Is(err, derrors.Unavailable) || errors.Is(err, checkout.ErrNotSent) {
		t.Fatalf("failing trial = %v, want unavailable (sent)", err)
	}
	if s := r.State(); s != "open" {
		t.Fatalf("State() after a failed trial = %q, want open", s)
	}

	// The service recovers: after OpenFor the trials pass and it closes.
	sc.set(func(int) string { return "" })
	time.Sleep(350 * time.Millisecond)
	if err := r.Ready(); err != nil {
		t.Errorf("Ready() after OpenFor = %v, want nil (half-open)", err)
	}
	for i := range 2 {
		if _, err := r.Authorize(ctx, auth(fmt.Sprintf("k-ok-%d", i), TokenVisa, 100)); err != nil {
			t.Fatalf("trial %d = %v, want success", i, err)
		}
		if i == 0 {
			if s := r.State(); s != "half_open" {
				t.Errorf("State() after one good trial = %q, want half_open", s)
			}
		}
	}
	if s := r.State(); s != "closed" {
		t.Errorf("State() after good trials = %q, want closed", s)
	}
	if got := sim.Stats().Charges; got != 2 {
		t.Errorf("charges = %d, want 2 (the trials)", got)
	}
}

// TestResilientBreakerStopsRetries: a call whose retry meets an open
// breaker stops, and since its first attempt was sent, it is not "not sent".
func TestResilientBreakerStopsRetries(t *testing.T) {
	sc := &script{}
	sc.set(func(int) string { return "fail" })
	cfg := ResilienceConfig{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond,
		FailureRate: 0.5, Calls: 4, OpenFor: time.Minute}
	r, _ := startScripted(t, sc, time.Second, cfg)
	_, err := r.Authorize(t.Context(), auth("k", TokenVisa, 100))
	if !errors.Is(err, derrors.Unavailable) || errors.Is(err, checkout.ErrNotSent) {
		t.Fatalf("Authorize = %v, want unavailable, sent", err)
	}
	if got := sc.calls.Load(); got != 2 {
		t.Errorf("attempts = %d, want 2 (the breaker opens after the second)", got)
	}
}

func TestFullJitter(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration // upper bound
	}{{1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {3, 40 * time.Millisecond}, {5, 100 * time.Millisecond}, {40, 100 * time.Millisecond}}
	for _, tt := range tests {
		var maxSeen time.Duration
		for range 2000 {
			d := fullJitter(10*time.Millisecond, 100*time.Millisecond, tt.n)
			if d < 0 || d > tt.want {
				t.Fatalf("fullJitter(retry %d) = %v, want in [0, %v]", tt.n, d, tt.want)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < tt.want/2 {
			t.Errorf("fullJitter(retry %d): max of 2000 draws %v, want spread up to %v", tt.n, maxSeen, tt.want)
		}
	}
}

// TestResilientBreakerOpensAfterSuccesses: a long run of successes does
// not hold the breaker closed when the service goes down.
func TestResilientBreakerOpensAfterSuccesses(t *testing.T) {
	sc := &script{}
	r, _ := startScripted(t, sc, time.Second, ResilienceConfig{MaxAttempts: 1})
	for i := range 200 {
		if _, err := r.Lookup(t.Context(), fmt.Sprintf("k%d", i)); !errors.Is(err, derrors.NotFound) {
			t.Fatalf("Lookup = %v, want NotFound (an answer)", err)
		}
	}
	sc.set(func(int) string { return "fail" })
	calls := 0
	for ; calls < 100 && r.State() != "open"; calls++ {
		r.Lookup(t.Context(), "k")
	}
	if want := int(DefaultResilience.FailureRate * float64(DefaultResilience.Calls)); calls != want {
		t.Errorf("breaker opened after %d failures following 200 successes, want %d", calls, want)
	}
}
