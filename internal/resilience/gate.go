package resilience

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Gate bounds the HTTP/1.1 requests a server reads and serves at once.
// A connection whose next request arrives while the gate is full waits,
// parked, before the request is read; waiters go in order of arrival.
//
// Under overload this is what keeps admitted requests fast. On a
// saturated CPU every runnable goroutine waits its turn, and a request
// that blocks a dozen times (a checkout: the store, the payment call)
// waits a dozen turns behind every connection with a request to parse.
// Parked connections take no turns, so the queue stays in the clients
// and the kernel's socket buffers, where it costs nothing, and what is
// admitted is served at the speed of an unloaded server. A request in
// flight holds its place from the arrival of its first bytes until its
// response is written; an idle keep-alive connection holds none.
//
// Use Listener on the server's listener and ConnState as the server's
// ConnState hook. HTTP/2 multiplexes requests on a connection, so the
// gate suits plain HTTP/1.1 servers only.
type Gate struct {
	sem     *semaphore.Weighted
	size    int64
	waiting atomic.Int64
	held    atomic.Int64
	waits   atomic.Int64 // requests that had to wait
}

// NewGate returns a gate of size places.
func NewGate(size int) *Gate {
	return &Gate{sem: semaphore.NewWeighted(int64(size)), size: int64(size)}
}

// Size is the number of places.
func (g *Gate) Size() int { return int(g.size) }

// Active is the number of requests holding a place.
func (g *Gate) Active() int { return int(g.held.Load()) }

// Waiting is the number of connections waiting for a place.
func (g *Gate) Waiting() int { return int(g.waiting.Load()) }

// Waits is the number of requests so far that had to wait.
func (g *Gate) Waits() int64 { return g.waits.Load() }

// Listener wraps ln so that its connections pass the gate; their far
// deadlines are kept coarsely (see coarseTick) until ln is closed.
func (g *Gate) Listener(ln net.Listener) net.Listener {
	return &gateListener{Listener: ln, g: g, s: newSweeper()}
}

// ConnState is the server's ConnState hook: a connection that has
// written its response (idle) or is gone gives its place back.
func (g *Gate) ConnState(c net.Conn, s http.ConnState) {
	if gc, ok := c.(*gatedConn); ok && (s == http.StateIdle || s == http.StateClosed || s == http.StateHijacked) {
		gc.release()
	}
}

func (g *Gate) acquire() {
	if g.sem.TryAcquire(1) {
		g.held.Add(1)
		return
	}
	g.waiting.Add(1)
	_ = g.sem.Acquire(context.Background(), 1) // never fails: no deadline
	g.waiting.Add(-1)
	g.held.Add(1)
	g.waits.Add(1)
}

func (g *Gate) release() {
	g.held.Add(-1)
	g.sem.Release(1)
}

type gateListener struct {
	net.Listener
	g *Gate
	s *sweeper
}

func (l *gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &gatedConn{Conn: c, g: l.g, s: l.s}
	if !l.s.add(gc) { // closed meanwhile, and nothing would enforce its deadlines
		c.Close()
		return nil, net.ErrClosed
	}
	return gc, nil
}

// Close closes the listener; its sweeper stops once the connections it
// accepted are closed too.
func (l *gateListener) Close() error {
	l.s.close()
	return l.Listener.Close()
}

// gatedConn takes a place in the gate when data arrives while it holds
// none: the first bytes of a request. Reads happen on the connection's
// goroutine and, while a handler runs, on net/http's background reader;
// the place is given back by ConnState on the connection's goroutine.
type gatedConn struct {
	net.Conn
	g       *Gate
	s       *sweeper
	holding atomic.Bool
	rd, wd  deadline
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.holding.CompareAndSwap(false, true) {
		c.g.acquire()
	}
	return n, err
}

func (c *gatedConn) release() {
	if c.holding.CompareAndSwap(true, false) {
		c.g.release()
	}
}

// CloseWrite half-closes the connection, as net/http does before closing
// one it answered with an error (so the client reads the answer rather
// than a reset).
func (c *gatedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom lets net/http copy a file to the connection with sendfile.
func (c *gatedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
