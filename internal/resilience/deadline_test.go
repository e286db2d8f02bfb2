package resilience

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// gatedPair returns the server side of a loopback connection accepted
// through a gate listener, the client side, and the listener.
func gatedPair(t *testing.T) (*gatedConn, net.Conn, *gateListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := NewGate(4).Listener(ln).(*gateListener)
	t.Cleanup(func() { gl.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := gl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*gatedConn), client, gl
}

// readFor reads from c until it fails and returns how long that took and
// the error; a read still blocked after 10 s is ended by closing c.
func readFor(c net.Conn) (time.Duration, error) {
	guard := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer guard.Stop()
	start := time.Now()
	_, err := c.Read(make([]byte, 16))
	return time.Since(start), err
}

// TestCoarseDeadlineFar: a deadline more than coarseSlack ahead is kept
// off the connection, and enforced once passed, at most a tick late
// (plus scheduling slack on a loaded machine).
func TestCoarseDeadlineFar(t *testing.T) {
	c, _, _ := gatedPair(t)
	d := coarseSlack + 300*time.Millisecond
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	if c.rd.at.Load() == 0 || c.rd.armed.Load() {
		t.Fatalf("far deadline: kept %d, armed %v; want kept, not armed", c.rd.at.Load(), c.rd.armed.Load())
	}
	took, err := readFor(c)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if took < d-10*time.Millisecond || took > d+coarseTick+time.Second {
		t.Fatalf("read failed after %v, want %v to %v", took, d, d+coarseTick+time.Second)
	}
}

// TestCoarseDeadlineNear: a deadline closer than coarseSlack is set on
// the connection exactly.
func TestCoarseDeadlineNear(t *testing.T) {
	c, _, _ := gatedPair(t)
	if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if !c.rd.armed.Load() {
		t.Fatal("near deadline not set on the connection")
	}
	took, err := readFor(c)
	if !errors.Is(err, os.ErrDeadlineExceeded) || took > coarseSlack {
		t.Fatalf("read: %v after %v, want a deadline error within %v", err, took, coarseSlack)
	}
}

// TestCoarseDeadlineAbortAndClear: net/http aborts its background read
// with a deadline long past, then clears it; the pending read fails at
// once and the next one reads data.
func TestCoarseDeadlineAbortAndClear(t *testing.T) {
	c, client, _ := gatedPair(t)
	c.SetReadDeadline(time.Now().Add(time.Minute)) // far, kept
	done := make(chan error, 1)
	go func() { _, err := readFor(c); done <- err }()
	time.Sleep(50 * time.Millisecond)
	c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("aborted read: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a deadline in the past did not abort the pending read")
	}
	c.SetReadDeadline(time.Time{})
	if c.rd.armed.Load() || c.rd.at.Load() != 0 {
		t.Fatal("zero deadline left a deadline behind")
	}
	client.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read after clearing: %q, %v", buf, err)
	}
}

// TestCoarseDeadlineMoved: moving a far deadline later before it passes
// (what net/http does on every request) keeps the connection usable
// past the first one; moving a near (set) one far clears it.
func TestCoarseDeadlineMoved(t *testing.T) {
	c, client, _ := gatedPair(t)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // near: set
	c.SetReadDeadline(time.Now().Add(coarseSlack + 200*time.Millisecond))
	if c.rd.armed.Load() {
		t.Fatal("moving a near deadline far left the near one on the connection")
	}
	time.Sleep(coarseSlack / 2)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	time.Sleep(coarseSlack + 2*coarseTick) // past the first two
	client.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after the deadline moved: %v", err)
	}
}

// TestCoarseDeadlineWrite: a client that stops reading gets its
// connection's writes failed at the far write deadline.
func TestCoarseDeadlineWrite(t *testing.T) {
	c, _, _ := gatedPair(t)
	d := coarseSlack + 200*time.Millisecond
	c.SetWriteDeadline(time.Now().Add(d))
	start := time.Now()
	buf := make([]byte, 1<<20)
	var err error
	for time.Since(start) < 10*time.Second && err == nil {
		_, err = c.Write(buf) // the socket buffers fill, then Write blocks
	}
	if took := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || took < d-10*time.Millisecond {
		t.Fatalf("write: %v after %v, want a deadline error after %v", err, took, d)
	}
}

// TestCoarseDeadlineServerTimeouts: through a gated listener, net/http's
// idle and header timeouts still close connections, a little late at
// most.
func TestCoarseDeadlineServerTimeouts(t *testing.T) {
	g := NewGate(4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 1500 * time.Millisecond, IdleTimeout: 1200 * time.Millisecond,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, ConnState: g.ConnState,
	}
	go srv.Serve(g.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	for _, tt := range []struct {
		name string
		send string // before waiting for the server to close
		want time.Duration
	}{
		{"idle keep-alive", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", srv.IdleTimeout},
		{"slow headers", "GET / HTTP/1.1\r\nHost: x\r\n", srv.ReadHeaderTimeout},
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		io.WriteString(conn, tt.send)
		br := bufio.NewReader(conn)
		if strings.HasPrefix(tt.send, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			start = time.Now()
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, br) // until the server closes
		took := time.Since(start)
		if err != nil || took < tt.want-50*time.Millisecond || took > tt.want+coarseTick+time.Second {
			t.Errorf("%s: server closed after %v (err %v), want about %v", tt.name, took, err, tt.want)
		}
	}
}

// TestCoarseDeadlineForgetsClosed: closed connections leave the
// sweeper; once the listener is closed it keeps enforcing the deadlines
// of the connections still open (a draining server's), and stops when
// they are closed.
func TestCoarseDeadlineForgetsClosed(t *testing.T) {
	c, _, gl := gatedPair(t)
	count := func() int {
		gl.s.mu.Lock()
		defer gl.s.mu.Unlock()
		return len(gl.s.conns)
	}
	if n := count(); n != 1 {
		t.Fatalf("sweeper holds %d connections, want 1", n)
	}
	gl.Close()
	c.SetReadDeadline(time.Now().Add(coarseSlack + 100*time.Millisecond))
	if took, err := readFor(c); !errors.Is(err, os.ErrDeadlineExceeded) || took > coarseSlack+coarseTick+time.Second {
		t.Fatalf("after the listener closed: read %v after %v, want the deadline enforced", err, took)
	}
	c.Close()
	if n := count(); n != 0 {
		t.Fatalf("sweeper holds %d connections after close, want 0", n)
	}
	select {
	case <-gl.s.stop:
	case <-time.After(5 * coarseTick):
		t.Fatal("the sweeper still runs with its listener and connections closed")
	}
}

// TestCoarseDeadlineExtendedAfterExpiry: as on a net.Conn, a deadline
// set after the last one passed makes the connection usable again.
func TestCoarseDeadlineExtendedAfterExpiry(t *testing.T) {
	c, client, _ := gatedPair(t)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	c.rd.at.Store(uint64(max(time.Since(epoch)-time.Second, 1)))  // as if a minute had passed
	c.rd.expire(int64(time.Since(epoch)), c.Conn.SetReadDeadline) // as the sweeper would
	if took, err := readFor(c); !errors.Is(err, os.ErrDeadlineExceeded) || took > time.Second {
		t.Fatalf("after expiry: read %v after %v, want a deadline error at once", err, took)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	client.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after a new deadline: %v", err)
	}
}

// lateListener models a TCP Accept that had already taken a connection
// from the kernel when the listener was closed: it returns it late.
type lateListener struct {
	net.Listener
	release chan struct{}
	conn    net.Conn
}

func (l *lateListener) Accept() (net.Conn, error) { <-l.release; return l.conn, nil }
func (l *lateListener) Close() error              { return nil }

// TestCoarseDeadlineAcceptAfterStop: a connection the inner Accept
// returns after Close, once the sweeper has stopped (closed, no
// connections), is closed and refused: nothing would enforce its far
// deadlines.
func TestCoarseDeadlineAcceptAfterStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ll := &lateListener{release: make(chan struct{}), conn: sc}
	gl := NewGate(1).Listener(ll).(*gateListener)
	got := make(chan net.Conn, 1)
	go func() { c, _ := gl.Accept(); got <- c }() // inner Accept in progress
	gl.Close()
	select {
	case <-gl.s.stop: // closed and empty: the sweeper stops
	case <-time.After(2 * time.Second):
		t.Fatal("sweeper did not stop")
	}
	close(ll.release) // the in-flight Accept returns its connection now
	if c := <-got; c != nil {
		c.Close()
		t.Fatal("Accept after the sweeper stopped returned a connection whose far deadlines nothing would enforce")
	}
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused connection was left open")
	}
}

// TestCoarseDeadlineSetExpireRace: set stores a far deadline B while
// the sweeper (whose tick came more than coarseSlack late) takes B, now
// passed, and sets it on the connection; set must not then clear it as
// if it were an old near deadline of its own, which would leave B
// neither kept nor set: never enforced.
func TestCoarseDeadlineSetExpireRace(t *testing.T) {
	s := &sweeper{} // now 0: any positive deadline past 1 s is far
	const B = uint64(10 * time.Second)
	now := int64(B) + 1
	var gen, ack atomic.Int64
	var cur atomic.Pointer[deadline]
	var real atomic.Int64 // the fake connection's deadline, ns since epoch; 0 none
	setReal := func(t time.Time) error {
		if t.IsZero() {
			real.Store(0)
		} else {
			real.Store(int64(t.Sub(epoch)))
		}
		return nil
	}
	done := make(chan struct{})
	go func() { // the sweeper
		defer close(done)
		for i := int64(1); ; i++ {
			for gen.Load() < i {
				if gen.Load() < 0 {
					return
				}
				runtime.Gosched()
			}
			d := cur.Load()
			for k := 0; k < 8; k++ {
				d.expire(now, setReal)
			}
			ack.Store(i)
		}
	}()
	lost := 0
	deadlineT := epoch.Add(time.Duration(B))
	stop := time.Now().Add(2 * time.Second)
	i := int64(0)
	for ; time.Now().Before(stop) && lost == 0; i++ {
		d := &deadline{}
		d.at.Store(B) // B kept (set before, same value set again)
		real.Store(0)
		cur.Store(d)
		gen.Store(i + 1)
		d.set(s, deadlineT, setReal)
		for ack.Load() < i+1 {
		}
		if d.at.Load() == 0 && !d.armed.Load() && real.Load() == 0 {
			lost++
		}
	}
	gen.Store(-1)
	<-done
	if lost > 0 {
		t.Fatalf("after %d rounds: a passed deadline was left neither kept nor set on the connection", i)
	}
	t.Logf("%d rounds, no lost deadline", i)
}
