package payment

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
	"github.com/briskhq/brisk/internal/sqlite"
)

// stores names the store kinds every simulator test runs against.
var stores = []string{"memory", "sqlite"}

// openStore opens a store of the given kind, closed when the test ends.
func openStore(t testing.TB, kind string) *Store {
	t.Helper()
	path := ""
	if kind == "sqlite" {
		path = filepath.Join(t.TempDir(), "payments.db")
	}
	st, err := Open(path, sqlite.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newSim(t testing.TB, st *Store, f Faults) *Simulator {
	t.Helper()
	sim, err := New(st, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

func usd(n int64) money.Money { return money.Money{Amount: n, Currency: "USD"} }

// step is one call to the simulator and what it must answer.
type step struct {
	op         string // authorize, capture, void, get
	req        Request
	key        string // capture, void, get
	wantStatus checkout.PaymentStatus
	wantReason string
	wantErr    error // a derrors kind, or nil
}

func (st step) run(ctx context.Context, sim *Simulator) (Record, error) {
	switch st.op {
	case "authorize":
		return sim.Authorize(ctx, st.req)
	case "capture":
		return sim.Capture(ctx, st.key)
	case "void":
		return sim.Void(ctx, st.key)
	case "get":
		return sim.Get(ctx, st.key)
	}
	panic("unknown op " + st.op)
}

func TestSimulatorRules(t *testing.T) {
	visa := Request{Key: "k1", OrderID: "o1", Amount: usd(1250), Token: TokenVisa}
	with := func(f func(*Request)) Request { r := visa; f(&r); return r }
	const (
		authorized = checkout.PaymentAuthorized
		captured   = checkout.PaymentCaptured
		declined   = checkout.PaymentDeclined
		voided     = checkout.PaymentVoided
	)
	tests := []struct {
		name        string
		steps       []step
		wantCharges int64
		wantRecords int
	}{
		{"visa approves", []step{{op: "authorize", req: visa, wantStatus: authorized}}, 1, 1},
		{"mastercard approves", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenMastercard }), wantStatus: authorized},
		}, 1, 1},
		{"decline", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenDecline }), wantStatus: declined, wantReason: ReasonCardDeclined},
		}, 0, 1},
		{"insufficient funds", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenInsufficientFunds }), wantStatus: declined, wantReason: ReasonInsufficientFunds},
		}, 0, 1},
		{"unknown token", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = "tok_amex" }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"zero amount", []step{
			{op: "authorize", req: with(func(r *Request) { r.Amount.Amount = 0 }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"negative amount", []step{
			{op: "authorize", req: with(func(r *Request) { r.Amount.Amount = -5 }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"lower-case currency", []step{
			{op: "authorize", req: with(func(r *Request) { r.Amount.Currency = "usd" }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"empty currency", []step{
			{op: "authorize", req: with(func(r *Request) { r.Amount.Currency = "" }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"four-letter currency", []step{
			{op: "authorize", req: with(func(r *Request) { r.Amount.Currency = "USDT" }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"empty key", []step{
			{op: "authorize", req: with(func(r *Request) { r.Key = "" }), wantErr: derrors.Invalid},
		}, 0, 0},
		{"replay returns the stored payment", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "authorize", req: visa, wantStatus: authorized},
		}, 1, 1},
		{"replay with another amount", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "authorize", req: with(func(r *Request) { r.Amount.Amount++ }), wantErr: derrors.Mismatch},
		}, 1, 1},
		{"replay with another currency", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "authorize", req: with(func(r *Request) { r.Amount.Currency = "EUR" }), wantErr: derrors.Mismatch},
		}, 1, 1},
		{"replay with another card", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenMastercard }), wantErr: derrors.Mismatch},
		}, 1, 1},
		{"decline is stored and replayed", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenDecline }), wantStatus: declined, wantReason: ReasonCardDeclined},
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenDecline }), wantStatus: declined, wantReason: ReasonCardDeclined},
			{op: "get", key: "k1", wantStatus: declined, wantReason: ReasonCardDeclined},
		}, 0, 1},
		{"get unknown key", []step{{op: "get", key: "nope", wantErr: derrors.NotFound}}, 0, 0},
		{"capture", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "capture", key: "k1", wantStatus: captured},
			{op: "capture", key: "k1", wantStatus: captured},
			{op: "get", key: "k1", wantStatus: captured},
		}, 1, 1},
		{"capture unknown key", []step{{op: "capture", key: "nope", wantErr: derrors.NotFound}}, 0, 0},
		{"capture declined", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenDecline }), wantStatus: declined, wantReason: ReasonCardDeclined},
			{op: "capture", key: "k1", wantErr: derrors.Conflict},
		}, 0, 1},
		{"capture voided", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "void", key: "k1", wantStatus: voided},
			{op: "capture", key: "k1", wantErr: derrors.Conflict},
		}, 1, 1},
		{"void releases the hold", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "void", key: "k1", wantStatus: voided},
			{op: "void", key: "k1", wantStatus: voided},
			{op: "authorize", req: visa, wantStatus: voided},
		}, 1, 1},
		{"void captured", []step{
			{op: "authorize", req: visa, wantStatus: authorized},
			{op: "capture", key: "k1", wantStatus: captured},
			{op: "void", key: "k1", wantErr: derrors.Conflict},
			{op: "get", key: "k1", wantStatus: captured},
		}, 1, 1},
		{"void declined is unchanged", []step{
			{op: "authorize", req: with(func(r *Request) { r.Token = TokenInsufficientFunds }), wantStatus: declined, wantReason: ReasonInsufficientFunds},
			{op: "void", key: "k1", wantStatus: declined, wantReason: ReasonInsufficientFunds},
		}, 0, 1},
		{"void tombstone blocks a late authorize", []step{
			{op: "void", key: "k1", wantStatus: voided},
			{op: "authorize", req: visa, wantStatus: voided},
			{op: "authorize", req: with(func(r *Request) { r.Amount.Amount = 99 }), wantStatus: voided},
			{op: "capture", key: "k1", wantErr: derrors.Conflict},
			{op: "get", key: "k1", wantStatus: voided},
		}, 0, 1},
		{"void empty key", []step{{op: "void", key: "", wantErr: derrors.Invalid}}, 0, 0},
	}
	for _, kind := range stores {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				ctx := t.Context()
				sim := newSim(t, openStore(t, kind), Faults{})
				var first Record
				for i, st := range tt.steps {
					got, err := st.run(ctx, sim)
					if st.wantErr != nil {
						if !errors.Is(err, st.wantErr) {
							t.Fatalf("step %d: %s(%+v, %q) error = %v, want %v", i, st.op, st.req, st.key, err, st.wantErr)
						}
						continue
					}
					if err != nil {
						t.Fatalf("step %d: %s(%+v, %q) error = %v", i, st.op, st.req, st.key, err)
					}
					if got.Status != st.wantStatus || got.DeclineReason != st.wantReason {
						t.Fatalf("step %d: %s = %s %q, want %s %q", i, st.op, got.Status, got.DeclineReason, st.wantStatus, st.wantReason)
					}
					if first.ID == "" {
						first = got
					} else if got.ID != first.ID {
						t.Errorf("step %d: %s returned payment %s, want the key's payment %s", i, st.op, got.ID, first.ID)
					}
				}
				if got := sim.Stats().Charges; got != tt.wantCharges {
					t.Errorf("Stats().Charges = %d, want %d", got, tt.wantCharges)
				}
				recs, err := sim.Payments(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != tt.wantRecords {
					t.Errorf("Payments() = %d records, want %d: %+v", len(recs), tt.wantRecords, recs)
				}
			})
		}
	}
}

// TestAuthorizeConcurrentSameKey: 50 concurrent authorizations with one
// key charge once and all get the same answer. It runs several rounds,
// each on a fresh key, to give a race more chances to show.
func TestAuthorizeConcurrentSameKey(t *testing.T) {
	const n, rounds = 50, 10
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			sim := newSim(t, openStore(t, kind), Faults{})
			for round := range rounds {
				var (
					wg   sync.WaitGroup
					got  [n]Record
					errs [n]error
				)
				req := Request{Key: fmt.Sprint("same-", round), OrderID: "o1", Amount: usd(500), Token: TokenVisa}
				start := make(chan struct{}) // released at once, so the calls overlap
				for i := range n {
					wg.Go(func() {
						<-start
						got[i], errs[i] = sim.Authorize(ctx, req)
					})
				}
				close(start)
				wg.Wait()
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("round %d: Authorize #%d: %v", round, i, errs[i])
					}
					if got[i] != got[0] {
						t.Errorf("round %d: Authorize #%d = %+v, want %+v", round, i, got[i], got[0])
					}
				}
			}
			if s := sim.Stats(); s.Charges != rounds || s.Replays != rounds*(n-1) {
				t.Errorf("Stats() = %+v, want %d charges and %d replays", s, rounds, rounds*(n-1))
			}
			recs, err := sim.Payments(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != rounds {
				t.Errorf("Payments() = %d records, want %d (one per key)", len(recs), rounds)
			}
		})
	}
}

// TestStoreSharedBetweenSimulators: two simulators on one SQLite file (as
// two replicas) still charge once per key: the primary key decides.
func TestStoreSharedBetweenSimulators(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "payments.db")
	var sims [2]*Simulator
	for i := range sims {
		st, err := Open(path, sqlite.SyncNormal)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		sims[i] = newSim(t, st, Faults{})
	}
	req := Request{Key: "shared", Amount: usd(700), Token: TokenVisa}
	var (
		wg  sync.WaitGroup
		got [20]Record
	)
	for i := range got {
		wg.Go(func() {
			r, err := sims[i%2].Authorize(ctx, req)
			if err != nil {
				t.Errorf("Authorize: %v", err)
			}
			got[i] = r
		})
	}
	wg.Wait()
	for i := range got {
		if got[i].ID != got[0].ID {
			t.Errorf("Authorize #%d = payment %s, want %s", i, got[i].ID, got[0].ID)
		}
	}
	if c := sims[0].Stats().Charges + sims[1].Stats().Charges; c != 1 {
		t.Errorf("charges = %d, want 1", c)
	}
}

// TestPersistenceAcrossReopen, with either SQLite sync mode: what the
// service answered is what it answers after a restart.
func TestPersistenceAcrossReopen(t *testing.T) {
	for mode, want := range map[sqlite.Sync]string{sqlite.SyncNormal: "1", sqlite.SyncFull: "2"} {
		t.Run(string(mode), func(t *testing.T) {
			testPersistenceAcrossReopen(t, mode, want)
		})
	}
}

func testPersistenceAcrossReopen(t *testing.T, mode sqlite.Sync, want string) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "payments.db")
	st, err := Open(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := st.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil || got != want {
		t.Errorf("PRAGMA synchronous = %q, %v; want %s", got, err, want)
	}
	sim := newSim(t, st, Faults{})
	steps := []step{
		{op: "authorize", req: Request{Key: "a", OrderID: "oa", Amount: usd(100), Token: TokenVisa}, wantStatus: checkout.PaymentAuthorized},
		{op: "authorize", req: Request{Key: "c", OrderID: "oc", Amount: usd(300), Token: TokenMastercard}, wantStatus: checkout.PaymentAuthorized},
		{op: "capture", key: "c", wantStatus: checkout.PaymentCaptured},
		{op: "authorize", req: Request{Key: "d", OrderID: "od", Amount: usd(400), Token: TokenDecline}, wantStatus: checkout.PaymentDeclined, wantReason: ReasonCardDeclined},
		{op: "void", key: "t", wantStatus: checkout.PaymentVoided},
	}
	for _, s := range steps {
		if _, err := s.run(ctx, sim); err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
	}
	before, err := sim.Payments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := Open(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	sim2 := newSim(t, st2, Faults{})
	after, err := sim2.Payments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("after reopen Payments() =\n%+v\nwant\n%+v", after, before)
	}
	// The reopened service still refuses to charge again or to land a late
	// authorization on the tombstone.
	again := []step{
		{op: "authorize", req: steps[0].req, wantStatus: checkout.PaymentAuthorized},
		{op: "get", key: "c", wantStatus: checkout.PaymentCaptured},
		{op: "authorize", req: steps[3].req, wantStatus: checkout.PaymentDeclined, wantReason: ReasonCardDeclined},
		{op: "authorize", req: Request{Key: "t", Amount: usd(1), Token: TokenVisa}, wantStatus: checkout.PaymentVoided},
	}
	for _, s := range again {
		got, err := s.run(ctx, sim2)
		if err != nil || got.Status != s.wantStatus || got.DeclineReason != s.wantReason {
			t.Errorf("after reopen %s(%+v, %q) = %s %q, %v; want %s %q", s.op, s.req, s.key, got.Status, got.DeclineReason, err, s.wantStatus, s.wantReason)
		}
	}
	if c := sim2.Stats().Charges; c != 0 {
		t.Errorf("after reopen Stats().Charges = %d, want 0", c)
	}
}

func TestFaultsValidate(t *testing.T) {
	tests := []struct {
		name    string
		f       Faults
		wantErr bool
	}{
		{"zero", Faults{}, false},
		{"all set", Faults{Latency: time.Millisecond, Jitter: time.Millisecond, ErrorRate: 1, LostReplyRate: 0.5, DeclineRate: 0.1}, false},
		{"negative latency", Faults{Latency: -1}, true},
		{"negative jitter", Faults{Jitter: -1}, true},
		{"error rate above 1", Faults{ErrorRate: 1.5}, true},
		{"negative lost reply rate", Faults{LostReplyRate: -0.1}, true},
		{"decline rate above 1", Faults{DeclineRate: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, openStore(t, "memory"), Faults{})
			err := sim.SetFaults(tt.f)
			if (err != nil) != tt.wantErr {
				t.Fatalf("SetFaults(%+v) = %v, want error %v", tt.f, err, tt.wantErr)
			}
			want := tt.f
			if tt.wantErr {
				want = Faults{}
			}
			if got := sim.Faults(); got != want {
				t.Errorf("Faults() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	f := Faults{Latency: 10 * time.Millisecond, Jitter: 4 * time.Millisecond}
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := delay(f)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 6*time.Millisecond || hi > 14*time.Millisecond {
		t.Errorf("delay(%+v) ranged over [%v, %v], want within [6ms, 14ms]", f, lo, hi)
	}
	if hi-lo < 6*time.Millisecond {
		t.Errorf("delay(%+v) ranged over [%v, %v], want spread close to 8ms", f, lo, hi)
	}
	if d := delay(Faults{Latency: time.Millisecond, Jitter: 5 * time.Millisecond}); d < 0 {
		t.Errorf("delay = %v, want >= 0", d)
	}
}

func TestFaultInjection(t *testing.T) {
	ctx := t.Context()
	sim := newSim(t, openStore(t, "memory"), Faults{ErrorRate: 1})
	req := Request{Key: "k", Amount: usd(100), Token: TokenVisa}
	if _, err := sim.Authorize(ctx, req); !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Authorize with ErrorRate 1 = %v, want Unavailable", err)
	}
	if recs, _ := sim.Payments(ctx); len(recs) != 0 {
		t.Fatalf("an injected error stored %+v, want nothing", recs)
	}

	// A lost reply: the charge lands, the caller sees Unavailable, and a
	// lookup finds the payment.
	if err := sim.SetFaults(Faults{LostReplyRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Authorize(ctx, req); !errors.Is(err, derrors.Unavailable) {
		t.Fatalf("Authorize with LostReplyRate 1 = %v, want Unavailable", err)
	}
	if err := sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if r, err := sim.Get(ctx, "k"); err != nil || r.Status != checkout.PaymentAuthorized {
		t.Fatalf("Get after lost reply = %+v, %v; want authorized", r, err)
	}

	if err := sim.SetFaults(Faults{DeclineRate: 1}); err != nil {
		t.Fatal(err)
	}
	r, err := sim.Authorize(ctx, Request{Key: "k2", Amount: usd(100), Token: TokenVisa})
	if err != nil || r.Status != checkout.PaymentDeclined || r.DeclineReason != ReasonProcessorDeclined {
		t.Fatalf("Authorize with DeclineRate 1 = %+v, %v; want declined %q", r, err, ReasonProcessorDeclined)
	}
	if s := sim.Stats(); s.InjectedErrors != 1 || s.LostReplies != 1 || s.Charges != 1 || s.Declines != 1 {
		t.Errorf("Stats() = %+v, want 1 injected error, 1 lost reply, 1 charge, 1 decline", s)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	sim := newSim(t, openStore(t, "memory"), Faults{Latency: 10 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sim.Authorize(ctx, Request{Key: "k", Amount: usd(100), Token: TokenVisa})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Authorize = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Authorize took %v, want about 50ms", d)
	}
	if recs, _ := sim.Payments(t.Context()); len(recs) != 0 {
		t.Errorf("a cancelled call stored %+v, want nothing", recs)
	}
}
