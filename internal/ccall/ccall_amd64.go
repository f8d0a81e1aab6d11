package ccall

import "unsafe"

// Addresses of the native stubs, taken in assembly so that they are the ABI0
// entry points that runtime.cgocall expects.
var (
	callIntsABI0 uintptr
	callFullABI0 uintptr
)

func callInts(f *intFrame) {
	runtimeCgocall(callIntsABI0, unsafe.Pointer(f))
}

func callFull(f *fullFrame) {
	runtimeCgocall(callFullABI0, unsafe.Pointer(f))
}
