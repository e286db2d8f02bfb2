package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

type fakeCatalog struct{ catalog.Store }

func (fakeCatalog) Product(_ context.Context, id int64) (catalog.Product, error) {
	switch id {
	case 0:
		return catalog.Product{}, derrors.New(derrors.NotFound, "no product 0")
	case -1:
		return catalog.Product{}, errors.New("disk on fire")
	}
	return catalog.Product{ID: id}, nil
}

func TestTraceCatalog(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracing(context.Background(), TracingConfig{Exporter: exp, SampleRatio: 1, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	s := TraceCatalog(fakeCatalog{}, tr, "sqlite")
	ctx, parent := tr.Tracer().Start(context.Background(), "request")
	for _, id := range []int64{7, 0, -1} {
		s.Product(ctx, id)
	}
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 3 calls and the parent", len(spans))
	}
	wantStatus := []codes.Code{codes.Unset, codes.Unset, codes.Error} // not found is an answer, not a failure
	for i, s := range spans[:3] {
		if s.Name != "catalog.Product" || s.Parent.SpanID() != parent.SpanContext().SpanID() || s.Status.Code != wantStatus[i] {
			t.Errorf("span %d = %s parent %s status %v, want catalog.Product under the request, %v", i, s.Name, s.Parent.SpanID(), s.Status.Code, wantStatus[i])
		}
	}
	// Disabled tracing returns the store itself: no cost.
	off, _ := NewTracing(context.Background(), TracingConfig{Disabled: true})
	if _, ok := TraceCatalog(fakeCatalog{}, off, "sqlite").(fakeCatalog); !ok {
		t.Error("TraceCatalog with tracing off wraps the store")
	}
}

type fakePayments struct{ checkout.Payments }

func (fakePayments) Authorize(_ context.Context, a checkout.Authorization) (checkout.Payment, error) {
	switch a.Token {
	case "tok_chargeDeclined":
		return checkout.Payment{ID: "p2", Status: checkout.PaymentDeclined}, nil
	case "tok_down":
		return checkout.Payment{}, derrors.New(derrors.Unavailable, "payment service unavailable")
	}
	return checkout.Payment{ID: "p1", Status: checkout.PaymentAuthorized}, nil
}

func TestInstrumentPayments(t *testing.T) {
	m := NewMetrics(MetricsConfig{})
	exp := tracetest.NewInMemoryExporter()
	tr, _ := NewTracing(context.Background(), TracingConfig{Exporter: exp, SampleRatio: 1, Getenv: env()})
	p := InstrumentPayments(fakePayments{}, m, tr)
	for _, tok := range []string{"tok_visa", "tok_visa", "tok_chargeDeclined", "tok_down"} {
		p.Authorize(context.Background(), checkout.Authorization{Key: "k", OrderID: "o1", Amount: money.Money{Amount: 100, Currency: "EUR"}, Token: tok})
	}
	ip := p.(*instrumentedPayments)
	for outcome, want := range map[string]float64{"ok": 2, "declined": 1, "unavailable": 1, "error": 0} {
		if got := value(t, ip.calls["authorize"][outcome]); got != want {
			t.Errorf("authorize %s = %v, want %v", outcome, got, want)
		}
	}
	spans := exp.GetSpans()
	if len(spans) != 4 || spans[0].Name != "payment.authorize" || spans[3].Status.Code != codes.Error {
		t.Fatalf("spans = %v", spans)
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if v := a.Value.String(); v == "tok_visa" || v == "tok_chargeDeclined" || v == "tok_down" {
				t.Errorf("span %s records the card token in %s", s.Name, a.Key)
			}
		}
	}
	// A second instrumentation on the same registry reuses the metrics.
	InstrumentPayments(fakePayments{}, m, nil)
}

type fakeL2 struct{}

func (fakeL2) Get(_ context.Context, key string) ([]byte, bool, error) {
	if key == "hit" {
		return []byte("x"), true, nil
	}
	return nil, false, nil
}
func (fakeL2) Set(context.Context, string, []byte, time.Duration) error { return nil }
func (fakeL2) Del(context.Context, ...string) error                     { return errors.New("redis down") }

func TestTraceCacheL2(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, _ := NewTracing(context.Background(), TracingConfig{Exporter: exp, SampleRatio: 1, Getenv: env()})
	l2 := TraceCacheL2(fakeL2{}, tr, "redis")
	l2.Get(context.Background(), "hit")
	l2.Get(context.Background(), "miss")
	l2.Del(context.Background(), "k")
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	hits := []bool{}
	for _, s := range spans[:2] {
		for _, a := range s.Attributes {
			if a.Key == "cache.hit" {
				hits = append(hits, a.Value.AsBool())
			}
		}
	}
	if len(hits) != 2 || !hits[0] || hits[1] || spans[2].Name != "cache.l2.Del" || spans[2].Status.Code != codes.Error {
		t.Errorf("spans = %v, hits %v", spans, hits)
	}
}

type pricedCheckout struct {
	checkout.Store
	checks bool
}

func (p pricedCheckout) ChecksPrices() bool { return p.checks }

// TestTraceCheckoutKeepsPriceChecker: the traced checkout store answers
// checkout.PriceChecker as the store it wraps does.
func TestTraceCheckoutKeepsPriceChecker(t *testing.T) {
	tr, err := NewTracing(context.Background(), TracingConfig{Exporter: tracetest.NewInMemoryExporter(), SampleRatio: 1, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []checkout.Store{pricedCheckout{checks: true}, pricedCheckout{checks: false}, fakeCheckoutStore{}} {
		want := false
		if pc, ok := s.(checkout.PriceChecker); ok {
			want = pc.ChecksPrices()
		}
		pc, ok := TraceCheckout(s, tr, "postgresql").(checkout.PriceChecker)
		if got := ok && pc.ChecksPrices(); got != want {
			t.Errorf("traced %T: ChecksPrices = %v, want %v", s, got, want)
		}
	}
}

type fakeCheckoutStore struct{ checkout.Store }
