package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.yaml.in/yaml/v3"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/redis/redistest"
	"github.com/briskhq/brisk/internal/slo"
	"github.com/briskhq/brisk/internal/sqlite"
)

// needTool returns the path of a binary from Debian's prometheus package;
// in CI its absence fails the test.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: apt-get install -y prometheus", name)
		}
		t.Skipf("%s not found: apt-get install -y prometheus", name)
	}
	return p
}

// seriesOf returns the brisk_ series lines of an exposition.
func seriesOf(exposition string) []string {
	var out []string
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, "brisk_") {
			out = append(out, l[:strings.LastIndexByte(l, ' ')])
		}
	}
	return out
}

// shop sends a little of every journey: browse, search, cart, checkout.
func shop(t *testing.T, c *client, key string) {
	t.Helper()
	token := c.login("shopper@brisk.test", "shopper-pass-1")
	shopper := c.as(token)
	c.do("GET", "/v1/products/3", nil).want(t, 200, "product")
	c.do("GET", "/v1/products?limit=5", nil).want(t, 200, "list")
	c.do("GET", "/v1/products?q=oak", nil).want(t, 200, "search")
	c.do("GET", "/v1/categories", nil).want(t, 200, "categories")
	c.do("GET", "/v1/products/0", nil)
	c.do("GET", "/no/such/path", nil)
	shopper.do("PUT", "/v1/cart/items/5", map[string]int{"quantity": 1}).want(t, 200, "cart")
	shopper.do("GET", "/v1/cart", nil).want(t, 200, "get cart")
	shopper.do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_visa"}, "Idempotency-Key", key).want(t, 201, "checkout")
}

// TestMetricsEndToEnd: a real /metrics scrape after traffic passes
// `promtool check metrics`, its series stay bounded after 10,000 distinct
// product ids, and /debug/slo counted the same requests.
func TestMetricsEndToEnd(t *testing.T) {
	promtool := needTool(t, "promtool")
	_, c, _ := startUp(t)
	shop(t, c, "metrics-1")

	scrape := func() string {
		r := c.do("GET", "/metrics", nil).want(t, 200, "metrics")
		return string(r.body)
	}
	out := scrape()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(msg)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, msg)
	}
	for _, want := range []string{
		`brisk_http_requests_total{journey="checkout",method="POST",route="/v1/checkout",status_class="2xx"} 1`,
		`brisk_http_requests_total{journey="search",method="GET",route="/v1/products",status_class="2xx"} 1`,
		`brisk_http_requests_total{journey="browse",method="GET",route="/v1/products/{id}",status_class="4xx"} 1`,
		`brisk_http_requests_total{journey="none",method="POST",route="/v1/auth/login",status_class="2xx"} 1`,
		`brisk_http_request_duration_seconds_bucket{journey="checkout",method="POST",route="/v1/checkout",status_class="2xx",le="0.2"}`,
		`brisk_payment_client_requests_total{method="authorize",outcome="ok"} 1`,
		`brisk_http_requests_in_flight 1`, // the scrape itself
		`go_goroutines `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// 10,000 distinct product ids (most of them unknown) and junk paths;
	// one of each first, so that every status class already has series.
	c.do("GET", "/v1/products/99999", nil).want(t, 404, "unknown product")
	c.do("GET", "/v1/junk/1", nil).want(t, 404, "junk")
	before := seriesOf(scrape())
	ids := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				c.do("GET", fmt.Sprintf("/v1/products/%d", id), nil)
				if id%500 == 0 {
					c.do("GET", fmt.Sprintf("/v1/junk/%d", id), nil)
				}
			}
		}()
	}
	for id := 1; id <= 10_000; id++ {
		ids <- id
	}
	close(ids)
	wg.Wait()
	after := seriesOf(scrape())
	if len(after) != len(before) {
		t.Errorf("brisk_ series: %d before, %d after 10,000 product ids; new: %v", len(before), len(after), newSeries(before, after))
	}
	for _, s := range after {
		if regexp.MustCompile(`/v1/(products|junk)/\d`).MatchString(s) {
			t.Errorf("series with a raw path: %s", s)
		}
	}

	// The live SLO view counted the same browse requests.
	var st slo.Status
	c.do("GET", "/debug/slo", nil).want(t, 200, "debug/slo").json(t, &st)
	for _, s := range st.SLOs {
		if s.Name == "browse-availability" {
			// product 3, list, categories, products 0 and 99999, and the
			// 10,000 ids.
			if w := s.Windows[0]; w.Total != 10_005 || w.Bad != 0 {
				t.Errorf("browse 5m = %+v, want 10,005 requests, none bad", w)
			}
		}
		if s.Name == "checkout-availability" && s.Windows[0].Total != 1 {
			t.Errorf("checkout 5m = %+v, want 1 request", s.Windows[0])
		}
	}
}

// TestTraceEndToEnd: one checkout is one trace spanning the HTTP server
// span, the store calls, the payment client span and the gRPC call on
// both sides, and the response's X-Request-Id is its trace id. An
// incoming W3C traceparent is continued.
func TestTraceEndToEnd(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	testSpanExporter = exp
	t.Cleanup(func() { testSpanExporter = nil })
	_, c, _ := startUp(t)
	token := c.login("shopper@brisk.test", "shopper-pass-1")
	shopper := c.as(token)
	shopper.do("PUT", "/v1/cart/items/5", map[string]int{"quantity": 1}).want(t, 200, "cart")
	r := shopper.do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_visa"}, "Idempotency-Key", "trace-1").want(t, 201, "checkout")
	id := r.header.Get("X-Request-Id")
	tid, err := trace.TraceIDFromHex(id)
	if err != nil {
		t.Fatalf("X-Request-Id %q is not a trace id: %v", id, err)
	}

	var spans tracetest.SpanStubs
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans = nil
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == tid {
				spans = append(spans, s)
			}
		}
		// The gRPC server span may end just after the client has its reply.
		if hasSpan(spans, "POST /v1/checkout") && countSpans(spans, "brisk.payment.v1.PaymentService/Authorize") >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Logf("trace %s: %v", tid, names)
	root := find(t, spans, "POST /v1/checkout")
	if root.Parent.IsValid() || root.SpanKind != trace.SpanKindServer {
		t.Errorf("root span %s has parent %v kind %v, want a server root", root.Name, root.Parent.SpanID(), root.SpanKind)
	}
	if svc := resourceService(root); svc != "brisk" {
		t.Errorf("API spans' service.name %q, want brisk", svc)
	}
	for _, name := range []string{"checkout.Begin", "checkout.Complete", "payment.authorize"} {
		s := find(t, spans, name)
		if !descends(s, root, byID) {
			t.Errorf("span %s is not under the request's span", name)
		}
	}
	var client, server tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "brisk.payment.v1.PaymentService/Authorize" {
			switch s.SpanKind {
			case trace.SpanKindClient:
				client = s
			case trace.SpanKindServer:
				server = s
			}
		}
	}
	if !client.SpanContext.IsValid() || !server.SpanContext.IsValid() {
		t.Fatalf("no gRPC client and server spans for Authorize in %v", names)
	}
	if server.Parent.SpanID() != client.SpanContext.SpanID() || !server.Parent.IsRemote() {
		t.Errorf("gRPC server span's parent %v, want the client span %v (propagated)", server.Parent.SpanID(), client.SpanContext.SpanID())
	}
	if byID[client.Parent.SpanID()].Name != "payment.authorize" {
		t.Errorf("gRPC client span's parent is %q, want payment.authorize", byID[client.Parent.SpanID()].Name)
	}
	if svc := resourceService(server); svc != "brisk-payment" {
		t.Errorf("payment server span's service.name %q, want brisk-payment", svc)
	}

	// A caller's traceparent: the request id is the caller's trace id.
	const callerTrace = "0af7651916cd43dd8448eb211c80319c"
	r = c.do("GET", "/v1/products/3", nil, "traceparent", "00-"+callerTrace+"-b7ad6b7169203331-01")
	if got := r.header.Get("X-Request-Id"); got != callerTrace {
		t.Errorf("X-Request-Id %q with a traceparent, want its trace id %s", got, callerTrace)
	}
	p := checkProblem(t, c.do("GET", "/v1/products/99999", nil, "traceparent", "00-"+callerTrace+"-b7ad6b7169203331-01"), 404, "unknown product")
	if p.RequestID != callerTrace {
		t.Errorf("problem request_id %q, want the trace id", p.RequestID)
	}
}

func newSeries(before, after []string) []string {
	old := map[string]bool{}
	for _, s := range before {
		old[s] = true
	}
	var out []string
	for _, s := range after {
		if !old[s] {
			out = append(out, s)
		}
	}
	return out
}

func countSpans(spans tracetest.SpanStubs, name string) int {
	n := 0
	for _, s := range spans {
		if s.Name == name {
			n++
		}
	}
	return n
}

func hasSpan(spans tracetest.SpanStubs, name string) bool {
	for _, s := range spans {
		if s.Name == name {
			return true
		}
	}
	return false
}

func find(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q in the trace: %v", name, names)
	return tracetest.SpanStub{}
}

// descends reports whether s is below root in the trace.
func descends(s, root tracetest.SpanStub, byID map[trace.SpanID]tracetest.SpanStub) bool {
	for i := 0; i < 20 && s.Parent.IsValid(); i++ {
		if s.Parent.SpanID() == root.SpanContext.SpanID() {
			return true
		}
		s = byID[s.Parent.SpanID()]
	}
	return false
}

func resourceService(s tracetest.SpanStub) string {
	if s.Resource == nil {
		return ""
	}
	for _, kv := range s.Resource.Attributes() {
		if kv.Key == "service.name" {
			return kv.Value.AsString()
		}
	}
	return ""
}

// TestLogRedactionEndToEnd: registering, logging in (also with a wrong
// password) and checking out (also declined) at debug level, with every
// request in the access log, leaves no password, token or card token in
// the logs, while the logs carry trace ids.
func TestLogRedactionEndToEnd(t *testing.T) {
	p, c, _ := startUp(t, "--log-level", "debug", "--access-log-ratio", "1", "--trace-sample-ratio", "1")
	const password = "Sup3r-secret-passw0rd"
	var s session
	c.do("POST", "/v1/auth/register", map[string]string{"email": "redact@brisk.test", "password": password, "name": "R"}).want(t, 201, "register").json(t, &s)
	c.do("POST", "/v1/auth/login", map[string]string{"email": "redact@brisk.test", "password": password + "-wrong"}).want(t, 401, "bad login")
	token := c.login("redact@brisk.test", password)
	u := c.as(token)
	u.do("PUT", "/v1/cart/items/4", map[string]int{"quantity": 1}).want(t, 200, "cart")
	u.do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_decline"}, "Idempotency-Key", "redact-1")
	u.do("PUT", "/v1/cart/items/4", map[string]int{"quantity": 1}).want(t, 200, "cart")
	u.do("POST", "/v1/checkout", map[string]string{"payment_token": "tok_visa"}, "Idempotency-Key", "redact-2").want(t, 201, "checkout")
	u.do("GET", "/v1/orders", nil).want(t, 200, "orders")
	c.as(token+"x").do("GET", "/v1/cart", nil).want(t, 401, "bad token")
	// Clients that put secrets where they do not belong: paths are logged
	// (access log, error log), so the secrets must be cut out of them.
	u.do("GET", "/v1/orders/"+token, nil)
	c.do("GET", "/v1/products/tok_visa", nil).want(t, 400, "card token as a product id")
	p.stop()

	logs := p.stderr.String()
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"trace_id":`) || !strings.Contains(logs, `"route":"/v1/checkout"`) {
		t.Fatalf("the logs lack access log lines with trace ids:\n%s", tail(logs))
	}
	for _, secret := range []string{password, token, s.Token, strings.SplitN(token, ".", 3)[2], "tok_visa", "tok_decline", "Bearer "} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold a secret %.20q...:\n%s", secret, logs[max(0, strings.Index(logs, secret)-300):min(len(logs), strings.Index(logs, secret)+100)])
		}
	}
}

// TestTelemetryOff: --telemetry=false serves no /metrics, keeps random
// request ids, and the API works.
func TestTelemetryOff(t *testing.T) {
	_, c, _ := startUp(t, "--telemetry=false")
	shop(t, c, "off-1")
	c.do("GET", "/metrics", nil).want(t, 404, "metrics off")
	r := c.do("GET", "/v1/products/3", nil, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if id := r.header.Get("X-Request-Id"); len(id) != 32 || id == "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("X-Request-Id %q with telemetry off, want a random id", id)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promQuery runs an instant query; it returns the result vector.
func promQuery(t *testing.T, base, q string) ([]json.RawMessage, error) {
	t.Helper()
	res, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("decode %s: %w", b, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	return body.Data.Result, nil
}

// TestPrometheusScrapesBrisk starts a real Prometheus (Debian's package)
// on loopback with deploy/prometheus/prometheus.yml pointed at brisk's
// admin listener, loads brisk, and reads generated recording rules back.
// Every query of the Grafana dashboard must be valid PromQL there.
func TestPrometheusScrapesBrisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and waits for rule evaluations")
	}
	prom := needTool(t, "prometheus")
	p, c, _ := startUp(t, "--admin-addr", "127.0.0.1:0")
	admin := p.find(`admin:\s+http://(\S+)/metrics`)

	// The repository's config, pointed at this brisk, scraping every second.
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	global := cfg["global"].(map[string]any)
	global["scrape_interval"], global["evaluation_interval"], global["scrape_timeout"] = "1s", "1s", "1s"
	cfg["rule_files"] = []string{filepath.Join(root, "deploy/prometheus/rules/*.yml")}
	jobs := cfg["scrape_configs"].([]any)
	api := jobs[0].(map[string]any)
	api["static_configs"].([]any)[0].(map[string]any)["targets"] = []string{admin}
	cfg["scrape_configs"] = []any{api}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "prometheus.yml")
	out, _ := yaml.Marshal(cfg)
	if err := os.WriteFile(cfgFile, out, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	cmd := exec.CommandContext(ctx, prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	base := "http://" + listen

	// Load while Prometheus starts and scrapes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.do("GET", fmt.Sprintf("/v1/products/%d", i%300+1), nil)
			c.do("GET", "/v1/products?q=oak", nil)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	query := func(q string) []json.RawMessage {
		deadline := time.Now().Add(60 * time.Second)
		for {
			res, err := promQuery(t, base, q)
			if err == nil && len(res) > 0 {
				return res
			}
			if time.Now().After(deadline) {
				t.Fatalf("no value for %s after 60s (last error %v); prometheus logs:\n%s", q, err, tail(logs.String()))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	query(`up{job="brisk-api"} == 1`)
	for _, q := range []string{
		`brisk_slo:sli_error:ratio_rate5m{slo="browse-availability"}`,
		`brisk_slo:sli_error:ratio_rate5m{slo="search-latency"}`,
		`brisk_slo:requests:rate5m{journey="browse"} > 0`,
		`brisk_slo:error_budget:remaining{slo="browse-availability"}`,
	} {
		res := query(q)
		t.Logf("%s = %s", q, res[0])
	}
	dash, err := os.ReadFile(filepath.Join(root, "deploy/grafana/brisk.json"))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := slo.DashboardQueries(dash)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if _, err := promQuery(t, base, q); err != nil {
			t.Errorf("dashboard query is not valid PromQL: %v", err)
		}
	}
}

// TestRedisTelemetryEndToEnd: with Redis as carts store and shared cache,
// a product miss traces its L2 cache call and its store call, and the
// Redis pool's saturation is on /metrics.
func TestRedisTelemetryEndToEnd(t *testing.T) {
	url, prefix := redistest.New(t)
	exp := tracetest.NewInMemoryExporter()
	testSpanExporter = exp
	t.Cleanup(func() { testSpanExporter = nil })
	_, c, _ := startUp(t, "--redis", url, "--redis-prefix", prefix)
	r := c.do("GET", "/v1/products/11", nil).want(t, 200, "product")
	tid, err := trace.TraceIDFromHex(r.header.Get("X-Request-Id"))
	if err != nil {
		t.Fatal(err)
	}
	var spans tracetest.SpanStubs
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() == tid {
			spans = append(spans, s)
		}
	}
	root := find(t, spans, "GET /v1/products/{id}")
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	for _, name := range []string{"cache.l2.Get", "catalog.Product"} {
		if s := find(t, spans, name); !descends(s, root, byID) {
			t.Errorf("span %s is not under the request's span", name)
		}
	}
	out := string(c.do("GET", "/metrics", nil).want(t, 200, "metrics").body)
	for _, want := range []string{`brisk_redis_pool_connections{state="idle"}`, `brisk_redis_pool_timeouts_total `} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// BenchmarkTelemetryOverhead serves the cached product GET through the
// whole API handler chain with telemetry off and on (default sampling, no
// exporter), without the network: the per-request cost of telemetry.
//
//	go test ./cmd/brisk -run XXX -bench TelemetryOverhead -cpu 1 -count 5
func BenchmarkTelemetryOverhead(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			log := slog.New(slog.DiscardHandler)
			be, err := openBackend(ctx, "", dir, sqlite.SyncNormal, log)
			if err != nil {
				b.Fatal(err)
			}
			defer be.close()
			if err := be.migrate(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := seedCatalog(ctx, be.loader, 100, log); err != nil {
				b.Fatal(err)
			}
			keys, err := loadKeys("", log)
			if err != nil {
				b.Fatal(err)
			}
			af := &apiFlags{jwtIssuer: "brisk", jwtAudience: "brisk-api", tokenTTL: time.Hour, argonMemoryKiB: 64, argonTime: 1}
			fs := newFlagSet("bench", "", io.Discard)
			af.register(fs, ":0")
			if err := parseFlags(fs, []string{"--telemetry=" + fmt.Sprint(on)}, func(string) string { return "" }); err != nil {
				b.Fatal(err)
			}
			obs, err := newObservability(ctx, &af.tel, "brisk", func(string) string { return "" }, log)
			if err != nil {
				b.Fatal(err)
			}
			defer obs.close()
			af.obs = obs
			a := newAPIServer(be, fakePayments{}, keys, af, log)
			req := httptest.NewRequest("GET", "/v1/products/42", nil)
			req.RemoteAddr = "127.0.0.1:40000" // loopback: not rate limited, as for wrk
			w := &nopWriter{h: http.Header{}}
			a.http.ServeHTTP(w, req) // fill the cache
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				clear(w.h)
				a.http.ServeHTTP(w, req)
			}
			// CPU time per request resists the waiting of a busy machine
			// better than wall time.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
		})
	}
}

type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(c int)           { w.code = c }

// fakePayments approves everything (the benchmark makes no payments).
type fakePayments struct{ checkout.Payments }

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
