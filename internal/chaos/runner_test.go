package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
)

// fakeAPI answers the load generator: registration, login, reads and
// checkouts (a new order id each time); while broken is set, every
// request fails with 503.
type fakeAPI struct {
	broken atomic.Bool
	mu     sync.Mutex
	orders []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if f.broken.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/v1/auth/register" || r.URL.Path == "/v1/auth/login":
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"access_token":"tok","token":"tok"}`)
	case r.URL.Path == "/v1/checkout":
		f.mu.Lock()
		id := fmt.Sprintf("ord-%d", len(f.orders))
		f.orders = append(f.orders, id)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"status":"paid"}`, id)
	default:
		fmt.Fprint(w, `{"items":[]}`)
	}
}

// fakeEnv injects by breaking the fake API; its snapshot holds the
// orders the API acknowledged, minus lose of them.
type fakeEnv struct {
	api      *fakeAPI
	url      string
	lose     int
	injected []string
}

func (e *fakeEnv) Target() string { return e.url }

func (e *fakeEnv) Inject(_ context.Context, f Fault) (func(context.Context) error, error) {
	if f.Kind == "fail" {
		return nil, errors.New("cannot inject")
	}
	e.injected = append(e.injected, f.Kind)
	e.api.broken.Store(true)
	return func(context.Context) error { e.api.broken.Store(false); return nil }, nil
}

func (e *fakeEnv) Snapshot(context.Context, time.Duration) (Snapshot, error) {
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	var s Snapshot
	var sold int64
	for i, id := range e.api.orders {
		if i < e.lose {
			continue
		}
		key := fmt.Sprintf("k%d", i)
		s.Orders = append(s.Orders, checkout.Order{ID: id, UserID: 1, IdempotencyKey: key, Status: checkout.StatusPaid,
			PaymentID: "pay-" + id, Lines: []checkout.Line{{ProductID: 1, Quantity: 1}}, CreatedAt: time.Now()})
		s.Charges = append(s.Charges, Charge{ID: "pay-" + id, Key: checkout.PaymentKey(1, key), OrderID: id, Status: checkout.PaymentCaptured})
		sold++
	}
	s.Stock = []catalog.Stock{{ProductID: 1, Initial: 1000, Available: 1000 - sold, Sold: sold}}
	s.TakenAt = time.Now()
	return s, nil
}

func quickExperiment() Experiment {
	return Experiment{
		Name: "fake", Hypothesis: "h", Instances: 1,
		Load:        LoadSpec{Scenario: "checkout", Rate: 40, Users: 2},
		SteadyState: "all:errors<1%",
		Phases:      Phases{Duration(700 * time.Millisecond), Duration(1500 * time.Millisecond), Duration(1500 * time.Millisecond)},
		Faults:      []Fault{{Target: TargetRedis, Kind: KindDown, At: Duration(200 * time.Millisecond), For: Duration(500 * time.Millisecond)}},
	}
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs load for a few seconds")
	}
	tests := []struct {
		name      string
		lose      int
		kind      string
		holds     bool
		violation string
	}{
		{"healthy", 0, KindDown, true, ""},
		{"lost order", 1, KindDown, false, AckedOrderExists},
		{"fault not injected", 0, "fail", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{}
			srv := httptest.NewServer(api)
			defer srv.Close()
			env := &fakeEnv{api: api, url: srv.URL, lose: tc.lose}
			e := quickExperiment()
			e.Faults[0].Kind = tc.kind
			r := Run(t.Context(), e, env, Options{Products: 10})
			if r.Holds != tc.holds {
				t.Fatalf("Holds = %v, want %v (reasons %v)", r.Holds, tc.holds, r.Reasons)
			}
			var sb strings.Builder
			if err := WriteTable(&sb, []Result{r}); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", sb.String())
			if tc.violation != "" {
				found := false
				for _, v := range r.Violations {
					found = found || v.Invariant == tc.violation
				}
				if !found {
					t.Errorf("violations %v, want %s", r.Violations, tc.violation)
				}
				if !strings.Contains(sb.String(), "FAIL") || !strings.Contains(sb.String(), "REJECTED") {
					t.Errorf("table does not show the failure:\n%s", sb.String())
				}
			}
			if tc.kind == "fail" {
				return
			}
			if len(env.injected) != 1 || api.broken.Load() {
				t.Errorf("injected %v, broken at the end %v: want one fault, removed", env.injected, api.broken.Load())
			}
			during := r.Phases[1]
			if during.Errors == 0 || during.Held != true {
				t.Errorf("during phase %+v: want errors while broken (no during budget)", during)
			}
			if !r.Recovered || r.Recovery > time.Second {
				t.Errorf("recovery %v (recovered %v), want within 1s", r.Recovery, r.Recovered)
			}
			if r.Phases[0].Errors != 0 || r.Phases[2].Errors != 0 || !r.Phases[2].Held {
				t.Errorf("before/after phases had errors: %+v %+v", r.Phases[0], r.Phases[2])
			}
		})
	}
}

func TestRecovery(t *testing.T) {
	t0 := time.Now()
	w := func(from, to int, completed, errs int64) window {
		return window{t0.Add(time.Duration(from) * 100 * time.Millisecond), t0.Add(time.Duration(to) * 100 * time.Millisecond), completed, errs}
	}
	end := t0.Add(250 * time.Millisecond)
	tests := []struct {
		name string
		ws   []window
		want time.Duration
		ok   bool
	}{
		{"clean right after", []window{w(0, 2, 5, 5), w(3, 5, 5, 0), w(5, 7, 5, 0)}, 50 * time.Millisecond, true},
		{"errors then clean", []window{w(3, 5, 5, 1), w(5, 7, 5, 0), w(7, 9, 5, 0)}, 250 * time.Millisecond, true},
		{"one clean window is not enough", []window{w(3, 5, 5, 0), w(5, 7, 5, 2)}, 0, false},
		{"idle windows do not count", []window{w(3, 5, 0, 0), w(5, 7, 0, 0)}, 0, false},
	}
	for _, tc := range tests {
		got, ok := recovery(tc.ws, end)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: recovery = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBalancerFailsOver(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "good %s %s", r.Method, b)
	}))
	defer good.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused from now on
	lb := httptest.NewServer(NewBalancer([]string{deadURL, good.URL}))
	defer lb.Close()
	for i := range 6 {
		resp, err := http.Post(lb.URL+"/x", "text/plain", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("good POST %d", i) {
			t.Errorf("request %d: %d %q, want the good backend with the body", i, resp.StatusCode, b)
		}
	}
}
