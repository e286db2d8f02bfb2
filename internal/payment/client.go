package payment

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/briskhq/brisk/api/payment/v1"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

// DefaultTimeout is the deadline of one call when ClientConfig.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// ClientConfig configures a Client.
type ClientConfig struct {
	// Timeout is the deadline of each call (DefaultTimeout when zero);
	// a shorter deadline already on the caller's context wins.
	Timeout time.Duration
}

// Client is the payment service as checkout uses it, over gRPC. It
// implements checkout.Payments. Errors carry derrors kinds:
//
//	NOT_FOUND                                   derrors.NotFound
//	INVALID_ARGUMENT                            derrors.Invalid
//	FAILED_PRECONDITION                         derrors.Conflict
//	UNAVAILABLE, DEADLINE_EXCEEDED,
//	RESOURCE_EXHAUSTED, ABORTED                 derrors.Unavailable
//	anything else                               a plain wrapped error
//
// A decline is a Payment with Status checkout.PaymentDeclined, not an error.
type Client struct {
	rpc     paymentv1.PaymentServiceClient
	timeout time.Duration
}

var _ checkout.Payments = (*Client)(nil)

// NewClient returns a client that calls the payment service over conn.
func NewClient(conn grpc.ClientConnInterface, cfg ClientConfig) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Client{rpc: paymentv1.NewPaymentServiceClient(conn), timeout: cfg.Timeout}
}

// ReconnectBackoff is how the connection of Dial retries a payment
// service that went away: from 100 ms, growing 1.6x (±20%) up to 1 s.
// gRPC's default grows to 120 s, and already after a 3 s outage its next
// attempt may come seconds after the service is back, every call failing
// UNAVAILABLE meanwhile; a service on loopback or in the cluster costs
// little to retry. MinConnectTimeout bounds one attempt to an address that
// does not answer (a pod gone without a reset).
var ReconnectBackoff = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 3 * time.Second,
}

// Dial returns a connection to the payment service at target (host:port)
// without transport security, for loopback and cluster-internal traffic,
// reconnecting per ReconnectBackoff. The connection is lazy: it connects
// on the first call.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(ReconnectBackoff),
	}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial payment service %s: %w", target, err)
	}
	return conn, nil
}

// Authorize charges a.Amount to a.Token under a.Key; see checkout.Payments.
func (c *Client) Authorize(ctx context.Context, a checkout.Authorization) (checkout.Payment, error) {
	req := &paymentv1.AuthorizeRequest{
		IdempotencyKey: a.Key,
		OrderId:        a.OrderID,
		AmountMinor:    a.Amount.Amount,
		Currency:       a.Amount.Currency,
		CardToken:      a.Token,
	}
	return c.call(ctx, "authorize payment", func(ctx context.Context) (*paymentv1.Payment, error) {
		return c.rpc.Authorize(ctx, req)
	})
}

// Lookup returns the payment made under key, or derrors.NotFound.
func (c *Client) Lookup(ctx context.Context, key string) (checkout.Payment, error) {
	req := &paymentv1.GetByIdempotencyKeyRequest{IdempotencyKey: key}
	return c.call(ctx, "look up payment", func(ctx context.Context) (*paymentv1.Payment, error) {
		return c.rpc.GetByIdempotencyKey(ctx, req)
	})
}

// Void cancels the payment under key; for an unknown key the service
// records a tombstone so that a late Authorize with that key charges nothing.
func (c *Client) Void(ctx context.Context, key string) (checkout.Payment, error) {
	req := &paymentv1.VoidRequest{IdempotencyKey: key}
	return c.call(ctx, "void payment", func(ctx context.Context) (*paymentv1.Payment, error) {
		return c.rpc.Void(ctx, req)
	})
}

// Capture takes the money authorized under key.
func (c *Client) Capture(ctx context.Context, key string) (checkout.Payment, error) {
	req := &paymentv1.CaptureRequest{IdempotencyKey: key}
	return c.call(ctx, "capture payment", func(ctx context.Context) (*paymentv1.Payment, error) {
		return c.rpc.Capture(ctx, req)
	})
}

// call runs one RPC under the per-call deadline and maps its answer. Every
// RPC goes through here, so retries and a circuit breaker can wrap it.
func (c *Client) call(ctx context.Context, op string, rpc func(context.Context) (*paymentv1.Payment, error)) (checkout.Payment, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p, err := rpc(ctx)
	if err != nil {
		return checkout.Payment{}, mapError(op, err)
	}
	out, err := fromProto(p)
	if err != nil {
		return checkout.Payment{}, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// kindOfCode maps gRPC codes to derrors kinds; codes not here are not
// given a kind.
var kindOfCode = map[codes.Code]error{
	codes.NotFound:           derrors.NotFound,
	codes.InvalidArgument:    derrors.Invalid,
	codes.FailedPrecondition: derrors.Conflict,
	codes.Unavailable:        derrors.Unavailable,
	codes.DeadlineExceeded:   derrors.Unavailable,
	codes.ResourceExhausted:  derrors.Unavailable,
	codes.Aborted:            derrors.Unavailable,
}

// mapError turns the error of RPC op into one of a derrors kind.
func mapError(op string, err error) error {
	st := status.Convert(err)
	wrapped := fmt.Errorf("%s: %w", op, err)
	kind, ok := kindOfCode[st.Code()]
	if !ok {
		return wrapped
	}
	detail := op + ": " + st.Message()
	if kind == derrors.Unavailable {
		// The message may name internal addresses; keep the detail generic.
		detail = op + ": payment service unavailable"
	}
	return derrors.Wrap(kind, wrapped, detail)
}

var statusFromProto = map[paymentv1.PaymentStatus]checkout.PaymentStatus{
	paymentv1.PaymentStatus_PAYMENT_STATUS_AUTHORIZED: checkout.PaymentAuthorized,
	paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED:   checkout.PaymentCaptured,
	paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED:   checkout.PaymentDeclined,
	paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED:     checkout.PaymentVoided,
}

func fromProto(p *paymentv1.Payment) (checkout.Payment, error) {
	st, ok := statusFromProto[p.GetStatus()]
	if !ok {
		return checkout.Payment{}, fmt.Errorf("payment %s has status %v", p.GetId(), p.GetStatus())
	}
	return checkout.Payment{
		ID:            p.GetId(),
		Key:           p.GetIdempotencyKey(),
		Status:        st,
		DeclineReason: p.GetDeclineReason(),
		Amount:        money.Money{Amount: p.GetAmountMinor(), Currency: p.GetCurrency()},
	}, nil
}
