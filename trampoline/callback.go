package trampoline

import "github.com/ebitengine/purego"

// NewCallback returns a C function pointer that calls fn, for libraries
// that take callbacks (comparators, parser handlers, row callbacks). fn
// takes and returns integer or pointer-sized values, as purego.NewCallback
// accepts. While the callback runs the library's call window stays open,
// because the outer call is still in flight, so fn may call into the same
// or another gated library again.
//
// A process can create at least 2000 callbacks and never frees them:
// create each once and reuse it. A callback that panics unwinds through the
// library's C frames into the Go caller, as with cgo. The gate still ends
// the call's window, but the library may be left in an inconsistent state.
func NewCallback(fn any) uintptr {
	return purego.NewCallback(fn)
}
