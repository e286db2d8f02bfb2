package payment

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	paymentv1 "github.com/briskhq/brisk/api/payment/v1"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

// NewServer returns a gRPC server with the payment service of sim and the
// standard health service (SERVING) registered. opts are passed to
// grpc.NewServer (interceptors, stats handlers, limits).
func NewServer(sim *Simulator, logger *slog.Logger, opts ...grpc.ServerOption) *grpc.Server {
	gs := grpc.NewServer(opts...)
	Register(gs, sim, logger)
	return gs
}

// Register registers the payment service of sim and the standard health
// service on gs. It returns the health server, whose status the caller
// sets to NOT_SERVING when draining.
func Register(gs *grpc.Server, sim *Simulator, logger *slog.Logger) *health.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	paymentv1.RegisterPaymentServiceServer(gs, &server{sim: sim, logger: logger})
	hs := health.NewServer()
	hs.SetServingStatus(paymentv1.PaymentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return hs
}

// server adapts the Simulator to the generated gRPC interface.
type server struct {
	paymentv1.UnimplementedPaymentServiceServer
	sim    *Simulator
	logger *slog.Logger
}

func (s *server) Authorize(ctx context.Context, req *paymentv1.AuthorizeRequest) (*paymentv1.Payment, error) {
	r, err := s.sim.Authorize(ctx, Request{
		Key:     req.GetIdempotencyKey(),
		OrderID: req.GetOrderId(),
		Amount:  money.Money{Amount: req.GetAmountMinor(), Currency: req.GetCurrency()},
		Token:   req.GetCardToken(),
	})
	return s.reply(ctx, "Authorize", r, err)
}

func (s *server) Capture(ctx context.Context, req *paymentv1.CaptureRequest) (*paymentv1.Payment, error) {
	r, err := s.sim.Capture(ctx, req.GetIdempotencyKey())
	return s.reply(ctx, "Capture", r, err)
}

func (s *server) Void(ctx context.Context, req *paymentv1.VoidRequest) (*paymentv1.Payment, error) {
	r, err := s.sim.Void(ctx, req.GetIdempotencyKey())
	return s.reply(ctx, "Void", r, err)
}

func (s *server) GetByIdempotencyKey(ctx context.Context, req *paymentv1.GetByIdempotencyKeyRequest) (*paymentv1.Payment, error) {
	r, err := s.sim.Get(ctx, req.GetIdempotencyKey())
	return s.reply(ctx, "GetByIdempotencyKey", r, err)
}

func (s *server) reply(ctx context.Context, method string, r Record, err error) (*paymentv1.Payment, error) {
	if err != nil {
		code := grpcCode(err)
		if code == codes.Internal {
			s.logger.ErrorContext(ctx, "payment call failed", "method", method, "err", err)
			return nil, status.Error(code, "internal error")
		}
		return nil, status.Error(code, err.Error())
	}
	return toProto(r), nil
}

// codeOfKind maps the derrors kinds the simulator returns to gRPC codes.
var codeOfKind = []struct {
	kind error
	code codes.Code
}{
	{derrors.NotFound, codes.NotFound},
	{derrors.Invalid, codes.InvalidArgument},
	{derrors.Conflict, codes.FailedPrecondition},
	{derrors.Mismatch, codes.FailedPrecondition},
	{derrors.Unavailable, codes.Unavailable},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// grpcCode returns the gRPC code of err; codes.Internal for unexpected errors.
func grpcCode(err error) codes.Code {
	for _, m := range codeOfKind {
		if errors.Is(err, m.kind) {
			return m.code
		}
	}
	return codes.Internal
}

var statusToProto = map[checkout.PaymentStatus]paymentv1.PaymentStatus{
	checkout.PaymentAuthorized: paymentv1.PaymentStatus_PAYMENT_STATUS_AUTHORIZED,
	checkout.PaymentCaptured:   paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED,
	checkout.PaymentDeclined:   paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED,
	checkout.PaymentVoided:     paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED,
}

func toProto(r Record) *paymentv1.Payment {
	return &paymentv1.Payment{
		Id:             r.ID,
		IdempotencyKey: r.Key,
		OrderId:        r.OrderID,
		Status:         statusToProto[r.Status],
		AmountMinor:    r.Amount.Amount,
		Currency:       r.Amount.Currency,
		DeclineReason:  r.DeclineReason,
		CreatedAt:      timestamppb.New(r.CreatedAt),
	}
}
