//go:build !race

package trampoline

const raceEnabled = false
