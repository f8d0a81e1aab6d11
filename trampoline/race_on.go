//go:build race

package trampoline

// The race detector does not know that a tally slot has one writer at a
// time, so under it every tally add is atomic.
const raceEnabled = true
