package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loadTestServer answers like the brisk API for the product and checkout
// scenarios, after delay.
func loadTestServer(t *testing.T, delay time.Duration) *httptest.Server {
	var orders atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		w.Write([]byte(`{"id":1}`))
	})
	mux.HandleFunc("POST /v1/auth/register", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"token":"t","token_type":"Bearer"}`))
	})
	mux.HandleFunc("POST /v1/checkout", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Idempotency-Key") == "" || r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"id": "ord-" + strconv.FormatInt(orders.Add(1), 10), "status": "paid"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// runLoadCmd runs `brisk load args...` through run, with env as the environment.
func runLoadCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := run(context.Background(), append([]string{"load"}, args...), getenv, &out, &errOut)
	code = 0
	if err != nil {
		var ee exitError
		if !errors.As(err, &ee) {
			t.Fatalf("brisk load %v: %v (not an exitError)\nstderr: %s", args, err, errOut.String())
		}
		code = ee.code
		errOut.WriteString(err.Error())
	}
	return code, out.String(), errOut.String()
}

func TestLoadExitCodes(t *testing.T) {
	fast := loadTestServer(t, 0)
	slow := loadTestServer(t, 30*time.Millisecond)
	short := []string{"--scenario", "product", "--rate", "50", "--duration", "300ms", "--seed", "1"}
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{
			name:       "budget holds",
			args:       append([]string{"--target", fast.URL, "--budget", "product:p50<1s,errors<1%;all:rate>=40"}, short...),
			wantCode:   0,
			wantStdout: []string{"product:p50<1s", "held", "endpoint"},
		},
		{
			name:       "budget broken",
			args:       append([]string{"--target", slow.URL, "--budget", "product:p99<5ms;all:errors<1%"}, short...),
			wantCode:   1,
			wantStdout: []string{"product:p99<5ms", "BROKEN", "all:errors<1%"},
			wantStderr: "1 of 2 budget conditions broken",
		},
		{
			name:       "no budget",
			args:       append([]string{"--target", fast.URL}, short...),
			wantCode:   0,
			wantStdout: []string{"sent 15 of 15"},
		},
		{
			name:       "target from the environment",
			env:        map[string]string{"BRISK_LOAD_TARGET": fast.URL, "BRISK_LOAD_BUDGET": "product:errors<=0"},
			args:       short,
			wantCode:   0,
			wantStdout: []string{"against " + fast.URL, "product:errors<=0%  0.000%  held"},
		},
		{
			name:       "ramp",
			args:       []string{"--target", fast.URL, "--scenario", "product", "--ramp", "0:100/200ms,100/100ms"},
			wantCode:   0,
			wantStdout: []string{"sent 20 of 20"},
		},
		{name: "bad budget", args: append([]string{"--target", fast.URL, "--budget", "product:p99<fast"}, short...), wantCode: 2, wantStderr: "parse budget"},
		{name: "unknown scenario", args: []string{"--target", fast.URL, "--scenario", "browse"}, wantCode: 2, wantStderr: "unknown scenario"},
		{name: "bad arrival", args: []string{"--target", fast.URL, "--arrival", "bursty"}, wantCode: 2, wantStderr: "arrival"},
		{name: "ramp and rate", args: []string{"--target", fast.URL, "--ramp", "10/1s", "--rate", "5"}, wantCode: 2, wantStderr: "--ramp replaces"},
		{name: "bad ramp", args: []string{"--target", fast.URL, "--ramp", "10"}, wantCode: 2, wantStderr: "ramp"},
		{name: "bad target", args: []string{"--target", "localhost:8080"}, wantCode: 2, wantStderr: "target"},
		{name: "bad flag", args: []string{"--rate", "fast"}, wantCode: 2},
		{name: "bad env", env: map[string]string{"BRISK_LOAD_RATE": "fast"}, wantCode: 2, wantStderr: "BRISK_LOAD_RATE"},
		{name: "extra argument", args: []string{"now"}, wantCode: 2, wantStderr: "unexpected argument"},
		{name: "missing baseline", args: append([]string{"--target", fast.URL, "--compare", "/nonexistent.json"}, short...), wantCode: 2, wantStderr: "compare"},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "BRISK_LOAD_MAX_INFLIGHT"},
		{
			name:       "progress forced on",
			args:       []string{"--target", fast.URL, "--scenario", "product", "--rate", "20", "--duration", "1300ms", "--progress", "on"},
			wantCode:   0,
			wantStderr: "\r\x1b[K1s/1s  sent 2",
		},
		{name: "bad progress", args: []string{"--progress", "sometimes"}, wantCode: 2, wantStderr: "--progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runLoadCmd(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if tt.wantCode == 0 && len(tt.wantStdout) > 0 && strings.Contains(stderr, "\r") {
				t.Errorf("progress written to a non-terminal stderr: %q", stderr)
			}
		})
	}
}

func TestLoadOutAndCompare(t *testing.T) {
	fast := loadTestServer(t, 0)
	slow := loadTestServer(t, 30*time.Millisecond)
	dir := t.TempDir()
	fastJSON, slowJSON := filepath.Join(dir, "fast.json"), filepath.Join(dir, "slow.json")
	short := []string{"--scenario", "product", "--rate", "50", "--duration", "300ms"}

	if code, _, stderr := runLoadCmd(t, nil, append([]string{"--target", fast.URL, "--out", fastJSON}, short...)...); code != 0 {
		t.Fatalf("fast run: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runLoadCmd(t, nil, append([]string{"--target", slow.URL, "--out", slowJSON}, short...)...); code != 0 {
		t.Fatalf("slow run: exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(fastJSON)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Sent      int64 `json:"sent"`
		Endpoints []struct {
			Name      string `json:"name"`
			Histogram string `json:"histogram"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Sent != 15 || len(rep.Endpoints) != 1 || rep.Endpoints[0].Histogram == "" {
		t.Errorf("report file: %v, %+v", err, rep)
	}

	// A slower server against the fast baseline: regressions, exit 1.
	code, stdout, stderr := runLoadCmd(t, nil, append([]string{"--target", slow.URL, "--compare", fastJSON}, short...)...)
	if code != 1 || !strings.Contains(stdout, "REGRESSION") || !strings.Contains(stderr, "regression(s) against") {
		t.Errorf("slow vs fast baseline: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// A faster server against the slow baseline: no regression, exit 0.
	code, stdout, stderr = runLoadCmd(t, nil, append([]string{"--target", fast.URL, "--compare", slowJSON}, short...)...)
	if code != 0 || !strings.Contains(stdout, "no regressions") {
		t.Errorf("fast vs slow baseline: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestLoadOrdersOut(t *testing.T) {
	srv := loadTestServer(t, 0)
	orders := filepath.Join(t.TempDir(), "orders.txt")
	code, stdout, stderr := runLoadCmd(t, nil, "--target", srv.URL, "--scenario", "checkout", "--users", "3",
		"--rate", "100", "--duration", "200ms", "--orders-out", orders, "--budget", "checkout:errors<=0")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(orders)
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(string(b))
	if len(ids) != 20 || ids[0] == "" || !strings.HasPrefix(ids[0], "ord-") {
		t.Errorf("orders file has %d ids (%q...), want 20", len(ids), ids)
	}
	if !strings.Contains(stdout, "orders 20") {
		t.Errorf("report lacks the order count:\n%s", stdout)
	}
}
