package resilience

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func gatedServer(t *testing.T, g *Gate, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = g.Listener(ts.Listener)
	ts.Config.ConnState = g.ConnState
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// waitActive waits up to 5 s for n places of g to be held, and returns
// how many are.
func waitActive(g *Gate, n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for g.Active() != n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return g.Active()
}

// TestGateBoundsActiveRequests: with 2 places, 6 concurrent requests on 6
// connections are served at most 2 at a time, the others wait their
// turn, and all are answered.
func TestGateBoundsActiveRequests(t *testing.T) {
	g := NewGate(2)
	var active, peak atomic.Int64
	ts := gatedServer(t, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		active.Add(-1)
	}))
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second} // a connection each
			res, err := c.Get(ts.URL)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("status %d", res.StatusCode)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("peak requests in handlers = %d, want 2", p)
	}
	if w := g.Waits(); w < 3 {
		t.Errorf("%d requests waited, want at least 4 of 6 (>= 3 allowing for timing)", w)
	}
	if a := waitActive(g, 0); a != 0 { // connections turn idle just after their response
		t.Errorf("%d places still held after every response", a)
	}
}

// TestGateIdleConnectionsHoldNothing: keep-alive connections that sit
// idle between requests hold no place, so more of them than places are
// served, request after request.
func TestGateIdleConnectionsHoldNothing(t *testing.T) {
	g := NewGate(1)
	ts := gatedServer(t, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	clients := make([]*http.Client, 5)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	}
	for round := range 3 {
		for i, c := range clients {
			res, err := c.Get(ts.URL)
			if err != nil {
				t.Fatalf("round %d, connection %d: %v", round, i, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	// Had an idle connection kept its place, the next connection's
	// request would have waited for it to close: past the clients'
	// timeout. (A request may wait a moment for the previous one's
	// connection to turn idle after its response went out.)
	if a := g.Active(); a > 1 {
		t.Errorf("%d places held", a)
	}
}

// TestGateClosedConnectionReleases: a client that sends a request and
// goes away while it is served gives its place back.
func TestGateClosedConnectionReleases(t *testing.T) {
	g := NewGate(1)
	release := make(chan struct{})
	ts := gatedServer(t, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	waitActive(g, 1)
	c.Close()
	close(release)
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(ts.URL + "/fast")
	if err != nil {
		t.Fatalf("after the first client left, a new request: %v", err)
	}
	res.Body.Close()
	if a := waitActive(g, 0); a != 0 {
		t.Errorf("%d places held after every connection is done", a)
	}
}

// TestGateConnKeepsTCPFeatures: the gated connection still half-closes
// (net/http answers 431 and closes without resetting the client) and
// still copies with sendfile.
func TestGateConnKeepsTCPFeatures(t *testing.T) {
	g := NewGate(4)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.Listener = g.Listener(ts.Listener)
	ts.Config.ConnState = g.ConnState
	ts.Config.MaxHeaderBytes = 1024
	ts.Start()
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("h", 16<<10))
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 431") {
		t.Errorf("oversized header: read %q, %v; want a 431 and a clean close", b, err)
	}
	var _ interface{ CloseWrite() error } = &gatedConn{}
	var _ io.ReaderFrom = &gatedConn{}
}
