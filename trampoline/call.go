package trampoline

import (
	"github.com/decouple-go/decouple/internal/ccall"
)

// Each CallN method enters the gate, calls the function with N integer or
// pointer arguments on the current image, and leaves the gate. Arguments
// narrower than 64 bits must be sign- or zero-extended by the caller; the
// result is RAX, to be truncated to the C return type.
//
// The window is left in a deferred call, so that a Go callback that panics
// through the C frames does not leave the call counted as in flight.
//
// The methods are marked go:uintptrescapes: a pointer converted to uintptr
// in the argument list (uintptr(unsafe.Pointer(&x))) moves x to the heap
// and keeps it alive until the call returns. A goroutine stack can move
// while C runs a callback into Go, so C must never hold a stack address.

// Call0 calls a function of 0 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call0() uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call0((*im.addrs.Load())[f.index], im.pkru)
}

// Call1 calls a function of 1 integer or pointer argument.
//
//go:uintptrescapes
func (f *Func) Call1(a1 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call1((*im.addrs.Load())[f.index], im.pkru, a1)
}

// Call2 calls a function of 2 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call2(a1, a2 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call2((*im.addrs.Load())[f.index], im.pkru, a1, a2)
}

// Call3 calls a function of 3 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call3(a1, a2, a3 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call3((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3)
}

// Call4 calls a function of 4 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call4(a1, a2, a3, a4 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call4((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4)
}

// Call5 calls a function of 5 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call5(a1, a2, a3, a4, a5 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call5((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5)
}

// Call6 calls a function of 6 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call6(a1, a2, a3, a4, a5, a6 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call6((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6)
}

// Call7 calls a function of 7 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call7(a1, a2, a3, a4, a5, a6, a7 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call7((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6, a7)
}

// Call8 calls a function of 8 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call8(a1, a2, a3, a4, a5, a6, a7, a8 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call8((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6, a7, a8)
}

// Call9 calls a function of 9 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call9(a1, a2, a3, a4, a5, a6, a7, a8, a9 uintptr) uintptr {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.Call9((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6, a7, a8, a9)
}
