//go:build race

package loader_test

// raceEnabled reports whether the test binary was built with -race. Tests
// keep their largest inputs to builds without it, where Go code runs at
// full speed.
const raceEnabled = true
