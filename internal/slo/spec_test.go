package slo

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultMatchesRepositorySpec(t *testing.T) {
	root, err := os.ReadFile("../../slo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, defaultSpec) {
		t.Fatal("internal/slo/default.yaml differs from slo.yaml: run go generate ./internal/slo")
	}
	s := Default()
	var names []string
	for _, j := range s.Journeys {
		names = append(names, j.Name)
	}
	if want := []string{"browse", "search", "cart", "checkout"}; !slices.Equal(names, want) {
		t.Errorf("journeys = %v, want %v", names, want)
	}
	if time.Duration(s.Window) != 30*24*time.Hour {
		t.Errorf("window = %v, want 30d", s.Window)
	}
	var checkout []SLO
	for _, o := range s.SLOs() {
		if o.Journey == "checkout" {
			checkout = append(checkout, o)
		}
	}
	want := []SLO{
		{Name: "checkout-availability", Journey: "checkout", SLI: Availability, Objective: 0.999},
		{Name: "checkout-latency", Journey: "checkout", SLI: LatencySLI, Objective: 0.999, Threshold: 200 * time.Millisecond},
	}
	if !slices.Equal(checkout, want) {
		t.Errorf("checkout SLOs = %+v, want %+v", checkout, want)
	}
}

func TestParseRejects(t *testing.T) {
	valid := `service: s
window: 30d
journeys:
  - name: a
    routes: [GET /a]
    availability: 99.9
    latency: {objective: 99, threshold: 100ms}
`
	if _, err := Parse([]byte(valid)); err != nil {
		t.Fatalf("Parse(valid) = %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown field", "window: 30d", "window: 30d\nwindows: 1d", "windows"},
		{"short window", "window: 30d", "window: 1h", "window"},
		{"no routes", "routes: [GET /a]", "routes: []", "no routes"},
		{"bad route", "routes: [GET /a]", "routes: [/a]", "METHOD /path"},
		{"lower-case method", "routes: [GET /a]", "routes: [get /a]", "METHOD /path"},
		{"objective 100", "availability: 99.9", "availability: 100", "availability"},
		{"objective as ratio is fine but 0 is not", "availability: 99.9", "availability: 0", "availability"},
		{"latency without threshold", "threshold: 100ms", "threshold: 0s", "threshold"},
		{"bad duration", "threshold: 100ms", "threshold: fast", "fast"},
		{"bad name", "name: a", "name: A-b", "journey name"},
		{"reserved name", "name: a", "name: none", "journey name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Replace(valid, tt.old, tt.new, 1)
			_, err := Parse([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%s) = %v, want an error about %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestRouteJourneys(t *testing.T) {
	m := Default().RouteJourneys()
	tests := []struct {
		pattern string
		want    []RouteJourney
	}{
		{"GET /v1/products", []RouteJourney{{Query: "q", Journey: "search"}, {Journey: "browse"}}},
		{"GET /v1/products/{id}", []RouteJourney{{Journey: "browse"}}},
		{"POST /v1/checkout", []RouteJourney{{Journey: "checkout"}}},
		{"PUT /v1/cart/items/{product_id}", []RouteJourney{{Journey: "cart"}}},
		{"POST /v1/auth/login", nil},
	}
	for _, tt := range tests {
		if got := m[tt.pattern]; !slices.Equal(got, tt.want) {
			t.Errorf("RouteJourneys()[%q] = %v, want %v", tt.pattern, got, tt.want)
		}
	}
}

func TestHasQueryParam(t *testing.T) {
	tests := []struct {
		raw, name string
		want      bool
	}{
		{"q=oak", "q", true},
		{"limit=5&q=", "q", true},
		{"q", "q", true},
		{"sq=oak", "q", false},
		{"qq=1&limit=2", "q", false},
		{"", "q", false},
		{"category=tea&cursor=abc", "q", false},
	}
	for _, tt := range tests {
		if got := HasQueryParam(tt.raw, tt.name); got != tt.want {
			t.Errorf("HasQueryParam(%q, %q) = %v, want %v", tt.raw, tt.name, got, tt.want)
		}
	}
}

func TestBucketsHoldThresholds(t *testing.T) {
	s := Default()
	b := s.Buckets()
	if !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) {
		t.Fatalf("Buckets() = %v, want sorted and unique", b)
	}
	for _, o := range s.SLOs() {
		if o.SLI != LatencySLI {
			continue
		}
		th := o.Threshold.Seconds()
		for _, v := range []float64{th / 2, th, th * 2} {
			if !slices.Contains(b, round(v)) {
				t.Errorf("Buckets() = %v lacks %v (around %s's threshold)", b, v, o.Name)
			}
		}
	}
	for _, v := range b {
		if s := num(v); len(s) > 8 {
			t.Errorf("bucket %v formats as %q: float noise", v, s)
		}
	}
}

func TestLeMatcher(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{200 * time.Millisecond, `le="0.2"`},
		{250 * time.Millisecond, `le="0.25"`},
		{time.Second, `le=~"1(\\.0)?"`},
		{2 * time.Second, `le=~"2(\\.0)?"`},
	}
	for _, tt := range tests {
		if got := leMatcher(tt.d); got != tt.want {
			t.Errorf("leMatcher(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}
