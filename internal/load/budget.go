package load

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// AllEndpoints names the budget target that covers every request of a run.
// ParseBudget also accepts "*" for it.
const AllEndpoints = "all"

// maxLatencyLimit bounds latency limits so that they stay exact as float64.
const maxLatencyLimit = 24 * time.Hour

// Condition is one budget rule, such as "checkout:p99<200ms".
type Condition struct {
	// Endpoint is an endpoint name ("checkout") or AllEndpoints.
	Endpoint string
	// Metric is a latency percentile ("p50", "p99.9"), "max", "mean",
	// "errors" (share of failed requests) or "rate" (achieved requests/s).
	Metric string
	// Op is one of "<", "<=", ">", ">=".
	Op string
	// Limit is in the metric's unit: nanoseconds for latency, percent for
	// errors (0.1 means 0.1%), requests per second for rate.
	Limit float64
}

// Budget is a list of conditions; it holds when every condition holds.
type Budget []Condition

// BudgetResult says whether one condition held in a run.
type BudgetResult struct {
	Condition
	Actual float64 // measured value, in the condition's unit
	Held   bool
	Note   string // why the condition could not be judged, if it could not
}

// ParseBudget parses budgets such as
// "checkout:p99<200ms,errors<0.1%;product:p99<50ms;all:rate>=4900".
// Groups are separated by ";", each names an endpoint (or "all"/"*") and
// comma-separated conditions. Latency metrics take Go durations, errors take
// a percentage ("0.1%", or "0"), rate takes requests per second ("4900" or
// "4900/s"). The empty string is an empty budget.
func ParseBudget(s string) (Budget, error) {
	var b Budget
	for group := range strings.SplitSeq(s, ";") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		ep, conds, ok := strings.Cut(group, ":")
		if !ok {
			return nil, fmt.Errorf("parse budget %q: want endpoint:conditions", group)
		}
		ep = strings.TrimSpace(ep)
		if ep == "*" {
			ep = AllEndpoints
		}
		if !validEndpoint(ep) {
			return nil, fmt.Errorf("parse budget %q: bad endpoint name %q", group, ep)
		}
		for cs := range strings.SplitSeq(conds, ",") {
			c, err := parseCondition(ep, strings.TrimSpace(cs))
			if err != nil {
				return nil, fmt.Errorf("parse budget %q: %w", group, err)
			}
			b = append(b, c)
		}
	}
	return b, nil
}

func validEndpoint(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}

func parseCondition(ep, s string) (Condition, error) {
	i := strings.IndexAny(s, "<>")
	if i < 0 {
		return Condition{}, fmt.Errorf("condition %q: want metric<limit or metric>limit", s)
	}
	c := Condition{Endpoint: ep, Op: s[i : i+1]}
	rest := s[i+1:]
	if strings.HasPrefix(rest, "=") {
		c.Op += "="
		rest = rest[1:]
	}
	metric := strings.ToLower(strings.TrimSpace(s[:i]))
	value := strings.TrimSpace(rest)
	switch {
	case metric == "max" || metric == "mean":
		c.Metric = metric
	case metric == "errors" || metric == "rate":
		c.Metric = metric
	case strings.HasPrefix(metric, "p"):
		q, err := strconv.ParseFloat(metric[1:], 64)
		if err != nil || !(q > 0 && q <= 100) {
			return Condition{}, fmt.Errorf("condition %q: bad percentile %q", s, metric)
		}
		c.Metric = "p" + strconv.FormatFloat(q, 'g', -1, 64)
	default:
		return Condition{}, fmt.Errorf("condition %q: unknown metric %q (want pNN, max, mean, errors or rate)", s, metric)
	}
	var err error
	switch c.Metric {
	case "errors":
		c.Limit, err = parsePercent(value)
	case "rate":
		c.Limit, err = parseRate(strings.TrimSuffix(value, "/s"))
	default:
		var d time.Duration
		d, err = time.ParseDuration(value)
		if err == nil && (d < 0 || d > maxLatencyLimit) {
			err = fmt.Errorf("latency %q out of range [0, %v]", value, maxLatencyLimit)
		}
		c.Limit = float64(d)
	}
	if err != nil {
		return Condition{}, fmt.Errorf("condition %q: %w", s, err)
	}
	return c, nil
}

func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok && s != "0" {
		return 0, fmt.Errorf("error rate %q: want a percentage such as 0.1%%", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
		return 0, fmt.Errorf("error rate %q: want a percentage in [0%%, 100%%]", s)
	}
	return v, nil
}

// isLatency reports whether the condition's metric is a latency.
func (c Condition) isLatency() bool { return c.Metric != "errors" && c.Metric != "rate" }

// format prints v in the condition's unit.
func (c Condition) format(v float64) string {
	switch c.Metric {
	case "errors":
		return strconv.FormatFloat(v, 'g', -1, 64) + "%"
	case "rate":
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return time.Duration(v).String()
}

// String formats c as "endpoint:metric<op>limit".
func (c Condition) String() string { return c.Endpoint + ":" + c.rule() }

func (c Condition) rule() string { return c.Metric + c.Op + c.format(c.Limit) }

// String formats b so that ParseBudget reads it back.
func (b Budget) String() string {
	var sb strings.Builder
	for i, c := range b {
		switch {
		case i == 0:
		case b[i-1].Endpoint == c.Endpoint:
			sb.WriteString(",")
			sb.WriteString(c.rule())
			continue
		default:
			sb.WriteString(";")
		}
		sb.WriteString(c.String())
	}
	return sb.String()
}

// holds reports whether actual satisfies c.
func (c Condition) holds(actual float64) bool {
	switch c.Op {
	case "<":
		return actual < c.Limit
	case "<=":
		return actual <= c.Limit
	case ">":
		return actual > c.Limit
	case ">=":
		return actual >= c.Limit
	}
	return false
}

// Check judges every condition of b against r, in order. A condition on an
// endpoint that saw no requests is broken, so that a typo in a budget does
// not pass silently.
func (r *Report) Check(b Budget) []BudgetResult {
	res := make([]BudgetResult, 0, len(b))
	for _, c := range b {
		br := BudgetResult{Condition: c}
		e := r.Endpoint(c.Endpoint)
		switch {
		case e == nil || e.Requests == 0:
			br.Note = "no requests"
		case c.Metric == "errors":
			br.Actual = e.ErrorRate * 100
		case c.Metric == "rate":
			br.Actual = e.Rate
		default:
			v, ok := e.latencyMetric(c.Metric)
			if !ok {
				br.Note = "no latency data"
				break
			}
			br.Actual = float64(v)
		}
		br.Held = br.Note == "" && c.holds(br.Actual)
		res = append(res, br)
	}
	return res
}

// Held reports whether every result held.
func Held(results []BudgetResult) bool {
	for _, r := range results {
		if !r.Held {
			return false
		}
	}
	return true
}
