package slo

import (
	"fmt"
	"strings"
)

// RuleTestFile is a promtool unit test file (`promtool test rules`).
type RuleTestFile struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval string     `yaml:"evaluation_interval"`
	Tests              []RuleTest `yaml:"tests"`
}

// RuleTest is one promtool test group: input series and expected alerts.
type RuleTest struct {
	Name        string          `yaml:"name"`
	Interval    string          `yaml:"interval"`
	InputSeries []InputSeries   `yaml:"input_series"`
	AlertTests  []AlertRuleTest `yaml:"alert_rule_test"`
}

// InputSeries is one synthetic series in promtool's expanding notation.
type InputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// AlertRuleTest says which alerts of one name fire at one time.
type AlertRuleTest struct {
	EvalTime  string          `yaml:"eval_time"`
	AlertName string          `yaml:"alertname"`
	ExpAlerts []ExpectedAlert `yaml:"exp_alerts"`
}

// ExpectedAlert is an alert expected to fire.
type ExpectedAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// phase is a stretch of constant traffic: per minute, total requests and
// bad ones.
type phase struct {
	minutes    int
	total, bad float64
}

// counter renders a cumulative counter growing by perMin(p) in each
// phase, one sample a minute from 0.
func counter(phases []phase, perMin func(phase) float64) string {
	var parts []string
	last := 0.0
	for i, p := range phases {
		inc := perMin(p)
		if i == 0 {
			parts = append(parts, fmt.Sprintf("0+%sx%d", num(inc), p.minutes))
			last = inc * float64(p.minutes)
			continue
		}
		start := last + inc
		parts = append(parts, fmt.Sprintf("%s+%sx%d", num(start), num(inc), p.minutes-1))
		last = start + inc*float64(p.minutes-1)
	}
	return strings.Join(parts, " ")
}

// series returns the input series that make o see the given traffic.
func series(o SLO, phases []phase) []InputSeries {
	j := o.Journey
	good := func(p phase) float64 { return p.total - p.bad }
	bad := func(p phase) float64 { return p.bad }
	total := func(p phase) float64 { return p.total }
	reqs := func(class string) string {
		return fmt.Sprintf(`%s{%s=%q,method="GET",route="/test",%s=%q}`, MetricRequests, LabelJourney, j, LabelStatusClass, class)
	}
	if o.SLI == Availability {
		return []InputSeries{
			{reqs("2xx"), counter(phases, good)},
			{reqs("5xx"), counter(phases, bad)},
		}
	}
	le := num(o.Threshold.Seconds())
	return []InputSeries{
		{reqs("2xx"), counter(phases, total)},
		{fmt.Sprintf(`%s_bucket{%s=%q,%s="2xx",le=%q}`, MetricDuration, LabelJourney, j, LabelStatusClass, le), counter(phases, good)},
		{fmt.Sprintf(`%s_bucket{%s=%q,%s="2xx",le="+Inf"}`, MetricDuration, LabelJourney, j, LabelStatusClass), counter(phases, total)},
		{fmt.Sprintf(`%s_count{%s=%q,%s="2xx"}`, MetricDuration, LabelJourney, j, LabelStatusClass), counter(phases, total)},
	}
}

// RuleTests returns promtool tests of the generated alerts for every SLO
// of one journey, reading ruleFile:
//   - an hour at a burn just above 14.4x after 90 clean minutes pages:
//     the 6h/30m pair stays under 6x there, so only the 1h/5m pair at
//     14.4x can fire it; when the errors stop, the short windows end the
//     page while the ticket stays open;
//   - the same hour at 14x does not page;
//   - a steady 1x burn, which spends the budget exactly, never pages;
//   - very low traffic with many errors does not page (MinEvents guard).
//
// Rules are evaluated every 5m in the tests, which keeps promtool fast.
func RuleTests(s *Spec, journey, ruleFile string) RuleTestFile {
	f := RuleTestFile{RuleFiles: []string{ruleFile}, EvaluationInterval: "5m"}
	for _, o := range s.SLOs() {
		if o.Journey != journey {
			continue
		}
		page := []ExpectedAlert{{ExpLabels: withSeverity(o, "page"), ExpAnnotations: alertAnnotations(s, o, "fast")}}
		ticket := []ExpectedAlert{{ExpLabels: withSeverity(o, "ticket"), ExpAnnotations: alertAnnotations(s, o, "steadily")}}
		budget := o.ErrorBudget()
		const rate = 1000.0 // requests a minute
		f.Tests = append(f.Tests,
			RuleTest{
				Name:        o.Name + ": a 14.4x burn for an hour pages; when errors stop the page ends, the ticket stays",
				Interval:    "1m",
				InputSeries: series(o, []phase{{90, rate, 0}, {60, rate, 14.5 * budget * rate}, {30, rate, 0}}),
				AlertTests: []AlertRuleTest{
					{EvalTime: "85m", AlertName: AlertPage},
					{EvalTime: "150m", AlertName: AlertPage, ExpAlerts: page},
					{EvalTime: "150m", AlertName: AlertTicket, ExpAlerts: ticket},
					{EvalTime: "180m", AlertName: AlertPage},
					{EvalTime: "180m", AlertName: AlertTicket, ExpAlerts: ticket},
				},
			},
			RuleTest{
				Name:        o.Name + ": a 14x burn for an hour does not page",
				Interval:    "1m",
				InputSeries: series(o, []phase{{90, rate, 0}, {60, rate, 14 * budget * rate}}),
				AlertTests:  []AlertRuleTest{{EvalTime: "150m", AlertName: AlertPage}},
			},
			RuleTest{
				Name:        o.Name + ": a 1x burn never pages",
				Interval:    "1m",
				InputSeries: series(o, []phase{{70, rate, budget * rate}}),
				AlertTests: []AlertRuleTest{
					{EvalTime: "10m", AlertName: AlertPage},
					{EvalTime: "65m", AlertName: AlertPage},
				},
			},
			RuleTest{
				Name:        o.Name + ": low traffic does not page",
				Interval:    "1m",
				InputSeries: series(o, []phase{{30, 1, 0.5}}),
				AlertTests:  []AlertRuleTest{{EvalTime: "30m", AlertName: AlertPage}},
			},
		)
	}
	return f
}

func withSeverity(o SLO, severity string) map[string]string {
	l := sloLabels(o)
	l["severity"] = severity
	return l
}
