package slo

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Metric and label names the rules read; internal/telemetry exports them.
const (
	// MetricRequests counts finished requests by method, route, journey
	// and status_class ("2xx").
	MetricRequests = "brisk_http_requests_total"
	// MetricDuration is the request duration histogram in seconds, with
	// the same labels.
	MetricDuration = "brisk_http_request_duration_seconds"
	// LabelJourney names the journey of a request ("none" outside any).
	LabelJourney = "journey"
	// LabelStatusClass is the status class of a response ("5xx").
	LabelStatusClass = "status_class"
)

// Names of the generated recording rules and alerts.
const (
	RecordErrorRatio = "brisk_slo:sli_error:ratio_rate" // + window, e.g. 5m
	RecordRequests   = "brisk_slo:requests:rate"        // + window
	RecordObjective  = "brisk_slo:objective:ratio"
	RecordBudgetLeft = "brisk_slo:error_budget:remaining"
	AlertPage        = "BriskErrorBudgetBurnFast"
	AlertTicket      = "BriskErrorBudgetBurnSlow"
)

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is a named list of rules evaluated together.
type RuleGroup struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording rule (Record) or an alerting rule (Alert).
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// dur formats a duration as PromQL does ("5m", "1d").
func dur(d time.Duration) string { return model.Duration(d).String() }

// num formats a float for PromQL and YAML without noise.
func num(v float64) string { return strconv.FormatFloat(round(v), 'g', -1, 64) }

// leMatcher matches the histogram bucket whose upper bound is t seconds.
// Text scrapes write an integer bound as "1", protobuf scrapes as "1.0".
func leMatcher(t time.Duration) string {
	s := num(t.Seconds())
	if v := t.Seconds(); v == math.Trunc(v) {
		return fmt.Sprintf(`le=~"%s(\\.0)?"`, s)
	}
	return fmt.Sprintf(`le="%s"`, s)
}

// errorRatioExpr is the PromQL error ratio of o over window w.
func errorRatioExpr(o SLO, w string) string {
	j := fmt.Sprintf("%s=%q", LabelJourney, o.Journey)
	if o.SLI == Availability {
		return fmt.Sprintf("sum(rate(%s{%s,%s=\"5xx\"}[%s]))\n/\nsum(rate(%s{%s}[%s]))",
			MetricRequests, j, LabelStatusClass, w, MetricRequests, j, w)
	}
	return fmt.Sprintf("1 - (\n  sum(rate(%s_bucket{%s,%s!=\"5xx\",%s}[%s]))\n  /\n  sum(rate(%s_count{%s,%s!=\"5xx\"}[%s]))\n)",
		MetricDuration, j, LabelStatusClass, leMatcher(o.Threshold), w, MetricDuration, j, LabelStatusClass, w)
}

func sloLabels(o SLO) map[string]string {
	return map[string]string{"slo": o.Name, LabelJourney: o.Journey, "sli": o.SLI}
}

// Rules returns the recording rules and burn-rate alerts of every SLO in
// the spec, one group per journey.
func Rules(s *Spec) RuleFile {
	var f RuleFile
	for _, j := range s.Journeys {
		f.Groups = append(f.Groups, journeyGroup(s, j))
	}
	return f
}

// JourneyRules returns the rules of one journey's SLOs.
func JourneyRules(s *Spec, journey string) RuleFile {
	var f RuleFile
	for _, j := range s.Journeys {
		if j.Name == journey {
			f.Groups = append(f.Groups, journeyGroup(s, j))
		}
	}
	return f
}

func journeyGroup(s *Spec, j Journey) RuleGroup {
	{
		g := RuleGroup{Name: "brisk-slo-" + j.Name}
		for _, w := range Windows() {
			g.Rules = append(g.Rules, Rule{
				Record: RecordRequests + dur(w),
				Expr:   fmt.Sprintf("sum(rate(%s{%s=%q}[%s]))", MetricRequests, LabelJourney, j.Name, dur(w)),
				Labels: map[string]string{LabelJourney: j.Name},
			})
		}
		for _, o := range s.SLOs() {
			if o.Journey != j.Name {
				continue
			}
			for _, w := range Windows() {
				g.Rules = append(g.Rules, Rule{Record: RecordErrorRatio + dur(w), Expr: errorRatioExpr(o, dur(w)), Labels: sloLabels(o)})
			}
			g.Rules = append(g.Rules,
				Rule{Record: RecordObjective, Expr: num(o.Objective), Labels: sloLabels(o)},
				Rule{
					Record: RecordBudgetLeft,
					Expr: fmt.Sprintf("1 - avg_over_time(%s5m{slo=%q}[%s]) / %s",
						RecordErrorRatio, o.Name, s.Window, num(o.ErrorBudget())),
					Labels: sloLabels(o),
				},
				alertRule(s, o, "page"),
				alertRule(s, o, "ticket"),
			)
		}
		return g
	}
}

// alertRule is the multiwindow, multi-burn-rate alert of one severity:
// either of its window pairs over its factor fires it. Pages also need
// MinEvents requests in the long window.
func alertRule(s *Spec, o SLO, severity string) Rule {
	var conds []string
	for _, a := range BurnAlerts {
		if a.Severity != severity {
			continue
		}
		limit := num(a.Factor * o.ErrorBudget())
		c := fmt.Sprintf("%s%s{slo=%q} > %s\nand\n%s%s{slo=%q} > %s",
			RecordErrorRatio, dur(a.Long), o.Name, limit, RecordErrorRatio, dur(a.Short), o.Name, limit)
		if severity == "page" && s.MinEvents > 0 {
			c += fmt.Sprintf("\nand on (%s)\n%s%s{%s=%q} * %s >= %d",
				LabelJourney, RecordRequests, dur(a.Long), LabelJourney, o.Journey, num(a.Long.Seconds()), s.MinEvents)
		}
		conds = append(conds, "(\n"+indent(c)+"\n)")
	}
	name, speed := AlertPage, "fast"
	if severity == "ticket" {
		name, speed = AlertTicket, "steadily"
	}
	labels := sloLabels(o)
	labels["severity"] = severity
	return Rule{
		Alert:       name,
		Expr:        strings.Join(conds, "\nor\n"),
		Labels:      labels,
		Annotations: alertAnnotations(s, o, speed),
	}
}

func alertAnnotations(s *Spec, o SLO, speed string) map[string]string {
	what := "requests answered without a 5xx"
	if o.SLI == LatencySLI {
		what = fmt.Sprintf("non-5xx requests served within %s", dur(o.Threshold))
	}
	return map[string]string{
		"summary": fmt.Sprintf("%s %s SLO is burning its error budget %s", o.Journey, o.SLI, speed),
		"description": fmt.Sprintf("The %s journey's objective (%s%% of %s over %s) is burning its error budget %s. See /debug/slo on the API instances and the brisk dashboard.",
			o.Journey, num(o.Objective*100), what, s.Window, speed),
	}
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// header starts every generated file.
const header = "# Code generated by `brisk slo rules` from slo.yaml; DO NOT EDIT.\n"

// Files renders the generated Prometheus files, by path relative to the
// Prometheus config directory: rules/slo-<journey>.yml, one rule file per
// journey, and tests/slo-<journey>.test.yml, its promtool unit tests.
// (One file per journey keeps promtool's tests fast: it evaluates every
// rule of a file at every step of every test.)
func Files(s *Spec) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, j := range s.Journeys {
		rules, err := marshal(JourneyRules(s, j.Name))
		if err != nil {
			return nil, err
		}
		tests, err := marshal(RuleTests(s, j.Name, "../rules/slo-"+j.Name+".yml"))
		if err != nil {
			return nil, err
		}
		out["rules/slo-"+j.Name+".yml"] = rules
		out["tests/slo-"+j.Name+".test.yml"] = tests
	}
	return out, nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return b.Bytes(), nil
}
