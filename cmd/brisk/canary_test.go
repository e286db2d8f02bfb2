package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// delayProxy forwards to target after adding delay to every request: a
// canary with injected latency.
func delayProxy(t *testing.T, target string, delay time.Duration) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCanaryCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two brisk instances under load")
	}
	_, base, _ := startUp(t, "--web=false")
	_, twin, _ := startUp(t, "--web=false")
	load := []string{"--scenario", "product", "--products", "300", "--rate", "150", "--duration", "3s", "--arrival", "constant", "--connections", "32"}
	tests := []struct {
		name     string
		canary   string
		wantPass bool
	}{
		{"identical instance passes", twin.base, true},
		{"canary with 10ms injected latency fails", delayProxy(t, twin.base, 10*time.Millisecond), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut syncBuffer
			args := append([]string{"canary", "--baseline", base.base, "--canary", tt.canary, "--out-dir", dir}, load...)
			err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
			t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			var ee exitError
			switch {
			case tt.wantPass && err != nil:
				t.Fatalf("brisk canary = %v, want success", err)
			case !tt.wantPass && (!errors.As(err, &ee) || ee.code != 1):
				t.Fatalf("brisk canary = %v, want exit code 1", err)
			}
			want := map[bool]string{true: "verdict: PASS", false: "verdict: FAIL"}[tt.wantPass]
			if !strings.Contains(out.String(), want) {
				t.Errorf("stdout lacks %q", want)
			}
			// The saved reports give the same verdict offline.
			args = []string{"canary", "--baseline-report", filepath.Join(dir, "baseline.json"), "--canary-report", filepath.Join(dir, "canary.json")}
			var out2 syncBuffer
			err2 := run(context.Background(), args, func(string) string { return "" }, &out2, &errOut)
			if (err2 == nil) != tt.wantPass || !strings.Contains(out2.String(), want) {
				t.Errorf("brisk canary on saved reports = %v, output:\n%s\nwant %q", err2, out2.String(), want)
			}
		})
	}
}

func TestCanaryUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	tests := []struct {
		name string
		args []string
	}{
		{"no targets", nil},
		{"one target", []string{"--baseline", "http://127.0.0.1:1"}},
		{"one report", []string{"--baseline-report", bad}},
		{"reports and URLs", []string{"--baseline-report", bad, "--canary-report", bad, "--canary", "http://127.0.0.1:1"}},
		{"unreadable report", []string{"--baseline-report", bad, "--canary-report", bad}},
		{"alpha out of range", []string{"--baseline", "http://127.0.0.1:1", "--canary", "http://127.0.0.1:2", "--alpha", "0.9"}},
		{"bad scenario", []string{"--baseline", "http://127.0.0.1:1", "--canary", "http://127.0.0.1:2", "--scenario", "nope"}},
		{"stray argument", []string{"extra"}},
	}
	for _, tt := range tests {
		var out, errOut syncBuffer
		err := run(context.Background(), append([]string{"canary"}, tt.args...), func(string) string { return "" }, &out, &errOut)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%s: brisk canary %v = %v, want exit code 2", tt.name, tt.args, err)
		}
	}
	// The environment backs the flags.
	var out, errOut syncBuffer
	env := map[string]string{"BRISK_CANARY_ALPHA": "2"}
	err := run(context.Background(), []string{"canary", "--baseline", "http://127.0.0.1:1", "--canary", "http://127.0.0.1:2"},
		func(k string) string { return env[k] }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "alpha") {
		t.Errorf("BRISK_CANARY_ALPHA=2: err = %v, want an alpha usage error", err)
	}
}
