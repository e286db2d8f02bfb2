package load

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Stage is one piece of a rate profile: the arrival rate moves linearly from
// From to To requests per second over Duration.
type Stage struct {
	From     float64       // requests per second at the start of the stage
	To       float64       // requests per second at the end of the stage
	Duration time.Duration // how long the stage lasts
}

// String formats s as "from:to/duration".
func (s Stage) String() string {
	return formatRate(s.From) + ":" + formatRate(s.To) + "/" + s.Duration.String()
}

// Arrival is how send times are spread over a rate profile.
type Arrival string

// Arrival processes.
const (
	// Constant spaces sends evenly: at rate r, one every 1/r seconds.
	Constant Arrival = "constant"
	// Poisson draws exponential gaps with mean 1/r, as independent users
	// arriving at random would.
	Poisson Arrival = "poisson"
)

// ParseArrival returns the Arrival named s ("constant" or "poisson").
func ParseArrival(s string) (Arrival, error) {
	switch a := Arrival(strings.ToLower(strings.TrimSpace(s))); a {
	case Constant, Poisson:
		return a, nil
	}
	return "", fmt.Errorf("parse arrival %q: want constant or poisson", s)
}

// maxProfile bounds the length of a rate profile.
const maxProfile = 365 * 24 * time.Hour

// ParseRamp parses a rate profile such as "0:5000/30s,5000/60s,0/10s".
// Each comma-separated stage is "start:end/duration" or "end/duration"; a
// stage without a start begins at the rate the previous stage ended at (the
// first such stage is a constant rate). Rates are requests per second.
func ParseRamp(s string) ([]Stage, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("parse ramp: empty")
	}
	var stages []Stage
	prev := math.NaN()
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		rates, dur, ok := strings.Cut(part, "/")
		if !ok {
			return nil, fmt.Errorf("parse ramp stage %q: want [start:]end/duration", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		if err != nil {
			return nil, fmt.Errorf("parse ramp stage %q: %w", part, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("parse ramp stage %q: duration must be positive", part)
		}
		var from, to float64
		if a, b, ok := strings.Cut(rates, ":"); ok {
			if from, err = parseRate(a); err != nil {
				return nil, fmt.Errorf("parse ramp stage %q: %w", part, err)
			}
			if to, err = parseRate(b); err != nil {
				return nil, fmt.Errorf("parse ramp stage %q: %w", part, err)
			}
		} else {
			if to, err = parseRate(rates); err != nil {
				return nil, fmt.Errorf("parse ramp stage %q: %w", part, err)
			}
			from = prev
			if math.IsNaN(from) {
				from = to
			}
		}
		stages = append(stages, Stage{From: from, To: to, Duration: d})
		prev = to
		if err := checkLength(stages); err != nil {
			return nil, fmt.Errorf("parse ramp: %w", err)
		}
	}
	return stages, nil
}

// FormatRamp formats stages so that ParseRamp reads them back.
func FormatRamp(stages []Stage) string {
	parts := make([]string, len(stages))
	for i, s := range stages {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	r, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		return 0, fmt.Errorf("bad rate %q: want a finite rate >= 0", s)
	}
	return r, nil
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'g', -1, 64) }

// checkLength reports a profile longer than maxProfile, without overflow.
func checkLength(stages []Stage) error {
	var d time.Duration
	for _, s := range stages {
		if s.Duration > maxProfile-d {
			return fmt.Errorf("rate profile longer than %v", maxProfile)
		}
		d += s.Duration
	}
	return nil
}

// totalDuration is how long a profile lasts.
func totalDuration(stages []Stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.Duration
	}
	return d
}

// expectedCount is how many requests a profile schedules on average.
func expectedCount(stages []Stage) float64 {
	var n float64
	for _, s := range stages {
		n += (s.From + s.To) / 2 * s.Duration.Seconds()
	}
	return n
}

// schedule turns a rate profile into send times. It maps a sequence of
// points u_0 < u_1 < ... on the "expected count" axis through the inverse of
// the cumulative rate Λ(t): u_i = i gives constant spacing, u_i = a sum of
// Exp(1) draws gives a (non-homogeneous) Poisson process. Memory is constant.
type schedule struct {
	stages  []Stage
	poisson bool
	rng     *rand.Rand

	u      float64       // the next point on the count axis
	stage  int           // stage holding u
	base   float64       // Λ at the start of stages[stage]
	offset time.Duration // time at the start of stages[stage]
}

func newSchedule(stages []Stage, arrival Arrival, seed uint64) *schedule {
	s := &schedule{stages: stages, poisson: arrival == Poisson}
	if s.poisson {
		s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		s.u = s.rng.ExpFloat64()
	}
	return s
}

// next returns the offset from the start of the run of the next send, or
// false when the profile is over.
func (s *schedule) next() (time.Duration, bool) {
	for s.stage < len(s.stages) {
		st := s.stages[s.stage]
		sec := st.Duration.Seconds()
		total := (st.From + st.To) / 2 * sec
		x := s.u - s.base
		if x >= total {
			s.base += total
			s.offset += st.Duration
			s.stage++
			continue
		}
		// Solve From*τ + k*τ²/2 = x for τ, k = (To-From)/sec, in the form
		// that stays exact when From is 0 and stable when k is small.
		k := (st.To - st.From) / sec
		tau := 0.0
		if x > 0 {
			tau = 2 * x / (st.From + math.Sqrt(st.From*st.From+2*k*x))
		}
		if math.IsNaN(tau) || tau > sec {
			tau = sec
		}
		if s.poisson {
			s.u += s.rng.ExpFloat64()
		} else {
			s.u++
		}
		return s.offset + time.Duration(tau*float64(time.Second)), true
	}
	return 0, false
}
