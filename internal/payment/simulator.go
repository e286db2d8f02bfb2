// Package payment is brisk's payment service: a simulated card processor
// (Simulator) with a durable record per idempotency key, its gRPC server,
// and the gRPC client that checkout uses (Client implements
// checkout.Payments).
//
// The processor follows the rules a real one does for the checkout to be
// correct: the same idempotency key never charges twice, a decline is
// stored and replayed, and a Void of a key that never arrived leaves a
// tombstone so that a late, lost-in-flight authorization cannot land.
package payment

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

// Test card tokens and the outcome of an authorization with each.
const (
	TokenVisa              = "tok_visa"               // approves
	TokenMastercard        = "tok_mastercard"         // approves
	TokenDecline           = "tok_decline"            // declines: card_declined
	TokenInsufficientFunds = "tok_insufficient_funds" // declines: insufficient_funds
)

// Decline reasons.
const (
	ReasonCardDeclined      = "card_declined"
	ReasonInsufficientFunds = "insufficient_funds"
	// ReasonProcessorDeclined is a decline injected by Faults.DeclineRate.
	ReasonProcessorDeclined = "processor_declined"
)

// tokens maps each known card token to its decline reason ("" approves).
var tokens = map[string]string{
	TokenVisa:              "",
	TokenMastercard:        "",
	TokenDecline:           ReasonCardDeclined,
	TokenInsufficientFunds: ReasonInsufficientFunds,
}

// maxKeyLen bounds idempotency keys and order ids.
const maxKeyLen = 255

// Request is an authorization request to the simulator.
type Request struct {
	Key     string
	OrderID string
	Amount  money.Money
	Token   string
}

// Stats counts what the simulator did since it started.
type Stats struct {
	Charges        int64 // authorizations approved (money held), once per key
	Declines       int64 // authorizations declined, once per key
	Replays        int64 // Authorize calls answered from a stored record
	Captures       int64 // AUTHORIZED -> CAPTURED transitions
	Voids          int64 // AUTHORIZED -> VOIDED transitions (holds released)
	Tombstones     int64 // voids of unknown keys
	InjectedErrors int64 // calls answered UNAVAILABLE by Faults.ErrorRate
	LostReplies    int64 // calls done, then answered UNAVAILABLE by Faults.LostReplyRate
}

// Simulator is a simulated card processor. Its methods are safe for
// concurrent use.
type Simulator struct {
	store  *Store
	logger *slog.Logger
	faults atomic.Pointer[Faults]

	// locks serialize the calls of one key (striped: keys share a mutex
	// when their hashes collide, which is correct, only less parallel).
	locks [256]sync.Mutex
	seed  maphash.Seed

	charges, declines, replays, captures, voids, tombstones atomic.Int64
	injected, lost                                          atomic.Int64
}

// New returns a simulator that keeps its payments in store and starts
// with faults f. A nil logger discards.
func New(store *Store, f Faults, logger *slog.Logger) (*Simulator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{store: store, logger: logger, seed: maphash.MakeSeed()}
	if err := s.SetFaults(f); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Simulator) lock(key string) func() {
	m := &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Authorize places a hold of r.Amount on card r.Token under r.Key.
//   - r.Key already has a record: it is returned unchanged (nothing is
//     charged); if that record is a real authorization with a different
//     amount, currency or token the error is of kind derrors.Mismatch;
//     a void tombstone is returned as is, VOIDED;
//   - an approving token: a new AUTHORIZED record;
//   - a declining token: a new DECLINED record with the reason;
//   - unknown token, empty key, amount <= 0 or a malformed currency:
//     derrors.Invalid.
func (s *Simulator) Authorize(ctx context.Context, r Request) (Record, error) {
	if err := s.inject(ctx, "authorize"); err != nil {
		return Record{}, err
	}
	reason, err := validate(r)
	if err != nil {
		return Record{}, err
	}
	defer s.lock(r.Key)()

	old, ok, err := s.store.get(ctx, r.Key)
	if err != nil {
		return Record{}, fmt.Errorf("authorize: %w", err)
	}
	if !ok {
		if reason == "" && s.Faults().DeclineRate > 0 && mrand.Float64() < s.Faults().DeclineRate {
			reason = ReasonProcessorDeclined
		}
		now := time.Now().UTC()
		rec := Record{
			ID:            newID(),
			Key:           r.Key,
			OrderID:       r.OrderID,
			Status:        checkout.PaymentAuthorized,
			Amount:        r.Amount,
			Token:         r.Token,
			DeclineReason: reason,
			CreatedAt:     now,
			UpdatedAt:     now,
		}
		if reason != "" {
			rec.Status = checkout.PaymentDeclined
		}
		var inserted bool
		old, inserted, err = s.store.insert(ctx, rec)
		if err != nil {
			return Record{}, fmt.Errorf("authorize: %w", err)
		}
		if inserted {
			if rec.Status == checkout.PaymentDeclined {
				s.declines.Add(1)
			} else {
				s.charges.Add(1)
			}
			return rec, s.loseReply("authorize")
		}
		// Another process sharing the store wrote the key first: replay it.
	}
	s.replays.Add(1)
	if !old.Tombstone() && (old.Amount != r.Amount || old.Token != r.Token) {
		return Record{}, derrors.New(derrors.Mismatch,
			"idempotency key %q was used with a different amount, currency or card", r.Key)
	}
	return old, s.loseReply("authorize")
}

// validate checks r and returns the decline reason of its token.
func validate(r Request) (reason string, err error) {
	switch {
	case r.Key == "":
		return "", derrors.New(derrors.Invalid, "idempotency key is required")
	case len(r.Key) > maxKeyLen:
		return "", derrors.New(derrors.Invalid, "idempotency key is longer than %d bytes", maxKeyLen)
	case len(r.OrderID) > maxKeyLen:
		return "", derrors.New(derrors.Invalid, "order id is longer than %d bytes", maxKeyLen)
	case r.Amount.Amount <= 0:
		return "", derrors.New(derrors.Invalid, "amount must be positive, got %d", r.Amount.Amount)
	case !validCurrency(r.Amount.Currency):
		return "", derrors.New(derrors.Invalid, "currency %q is not an ISO 4217 code", r.Amount.Currency)
	}
	reason, ok := tokens[r.Token]
	if !ok {
		return "", derrors.New(derrors.Invalid, "unknown card token %q", r.Token)
	}
	return reason, nil
}

// validCurrency reports whether c looks like an ISO 4217 code: three
// upper-case ASCII letters.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range len(c) {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

func validKey(key string) error {
	switch {
	case key == "":
		return derrors.New(derrors.Invalid, "idempotency key is required")
	case len(key) > maxKeyLen:
		return derrors.New(derrors.Invalid, "idempotency key is longer than %d bytes", maxKeyLen)
	}
	return nil
}

// Capture takes the money held under key: AUTHORIZED becomes CAPTURED;
// CAPTURED is returned unchanged. A declined or voided payment is
// derrors.Conflict; an unknown key derrors.NotFound.
func (s *Simulator) Capture(ctx context.Context, key string) (Record, error) {
	if err := s.inject(ctx, "capture"); err != nil {
		return Record{}, err
	}
	if err := validKey(key); err != nil {
		return Record{}, err
	}
	defer s.lock(key)()
	r, ok, err := s.store.get(ctx, key)
	switch {
	case err != nil:
		return Record{}, fmt.Errorf("capture: %w", err)
	case !ok:
		return Record{}, derrors.New(derrors.NotFound, "no payment under idempotency key %q", key)
	}
	switch r.Status {
	case checkout.PaymentCaptured:
		return r, s.loseReply("capture")
	case checkout.PaymentAuthorized:
		r, ok, err = s.store.transition(ctx, key, checkout.PaymentAuthorized, checkout.PaymentCaptured, time.Now().UTC())
		if err != nil {
			return Record{}, fmt.Errorf("capture: %w", err)
		}
		if ok {
			s.captures.Add(1)
		}
		if r.Status == checkout.PaymentCaptured {
			return r, s.loseReply("capture")
		}
	}
	return Record{}, derrors.New(derrors.Conflict, "payment %s is %s and cannot be captured", r.ID, r.Status)
}

// Void cancels the payment under key:
//   - AUTHORIZED becomes VOIDED (the hold is released);
//   - DECLINED and VOIDED are returned unchanged;
//   - CAPTURED is derrors.Conflict (a capture needs a refund);
//   - an unknown key gets a VOIDED tombstone, so that a later Authorize
//     with that key returns it and charges nothing.
func (s *Simulator) Void(ctx context.Context, key string) (Record, error) {
	if err := s.inject(ctx, "void"); err != nil {
		return Record{}, err
	}
	if err := validKey(key); err != nil {
		return Record{}, err
	}
	defer s.lock(key)()
	r, ok, err := s.store.get(ctx, key)
	if err != nil {
		return Record{}, fmt.Errorf("void: %w", err)
	}
	if !ok {
		now := time.Now().UTC()
		tomb := Record{ID: newID(), Key: key, Status: checkout.PaymentVoided, CreatedAt: now, UpdatedAt: now}
		var inserted bool
		r, inserted, err = s.store.insert(ctx, tomb)
		if err != nil {
			return Record{}, fmt.Errorf("void: %w", err)
		}
		if inserted {
			s.tombstones.Add(1)
			return r, s.loseReply("void")
		}
	}
	if r.Status == checkout.PaymentAuthorized {
		var moved bool
		r, moved, err = s.store.transition(ctx, key, checkout.PaymentAuthorized, checkout.PaymentVoided, time.Now().UTC())
		if err != nil {
			return Record{}, fmt.Errorf("void: %w", err)
		}
		if moved {
			s.voids.Add(1)
		}
	}
	if r.Status == checkout.PaymentCaptured {
		return Record{}, derrors.New(derrors.Conflict, "payment %s is captured and cannot be voided", r.ID)
	}
	return r, s.loseReply("void")
}

// Get returns the payment under key, or derrors.NotFound.
func (s *Simulator) Get(ctx context.Context, key string) (Record, error) {
	if err := s.inject(ctx, "get"); err != nil {
		return Record{}, err
	}
	if err := validKey(key); err != nil {
		return Record{}, err
	}
	r, ok, err := s.store.get(ctx, key)
	switch {
	case err != nil:
		return Record{}, fmt.Errorf("get: %w", err)
	case !ok:
		return Record{}, derrors.New(derrors.NotFound, "no payment under idempotency key %q", key)
	}
	return r, nil
}

// Payments returns every stored payment, oldest first, for tests and
// invariant checks. Faults do not apply.
func (s *Simulator) Payments(ctx context.Context) ([]Record, error) {
	return s.store.list(ctx)
}

// Stats returns the simulator's counters.
func (s *Simulator) Stats() Stats {
	return Stats{
		Charges:        s.charges.Load(),
		Declines:       s.declines.Load(),
		Replays:        s.replays.Load(),
		Captures:       s.captures.Load(),
		Voids:          s.voids.Load(),
		Tombstones:     s.tombstones.Load(),
		InjectedErrors: s.injected.Load(),
		LostReplies:    s.lost.Load(),
	}
}

// newID returns a random payment id.
func newID() string { return "pay_" + rand.Text() }
