package cache

import (
	"testing"
	"time"
)

// TestWallClock: the coarse clock follows the wall clock, and once stopped (its goroutine gone) reads the precise time.
func TestWallClock(t *testing.T) {
	const every = 10 * time.Millisecond
	c := newWallClock(every)
	// 40 ticks later it must have moved: a frozen clock would be 400 ms
	// behind; a goroutine late by up to 20 ticks (a busy machine) is not.
	time.Sleep(40 * every)
	now := time.Now().UnixNano()
	if got := c.NowNano(); got > now || got < now-int64(20*every) {
		t.Fatalf("NowNano %v behind the wall clock; want at most 20 ticks of %v", time.Duration(now-got), every)
	}
	c.Stop()
	c.Stop() // idempotent
	before := time.Now().UnixNano()
	time.Sleep(5 * every)
	if got := c.NowNano(); got < before+int64(5*every) {
		t.Fatalf("stopped clock reads %v, want the precise time (>= %v)", got, before+int64(5*every))
	}
	select {
	case <-c.done:
	default:
		t.Fatal("goroutine still running after Stop")
	}
}
