package cache

import (
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// wallClock is L1's clock (an otter.Clock) and the hit path's (Peek): the
// wall clock, read every coarseClock by a goroutine, so that reading it
// is a variable's load instead of a clock read per hit. It is the wall
// clock, not the monotonic one, because entries carry wall-clock times
// (they come from other instances through L2) that Peek compares it
// with. It lags the precise time by up to coarseClock, more when its
// goroutine runs late. A wall-clock step moves L1's expiry with it; otter
// copes with one backwards (its timer wheel then sweeps every bucket and
// reschedules what has not expired). The goroutine stops with Stop, or
// once the clock is no longer reachable (it holds the clock weakly, as
// otter's own coarse clock does), so a cache that is never closed leaks
// nothing.
type wallClock struct {
	now      atomic.Int64 // unix ns at the last read; 0 once stopped
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newWallClock(every time.Duration) *wallClock {
	c := &wallClock{stop: make(chan struct{}), done: make(chan struct{})}
	c.now.Store(time.Now().UnixNano())
	go runWallClock(weak.Make(c), every, c.stop, c.done)
	return c
}

func runWallClock(wc weak.Pointer[wallClock], every time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c := wc.Value()
			if c == nil {
				return
			}
			c.now.Store(time.Now().UnixNano())
		}
	}
}

// NowNano is the wall-clock time of the last read, in unix ns; once the
// clock is stopped, the precise time.
func (c *wallClock) NowNano() int64 {
	if n := c.now.Load(); n != 0 {
		return n
	}
	return time.Now().UnixNano()
}

// Tick serves otter's periodic clean-up. (otter cannot stop a custom
// clock's ticker; with Go's default timers, asynctimerchan=0, an
// unreferenced ticker is collected once otter's goroutine stops.)
func (c *wallClock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// Stop stops the goroutine; the clock then reads the precise time.
func (c *wallClock) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	c.now.Store(0)
}
