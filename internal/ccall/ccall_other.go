//go:build !amd64

package ccall

// The native stubs exist for amd64 only so far; arm64 follows in
// stub_arm64.s. Until then a call panics with a clear message rather than
// jumping to a null address.

const notImplemented = "ccall: native calls are implemented for linux/amd64 only"

func callInts(f *intFrame) { panic(notImplemented) }

func callFull(f *fullFrame) { panic(notImplemented) }
