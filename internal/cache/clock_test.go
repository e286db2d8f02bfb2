package cache

import (
	"runtime"
	"testing"
	"time"
)

// TestWallClock: the coarse clock follows the wall clock, and once
// stopped (its goroutine gone) reads the precise time.
func TestWallClock(t *testing.T) {
	const every = 10 * time.Millisecond
	c := newWallClock(every)
	// 100 ticks later it must have moved: a frozen clock would be 1 s
	// behind; a goroutine late by up to 50 ticks (a busy machine) is not.
	time.Sleep(100 * every)
	now := time.Now().UnixNano()
	if got := c.NowNano(); got > now || got < now-int64(50*every) {
		t.Fatalf("NowNano %v behind the wall clock; want at most 50 ticks of %v", time.Duration(now-got), every)
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

// TestWallClockUnreachable: the goroutine of a clock nobody holds (a
// cache that was never closed) stops by itself.
func TestWallClockUnreachable(t *testing.T) {
	done := newWallClock(time.Millisecond).done
	deadline := time.After(5 * time.Second)
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatal("the goroutine of an unreachable clock is still running")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
