//go:build race

package cache_test

// raceEnabled: the race detector slows the simulations down tenfold.
const raceEnabled = true
