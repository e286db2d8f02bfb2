package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/briskhq/brisk/internal/slo"
)

// Sizes of the sampler's history.
const (
	historyPoints   = 300           // per-sample points kept (5 min at 1 s)
	firstLoadPoints = 120           // points sent to a dashboard that has none
	quantileWindow  = 10            // samples over which percentiles are computed
	burnEvery       = 10            // one burn-rate entry per this many samples
	burnEntries     = 6 * 3600 / 10 // 6 h of burn-rate entries at 10 s
)

// Burn-rate windows shown on the dashboard.
var burnWindows = []struct {
	name string
	d    time.Duration
}{{"5m", 5 * time.Minute}, {"1h", time.Hour}, {"6h", 6 * time.Hour}}

// Sampler reads the Prometheus registry at a fixed interval and keeps a
// short history of rates, percentiles and gauges for the dashboard.
type Sampler struct {
	g        prometheus.Gatherer
	m        Metrics
	objs     []Objective
	interval time.Duration
	// tracker, when set, gives the SLO view instead of the objectives
	// computed from the histograms (see UseTracker).
	tracker func() slo.Status

	mu      sync.Mutex
	started time.Time
	seq     uint64
	snaps   []*snapshot // the last quantileWindow+1 snapshots
	points  []Point     // the last historyPoints points
	burns   []burnEntry // one per burnEvery samples, the last burnEntries
	first   *burnEntry  // the first sample's totals: budget since start
	last    *burnEntry
	missing []string
}

// snapshot is one reading of the registry: cumulative counters and gauges.
type snapshot struct {
	t          time.Time
	groups     map[string]*groupCum // by route group, "all" included
	journeys   map[string]*groupCum // by journey label; nil without one
	inFlight   float64              // NaN when absent
	limit      float64
	dbInUse    float64
	dbMax      float64
	goroutines float64
	breaker    string
	cache      map[string]*cacheCum
}

type groupCum struct {
	count, errors, limited, notModified float64
	buckets                             []bucket // cumulative by upper bound, ending with +Inf
	okBuckets                           []bucket // the same, of requests not answered 5xx
}

type bucket struct{ le, n float64 }

type cacheCum struct{ hits, misses float64 }

// burnEntry holds the cumulative good and total events of each objective.
type burnEntry struct {
	t          time.Time
	total, bad []float64
}

// NewSampler returns a Sampler of g; call Run or Sample to fill it.
func NewSampler(g prometheus.Gatherer, m Metrics, objs []Objective, interval time.Duration) *Sampler {
	return &Sampler{g: g, m: m.withDefaults(), objs: objs, interval: interval}
}

// UseTracker makes the SLO view come from an in-process tracker (the one
// behind /debug/slo), so that both agree; its windows reach 30 days.
func (s *Sampler) UseTracker(status func() slo.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracker = status
}

// Run samples every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	if err := s.Sample(time.Now()); err != nil {
		log.Warn("dashboard: sample metrics", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Stamp the sample with the time of the read, not of the tick:
			// a busy process may handle a tick late.
			if err := s.Sample(time.Now()); err != nil {
				log.Warn("dashboard: sample metrics", "err", err)
			}
		}
	}
}

// Sample reads the registry once, as of now.
func (s *Sampler) Sample(now time.Time) error {
	mfs, err := s.g.Gather()
	if err != nil && len(mfs) == 0 {
		return fmt.Errorf("gather: %w", err)
	}
	snap, missing := s.read(mfs, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.missing = missing
	if s.started.IsZero() {
		s.started = now
	}
	s.seq++
	s.snaps = append(s.snaps, snap)
	if len(s.snaps) > quantileWindow+1 {
		s.snaps = slices.Delete(s.snaps, 0, len(s.snaps)-(quantileWindow+1))
	}
	s.points = append(s.points, s.point(now))
	if len(s.points) > historyPoints {
		s.points = slices.Delete(s.points, 0, len(s.points)-historyPoints)
	}
	be := s.burnEntry(snap)
	s.last = &be
	if s.first == nil {
		s.first = &be
	}
	if (s.seq-1)%burnEvery == 0 {
		s.burns = append(s.burns, be)
		if len(s.burns) > burnEntries {
			s.burns = slices.Delete(s.burns, 0, len(s.burns)-burnEntries)
		}
	}
	return err
}

// read turns gathered families into a snapshot and lists the configured
// metrics that were not found.
func (s *Sampler) read(mfs []*dto.MetricFamily, now time.Time) (*snapshot, []string) {
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	var missing []string
	gauge := func(sel string) float64 {
		s := parseSelector(sel)
		mf, ok := byName[s.name]
		if !ok {
			missing = append(missing, sel)
			return math.NaN()
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			if s.label == "" || labelValue(m, s.label) == s.value {
				sum += value(m)
			}
		}
		return sum
	}
	snap := &snapshot{
		t: now, groups: map[string]*groupCum{}, cache: map[string]*cacheCum{},
		inFlight: gauge(s.m.InFlight), limit: gauge(s.m.ConcurrencyLimit),
		dbInUse: gauge(s.m.DBPoolInUse), dbMax: gauge(s.m.DBPoolMax), goroutines: gauge(s.m.Goroutines),
	}
	if mf, ok := byName[s.m.Requests]; ok {
		s.readRequests(mf, snap)
	} else {
		missing = append(missing, s.m.Requests)
	}
	if mf, ok := byName[s.m.ServerErrors]; ok {
		s.readServerErrors(mf, snap)
	}
	s.readCache(byName, snap, &missing)
	if mf, ok := byName[s.m.BreakerState]; ok {
		snap.breaker = s.breakerState(mf)
	} else {
		missing = append(missing, s.m.BreakerState)
	}
	return snap, missing
}

// routeOf returns the route template of a series, with its method.
func (s *Sampler) routeOf(m *dto.Metric) string {
	route, method := labelValue(m, s.m.RouteLabel), labelValue(m, s.m.MethodLabel)
	if method != "" && !strings.Contains(route, " ") {
		route = method + " " + route
	}
	return route
}

func (s *Sampler) readRequests(mf *dto.MetricFamily, snap *snapshot) {
	type key struct {
		journey bool
		name    string
	}
	cums := map[key]*groupCum{}
	merged := map[key]map[float64]float64{}
	mergedOK := map[key]map[float64]float64{}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		status := labelValue(m, s.m.StatusLabel)
		keys := []key{{false, "all"}, {false, Group(s.routeOf(m))}}
		for _, lp := range m.GetLabel() {
			if lp.GetName() == s.m.JourneyLabel {
				keys = append(keys, key{true, lp.GetValue()})
			}
		}
		n := float64(h.GetSampleCount())
		fiveXX := strings.HasPrefix(status, "5")
		for _, g := range keys {
			gc := cums[g]
			if gc == nil {
				gc = &groupCum{}
				cums[g] = gc
				merged[g] = map[float64]float64{}
				mergedOK[g] = map[float64]float64{}
			}
			gc.count += n
			if fiveXX {
				gc.errors += n
			}
			if status == "304" || status == "3xx" { // the API's only 3xx is 304 Not Modified
				gc.notModified += n
			}
			for _, b := range h.GetBucket() {
				merged[g][b.GetUpperBound()] += float64(b.GetCumulativeCount())
				if !fiveXX {
					mergedOK[g][b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			}
			merged[g][math.Inf(1)] += n
			if !fiveXX {
				mergedOK[g][math.Inf(1)] += n
			}
		}
	}
	for k, gc := range cums {
		gc.buckets = sortedBuckets(merged[k])
		gc.okBuckets = sortedBuckets(mergedOK[k])
		if k.journey {
			if snap.journeys == nil {
				snap.journeys = map[string]*groupCum{}
			}
			snap.journeys[k.name] = gc
		} else {
			snap.groups[k.name] = gc
		}
	}
}

// readServerErrors counts 503s (shed by the limiter, or a dependency
// unavailable) per route group.
func (s *Sampler) readServerErrors(mf *dto.MetricFamily, snap *snapshot) {
	for _, m := range mf.GetMetric() {
		if labelValue(m, s.m.CodeLabel) != "503" {
			continue
		}
		for _, g := range []string{"all", Group(s.routeOf(m))} {
			if gc := snap.groups[g]; gc != nil {
				gc.limited += value(m)
			}
		}
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func sortedBuckets(m map[float64]float64) []bucket {
	bs := make([]bucket, 0, len(m))
	for le, n := range m {
		bs = append(bs, bucket{le, n})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	return bs
}

func (s *Sampler) readCache(byName map[string]*dto.MetricFamily, snap *snapshot, missing *[]string) {
	layer := func(m *dto.Metric) (string, string) {
		l, r := "", ""
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case s.m.CacheLayerLabel:
				l = lp.GetValue()
			case s.m.CacheResultLabel:
				r = lp.GetValue()
			}
		}
		if l == "" {
			l = "cache"
		}
		return l, r
	}
	get := func(l string) *cacheCum {
		c := snap.cache[l]
		if c == nil {
			c = &cacheCum{}
			snap.cache[l] = c
		}
		return c
	}
	hits, ok := byName[s.m.CacheHits]
	if !ok {
		*missing = append(*missing, s.m.CacheHits)
		return
	}
	if s.m.CacheHits == s.m.CacheMisses {
		for _, m := range hits.GetMetric() {
			l, r := layer(m)
			if r == "hit" || r == "hits" {
				get(l).hits += value(m)
			} else {
				get(l).misses += value(m)
			}
		}
		return
	}
	for _, m := range hits.GetMetric() {
		l, _ := layer(m)
		get(l).hits += value(m)
	}
	if misses, ok := byName[s.m.CacheMisses]; ok {
		for _, m := range misses.GetMetric() {
			l, _ := layer(m)
			get(l).misses += value(m)
		}
	}
}

var breakerNames = map[int]string{0: "closed", 1: "half-open", 2: "open"}

func (s *Sampler) breakerState(mf *dto.MetricFamily) string {
	worst := -1
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == s.m.BreakerStateLabel && value(m) == 1 {
				return strings.ReplaceAll(lp.GetValue(), "_", "-")
			}
		}
		if v := int(value(m)); v > worst {
			worst = v
		}
	}
	if n, ok := breakerNames[worst]; ok {
		return n
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// num is a float64 that encodes NaN and infinities as null and keeps
// three decimals.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(f*1000)/1000, 'f', -1, 64), nil
}

func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = num(f)
	return nil
}

// Point is one sample as the dashboard draws it.
type Point struct {
	Seq        uint64                `json:"seq"`
	T          int64                 `json:"t"` // unix milliseconds
	Groups     map[string]GroupPoint `json:"groups"`
	InFlight   num                   `json:"in_flight"`
	Limit      num                   `json:"limit"`
	DBInUse    num                   `json:"db_in_use"`
	DBMax      num                   `json:"db_max"`
	Goroutines num                   `json:"goroutines"`
	Breaker    string                `json:"breaker,omitempty"`
}

// GroupPoint is one route group's rates (per second, since the previous
// sample), percentiles (milliseconds, over the last quantileWindow
// samples) and cumulative request count.
type GroupPoint struct {
	RPS     num `json:"rps"`
	Errors  num `json:"eps"`     // 5xx per second
	Limited num `json:"limited"` // 503 per second: shed or unavailable
	P50     num `json:"p50"`
	P95     num `json:"p95"`
	P99     num `json:"p99"`
	Total   num `json:"total"`
}

// point computes the newest point from the snapshots (s.mu held).
func (s *Sampler) point(now time.Time) Point {
	cur := s.snaps[len(s.snaps)-1]
	p := Point{
		Seq: s.seq, T: now.UnixMilli(), Groups: map[string]GroupPoint{},
		InFlight: num(cur.inFlight), Limit: num(cur.limit), DBInUse: num(cur.dbInUse), DBMax: num(cur.dbMax),
		Goroutines: num(cur.goroutines), Breaker: cur.breaker,
	}
	var prev, old *snapshot
	if len(s.snaps) > 1 {
		prev = s.snaps[len(s.snaps)-2]
		old = s.snaps[0]
	}
	for g, gc := range cur.groups {
		gp := GroupPoint{Total: num(gc.count), RPS: num(math.NaN()), Errors: num(math.NaN()), Limited: num(math.NaN()),
			P50: num(math.NaN()), P95: num(math.NaN()), P99: num(math.NaN())}
		if prev != nil {
			dt := cur.t.Sub(prev.t).Seconds()
			pg := prev.groups[g]
			if pg == nil {
				pg = &groupCum{}
			}
			if dt > 0 {
				gp.RPS = num(math.Max(0, gc.count-pg.count) / dt)
				gp.Errors = num(math.Max(0, gc.errors-pg.errors) / dt)
				gp.Limited = num(math.Max(0, gc.limited-pg.limited) / dt)
			}
			d := deltaBuckets(gc.buckets, old.groups[g])
			gp.P50 = num(quantile(0.50, d) * 1000)
			gp.P95 = num(quantile(0.95, d) * 1000)
			gp.P99 = num(quantile(0.99, d) * 1000)
		}
		p.Groups[g] = gp
	}
	return p
}

// deltaBuckets returns cur minus old, bucket by bucket (old may be nil).
func deltaBuckets(cur []bucket, old *groupCum) []bucket {
	d := slices.Clone(cur)
	if old == nil {
		return d
	}
	for i := range d {
		for _, ob := range old.buckets {
			if ob.le == d[i].le {
				d[i].n = math.Max(0, d[i].n-ob.n)
				break
			}
		}
	}
	return d
}

// quantile estimates the q-quantile from cumulative buckets ending with
// +Inf, interpolating linearly inside a bucket as PromQL's
// histogram_quantile does. It returns NaN with no observations.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].n
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	i := sort.Search(len(bs), func(i int) bool { return bs[i].n >= rank })
	if i >= len(bs) {
		i = len(bs) - 1
	}
	if math.IsInf(bs[i].le, 1) {
		if len(bs) < 2 {
			return math.NaN()
		}
		return bs[len(bs)-2].le
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = bs[i-1].le, bs[i-1].n
	}
	if bs[i].le <= lower { // first bucket with a non-positive bound
		return bs[i].le
	}
	in := bs[i].n - below
	if in <= 0 {
		return bs[i].le
	}
	return lower + (bs[i].le-lower)*(rank-below)/in
}

// goodBelow estimates how many observations took at most le seconds.
func goodBelow(bs []bucket, le float64) float64 {
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.le == le {
			return b.n
		}
		if b.le > le {
			if math.IsInf(b.le, 1) {
				return below
			}
			return below + (b.n-below)*(le-lower)/(b.le-lower)
		}
		lower, below = b.le, b.n
	}
	return below
}

// burnEntry computes every objective's cumulative total and bad events.
func (s *Sampler) burnEntry(snap *snapshot) burnEntry {
	be := burnEntry{t: snap.t, total: make([]float64, len(s.objs)), bad: make([]float64, len(s.objs))}
	for i, o := range s.objs {
		gc := snap.groups[o.Journey]
		if snap.journeys != nil {
			gc = snap.journeys[o.Journey]
		}
		if gc == nil {
			continue
		}
		if o.Latency > 0 {
			ok := 0.0
			if n := len(gc.okBuckets); n > 0 {
				ok = gc.okBuckets[n-1].n
			}
			be.total[i] = ok
			be.bad[i] = ok - goodBelow(gc.okBuckets, o.Latency.Seconds())
		} else {
			be.total[i] = gc.count
			be.bad[i] = gc.errors
		}
	}
	return be
}

// SLOStatus is one objective's live burn rates and remaining budget.
type SLOStatus struct {
	Name      string         `json:"name"`
	Journey   string         `json:"journey"`
	Goal      num            `json:"goal"`
	LatencyMS num            `json:"latency_ms,omitempty"`
	Burn      map[string]num `json:"burn"` // by window; null without traffic
	// BudgetLeft is the share of the error budget left over the traffic
	// seen since the process started (1: untouched; negative: overspent).
	BudgetLeft num `json:"budget_left"`
	Requests   num `json:"requests"`
}

// burnRate is the bad share of events between a and b divided by the
// share the objective allows; NaN without events.
func burnRate(a, b burnEntry, i int, goal float64) float64 {
	total := b.total[i] - a.total[i]
	if total <= 0 || goal >= 1 {
		return math.NaN()
	}
	return (b.bad[i] - a.bad[i]) / total / (1 - goal)
}

// slos computes SLO statuses (s.mu held).
func (s *Sampler) slos() []SLOStatus {
	if s.tracker != nil {
		return fromTracker(s.tracker())
	}
	if s.last == nil {
		return nil
	}
	out := make([]SLOStatus, len(s.objs))
	for i, o := range s.objs {
		st := SLOStatus{Name: o.Name, Journey: o.Journey, Goal: num(o.Goal), Burn: map[string]num{}, BudgetLeft: num(math.NaN()),
			Requests: num(s.last.total[i] - s.first.total[i])}
		if o.Latency > 0 {
			st.LatencyMS = num(float64(o.Latency) / float64(time.Millisecond))
		}
		for _, w := range burnWindows {
			from := *s.first
			for _, be := range s.burns {
				if !be.t.Before(s.last.t.Add(-w.d)) {
					from = be
					break
				}
			}
			st.Burn[w.name] = num(burnRate(from, *s.last, i, o.Goal))
		}
		if r := burnRate(*s.first, *s.last, i, o.Goal); !math.IsNaN(r) {
			st.BudgetLeft = num(1 - r)
		}
		out[i] = st
	}
	return out
}

// fromTracker converts the tracker's view; a window without traffic has
// no burn rate (null) rather than 0.
func fromTracker(st slo.Status) []SLOStatus {
	out := make([]SLOStatus, 0, len(st.SLOs))
	for _, o := range st.SLOs {
		ss := SLOStatus{Name: o.Name, Journey: o.Journey, Goal: num(o.Objective), LatencyMS: num(o.ThresholdSeconds * 1000),
			Burn: map[string]num{}, BudgetLeft: num(math.NaN()), Requests: num(o.Budget.Total)}
		for _, w := range o.Windows {
			if w.Total > 0 {
				ss.Burn[w.Window] = num(w.BurnRate)
			} else {
				ss.Burn[w.Window] = num(math.NaN())
			}
		}
		if o.Budget.Total > 0 {
			ss.BudgetLeft = num(o.Budget.Remaining)
		}
		out = append(out, ss)
	}
	return out
}

// CacheLayer is one cache layer's hit ratio.
type CacheLayer struct {
	Layer  string `json:"layer"`
	Hits   num    `json:"hits"`
	Misses num    `json:"misses"`
	// Ratio is hits / (hits + misses) since start; Recent over the last
	// quantileWindow samples. Null without lookups.
	Ratio  num `json:"ratio"`
	Recent num `json:"recent"`
}

func ratio(h, m float64) num {
	if h+m <= 0 {
		return num(math.NaN())
	}
	return num(h / (h + m))
}

// caches computes cache layers (s.mu held), adding the HTTP layer: 304
// answers to conditional GETs of catalog routes.
func (s *Sampler) caches() []CacheLayer {
	if len(s.snaps) == 0 {
		return nil
	}
	cur, old := s.snaps[len(s.snaps)-1], s.snaps[0]
	var out []CacheLayer
	for l, c := range cur.cache {
		cl := CacheLayer{Layer: l, Hits: num(c.hits), Misses: num(c.misses), Ratio: ratio(c.hits, c.misses)}
		if o := old.cache[l]; o != nil && old != cur {
			cl.Recent = ratio(c.hits-o.hits, c.misses-o.misses)
		} else {
			cl.Recent = cl.Ratio
		}
		out = append(out, cl)
	}
	var hit, all, ohit, oall float64
	for _, g := range []string{"browse", "search"} {
		if gc := cur.groups[g]; gc != nil {
			hit, all = hit+gc.notModified, all+gc.count
		}
		if gc := old.groups[g]; gc != nil && old != cur {
			ohit, oall = ohit+gc.notModified, oall+gc.count
		}
	}
	if all > 0 {
		out = append(out, CacheLayer{Layer: "http-304", Hits: num(hit), Misses: num(all - hit), Ratio: ratio(hit, all-hit), Recent: ratio(hit-ohit, all-hit-(oall-ohit))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Layer < out[j].Layer })
	return out
}

// Data is what /dashboard/data answers.
type Data struct {
	Now      int64        `json:"now"`     // unix milliseconds
	Started  int64        `json:"started"` // first sample, unix milliseconds
	Interval num          `json:"interval_s"`
	Seq      uint64       `json:"seq"`
	Groups   []string     `json:"groups"` // route groups seen, display order
	Points   []Point      `json:"points"` // oldest first
	Cache    []CacheLayer `json:"cache"`
	SLOs     []SLOStatus  `json:"slos"`
	Missing  []string     `json:"missing,omitempty"` // configured metrics not registered
}

// Data returns the points after seq since (all kept, up to
// firstLoadPoints, when since is 0) and the current cache and SLO views.
func (s *Sampler) Data(since uint64) Data {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := Data{Now: time.Now().UnixMilli(), Interval: num(s.interval.Seconds()), Seq: s.seq,
		Cache: s.caches(), SLOs: s.slos(), Missing: s.missing}
	if !s.started.IsZero() {
		d.Started = s.started.UnixMilli()
	}
	pts := s.points
	if since == 0 || since > s.seq {
		if len(pts) > firstLoadPoints {
			pts = pts[len(pts)-firstLoadPoints:]
		}
	} else {
		i := sort.Search(len(pts), func(i int) bool { return pts[i].Seq > since })
		pts = pts[i:]
	}
	d.Points = slices.Clone(pts)
	seen := map[string]bool{}
	if len(s.snaps) > 0 {
		for g := range s.snaps[len(s.snaps)-1].groups {
			seen[g] = true
		}
	}
	for _, g := range groupOrder {
		if seen[g] {
			d.Groups = append(d.Groups, g)
		}
	}
	return d
}
