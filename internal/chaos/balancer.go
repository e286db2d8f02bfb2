package chaos

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer spreads requests round-robin over API instances, as a load
// balancer in front of them would. A backend that fails at the transport
// level (refused, reset) is taken out for a second and the request is
// tried on the next one; checkouts carry an Idempotency-Key, so a retry
// never charges twice (the invariants check that it did not).
type Balancer struct {
	backends []string
	next     atomic.Uint64
	client   *http.Client

	mu       sync.Mutex
	downTill map[string]time.Time
}

// NewBalancer returns a balancer over the base URLs.
func NewBalancer(backends []string) *Balancer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	return &Balancer{backends: backends, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, downTill: map[string]time.Time{}}
}

func (b *Balancer) healthy(be string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.After(b.downTill[be])
}

func (b *Balancer) markDown(be string) {
	b.mu.Lock()
	b.downTill[be] = time.Now().Add(time.Second)
	b.mu.Unlock()
}

// ServeHTTP forwards r to a healthy backend.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	start := b.next.Add(1)
	n := uint64(len(b.backends))
	now := time.Now()
	var lastErr error
	for i := range n {
		be := b.backends[(start+i)%n]
		if !b.healthy(be, now) && i+1 < n {
			continue
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, be+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			lastErr = err
			break
		}
		out.Header = r.Header.Clone()
		out.Header.Set("X-Forwarded-For", "127.0.0.1")
		resp, err := b.client.Do(out)
		if err != nil {
			lastErr = err
			b.markDown(be)
			continue
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	msg := "no backend"
	if lastErr != nil {
		msg = lastErr.Error()
	}
	http.Error(w, msg, http.StatusBadGateway)
}
