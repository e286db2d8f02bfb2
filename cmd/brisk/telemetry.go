package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/slo"
	"github.com/briskhq/brisk/internal/telemetry"
)

// telemetryFlags configure metrics, tracing, access logs and the live SLO
// view (brisk api, up and payment).
type telemetryFlags struct {
	enabled        bool
	adminAddr      string
	sampleRatio    float64
	accessLogRatio float64
	slowRequest    time.Duration
	sloSpec        string
}

func (f *telemetryFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "telemetry", true, "metrics, tracing, access logs and /debug/slo (false: all off, e.g. to measure their cost)")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "listen address of an admin server: /metrics, /debug/slo, /debug/pprof/ (empty: none; /metrics and /debug/slo are also on the main address)")
	fs.Float64Var(&f.sampleRatio, "trace-sample-ratio", telemetry.DefaultSampleRatio, "share of new traces sampled, parent-based (OTEL_TRACES_SAMPLER overrides; spans are exported when OTEL_EXPORTER_OTLP_ENDPOINT is set)")
	fs.Float64Var(&f.accessLogRatio, "access-log-ratio", 0.01, "share of successful requests written to the access log (errors and slow requests always are)")
	fs.DurationVar(&f.slowRequest, "slow-request", time.Second, "requests slower than this are always in the access log")
	fs.StringVar(&f.sloSpec, "slo-spec", "", "SLO spec file for /debug/slo and the journey label (empty: the built-in slo.yaml)")
}

// testSpanExporter, when a test sets it, receives every span of the runs
// it starts, synchronously, and every trace is sampled.
var testSpanExporter sdktrace.SpanExporter

// observability is one process's telemetry. With --telemetry=false only
// tracing exists, disabled (a no-op), and the rest is nil.
type observability struct {
	flags   *telemetryFlags
	getenv  func(string) string
	closers []func(context.Context) error
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	spec    *slo.Spec
	tracker *slo.Tracker
	http    *telemetry.HTTP
	log     *slog.Logger
	stop    context.CancelFunc
}

// newObservability sets telemetry up for the service named service
// ("brisk-api", "brisk-payment"); getenv supplies the OTEL_* variables.
func newObservability(ctx context.Context, f *telemetryFlags, service string, getenv func(string) string, log *slog.Logger) (*observability, error) {
	o := &observability{flags: f, getenv: getenv, log: log, stop: func() {}}
	tc := telemetry.TracingConfig{ServiceName: service, Getenv: getenv, SampleRatio: f.sampleRatio, Disabled: !f.enabled, Logger: log}
	if testSpanExporter != nil {
		tc.Exporter, tc.SampleRatio = testSpanExporter, 1
	}
	if f.sampleRatio < 0 || f.sampleRatio > 1 {
		return nil, usageError("--trace-sample-ratio %v: want 0..1", f.sampleRatio)
	}
	tr, err := telemetry.NewTracing(ctx, tc)
	if err != nil {
		return nil, usageError("%v", err)
	}
	o.tracing = tr
	if !f.enabled {
		return o, nil
	}
	// Libraries that trace through the global provider (the cache, go-redis
	// instrumentation) join the same traces.
	otel.SetTracerProvider(tr.TracerProvider())
	otel.SetTextMapPropagator(tr.Propagator())
	o.spec = slo.Default()
	if f.sloSpec != "" {
		if o.spec, err = slo.Load(f.sloSpec); err != nil {
			return nil, usageError("--slo-spec: %v", err)
		}
	}
	o.metrics = telemetry.NewMetrics(telemetry.MetricsConfig{Buckets: o.spec.Buckets()})
	o.tracker = slo.NewTracker(o.spec, nil)
	tctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	o.stop = stop
	go o.tracker.Run(tctx)
	o.http = telemetry.NewHTTP(telemetry.HTTPConfig{
		Metrics: o.metrics, Tracing: tr, SLO: o.spec, Tracker: o.tracker,
		Logger: log, AccessLogRatio: f.accessLogRatio, SlowRequest: f.slowRequest,
	})
	return o, nil
}

// close stops the SLO sampler and flushes the spans.
func (o *observability) close() {
	if o == nil {
		return
	}
	o.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range append(o.closers, o.tracing.Shutdown) {
		if err := c(ctx); err != nil {
			o.log.Warn("telemetry shutdown", "err", err)
		}
	}
}

// enabled reports whether metrics and the rest are on.
func (o *observability) enabled() bool { return o != nil && o.metrics != nil }

// middleware returns the HTTP instrumentation, nil when off.
func (o *observability) middleware() func(http.Handler) http.Handler {
	if !o.enabled() {
		return nil
	}
	return o.http.Middleware
}

// httpTelemetry is the HTTP instrumentation, nil when off.
func (o *observability) httpTelemetry() *telemetry.HTTP {
	if !o.enabled() {
		return nil
	}
	return o.http
}

// opsRoutes are /metrics and /debug/slo, nil when off.
func (o *observability) opsRoutes() map[string]http.Handler {
	if !o.enabled() {
		return nil
	}
	return map[string]http.Handler{
		"GET /metrics":   o.metrics.Handler(),
		"GET /debug/slo": o.tracker.Handler(),
	}
}

// dialOptions instrument the payment client's gRPC connection.
func (o *observability) dialOptions() []grpc.DialOption {
	if o == nil || !o.tracing.Enabled() {
		return nil
	}
	return []grpc.DialOption{o.tracing.DialOption()}
}

// serverOptions instrument the payment service's gRPC server.
func (o *observability) serverOptions() []grpc.ServerOption {
	if o == nil || !o.tracing.Enabled() {
		return nil
	}
	return []grpc.ServerOption{o.tracing.ServerOption()}
}

// embeddedPaymentOptions instrument the payment service that brisk up runs
// in-process: its spans get their own service name, brisk-payment.
func (o *observability) embeddedPaymentOptions(ctx context.Context) ([]grpc.ServerOption, error) {
	if o == nil || !o.tracing.Enabled() {
		return nil, nil
	}
	tc := telemetry.TracingConfig{ServiceName: "brisk-payment", Getenv: o.getenv, SampleRatio: o.flags.sampleRatio, Logger: o.log}
	if testSpanExporter != nil {
		tc.Exporter, tc.SampleRatio = testSpanExporter, 1
	}
	tr, err := telemetry.NewTracing(ctx, tc)
	if err != nil {
		return nil, err
	}
	o.closers = append(o.closers, tr.Shutdown)
	return []grpc.ServerOption{tr.ServerOption()}, nil
}

// payments wraps the payment client with a span and metrics per call.
func (o *observability) payments(p checkout.Payments) checkout.Payments {
	if o == nil || (!o.enabled() && !o.tracing.Enabled()) {
		return p
	}
	return telemetry.InstrumentPayments(p, o.metrics, o.tracing)
}

// traceStores wraps the backend's stores in tracing decorators (a span
// per call); it returns b unchanged when tracing is off.
func (o *observability) traceStores(b *backend) *backend {
	if o == nil || !o.tracing.Enabled() {
		return b
	}
	system := b.name
	if system == "postgres" {
		system = "postgresql"
	}
	t := *b
	t.catalog = telemetry.TraceCatalog(b.catalog, o.tracing, system)
	t.users = telemetry.TraceUsers(b.users, o.tracing, system)
	t.carts = telemetry.TraceCarts(b.carts, o.tracing, system)
	t.checkout = telemetry.TraceCheckout(b.checkout, o.tracing, system)
	return &t
}

// registerPools exports the saturation of the backend's connection pools
// that expose their statistics (PostgreSQL's pgxpool, go-redis).
func (o *observability) registerPools(b *backend) {
	if !o.enabled() {
		return
	}
	seen := map[any]bool{}
	for _, s := range []any{b.catalog, b.users, b.carts, b.checkout, b.redis} {
		if isNil(s) || seen[s] {
			continue
		}
		seen[s] = true
		var err error
		switch p := s.(type) {
		case interface{ Stat() *pgxpool.Stat }:
			err = o.metrics.RegisterDBPool("postgres", func() telemetry.DBPoolStats { return telemetry.PgxPoolStats(p.Stat()) })
		case interface{ PoolStats() *goredis.PoolStats }:
			err = o.registerRedis(p)
		case interface {
			PoolStats() (sql.DBStats, sql.DBStats)
		}:
			err = errors.Join(
				o.metrics.RegisterDBPool("sqlite-write", func() telemetry.DBPoolStats { w, _ := p.PoolStats(); return telemetry.SQLPoolStats(w) }),
				o.metrics.RegisterDBPool("sqlite-read", func() telemetry.DBPoolStats { _, r := p.PoolStats(); return telemetry.SQLPoolStats(r) }))
		}
		if err != nil {
			o.log.Warn("pool metrics", "err", err)
		}
	}
}

// traceCacheL2 wraps the response cache's Redis layer in spans.
func (o *observability) traceCacheL2(l2 cache.L2) cache.L2 {
	if o == nil || !o.tracing.Enabled() {
		return l2
	}
	return telemetry.TraceCacheL2(l2, o.tracing, "redis")
}

// registerRedis exports a Redis client's pool saturation.
func (o *observability) registerRedis(c interface{ PoolStats() *goredis.PoolStats }) error {
	if !o.enabled() {
		return nil
	}
	return o.metrics.RegisterRedisPool(func() telemetry.RedisPoolStats { return telemetry.GoRedisPoolStats(c.PoolStats()) })
}

// serveAdmin serves /metrics, /debug/slo, /debug/pprof/ and /healthz on
// --admin-addr until ctx ends; it returns the address ("" when none).
func (o *observability) serveAdmin(ctx context.Context) (string, error) {
	if o == nil || o.flags.adminAddr == "" {
		return "", nil
	}
	mux := http.NewServeMux()
	for p, h := range o.opsRoutes() {
		mux.Handle(p, h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", o.flags.adminAddr)
	if err != nil {
		return "", fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("admin server", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return displayAddr(ln.Addr()), nil
}

// isNil reports whether v is nil or a typed nil pointer.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
