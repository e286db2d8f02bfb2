package canary

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/load"
)

// product serves GET /v1/products/{id} as the API does, after delay.
func product(delay time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%s,"name":"Oak chair","price":{"amount":4999,"currency":"EUR"}}`, r.PathValue("id"))
	})
	return mux
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("sends load for a few seconds")
	}
	baseline := httptest.NewServer(product(0))
	defer baseline.Close()
	tests := []struct {
		name     string
		canary   http.Handler
		wantPass bool
	}{
		{"identical canary passes", product(0), true},
		{"canary with 5ms injected latency fails", product(5 * time.Millisecond), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			canary := httptest.NewServer(tt.canary)
			defer canary.Close()
			res, err := Run(context.Background(), RunConfig{
				Baseline: baseline.URL,
				Canary:   canary.URL,
				Load: load.Config{
					Scenario: load.ScenarioProduct, Rate: 300, Duration: 2 * time.Second,
					Products: 100, Connections: 32,
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			Write(&sb, res.Verdict)
			t.Logf("\n%s", sb.String())
			if res.Baseline.Total.Requests != res.Canary.Total.Requests {
				t.Errorf("baseline got %d requests, canary %d: want the same traffic", res.Baseline.Total.Requests, res.Canary.Total.Requests)
			}
			if res.Verdict.Pass != tt.wantPass {
				t.Errorf("verdict Pass = %v, want %v", res.Verdict.Pass, tt.wantPass)
			}
		})
	}
}

func TestFromReportRoundTrip(t *testing.T) {
	srv := httptest.NewServer(product(0))
	defer srv.Close()
	rep, err := load.Run(context.Background(), load.Config{Target: srv.URL, Scenario: load.ScenarioProduct, Rate: 200, Duration: 500 * time.Millisecond, Products: 10})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := FromReport(rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].Endpoint != load.EndpointProduct || ss[1].Endpoint != load.AllEndpoints {
		t.Fatalf("FromReport endpoints = %v, want [product all]", ss)
	}
	for _, s := range ss {
		if s.Requests != rep.Total.Requests || s.Latency == nil || s.Latency.TotalCount() != s.Requests {
			t.Errorf("FromReport %s: %d requests, histogram %v; want %d", s.Endpoint, s.Requests, s.Latency, rep.Total.Requests)
		}
		if got, want := us(s.Latency.ValueAtQuantile(99)), rep.Total.Latency.P99; got != want {
			t.Errorf("FromReport %s p99 = %v, want %v", s.Endpoint, got, want)
		}
	}
}
