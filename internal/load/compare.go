package load

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// Regression thresholds used by Compare.
const (
	// A latency percentile regressed when it is worse by more than
	// LatencyTolerance (relative) and by more than LatencySlack.
	LatencyTolerance = 0.10
	LatencySlack     = time.Millisecond
	// The error rate regressed when it rose by more than ErrorSlack
	// percentage points.
	ErrorSlack = 0.1
)

// Diff is one metric of one endpoint in two reports.
type Diff struct {
	Endpoint string
	Metric   string  // "p50", "p90", "p99", "p99.9", "max", "errors" or "rate"
	Old, New float64 // latency in nanoseconds, errors in percent, rate in requests/s
	// Regression is set when New is worse than Old beyond the thresholds.
	// Max and rate are shown but never judged: max is one sample, and the
	// rate follows the configured profile.
	Regression bool
}

var compareMetrics = []string{"p50", "p90", "p99", "p99.9", "max", "errors", "rate"}

// Compare sets the endpoints both reports have (and the totals) side by
// side, flagging regressions from old to new.
func Compare(old, new *Report) []Diff {
	var diffs []Diff
	names := []string{}
	for _, e := range new.Endpoints {
		if old.Endpoint(e.Name) != nil {
			names = append(names, e.Name)
		}
	}
	names = append(names, AllEndpoints)
	for _, name := range names {
		o, n := old.Endpoint(name), new.Endpoint(name)
		for _, m := range compareMetrics {
			d := Diff{Endpoint: name, Metric: m}
			switch m {
			case "errors":
				d.Old, d.New = o.ErrorRate*100, n.ErrorRate*100
				d.Regression = d.New-d.Old > ErrorSlack
			case "rate":
				d.Old, d.New = o.Rate, n.Rate
			default:
				ov, ok1 := o.latencyMetric(m)
				nv, ok2 := n.latencyMetric(m)
				if !ok1 || !ok2 {
					continue
				}
				d.Old, d.New = float64(ov), float64(nv)
				d.Regression = m != "max" && nv-ov > LatencySlack && float64(nv) > float64(ov)*(1+LatencyTolerance)
			}
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// Regressions counts the regressions in diffs.
func Regressions(diffs []Diff) int {
	n := 0
	for _, d := range diffs {
		if d.Regression {
			n++
		}
	}
	return n
}

// WriteComparison writes diffs as a table with the relative change of
// each metric and the regressions marked.
func WriteComparison(w io.Writer, diffs []Diff) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "endpoint\tmetric\told\tnew\tchange\t")
	for _, d := range diffs {
		var o, n string
		switch d.Metric {
		case "errors":
			o, n = strconv.FormatFloat(d.Old, 'f', 3, 64)+"%", strconv.FormatFloat(d.New, 'f', 3, 64)+"%"
		case "rate":
			o, n = strconv.FormatFloat(d.Old, 'f', 1, 64), strconv.FormatFloat(d.New, 'f', 1, 64)
		default:
			o, n = ms(time.Duration(d.Old)), ms(time.Duration(d.New))
		}
		change := "="
		switch {
		case d.Old == d.New:
		case d.Old == 0:
			change = "new"
		default:
			change = strconv.FormatFloat((d.New-d.Old)/d.Old*100, 'f', 1, 64) + "%"
			if d.New > d.Old {
				change = "+" + change
			}
		}
		flag := ""
		if d.Regression {
			flag = "REGRESSION"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Endpoint, d.Metric, o, n, change, flag)
	}
	tw.Flush()
	if n := Regressions(diffs); n > 0 {
		fmt.Fprintf(ew, "%d regression(s)\n", n)
	} else {
		fmt.Fprintln(ew, "no regressions")
	}
	return ew.err
}
