package load

import (
	"reflect"
	"testing"
	"time"
)

var budgetCases = []struct {
	in      string
	want    Budget
	wantErr bool
}{
	{in: "", want: nil},
	{in: " ; ", want: nil},
	{in: "checkout:p99<200ms,errors<0.1%;product:p99<50ms", want: Budget{
		{"checkout", "p99", "<", float64(200 * time.Millisecond)},
		{"checkout", "errors", "<", 0.1},
		{"product", "p99", "<", float64(50 * time.Millisecond)},
	}},
	{in: "*:p99.9<=1s", want: Budget{{"all", "p99.9", "<=", float64(time.Second)}}},
	{in: "all: max < 2s , mean<1.5ms ; search:P50<500us", want: Budget{
		{"all", "max", "<", float64(2 * time.Second)},
		{"all", "mean", "<", float64(1500 * time.Microsecond)},
		{"search", "p50", "<", float64(500 * time.Microsecond)},
	}},
	{in: "all:rate>=4900/s,errors<=0", want: Budget{{"all", "rate", ">=", 4900}, {"all", "errors", "<=", 0}}},
	{in: "all:rate>10.5", want: Budget{{"all", "rate", ">", 10.5}}},
	{in: "all:p100<1s,p099.00<1s", want: Budget{{"all", "p100", "<", float64(time.Second)}, {"all", "p99", "<", float64(time.Second)}}},
	{in: "checkout", wantErr: true},
	{in: "checkout:", wantErr: true},
	{in: ":p99<1s", wantErr: true},
	{in: "a b:p99<1s", wantErr: true},
	{in: "checkout:p99", wantErr: true},
	{in: "checkout:p99<", wantErr: true},
	{in: "checkout:p99<fast", wantErr: true},
	{in: "checkout:p99<200", wantErr: true},
	{in: "checkout:p99<-1ms", wantErr: true},
	{in: "checkout:p99<48h", wantErr: true},
	{in: "checkout:p0<1s", wantErr: true},
	{in: "checkout:p101<1s", wantErr: true},
	{in: "checkout:pNaN<1s", wantErr: true},
	{in: "checkout:latency<1s", wantErr: true},
	{in: "checkout:errors<1", wantErr: true},
	{in: "checkout:errors<101%", wantErr: true},
	{in: "checkout:errors<-1%", wantErr: true},
	{in: "checkout:errors<NaN%", wantErr: true},
	{in: "checkout:rate>inf", wantErr: true},
	{in: "checkout:rate>-3", wantErr: true},
	{in: "checkout:p99=1s", wantErr: true},
	{in: "checkout:p99<<1s", wantErr: true},
	{in: "checkout:p99<1s,", wantErr: true},
}

func TestParseBudget(t *testing.T) {
	for _, tt := range budgetCases {
		got, err := ParseBudget(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseBudget(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBudgetString(t *testing.T) {
	b, err := ParseBudget("checkout:p99<200ms,errors<0.1%;product:p99.9<=1.5s;all:rate>=100,mean<1ms")
	if err != nil {
		t.Fatal(err)
	}
	const want = "checkout:p99<200ms,errors<0.1%;product:p99.9<=1.5s;all:rate>=100,mean<1ms"
	if got := b.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// FuzzParseBudget checks that ParseBudget never panics and that whatever it
// accepts prints back to an equal budget.
func FuzzParseBudget(f *testing.F) {
	for _, tt := range budgetCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBudget(s)
		if err != nil {
			return
		}
		back, err := ParseBudget(b.String())
		if err != nil {
			t.Fatalf("ParseBudget(%q) ok, but its String %q does not parse: %v", s, b.String(), err)
		}
		if !reflect.DeepEqual(back, b) {
			t.Fatalf("ParseBudget(%q) = %v; reparsed from %q = %v", s, b, b.String(), back)
		}
	})
}

// testReport builds a report from recorded latencies without a run.
func testReport(phase time.Duration, eps map[string][]time.Duration, failures map[string]int) *Report {
	r := &Report{Duration: phase}
	total := newEndpointRecorder(AllEndpoints)
	for _, name := range []string{"product", "search", "checkout"} {
		lats, ok := eps[name]
		if !ok {
			continue
		}
		rec := newEndpointRecorder(name)
		for _, l := range lats {
			rec.response(0, l, 200)
			total.response(0, l, 200)
		}
		for range failures[name] {
			rec.response(0, time.Millisecond, 503)
			total.response(0, time.Millisecond, 503)
		}
		r.Endpoints = append(r.Endpoints, rec.report(phase))
	}
	r.Total = total.report(phase)
	return r
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestCheck(t *testing.T) {
	// checkout: 990 fast (10ms) + 10 slow (300ms) + 2 errors; p99 = 10ms, p99.9 = 300ms.
	checkout := append(repeat(10*time.Millisecond, 988), repeat(300*time.Millisecond, 10)...)
	r := testReport(10*time.Second, map[string][]time.Duration{
		"checkout": checkout,
		"product":  repeat(2*time.Millisecond, 4000),
	}, map[string]int{"checkout": 2})

	tests := []struct {
		budget   string
		wantHeld []bool
	}{
		{"checkout:p99<20ms", []bool{true}},
		{"checkout:p99.9<20ms", []bool{false}},
		{"checkout:p99.9<=301ms,max<400ms", []bool{true, true}},
		{"checkout:errors<0.1%", []bool{false}},
		{"checkout:errors<0.3%", []bool{true}},
		{"checkout:rate>=100", []bool{true}}, // 1000 requests / 10 s
		{"checkout:rate>100", []bool{false}},
		{"product:p50<3ms;product:mean<=2.01ms", []bool{true, true}},
		{"all:p90<5ms,errors<0.1%", []bool{false, true}},
		{"*:rate>=500", []bool{true}},
		{"search:p99<1s", []bool{false}}, // no requests: broken
		{"login:p99<1s", []bool{false}},  // not in the run: broken
	}
	for _, tt := range tests {
		b, err := ParseBudget(tt.budget)
		if err != nil {
			t.Fatal(err)
		}
		res := r.Check(b)
		var held []bool
		for _, x := range res {
			held = append(held, x.Held)
		}
		if !reflect.DeepEqual(held, tt.wantHeld) {
			t.Errorf("Check(%q) held = %v, want %v (results %+v)", tt.budget, held, tt.wantHeld, res)
		}
		if Held(res) != !slicesContainsFalse(tt.wantHeld) {
			t.Errorf("Held(Check(%q)) = %v", tt.budget, Held(res))
		}
	}
	res := r.Check(Budget{{"checkout", "errors", "<", 0.1}})
	if got := res[0].Actual; got < 0.19 || got > 0.21 {
		t.Errorf("checkout error rate = %v%%, want 0.2%%", got)
	}
}

func slicesContainsFalse(b []bool) bool {
	for _, x := range b {
		if !x {
			return true
		}
	}
	return false
}
