package load_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/briskhq/brisk/internal/load"
)

// A CI gate or a chaos experiment: run the shopper mix, print the report,
// and fail when a budget breaks.
func ExampleRun() {
	budget, err := load.ParseBudget("checkout:p99<200ms,errors<0.1%;product:p99<50ms")
	if err != nil {
		log.Fatal(err)
	}
	rep, err := load.Run(context.Background(), load.Config{
		Target:   "http://127.0.0.1:8080",
		Scenario: load.ScenarioShop,
		Rate:     500,
		Duration: 30 * time.Second,
		Arrival:  load.Poisson,
	})
	if err != nil {
		log.Fatal(err)
	}
	load.WriteTable(os.Stdout, rep)
	results := rep.Check(budget)
	load.WriteBudget(os.Stdout, results)
	if !load.Held(results) {
		fmt.Println("budget broken")
		os.Exit(1)
	}
}
