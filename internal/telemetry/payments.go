package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/slo"
)

// Outcomes of a payment call (the outcome label).
var paymentOutcomes = []string{"ok", "declined", "not_found", "invalid", "conflict", "unavailable", "deadline", "canceled", "error"}

func paymentOutcome(p checkout.Payment, err error) string {
	switch {
	case err == nil && p.Status == checkout.PaymentDeclined:
		return "declined"
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	switch derrors.Kind(err) {
	case derrors.NotFound:
		return "not_found"
	case derrors.Invalid:
		return "invalid"
	case derrors.Conflict, derrors.Mismatch:
		return "conflict"
	case derrors.Unavailable:
		return "unavailable"
	}
	return "error"
}

// paymentMethods are the calls checkout makes.
var paymentMethods = []string{"authorize", "lookup", "void"}

// InstrumentPayments wraps the payment client checkout uses: each call is
// a span (whose children are the gRPC attempts) and is counted by method
// and outcome, with its duration (brisk_payment_client_*). Either m or t
// may be nil. The card token is never recorded.
func InstrumentPayments(p checkout.Payments, m *Metrics, t *Tracing) checkout.Payments {
	ip := &instrumentedPayments{p: p}
	if t.Enabled() {
		ip.tracer = t.Tracer()
	}
	if m != nil {
		calls := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: slo.MetricPaymentRequests,
			Help: "Calls to the payment service (after retries), by method and outcome.",
		}, []string{"method", "outcome"})
		dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            slo.MetricPaymentDuration,
			Help:                            "Duration of calls to the payment service in seconds (retries included), by method.",
			Buckets:                         []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"method"})
		if err := m.reg.Register(calls); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				calls = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
		if err := m.reg.Register(dur); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				dur = are.ExistingCollector.(*prometheus.HistogramVec)
			}
		}
		ip.calls = map[string]map[string]prometheus.Counter{}
		ip.dur = map[string]prometheus.Observer{}
		for _, method := range paymentMethods {
			ip.calls[method] = map[string]prometheus.Counter{}
			for _, o := range paymentOutcomes {
				ip.calls[method][o] = calls.WithLabelValues(method, o)
			}
			ip.dur[method] = dur.WithLabelValues(method)
		}
	}
	return ip
}

type instrumentedPayments struct {
	p      checkout.Payments
	tracer trace.Tracer // nil: no spans
	calls  map[string]map[string]prometheus.Counter
	dur    map[string]prometheus.Observer
}

func (ip *instrumentedPayments) do(ctx context.Context, method string, attrs []attribute.KeyValue, call func(context.Context) (checkout.Payment, error)) (checkout.Payment, error) {
	var span trace.Span
	if ip.tracer != nil {
		ctx, span = ip.tracer.Start(ctx, "payment."+method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	}
	start := time.Now()
	p, err := call(ctx)
	outcome := paymentOutcome(p, err)
	if ip.calls != nil {
		ip.calls[method][outcome].Inc()
		ip.dur[method].Observe(time.Since(start).Seconds())
	}
	if span != nil {
		span.SetAttributes(attribute.String("payment.outcome", outcome))
		if p.ID != "" {
			span.SetAttributes(attribute.String("payment.id", p.ID))
		}
		end(span, err)
	}
	return p, err
}

func (ip *instrumentedPayments) Authorize(ctx context.Context, a checkout.Authorization) (checkout.Payment, error) {
	attrs := []attribute.KeyValue{
		attribute.String("order.id", a.OrderID),
		attribute.Int64("payment.amount_minor", a.Amount.Amount),
		attribute.String("payment.currency", a.Amount.Currency),
	}
	return ip.do(ctx, "authorize", attrs, func(ctx context.Context) (checkout.Payment, error) { return ip.p.Authorize(ctx, a) })
}

func (ip *instrumentedPayments) Lookup(ctx context.Context, key string) (checkout.Payment, error) {
	return ip.do(ctx, "lookup", nil, func(ctx context.Context) (checkout.Payment, error) { return ip.p.Lookup(ctx, key) })
}

func (ip *instrumentedPayments) Void(ctx context.Context, key string) (checkout.Payment, error) {
	return ip.do(ctx, "void", nil, func(ctx context.Context) (checkout.Payment, error) { return ip.p.Void(ctx, key) })
}
