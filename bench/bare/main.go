// Command bare is the baseline of make bench: a bare net/http server that
// answers every request with the same bytes (a file's contents), as fast
// as Go's standard library allows.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	file := flag.String("file", "", "file whose bytes every response carries")
	ctype := flag.String("type", "application/json", "Content-Type of the responses")
	spin := flag.Duration("spin", 0, "CPU time each request burns before answering (to measure what a microsecond of handler work costs in throughput)")
	flag.Parse()
	body, err := os.ReadFile(*file)
	if err != nil {
		log.Fatal(err)
	}
	n := strconv.Itoa(len(body))
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *spin > 0 {
			for t := time.Now(); time.Since(t) < *spin; {
			}
		}
		h := w.Header()
		h["Content-Type"] = []string{*ctype}
		h["Content-Length"] = []string{n}
		w.Write(body)
	})))
}
