package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/briskhq/brisk/internal/load"
)

const loadSummary = `Sends an open-model load (constant or Poisson arrivals, ramps) to a brisk API
and reports per-endpoint latency measured from each request's scheduled send
time (no coordinated omission). Exit status: 0 when every --budget condition
held (and --compare found no regression), 1 when one broke, 2 on bad usage.

examples:
  brisk load --target http://127.0.0.1:8080 --rate 2000 --duration 60s --scenario shop \
      --budget 'checkout:p99<200ms,errors<0.1%;product:p99<50ms' --out report.json
  brisk load --ramp 0:5000/30s,5000/60s --arrival poisson --compare baseline.json`

// runLoad is `brisk load`.
func runLoad(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSetEnv("load", loadSummary, stderr, "BRISK_LOAD_")
	target := fs.String("target", "http://127.0.0.1:8080", "base URL of the API under load")
	rate := fs.Float64("rate", 100, "requests per second (constant profile)")
	duration := fs.Duration("duration", 10*time.Second, "length of the constant profile")
	ramp := fs.String("ramp", "", `rate profile instead of --rate/--duration: stages "start:end/duration" or "end/duration", e.g. "0:5000/30s,5000/60s"`)
	arrival := fs.String("arrival", string(load.Constant), "arrival process: constant or poisson")
	scenario := fs.String("scenario", load.ScenarioShop, "scenario: "+strings.Join(load.Scenarios(), ", "))
	products := fs.Int("products", 10_000, "product ids 1..N to draw from (Zipf popularity)")
	zipf := fs.Float64("zipf", 1.1, "Zipf exponent of product popularity (> 1)")
	users := fs.Int("users", 50, "accounts registered before the run (cart, checkout, shop)")
	conns := fs.Int("connections", 256, "maximum connections to the target (one request at a time on each)")
	maxInflight := fs.Int("max-inflight", 10_000, "maximum requests queued or in flight; sends beyond it are dropped and counted as errors")
	lateAfter := fs.Duration("late-after", 10*time.Millisecond, "a send this far behind schedule counts as late")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of writing a request, and of reading its response")
	budgetFlag := fs.String("budget", "", `latency and error budgets, e.g. "checkout:p99<200ms,errors<0.1%;all:p99.9<1s"`)
	out := fs.String("out", "", "write the JSON report to this file")
	compare := fs.String("compare", "", "JSON report of a baseline run: print differences, exit 1 on regressions")
	ordersOut := fs.String("orders-out", "", "write the id of every order answered 201 to this file, one per line")
	progress := fs.String("progress", "auto", "live progress line on stderr: auto (when stderr is a terminal), on or off")
	seed := fs.Uint64("seed", 0, "seed of the random choices (0: random)")
	runID := fs.String("run-id", "", "name of the run in account emails and idempotency keys (default random)")

	if err := parseFlagsEnv(fs, args, getenv, "BRISK_LOAD_"); err != nil {
		return err
	}
	set := map[string]bool{} // given on the command line or in the environment
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := load.Config{
		Target:      *target,
		Scenario:    *scenario,
		Rate:        *rate,
		Duration:    *duration,
		Products:    *products,
		ZipfS:       *zipf,
		Users:       *users,
		Connections: *conns,
		MaxInflight: *maxInflight,
		LateAfter:   *lateAfter,
		Timeout:     *timeout,
		Seed:        *seed,
		RunID:       *runID,
	}
	var err error
	if cfg.Arrival, err = load.ParseArrival(*arrival); err != nil {
		return usageError("load: %v", err)
	}
	if *ramp != "" {
		if set["rate"] || set["duration"] {
			return usageError("load: --ramp replaces --rate and --duration; give one or the other")
		}
		if cfg.Stages, err = load.ParseRamp(*ramp); err != nil {
			return usageError("load: %v", err)
		}
	}
	budget, err := load.ParseBudget(*budgetFlag)
	if err != nil {
		return usageError("load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return usageError("load: %v", err)
	}
	var baseline *load.Report
	if *compare != "" {
		if baseline, err = readReport(*compare); err != nil {
			return usageError("load: --compare: %v", err)
		}
	}

	showProgress := *progress == "on"
	switch *progress {
	case "on", "off":
	case "auto":
		f, ok := stderr.(*os.File)
		showProgress = ok && term.IsTerminal(int(f.Fd()))
	default:
		return usageError("load: --progress %q: want auto, on or off", *progress)
	}
	if showProgress {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
		cfg.OnProgress = func(p load.Progress) { fmt.Fprint(stderr, "\r\x1b[K"+progressLine(p)) }
	}

	var ordersFile *os.File
	if *ordersOut != "" {
		if ordersFile, err = os.Create(*ordersOut); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer ordersFile.Close()
		cfg.Orders = ordersFile
	}

	rep, runErr := load.Run(ctx, cfg)
	if showProgress {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	if rep == nil {
		return runErr
	}
	if err := load.WriteTable(stdout, rep); err != nil {
		return err
	}
	var failures []string
	if len(budget) > 0 {
		results := rep.Check(budget)
		fmt.Fprintln(stdout)
		if err := load.WriteBudget(stdout, results); err != nil {
			return err
		}
		broken := 0
		for _, r := range results {
			if !r.Held {
				broken++
			}
		}
		if broken > 0 {
			failures = append(failures, fmt.Sprintf("%d of %d budget conditions broken", broken, len(results)))
		}
	}
	if baseline != nil {
		diffs := load.Compare(baseline, rep)
		fmt.Fprintf(stdout, "\ncompared with %s:\n", *compare)
		if err := load.WriteComparison(stdout, diffs); err != nil {
			return err
		}
		if n := load.Regressions(diffs); n > 0 {
			failures = append(failures, fmt.Sprintf("%d regression(s) against %s", n, *compare))
		}
	}
	if *out != "" {
		if err := writeReport(*out, rep); err != nil {
			return err
		}
	}
	if ordersFile != nil {
		if err := ordersFile.Close(); err != nil {
			return fmt.Errorf("load: write orders: %w", err)
		}
	}
	if runErr != nil {
		if rep.Interrupted {
			failures = append(failures, "run interrupted")
		} else {
			failures = append(failures, runErr.Error())
		}
	}
	if len(failures) > 0 {
		return exitError{code: 1, err: fmt.Errorf("load: %s", strings.Join(failures, "; "))}
	}
	return nil
}

// progressLine is the one-line live view of a run.
func progressLine(p load.Progress) string {
	errPct := 0.0
	if p.Completed > 0 {
		errPct = float64(p.Errors) / float64(p.Completed) * 100
	}
	s := fmt.Sprintf("%s/%s  sent %d  %.0f/s  p99 %s  errors %.2f%% (%d)  in flight %d",
		p.Elapsed.Round(time.Second), p.Total.Round(time.Second), p.Sent, p.Rate,
		p.P99.Round(10*time.Microsecond), errPct, p.Errors, p.Inflight)
	if p.Late > 0 || p.Dropped > 0 {
		s += fmt.Sprintf("  late %d  dropped %d", p.Late, p.Dropped)
	}
	return s
}

func readReport(path string) (*load.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return load.ReadReport(f)
}

func writeReport(path string, r *load.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := load.WriteJSON(f, r); err != nil {
		f.Close()
		return fmt.Errorf("load: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("load: write report: %w", err)
	}
	return nil
}
