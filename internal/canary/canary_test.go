package canary

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// side draws n log-normal latencies (median med, shape sigma) with the
// given seed; a share slow of them get extra added; errs requests fail.
type side struct {
	n      int
	med    time.Duration
	sigma  float64
	extra  time.Duration // added to every request
	slow   float64       // share of requests that also get slowBy
	slowBy time.Duration
	errs   int64
	seed   uint64
}

func (s side) sample(name string) Sample {
	r := rand.New(rand.NewPCG(s.seed, 99))
	h := hdrhistogram.New(1, 3_600_000_000, 3)
	for range s.n {
		d := time.Duration(float64(s.med)*math.Exp(s.sigma*r.NormFloat64())) + s.extra
		if r.Float64() < s.slow {
			d += s.slowBy
		}
		h.RecordValue(max(1, int64(d/time.Microsecond)))
	}
	return Sample{Endpoint: name, Requests: int64(s.n), Errors: s.errs, Latency: h}
}

func TestAnalyze(t *testing.T) {
	base := side{n: 5000, med: 4 * time.Millisecond, sigma: 0.6, seed: 1}
	tests := []struct {
		name     string
		canary   side
		wantPass bool
		failing  string // test expected among the failures
	}{
		{"identical distribution, other draw", side{n: 5000, med: 4 * time.Millisecond, sigma: 0.6, seed: 2}, true, ""},
		{"5% faster", side{n: 5000, med: 3800 * time.Microsecond, sigma: 0.6, seed: 3}, true, ""},
		{"5% slower: within tolerance", side{n: 5000, med: 4200 * time.Microsecond, sigma: 0.6, seed: 4}, true, ""},
		{"+5ms on every request", side{n: 5000, med: 4 * time.Millisecond, sigma: 0.6, extra: 5 * time.Millisecond, seed: 5}, false, "latency"},
		{"median 50% slower", side{n: 5000, med: 6 * time.Millisecond, sigma: 0.6, seed: 6}, false, "latency"},
		{"tail only: 3% of requests +200ms", side{n: 5000, med: 4 * time.Millisecond, sigma: 0.6, slow: 0.03, slowBy: 200 * time.Millisecond, seed: 7}, false, "p99"},
		{"5% errors", side{n: 5000, med: 4 * time.Millisecond, sigma: 0.6, errs: 250, seed: 8}, false, "errors"},
		{"a few errors: within slack", side{n: 5000, med: 4 * time.Millisecond, sigma: 0.6, errs: 3, seed: 9}, true, ""},
		{"too few requests: inconclusive", side{n: 50, med: 4 * time.Millisecond, sigma: 0.6, seed: 10}, false, "requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []Sample{base.sample("product"), base.sample("all")}
			c := []Sample{tt.canary.sample("product"), tt.canary.sample("all")}
			v, err := Analyze(b, c, "all", Config{})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Write(&out, v); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", out.String())
			if v.Pass != tt.wantPass {
				t.Fatalf("Analyze: Pass = %v, want %v", v.Pass, tt.wantPass)
			}
			if tt.failing != "" {
				found := false
				for _, f := range v.Failed() {
					found = found || f.Test == tt.failing
				}
				if !found {
					t.Errorf("Analyze: failed checks %+v, want one of test %q", v.Failed(), tt.failing)
				}
			}
			want := "verdict: PASS"
			if !tt.wantPass {
				want = "verdict: FAIL"
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("Write output lacks %q", want)
			}
		})
	}
}

// TestAnalyzeFalseAlarms runs many identical canaries: with alpha 0.01
// split over the tests, false alarms must stay rare.
func TestAnalyzeFalseAlarms(t *testing.T) {
	fails := 0
	const runs = 40
	for i := range uint64(runs) {
		// Sub-millisecond latencies so that the slack does not hide everything:
		// tolerance 0 and slack 0 test the statistics alone.
		b := side{n: 3000, med: 5 * time.Millisecond, sigma: 0.8, errs: 30, seed: 100 + 2*i}
		c := side{n: 3000, med: 5 * time.Millisecond, sigma: 0.8, errs: 30, seed: 101 + 2*i}
		v, err := Analyze([]Sample{b.sample("all")}, []Sample{c.sample("all")}, "all",
			Config{LatencyTolerance: -1, LatencySlack: -1, ErrorSlack: -1})
		if err != nil {
			t.Fatal(err)
		}
		if !v.Pass {
			fails++
		}
	}
	if fails > 2 {
		t.Errorf("%d of %d identical canaries failed with no tolerance, want at most 2 (alpha 0.01)", fails, runs)
	}
}

func TestAnalyzeSkipsSmallEndpoints(t *testing.T) {
	big := side{n: 2000, med: time.Millisecond, sigma: 0.5, seed: 1}
	small := side{n: 20, med: time.Millisecond, sigma: 0.5, seed: 2}
	slowSmall := small
	slowSmall.extra = time.Second
	v, err := Analyze(
		[]Sample{big.sample("product"), small.sample("login"), big.sample("all")},
		[]Sample{big.sample("product"), slowSmall.sample("login"), big.sample("all")},
		"all", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Skipped) != 1 || v.Skipped[0] != "login" {
		t.Errorf("Skipped = %v, want [login]", v.Skipped)
	}
	if !v.Pass {
		t.Errorf("Pass = false, want true: %+v", v.Failed())
	}
	if len(v.Checks) != 6 || v.Checks[0].Alpha != 0.01/6 {
		t.Errorf("got %d checks at alpha %v, want 6 at %v (Bonferroni)", len(v.Checks), v.Checks[0].Alpha, 0.01/6)
	}
}

func TestAnalyzeErrors(t *testing.T) {
	s := side{n: 500, med: time.Millisecond, sigma: 0.5, seed: 1}.sample("all")
	tests := []struct {
		name string
		b, c []Sample
		cfg  Config
	}{
		{"no total in baseline", []Sample{{Endpoint: "x"}}, []Sample{s}, Config{}},
		{"no total in canary", []Sample{s}, nil, Config{}},
		{"alpha out of range", []Sample{s}, []Sample{s}, Config{Alpha: 0.7}},
		{"quantile out of range", []Sample{s}, []Sample{s}, Config{Quantile: 100}},
	}
	for _, tt := range tests {
		if _, err := Analyze(tt.b, tt.c, "all", tt.cfg); err == nil {
			t.Errorf("%s: Analyze succeeded, want an error", tt.name)
		}
	}
}
