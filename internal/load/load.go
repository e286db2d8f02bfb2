// Package load is brisk's open-model load generator.
//
// Requests are sent on a schedule fixed in advance by the rate profile
// (constant or Poisson arrivals, with ramps), whether or not earlier
// requests have been answered, and each latency is measured from the
// request's scheduled send time, as wrk2 does. A server that stalls
// therefore shows up in the percentiles instead of silently slowing the
// generator down (no coordinated omission). When the generator cannot keep
// up it says so: sends that leave late are counted, and sends beyond the
// in-flight bound are dropped and counted as failures, never skipped.
//
// A scheduler goroutine sleeps until each send is due and hands it to one
// of at most Connections workers, each sending on its own keep-alive
// connection with a reused request and response (fasthttp's client, about
// a third of net/http's CPU per request); sends due while every worker is
// busy wait in a bounded queue, still timed from their scheduled time.
// Results go to HDR histograms, so memory stays constant over any duration.
package load

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config describes a run. Zero fields take the defaults noted.
type Config struct {
	// Target is the base URL of the API, such as "http://127.0.0.1:8080".
	Target string
	// Scenario is one of Scenarios(); default ScenarioShop.
	Scenario string

	// Rate (requests per second) and Duration give a constant profile;
	// they are ignored when Stages is set.
	Rate     float64
	Duration time.Duration
	// Stages is a rate profile with ramps (see ParseRamp).
	Stages []Stage
	// Arrival spaces the sends; default Constant.
	Arrival Arrival

	// Products is the product id range 1..Products; default 10000.
	Products int
	// ZipfS is the Zipf exponent of product popularity (> 1); default 1.1.
	ZipfS float64
	// Users is how many accounts to register before the measured phase for
	// scenarios that need them (cart, checkout, shop); default 50.
	Users int

	// Connections bounds the connections to the target, each used by one
	// sending goroutine at a time; default 256. Requests due while every
	// connection is busy wait in a queue, still timed from their scheduled
	// send time.
	Connections int
	// MaxInflight bounds the requests queued or in flight; a send due while
	// it is reached is dropped and counted as a failure. Default 10000.
	MaxInflight int
	// LateAfter: a send that leaves more than this behind schedule is
	// counted as late; default 10ms.
	LateAfter time.Duration
	// Timeout bounds writing each request and, again, reading its
	// response; default 10s.
	Timeout time.Duration

	// RunID names the run in account emails and idempotency keys; default
	// random.
	RunID string
	// Seed seeds the random choices (ops, products, Poisson gaps); 0 means
	// random.
	Seed uint64

	// Orders, if set, receives the id of every order answered 201, one per
	// line, as soon as it is answered.
	Orders io.Writer
	// OnProgress, if set, is called every ProgressInterval (default 1s)
	// during the measured phase.
	OnProgress       func(Progress)
	ProgressInterval time.Duration

	// Logger logs setup steps; default discards.
	Logger *slog.Logger
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed   time.Duration
	Total     time.Duration // length of the rate profile
	Sent      int64
	Completed int64 // requests answered or failed (drops included)
	Errors    int64
	Dropped   int64
	Late      int64
	Inflight  int64
	Rate      float64       // sends per second since the previous snapshot
	P99       time.Duration // over all requests so far
}

// withDefaults returns c with defaults applied.
func (c Config) withDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = ScenarioShop
	}
	if c.Arrival == "" {
		c.Arrival = Constant
	}
	if c.Products == 0 {
		c.Products = 10_000
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.Users == 0 {
		c.Users = 50
	}
	if c.Connections == 0 {
		c.Connections = 256
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 10_000
	}
	if c.LateAfter == 0 {
		c.LateAfter = 10 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if len(c.Stages) == 0 && c.Rate > 0 && c.Duration > 0 {
		c.Stages = []Stage{{From: c.Rate, To: c.Rate, Duration: c.Duration}}
	}
	return c
}

// Validate reports what is wrong with c (after defaults), if anything.
func (c Config) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target %q: want an http:// or https:// URL", c.Target)
	}
	if _, err := lookupScenario(c.Scenario); err != nil {
		return err
	}
	if _, err := ParseArrival(string(c.Arrival)); err != nil {
		return err
	}
	if len(c.Stages) == 0 {
		return fmt.Errorf("no rate profile: want a rate > 0 and a duration > 0, or stages")
	}
	for _, s := range c.Stages {
		if s.Duration <= 0 || !(s.From >= 0) || !(s.To >= 0) || math.IsInf(s.From, 0) || math.IsInf(s.To, 0) {
			return fmt.Errorf("bad stage %v", s)
		}
	}
	if err := checkLength(c.Stages); err != nil {
		return err
	}
	if expectedCount(c.Stages) < 1 {
		return fmt.Errorf("rate profile %s schedules no request", FormatRamp(c.Stages))
	}
	switch {
	case c.Products < 1:
		return fmt.Errorf("products %d: want >= 1", c.Products)
	case !(c.ZipfS > 1):
		return fmt.Errorf("zipf exponent %v: want > 1", c.ZipfS)
	case c.Users < 1:
		return fmt.Errorf("users %d: want >= 1", c.Users)
	case c.Connections < 1:
		return fmt.Errorf("connections %d: want >= 1", c.Connections)
	case c.MaxInflight < 1:
		return fmt.Errorf("max in-flight %d: want >= 1", c.MaxInflight)
	case c.LateAfter < 0, c.Timeout < 0:
		return fmt.Errorf("late-after and timeout must not be negative")
	}
	return nil
}

// job is one scheduled send.
type job struct {
	at  time.Time // scheduled send time
	seq uint64
	op  op
}

// runner is the state of one run.
type runner struct {
	cfg     Config
	hc      *fasthttp.HostClient
	base    string // target URL without a trailing slash
	scen    *scenario
	users   []*user
	queries []string
	eps     [numOps]*endpointRecorder // by op; ops of one endpoint share it
	recs    []*endpointRecorder       // distinct, in report order
	ctx     context.Context
	start   time.Time

	jobs     chan job
	wg       sync.WaitGroup
	inflight atomic.Int64
	sent     atomic.Int64
	lastSend atomic.Int64 // nanoseconds from start to the latest send
	dropped  atomic.Int64
	late     atomic.Int64

	ordersMu sync.Mutex
	ordersW  *bufio.Writer
	orders   atomic.Int64
}

// Run registers the scenario's users, sends requests on the schedule the
// config describes, waits for the last responses and returns the report.
// When ctx is cancelled it stops sending, lets the requests already sent
// finish (each bounded by Timeout) and returns the partial report
// (Interrupted set) with ctx's error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.RunID == "" {
		cfg.RunID = randomHex(4)
	}
	if cfg.Seed == 0 {
		cfg.Seed = mrand.Uint64() | 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &runner{cfg: cfg, ctx: ctx, base: strings.TrimSuffix(cfg.Target, "/")}
	target, _ := url.Parse(r.base)
	r.hc = newHostClient(target, cfg.Connections, cfg.Timeout)
	defer r.hc.CloseIdleConnections()
	r.scen, _ = lookupScenario(cfg.Scenario)
	byName := map[string]*endpointRecorder{}
	for _, name := range r.scen.endpoints {
		rec := newEndpointRecorder(name)
		byName[name] = rec
		r.recs = append(r.recs, rec)
	}
	for o := range numOps {
		r.eps[o] = byName[opEndpoint[o]]
	}
	if cfg.Orders != nil {
		r.ordersW = bufio.NewWriter(cfg.Orders)
	}
	if r.scen.name == ScenarioSearch || r.scen.name == ScenarioShop {
		r.queries = searchQueries(cfg.Seed)
	}
	if r.scen.needUsers {
		cfg.Logger.Info("registering load users", "users", cfg.Users, "run_id", cfg.RunID)
		users, err := r.registerUsers(ctx)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		r.users = users
	}
	cfg.Logger.Info("load run", "target", cfg.Target, "scenario", cfg.Scenario, "arrival", cfg.Arrival,
		"profile", FormatRamp(cfg.Stages), "connections", cfg.Connections, "max_inflight", cfg.MaxInflight)
	return r.run()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// run is the measured phase.
func (r *runner) run() (*Report, error) {
	cfg := r.cfg
	sched := newSchedule(cfg.Stages, cfg.Arrival, cfg.Seed)
	pick := mrand.New(mrand.NewPCG(cfg.Seed, 0x5ced))
	r.jobs = make(chan job, cfg.MaxInflight)
	workers := 0
	var scheduled int64

	r.start = time.Now()
	stopProgress := r.startProgress()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	interrupted := false
loop:
	for {
		off, ok := sched.next()
		if !ok {
			break
		}
		at := r.start.Add(off)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-r.ctx.Done():
				interrupted = true
				break loop
			}
		} else if scheduled&255 == 0 && r.ctx.Err() != nil {
			interrupted = true
			break loop
		}
		scheduled++
		o := r.scen.pick(pick)
		if r.inflight.Load() >= int64(cfg.MaxInflight) {
			r.dropped.Add(1)
			r.eps[o].failure(0, 0, outcomeDropped)
			continue
		}
		n := r.inflight.Add(1)
		if int64(workers) < n && workers < cfg.Connections {
			workers++
			r.wg.Add(1)
			go r.worker(workers)
		}
		r.jobs <- job{at: at, seq: uint64(scheduled), op: o}
	}
	close(r.jobs)
	r.wg.Wait()
	stopProgress()
	end := time.Now()

	phase := time.Duration(r.lastSend.Load())
	if total := totalDuration(cfg.Stages); phase < total && !interrupted {
		phase = total
	}
	rep := &Report{
		Target:      cfg.Target,
		Scenario:    cfg.Scenario,
		Arrival:     cfg.Arrival,
		Profile:     FormatRamp(cfg.Stages),
		RunID:       cfg.RunID,
		Start:       r.start,
		TargetRate:  expectedCount(cfg.Stages) / totalDuration(cfg.Stages).Seconds(),
		Duration:    phase,
		Elapsed:     end.Sub(r.start),
		Scheduled:   scheduled,
		Sent:        r.sent.Load(),
		Dropped:     r.dropped.Load(),
		Late:        r.late.Load(),
		LateAfter:   cfg.LateAfter,
		Users:       len(r.users),
		Orders:      r.orders.Load(),
		Interrupted: interrupted,
	}
	if phase > 0 {
		rep.Rate = float64(rep.Sent) / phase.Seconds()
	}
	lag := newHistogram()
	total := EndpointReport{Name: AllEndpoints, Statuses: map[string]int64{}, hist: newHistogram()}
	for _, rec := range r.recs {
		rec.mergeLagInto(lag)
		e := rec.report(phase)
		rep.Endpoints = append(rep.Endpoints, e)
		total.Requests += e.Requests
		total.Errors += e.Errors
		for k, n := range e.Statuses {
			total.Statuses[k] += n
		}
		total.hist.Merge(e.hist)
	}
	total.finish(phase)
	rep.Total = total
	rep.SendLag = summarize(lag)
	var err error
	if r.ordersW != nil {
		r.ordersMu.Lock()
		if ferr := r.ordersW.Flush(); ferr != nil {
			err = fmt.Errorf("load: write orders: %w", ferr)
		}
		r.ordersMu.Unlock()
	}
	if interrupted {
		err = errors.Join(r.ctx.Err(), err)
	}
	return rep, err
}

// worker sends the jobs it receives until the channel is closed.
func (r *runner) worker(id int) {
	defer r.wg.Done()
	w := newWorker(r, id)
	for j := range r.jobs {
		if r.ctx.Err() != nil {
			// The run was stopped: queued sends are not made.
			r.inflight.Add(-1)
			continue
		}
		now := time.Now()
		r.sent.Add(1)
		r.noteSend(now.Sub(r.start))
		lag := now.Sub(j.at)
		if lag > r.cfg.LateAfter {
			r.late.Add(1)
		}
		status, err := w.do(j)
		latency := time.Since(j.at)
		if err == nil {
			r.eps[j.op].response(lag, latency, status)
		} else {
			r.eps[j.op].failure(lag, latency, classify(err))
		}
		r.inflight.Add(-1)
	}
}

// noteSend keeps the latest send time.
func (r *runner) noteSend(d time.Duration) {
	for {
		last := r.lastSend.Load()
		if int64(d) <= last || r.lastSend.CompareAndSwap(last, int64(d)) {
			return
		}
	}
}

// startProgress calls OnProgress every ProgressInterval until the
// returned function is called.
func (r *runner) startProgress() (stop func()) {
	if r.cfg.OnProgress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		h := newHistogram()
		var lastSent int64
		last := time.Now()
		total := totalDuration(r.cfg.Stages)
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p := Progress{
					Elapsed:  now.Sub(r.start),
					Total:    total,
					Sent:     r.sent.Load(),
					Dropped:  r.dropped.Load(),
					Late:     r.late.Load(),
					Inflight: r.inflight.Load(),
				}
				h.Reset()
				for _, rec := range r.recs {
					n, e := rec.counts()
					p.Completed += n
					p.Errors += e
					rec.mergeInto(h)
				}
				p.P99 = us(h.ValueAtQuantile(99))
				if dt := now.Sub(last).Seconds(); dt > 0 {
					p.Rate = float64(p.Sent-lastSent) / dt
				}
				lastSent, last = p.Sent, now
				r.cfg.OnProgress(p)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// recordOrder notes an order id answered 201.
func (r *runner) recordOrder(id []byte) {
	r.orders.Add(1)
	if r.ordersW == nil {
		return
	}
	r.ordersMu.Lock()
	r.ordersW.Write(id)
	r.ordersW.WriteByte('\n')
	r.ordersMu.Unlock()
}
