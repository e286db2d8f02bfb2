// Package capacity turns a measured latency-vs-load curve of one brisk API
// instance into a plan: the instance's capacity at the SLO, the replicas a
// target rate needs, the HorizontalPodAutoscaler targets that follow, and
// a simulation of the HPA's decisions over a traffic curve (a Black Friday
// by default) using the measured curve.
package capacity

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/briskhq/brisk/internal/load"
)

// Point is one step of a load test against a fixed number of instances.
type Point struct {
	Instances int
	Offered   float64 // scheduled requests per second
	Achieved  float64 // requests per second actually sent and answered
	P50, P95  time.Duration
	P99       time.Duration
	ErrorRate float64 // fraction
}

// PointFromReport reads a step from a brisk load report. Errors are the
// server's failures: 5xx answers and requests without an answer
// (timeouts, refused or reset connections, drops). 4xx answers are the
// business's (409 out of stock) or the client's, and served.
func PointFromReport(instances int, r *load.Report) Point {
	t := r.Endpoint(load.AllEndpoints)
	var failed int64
	for status, n := range t.Statuses {
		if code, err := strconv.Atoi(status); err != nil || code >= 500 {
			failed += n
		}
	}
	errRate := 0.0
	if t.Requests > 0 {
		errRate = float64(failed) / float64(t.Requests)
	}
	return Point{
		Instances: instances,
		Offered:   r.TargetRate,
		Achieved:  t.Rate * (1 - errRate),
		P50:       t.Percentile(50),
		P95:       t.Percentile(95),
		P99:       t.Percentile(99),
		ErrorRate: errRate,
	}
}

// SLO is what a step must meet to count as within capacity.
type SLO struct {
	P99       time.Duration // latency objective of all requests at the 99th percentile
	ErrorRate float64       // largest acceptable error fraction
}

// Meets reports whether p met the SLO and kept up with the offered rate
// (at least 90% of it achieved: Poisson arrivals over a 10s step vary by a
// few percent; an open-model generator far behind means saturation).
func (s SLO) Meets(p Point) bool {
	return p.P99 <= s.P99 && p.ErrorRate <= s.ErrorRate && p.Achieved >= 0.9*p.Offered
}

// Curve is a latency-vs-load curve of one instance count, by offered rate.
type Curve []Point

// Sorted returns the points in order of offered rate.
func (c Curve) Sorted() Curve {
	s := slices.Clone(c)
	slices.SortFunc(s, func(a, b Point) int {
		switch {
		case a.Offered < b.Offered:
			return -1
		case a.Offered > b.Offered:
			return 1
		}
		return 0
	})
	return s
}

// CapacityAt returns the highest offered rate of the curve that met the
// SLO before two consecutive steps missed it, and whether any did. One
// isolated miss between passing steps is taken for noise (a shared
// machine, a GC pause); two in a row end the usable range.
func (c Curve) CapacityAt(slo SLO) (float64, bool) {
	best, ok, misses := 0.0, false, 0
	for _, p := range c.Sorted() {
		if !slo.Meets(p) {
			if misses++; misses == 2 {
				break
			}
			continue
		}
		best, ok, misses = p.Offered, true, 0
	}
	return best, ok
}

// Saturation is the highest achieved rate of the curve: what the instances
// do flat out, SLO or not.
func (c Curve) Saturation() float64 {
	m := 0.0
	for _, p := range c {
		m = max(m, p.Achieved)
	}
	return m
}

// P95At interpolates the p95 latency at an offered rate per instance.
// Past the last measured step the latency grows as an M/M/1 queue's would
// towards saturation, and is "infinite" (Overload) beyond it.
func (c Curve) P95At(rate float64) time.Duration {
	s := c.Sorted()
	if len(s) == 0 {
		return Overload
	}
	if rate <= s[0].Offered {
		return s[0].P95
	}
	for i := 1; i < len(s); i++ {
		if rate <= s[i].Offered {
			a, b := s[i-1], s[i]
			f := (rate - a.Offered) / (b.Offered - a.Offered)
			return a.P95 + time.Duration(f*float64(b.P95-a.P95))
		}
	}
	last := s[len(s)-1]
	sat := c.Saturation()
	if rate >= sat || last.Offered >= sat {
		return Overload
	}
	// M/M/1: response time ~ 1/(mu - lambda); scale from the last point.
	d := float64(last.P95) * (sat - last.Offered) / (sat - rate)
	return min(time.Duration(d), Overload)
}

// Overload stands for the latency of an instance offered more than it can
// serve: queues grow without bound, requests time out.
const Overload = 10 * time.Second

// Plan is the capacity plan derived from a curve.
type Plan struct {
	SLO          SLO
	PerInstance  float64       // requests/s one instance serves within the SLO
	Saturation   float64       // requests/s one instance serves flat out
	Headroom     float64       // fraction of PerInstance the fleet runs at in steady state
	TargetRPS    float64       // per-pod request rate at the operating point
	TargetP95    time.Duration // HPA p95 target (see NewPlan)
	LightLoadP95 time.Duration // p95 of the lowest measured step
	TargetCPU    int32         // HPA CPU utilization target, percent
	Replicas     []Replicas
	MinReplicas  int32
	ZoneFailures int // zones whose loss the plan survives
}

// Replicas is the fleet a target rate needs.
type Replicas struct {
	Rate           float64
	AtSLO          int // ceil(rate / PerInstance): the bare minimum
	WithHeadroom   int // at the operating point (what the HPA aims for)
	ZoneTolerant   int // still at SLO after losing one of Zones zones
	Zones          int
	PerPodAtSteady float64
}

// Config tunes NewPlan.
type Config struct {
	SLO SLO
	// Headroom is the share of the per-instance capacity the fleet runs at
	// in steady state (default 0.7): the margin that covers the HPA's
	// reaction time, pod start-up and uneven balancing.
	Headroom float64
	// Zones is the number of zones pods spread over (default 3).
	Zones int
	// Rates are the target rates to size for.
	Rates []float64
}

// NewPlan derives the plan from the one-instance curve.
func NewPlan(c Curve, cfg Config) (*Plan, error) {
	if cfg.Headroom == 0 {
		cfg.Headroom = 0.7
	}
	if cfg.Zones == 0 {
		cfg.Zones = 3
	}
	if !(cfg.Headroom > 0 && cfg.Headroom <= 1) {
		return nil, fmt.Errorf("capacity plan: headroom %v: want 0 < h <= 1", cfg.Headroom)
	}
	perInstance, ok := c.CapacityAt(cfg.SLO)
	if !ok {
		return nil, fmt.Errorf("capacity plan: no measured step met the SLO (p99 <= %s, errors <= %.2f%%)", cfg.SLO.P99, cfg.SLO.ErrorRate*100)
	}
	p := &Plan{SLO: cfg.SLO, PerInstance: perInstance, Saturation: c.Saturation(), Headroom: cfg.Headroom, ZoneFailures: 1}
	p.TargetRPS = perInstance * cfg.Headroom
	// Latency is flat below the knee and climbs steeply past it, so it is
	// no proportional signal: the HPA would never scale down on it if its
	// target sat on the flat part (the recommendation stays within the
	// tolerance). The target is the p95 of a pod at its SLO capacity, and
	// at least twice the light-load p95: below it the latency metric
	// recommends fewer pods and CPU decides; above it latency is the
	// emergency signal.
	p.TargetP95 = max(c.P95At(perInstance), 2*c.P95At(0))
	p.LightLoadP95 = c.P95At(0)
	// CPU is the proportional signal: an instance at its SLO capacity is
	// taken as busy, so the operating point is Headroom of it.
	p.TargetCPU = int32(math.Round(100 * cfg.Headroom))
	// Two pods at least, and enough that one zone's loss keeps two.
	p.MinReplicas = int32(max(2, cfg.Zones))
	for _, r := range cfg.Rates {
		atSLO := int(math.Ceil(r / perInstance))
		withHeadroom := int(math.Ceil(r / p.TargetRPS))
		// Losing one zone of Zones loses 1/Zones of the pods; the rest must
		// still serve r within the SLO.
		zoneTolerant := int(math.Ceil(float64(atSLO) * float64(cfg.Zones) / float64(cfg.Zones-1)))
		if cfg.Zones == 1 {
			zoneTolerant = atSLO
		}
		n := max(withHeadroom, zoneTolerant, int(p.MinReplicas))
		p.Replicas = append(p.Replicas, Replicas{
			Rate: r, AtSLO: atSLO, WithHeadroom: withHeadroom, ZoneTolerant: zoneTolerant,
			Zones: cfg.Zones, PerPodAtSteady: r / float64(n),
		})
	}
	return p, nil
}
