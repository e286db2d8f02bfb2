package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runBrisk(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// TestSLOCommands: `brisk slo rules` and `brisk slo dashboard` write what
// is committed in deploy/, check lists the objectives, status reads a
// running brisk, and bad input is a usage error (exit 2).
func TestSLOCommands(t *testing.T) {
	dir := t.TempDir()
	if out, err := runBrisk(t, "slo", "rules", "--out", dir); err != nil {
		t.Fatalf("slo rules: %v\n%s", err, out)
	}
	dash := filepath.Join(dir, "brisk.json")
	if out, err := runBrisk(t, "slo", "dashboard", "--out", dash); err != nil {
		t.Fatalf("slo dashboard: %v\n%s", err, out)
	}
	for written, committed := range map[string]string{
		filepath.Join(dir, "rules/slo-checkout.yml"):    "../../deploy/prometheus/rules/slo-checkout.yml",
		filepath.Join(dir, "tests/slo-browse.test.yml"): "../../deploy/prometheus/tests/slo-browse.test.yml",
		dash: "../../deploy/grafana/brisk.json",
	} {
		a, err := os.ReadFile(written)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the committed %s", written, committed)
		}
	}

	out, err := runBrisk(t, "slo", "check", "--spec", "../../slo.yaml")
	if err != nil || !strings.Contains(out, "checkout-latency       99.9%      200ms") {
		t.Errorf("slo check = %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("service: x\nwindow: 1h\njourneys: []\n"), 0o644)
	for _, args := range [][]string{{"slo", "check", "--spec", bad}, {"slo", "frobnicate"}, {"slo"}} {
		_, err := runBrisk(t, args...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("brisk %s = %v, want exit 2", strings.Join(args, " "), err)
		}
	}

	_, c, _ := startUp(t)
	c.do("GET", "/v1/products/1", nil).want(t, 200, "product")
	out, err = runBrisk(t, "slo", "status", "--url", c.base)
	if err != nil || !strings.Contains(out, "browse-availability") || !strings.Contains(out, "BUDGET LEFT") {
		t.Errorf("slo status = %v\n%s", err, out)
	}
}
