//go:build race

package sqlite

// raceEnabled: the race detector slows the transpiled SQLite down ~30x,
// so timing checks are skipped under it.
const raceEnabled = true
