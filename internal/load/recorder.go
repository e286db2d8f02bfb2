package load

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Latencies are recorded in microseconds from 1 µs to one hour with three
// significant digits: about 190 KB per histogram, whatever the run length.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// recordDuration adds d to h, clamped to the histogram's range.
func recordDuration(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	h.RecordValue(us) // cannot fail: us is in range
}

// Outcomes that are not an HTTP status.
const (
	outcomeDropped     = "dropped" // not sent: the in-flight bound was reached
	outcomeTimeout     = "timeout"
	outcomeConnRefused = "conn_refused"
	outcomeConnReset   = "conn_reset"
	outcomeConnClosed  = "conn_closed" // closed before the first response byte
	outcomeEOF         = "eof"
	outcomeError       = "error"
)

// classify names a transport error for the report.
func classify(err error) string {
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &te) && te.Timeout():
		return outcomeTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return outcomeConnClosed
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcomeConnRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return outcomeConnReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return outcomeEOF
	}
	return outcomeError
}

// endpointRecorder accumulates one endpoint's results in constant memory:
// a latency histogram and counters, never a list of samples.
type endpointRecorder struct {
	name string

	mu       sync.Mutex
	hist     *hdrhistogram.Histogram // latency from the scheduled send time
	lag      *hdrhistogram.Histogram // send time behind the scheduled one
	codes    [600]int64              // responses by HTTP status
	outcomes map[string]int64        // failures without a status
	requests int64
	errors   int64
}

func newEndpointRecorder(name string) *endpointRecorder {
	return &endpointRecorder{name: name, hist: newHistogram(), lag: newHistogram(), outcomes: make(map[string]int64)}
}

// response records a request sent lag behind schedule and answered with
// an HTTP status.
func (e *endpointRecorder) response(lag, latency time.Duration, status int) {
	e.mu.Lock()
	recordDuration(e.lag, lag)
	recordDuration(e.hist, latency)
	e.requests++
	if status >= 0 && status < len(e.codes) {
		e.codes[status]++
	} else {
		e.outcomes[strconv.Itoa(status)]++
	}
	if status >= 400 || status < 100 {
		e.errors++
	}
	e.mu.Unlock()
}

// failure records a request that got no response (kind from classify) or
// was never sent (outcomeDropped, which has no lag or latency).
func (e *endpointRecorder) failure(lag, latency time.Duration, kind string) {
	e.mu.Lock()
	if kind != outcomeDropped {
		recordDuration(e.lag, lag)
		recordDuration(e.hist, latency)
	}
	e.requests++
	e.errors++
	e.outcomes[kind]++
	e.mu.Unlock()
}

// counts returns the requests and errors recorded so far.
func (e *endpointRecorder) counts() (requests, errs int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests, e.errors
}

// mergeInto adds the endpoint's histogram to h.
func (e *endpointRecorder) mergeInto(h *hdrhistogram.Histogram) {
	e.mu.Lock()
	h.Merge(e.hist)
	e.mu.Unlock()
}

// mergeLagInto adds the endpoint's send lag histogram to h.
func (e *endpointRecorder) mergeLagInto(h *hdrhistogram.Histogram) {
	e.mu.Lock()
	h.Merge(e.lag)
	e.mu.Unlock()
}

// report summarizes the endpoint over a send phase of the given length.
func (e *endpointRecorder) report(phase time.Duration) EndpointReport {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := EndpointReport{
		Name:     e.name,
		Requests: e.requests,
		Errors:   e.errors,
		Statuses: make(map[string]int64),
		hist:     e.hist.Clone(),
	}
	for code, n := range e.codes {
		if n > 0 {
			r.Statuses[strconv.Itoa(code)] = n
		}
	}
	for k, n := range e.outcomes {
		r.Statuses[k] = n
	}
	r.finish(phase)
	return r
}
