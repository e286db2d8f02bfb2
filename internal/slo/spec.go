// Package slo holds brisk's service level objectives as code: the spec read
// from slo.yaml, the Prometheus recording rules, burn-rate alerts and
// promtool tests generated from it, the Grafana dashboard, and a Tracker
// that computes burn rates and the remaining error budget live, in-process.
package slo

import (
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

//go:generate cp ../../slo.yaml default.yaml

// defaultSpec is a copy of the repository's slo.yaml (go generate keeps it
// in sync; a test fails when it is not).
//
//go:embed default.yaml
var defaultSpec []byte

// Default returns the spec built into the binary (the repository's slo.yaml).
func Default() *Spec {
	s, err := Parse(defaultSpec)
	if err != nil {
		panic(fmt.Sprintf("built-in slo.yaml: %v", err))
	}
	return s
}

// Spec is the parsed slo.yaml.
type Spec struct {
	Service string `yaml:"service"`
	// Window is the period the objectives hold over (30d).
	Window Duration `yaml:"window"`
	// MinEvents is the number of requests a page's long window must hold
	// before it may page (a guard against paging on very low traffic).
	MinEvents int       `yaml:"min_events"`
	Journeys  []Journey `yaml:"journeys"`
}

// Journey is one user journey with its objectives.
type Journey struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Routes      []string `yaml:"routes"`
	// Availability is the objective in percent of requests not answered 5xx.
	Availability float64 `yaml:"availability"`
	Latency      Latency `yaml:"latency"`
}

// Latency is a latency objective: Objective percent of the non-5xx
// requests are served within Threshold.
type Latency struct {
	Objective float64  `yaml:"objective"`
	Threshold Duration `yaml:"threshold"`
}

// Duration is a duration written as Prometheus writes them (5m, 1h, 30d).
type Duration time.Duration

// UnmarshalText parses a Prometheus duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := model.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String formats d as Prometheus does ("30d", "1h", "250ms").
func (d Duration) String() string { return model.Duration(d).String() }

// SLI names.
const (
	Availability = "availability"
	LatencySLI   = "latency"
)

// SLO is one objective of one journey, flattened: each journey has an
// availability SLO and, when it sets a latency objective, a latency SLO.
type SLO struct {
	Name    string // "<journey>-<sli>"
	Journey string
	SLI     string // Availability or LatencySLI
	// Objective is the target ratio of good events (0.999).
	Objective float64
	// Threshold is the latency threshold (latency SLOs only).
	Threshold time.Duration
}

// ErrorBudget is the share of events allowed to be bad: 1 - Objective.
func (o SLO) ErrorBudget() float64 { return round(1 - o.Objective) }

// SLOs lists every objective of the spec, journey by journey.
func (s *Spec) SLOs() []SLO {
	var out []SLO
	for _, j := range s.Journeys {
		out = append(out, SLO{Name: j.Name + "-" + Availability, Journey: j.Name, SLI: Availability, Objective: ratio(j.Availability)})
		if j.Latency.Objective > 0 {
			out = append(out, SLO{Name: j.Name + "-" + LatencySLI, Journey: j.Name, SLI: LatencySLI,
				Objective: ratio(j.Latency.Objective), Threshold: time.Duration(j.Latency.Threshold)})
		}
	}
	return out
}

// ratio turns a percentage into a ratio without float noise (99.9 -> 0.999).
func ratio(percent float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(percent/100, 'g', 12, 64), 64)
	return r
}

// Load reads and validates a spec file.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read slo spec: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a spec; unknown fields are errors.
func Parse(b []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse slo spec: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("invalid slo spec: %w", err)
	}
	return &s, nil
}

func (s *Spec) validate() error {
	if s.Service == "" {
		return fmt.Errorf("service is required")
	}
	if time.Duration(s.Window) < 24*time.Hour {
		return fmt.Errorf("window %s: want at least 1d", s.Window)
	}
	if s.MinEvents < 0 {
		return fmt.Errorf("min_events %d: want >= 0", s.MinEvents)
	}
	if len(s.Journeys) == 0 {
		return fmt.Errorf("no journeys")
	}
	names := map[string]bool{}
	routes := map[string]string{}
	for _, j := range s.Journeys {
		if !validName(j.Name) {
			return fmt.Errorf("journey name %q: want lower-case letters, digits and _", j.Name)
		}
		if names[j.Name] {
			return fmt.Errorf("journey %q twice", j.Name)
		}
		names[j.Name] = true
		if len(j.Routes) == 0 {
			return fmt.Errorf("journey %s: no routes", j.Name)
		}
		for _, r := range j.Routes {
			if _, _, _, err := splitRoute(r); err != nil {
				return fmt.Errorf("journey %s: %w", j.Name, err)
			}
			if other, ok := routes[r]; ok {
				return fmt.Errorf("route %q in journeys %s and %s", r, other, j.Name)
			}
			routes[r] = j.Name
		}
		if !(j.Availability > 0 && j.Availability < 100) {
			return fmt.Errorf("journey %s: availability %v: want a percentage in (0, 100)", j.Name, j.Availability)
		}
		if j.Latency.Objective != 0 || j.Latency.Threshold != 0 {
			if !(j.Latency.Objective > 0 && j.Latency.Objective < 100) {
				return fmt.Errorf("journey %s: latency objective %v: want a percentage in (0, 100)", j.Name, j.Latency.Objective)
			}
			if j.Latency.Threshold <= 0 {
				return fmt.Errorf("journey %s: latency threshold is required", j.Name)
			}
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || s == "none" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// splitRoute splits "GET /v1/products?q" into the ServeMux pattern
// "GET /v1/products", its method and the query parameter ("q").
func splitRoute(r string) (pattern, method, query string, err error) {
	method, path, ok := strings.Cut(r, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") || method != strings.ToUpper(method) {
		return "", "", "", fmt.Errorf("route %q: want \"METHOD /path\"", r)
	}
	path, query, _ = strings.Cut(path, "?")
	return method + " " + path, method, query, nil
}

// RouteJourney says which journey a request on a route belongs to.
type RouteJourney struct {
	// Query, when not empty, limits the match to requests carrying this
	// query parameter.
	Query   string
	Journey string
}

// RouteJourneys returns, for each ServeMux pattern the spec names, the
// journeys its requests may belong to, those with a query condition first.
func (s *Spec) RouteJourneys() map[string][]RouteJourney {
	m := map[string][]RouteJourney{}
	for _, j := range s.Journeys {
		for _, r := range j.Routes {
			pattern, _, query, _ := splitRoute(r)
			m[pattern] = append(m[pattern], RouteJourney{Query: query, Journey: j.Name})
		}
	}
	for _, rjs := range m {
		slices.SortStableFunc(rjs, func(a, b RouteJourney) int {
			switch {
			case a.Query != "" && b.Query == "":
				return -1
			case a.Query == "" && b.Query != "":
				return 1
			}
			return 0
		})
	}
	return m
}

// HasQueryParam reports whether a raw (undecoded) query string carries
// the parameter name, without allocating.
func HasQueryParam(rawQuery, name string) bool {
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, _, _ := strings.Cut(kv, "=")
		if k == name {
			return true
		}
	}
	return false
}

// Buckets returns histogram bucket bounds in seconds: a general
// exponential-ish ladder plus each latency threshold and points around it
// (half, three quarters, one and a half and twice), so that both the
// SLO's good-event count (the bucket at the threshold) and the shape near
// it are exact.
func (s *Spec) Buckets() []float64 {
	b := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	for _, o := range s.SLOs() {
		if o.SLI != LatencySLI {
			continue
		}
		t := o.Threshold.Seconds()
		b = append(b, t/2, t*0.75, t, t*1.5, t*2)
	}
	for i, v := range b {
		b[i] = round(v)
	}
	slices.Sort(b)
	return slices.Compact(b)
}

// round drops float noise (0.15000000000000002 -> 0.15).
func round(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 9, 64), 64)
	if math.IsNaN(r) {
		return v
	}
	return r
}
