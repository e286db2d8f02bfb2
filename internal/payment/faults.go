package payment

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/briskhq/brisk/internal/derrors"
)

// Faults are the failures the simulator injects into every call of
// Authorize, Capture, Void and Get. The zero value injects nothing.
type Faults struct {
	// Latency is added before each call does anything; the wait ends
	// early, with the context's error, when the call's context is done.
	Latency time.Duration
	// Jitter spreads Latency uniformly over [Latency-Jitter, Latency+Jitter]
	// (never below zero).
	Jitter time.Duration
	// ErrorRate (0..1) is the share of calls answered with an
	// UNAVAILABLE error (derrors.Unavailable) before doing anything.
	ErrorRate float64
	// LostReplyRate (0..1) is the share of calls that do their work
	// (an authorization charges) and then answer UNAVAILABLE, as when a
	// reply is lost on the wire: the caller must find out with a lookup.
	LostReplyRate float64
	// DeclineRate (0..1) is the share of new authorizations with an
	// approving card that are declined anyway, with ReasonProcessorDeclined.
	DeclineRate float64
}

// Validate reports whether f's fields are in range.
func (f Faults) Validate() error {
	switch {
	case f.Latency < 0 || f.Jitter < 0:
		return fmt.Errorf("faults: latency %v and jitter %v must not be negative", f.Latency, f.Jitter)
	case !isRate(f.ErrorRate):
		return fmt.Errorf("faults: error rate %v is not in [0, 1]", f.ErrorRate)
	case !isRate(f.LostReplyRate):
		return fmt.Errorf("faults: lost reply rate %v is not in [0, 1]", f.LostReplyRate)
	case !isRate(f.DeclineRate):
		return fmt.Errorf("faults: decline rate %v is not in [0, 1]", f.DeclineRate)
	}
	return nil
}

func isRate(r float64) bool { return r >= 0 && r <= 1 } // false for NaN

// SetFaults replaces the simulator's faults; calls already waiting keep
// the latency they drew.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.faults.Store(&f)
	s.logger.Info("payment faults set", "latency", f.Latency, "jitter", f.Jitter,
		"error_rate", f.ErrorRate, "lost_reply_rate", f.LostReplyRate, "decline_rate", f.DeclineRate)
	return nil
}

// Faults returns the simulator's current faults.
func (s *Simulator) Faults() Faults { return *s.faults.Load() }

// inject applies the latency and error faults before call op does anything.
func (s *Simulator) inject(ctx context.Context, op string) error {
	f := s.Faults()
	if d := delay(f); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: injected latency: %w", op, ctx.Err())
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if f.ErrorRate > 0 && mrand.Float64() < f.ErrorRate {
		s.injected.Add(1)
		return derrors.New(derrors.Unavailable, "%s: injected fault: processor unavailable", op)
	}
	return nil
}

// loseReply returns an UNAVAILABLE error for a call that did its work,
// at the rate of Faults.LostReplyRate; nil otherwise.
func (s *Simulator) loseReply(op string) error {
	if r := s.Faults().LostReplyRate; r > 0 && mrand.Float64() < r {
		s.lost.Add(1)
		return derrors.New(derrors.Unavailable, "%s: injected fault: reply lost", op)
	}
	return nil
}

// delay draws one latency from f.
func delay(f Faults) time.Duration {
	d := f.Latency
	if f.Jitter > 0 {
		d += time.Duration(mrand.Int64N(int64(2*f.Jitter)+1)) - f.Jitter
	}
	return max(d, 0)
}
