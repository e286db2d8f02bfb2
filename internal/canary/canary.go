// Package canary judges a canary release against its baseline from the
// same traffic sent to both: latency distributions and error rates are
// compared with stated statistical tests, and the result is a pass/fail
// verdict that a rollout can gate on.
//
// For each endpoint with enough requests on both sides (and for all
// requests together) three one-sided tests look for evidence that the
// canary is worse than the baseline by more than a tolerance:
//
//   - latency (whole distribution): the Mann–Whitney U test of "the
//     canary's latencies tend to be larger than the baseline's latencies
//     stretched by the tolerance" (each baseline value v becomes
//     v·(1+LatencyTolerance)+LatencySlack), normal approximation with tie
//     and continuity corrections. It is rank-based, so a few huge outliers
//     cannot dominate it, and it needs no assumption about the shape of the
//     distribution (latencies are far from normal).
//   - tail (Quantile, default p99): distribution-free order-statistic
//     confidence bounds for the quantile on each side; the canary fails
//     when the lower bound of its quantile exceeds the stretched upper bound
//     of the baseline's, so a tail-only regression is caught too.
//   - errors: a one-sided two-proportion z-test (Agresti–Caffo adjusted) of
//     "the canary's error rate exceeds the baseline's by more than
//     ErrorSlack".
//
// The family-wise significance level Alpha is split evenly over every
// test made (Bonferroni), so more endpoints do not mean more false alarms.
// A canary passes when no test finds such evidence and the run had at least
// MinRequests requests on each side; with fewer there is no evidence either
// way and the verdict is a failure ("inconclusive"), since a gate must not
// wave a release through on no data.
package canary

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Config holds the thresholds of the analysis. Zero fields take the
// defaults noted.
type Config struct {
	// Alpha is the family-wise significance level; default 0.01.
	Alpha float64
	// LatencyTolerance is the relative latency increase tolerated; default
	// 0.10 (10%). Negative means none.
	LatencyTolerance float64
	// LatencySlack is the absolute latency increase tolerated on top of
	// LatencyTolerance (sub-millisecond noise is not a regression); default
	// 1ms. Negative means none.
	LatencySlack time.Duration
	// Quantile is the tail quantile compared, in percent; default 99.
	Quantile float64
	// ErrorSlack is the error-rate increase tolerated, as a fraction;
	// default 0.001 (0.1 percentage points). Negative means none.
	ErrorSlack float64
	// MinRequests is the fewest requests an endpoint needs on each side to
	// be judged; the total needs it too or the verdict is inconclusive.
	// Default 200.
	MinRequests int64
}

func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = 0.01
	}
	if c.LatencyTolerance == 0 {
		c.LatencyTolerance = 0.10
	}
	c.LatencyTolerance = max(c.LatencyTolerance, 0)
	if c.LatencySlack == 0 {
		c.LatencySlack = time.Millisecond
	}
	c.LatencySlack = max(c.LatencySlack, 0)
	if c.Quantile == 0 {
		c.Quantile = 99
	}
	if c.ErrorSlack == 0 {
		c.ErrorSlack = 0.001
	}
	c.ErrorSlack = max(c.ErrorSlack, 0)
	if c.MinRequests == 0 {
		c.MinRequests = 200
	}
	return c
}

// Validate reports what is wrong with c (after defaults), if anything.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case !(c.Alpha > 0 && c.Alpha < 0.5):
		return fmt.Errorf("alpha %v: want 0 < alpha < 0.5", c.Alpha)
	case !(c.Quantile > 0 && c.Quantile < 100):
		return fmt.Errorf("quantile %v: want 0 < q < 100", c.Quantile)
	case c.MinRequests < 1:
		return fmt.Errorf("min requests %d: want >= 1", c.MinRequests)
	case math.IsInf(c.LatencyTolerance, 0) || math.IsNaN(c.LatencyTolerance) || math.IsNaN(c.ErrorSlack):
		return fmt.Errorf("tolerances must be finite")
	}
	return nil
}

// Sample is what one side (baseline or canary) measured for one endpoint.
type Sample struct {
	// Endpoint names the endpoint; Total marks the sample of all requests.
	Endpoint string
	// Requests and Errors count every request sent and every failed one
	// (status >= 400 the server is blamed for, transport errors, drops).
	Requests, Errors int64
	// Latency holds the latencies in microseconds (as internal/load records
	// them).
	Latency *hdrhistogram.Histogram
}

// Check is the outcome of one test.
type Check struct {
	Endpoint string
	// Test is "latency", "p99" (the tail quantile), "errors" or "requests".
	Test string
	// Baseline and Canary summarize what was compared, for people.
	Baseline, Canary string
	// P is the test's p-value (NaN for the tail and request-count checks).
	P float64
	// Alpha is the level P was held to (Config.Alpha / number of tests).
	Alpha float64
	// Pass is false when the test found the canary worse.
	Pass bool
	// Detail explains the outcome.
	Detail string
}

// Verdict is the outcome of an analysis.
type Verdict struct {
	Pass   bool
	Checks []Check
	// Skipped lists endpoints with too few requests to judge.
	Skipped []string
	Config  Config
}

// Failed returns the checks that failed.
func (v *Verdict) Failed() []Check {
	var out []Check
	for _, c := range v.Checks {
		if !c.Pass {
			out = append(out, c)
		}
	}
	return out
}

// Analyze compares the canary's samples with the baseline's. total is the
// sample name of all requests together (it must be present on both sides);
// other endpoints are judged when both sides have them.
func Analyze(baseline, canary []Sample, total string, cfg Config) (*Verdict, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("canary analysis: %w", err)
	}
	cfg = cfg.withDefaults()
	byName := func(ss []Sample) map[string]Sample {
		m := make(map[string]Sample, len(ss))
		for _, s := range ss {
			m[s.Endpoint] = s
		}
		return m
	}
	bm := byName(baseline)
	if _, ok := bm[total]; !ok {
		return nil, fmt.Errorf("canary analysis: baseline has no %q sample", total)
	}
	if _, ok := byName(canary)[total]; !ok {
		return nil, fmt.Errorf("canary analysis: canary has no %q sample", total)
	}
	v := &Verdict{Pass: true, Config: cfg}
	type pair struct{ b, c Sample }
	var judged []pair
	var totalPair pair
	for _, c := range canary {
		b, ok := bm[c.Endpoint]
		if !ok {
			continue
		}
		if c.Endpoint == total {
			totalPair = pair{b, c}
			continue
		}
		if b.Requests < cfg.MinRequests || c.Requests < cfg.MinRequests {
			v.Skipped = append(v.Skipped, c.Endpoint)
			continue
		}
		judged = append(judged, pair{b, c})
	}
	if totalPair.b.Requests < cfg.MinRequests || totalPair.c.Requests < cfg.MinRequests {
		v.Pass = false
		v.Checks = append(v.Checks, Check{
			Endpoint: total, Test: "requests", P: math.NaN(),
			Baseline: strconv.FormatInt(totalPair.b.Requests, 10), Canary: strconv.FormatInt(totalPair.c.Requests, 10),
			Detail: fmt.Sprintf("inconclusive: fewer than %d requests on a side", cfg.MinRequests),
		})
		return v, nil
	}
	judged = append(judged, totalPair)
	alpha := cfg.Alpha / float64(3*len(judged))
	for _, p := range judged {
		for _, c := range compare(p.b, p.c, cfg, alpha) {
			v.Pass = v.Pass && c.Pass
			v.Checks = append(v.Checks, c)
		}
	}
	return v, nil
}

// compare runs the three tests on one endpoint.
func compare(b, c Sample, cfg Config, alpha float64) []Check {
	scale := 1 + cfg.LatencyTolerance
	shift := float64(cfg.LatencySlack / time.Microsecond)
	bRaw, cRaw := bins(b.Latency, 1, 0), bins(c.Latency, 1, 0)
	bStretched := bins(b.Latency, scale, shift)
	tol := fmt.Sprintf("%.0f%%+%s", cfg.LatencyTolerance*100, cfg.LatencySlack)
	var out []Check

	lat := Check{Endpoint: c.Endpoint, Test: "latency", Alpha: alpha, P: math.NaN(), Pass: true}
	if len(bRaw) > 0 && len(cRaw) > 0 {
		_, ps, _ := mannWhitney(bRaw, cRaw)
		_, _, p := mannWhitney(bStretched, cRaw)
		lat.P = p
		lat.Baseline = "p50 " + ms(us(b.Latency.ValueAtQuantile(50)))
		lat.Canary = "p50 " + ms(us(c.Latency.ValueAtQuantile(50)))
		lat.Pass = !(p < alpha)
		lat.Detail = fmt.Sprintf("Mann-Whitney U vs baseline stretched by %s: P(canary slower)=%.3f", tol, ps)
		if !lat.Pass {
			lat.Detail = "canary slower beyond tolerance; " + lat.Detail
		}
	} else {
		lat.Detail = "no latency data"
	}
	out = append(out, lat)

	q := cfg.Quantile / 100
	name := "p" + strconv.FormatFloat(cfg.Quantile, 'f', -1, 64)
	tail := Check{Endpoint: c.Endpoint, Test: name, Alpha: alpha, P: math.NaN(), Pass: true}
	if len(bRaw) > 0 && len(cRaw) > 0 {
		bHi := quantileBound(bRaw, q, alpha, true)
		cLo := quantileBound(cRaw, q, alpha, false)
		limit := float64(bHi)*scale + shift
		tail.Baseline = fmt.Sprintf("%s (upper bound %s)", ms(us(b.Latency.ValueAtQuantile(cfg.Quantile))), ms(us(bHi)))
		tail.Canary = fmt.Sprintf("%s (lower bound %s)", ms(us(c.Latency.ValueAtQuantile(cfg.Quantile))), ms(us(cLo)))
		tail.Pass = float64(cLo) <= limit
		tail.Detail = fmt.Sprintf("order-statistic bounds: canary lower bound %s vs limit %s (baseline upper bound + %s)",
			ms(us(cLo)), ms(time.Duration(limit*float64(time.Microsecond))), tol)
	} else {
		tail.Detail = "no latency data"
	}
	out = append(out, tail)

	p := errorIncrease(b.Errors, b.Requests, c.Errors, c.Requests, cfg.ErrorSlack)
	errs := Check{
		Endpoint: c.Endpoint, Test: "errors", Alpha: alpha, P: p, Pass: !(p < alpha),
		Baseline: rate(b.Errors, b.Requests), Canary: rate(c.Errors, c.Requests),
		Detail: fmt.Sprintf("two-proportion z-test of an increase > %.2f points", cfg.ErrorSlack*100),
	}
	if !errs.Pass {
		errs.Detail = "canary error rate higher beyond tolerance; " + errs.Detail
	}
	out = append(out, errs)
	return out
}

func rate(errs, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f%% (%d/%d)", float64(errs)/float64(n)*100, errs, n)
}

func us(v int64) time.Duration { return time.Duration(v) * time.Microsecond }

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// Write prints the verdict as a table followed by the outcome line.
func Write(w io.Writer, v *Verdict) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "endpoint\ttest\tbaseline\tcanary\tp-value\talpha\tresult\tdetail")
	for _, c := range v.Checks {
		pv := "-"
		if !math.IsNaN(c.P) {
			pv = strconv.FormatFloat(c.P, 'g', 3, 64)
		}
		al := "-"
		if c.Alpha > 0 {
			al = strconv.FormatFloat(c.Alpha, 'g', 3, 64)
		}
		res := "pass"
		if !c.Pass {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Endpoint, c.Test, c.Baseline, c.Canary, pv, al, res, c.Detail)
	}
	tw.Flush()
	if len(v.Skipped) > 0 {
		fmt.Fprintf(ew, "not judged (fewer than %d requests on a side): %v\n", v.Config.MinRequests, v.Skipped)
	}
	if v.Pass {
		fmt.Fprintln(ew, "verdict: PASS (no evidence that the canary is worse than the baseline)")
	} else {
		fmt.Fprintf(ew, "verdict: FAIL (%d check(s) failed)\n", len(v.Failed()))
	}
	return ew.err
}

// errWriter keeps the first write error so table code can ignore them.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
