package capacity

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// HPA is the autoscaler being simulated: the metrics and behaviour of
// deploy/k8s/base/api-hpa.yaml, and the delays around it.
type HPA struct {
	Min, Max  int
	TargetP95 time.Duration // Pods metric, average value (0: not used)
	TargetCPU int           // Resource metric, utilization percent (0: not used)
	Tolerance float64       // default 0.1, as kube-controller-manager's

	Sync time.Duration // HPA sync period; default 15s

	ScaleUpPercent int           // default 100
	ScaleUpPods    int           // default 4
	ScaleUpPeriod  time.Duration // default 30s

	ScaleDownWindow  time.Duration // stabilization; default 5m
	ScaleDownPercent int           // default 20
	ScaleDownPeriod  time.Duration // default 1m

	// PodStartup is from the HPA's decision to a new pod serving:
	// scheduling, image pull, start-up and readiness probes; default 40s.
	PodStartup time.Duration
	// MetricLag is how stale the metrics are when the HPA reads them
	// (scrape interval, rate() window, adapter cache); default 1m.
	MetricLag time.Duration
}

func (h HPA) withDefaults() HPA {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&h.Sync, 15*time.Second)
	def(&h.ScaleUpPeriod, 30*time.Second)
	def(&h.ScaleDownWindow, 5*time.Minute)
	def(&h.ScaleDownPeriod, time.Minute)
	def(&h.PodStartup, 40*time.Second)
	def(&h.MetricLag, time.Minute)
	if h.Tolerance == 0 {
		h.Tolerance = 0.1
	}
	if h.ScaleUpPercent == 0 {
		h.ScaleUpPercent = 100
	}
	if h.ScaleUpPods == 0 {
		h.ScaleUpPods = 4
	}
	if h.ScaleDownPercent == 0 {
		h.ScaleDownPercent = 20
	}
	if h.Min == 0 {
		h.Min = 1
	}
	if h.Max < h.Min {
		h.Max = h.Min
	}
	return h
}

// Traffic is the offered request rate at a time since the start.
type Traffic func(t time.Duration) float64

// BlackFriday is a 24-hour traffic curve around a sale that opens at 06:00
// (t = 6h): a night at 30% of base rising to base, a flash crowd that
// reaches peak within 5 minutes, holds 30 minutes and decays with a
// two-hour half-life towards 1.5x base, an evening wave at 60% of peak
// (18:00-21:00), then back to base.
func BlackFriday(base, peak float64) Traffic {
	return func(t time.Duration) float64 {
		h := t.Hours()
		var r float64
		switch {
		case h < 6:
			r = base * (0.3 + 0.7*h/6)
		case h < 6+5.0/60:
			r = base + (peak-base)*(h-6)/(5.0/60)
		case h < 6.5+5.0/60:
			r = peak
		default:
			floor := 1.5 * base
			r = floor + (peak-floor)*math.Pow(0.5, (h-6.5-5.0/60)/2)
		}
		if h >= 18 && h < 21 {
			wave := 0.6 * peak * 0.5 * (1 - math.Cos(2*math.Pi*(h-18)/3))
			r = max(r, wave)
		}
		if h >= 21 {
			r = max(base, r*(1-(h-21)/3*0.3))
		}
		return r
	}
}

// Tick is the state at one HPA sync.
type Tick struct {
	At       time.Duration
	Rate     float64 // offered requests per second
	Replicas int     // pods asked for
	Ready    int     // pods serving
	PerPod   float64
	P95, P99 time.Duration
	Within   bool // p99 within the SLO
}

// Result is a simulation's outcome.
type Result struct {
	Ticks          []Tick
	OverSLO        time.Duration // time with p99 above the SLO
	RequestsOver   float64       // requests served while over the SLO
	Requests       float64
	PeakReplicas   int
	PodHours       float64
	StaticReplicas int     // a fixed fleet sized for the peak at the same headroom
	StaticPodHours float64 // its cost over the same time
}

// Simulate runs the HPA h over the traffic for length, with the per-pod
// latency read off the one-instance curve c, and judges each sync against
// slo. staticPerPod sizes the fixed fleet it is compared with.
func Simulate(c Curve, slo SLO, h HPA, tr Traffic, length time.Duration, staticPerPod float64) Result {
	h = h.withDefaults()
	// CPU utilization is modelled as the share of a pod's SLO capacity in
	// use (the instance is CPU-bound, and busy at that rate).
	capAtSLO, ok := c.CapacityAt(slo)
	if !ok {
		capAtSLO = c.Saturation()
	}
	type pod struct{ start time.Duration }
	var pods []pod
	for range h.Min {
		pods = append(pods, pod{start: -h.PodStartup})
	}
	ready := func(now time.Duration) int {
		n := 0
		for _, p := range pods {
			if now-p.start >= h.PodStartup {
				n++
			}
		}
		return n
	}
	perPod := func(now time.Duration) float64 {
		n := ready(now)
		if n == 0 {
			return math.Inf(1)
		}
		return tr(now) / float64(n)
	}
	type rec struct {
		at       time.Duration
		replicas int
		desired  int
		perPod   float64
	}
	var hist []rec
	var res Result
	for now := time.Duration(0); now <= length; now += h.Sync {
		cur := len(pods)
		// The metrics the HPA reads describe the load MetricLag ago.
		lagged := perPod(max(0, now-h.MetricLag))
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].at <= now-h.MetricLag {
				lagged = hist[i].perPod
				break
			}
		}
		n := ready(now)
		desired := cur
		want := func(ratio float64) int {
			if math.Abs(ratio-1) <= h.Tolerance {
				return cur
			}
			return int(math.Ceil(float64(max(n, 1)) * ratio))
		}
		var recs []int
		if h.TargetP95 > 0 {
			recs = append(recs, want(float64(c.P95At(lagged))/float64(h.TargetP95)))
		}
		if h.TargetCPU > 0 {
			util := 100 * min(1, lagged/capAtSLO)
			recs = append(recs, want(util/float64(h.TargetCPU)))
		}
		if len(recs) > 0 {
			desired = recs[0]
			for _, r := range recs[1:] {
				desired = max(desired, r)
			}
		}
		desired = max(h.Min, min(h.Max, desired))
		hist = append(hist, rec{at: now, replicas: cur, desired: desired, perPod: perPod(now)})
		// Scale-down stabilization: the highest recommendation of the window.
		stable := desired
		for _, r := range hist {
			if r.at > now-h.ScaleDownWindow {
				stable = max(stable, r.desired)
			}
		}
		// Rate limits against the replica count one period ago.
		past := func(d time.Duration) int {
			for i := len(hist) - 1; i >= 0; i-- {
				if hist[i].at <= now-d {
					return hist[i].replicas
				}
			}
			return hist[0].replicas
		}
		next := cur
		switch {
		case desired > cur:
			base := past(h.ScaleUpPeriod)
			limit := max(base+base*h.ScaleUpPercent/100, base+h.ScaleUpPods)
			next = min(desired, max(cur, limit))
		case stable < cur:
			base := past(h.ScaleDownPeriod)
			limit := base - int(math.Ceil(float64(base)*float64(h.ScaleDownPercent)/100))
			next = max(stable, min(cur, limit))
		}
		for len(pods) < next {
			pods = append(pods, pod{start: now})
		}
		if len(pods) > next {
			pods = pods[:next] // the newest (perhaps unready) go first
		}

		pp := perPod(now)
		t := Tick{At: now, Rate: tr(now), Replicas: len(pods), Ready: ready(now), PerPod: pp,
			P95: c.P95At(pp), P99: c.P99At(pp)}
		t.Within = t.P99 <= slo.P99
		res.Ticks = append(res.Ticks, t)
		dt := h.Sync.Seconds()
		res.Requests += t.Rate * dt
		if !t.Within {
			res.OverSLO += h.Sync
			res.RequestsOver += t.Rate * dt
		}
		res.PeakReplicas = max(res.PeakReplicas, len(pods))
		res.PodHours += float64(len(pods)) * dt / 3600
	}
	peak := 0.0
	for _, t := range res.Ticks {
		peak = max(peak, t.Rate)
	}
	if staticPerPod > 0 {
		res.StaticReplicas = max(h.Min, int(math.Ceil(peak/staticPerPod)))
		res.StaticPodHours = float64(res.StaticReplicas) * length.Hours()
	}
	return res
}

// P99At interpolates the p99 latency at an offered rate per instance, as
// P95At does the p95.
func (c Curve) P99At(rate float64) time.Duration {
	p := make(Curve, len(c))
	for i, pt := range c {
		pt.P95 = pt.P99
		p[i] = pt
	}
	return p.P95At(rate)
}

// WriteTimeline writes the ticks every step (rounded to the sync period).
func WriteTimeline(w io.Writer, r Result, step time.Duration) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "time\trate/s\treplicas\tready\tper pod/s\tp95\tp99\tSLO\t")
	var next time.Duration
	for i, t := range r.Ticks {
		// Every step, plus every tick where the SLO is missed or recovered.
		changed := i > 0 && r.Ticks[i-1].Within != t.Within
		if t.At < next && !changed {
			continue
		}
		if t.At >= next {
			next = t.At + step
		}
		ok := "ok"
		if !t.Within {
			ok = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n", clock(t.At), t.Rate, t.Replicas, t.Ready, t.PerPod, lat(t.P95), lat(t.P99), ok)
	}
	tw.Flush()
	return ew.err
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

func lat(d time.Duration) string {
	if d >= Overload {
		return "overload"
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

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
