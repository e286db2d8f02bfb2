package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of a run. Its JSON form (WriteJSON, ReadReport)
// keeps each endpoint's full HDR histogram, so any percentile can be
// checked or compared later.
type Report struct {
	Target     string    `json:"target"`
	Scenario   string    `json:"scenario"`
	Arrival    Arrival   `json:"arrival"`
	Profile    string    `json:"profile"` // rate stages, as ParseRamp reads them
	RunID      string    `json:"run_id"`
	Start      time.Time `json:"start"`
	TargetRate float64   `json:"target_rate"` // mean scheduled requests per second

	// Duration is the send phase: from the first scheduled send until the
	// last send left, at least the profile's length.
	Duration time.Duration `json:"duration_ns"`
	// Elapsed also counts waiting for the last responses.
	Elapsed time.Duration `json:"elapsed_ns"`

	Scheduled int64         `json:"scheduled"` // sends the schedule called for
	Sent      int64         `json:"sent"`      // sends handed to the network
	Dropped   int64         `json:"dropped"`   // not sent: in-flight bound reached (counted as errors)
	Late      int64         `json:"late"`      // sent more than LateAfter behind schedule
	LateAfter time.Duration `json:"late_after_ns"`
	Rate      float64       `json:"rate"` // achieved sends per second over Duration

	// SendLag is how far behind schedule sends left: a large lag means the
	// generator, not the server, was the bottleneck.
	SendLag Latency `json:"send_lag"`

	Users       int   `json:"users"`  // accounts registered before the run
	Orders      int64 `json:"orders"` // checkouts answered 201
	Interrupted bool  `json:"interrupted,omitempty"`

	Total     EndpointReport   `json:"total"`
	Endpoints []EndpointReport `json:"endpoints"`
}

// EndpointReport is the summary of one endpoint (or of all of them).
type EndpointReport struct {
	Name      string  `json:"name"`
	Requests  int64   `json:"requests"`   // answered, failed and dropped
	Errors    int64   `json:"errors"`     // status >= 400, transport errors, drops
	ErrorRate float64 `json:"error_rate"` // Errors / Requests
	Rate      float64 `json:"rate"`       // requests sent (drops excluded) per second of send phase
	// Statuses counts outcomes: HTTP statuses ("200", "409") and failures
	// without one ("timeout", "conn_refused", "dropped", ...).
	Statuses map[string]int64 `json:"statuses"`
	// Latency is measured from each request's scheduled send time.
	Latency Latency `json:"latency"`
	// Histogram is the HDR histogram of latencies in microseconds, V2
	// compressed and base64 encoded.
	Histogram string `json:"histogram,omitempty"`

	hist *hdrhistogram.Histogram
}

// Latency summarizes a latency distribution.
type Latency struct {
	Min  time.Duration `json:"min_ns"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p99_9_ns"`
	Max  time.Duration `json:"max_ns"`
}

func us(v int64) time.Duration { return time.Duration(v) * time.Microsecond }

func summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Min:  us(h.Min()),
		Mean: time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P99:  us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)),
		Max:  us(h.Max()),
	}
}

// finish fills the derived fields from the counters and the histogram.
func (e *EndpointReport) finish(phase time.Duration) {
	if e.Requests > 0 {
		e.ErrorRate = float64(e.Errors) / float64(e.Requests)
	}
	if phase > 0 {
		e.Rate = float64(e.Requests-e.Statuses[outcomeDropped]) / phase.Seconds()
	}
	e.Latency = summarize(e.hist)
}

// latencyMetric returns a latency metric ("p99", "p99.9", "max", "mean").
func (e *EndpointReport) latencyMetric(metric string) (time.Duration, bool) {
	if e.hist != nil {
		if e.hist.TotalCount() == 0 {
			return 0, false
		}
		switch metric {
		case "max":
			return us(e.hist.Max()), true
		case "mean":
			return time.Duration(e.hist.Mean() * float64(time.Microsecond)), true
		}
		q, err := strconv.ParseFloat(strings.TrimPrefix(metric, "p"), 64)
		if err != nil {
			return 0, false
		}
		return us(e.hist.ValueAtQuantile(q)), true
	}
	if e.Requests == 0 {
		return 0, false
	}
	switch metric {
	case "max":
		return e.Latency.Max, true
	case "mean":
		return e.Latency.Mean, true
	case "p50":
		return e.Latency.P50, true
	case "p90":
		return e.Latency.P90, true
	case "p99":
		return e.Latency.P99, true
	case "p99.9":
		return e.Latency.P999, true
	}
	return 0, false
}

// Percentile returns the latency at quantile q (0 < q <= 100), or 0 when
// the endpoint has no latency data.
func (e *EndpointReport) Percentile(q float64) time.Duration {
	if e.hist == nil {
		return 0
	}
	return us(e.hist.ValueAtQuantile(q))
}

// Endpoint returns the named endpoint's summary (AllEndpoints or "*" for
// the total), or nil when the run had no such endpoint.
func (r *Report) Endpoint(name string) *EndpointReport {
	if name == AllEndpoints || name == "*" {
		return &r.Total
	}
	for i := range r.Endpoints {
		if r.Endpoints[i].Name == name {
			return &r.Endpoints[i]
		}
	}
	return nil
}

// WriteJSON writes r as indented JSON, histograms included.
func WriteJSON(w io.Writer, r *Report) error {
	c := *r
	c.Endpoints = slices.Clone(r.Endpoints)
	all := []*EndpointReport{&c.Total}
	for i := range c.Endpoints {
		all = append(all, &c.Endpoints[i])
	}
	for _, e := range all {
		if e.hist == nil {
			continue
		}
		b, err := e.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			return fmt.Errorf("encode %s histogram: %w", e.Name, err)
		}
		e.Histogram = string(b)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	all := []*EndpointReport{&r.Total}
	for i := range r.Endpoints {
		all = append(all, &r.Endpoints[i])
	}
	for _, e := range all {
		if e.Histogram == "" {
			continue
		}
		h, err := hdrhistogram.Decode([]byte(e.Histogram))
		if err != nil {
			return nil, fmt.Errorf("read report: %s histogram: %w", e.Name, err)
		}
		e.hist = h
	}
	return &r, nil
}

// ms formats a latency with a precision that suits its size.
func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + "ms"
	case d < 100*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + "ms"
	}
	return d.Round(100 * time.Millisecond).String()
}

func pct(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 2, 64) + "%"
}

// WriteTable writes r as a human-readable table: the run, then per-endpoint
// rate, errors and latency percentiles, then outcomes by status.
func WriteTable(w io.Writer, r *Report) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, "brisk load: %s scenario against %s, %s arrivals, %s (%.0f/s mean) run %s\n",
		r.Scenario, r.Target, r.Arrival, r.Profile, r.TargetRate, r.RunID)
	fmt.Fprintf(bw, "sent %d of %d scheduled in %s: %.1f/s achieved; late %d (>%s behind), dropped %d; send lag p99 %s max %s",
		r.Sent, r.Scheduled, r.Duration.Round(time.Millisecond), r.Rate, r.Late, r.LateAfter, r.Dropped, ms(r.SendLag.P99), ms(r.SendLag.Max))
	if r.Orders > 0 || r.Scenario == "checkout" || r.Scenario == "shop" {
		fmt.Fprintf(bw, "; orders %d", r.Orders)
	}
	if r.Interrupted {
		fmt.Fprintf(bw, "; INTERRUPTED")
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := append(slices.Clone(r.Endpoints), r.Total)
	width := len("endpoint")
	for _, e := range rows {
		width = max(width, len(e.Name))
	}
	// Names padded to one width stay left-aligned in a right-aligned table.
	fmt.Fprintf(tw, "%-*s\trequests\trate/s\terrors\tp50\tp90\tp99\tp99.9\tmax\t\n", width, "endpoint")
	for _, e := range rows {
		l := e.Latency
		fmt.Fprintf(tw, "%-*s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			width, e.Name, e.Requests, e.Rate, pct(e.ErrorRate), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
	}
	tw.Flush()
	fmt.Fprintln(bw)
	for _, e := range rows {
		if e.Name == AllEndpoints {
			continue
		}
		fmt.Fprintf(bw, "%s statuses: %s\n", e.Name, formatStatuses(e.Statuses))
	}
	return bw.err
}

func formatStatuses(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, " ")
}

// WriteBudget writes a table of budget results: each condition, the
// measured value and whether it held.
func WriteBudget(w io.Writer, results []BudgetResult) error {
	bw := &errWriter{w: w}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "budget\tactual\tresult")
	for _, r := range results {
		actual := r.Note
		if actual == "" {
			switch {
			case r.isLatency():
				actual = ms(time.Duration(r.Actual))
			case r.Metric == "errors":
				actual = strconv.FormatFloat(r.Actual, 'f', 3, 64) + "%"
			default:
				actual = strconv.FormatFloat(r.Actual, 'f', 1, 64) + "/s"
			}
		}
		result := "held"
		if !r.Held {
			result = "BROKEN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Condition, actual, result)
	}
	tw.Flush()
	return bw.err
}

// errWriter keeps the first write error so table code can ignore them.
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
