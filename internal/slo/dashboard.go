package slo

import (
	"encoding/json"
	"fmt"
	"time"
)

// Names of the metrics the dashboard reads besides the SLO rules'. They
// are exported by internal/telemetry (HTTP, pools, payment client,
// breaker) and internal/cache.
const (
	MetricInFlight         = "brisk_http_requests_in_flight"
	MetricServerErrors     = "brisk_http_server_errors_total"
	MetricConcurrencyLimit = "brisk_concurrency_limit"
	MetricConcurrencyInUse = "brisk_concurrency_in_use"
	MetricDBConns          = "brisk_db_pool_connections"
	MetricDBMaxConns       = "brisk_db_pool_max_connections"
	MetricDBWaitSeconds    = "brisk_db_pool_acquire_wait_seconds_total"
	MetricDBWaits          = "brisk_db_pool_acquire_waits_total"
	MetricRedisConns       = "brisk_redis_pool_connections"
	MetricRedisTimeouts    = "brisk_redis_pool_timeouts_total"
	MetricPaymentRequests  = "brisk_payment_client_requests_total"
	MetricPaymentDuration  = "brisk_payment_client_request_duration_seconds"
	MetricBreakerState     = "brisk_breaker_state"
	MetricCacheHits        = "brisk_cache_hits_total"
	MetricCacheMisses      = "brisk_cache_misses_total"
	MetricCacheEvictions   = "brisk_cache_evictions_total"
	MetricCacheCoalesced   = "brisk_cache_coalesced_waits_total"
	MetricCacheStale       = "brisk_cache_stale_served_total"
	MetricCacheLoadSeconds = "brisk_cache_load_duration_seconds"
)

// panel is a Grafana panel; only the fields brisk uses.
type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	GridPos     gridPos        `json:"gridPos"`
	Datasource  *datasource    `json:"datasource,omitempty"`
	Targets     []target       `json:"targets,omitempty"`
	FieldConfig *fieldConfig   `json:"fieldConfig,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Panels      []panel        `json:"panels,omitempty"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID        string      `json:"refId"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat,omitempty"`
	Datasource   *datasource `json:"datasource,omitempty"`
}

type fieldConfig struct {
	Defaults  fieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

type fieldDefaults struct {
	Unit       string      `json:"unit,omitempty"`
	Min        *float64    `json:"min,omitempty"`
	Max        *float64    `json:"max,omitempty"`
	Thresholds *thresholds `json:"thresholds,omitempty"`
}

type thresholds struct {
	Mode  string `json:"mode"`
	Steps []step `json:"steps"`
}

type step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

var promDS = &datasource{Type: "prometheus", UID: "${datasource}"}

func f64(v float64) *float64 { return &v }

// layout places panels left to right in rows of 24 columns.
type layout struct {
	x, y, rowH, id int
	panels         []panel
}

func (l *layout) row(title string) {
	if l.x > 0 {
		l.y += l.rowH
		l.x, l.rowH = 0, 0
	}
	l.id++
	l.panels = append(l.panels, panel{ID: l.id, Type: "row", Title: title, GridPos: gridPos{H: 1, W: 24, Y: l.y}, Collapsed: new(bool)})
	l.y++
}

func (l *layout) add(p panel, w, h int) {
	if l.x+w > 24 {
		l.y += l.rowH
		l.x, l.rowH = 0, 0
	}
	l.id++
	p.ID = l.id
	p.GridPos = gridPos{H: h, W: w, X: l.x, Y: l.y}
	p.Datasource = promDS
	for i := range p.Targets {
		p.Targets[i].RefID = string(rune('A' + i))
		p.Targets[i].Datasource = promDS
	}
	l.x += w
	l.rowH = max(l.rowH, h)
	l.panels = append(l.panels, p)
}

func timeseries(title, unit string, targets ...target) panel {
	return panel{Type: "timeseries", Title: title, Targets: targets,
		FieldConfig: &fieldConfig{Defaults: fieldDefaults{Unit: unit}, Overrides: []any{}}}
}

func q(expr, legend string) target { return target{Expr: expr, LegendFormat: legend} }

// Dashboard returns the Grafana dashboard JSON: SLO budgets and burn rates
// per journey, the four golden signals per route, saturation, the cache,
// the payment client and its breaker.
func Dashboard(s *Spec) ([]byte, error) {
	var l layout
	l.row("SLOs: error budget left over " + s.Window.String() + " and burn rates")
	for _, o := range s.SLOs() {
		l.add(panel{
			Type:        "stat",
			Title:       o.Name + " budget left",
			Description: fmt.Sprintf("Objective %s%%. 1 = untouched, 0 = spent.", num(o.Objective*100)),
			Targets:     []target{q(fmt.Sprintf("%s{slo=%q}", RecordBudgetLeft, o.Name), o.Name)},
			FieldConfig: &fieldConfig{Defaults: fieldDefaults{Unit: "percentunit", Max: f64(1), Thresholds: &thresholds{Mode: "absolute",
				Steps: []step{{"red", nil}, {"orange", f64(0.25)}, {"green", f64(0.5)}}}}, Overrides: []any{}},
			Options: map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}}, "graphMode": "area"},
		}, 3, 5)
	}
	for _, o := range s.SLOs() {
		var ts []target
		for _, w := range []time.Duration{5 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
			ts = append(ts, q(fmt.Sprintf("%s%s{slo=%q} / %s", RecordErrorRatio, dur(w), o.Name, num(o.ErrorBudget())), dur(w)))
		}
		p := timeseries(o.Name+" burn rate", "x", ts...)
		p.Description = "Error ratio over the error budget: 1 spends the budget exactly in the SLO window; pages at 14.4 (1h and 5m) and 6 (6h and 30m)."
		l.add(p, 6, 7)
	}

	l.row("Golden signals per route")
	l.add(timeseries("Traffic (requests/s)", "reqps",
		q(fmt.Sprintf("sum by (method, route) (rate(%s[1m]))", MetricRequests), "{{method}} {{route}}")), 12, 8)
	l.add(timeseries("Errors (5xx share)", "percentunit",
		q(fmt.Sprintf("sum by (method, route) (rate(%s{%s=\"5xx\"}[1m])) / sum by (method, route) (rate(%s[1m]))", MetricRequests, LabelStatusClass, MetricRequests), "{{method}} {{route}}"),
		q(fmt.Sprintf("sum by (code) (rate(%s[1m]))", MetricServerErrors), "{{code}}/s")), 12, 8)
	for _, pct := range []string{"0.5", "0.95", "0.99"} {
		l.add(timeseries("Latency p"+pct[2:], "s",
			q(fmt.Sprintf("histogram_quantile(%s, sum by (le, method, route) (rate(%s_bucket[5m])))", pct, MetricDuration), "{{method}} {{route}}")), 8, 8)
	}
	l.add(timeseries("Status classes (requests/s)", "reqps",
		q(fmt.Sprintf("sum by (%s) (rate(%s[1m]))", LabelStatusClass, MetricRequests), "{{"+LabelStatusClass+"}}")), 12, 8)
	l.add(timeseries("Journeys (requests/s)", "reqps",
		q(fmt.Sprintf("sum by (%s) (rate(%s[1m]))", LabelJourney, MetricRequests), "{{"+LabelJourney+"}}")), 12, 8)

	l.row("Saturation")
	l.add(timeseries("In flight and concurrency limit", "short",
		q(fmt.Sprintf("sum(%s)", MetricInFlight), "in flight"),
		q(fmt.Sprintf("sum(%s)", MetricConcurrencyLimit), "limit"),
		q(fmt.Sprintf("sum(%s)", MetricConcurrencyInUse), "limit in use")), 8, 8)
	l.add(timeseries("DB pool", "short",
		q(fmt.Sprintf("sum by (pool, state) (%s)", MetricDBConns), "{{pool}} {{state}}"),
		q(fmt.Sprintf("sum by (pool) (%s)", MetricDBMaxConns), "{{pool}} max")), 8, 8)
	l.add(timeseries("DB pool acquire wait (s/s)", "s",
		q(fmt.Sprintf("sum by (pool) (rate(%s[1m]))", MetricDBWaitSeconds), "{{pool}} wait"),
		q(fmt.Sprintf("sum by (pool) (rate(%s[1m]))", MetricDBWaits), "{{pool}} waits/s")), 8, 8)
	l.add(timeseries("Redis pool", "short",
		q(fmt.Sprintf("sum by (state) (%s)", MetricRedisConns), "{{state}}"),
		q(fmt.Sprintf("sum(rate(%s[1m]))", MetricRedisTimeouts), "timeouts/s")), 8, 8)
	l.add(timeseries("Goroutines", "short", q("sum(go_goroutines)", "goroutines")), 8, 8)
	l.add(timeseries("CPU (cores) and heap", "short",
		q("sum(rate(process_cpu_seconds_total[1m]))", "cpu"),
		q("sum(go_memstats_heap_inuse_bytes) / 1e9", "heap GB")), 8, 8)

	l.row("Cache")
	l.add(timeseries("Cache hit ratio", "percentunit",
		q(fmt.Sprintf("sum by (layer) (rate(%s[1m])) / (sum by (layer) (rate(%s[1m])) + sum by (layer) (rate(%s[1m])))", MetricCacheHits, MetricCacheHits, MetricCacheMisses), "{{layer}}")), 8, 8)
	l.add(timeseries("Cache lookups, waits, evictions (/s)", "reqps",
		q(fmt.Sprintf("sum by (layer) (rate(%s[1m]))", MetricCacheHits), "{{layer}} hits"),
		q(fmt.Sprintf("sum by (layer) (rate(%s[1m]))", MetricCacheMisses), "{{layer}} misses"),
		q(fmt.Sprintf("sum(rate(%s[1m]))", MetricCacheCoalesced), "coalesced waits"),
		q(fmt.Sprintf("sum(rate(%s[1m]))", MetricCacheStale), "stale served"),
		q(fmt.Sprintf("sum by (layer, cause) (rate(%s[1m]))", MetricCacheEvictions), "{{layer}} evicted ({{cause}})")), 8, 8)
	l.add(timeseries("Cache load p95", "s",
		q(fmt.Sprintf("histogram_quantile(0.95, sum by (le, layer) (rate(%s_bucket[5m])))", MetricCacheLoadSeconds), "{{layer}}")), 8, 8)

	l.row("Payment client and breaker")
	l.add(timeseries("Payment calls (/s) by outcome", "reqps",
		q(fmt.Sprintf("sum by (method, outcome) (rate(%s[1m]))", MetricPaymentRequests), "{{method}} {{outcome}}")), 8, 8)
	l.add(timeseries("Payment call p99", "s",
		q(fmt.Sprintf("histogram_quantile(0.99, sum by (le, method) (rate(%s_bucket[5m])))", MetricPaymentDuration), "{{method}}")), 8, 8)
	l.add(timeseries("Breaker state", "short",
		q(fmt.Sprintf("max by (breaker, state) (%s)", MetricBreakerState), "{{breaker}} {{state}}")), 8, 8)

	d := map[string]any{
		"uid":           "brisk",
		"title":         "brisk: golden signals and SLOs",
		"description":   "Generated by `brisk slo dashboard` from slo.yaml.",
		"tags":          []string{"brisk", "slo"},
		"schemaVersion": 39,
		"version":       1,
		"editable":      true,
		"refresh":       "10s",
		"time":          map[string]string{"from": "now-1h", "to": "now"},
		"timezone":      "browser",
		"templating": map[string]any{"list": []any{map[string]any{
			"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
			"current": map[string]any{}, "hide": 0, "refresh": 1,
		}}},
		"annotations": map[string]any{"list": []any{}},
		"panels":      l.panels,
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dashboard: %w", err)
	}
	return append(b, '\n'), nil
}

// DashboardQueries returns every PromQL expression of the dashboard.
func DashboardQueries(b []byte) ([]string, error) {
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, t.Expr)
		}
	}
	return out, nil
}
