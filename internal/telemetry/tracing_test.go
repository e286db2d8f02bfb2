package telemetry

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestTracingEnv(t *testing.T) {
	tests := []struct {
		name    string
		getenv  func(string) string
		enabled bool
		err     string
	}{
		{"default", env(), true, ""},
		{"sdk disabled", env("OTEL_SDK_DISABLED", "true"), false, ""},
		{"exporter none", env("OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"), true, ""},
		{"unknown exporter", env("OTEL_TRACES_EXPORTER", "zipkin"), false, "zipkin"},
		{"http protocol", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), false, "grpc"},
		{"otlp endpoint", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"), true, ""},
		{"sampler", env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.25"), true, ""},
		{"bad sampler arg", env("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "2"), false, "ratio"},
		{"unknown sampler", env("OTEL_TRACES_SAMPLER", "jaeger_remote"), false, "jaeger_remote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := NewTracing(context.Background(), TracingConfig{Getenv: tt.getenv})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("NewTracing = %v, want an error about %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Enabled() != tt.enabled {
				t.Errorf("Enabled() = %v, want %v", tr.Enabled(), tt.enabled)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			tr.Shutdown(ctx)
		})
	}
}

// TestSampling: new traces are sampled at the ratio; a caller's sampling
// decision wins (parent-based). Unsampled spans still get trace ids.
func TestSampling(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracing(context.Background(), TracingConfig{Exporter: exp, SampleRatio: 1e-12, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(context.Background(), "root")
	if span.SpanContext().IsSampled() || !span.SpanContext().TraceID().IsValid() {
		t.Errorf("new root at ratio 1e-12: sampled %v, trace id %v; want unsampled with an id", span.SpanContext().IsSampled(), span.SpanContext().TraceID())
	}
	span.End()
	for _, sampled := range []bool{true, false} {
		tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
		sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
		var flags trace.TraceFlags
		if sampled {
			flags = trace.FlagsSampled
		}
		parent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}))
		_, span := tr.Tracer().Start(parent, "child")
		if span.SpanContext().IsSampled() != sampled || span.SpanContext().TraceID() != tid {
			t.Errorf("child of a remote parent sampled=%v: sampled %v trace %v", sampled, span.SpanContext().IsSampled(), span.SpanContext().TraceID())
		}
		span.End()
	}
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("%d spans exported, want 1 (the sampled parent's child)", n)
	}
}

// collector is an OTLP/gRPC trace receiver.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestOTLPExport sends spans to a real OTLP/gRPC receiver on loopback,
// configured only through the standard environment variables.
func TestOTLPExport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	col := &collector{}
	coltracepb.RegisterTraceServiceServer(gs, col)
	go gs.Serve(ln)
	defer gs.Stop()

	tr, err := NewTracing(context.Background(), TracingConfig{ServiceName: "brisk-api", Getenv: env(
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String(),
		"OTEL_TRACES_SAMPLER", "always_on",
	)})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(context.Background(), "exported")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	var names []string
	service := ""
	for _, r := range col.reqs {
		for _, rs := range r.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
	}
	if len(names) != 1 || names[0] != "exported" || service != "brisk-api" {
		t.Errorf("collector got spans %v of service %q, want [exported] of brisk-api", names, service)
	}
}

func TestSamplerFromEnv(t *testing.T) {
	tests := []struct {
		getenv func(string) string
		ratio  float64
		want   string // prefix of Description()
	}{
		{env(), 0, "ParentBased{root:TraceIDRatioBased{0.01}"},
		{env(), 0.5, "ParentBased{root:TraceIDRatioBased{0.5}"},
		{env("OTEL_TRACES_SAMPLER", "always_on"), 0.5, "AlwaysOnSampler"},
		{env("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.25"), 0.5, "TraceIDRatioBased{0.25}"},
		{env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), 0.5, "ParentBased{root:TraceIDRatioBased{1}"},
		{env("OTEL_TRACES_SAMPLER", "parentbased_always_off"), 0.5, "ParentBased{root:AlwaysOffSampler"},
	}
	for _, tt := range tests {
		s, err := samplerFromEnv(tt.getenv, tt.ratio)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.Description(), tt.want) {
			t.Errorf("sampler %s, want %s...", s.Description(), tt.want)
		}
	}
}

// TestNoExporterNoSampling: without an exporter new traces are not
// sampled (no span would be received) but get trace ids; a caller's
// sampled trace is still followed.
func TestNoExporterNoSampling(t *testing.T) {
	tr, err := NewTracing(context.Background(), TracingConfig{SampleRatio: 1, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent, sampled := tr.headSample(context.Background(), http.Header{}, &state{})
	if sampled || parent.IsValid() {
		t.Errorf("new trace without an exporter: sampled %v", sampled)
	}
	_, span := tr.Tracer().Start(ctx, "root")
	if span.IsRecording() || !span.SpanContext().TraceID().IsValid() {
		t.Errorf("root span recording %v, trace id %v; want not recording, with an id", span.IsRecording(), span.SpanContext().TraceID())
	}
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if _, _, sampled := tr.headSample(context.Background(), h, &state{}); !sampled {
		t.Error("a sampled caller's trace is not followed without an exporter")
	}
}
