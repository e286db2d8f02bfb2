package sqlite

import "fmt"

// Sync is how far a commit goes before it is acknowledged: SQLite's
// synchronous setting in WAL mode. It is a flag.Value.
type Sync string

const (
	// SyncNormal (the zero value too) leaves a commit in the WAL, in the
	// operating system's hands: it survives a crash of the process
	// (kill -9), but an OS crash or a power loss may roll back the last
	// commits before the next checkpoint. SQLite's usual setting for WAL.
	SyncNormal Sync = "normal"
	// SyncFull fsyncs the WAL before a commit returns: an acknowledged
	// commit survives a power loss too, for about one fsync per write
	// transaction (this machine: a checkout's writes took 1.7 times as
	// long, BenchmarkBeginComplete).
	SyncFull Sync = "full"
)

// String implements flag.Value.
func (s *Sync) String() string {
	if s == nil || *s == "" {
		return string(SyncNormal)
	}
	return string(*s)
}

// Set implements flag.Value.
func (s *Sync) Set(v string) error {
	switch Sync(v) {
	case SyncNormal, SyncFull:
		*s = Sync(v)
		return nil
	}
	return fmt.Errorf("sqlite sync %q: want normal or full", v)
}

// Pragma is the DSN's _pragma value for s.
func (s Sync) Pragma() string {
	if s == SyncFull {
		return "synchronous(FULL)"
	}
	return "synchronous(NORMAL)"
}
