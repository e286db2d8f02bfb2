package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/canary"
	"github.com/briskhq/brisk/internal/load"
)

const canarySummary = `Sends the same open-model load (same seed: same schedule and request mix) to a
baseline and a canary at the same time, then judges the canary per endpoint:
  latency  one-sided Mann-Whitney U test against the baseline stretched by
           --latency-tolerance and --latency-slack
  tail     distribution-free confidence bounds of the --quantile latency
  errors   one-sided two-proportion z-test of an increase > --error-slack
at a family-wise level --alpha (Bonferroni over every test). Exit status: 0 when
the canary passes, 1 when it fails (or the data are inconclusive), 2 on bad usage.
Reports saved earlier with 'brisk load --out' can be judged instead of a run.

examples:
  brisk canary --baseline http://10.0.0.1:8080 --canary http://10.0.0.2:8080 \
      --rate 500 --duration 60s --scenario shop --out-dir canary-reports
  brisk canary --baseline-report base.json --canary-report canary.json`

// runCanary is `brisk canary`.
func runCanary(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSetEnv("canary", canarySummary, stderr, "BRISK_CANARY_")
	baseline := fs.String("baseline", "", "base URL of the baseline deployment")
	canaryURL := fs.String("canary", "", "base URL of the canary deployment")
	baseReport := fs.String("baseline-report", "", "judge this saved load report (brisk load --out) instead of running")
	canReport := fs.String("canary-report", "", "the canary's saved load report (with --baseline-report)")
	rate := fs.Float64("rate", 200, "requests per second sent to each side")
	duration := fs.Duration("duration", 30*time.Second, "length of the run")
	arrival := fs.String("arrival", string(load.Poisson), "arrival process: constant or poisson")
	scenario := fs.String("scenario", load.ScenarioShop, "scenario: "+strings.Join(load.Scenarios(), ", "))
	products := fs.Int("products", 10_000, "product ids 1..N to draw from (Zipf popularity)")
	users := fs.Int("users", 20, "accounts registered on each side before the run (cart, checkout, shop)")
	conns := fs.Int("connections", 128, "maximum connections to each side")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	seed := fs.Uint64("seed", 0, "seed shared by both sides (0: random)")
	outDir := fs.String("out-dir", "", "write baseline.json and canary.json load reports into this directory")
	var cfg canary.Config
	fs.Float64Var(&cfg.Alpha, "alpha", 0.01, "family-wise significance level")
	fs.Float64Var(&cfg.LatencyTolerance, "latency-tolerance", 0.10, "relative latency increase tolerated (0.10: 10%)")
	fs.DurationVar(&cfg.LatencySlack, "latency-slack", time.Millisecond, "absolute latency increase tolerated on top of --latency-tolerance")
	fs.Float64Var(&cfg.Quantile, "quantile", 99, "tail quantile compared, in percent")
	fs.Float64Var(&cfg.ErrorSlack, "error-slack", 0.001, "error-rate increase tolerated, as a fraction (0.001: 0.1 points)")
	fs.Int64Var(&cfg.MinRequests, "min-requests", 200, "fewest requests per side for an endpoint to be judged (and for any verdict)")

	if err := parseFlagsEnv(fs, args, getenv, "BRISK_CANARY_"); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usageError("canary: %v", err)
	}

	var verdict *canary.Verdict
	switch {
	case *baseReport != "" || *canReport != "":
		if *baseReport == "" || *canReport == "" {
			return usageError("canary: give both --baseline-report and --canary-report")
		}
		if *baseline != "" || *canaryURL != "" {
			return usageError("canary: give either reports or URLs, not both")
		}
		b, err := readReport(*baseReport)
		if err != nil {
			return usageError("canary: --baseline-report: %v", err)
		}
		c, err := readReport(*canReport)
		if err != nil {
			return usageError("canary: --canary-report: %v", err)
		}
		writeSides(stdout, b, c)
		if verdict, err = canary.AnalyzeReports(b, c, cfg); err != nil {
			return exitError{code: 1, err: err}
		}
	default:
		if *baseline == "" || *canaryURL == "" {
			return usageError("canary: give --baseline and --canary URLs (or two saved reports)")
		}
		arr, err := load.ParseArrival(*arrival)
		if err != nil {
			return usageError("canary: %v", err)
		}
		rc := canary.RunConfig{
			Baseline: *baseline, Canary: *canaryURL, Analysis: cfg,
			Load: load.Config{
				Scenario: *scenario, Rate: *rate, Duration: *duration, Arrival: arr,
				Products: *products, Users: *users, Connections: *conns, Timeout: *timeout, Seed: *seed,
			},
		}
		for _, target := range []string{rc.Baseline, rc.Canary} {
			lc := rc.Load
			lc.Target = target
			if err := lc.Validate(); err != nil {
				return usageError("canary: %v", err)
			}
		}
		fmt.Fprintf(stdout, "brisk canary: %s scenario, %.0f/s for %s to each of\n  baseline %s\n  canary   %s\n",
			*scenario, *rate, *duration, *baseline, *canaryURL)
		res, err := canary.Run(ctx, rc)
		if res != nil && res.Baseline != nil && res.Canary != nil {
			writeSides(stdout, res.Baseline, res.Canary)
			if *outDir != "" {
				if werr := writeReport(filepath.Join(*outDir, "baseline.json"), res.Baseline); werr != nil {
					return werr
				}
				if werr := writeReport(filepath.Join(*outDir, "canary.json"), res.Canary); werr != nil {
					return werr
				}
			}
		}
		if res == nil || res.Verdict == nil {
			return exitError{code: 1, err: err}
		}
		verdict = res.Verdict
		if err != nil {
			fmt.Fprintf(stdout, "warning: %v\n", err)
		}
	}
	fmt.Fprintln(stdout)
	if err := canary.Write(stdout, verdict); err != nil {
		return err
	}
	if !verdict.Pass {
		return exitError{code: 1, err: fmt.Errorf("canary: verdict FAIL: %d check(s) failed", len(verdict.Failed()))}
	}
	return nil
}

// writeSides prints one summary line per side.
func writeSides(w io.Writer, b, c *load.Report) {
	for _, s := range []struct {
		name string
		r    *load.Report
	}{{"baseline", b}, {"canary", c}} {
		t := s.r.Total
		fmt.Fprintf(w, "%-8s %d requests (%.1f/s), errors %.3f%%, p50 %s, p99 %s, max %s\n",
			s.name, t.Requests, t.Rate, t.ErrorRate*100, t.Latency.P50, t.Latency.P99, t.Latency.Max)
	}
}
