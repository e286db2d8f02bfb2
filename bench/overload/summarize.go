//go:build ignore

// Summarize reads `brisk load --out` reports of an overload run and
// prints, per report, goodput (answers that are not 5xx or transport
// failures, per second) as a share of a given capacity, how much was shed
// (503), and the p99 latency of admitted requests: the shed ones are
// answered in well under a millisecond, so the admitted p99 is the
// overall histogram's quantile 1 - 0.01*admitted/all.
//
//	go run bench/overload/summarize.go -capacity 600 -slo 250ms on.json off.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

type endpoint struct {
	Name      string           `json:"name"`
	Requests  int64            `json:"requests"`
	Statuses  map[string]int64 `json:"statuses"`
	Histogram string           `json:"histogram"`
}

type report struct {
	TargetRate float64    `json:"target_rate"`
	Duration   int64      `json:"duration_ns"`
	Rate       float64    `json:"rate"`
	Total      endpoint   `json:"total"`
	Endpoints  []endpoint `json:"endpoints"`
}

// split counts good answers (< 500), shed ones (503) and failures.
func split(e endpoint) (good, shed, failed int64) {
	for s, n := range e.Statuses {
		code, err := strconv.Atoi(s)
		switch {
		case err != nil:
			failed += n
		case code == 503:
			shed += n
		case code >= 500:
			failed += n
		default:
			good += n
		}
	}
	return
}

// admittedP99 returns the p99 of the requests that were not shed.
func admittedP99(e endpoint, shed int64) (time.Duration, error) {
	h, err := hdrhistogram.Decode([]byte(e.Histogram))
	if err != nil {
		return 0, err
	}
	n := h.TotalCount()
	if n == 0 || n == shed {
		return 0, nil
	}
	q := 1 - 0.01*float64(n-shed)/float64(n)
	return time.Duration(h.ValueAtQuantile(q*100)) * time.Microsecond, nil
}

func main() {
	capacity := flag.Float64("capacity", 0, "measured capacity in good answers per second")
	slo := flag.Duration("slo", 250*time.Millisecond, "latency objective of admitted requests (p99)")
	asJSON := flag.Bool("json", false, "print one JSON object per report")
	flag.Parse()
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var r report
		err = json.NewDecoder(f).Decode(&r)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, path, err)
			os.Exit(1)
		}
		secs := time.Duration(r.Duration).Seconds()
		good, shed, failed := split(r.Total)
		p99, err := admittedP99(r.Total, shed)
		if err != nil {
			fmt.Fprintln(os.Stderr, path, err)
			os.Exit(1)
		}
		goodput := float64(good) / secs
		share := 0.0
		if *capacity > 0 {
			share = goodput / *capacity
		}
		if *asJSON {
			json.NewEncoder(os.Stdout).Encode(map[string]any{
				"report": path, "offered": r.TargetRate, "goodput": goodput, "share": share,
				"shed": shed, "failed": failed, "good": good, "admitted_p99_ms": p99.Seconds() * 1000,
			})
			continue
		}
		fmt.Printf("%s: offered %.0f/s for %.0fs: goodput %.0f/s = %.0f%% of capacity %.0f/s; shed %d (%.1f%%), failed %d; admitted p99 %v (SLO %v: %s)\n",
			path, r.TargetRate, secs, goodput, 100*share, *capacity, shed, 100*float64(shed)/float64(max(1, r.Total.Requests)), failed,
			p99.Round(time.Millisecond), *slo, map[bool]string{true: "met", false: "missed"}[p99 <= *slo])
		for _, e := range r.Endpoints {
			g, s, fl := split(e)
			ep, _ := admittedP99(e, s)
			fmt.Printf("  %-9s good %7d  shed %6d  failed %6d  admitted p99 %v\n", e.Name, g, s, fl, ep.Round(time.Millisecond))
		}
	}
}
