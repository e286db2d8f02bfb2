package capacity

import (
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// curve is a synthetic one-instance curve: flat latency up to 800/s,
// rising near saturation at 1000/s.
var curve = Curve{
	{Instances: 1, Offered: 200, Achieved: 200, P50: 2 * ms, P95: 5 * ms, P99: 9 * ms},
	{Instances: 1, Offered: 400, Achieved: 400, P50: 2 * ms, P95: 6 * ms, P99: 11 * ms},
	{Instances: 1, Offered: 600, Achieved: 600, P50: 3 * ms, P95: 8 * ms, P99: 20 * ms},
	{Instances: 1, Offered: 800, Achieved: 795, P50: 6 * ms, P95: 30 * ms, P99: 80 * ms},
	{Instances: 1, Offered: 1000, Achieved: 900, P50: 200 * ms, P95: 900 * ms, P99: 2000 * ms, ErrorRate: 0.02},
}

var slo = SLO{P99: 100 * ms, ErrorRate: 0.001}

func TestCapacityAt(t *testing.T) {
	tests := []struct {
		name string
		c    Curve
		want float64
		ok   bool
	}{
		{"measured curve", curve, 800, true},
		{"unsorted", Curve{curve[3], curve[0], curve[4], curve[1]}, 800, true},
		{"one dip is noise", Curve{curve[0], {Offered: 300, Achieved: 300, P99: 500 * ms}, curve[2]}, 600, true},
		{"two dips end the range", Curve{curve[0], {Offered: 300, Achieved: 300, P99: 500 * ms}, {Offered: 350, Achieved: 350, P99: 500 * ms}, curve[2]}, 200, true},
		{"falls behind the offered rate", Curve{curve[0], {Offered: 400, Achieved: 300, P99: 10 * ms}}, 200, true},
		{"Poisson shortfall is not falling behind", Curve{curve[0], {Offered: 400, Achieved: 380, P99: 10 * ms}}, 400, true},
		{"nothing meets it", Curve{curve[4]}, 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.c.CapacityAt(slo)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: CapacityAt = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestP95At(t *testing.T) {
	tests := []struct {
		rate float64
		want time.Duration
	}{
		{100, 5 * ms},
		{300, 5500 * time.Microsecond},
		{800, 30 * ms},
		{950, 6825 * ms / 10}, // between the last two steps: 30ms + 0.75 * 870ms
		{5000, Overload},
	}
	for _, tt := range tests {
		if got := curve.P95At(tt.rate); got != tt.want {
			t.Errorf("P95At(%v) = %v, want %v", tt.rate, got, tt.want)
		}
	}
	// Beyond the last step but below saturation: grows, stays finite.
	c := curve[:4]
	if a, b := c.P95At(796), c.P95At(790); !(a > b && a < Overload) {
		t.Errorf("P95At past the curve: %v then %v, want growing and finite", b, a)
	}
}

func TestNewPlan(t *testing.T) {
	p, err := NewPlan(curve, Config{SLO: slo, Headroom: 0.7, Zones: 3, Rates: []float64{1000, 20000}})
	if err != nil {
		t.Fatal(err)
	}
	if p.PerInstance != 800 || p.TargetRPS != 560 || p.Saturation != 900 {
		t.Errorf("plan: per instance %v, target %v/s, saturation %v; want 800, 560, 900", p.PerInstance, p.TargetRPS, p.Saturation)
	}
	if p.TargetCPU != 70 {
		t.Errorf("TargetCPU = %d, want 70 (the headroom)", p.TargetCPU)
	}
	if p.TargetP95 != 30*ms { // p95 at 800/s; twice the light-load 5ms is less
		t.Errorf("TargetP95 = %v, want 30ms (the p95 at capacity)", p.TargetP95)
	}
	flat := Curve{{Offered: 100, Achieved: 100, P95: 10 * ms, P99: 20 * ms}, {Offered: 200, Achieved: 200, P95: 11 * ms, P99: 22 * ms}}
	if p, _ := NewPlan(flat, Config{SLO: slo}); p.TargetP95 != 20*ms {
		t.Errorf("flat curve: TargetP95 = %v, want twice the light-load p95 (20ms)", p.TargetP95)
	}
	want := []Replicas{
		{Rate: 1000, AtSLO: 2, WithHeadroom: 2, ZoneTolerant: 3, Zones: 3},
		{Rate: 20000, AtSLO: 25, WithHeadroom: 36, ZoneTolerant: 38, Zones: 3},
	}
	for i, w := range want {
		g := p.Replicas[i]
		if g.AtSLO != w.AtSLO || g.WithHeadroom != w.WithHeadroom || g.ZoneTolerant != w.ZoneTolerant {
			t.Errorf("Replicas(%v) = %+v, want %+v", w.Rate, g, w)
		}
	}
	if _, err := NewPlan(Curve{curve[4]}, Config{SLO: slo}); err == nil {
		t.Errorf("NewPlan of a curve that never met the SLO succeeded")
	}
}

var hpa = HPA{Min: 3, Max: 60, TargetP95: 30 * ms, TargetCPU: 70}

func TestSimulateSteady(t *testing.T) {
	r := Simulate(curve, slo, hpa, func(time.Duration) float64 { return 1000 }, time.Hour, 560)
	if r.OverSLO != 0 {
		t.Errorf("steady load within capacity: %v over the SLO", r.OverSLO)
	}
	last := r.Ticks[len(r.Ticks)-1]
	if last.Replicas < 2 || last.Replicas > 4 {
		t.Errorf("steady 1000/s settles on %d replicas, want 2-4 (560/s each)", last.Replicas)
	}
}

func TestSimulateSpike(t *testing.T) {
	// 1000/s, then 10x in one step at 10 minutes.
	tr := func(at time.Duration) float64 {
		if at < 10*time.Minute {
			return 1000
		}
		return 10000
	}
	r := Simulate(curve, slo, hpa, tr, time.Hour, 560)
	if r.OverSLO == 0 || r.OverSLO > 5*time.Minute {
		t.Errorf("a 10x spike is over the SLO for %v, want a few minutes at most (start-up and metric lag)", r.OverSLO)
	}
	last := r.Ticks[len(r.Ticks)-1]
	if !last.Within || last.Replicas < 13 {
		t.Errorf("after the spike: %+v, want within the SLO on >= 13 replicas", last)
	}
	for _, tk := range r.Ticks {
		if tk.Replicas > hpa.Max {
			t.Fatalf("%d replicas, above max %d", tk.Replicas, hpa.Max)
		}
	}
}

func TestSimulateScaleDownStabilization(t *testing.T) {
	// 10000/s for 20 minutes, then 1000/s: no pod goes within the 5-minute
	// window, then at most 20% a minute.
	tr := func(at time.Duration) float64 {
		if at < 20*time.Minute {
			return 10000
		}
		return 1000
	}
	r := Simulate(curve, slo, hpa, tr, time.Hour, 560)
	at := func(d time.Duration) int {
		for _, tk := range r.Ticks {
			if tk.At >= d {
				return tk.Replicas
			}
		}
		return -1
	}
	// The recommendation for 10000/s is ~18 pods; for 1000/s, 3 (min).
	if n := at(24*time.Minute + 30*time.Second); n < 15 {
		t.Errorf("4.5 minutes after the drop: %d replicas, want the pre-drop level held (>= 15)", n)
	}
	if n := at(50 * time.Minute); n > 4 {
		t.Errorf("30 minutes after the drop: %d replicas, want scaled down (<= 4)", n)
	}
	for m := 20 * time.Minute; m < time.Hour; m += time.Minute {
		if a, b := at(m), at(m+time.Minute); b < a-a/5-1 {
			t.Errorf("%v -> %v: %d -> %d replicas, more than 20%% in a minute", m, m+time.Minute, a, b)
		}
	}
	// Flapping: traffic that swings every 2 minutes moves the replica count
	// far less often with the window than without.
	swing := func(at time.Duration) float64 {
		if int(at/(2*time.Minute))%2 == 0 {
			return 6000
		}
		return 3000
	}
	changes := func(h HPA) int {
		n := 0
		ticks := Simulate(curve, slo, h, swing, 2*time.Hour, 560).Ticks
		for i := 1; i < len(ticks); i++ {
			if ticks[i].Replicas != ticks[i-1].Replicas {
				n++
			}
		}
		return n
	}
	noWindow := hpa
	noWindow.ScaleDownWindow = time.Nanosecond
	with, without := changes(hpa), changes(noWindow)
	if with*3 > without {
		t.Errorf("replica changes under swinging traffic: %d with the window, %d without; want far fewer with it", with, without)
	}
}

func TestBlackFriday(t *testing.T) {
	tr := BlackFriday(2000, 20000)
	tests := []struct {
		at   time.Duration
		want float64
	}{
		{0, 600},
		{6 * time.Hour, 2000},
		{6*time.Hour + 10*time.Minute, 20000},
		{12 * time.Hour, 3000 + 17000*0.13}, // ~3 half-lives after the peak
	}
	for _, tt := range tests {
		if got := tr(tt.at); got < tt.want*0.9 || got > tt.want*1.1 {
			t.Errorf("BlackFriday(%v) = %.0f, want about %.0f", tt.at, got, tt.want)
		}
	}
	r := Simulate(curve, slo, hpa, tr, 24*time.Hour, 560)
	var sb strings.Builder
	if err := WriteTimeline(&sb, r, time.Hour); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\nover SLO %v, peak %d replicas, %.0f pod-hours vs static %d pods %.0f pod-hours",
		sb.String(), r.OverSLO, r.PeakReplicas, r.PodHours, r.StaticReplicas, r.StaticPodHours)
	if r.PodHours >= r.StaticPodHours {
		t.Errorf("autoscaling used %.0f pod-hours, a static peak fleet %.0f: want fewer", r.PodHours, r.StaticPodHours)
	}
	// After the sale the fleet shrinks back: latency on its flat part must
	// not pin the replica count at the peak's.
	if last := r.Ticks[len(r.Ticks)-1]; last.Replicas > 2*int(last.Rate/560)+hpa.Min {
		t.Errorf("at the end of the day %d replicas serve %.0f/s: not scaled down", last.Replicas, last.Rate)
	}
	if r.OverSLO > 10*time.Minute {
		t.Errorf("over the SLO for %v on Black Friday, want under 10 minutes", r.OverSLO)
	}
}
