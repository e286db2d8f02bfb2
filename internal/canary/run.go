package canary

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/briskhq/brisk/internal/load"
)

// RunConfig describes a canary run: the same load sent to two targets at
// the same time.
type RunConfig struct {
	// Baseline and Canary are the base URLs of the two deployments.
	Baseline, Canary string
	// Load is the traffic sent to each (its Target is replaced). Both runs
	// share one seed (random when zero), so they schedule the same requests
	// for the same products at the same instants; their RunIDs differ by a
	// suffix so that accounts and idempotency keys never collide when the
	// two share a database.
	Load load.Config
	// Analysis holds the thresholds of the verdict.
	Analysis Config
}

// Result is the outcome of Run.
type Result struct {
	Baseline, Canary *load.Report
	Verdict          *Verdict
}

// Run sends the same open-model load to the baseline and the canary
// concurrently (so both see the same time-of-day conditions), then judges
// the canary with Analyze.
func Run(ctx context.Context, rc RunConfig) (*Result, error) {
	if err := rc.Analysis.Validate(); err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	if rc.Load.Seed == 0 {
		rc.Load.Seed = mrand.Uint64() | 1
	}
	if rc.Load.RunID == "" {
		b := make([]byte, 4)
		rand.Read(b)
		rc.Load.RunID = hex.EncodeToString(b)
	}
	bc, cc := rc.Load, rc.Load
	bc.Target, bc.RunID = rc.Baseline, rc.Load.RunID+"-base"
	cc.Target, cc.RunID = rc.Canary, rc.Load.RunID+"-canary"
	for _, c := range []load.Config{bc, cc} {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("canary: %w", err)
		}
	}
	var (
		wg       sync.WaitGroup
		res      Result
		bErr     error
		cErr     error
		baseLoad = func() { res.Baseline, bErr = load.Run(ctx, bc) }
		canLoad  = func() { res.Canary, cErr = load.Run(ctx, cc) }
	)
	wg.Add(2)
	go func() { defer wg.Done(); baseLoad() }()
	go func() { defer wg.Done(); canLoad() }()
	wg.Wait()
	if res.Baseline == nil || res.Canary == nil || ctx.Err() != nil {
		return &res, fmt.Errorf("canary: baseline: %v; canary: %v: %w", bErr, cErr, errors.Join(bErr, cErr, ctx.Err()))
	}
	v, err := AnalyzeReports(res.Baseline, res.Canary, rc.Analysis)
	if err != nil {
		return &res, err
	}
	res.Verdict = v
	return &res, errors.Join(bErr, cErr)
}

// AnalyzeReports judges the canary's load report against the baseline's
// (reports from internal/load, or read back with load.ReadReport).
func AnalyzeReports(baseline, canary *load.Report, cfg Config) (*Verdict, error) {
	bs, err := FromReport(baseline)
	if err != nil {
		return nil, fmt.Errorf("canary: baseline: %w", err)
	}
	cs, err := FromReport(canary)
	if err != nil {
		return nil, fmt.Errorf("canary: canary: %w", err)
	}
	return Analyze(bs, cs, load.AllEndpoints, cfg)
}

// FromReport returns the samples of a load report: one per endpoint, and
// the total under load.AllEndpoints.
func FromReport(r *load.Report) ([]Sample, error) {
	// The report's histograms are reached through its JSON form, the
	// package's stable interface to them.
	var buf bytes.Buffer
	if err := load.WriteJSON(&buf, r); err != nil {
		return nil, err
	}
	type endpoint struct {
		Name      string `json:"name"`
		Requests  int64  `json:"requests"`
		Errors    int64  `json:"errors"`
		Histogram string `json:"histogram"`
	}
	var doc struct {
		Total     endpoint   `json:"total"`
		Endpoints []endpoint `json:"endpoints"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	doc.Total.Name = load.AllEndpoints
	var out []Sample
	for _, e := range append(doc.Endpoints, doc.Total) {
		s := Sample{Endpoint: e.Name, Requests: e.Requests, Errors: e.Errors}
		if e.Histogram != "" {
			h, err := hdrhistogram.Decode([]byte(e.Histogram))
			if err != nil {
				return nil, fmt.Errorf("read report: %s histogram: %w", e.Name, err)
			}
			s.Latency = h
		}
		out = append(out, s)
	}
	return out, nil
}
