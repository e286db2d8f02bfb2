package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShopperMixBudget is CI's performance budget: a short open-model run
// of the shopper mix against `brisk up`, with budgets loose enough for a
// noisy 2-core machine but tight enough to catch a real regression (a
// checkout path that stalls, errors on the happy path, a lost order).
func TestShopperMixBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s load run; skipped in -short")
	}
	_, c, dir := startUp(t, "--login-limit-ip", "off", "--login-limit-account", "off")
	orders := filepath.Join(t.TempDir(), "orders.txt")
	var out, errs syncBuffer
	err := run(t.Context(), []string{"load", "--target", c.base, "--scenario", "shop", "--rate", "150",
		"--duration", "20s", "--users", "20", "--products", "300", "--progress", "off", "--orders-out", orders,
		"--budget", "all:p99<1s,errors<0.5%;checkout:p99<2s;product:p99<500ms"}, func(string) string { return "" }, &out, &errs)
	t.Logf("brisk load report:\n%s", out.String())
	if err != nil {
		t.Fatalf("budgeted load test failed: %v\n%s", err, errs.String())
	}
	b, rerr := os.ReadFile(orders)
	if rerr != nil {
		t.Fatal(rerr)
	}
	ids := strings.Fields(string(b))
	if len(ids) == 0 {
		t.Fatal("no order acknowledged during the run")
	}
	// Every acknowledged order exists and is paid (nothing lost).
	db, derr := sql.Open("sqlite", "file:"+filepath.Join(dir, "brisk.db")+"?mode=ro")
	if derr != nil {
		t.Fatal(derr)
	}
	defer db.Close()
	for _, id := range ids {
		var status string
		if err := db.QueryRow("SELECT status FROM orders WHERE id = ?", id).Scan(&status); err != nil || status != "paid" {
			t.Errorf("acknowledged order %s: status %q, %v; want paid", id, status, err)
		}
	}
	t.Logf("%d orders acknowledged, all paid", len(ids))
}
