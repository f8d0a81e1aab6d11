package ccall

import (
	"unsafe"

	// purego provides the runtime's C hooks when cgo is disabled, so threads
	// are created by pthread_create and the C library is initialised.
	_ "github.com/ebitengine/purego"
)

// runtimeCgocall is marked noescape because runtime.cgocall does not keep
// its argument, so a frame on the caller's stack can stay there.
//
//go:linkname runtimeCgocall runtime.cgocall
//go:noescape
func runtimeCgocall(fn uintptr, arg unsafe.Pointer) int32

// intFrame is the frame of a call with integer or pointer arguments only.
// Its layout is read by the stub through go_asm.h.
type intFrame struct {
	fn     uintptr
	ints   [6]uintptr
	stack  [3]uintptr
	nstack uintptr
	pkru   uint32 // bits to clear in PKRU for the call; 0 leaves PKRU alone
	_      uint32
	r0     uintptr
}

// fullFrame is the frame of a call with floating-point arguments or results.
type fullFrame struct {
	fn     uintptr
	ints   [6]uintptr
	floats [8]uint64
	stack  [MaxStackArgs]uintptr
	nstack uintptr
	pkru   uint32
	_      uint32
	r0     uintptr
	r1     uintptr
	x0     uint64
	x1     uint64
}

// MaxStackArgs is the largest number of stack-passed words a call may carry.
const MaxStackArgs = 16

// Args holds the arguments of a call that passes floating-point values or
// more stack words than the integer calls allow.
type Args struct {
	Ints   [6]uintptr            // RDI, RSI, RDX, RCX, R8, R9
	Floats [8]uint64             // raw bits for XMM0..XMM7; a float32 sits in the low 32 bits
	Stack  [MaxStackArgs]uintptr // stack words in argument order
	NStack int                   // number of words used in Stack
}

// Result holds the registers a C function may return values in.
type Result struct {
	R0, R1 uintptr // RAX, RDX
	X0, X1 uint64  // raw bits of XMM0, XMM1
}

// CallArgs calls the C function at fn with the arguments in a.
// It panics if a.NStack is out of range, because the stub would read past
// the frame.
func CallArgs(fn uintptr, pkru uint32, a *Args) Result {
	if a.NStack < 0 || a.NStack > MaxStackArgs {
		panic("ccall: NStack out of range")
	}
	f := fullFrame{fn: fn, pkru: pkru, ints: a.Ints, floats: a.Floats, stack: a.Stack, nstack: uintptr(a.NStack)}
	callFull(&f)
	return Result{R0: f.r0, R1: f.r1, X0: f.x0, X1: f.x1}
}
