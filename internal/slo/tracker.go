package slo

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Counter counts the requests of one journey; its Observe is the only
// per-request cost of the live SLO view (a few atomic adds).
type Counter struct {
	threshold time.Duration // 0: the journey has no latency SLO
	total     atomic.Uint64
	errors    atomic.Uint64 // 5xx
	valid     atomic.Uint64 // not 5xx
	fast      atomic.Uint64 // not 5xx and within threshold
}

// Observe counts one finished request.
func (c *Counter) Observe(status int, d time.Duration) {
	if c == nil {
		return
	}
	c.total.Add(1)
	if status >= 500 {
		c.errors.Add(1)
		return
	}
	c.valid.Add(1)
	if d <= c.threshold {
		c.fast.Add(1)
	}
}

// counts is a snapshot of a Counter.
type counts struct{ total, errors, valid, fast uint64 }

func (c *Counter) load() counts {
	return counts{c.total.Load(), c.errors.Load(), c.valid.Load(), c.fast.Load()}
}

func (c counts) minus(o counts) counts {
	return counts{c.total - o.total, c.errors - o.errors, c.valid - o.valid, c.fast - o.fast}
}

// events returns the bad and total events of an SLI.
func (c counts) events(sli string) (bad, total uint64) {
	if sli == LatencySLI {
		return c.valid - c.fast, c.valid
	}
	return c.errors, c.total
}

// sample is the cumulative counts of every journey at one time.
type sample struct {
	at     time.Time
	counts []counts // by journey, in spec order
}

// ring keeps the latest samples, at most cap of them, oldest first.
type ring struct {
	buf   []sample
	start int // index of the oldest sample once buf is full
	cap   int
}

func (r *ring) push(s sample) {
	if len(r.buf) < r.cap {
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % r.cap
}

func (r *ring) len() int { return len(r.buf) }

// at returns the i-th oldest sample.
func (r *ring) at(i int) sample { return r.buf[(r.start+i)%len(r.buf)] }

func (r *ring) last() sample { return r.at(r.len() - 1) }

// find returns the latest sample taken at or before t, or the oldest one
// when all are later.
func (r *ring) find(t time.Time) sample {
	lo, hi := 0, r.len()-1 // binary search: samples are in time order
	if r.at(0).at.After(t) {
		return r.at(0)
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if r.at(mid).at.After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return r.at(lo)
}

// Sampling of the Tracker: fine samples serve windows up to FineSpan,
// coarse ones the longer windows and the error budget.
const (
	FineStep   = 10 * time.Second
	FineSpan   = 6 * time.Hour
	CoarseStep = 5 * time.Minute
)

// Tracker computes burn rates and the remaining error budget of every SLO
// in-process: Counters count requests as they finish, Snapshot (every
// FineStep while Run runs) keeps their cumulative values, and a window's
// error ratio is the difference between now and the sample a window ago.
// Windows longer than the process's life cover its life.
type Tracker struct {
	spec     *Spec
	slos     []SLO
	now      func() time.Time
	counters []*Counter // by journey, in spec order
	index    map[string]int

	mu     sync.Mutex
	fine   ring
	coarse ring
}

// NewTracker returns a Tracker of spec's SLOs that reads the time from
// now (time.Now when nil). It takes its first sample at once.
func NewTracker(spec *Spec, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	t := &Tracker{spec: spec, slos: spec.SLOs(), now: now, index: map[string]int{}}
	for i, j := range spec.Journeys {
		t.counters = append(t.counters, &Counter{threshold: time.Duration(j.Latency.Threshold)})
		t.index[j.Name] = i
	}
	t.fine.cap = int(FineSpan/FineStep) + 2
	t.coarse.cap = int(time.Duration(spec.Window)/CoarseStep) + 2
	t.Snapshot()
	return t
}

// Counter returns the counter of a journey, nil for an unknown one (a nil
// Counter ignores Observe).
func (t *Tracker) Counter(journey string) *Counter {
	if i, ok := t.index[journey]; ok {
		return t.counters[i]
	}
	return nil
}

func (t *Tracker) read() sample {
	s := sample{at: t.now(), counts: make([]counts, len(t.counters))}
	for i, c := range t.counters {
		s.counts[i] = c.load()
	}
	return s
}

// Snapshot records the counters' current values.
func (t *Tracker) Snapshot() {
	s := t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fine.push(s)
	if t.coarse.len() == 0 || s.at.Sub(t.coarse.last().at) >= CoarseStep {
		t.coarse.push(s)
	}
}

// Run takes a Snapshot every FineStep until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(FineStep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Snapshot()
		}
	}
}

// Status is the live view of every SLO, as /debug/slo serves it.
type Status struct {
	Service string      `json:"service"`
	At      time.Time   `json:"at"`
	Window  string      `json:"window"`
	SLOs    []SLOStatus `json:"slos"`
}

// SLOStatus is one SLO's burn rates, remaining budget and alert states.
type SLOStatus struct {
	Name      string  `json:"name"`
	Journey   string  `json:"journey"`
	SLI       string  `json:"sli"`
	Objective float64 `json:"objective"`
	// ThresholdSeconds is the latency threshold (latency SLOs only).
	ThresholdSeconds float64        `json:"threshold_seconds,omitempty"`
	Windows          []WindowStatus `json:"windows"`
	// Budget is the SLO window (or the process's life, if shorter).
	Budget BudgetStatus  `json:"error_budget"`
	Alerts []AlertStatus `json:"alerts"`
}

// WindowStatus is the error ratio and burn rate over one window.
type WindowStatus struct {
	Window string `json:"window"`
	// Covered is how much of the window the data covers (less than Window
	// while the process is younger than it).
	Covered    string  `json:"covered"`
	Total      uint64  `json:"total"`
	Bad        uint64  `json:"bad"`
	ErrorRatio float64 `json:"error_ratio"`
	BurnRate   float64 `json:"burn_rate"`
}

// BudgetStatus is the error budget over the SLO window: Remaining is the
// share of it left (1 untouched, 0 spent, negative overspent).
type BudgetStatus struct {
	WindowStatus
	Remaining float64 `json:"remaining"`
}

// AlertStatus says whether a burn-rate alert's condition holds now.
type AlertStatus struct {
	Severity string  `json:"severity"`
	Long     string  `json:"long_window"`
	Short    string  `json:"short_window"`
	Factor   float64 `json:"factor"`
	Firing   bool    `json:"firing"`
}

// Status computes the live view.
func (t *Tracker) Status() Status {
	now := t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Status{Service: t.spec.Service, At: now.at, Window: t.spec.Window.String()}
	for _, o := range t.slos {
		j := t.index[o.Journey]
		win := func(w time.Duration) WindowStatus {
			r := &t.fine
			if w > FineSpan {
				r = &t.coarse
			}
			base := r.find(now.at.Add(-w))
			bad, total := now.counts[j].minus(base.counts[j]).events(o.SLI)
			ws := WindowStatus{Window: dur(w), Covered: now.at.Sub(base.at).Round(time.Second).String(), Total: total, Bad: bad,
				BurnRate: BurnRate(bad, total, o.Objective)}
			if total > 0 {
				ws.ErrorRatio = float64(bad) / float64(total)
			}
			return ws
		}
		s := SLOStatus{Name: o.Name, Journey: o.Journey, SLI: o.SLI, Objective: o.Objective, ThresholdSeconds: o.Threshold.Seconds()}
		byWindow := map[time.Duration]WindowStatus{}
		for _, w := range Windows() {
			ws := win(w)
			byWindow[w] = ws
			s.Windows = append(s.Windows, ws)
		}
		s.Budget.WindowStatus = win(time.Duration(t.spec.Window))
		s.Budget.Remaining = 1 - s.Budget.BurnRate
		for _, a := range BurnAlerts {
			long, short := byWindow[a.Long], byWindow[a.Short]
			firing := long.BurnRate > a.Factor && short.BurnRate > a.Factor
			if a.Severity == "page" && long.Total < uint64(t.spec.MinEvents) {
				firing = false
			}
			s.Alerts = append(s.Alerts, AlertStatus{Severity: a.Severity, Long: dur(a.Long), Short: dur(a.Short), Factor: a.Factor, Firing: firing})
		}
		st.SLOs = append(st.SLOs, s)
	}
	return st
}

// Handler serves Status as JSON (GET /debug/slo).
func (t *Tracker) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := json.MarshalIndent(t.Status(), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(b, '\n'))
	})
}
