package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// wallClock is L1's clock (an otter.Clock) and the hit path's (Peek): the
// wall clock, read every coarseClock by a goroutine, so that reading it
// is a variable's load instead of a clock read per hit. It is the wall
// clock, not the monotonic one, because entries carry wall-clock times
// (they come from other instances through L2) that Peek compares it
// with. It lags the precise time by up to coarseClock, more when its
// goroutine runs late.
type wallClock struct {
	now      atomic.Int64 // unix ns at the last read; 0 once stopped
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newWallClock(every time.Duration) *wallClock {
	c := &wallClock{stop: make(chan struct{}), done: make(chan struct{})}
	c.now.Store(time.Now().UnixNano())
	go c.run(every)
	return c
}

func (c *wallClock) run(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
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

// Tick serves otter's periodic clean-up.
func (c *wallClock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// Stop stops the goroutine; the clock then reads the precise time.
func (c *wallClock) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	c.now.Store(0)
}
