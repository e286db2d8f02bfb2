// Command bare is the baseline of make bench: a bare net/http server that
// answers every request with the same bytes (a file's contents), as fast
// as Go's standard library allows.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// fields is a repeatable -header flag: "Name: value" fields every
// response carries besides Content-Type and Content-Length.
type fields [][2]string

func (f *fields) String() string { return fmt.Sprint(*f) }

func (f *fields) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	*f = append(*f, [2]string{http.CanonicalHeaderKey(strings.TrimSpace(name)), strings.TrimSpace(value)})
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	file := flag.String("file", "", "file whose bytes every response carries")
	ctype := flag.String("type", "application/json", "Content-Type of the responses")
	spin := flag.Duration("spin", 0, "CPU time each request burns before answering (to measure what a microsecond of handler work costs in throughput)")
	var extra fields
	flag.Var(&extra, "header", "a header field \"Name: value\" that every response carries too (repeatable): the same fields as brisk's, to tell net/http's cost of writing them from brisk's own")
	flag.Parse()
	body, err := os.ReadFile(*file)
	if err != nil {
		log.Fatal(err)
	}
	n := strconv.Itoa(len(body))
	// The extra fields' values, made once, as brisk keeps its own.
	type field struct {
		name  string
		value []string
	}
	set := make([]field, len(extra))
	for i, f := range extra {
		set[i] = field{f[0], []string{f[1]}}
	}
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *spin > 0 {
			for t := time.Now(); time.Since(t) < *spin; {
			}
		}
		h := w.Header()
		h["Content-Type"] = []string{*ctype}
		h["Content-Length"] = []string{n}
		for _, f := range set {
			h[f.name] = f.value
		}
		w.Write(body)
	})))
}
