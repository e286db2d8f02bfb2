package resilience

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Coarse deadlines. net/http moves a keep-alive connection's deadlines
// four or five times per request (the whole request, the write, back to
// none, idle, the next request's headers), and each move re-arms a
// runtime timer — on a cached GET, about as much CPU as the handler. The
// deadlines are seconds away and almost never reached, so a gated
// connection keeps a far deadline (more than coarseSlack ahead) as a
// number, and a sweeper enforces the ones that have passed every
// coarseTick by setting the connection's real deadline to the moment
// passed: pending and later reads (or writes) fail with
// os.ErrDeadlineExceeded, as they would have. A far deadline is so
// enforced up to coarseTick late; a near one, a past one (net/http's
// abort of its background read) and none are set on the connection at
// once, exactly. Times are kept on the monotonic clock (as offsets from
// epoch), as a net.Conn's own deadlines are: a wall-clock step moves
// none of them.
const (
	coarseTick  = 250 * time.Millisecond
	coarseSlack = time.Second
)

// epoch is the origin of the kept deadlines: they are nanoseconds since.
var epoch = time.Now()

// sweeper enforces the far deadlines of a listener's connections.
type sweeper struct {
	now     atomic.Int64 // ns since epoch at the last tick
	mu      sync.Mutex
	conns   map[*gatedConn]struct{}
	closed  bool          // the listener is closed
	stopped bool          // run has returned: add refuses
	stop    chan struct{} // closed when the sweeper stops
}

func newSweeper() *sweeper {
	s := &sweeper{conns: make(map[*gatedConn]struct{}), stop: make(chan struct{})}
	s.now.Store(int64(time.Since(epoch)))
	go s.run()
	return s
}

// run sweeps every coarseTick until the listener is closed and its last
// connection too (a server draining after closing its listener still
// has its connections' deadlines enforced).
func (s *sweeper) run() {
	defer close(s.stop)
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for now := range t.C {
		if !s.sweep(int64(now.Sub(epoch))) {
			return
		}
	}
}

// sweep enforces the deadlines passed at now; false: nothing is left to
// sweep, ever.
func (s *sweeper) sweep(now int64) bool {
	s.now.Store(now)
	s.mu.Lock()
	if s.closed && len(s.conns) == 0 {
		s.stopped = true
		s.mu.Unlock()
		return false
	}
	due := make([]*gatedConn, 0, 8)
	for c := range s.conns {
		if c.due(now) {
			due = append(due, c)
		}
	}
	s.mu.Unlock()
	for _, c := range due {
		c.rd.expire(now, c.Conn.SetReadDeadline)
		c.wd.expire(now, c.Conn.SetWriteDeadline)
	}
	return true
}

// add registers c; false when the sweeper has stopped (the listener was
// closed while the connection was being accepted).
func (s *sweeper) add(c *gatedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *sweeper) remove(c *gatedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// close tells the sweeper that no connections will be added: it stops
// once the ones it has are closed.
func (s *sweeper) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// deadline is one direction's deadline of a gated connection.
type deadline struct {
	mu    sync.Mutex    // orders changes of the real deadline
	at    atomic.Uint64 // far deadline kept here, ns since epoch; 0: none
	armed atomic.Bool   // the connection has a real deadline set
}

// set applies t: kept when far or zero (clearing the connection's real
// deadline if one is set), else set on the connection with setReal.
func (d *deadline) set(s *sweeper, t time.Time, setReal func(time.Time) error) error {
	var at time.Duration // kept; 0: none
	if !t.IsZero() {
		// Sub saturates: no overflow.
		if at = t.Sub(epoch); at <= time.Duration(s.now.Load())+coarseSlack {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.at.Store(0)
			d.armed.Store(true)
			return setReal(t)
		}
	}
	d.at.Store(uint64(at))
	if !d.armed.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if at != 0 && d.at.Load() == 0 {
		// The sweeper took this very deadline, passed already (its tick
		// came late), and set it on the connection: keep it.
		return nil
	}
	d.armed.Store(false)
	return setReal(time.Time{})
}

// due returns the kept deadline if it has passed by now.
func (d *deadline) due(now int64) (uint64, bool) {
	at := d.at.Load()
	return at, at != 0 && at <= uint64(now)
}

// expire sets the connection's real deadline if the kept one has passed
// by now.
func (d *deadline) expire(now int64, setReal func(time.Time) error) {
	at, ok := d.due(now)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Armed before the kept deadline is taken: a deadline set meanwhile
	// (set stores it, then looks at armed) then clears what this sets.
	was := d.armed.Swap(true)
	if !d.at.CompareAndSwap(at, 0) {
		d.armed.Store(was) // changed meanwhile
		return
	}
	_ = setReal(epoch.Add(time.Duration(at)))
}

// due reports whether a kept deadline of c has passed by now.
func (c *gatedConn) due(now int64) bool {
	_, r := c.rd.due(now)
	_, w := c.wd.due(now)
	return r || w
}

func (c *gatedConn) SetReadDeadline(t time.Time) error {
	return c.rd.set(c.s, t, c.Conn.SetReadDeadline)
}

func (c *gatedConn) SetWriteDeadline(t time.Time) error {
	return c.wd.set(c.s, t, c.Conn.SetWriteDeadline)
}

func (c *gatedConn) SetDeadline(t time.Time) error {
	err := c.SetReadDeadline(t)
	if werr := c.SetWriteDeadline(t); err == nil {
		err = werr
	}
	return err
}

func (c *gatedConn) Close() error {
	c.s.remove(c)
	return c.Conn.Close()
}

var _ net.Conn = (*gatedConn)(nil)
