package chaos

import (
	"strings"
	"testing"
	"time"
)

const goodYAML = `
name: x
hypothesis: h
load: {rate: 10}
steady_state: "all:errors<1%"
phases: {before: 4s, during: 8s, after: 4s}
faults:
  - {target: redis, kind: latency, latency: 200ms, at: 2s, for: 4s}
recover_within: 10s
`

func TestParse(t *testing.T) {
	e, err := Parse([]byte(goodYAML), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if e.Instances != 2 || e.Load.Users != 10 || e.Load.Scenario != "shop" {
		t.Errorf("defaults not applied: %+v", e)
	}
	if f := e.Faults[0]; f.Latency.D() != 200*time.Millisecond || f.At.D() != 2*time.Second || f.For.D() != 4*time.Second {
		t.Errorf("fault = %+v", f)
	}
	q := e.Scaled(0.25)
	if q.Phases.During.D() != 2*time.Second || q.Faults[0].At.D() != 500*time.Millisecond || q.Faults[0].For.D() != time.Second {
		t.Errorf("Scaled(0.25) = %+v %+v", q.Phases, q.Faults[0])
	}
	if e.Faults[0].At.D() != 2*time.Second {
		t.Error("Scaled changed the original's faults")
	}
	if q.RecoverWithin.D() != 3*time.Second {
		t.Errorf("Scaled recover_within = %v, want the 3s floor", q.RecoverWithin.D())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, from, to string
	}{
		{"unknown field", "recover_within: 10s", "recover_within: 10s\nbogus: 1"},
		{"no hypothesis", "hypothesis: h", "hypothesis: ''"},
		{"bad budget", `"all:errors<1%"`, `"all:errorz<1%"`},
		{"bad duration", "before: 4s", "before: four"},
		{"zero rate", "rate: 10", "rate: 0"},
		{"unknown kind", "kind: latency", "kind: flood"},
		{"errors on redis", "kind: latency, latency: 200ms", "kind: errors, rate: 0.5"},
		{"fault past the phase", "for: 4s", "for: 7s"},
		{"kill a missing instance", "target: redis, kind: latency, latency: 200ms", "target: api, kind: kill, instance: 2"},
		{"no faults", "faults:\n  - {target: redis, kind: latency, latency: 200ms, at: 2s, for: 4s}", "faults: []"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(goodYAML, tc.from, tc.to, 1)
			if y == goodYAML {
				t.Fatalf("replacement %q not found", tc.from)
			}
			if _, err := Parse([]byte(y), "x.yaml"); err == nil {
				t.Errorf("Parse accepted:\n%s", y)
			}
		})
	}
}

func TestLoadDirRepo(t *testing.T) {
	es, err := LoadDir("../../chaos")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range es {
		for _, f := range e.Faults {
			kinds[f.Target+" "+f.Kind] = true
		}
	}
	for _, k := range []string{"payment slow", "payment errors", "payment stop", "redis down", "redis latency",
		"postgres reset", "postgres down", "api kill"} {
		if !kinds[k] {
			t.Errorf("no experiment with fault %q", k)
		}
	}
	if _, err := Select(es, []string{"nope"}); err == nil {
		t.Error("Select of an unknown name succeeded")
	}
}
