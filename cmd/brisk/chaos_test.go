package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/chaos"
	"github.com/briskhq/brisk/internal/postgres/pgtest"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

// TestChaosExperiments runs every experiment of chaos/ at a quarter of
// its durations on PostgreSQL + Redis, with API instances as real
// processes (the kill experiment needs SIGKILL): every hypothesis must
// hold and every invariant pass. About 2 minutes.
func TestChaosExperiments(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos experiments on PostgreSQL + Redis; skipped in -short")
	}
	redisURL, _ := redistest.New(t) // skips or fails like the other Redis tests when Redis is missing
	_ = pgtest.NewDatabase(t)       // likewise for PostgreSQL
	bin := filepath.Join(t.TempDir(), "brisk")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	all, err := chaos.LoadDir("../../chaos")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 8 {
		t.Errorf("%d experiments in chaos/, want at least 8", len(all))
	}
	start := time.Now()
	var out syncBuffer
	err = run(t.Context(), []string{"chaos", "run", "--dir", "../../chaos", "--scale", "0.25", "--bin", bin,
		"--pg-admin", pgtest.AdminDSN(), "--redis", redisURL, "--products", "300"},
		func(string) string { return "" }, &out, &out)
	t.Logf("brisk chaos run --scale 0.25 (%v):\n%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatalf("brisk chaos run: %v", err)
	}
	table := out.String()
	for _, e := range all {
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(e.Name) + `\s.*$`).FindString(table)
		if !strings.Contains(row, "pass") || !strings.HasSuffix(strings.TrimSpace(row), "holds") {
			t.Errorf("experiment %s: row %q, want invariants pass and the hypothesis holding", e.Name, row)
		}
	}
}

func TestChaosList(t *testing.T) {
	var out syncBuffer
	if err := run(t.Context(), []string{"chaos", "list", "--dir", "../../chaos"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"payment-latency", "payment-errors", "payment-down", "redis-down", "redis-slow",
		"postgres-resets", "postgres-down", "api-kill"} {
		if !strings.Contains(out.String(), name+"  (") {
			t.Errorf("chaos list has no %s:\n%s", name, out.String())
		}
	}
	err := run(t.Context(), []string{"chaos", "run", "--dir", "../../chaos", "no-such-experiment"}, func(string) string { return "" }, &out, &out)
	if exitCode(err) != 2 {
		t.Errorf("chaos run of an unknown experiment: %v, want exit 2", err)
	}
}
