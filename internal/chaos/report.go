package chaos

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes one row per experiment: the steady state before,
// during and after the faults (p99, error share, rate), the time to
// recover, the invariants and the verdict; then, per experiment that
// failed, why.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tBEFORE p99/err/rate\tDURING p99/err/rate\tAFTER p99/err/rate\tRECOVERY\tACKED\tINVARIANTS\tHYPOTHESIS")
	for _, r := range results {
		cells := []string{r.Experiment.Name}
		for _, name := range []string{PhaseBefore, PhaseDuring, PhaseAfter} {
			cells = append(cells, phaseCell(r, name))
		}
		rec := "-"
		switch {
		case r.Recovered:
			rec = r.Recovery.Round(10 * time.Millisecond).String()
		case len(r.Phases) == 3:
			rec = "never"
		}
		inv := "-"
		switch {
		case len(r.Violations) > 0:
			inv = fmt.Sprintf("FAIL (%d)", len(r.Violations))
		case r.Err == nil && len(r.Phases) == 3:
			inv = "pass"
		}
		verdict := "holds"
		if !r.Holds {
			verdict = "REJECTED"
		}
		cells = append(cells, rec, fmt.Sprint(r.Acknowledged), inv, verdict)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.Holds {
			continue
		}
		fmt.Fprintf(w, "\n%s: hypothesis rejected: %s\n", r.Experiment.Name, r.Experiment.Hypothesis)
		for _, why := range r.Reasons {
			fmt.Fprintf(w, "  - %s\n", why)
		}
		for i, v := range r.Violations {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more violations\n", len(r.Violations)-i)
				break
			}
			fmt.Fprintf(w, "  ! %s\n", v)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

func phaseCell(r Result, name string) string {
	for _, p := range r.Phases {
		if p.Name != name {
			continue
		}
		mark := ""
		if !p.Held {
			mark = " ✗"
		}
		return fmt.Sprintf("%s/%.1f%%/%.0f%s", fmtDur(p.P99), p.ErrorRate*100, p.Rate, mark)
	}
	return "-"
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
}

// WriteList writes the experiments: name, faults, hypothesis.
func WriteList(w io.Writer, es []Experiment) error {
	for _, e := range es {
		var fs []string
		for _, f := range e.Faults {
			fs = append(fs, f.String())
		}
		total := e.Phases.Before.D() + e.Phases.During.D() + e.Phases.After.D()
		fmt.Fprintf(w, "%s  (%s, %d instances, %g req/s %s, %v)\n  faults: %s\n  steady state: %s\n",
			e.Name, e.File, e.Instances, e.Load.Rate, e.Load.Scenario, total, strings.Join(fs, "; "), e.SteadyState)
		if e.DuringFault != "" {
			fmt.Fprintf(w, "  during the fault: %s\n", e.DuringFault)
		}
		if _, err := fmt.Fprintf(w, "  hypothesis: %s\n\n", e.Hypothesis); err != nil {
			return err
		}
	}
	return nil
}
