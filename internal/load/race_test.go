//go:build race

package load

// raceEnabled: the race detector slows the generator several times, so
// timing tests lower their rates.
const raceEnabled = true
