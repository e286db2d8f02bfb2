package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestReportJSONRoundTrip(t *testing.T) {
	r := testReport(5*time.Second, map[string][]time.Duration{
		"product":  append(repeat(time.Millisecond, 990), repeat(70*time.Millisecond, 10)...),
		"checkout": repeat(40*time.Millisecond, 100),
	}, map[string]int{"checkout": 1})
	r.Scenario, r.RunID, r.Orders = "shop", "abc", 99
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if back.Scenario != "shop" || back.RunID != "abc" || back.Orders != 99 || len(back.Endpoints) != 2 {
		t.Errorf("ReadReport lost fields: %+v", back)
	}
	for _, name := range []string{"product", "checkout", "all"} {
		a, b := r.Endpoint(name), back.Endpoint(name)
		if a.Latency != b.Latency || a.Requests != b.Requests || a.Errors != b.Errors || fmt.Sprint(a.Statuses) != fmt.Sprint(b.Statuses) {
			t.Errorf("%s: round trip %+v -> %+v", name, a, b)
		}
		// The histogram survives: any percentile can still be asked.
		if a.Percentile(99.5) != b.Percentile(99.5) || b.Percentile(99.5) == 0 {
			t.Errorf("%s: p99.5 %v -> %v", name, a.Percentile(99.5), b.Percentile(99.5))
		}
	}
	if _, err := ReadReport(strings.NewReader(`{"endpoints":[{"name":"x","histogram":"!!"}]}`)); err == nil {
		t.Errorf("ReadReport accepted a corrupt histogram")
	}
	if _, err := ReadReport(strings.NewReader(`{`)); err == nil {
		t.Errorf("ReadReport accepted truncated JSON")
	}
}

func TestWriteTable(t *testing.T) {
	r := testReport(time.Second, map[string][]time.Duration{
		"product": repeat(1500*time.Microsecond, 100),
	}, map[string]int{"product": 5})
	r.Scenario, r.Target, r.Arrival, r.Profile = "product", "http://x", Constant, "100:100/1s"
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	for _, want := range []string{"product scenario against http://x", "endpoint", "p99.9", "1.50ms", "4.76%", "product statuses: 200=100 503=5"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	res := r.Check(Budget{{"product", "p99", "<", float64(time.Millisecond)}, {"all", "errors", "<", 10}})
	buf.Reset()
	if err := WriteBudget(&buf, res); err != nil {
		t.Fatal(err)
	}
	out = buf.String()
	t.Log("\n" + out)
	if !strings.Contains(out, "product:p99<1ms  1.50ms  BROKEN") || !strings.Contains(out, "all:errors<10%") || !strings.Contains(out, "held") {
		t.Errorf("budget table:\n%s", out)
	}
}

func TestCompare(t *testing.T) {
	base := testReport(10*time.Second, map[string][]time.Duration{
		"product":  repeat(10*time.Millisecond, 1000),
		"checkout": repeat(100*time.Millisecond, 1000),
		"search":   repeat(200*time.Microsecond, 1000),
	}, nil)
	cur := testReport(10*time.Second, map[string][]time.Duration{
		"product":  repeat(10500*time.Microsecond, 1000), // +5%: within tolerance
		"checkout": repeat(130*time.Millisecond, 1000),   // +30%: regression
		"search":   repeat(400*time.Microsecond, 1000),   // +100% but < 1ms: noise
	}, map[string]int{"product": 5}) // errors 0% -> 0.5%: regression
	diffs := Compare(base, cur)
	regressed := map[string]bool{}
	for _, d := range diffs {
		if d.Regression {
			regressed[d.Endpoint+" "+d.Metric] = true
		}
	}
	want := map[string]bool{
		"checkout p50": true, "checkout p90": true, "checkout p99": true, "checkout p99.9": true,
		"product errors": true,
		"all p90":        true, "all p99": true, "all p99.9": true, "all errors": true,
	}
	if fmt.Sprint(regressed) != fmt.Sprint(want) {
		t.Errorf("regressions = %v\nwant %v", regressed, want)
	}
	var buf bytes.Buffer
	if err := WriteComparison(&buf, diffs); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	if !strings.Contains(buf.String(), "+30.0%") || !strings.Contains(buf.String(), "9 regression(s)") {
		t.Errorf("comparison table:\n%s", buf.String())
	}
	if n := Regressions(Compare(base, base)); n != 0 {
		t.Errorf("a report compared with itself has %d regressions", n)
	}
}

// TestRecorderConstantMemory records a million latencies and checks that
// the recorder's memory does not depend on the number of samples.
func TestRecorderConstantMemory(t *testing.T) {
	rec := newEndpointRecorder("product")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		rec.response(time.Microsecond, time.Duration(i%50_000)*time.Microsecond, [3]int{200, 201, 503}[i%3])
	}
	for range 1000 {
		rec.failure(0, time.Second, outcomeTimeout)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(rec)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grew > 64<<10 {
		t.Errorf("heap grew %d bytes over 1e6 samples, want < 64 KiB", grew)
	}
	allocs := after.Mallocs - before.Mallocs
	if allocs > 100 {
		t.Errorf("%d allocations for 1e6 samples, want none per sample", allocs)
	}
	r := rec.report(time.Second)
	if r.Requests != 1_001_000 || r.Statuses["200"] != 333_334 || r.Statuses["503"] != 333_333 || r.Errors != 334_333 {
		t.Errorf("report = %d requests, %d errors, %v", r.Requests, r.Errors, r.Statuses)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, outcomeTimeout},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, outcomeTimeout},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, outcomeConnRefused},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), outcomeConnReset},
		{io.ErrUnexpectedEOF, outcomeEOF},
		{errors.New("tls: bad certificate"), outcomeError},
		{fasthttp.ErrTimeout, outcomeTimeout},
		{fasthttp.ErrDialTimeout, outcomeTimeout},
		{fasthttp.ErrConnectionClosed, outcomeConnClosed},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestParseOrderID(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"id":"ord_123","status":"paid"}`, "ord_123"},
		{`{"id":42}`, "42"},
		{`{"id":""}`, ""},
		{`{"id":null}`, ""},
		{`{"status":"paid"}`, ""},
		{`not json`, ""},
	}
	for _, tt := range tests {
		if got := string(parseOrderID([]byte(tt.in))); got != tt.want {
			t.Errorf("parseOrderID(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkSchedule measures the scheduler's cost per send.
func BenchmarkSchedule(b *testing.B) {
	b.ReportAllocs()
	s := newSchedule([]Stage{{0, 1e9, time.Hour}}, Poisson, 1)
	for b.Loop() {
		if _, ok := s.next(); !ok {
			b.Fatal("schedule ended")
		}
	}
}

// BenchmarkRecord measures recording one response.
func BenchmarkRecord(b *testing.B) {
	b.ReportAllocs()
	rec := newEndpointRecorder("product")
	for b.Loop() {
		rec.response(5*time.Microsecond, 1234*time.Microsecond, 200)
	}
}

// FuzzReadReport checks that reading a report never panics.
func FuzzReadReport(f *testing.F) {
	var buf bytes.Buffer
	WriteJSON(&buf, testReport(time.Second, map[string][]time.Duration{"product": repeat(time.Millisecond, 10)}, nil))
	f.Add(buf.String())
	f.Add(`{"endpoints":[{"name":"x","histogram":"HISTFAAAACR42pNpmSzMwMDAzQABMJoRTM+Y1Mgk"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ReadReport(strings.NewReader(s))
		if err != nil {
			return
		}
		r.Check(Budget{{"all", "p99", "<", 1}, {"x", "p99.9", "<", 1}})
		Compare(r, r)
		WriteTable(io.Discard, r)
	})
}

// BenchmarkWorkerDo measures one product request on the hot path (client
// included) against a local server.
func BenchmarkWorkerDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":1}`))
	}))
	defer srv.Close()
	cfg := Config{Target: srv.URL, Scenario: ScenarioProduct, Rate: 1, Duration: time.Second, Seed: 1}.withDefaults()
	target, _ := url.Parse(srv.URL)
	r := &runner{cfg: cfg, ctx: context.Background(), base: srv.URL, hc: newHostClient(target, 4, time.Second)}
	w := newWorker(r, 1)
	b.ReportAllocs()
	for b.Loop() {
		if status, err := w.do(job{op: opProduct}); err != nil || status != 200 {
			b.Fatal(status, err)
		}
	}
}
