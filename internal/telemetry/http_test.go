package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/briskhq/brisk/internal/slo"
)

// testAPI is a small API wired like httpapi: the handler reports the
// pattern it routes to with SetRoute.
func testAPI() (*http.ServeMux, http.Handler) {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "0" {
			http.Error(w, "no product 0", http.StatusNotFound)
			return
		}
		ok(w, r)
	})
	mux.HandleFunc("GET /v1/products", ok)
	mux.HandleFunc("POST /v1/checkout", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Query().Get("panic") != "" {
			panic("boom")
		}
		time.Sleep(time.Millisecond)
		w.WriteHeader(http.StatusCreated)
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p := mux.Handler(r); p != "" {
			SetRoute(r.Context(), p)
		}
		mux.ServeHTTP(w, r)
	})
	return mux, h
}

type testServer struct {
	*httptest.Server
	metrics *Metrics
	tracker *slo.Tracker
	spans   *tracetest.InMemoryExporter
	logs    *bytes.Buffer
}

func newTestServer(t *testing.T, cfg HTTPConfig, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	spec := slo.Default()
	ts := &testServer{metrics: NewMetrics(MetricsConfig{Buckets: spec.Buckets()}), tracker: slo.NewTracker(spec, nil),
		spans: tracetest.NewInMemoryExporter(), logs: &bytes.Buffer{}}
	tr, err := NewTracing(context.Background(), TracingConfig{ServiceName: "test", Exporter: ts.spans, SampleRatio: 1, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics, cfg.Tracing, cfg.SLO, cfg.Tracker = ts.metrics, tr, spec, ts.tracker
	if cfg.Logger == nil {
		cfg.Logger = NewLogger(ts.logs, slog.LevelInfo)
	}
	mux, api := testAPI()
	if wrap != nil {
		api = wrap(api)
	}
	hm := NewHTTP(cfg)
	hm.SetRouter(func(r *http.Request) string { _, p := mux.Handler(r); return p })
	root := http.NewServeMux()
	root.Handle("GET /metrics", ts.metrics.Handler())
	root.Handle("/", hm.Middleware(api))
	ts.Server = httptest.NewUnstartedServer(root)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the panic test's stack
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) do(t *testing.T, method, path string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func (ts *testServer) scrape(t *testing.T) string {
	t.Helper()
	res, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestHTTPMetricsLabels(t *testing.T) {
	ts := newTestServer(t, HTTPConfig{}, nil)
	ts.do(t, "GET", "/v1/products/7")
	ts.do(t, "GET", "/v1/products/0")
	ts.do(t, "HEAD", "/v1/products/7")
	ts.do(t, "GET", "/v1/products?q=oak&limit=3")
	ts.do(t, "GET", "/v1/products?limit=3")
	ts.do(t, "POST", "/v1/checkout")
	ts.do(t, "POST", "/v1/checkout?fail=1")
	ts.do(t, "GET", "/nowhere/42")
	ts.do(t, "BREW", "/v1/products/7")

	tests := []struct {
		method, route, journey, class string
		want                          float64
	}{
		{"GET", "/v1/products/{id}", "browse", "2xx", 1},
		{"GET", "/v1/products/{id}", "browse", "4xx", 1},
		{"HEAD", "/v1/products/{id}", "browse", "2xx", 1},
		{"GET", "/v1/products", "search", "2xx", 1},
		{"GET", "/v1/products", "browse", "2xx", 1},
		{"POST", "/v1/checkout", "checkout", "2xx", 1},
		{"POST", "/v1/checkout", "checkout", "5xx", 1},
		{"GET", Unmatched, NoJourney, "4xx", 1},
		{"other", Unmatched, NoJourney, "4xx", 1},
		{"GET", "/v1/products", "search", "5xx", 0}, // exists at zero
	}
	for _, tt := range tests {
		c, err := ts.metrics.requests.GetMetricWithLabelValues(tt.method, tt.route, tt.journey, tt.class)
		if err != nil {
			t.Fatal(err)
		}
		if got := value(t, c); got != tt.want {
			t.Errorf("%s{%s %s %s %s} = %v, want %v", slo.MetricRequests, tt.method, tt.route, tt.journey, tt.class, got, tt.want)
		}
	}
	if got := value(t, ts.metrics.serverErrors.WithLabelValues("POST", "/v1/checkout", "503")); got != 1 {
		t.Errorf("server errors 503 on checkout = %v, want 1", got)
	}
	out := ts.scrape(t)
	for _, want := range []string{
		`brisk_http_request_duration_seconds_bucket{journey="checkout",method="POST",route="/v1/checkout",status_class="2xx",le="0.2"} 1`,
		`brisk_http_requests_in_flight 0`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The live SLO counters saw the same requests.
	st := ts.tracker.Status()
	for _, s := range st.SLOs {
		if s.Name == "checkout-availability" {
			if w := s.Windows[0]; w.Total != 2 || w.Bad != 1 {
				t.Errorf("tracker checkout 5m = %+v, want 1 bad of 2", w)
			}
		}
	}
}

// TestHTTPCardinalityBounded: 10,000 distinct product ids and junk paths
// add no series: labels are route templates, never raw paths.
func TestHTTPCardinalityBounded(t *testing.T) {
	ts := newTestServer(t, HTTPConfig{}, nil)
	ts.do(t, "GET", "/v1/products/1")
	ts.do(t, "GET", "/v1/products/0")
	ts.do(t, "GET", "/junk/1")
	before := seriesCount(ts.scrape(t))
	for i := range 10_000 {
		ts.do(t, "GET", fmt.Sprintf("/v1/products/%d", i+1))
		if i%100 == 0 {
			ts.do(t, "GET", fmt.Sprintf("/junk/%d", i))
		}
	}
	out := ts.scrape(t)
	if after := seriesCount(out); after != before {
		t.Errorf("brisk_ series: %d before, %d after 10,000 distinct ids", before, after)
	}
	if strings.Contains(out, "/v1/products/9999") || strings.Contains(out, "/junk/") {
		t.Error("/metrics holds a raw path")
	}
}

func seriesCount(exposition string) int {
	n := 0
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, "brisk_") {
			n++
		}
	}
	return n
}

// TestPromtoolCheckMetrics lints a real scrape after traffic.
func TestPromtoolCheckMetrics(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: apt-get install -y prometheus")
		}
		t.Skip("promtool not found: apt-get install -y prometheus")
	}
	ts := newTestServer(t, HTTPConfig{}, nil)
	ts.metrics.RegisterDBPool("sqlite", func() DBPoolStats {
		return DBPoolStats{MaxConns: 4, InUse: 1, Idle: 2, Waits: 3, WaitTime: time.Second}
	})
	ts.metrics.RegisterRedisPool(func() RedisPoolStats { return RedisPoolStats{Total: 3, Idle: 1} })
	ts.metrics.RegisterBreaker("payment", func() string { return "closed" })
	ts.metrics.RegisterConcurrency(func() float64 { return 20 }, func() float64 { return 3 })
	InstrumentPayments(nil, ts.metrics, nil)
	for _, p := range []string{"/v1/products/1", "/v1/products/0", "/v1/products?q=x", "/nope"} {
		ts.do(t, "GET", p)
	}
	ts.do(t, "POST", "/v1/checkout?fail=1")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(ts.scrape(t))
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestHTTPRouterFallback: a request turned away before routing (here a
// 429 from an outer limiter) is still labelled with its route.
func TestHTTPRouterFallback(t *testing.T) {
	limiter := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Limit") != "" {
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	ts := newTestServer(t, HTTPConfig{}, limiter)
	ts.do(t, "POST", "/v1/checkout", "X-Limit", "1")
	if got := value(t, ts.metrics.requests.WithLabelValues("POST", "/v1/checkout", "checkout", "4xx")); got != 1 {
		t.Errorf("limited checkout counted %v times under its route, want 1", got)
	}
}

func TestHTTPPanicCounted(t *testing.T) {
	ts := newTestServer(t, HTTPConfig{}, nil)
	req, _ := http.NewRequest("POST", ts.URL+"/v1/checkout?panic=1", nil)
	if res, err := ts.Client().Do(req); err == nil {
		res.Body.Close() // the server drops the connection
	}
	if got := value(t, ts.metrics.requests.WithLabelValues("POST", "/v1/checkout", "checkout", "5xx")); got != 1 {
		t.Errorf("panicking checkout counted %v times as 5xx, want 1", got)
	}
	if got := value(t, ts.metrics.inFlight); got != 0 {
		t.Errorf("in flight after a panic = %v, want 0", got)
	}
}

// TestHTTPTrace: an incoming traceparent is continued, the span is named
// after the route template, and the access log line carries its ids.
func TestHTTPTrace(t *testing.T) {
	ts := newTestServer(t, HTTPConfig{AccessLogRatio: 1}, nil)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ts.do(t, "GET", "/v1/products/7", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	spans := ts.spans.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span trace %s parent %s, want the traceparent's", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	if s.Name != "GET /v1/products/{id}" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want GET /v1/products/{id} server", s.Name, s.SpanKind)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(ts.logs.Bytes()), &line); err != nil {
		t.Fatalf("access log %q: %v", ts.logs, err)
	}
	if line["trace_id"] != traceID || line["span_id"] != s.SpanContext.SpanID().String() || line["route"] != "/v1/products/{id}" || line["status"] != float64(200) {
		t.Errorf("access log = %v", line)
	}
}

func TestAccessLogSampling(t *testing.T) {
	tests := []struct {
		name  string
		cfg   HTTPConfig
		path  string
		lines int
	}{
		{"success at ratio 0", HTTPConfig{}, "/v1/products/7", 0},
		{"success at ratio 1", HTTPConfig{AccessLogRatio: 1}, "/v1/products/7", 5},
		{"client error always", HTTPConfig{}, "/v1/products/0", 5},
		{"unmatched always", HTTPConfig{}, "/nope", 5},
		{"slow always", HTTPConfig{SlowRequest: time.Nanosecond}, "/v1/products/7", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.cfg, nil)
			for range 5 {
				ts.do(t, "GET", tt.path)
			}
			if got := strings.Count(ts.logs.String(), `"msg":"request"`); got != tt.lines {
				t.Errorf("%d access log lines, want %d:\n%s", got, tt.lines, ts.logs)
			}
		})
	}
	t.Run("ratio 0.5", func(t *testing.T) {
		ts := newTestServer(t, HTTPConfig{AccessLogRatio: 0.5}, nil)
		for range 400 {
			ts.do(t, "GET", "/v1/products/7")
		}
		if got := strings.Count(ts.logs.String(), `"msg":"request"`); got < 120 || got > 280 {
			t.Errorf("%d of 400 successes logged at ratio 0.5", got)
		}
	})
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("%v is neither a counter nor a gauge", m.Desc())
	return 0
}

// TestHTTPHeadSampling: requests left out by the sampler get no recorded
// span but still a trace id (in the logs and the context, continuing an
// incoming one); a sampled traceparent is always followed.
func TestHTTPHeadSampling(t *testing.T) {
	const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name      string
		ratio     float64
		header    string
		spans     int
		wantTrace string // "" any valid id
	}{
		{"new trace, not sampled", 1e-12, "", 0, ""},
		{"new trace, sampled", 1, "", 1, ""},
		{"sampled parent at a tiny ratio", 1e-12, "00-" + caller + "-00f067aa0ba902b7-01", 1, caller},
		{"unsampled parent at ratio 1", 1, "00-" + caller + "-00f067aa0ba902b7-00", 0, caller},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := tracetest.NewInMemoryExporter()
			tr, err := NewTracing(context.Background(), TracingConfig{Exporter: spans, SampleRatio: tt.ratio, Getenv: func(string) string { return "" }})
			if err != nil {
				t.Fatal(err)
			}
			var seen trace.SpanContext
			api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = trace.SpanContextFromContext(r.Context())
				SetRoute(r.Context(), "GET /v1/products/{id}")
			})
			var logs bytes.Buffer
			h := NewHTTP(HTTPConfig{Tracing: tr, Logger: NewLogger(&logs, slog.LevelInfo), AccessLogRatio: 1}).Middleware(api)
			req := httptest.NewRequest("GET", "/v1/products/7", nil)
			if tt.header != "" {
				req.Header.Set("traceparent", tt.header)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if n := len(spans.GetSpans()); n != tt.spans {
				t.Errorf("%d spans exported, want %d", n, tt.spans)
			}
			if !seen.IsValid() || (tt.wantTrace != "" && seen.TraceID().String() != tt.wantTrace) {
				t.Errorf("handler saw span context %v, want a valid one in trace %q", seen, tt.wantTrace)
			}
			if tt.spans == 1 && spans.GetSpans()[0].SpanContext.TraceID() != seen.TraceID() {
				t.Errorf("exported span's trace %v, handler saw %v", spans.GetSpans()[0].SpanContext.TraceID(), seen.TraceID())
			}
			if !strings.Contains(logs.String(), `"trace_id":"`+seen.TraceID().String()+`"`) {
				t.Errorf("access log lacks the trace id %s: %s", seen.TraceID(), logs.String())
			}
		})
	}
}

// TestLoneRequests: Begin and End, for requests answered outside
// Middleware, count like Middleware does, and Begin sends a request to
// Middleware when tracing must see it: a sampled new trace, or a
// traceparent to continue.
func TestLoneRequests(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name   string
		ratio  float64 // < 0: no tracing
		header string
		ok     bool
	}{
		{"no tracing", -1, "", true},
		{"new trace, not sampled", 1e-12, "", true},
		{"new trace, sampled", 1, "", false},
		{"traceparent", 1e-12, parent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr *Tracing
			if tt.ratio >= 0 {
				var err error
				tr, err = NewTracing(context.Background(), TracingConfig{Exporter: tracetest.NewInMemoryExporter(), SampleRatio: tt.ratio, Getenv: func(string) string { return "" }})
				if err != nil {
					t.Fatal(err)
				}
			}
			spec := slo.Default()
			m := NewMetrics(MetricsConfig{Buckets: spec.Buckets()})
			var logs bytes.Buffer
			h := NewHTTP(HTTPConfig{Metrics: m, Tracing: tr, SLO: spec, Logger: NewLogger(&logs, slog.LevelInfo), AccessLogRatio: 1})
			req := httptest.NewRequest("GET", "/v1/products/7", nil)
			if tt.header != "" {
				req.Header.Set("traceparent", tt.header)
			}
			l, ok := h.Begin(req)
			if ok != tt.ok {
				t.Fatalf("Begin ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if len(l.ID()) != 32 || strings.Trim(l.ID(), "0123456789abcdef") != "" {
				t.Fatalf("request id %q is not a trace id", l.ID())
			}
			w := httptest.NewRecorder()
			w.Header().Set("X-Request-Id", l.ID())
			time.Sleep(3 * time.Millisecond) // End records the time since Begin
			h.End(w, req, l, h.Route("GET /v1/products/{id}"), http.StatusNotModified, 0)
			c, err := m.requests.GetMetricWithLabelValues("GET", "/v1/products/{id}", "browse", "3xx")
			if err != nil {
				t.Fatal(err)
			}
			var d dto.Metric
			if err := c.Write(&d); err != nil {
				t.Fatal(err)
			}
			if got := d.GetCounter().GetValue(); got != 1 {
				t.Errorf("GET /v1/products/{id} 3xx count = %v, want 1", got)
			}
			var line struct {
				Route     string  `json:"route"`
				Status    int     `json:"status"`
				RequestID string  `json:"request_id"`
				TraceID   string  `json:"trace_id"`
				Duration  float64 `json:"duration_ms"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("access log %q: %v", logs.String(), err)
			}
			if line.Route != "/v1/products/{id}" || line.Status != 304 || line.RequestID != l.ID() || line.TraceID != l.ID() || line.Duration < 3 {
				t.Errorf("access log %+v, want route, status 304, request and trace id %s, >= 3 ms", line, l.ID())
			}
		})
	}
}
