// Package ccall calls C functions from Go without cgo.
//
// A call fills a frame on the goroutine's stack and enters the native stub
// through runtime.cgocall, the route that cgo-generated code and purego take:
// the runtime switches to the thread's system stack, marks the goroutine as
// in a system call, and calls the stub with the frame pointer as its only
// argument. The stub loads the argument registers of the System V AMD64 ABI
// from the frame, calls the target, and stores the results back.
//
// The package reaches runtime.cgocall through go:linkname. The Go runtime
// keeps that symbol reachable because widely used packages (purego among
// them) depend on it; if a Go release removes it, the build fails at link
// time rather than at run time.
//
// # Memory
//
// Arguments are plain machine words. A Go pointer passed as a uintptr must
// be kept alive by the caller (runtime.KeepAlive after the call) and must
// point to memory that the Go garbage collector does not move: heap objects
// and the caller's own stack both qualify while the call runs, because the
// runtime does not move a goroutine's stack while it is in a C call.
// C code must not keep a Go pointer after the call returns.
//
// # Protection keys
//
// A frame can carry a PKRU mask. The stub then clears those bits of the
// calling thread's PKRU register before the call and restores the previous
// value after it, so a library whose pages carry a protection key is
// accessible to this thread only for the duration of the call.
package ccall
