package payment

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/briskhq/brisk/api/payment/v1"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
)

// serve runs gs on a loopback port until the test ends and returns a
// connection to it.
func serve(t testing.TB, gs *grpc.Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// startPayment runs a payment server over sim and returns a client of it.
func startPayment(t testing.TB, sim *Simulator, cfg ClientConfig) (*Client, *grpc.ClientConn) {
	t.Helper()
	conn := serve(t, NewServer(sim, nil))
	return NewClient(conn, cfg), conn
}

func auth(key, token string, amount int64) checkout.Authorization {
	return checkout.Authorization{Key: key, OrderID: "order-" + key, Amount: usd(amount), Token: token}
}

func TestClientOverGRPC(t *testing.T) {
	ctx := t.Context()
	sim := newSim(t, openStore(t, "memory"), Faults{})
	c, _ := startPayment(t, sim, ClientConfig{})

	p, err := c.Authorize(ctx, auth("k1", TokenVisa, 1999))
	if err != nil {
		t.Fatal(err)
	}
	want := checkout.Payment{ID: p.ID, Key: "k1", Status: checkout.PaymentAuthorized, Amount: usd(1999)}
	if p != want || p.ID == "" {
		t.Fatalf("Authorize = %+v, want %+v", p, want)
	}

	tests := []struct {
		name    string
		call    func() (checkout.Payment, error)
		want    checkout.PaymentStatus
		reason  string
		wantErr error
	}{
		{"replay", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("k1", TokenVisa, 1999)) }, checkout.PaymentAuthorized, "", nil},
		{"lookup", func() (checkout.Payment, error) { return c.Lookup(ctx, "k1") }, checkout.PaymentAuthorized, "", nil},
		{"mismatch is a conflict", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("k1", TokenVisa, 1)) }, "", "", derrors.Conflict},
		{"decline is a result", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("k2", TokenDecline, 500)) }, checkout.PaymentDeclined, ReasonCardDeclined, nil},
		{"decline replayed", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("k2", TokenDecline, 500)) }, checkout.PaymentDeclined, ReasonCardDeclined, nil},
		{"unknown token", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("k3", "tok_nope", 500)) }, "", "", derrors.Invalid},
		{"bad amount", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("k3", TokenVisa, 0)) }, "", "", derrors.Invalid},
		{"lookup unknown", func() (checkout.Payment, error) { return c.Lookup(ctx, "nope") }, "", "", derrors.NotFound},
		{"capture", func() (checkout.Payment, error) { return c.Capture(ctx, "k1") }, checkout.PaymentCaptured, "", nil},
		{"void captured", func() (checkout.Payment, error) { return c.Void(ctx, "k1") }, "", "", derrors.Conflict},
		{"capture unknown", func() (checkout.Payment, error) { return c.Capture(ctx, "nope") }, "", "", derrors.NotFound},
		{"void unknown leaves a tombstone", func() (checkout.Payment, error) { return c.Void(ctx, "late") }, checkout.PaymentVoided, "", nil},
		{"late authorize lands on the tombstone", func() (checkout.Payment, error) { return c.Authorize(ctx, auth("late", TokenVisa, 800)) }, checkout.PaymentVoided, "", nil},
		{"void declined unchanged", func() (checkout.Payment, error) { return c.Void(ctx, "k2") }, checkout.PaymentDeclined, ReasonCardDeclined, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want || got.DeclineReason != tt.reason {
				t.Errorf("got %s %q, want %s %q", got.Status, got.DeclineReason, tt.want, tt.reason)
			}
		})
	}
	if s := sim.Stats(); s.Charges != 1 || s.Tombstones != 1 {
		t.Errorf("Stats() = %+v, want 1 charge and 1 tombstone", s)
	}
}

func TestClientConcurrentSameKey(t *testing.T) {
	ctx := t.Context()
	sim := newSim(t, openStore(t, "sqlite"), Faults{})
	c, _ := startPayment(t, sim, ClientConfig{})
	const n = 50
	var (
		wg  sync.WaitGroup
		got [n]checkout.Payment
	)
	for i := range n {
		wg.Go(func() {
			p, err := c.Authorize(ctx, auth("one", TokenMastercard, 4200))
			if err != nil {
				t.Errorf("Authorize #%d: %v", i, err)
			}
			got[i] = p
		})
	}
	wg.Wait()
	for i := range n {
		if got[i] != got[0] || got[i].Status != checkout.PaymentAuthorized {
			t.Errorf("Authorize #%d = %+v, want %+v (authorized)", i, got[i], got[0])
		}
	}
	recs, err := sim.Payments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := sim.Stats(); s.Charges != 1 || len(recs) != 1 {
		t.Errorf("after %d concurrent calls: %d charges, %d records; want 1 and 1", n, s.Charges, len(recs))
	}
}

func TestClientErrorRateFault(t *testing.T) {
	sim := newSim(t, openStore(t, "memory"), Faults{ErrorRate: 1})
	c, _ := startPayment(t, sim, ClientConfig{})
	_, err := c.Authorize(t.Context(), auth("k", TokenVisa, 100))
	if !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Authorize = %v, want derrors.Unavailable", err)
	}
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("gRPC code of %v = %v, want Unavailable", err, got)
	}
	if recs, _ := sim.Payments(t.Context()); len(recs) != 0 {
		t.Errorf("injected error stored %+v", recs)
	}
	// Changed at run time: the same client now succeeds.
	if err := sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Authorize(t.Context(), auth("k", TokenVisa, 100)); err != nil || p.Status != checkout.PaymentAuthorized {
		t.Errorf("Authorize after clearing faults = %+v, %v", p, err)
	}
}

func TestClientDeadlineUnderLatency(t *testing.T) {
	sim := newSim(t, openStore(t, "memory"), Faults{Latency: 5 * time.Second})
	c, _ := startPayment(t, sim, ClientConfig{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Authorize(t.Context(), auth("slow", TokenVisa, 100))
	took := time.Since(start)
	if !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Authorize = %v, want derrors.Unavailable", err)
	}
	if took > time.Second {
		t.Errorf("Authorize took %v, want about the 100ms deadline", took)
	}
	// The server saw the deadline too: it stopped waiting and charged nothing.
	time.Sleep(50 * time.Millisecond)
	if recs, _ := sim.Payments(t.Context()); len(recs) != 0 {
		t.Errorf("timed-out call stored %+v", recs)
	}
}

// fakeServer answers every call with a fixed error, to check the client's
// code mapping over a real connection.
type fakeServer struct {
	paymentv1.UnimplementedPaymentServiceServer
	err    error
	status paymentv1.PaymentStatus
}

func (f *fakeServer) Authorize(context.Context, *paymentv1.AuthorizeRequest) (*paymentv1.Payment, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &paymentv1.Payment{Id: "p", Status: f.status}, nil
}

func TestClientMapsCodes(t *testing.T) {
	tests := []struct {
		code     codes.Code
		wantKind error // nil: no derrors kind
	}{
		{codes.NotFound, derrors.NotFound},
		{codes.InvalidArgument, derrors.Invalid},
		{codes.FailedPrecondition, derrors.Conflict},
		{codes.Unavailable, derrors.Unavailable},
		{codes.DeadlineExceeded, derrors.Unavailable},
		{codes.ResourceExhausted, derrors.Unavailable},
		{codes.Aborted, derrors.Unavailable},
		{codes.Internal, nil},
		{codes.PermissionDenied, nil},
		{codes.Unknown, nil},
	}
	fake := &fakeServer{}
	gs := grpc.NewServer()
	paymentv1.RegisterPaymentServiceServer(gs, fake)
	c := NewClient(serve(t, gs), ClientConfig{})
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			fake.err = status.Error(tt.code, "boom")
			_, err := c.Authorize(t.Context(), auth("k", TokenVisa, 1))
			if err == nil {
				t.Fatal("Authorize = nil error")
			}
			if got := derrors.Kind(err); got != tt.wantKind {
				t.Errorf("Authorize error %v has kind %v, want %v", err, got, tt.wantKind)
			}
			if got := status.Code(err); got != tt.code {
				t.Errorf("gRPC code of %v = %v, want %v", err, got, tt.code)
			}
		})
	}
	t.Run("unspecified status", func(t *testing.T) {
		fake.err, fake.status = nil, paymentv1.PaymentStatus_PAYMENT_STATUS_UNSPECIFIED
		if _, err := c.Authorize(t.Context(), auth("k", TokenVisa, 1)); err == nil || derrors.Kind(err) != nil {
			t.Errorf("Authorize of an unspecified status = %v, want a plain error", err)
		}
	})
	t.Run("unimplemented method", func(t *testing.T) {
		_, err := c.Lookup(t.Context(), "k")
		if err == nil || derrors.Kind(err) != nil || status.Code(err) != codes.Unimplemented {
			t.Errorf("Lookup = %v, want a plain wrapped Unimplemented error", err)
		}
	})
}

func TestClientCallerCancel(t *testing.T) {
	sim := newSim(t, openStore(t, "memory"), Faults{Latency: 5 * time.Second})
	c, _ := startPayment(t, sim, ClientConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Authorize(ctx, auth("k", TokenVisa, 1))
	if err == nil || derrors.Kind(err) != nil {
		t.Errorf("Authorize cancelled by the caller = %v (kind %v), want a plain error", err, derrors.Kind(err))
	}
}

// TestClientReconnectsSoonAfterRestart: the payment service stops for 3 s
// while checkouts keep calling, then comes back on the same address; the
// client must reach it within 1.5 s (ReconnectBackoff caps the wait at
// 1.2 s; gRPC's default backoff would have the next attempt seconds later).
func TestClientReconnectsSoonAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3 s outage; skipped in -short")
	}
	ctx := t.Context()
	sim := newSim(t, openStore(t, "memory"), Faults{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	gs := NewServer(sim, nil)
	go gs.Serve(lis)
	conn, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := NewClient(conn, ClientConfig{Timeout: time.Second})
	if _, err := c.Authorize(ctx, auth("before", TokenVisa, 100)); err != nil {
		t.Fatal(err)
	}

	gs.Stop()
	for down := time.Now(); time.Since(down) < 3*time.Second; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Lookup(ctx, "before"); !errors.Is(err, derrors.Unavailable) {
			t.Fatalf("Lookup with the service down = %v, want Unavailable", err)
		}
	}

	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	gs = NewServer(sim, nil)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	back := time.Now()
	for {
		_, err := c.Lookup(ctx, "before")
		if err == nil {
			t.Logf("reached again %v after the restart", time.Since(back).Round(time.Millisecond))
			return
		}
		if !errors.Is(err, derrors.Unavailable) {
			t.Fatalf("Lookup after the restart = %v", err)
		}
		if time.Since(back) > 1500*time.Millisecond {
			t.Fatalf("still unreachable %v after the restart: %v", time.Since(back).Round(time.Millisecond), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealth(t *testing.T) {
	sim := newSim(t, openStore(t, "memory"), Faults{})
	_, conn := startPayment(t, sim, ClientConfig{})
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", paymentv1.PaymentService_ServiceDesc.ServiceName} {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, want SERVING", svc, resp.GetStatus())
		}
	}
}

func TestServerCreatedAt(t *testing.T) {
	sim := newSim(t, openStore(t, "memory"), Faults{})
	_, conn := startPayment(t, sim, ClientConfig{})
	rpc := paymentv1.NewPaymentServiceClient(conn)
	before := time.Now()
	p, err := rpc.Authorize(t.Context(), &paymentv1.AuthorizeRequest{
		IdempotencyKey: "k", OrderId: "o", AmountMinor: 10, Currency: "EUR", CardToken: TokenVisa,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := p.GetCreatedAt().AsTime()
	if got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("created_at = %v, want about %v", got, before)
	}
	if p.GetOrderId() != "o" || p.GetAmountMinor() != 10 || p.GetCurrency() != "EUR" {
		t.Errorf("Authorize = %v, want order o, 10 EUR", p)
	}
	if _, err := rpc.GetByIdempotencyKey(t.Context(), &paymentv1.GetByIdempotencyKeyRequest{IdempotencyKey: "x"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetByIdempotencyKey(unknown) = %v, want NOT_FOUND", err)
	}
}
