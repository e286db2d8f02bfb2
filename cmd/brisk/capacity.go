package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/briskhq/brisk/internal/capacity"
)

// runCapacity is `brisk capacity`: the capacity plan from measured steps.
func runCapacity(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("capacity", "Turns load reports of a stepped test (bench/capacity.sh writes them as\n"+
		"nN-rRATE.json: N instances behind NGINX, RATE requests/s offered) into a capacity\n"+
		"plan: each fleet size's capacity at the SLO, the replicas target rates need, the\n"+
		"HPA targets that follow, and a simulation of the HPA over a Black Friday.", stderr)
	dir := fs.String("dir", "bench/results/capacity", "directory of the nN-rRATE.json load reports")
	sloP99 := fs.Duration("slo-p99", 100*time.Millisecond, "latency objective: p99 of all requests")
	sloErr := fs.Float64("slo-errors", 0.001, "largest error fraction within the SLO")
	headroom := fs.Float64("headroom", 0.7, "share of an instance's capacity used in steady state")
	zones := fs.Int("zones", 3, "zones the pods spread over (the plan survives losing one)")
	rates := fs.String("rates", "1000,5000,20000,50000", "target rates to size for (requests/s, comma-separated)")
	base := fs.Float64("base", 2000, "Black Friday simulation: normal daytime rate (requests/s)")
	peak := fs.Float64("peak", 20000, "Black Friday simulation: peak rate when the sale opens")
	minR := fs.Int("min-replicas", 3, "HPA minReplicas")
	maxR := fs.Int("max-replicas", 60, "HPA maxReplicas")
	startup := fs.Duration("pod-startup", 40*time.Second, "time from an HPA decision to a new pod serving")
	lag := fs.Duration("metric-lag", time.Minute, "age of the metrics the HPA reads")
	step := fs.Duration("timeline-step", time.Hour, "interval of the simulation timeline's rows")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	var targets []float64
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return usageError("capacity: --rates %q: want positive numbers", *rates)
		}
		targets = append(targets, r)
	}
	curves, err := readCurves(*dir)
	if err != nil {
		return err
	}
	slo := capacity.SLO{P99: *sloP99, ErrorRate: *sloErr}
	one, ok := curves[1]
	if !ok {
		return fmt.Errorf("capacity: no n1-*.json reports in %s", *dir)
	}

	fmt.Fprintf(stdout, "SLO: p99 <= %s, errors <= %.2f%%, and the offered rate achieved\n\n", slo.P99, slo.ErrorRate*100)
	fmt.Fprintln(stdout, "latency vs load (all requests, behind NGINX):")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "instances\toffered/s\tachieved/s\terrors\tp50\tp95\tp99\tSLO\t")
	ns := make([]int, 0, len(curves))
	for n := range curves {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	for _, n := range ns {
		for _, p := range curves[n].Sorted() {
			ok := "ok"
			if !slo.Meets(p) {
				ok = "missed"
			}
			fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f%%\t%s\t%s\t%s\t%s\t\n", n, p.Offered, p.Achieved, p.ErrorRate*100,
				fmtMS(p.P50), fmtMS(p.P95), fmtMS(p.P99), ok)
		}
	}
	tw.Flush()

	fmt.Fprintln(stdout, "\nthroughput by fleet size:")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "instances\tat SLO/s\tflat out/s\tper instance at SLO/s\t")
	for _, n := range ns {
		c, _ := curves[n].CapacityAt(slo)
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t\n", n, c, curves[n].Saturation(), c/float64(n))
	}
	tw.Flush()

	plan, err := capacity.NewPlan(one, capacity.Config{SLO: slo, Headroom: *headroom, Zones: *zones, Rates: targets})
	if err != nil {
		return exitError{code: 1, err: err}
	}
	fmt.Fprintf(stdout, "\none instance: %.0f/s within the SLO, %.0f/s flat out\n", plan.PerInstance, plan.Saturation)
	fmt.Fprintf(stdout, "operating point (headroom %.0f%%): %.0f/s per pod; p95 at light load %s, at capacity %s\n",
		plan.Headroom*100, plan.TargetRPS, fmtMS(plan.LightLoadP95), fmtMS(one.P95At(plan.PerInstance)))
	fmt.Fprintln(stdout, "\nreplicas for a target rate:")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "rate/s\tat SLO\twith headroom\tsurvives a zone (of %d)\tdeploy\t\n", *zones)
	for _, r := range plan.Replicas {
		fmt.Fprintf(tw, "%.0f\t%d\t%d\t%d\t%d\t\n", r.Rate, r.AtSLO, r.WithHeadroom, r.ZoneTolerant,
			max(r.WithHeadroom, r.ZoneTolerant, int(plan.MinReplicas)))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nHPA targets (deploy/k8s/base/api-hpa.yaml):\n  p95 (Pods metric brisk_http_request_duration_seconds_p95): averageValue %dm\n"+
		"  CPU utilization: %d%% (the headroom: a pod at its SLO capacity counts as busy)\n  minReplicas %d\n",
		max(1, plan.TargetP95.Milliseconds()), plan.TargetCPU, max(int(plan.MinReplicas), *minR))

	h := capacity.HPA{Min: max(int(plan.MinReplicas), *minR), Max: *maxR, TargetP95: plan.TargetP95, TargetCPU: int(plan.TargetCPU),
		PodStartup: *startup, MetricLag: *lag}
	res := capacity.Simulate(one, slo, h, capacity.BlackFriday(*base, *peak), 24*time.Hour, plan.TargetRPS)
	fmt.Fprintf(stdout, "\nHPA simulation, Black Friday (base %.0f/s, sale opens 06:00 at %.0f/s), pod start-up %s, metric lag %s:\n",
		*base, *peak, *startup, *lag)
	if err := capacity.WriteTimeline(stdout, res, *step); err != nil {
		return err
	}
	share := 0.0
	if res.Requests > 0 {
		share = res.RequestsOver / res.Requests * 100
	}
	fmt.Fprintf(stdout, "\nover the SLO for %s (%.2f%% of the day's requests); peak %d replicas; %.0f pod-hours vs %.0f for a fixed fleet of %d sized for the peak\n",
		res.OverSLO, share, res.PeakReplicas, res.PodHours, res.StaticPodHours, res.StaticReplicas)
	return nil
}

var reportName = regexp.MustCompile(`^n(\d+)-r(\d+)\.json$`)

// readCurves reads every nN-rRATE.json report in dir, by instance count.
func readCurves(dir string) (map[int]capacity.Curve, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, usageError("capacity: %v", err)
	}
	curves := map[int]capacity.Curve{}
	for _, e := range entries {
		m := reportName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		r, err := readReport(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("capacity: %s: %w", e.Name(), err)
		}
		curves[n] = append(curves[n], capacity.PointFromReport(n, r))
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("capacity: no nN-rRATE.json reports in %s (run bench/capacity.sh)", dir)
	}
	return curves, nil
}

func fmtMS(d time.Duration) string {
	if d >= capacity.Overload {
		return "overload"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}
