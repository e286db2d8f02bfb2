package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/briskhq/brisk/internal/load"
)

// Env is the system under test as the runner drives it: a deployment of
// brisk with its dependencies behind fault injectors.
type Env interface {
	// Target is the base URL the load is sent to.
	Target() string
	// Inject applies f and returns the function that removes it; nil for
	// a fault that is not undone (a killed instance stays dead).
	Inject(ctx context.Context, f Fault) (undo func(context.Context) error, err error)
	// Snapshot reads stock, orders and charges once the system has
	// settled: it waits up to settle for pending orders to be finished.
	Snapshot(ctx context.Context, settle time.Duration) (Snapshot, error)
}

// Options tune Run.
type Options struct {
	// Products is the product id range of the load (1..Products).
	Products int
	// PendingBound is how long an order may stay pending (the
	// reconciler's bound); Settle how long to wait for pending orders
	// before the snapshot. Defaults 10s and PendingBound.
	PendingBound time.Duration
	Settle       time.Duration
	// Logger logs progress; default discards.
	Logger *slog.Logger
}

// Phase names.
const (
	PhaseBefore = "before"
	PhaseDuring = "during"
	PhaseAfter  = "after"
)

// PhaseResult is the steady state measured in one phase.
type PhaseResult struct {
	Name      string
	Requests  int64
	Errors    int64
	ErrorRate float64 // share, 0..1
	Rate      float64 // requests per second
	P99       time.Duration
	Budget    string // the budget judged; empty: none
	Results   []load.BudgetResult
	Held      bool // the budget held (true when there is none)
}

// Result is the outcome of one experiment.
type Result struct {
	Experiment   Experiment
	Phases       []PhaseResult
	FaultEnd     time.Time     // when the last fault was removed (or a kill happened)
	Recovery     time.Duration // from FaultEnd to the first error-free moment
	Recovered    bool
	Acknowledged int // orders answered 201
	Orders       int // orders in the store
	Charges      int // charges at the payment service
	Violations   []Violation
	Holds        bool     // the hypothesis held
	Reasons      []string // why it did not
	Err          error    // the experiment could not be run
}

// window is the progress of a load run over one progress interval.
type window struct {
	start, end        time.Time
	completed, errors int64
}

// acks collects the order ids the load generator was answered 201 for.
type acks struct {
	mu   sync.Mutex
	buf  []byte
	list []string
}

func (a *acks) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = append(a.buf, p...)
	for {
		i := bytes.IndexByte(a.buf, '\n')
		if i < 0 {
			break
		}
		if id := strings.TrimSpace(string(a.buf[:i])); id != "" {
			a.list = append(a.list, id)
		}
		a.buf = a.buf[i+1:]
	}
	return len(p), nil
}

// Run runs experiment e against env: the load through the three phases,
// the faults on their timeline in the during phase, then the snapshot
// and the invariants. It never panics on a failed experiment: the error
// is in Result.Err and the hypothesis does not hold.
func Run(ctx context.Context, e Experiment, env Env, opt Options) Result {
	if opt.PendingBound == 0 {
		opt.PendingBound = 10 * time.Second
	}
	if opt.Settle == 0 {
		opt.Settle = opt.PendingBound
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Result{Experiment: e}
	fail := func(format string, args ...any) { res.Reasons = append(res.Reasons, fmt.Sprintf(format, args...)) }
	ack := &acks{}
	var (
		winMu   sync.Mutex
		windows []window
	)
	phase := func(name string, d time.Duration, budget string, onStart func()) (PhaseResult, error) {
		var once sync.Once
		var last load.Progress
		lastAt := time.Time{}
		cfg := load.Config{
			Target: env.Target(), Scenario: e.Load.Scenario, Rate: e.Load.Rate, Duration: d,
			Users: e.Load.Users, Products: opt.Products, Connections: 64, Timeout: 15 * time.Second,
			RunID: fmt.Sprintf("%s-%s-%d", e.Name, name, time.Now().UnixNano()%1e6), Orders: ack,
			ProgressInterval: 250 * time.Millisecond, Logger: log,
			OnProgress: func(p load.Progress) {
				now := time.Now()
				once.Do(func() {
					lastAt = now.Add(-p.Elapsed)
					if onStart != nil {
						onStart()
					}
				})
				winMu.Lock()
				windows = append(windows, window{lastAt, now, p.Completed - last.Completed, p.Errors - last.Errors})
				winMu.Unlock()
				last, lastAt = p, now
			},
		}
		log.Info("chaos phase", "experiment", e.Name, "phase", name, "duration", d)
		rep, err := load.Run(ctx, cfg)
		if err != nil {
			return PhaseResult{Name: name}, fmt.Errorf("%s phase: %w", name, err)
		}
		pr := PhaseResult{Name: name, Requests: rep.Total.Requests, Errors: rep.Total.Errors, ErrorRate: rep.Total.ErrorRate,
			Rate: rep.Total.Rate, P99: rep.Total.Percentile(99), Budget: budget, Held: true}
		if budget != "" {
			b, err := load.ParseBudget(budget)
			if err != nil {
				return pr, err
			}
			pr.Results = rep.Check(b)
			pr.Held = load.Held(pr.Results)
		}
		return pr, nil
	}
	record := func(pr PhaseResult, err error) bool {
		res.Phases = append(res.Phases, pr)
		if err != nil {
			res.Err = err
			fail("%v", err)
			return false
		}
		if !pr.Held {
			var broken []string
			for _, r := range pr.Results {
				if !r.Held {
					broken = append(broken, fmt.Sprintf("%s (was %s)", r.Condition, fmtActual(r)))
				}
			}
			fail("%s: budget broken: %s", pr.Name, strings.Join(broken, ", "))
		}
		return true
	}

	if !record(phase(PhaseBefore, e.Phases.Before.D(), e.SteadyState, nil)) {
		return finish(res)
	}

	// During: the faults run on their timeline from the phase's start.
	var (
		tlMu    sync.Mutex
		tlErrs  []error
		faultAt time.Time
		tl      sync.WaitGroup
	)
	tlCtx, stopTimeline := context.WithCancel(ctx)
	startTimeline := func() {
		base := time.Now()
		for _, f := range e.Faults {
			tl.Add(1)
			go func() {
				defer tl.Done()
				note := func(end time.Time, err error) {
					tlMu.Lock()
					defer tlMu.Unlock()
					if err != nil {
						tlErrs = append(tlErrs, err)
					}
					if end.After(faultAt) {
						faultAt = end
					}
				}
				if !sleepUntil(tlCtx, base.Add(f.At.D())) {
					return
				}
				log.Info("chaos fault on", "experiment", e.Name, "fault", f.String())
				undo, err := env.Inject(ctx, f)
				if err != nil || undo == nil {
					note(time.Now(), err)
					return
				}
				end := base.Add(e.Phases.During.D())
				if f.For > 0 {
					end = base.Add(f.At.D() + f.For.D())
				}
				sleepUntil(tlCtx, end)
				log.Info("chaos fault off", "experiment", e.Name, "fault", f.String())
				note(time.Now(), undo(context.WithoutCancel(ctx)))
			}()
		}
	}
	pr, err := phase(PhaseDuring, e.Phases.During.D(), e.DuringFault, startTimeline)
	stopTimeline() // faults still on are removed now
	tl.Wait()
	res.FaultEnd = faultAt
	if len(tlErrs) > 0 {
		err = errors.Join(append([]error{err}, tlErrs...)...)
	}
	if !record(pr, err) {
		return finish(res)
	}
	if !record(phase(PhaseAfter, e.Phases.After.D(), e.SteadyState, nil)) {
		return finish(res)
	}

	// Recovery: the first two consecutive error-free windows after the end
	// of the faults.
	winMu.Lock()
	res.Recovery, res.Recovered = recovery(windows, res.FaultEnd)
	winMu.Unlock()
	if !res.Recovered {
		fail("did not recover: errors until the end")
	} else if e.RecoverWithin > 0 && res.Recovery > e.RecoverWithin.D() {
		fail("recovered in %v, want within %v", res.Recovery.Round(time.Millisecond), e.RecoverWithin.D())
	}

	snap, err := env.Snapshot(ctx, opt.Settle)
	if err != nil {
		res.Err = fmt.Errorf("snapshot: %w", err)
		fail("%v", res.Err)
		return finish(res)
	}
	ack.mu.Lock()
	snap.Acknowledged = append([]string(nil), ack.list...)
	ack.mu.Unlock()
	res.Acknowledged, res.Orders, res.Charges = len(snap.Acknowledged), len(snap.Orders), len(snap.Charges)
	res.Violations = Check(snap, opt.PendingBound)
	if len(res.Violations) > 0 {
		fail("%d invariant violations", len(res.Violations))
	}
	return finish(res)
}

func finish(r Result) Result {
	r.Holds = len(r.Reasons) == 0
	return r
}

// recovery returns the time from end to the start of the first two
// consecutive windows after it that completed requests without an error.
func recovery(ws []window, end time.Time) (time.Duration, bool) {
	for i := 0; i+1 < len(ws); i++ {
		a, b := ws[i], ws[i+1]
		if a.end.Before(end) || b.start.Sub(a.end) > time.Second {
			continue // before the end of the faults, or not consecutive
		}
		if a.errors == 0 && b.errors == 0 && a.completed > 0 && b.completed > 0 {
			return max(0, a.start.Sub(end)), true
		}
	}
	return 0, false
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func fmtActual(r load.BudgetResult) string {
	if r.Note != "" {
		return r.Note
	}
	switch r.Metric {
	case "errors":
		return fmt.Sprintf("%.2f%%", r.Actual)
	case "rate":
		return fmt.Sprintf("%.1f/s", r.Actual)
	}
	return time.Duration(r.Actual).Round(time.Microsecond).String()
}
