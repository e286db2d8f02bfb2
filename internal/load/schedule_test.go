package load

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestParseRamp(t *testing.T) {
	tests := []struct {
		in      string
		want    []Stage
		wantErr bool
	}{
		{in: "0:5000/30s,5000/60s", want: []Stage{{0, 5000, 30 * time.Second}, {5000, 5000, time.Minute}}},
		{in: "100/10s", want: []Stage{{100, 100, 10 * time.Second}}},
		{in: " 10:20/1s , 5/2s,0/500ms ", want: []Stage{{10, 20, time.Second}, {20, 5, 2 * time.Second}, {5, 0, 500 * time.Millisecond}}},
		{in: "0:1e3/1m,2.5:7.5/1s", want: []Stage{{0, 1000, time.Minute}, {2.5, 7.5, time.Second}}},
		{in: "", wantErr: true},
		{in: "100", wantErr: true},
		{in: "100/", wantErr: true},
		{in: "100/0s", wantErr: true},
		{in: "100/-1s", wantErr: true},
		{in: "-5/1s", wantErr: true},
		{in: "x/1s", wantErr: true},
		{in: "1:x/1s", wantErr: true},
		{in: "NaN/1s", wantErr: true},
		{in: "inf/1s", wantErr: true},
		{in: "100/10", wantErr: true},
		{in: "100/10s,", wantErr: true},
		{in: "1:2:3/1s", wantErr: true},
		{in: "1/2000000h,1/2000000h", wantErr: true},
		{in: "1/8761h", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRamp(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRamp(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		if err == nil {
			back, err := ParseRamp(FormatRamp(got))
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("ParseRamp(FormatRamp(%v)) = %v, %v", got, back, err)
			}
		}
	}
}

func TestParseArrival(t *testing.T) {
	tests := []struct {
		in      string
		want    Arrival
		wantErr bool
	}{
		{"constant", Constant, false},
		{"Poisson", Poisson, false},
		{"", "", true},
		{"uniform", "", true},
	}
	for _, tt := range tests {
		got, err := ParseArrival(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseArrival(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// drain returns every send offset of a schedule.
func drain(s *schedule) []time.Duration {
	var out []time.Duration
	for {
		d, ok := s.next()
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

func TestScheduleConstant(t *testing.T) {
	tests := []struct {
		name   string
		stages []Stage
		want   int
	}{
		{"flat", []Stage{{100, 100, 10 * time.Second}}, 1000},
		{"ramp up", []Stage{{0, 1000, 10 * time.Second}}, 5000},
		{"ramp down", []Stage{{1000, 0, 10 * time.Second}}, 5000},
		{"up, hold, down", []Stage{{0, 200, time.Second}, {200, 200, time.Second}, {200, 0, time.Second}}, 400},
		{"idle stage", []Stage{{0, 0, time.Second}, {10, 10, time.Second}}, 10},
		{"fractional", []Stage{{2.5, 2.5, time.Second}}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := drain(newSchedule(tt.stages, Constant, 1))
			if len(got) != tt.want {
				t.Fatalf("%d sends, want %d", len(got), tt.want)
			}
			total := totalDuration(tt.stages)
			for i, d := range got {
				if d < 0 || d > total || (i > 0 && d < got[i-1]) {
					t.Fatalf("send %d at %v (previous %v, total %v): out of order or range", i, d, got[max(i-1, 0)], total)
				}
			}
		})
	}
	// Evenly spaced at a constant rate.
	got := drain(newSchedule([]Stage{{4, 4, time.Second}}, Constant, 1))
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("4/s for 1s: %v, want %v", got, want)
	}
	// A linear ramp from 0 to r over T sends n at sqrt(2nT/r).
	got = drain(newSchedule([]Stage{{0, 1000, 10 * time.Second}}, Constant, 1))
	for _, n := range []int{1, 100, 2500, 4999} {
		want := time.Duration(math.Sqrt(2*float64(n)*10/1000) * float64(time.Second))
		if d := got[n] - want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("ramp send %d at %v, want %v", n, got[n], want)
		}
	}
}

// TestSchedulePoisson checks the mean rate and the exponential gaps of
// Poisson arrivals (coefficient of variation 1, where constant has 0).
func TestSchedulePoisson(t *testing.T) {
	const rate, secs = 1000.0, 100
	got := drain(newSchedule([]Stage{{rate, rate, secs * time.Second}}, Poisson, 7))
	want := rate * secs
	if n := float64(len(got)); math.Abs(n-want)/want > 0.02 {
		t.Errorf("%v sends, want %v ± 2%%", n, want)
	}
	var sum, sumSq float64
	for i := 1; i < len(got); i++ {
		g := (got[i] - got[i-1]).Seconds()
		sum += g
		sumSq += g * g
	}
	n := float64(len(got) - 1)
	mean := sum / n
	cv := math.Sqrt(sumSq/n-mean*mean) / mean
	if math.Abs(mean-1/rate)/(1/rate) > 0.02 || math.Abs(cv-1) > 0.05 {
		t.Errorf("gap mean %v, cv %.3f; want %v and 1", mean, cv, 1/rate)
	}
	// Different seeds, different arrivals; same seed, same arrivals.
	a := drain(newSchedule([]Stage{{100, 100, time.Second}}, Poisson, 1))
	b := drain(newSchedule([]Stage{{100, 100, time.Second}}, Poisson, 1))
	c := drain(newSchedule([]Stage{{100, 100, time.Second}}, Poisson, 2))
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Errorf("Poisson schedules do not follow their seed")
	}
	// Poisson over a ramp: the count follows the area.
	got = drain(newSchedule([]Stage{{0, 2000, 50 * time.Second}}, Poisson, 3))
	if n := float64(len(got)); math.Abs(n-50000)/50000 > 0.02 {
		t.Errorf("Poisson ramp: %v sends, want 50000 ± 2%%", n)
	}
}

// FuzzParseRamp checks that ParseRamp never panics, that what it accepts
// prints back to equal stages, and that the schedule over them is ordered.
func FuzzParseRamp(f *testing.F) {
	for _, s := range []string{"0:5000/30s,5000/60s", "100/10s", "1:2/1ms,0/1ms", "1e3/1h", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseRamp(s)
		if err != nil {
			return
		}
		back, err := ParseRamp(FormatRamp(st))
		if err != nil || !reflect.DeepEqual(back, st) {
			t.Fatalf("ParseRamp(%q) = %v; reparsed from %q = %v, %v", s, st, FormatRamp(st), back, err)
		}
		sc := newSchedule(st, Poisson, 1)
		total := totalDuration(st)
		prev := time.Duration(-1)
		for range 1000 {
			d, ok := sc.next()
			if !ok {
				break
			}
			if d < prev || d > total {
				t.Fatalf("ParseRamp(%q): send at %v after %v (total %v)", s, d, prev, total)
			}
			prev = d
		}
	})
}
