package telemetry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// DefaultSampleRatio is the share of new traces sampled when neither the
// configuration nor OTEL_TRACES_SAMPLER says otherwise. Requests that
// arrive with a sampled W3C traceparent are always sampled (parent-based).
const DefaultSampleRatio = 0.01

// instrumentation is the name of brisk's tracer.
const instrumentation = "github.com/briskhq/brisk"

// TracingConfig configures NewTracing.
type TracingConfig struct {
	// ServiceName is the service.name resource attribute ("brisk-api");
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	ServiceName string
	Version     string
	// Getenv reads the OTEL_* variables (os.Getenv when nil).
	Getenv func(string) string
	// SampleRatio is the parent-based sampling ratio of new traces when
	// OTEL_TRACES_SAMPLER is not set; 0 means DefaultSampleRatio.
	SampleRatio float64
	// Exporter, when set, receives the spans synchronously instead of an
	// OTLP exporter (tests use tracetest.InMemoryExporter).
	Exporter sdktrace.SpanExporter
	// Disabled turns tracing off: no spans, no trace ids.
	Disabled bool
	Logger   *slog.Logger
}

// Tracing is brisk's OpenTelemetry tracing: a tracer provider whose spans
// go to OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is
// set, W3C trace context and baggage propagation, and the otelgrpc stats
// handlers. Without an exporter, new traces are not sampled (nothing
// would receive them) but still get trace ids, which are the request ids
// and are propagated to the payment service.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider // nil when disabled
	sampler    sdktrace.Sampler
	exporting  bool // an exporter receives the spans
	propagator propagation.TextMapPropagator
	tracer     trace.Tracer
}

// NewTracing sets up tracing from cfg and the standard OTEL_* variables:
// OTEL_SDK_DISABLED, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER(_ARG) (the always_*, traceidratio and parentbased_*
// samplers), OTEL_TRACES_EXPORTER (otlp or none),
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, _INSECURE,
// _CERTIFICATE and OTEL_BSP_*. Only the grpc OTLP protocol is built in.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	if cfg.Disabled || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		tp := noop.NewTracerProvider()
		return &Tracing{provider: tp, propagator: prop, tracer: tp.Tracer(instrumentation)}, nil
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "brisk"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	sampler, err := samplerFromEnv(getenv, cfg.SampleRatio)
	if err != nil {
		return nil, err
	}
	exporting := true
	if cfg.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	} else {
		exp, err := otlpExporter(ctx, getenv)
		if err != nil {
			return nil, err
		}
		if exp != nil {
			opts = append(opts, sdktrace.WithBatcher(exp))
			log.Info("tracing: exporting spans over OTLP/gRPC")
		} else {
			// Spans recorded for nobody are pure cost: new traces are not
			// sampled; trace ids are still made and propagated (request
			// ids, log correlation), and a caller's sampled trace is still
			// followed.
			exporting = false
			sampler = sdktrace.ParentBased(sdktrace.NeverSample())
		}
	}
	opts = append(opts, sdktrace.WithSampler(sampler), sdktrace.WithIDGenerator(idGenerator{}))
	sdk := sdktrace.NewTracerProvider(opts...)
	return &Tracing{provider: sdk, sdk: sdk, sampler: sampler, exporting: exporting, propagator: prop, tracer: sdk.Tracer(instrumentation)}, nil
}

// samplerFromEnv returns the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name, or parent-based ratio sampling at ratio
// (DefaultSampleRatio when 0) when they are not set.
func samplerFromEnv(getenv func(string) string, ratio float64) (sdktrace.Sampler, error) {
	if ratio == 0 {
		ratio = DefaultSampleRatio
	}
	name := getenv("OTEL_TRACES_SAMPLER")
	if arg := getenv("OTEL_TRACES_SAMPLER_ARG"); arg != "" && strings.HasSuffix(name, "traceidratio") {
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		ratio = v
	} else if strings.HasSuffix(name, "traceidratio") {
		ratio = 1 // the specification's default argument
	}
	switch name {
	case "":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q is not supported", name)
}

// otlpExporter returns the OTLP/gRPC exporter the environment asks for,
// or nil when no endpoint is set or OTEL_TRACES_EXPORTER is "none".
func otlpExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if e := getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		if e == "none" {
			return nil, nil
		}
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", e)
	}
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "grpc" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: only grpc is supported", proto)
	}
	var opts []otlptracegrpc.Option
	if strings.Contains(endpoint, "://") {
		opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	return exp, nil
}

// TracerProvider returns the provider (a no-op one when disabled).
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// Propagator returns the W3C trace context and baggage propagator.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// Tracer returns brisk's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Enabled reports whether spans are made.
func (t *Tracing) Enabled() bool { return t != nil && t.sdk != nil }

// Shutdown flushes and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

func (t *Tracing) grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(t.propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

// ServerOption instruments a gRPC server: a span per call, continuing the
// caller's trace.
func (t *Tracing) ServerOption() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(t.grpcOptions()...))
}

// DialOption instruments a gRPC client: a span per call, its trace
// context sent in the call's metadata.
func (t *Tracing) DialOption() grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(t.grpcOptions()...))
}

// idGenerator makes random ids, except that the root span of a request
// gets the trace id the HTTP middleware picked for it (in the request's
// state), to make the sampling decision with it before the span starts.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if st, ok := ctx.Value(stateKey{}).(*state); ok && st.traceID.IsValid() {
		return st.traceID, newSpanID()
	}
	return newTraceID(), newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newTraceID() trace.TraceID {
	var t trace.TraceID
	for !t.IsValid() {
		binary.LittleEndian.PutUint64(t[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t
}

// HexID returns id as 32 lowercase hex digits, as trace.TraceID.String
// does, in one allocation instead of two: request ids are formatted on
// every request.
func HexID(id [16]byte) string {
	var b [32]byte
	hex.Encode(b[:], id[:])
	return string(b[:])
}

func newSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		binary.LittleEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}

// headSample decides, before any span exists, whether the request with
// header h will be sampled: it continues an incoming W3C trace context
// (and its sampled flag, parent-based) or picks the new trace's id (into
// st, for idGenerator), then asks the configured sampler. The SDK asks
// the same sampler with the same parent and trace id when the span
// starts, so both agree. The returned context carries the parent.
func (t *Tracing) headSample(ctx context.Context, h http.Header, st *state) (context.Context, trace.SpanContext, bool) {
	var psc trace.SpanContext
	if len(h["Traceparent"]) > 0 || len(h["Baggage"]) > 0 { // most requests carry neither
		ctx = t.propagator.Extract(ctx, propagation.HeaderCarrier(h))
		psc = trace.SpanContextFromContext(ctx)
	}
	tid := psc.TraceID()
	if !psc.IsValid() {
		tid = newTraceID()
		st.traceID = tid
		if !t.exporting {
			return ctx, psc, false // a new trace, never sampled
		}
	}
	return ctx, psc, t.samples(ctx, tid)
}

// samples reports whether the sampler records a server span of trace
// tid under ctx (which holds the parent span, if any).
func (t *Tracing) samples(ctx context.Context, tid trace.TraceID) bool {
	res := t.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Kind: trace.SpanKindServer})
	return res.Decision == sdktrace.RecordAndSample
}

// unsampled returns ctx with a non-recording span for a request the
// sampler left out: its trace id is the parent's or the one picked by
// headSample, its span id new. This is what the SDK's Start would return
// for a dropped span, without asking the sampler again. The request's
// state is the span, which saves an allocation.
func unsampled(ctx context.Context, parent trace.SpanContext, st *state) (context.Context, trace.SpanContext) {
	cfg := trace.SpanContextConfig{TraceID: st.traceID, SpanID: newSpanID()}
	if parent.IsValid() {
		cfg.TraceID, cfg.TraceState = parent.TraceID(), parent.TraceState()
	}
	st.span = trace.NewSpanContext(cfg)
	return trace.ContextWithSpan(ctx, (*stateSpan)(st)), st.span
}

// stateSpan is a request's state seen as its non-recording server span.
type stateSpan state

func (s *stateSpan) SpanContext() trace.SpanContext { return s.span }

// The rest of trace.Span does nothing: the span is not recorded.
func (s *stateSpan) IsRecording() bool                       { return false }
func (s *stateSpan) End(...trace.SpanEndOption)              {}
func (s *stateSpan) AddEvent(string, ...trace.EventOption)   {}
func (s *stateSpan) AddLink(trace.Link)                      {}
func (s *stateSpan) RecordError(error, ...trace.EventOption) {}
func (s *stateSpan) SetStatus(codes.Code, string)            {}
func (s *stateSpan) SetName(string)                          {}
func (s *stateSpan) SetAttributes(...attribute.KeyValue)     {}
func (s *stateSpan) TracerProvider() trace.TracerProvider    { return noop.NewTracerProvider() }
