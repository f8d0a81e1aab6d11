package trampoline

import (
	"github.com/decouple-go/decouple/internal/ccall"
)

// Each CallN method enters the gate, calls the function with N integer or
// pointer arguments on the current image, and leaves the gate. Arguments
// narrower than 64 bits must be sign- or zero-extended by the caller; the
// result is RAX, to be truncated to the C return type.
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
	r := ccall.Call0((*im.addrs.Load())[f.index], im.pkru)
	im.w.exit()
	return r
}

// Call1 calls a function of 1 integer or pointer argument.
//
//go:uintptrescapes
func (f *Func) Call1(a1 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call1((*im.addrs.Load())[f.index], im.pkru, a1)
	im.w.exit()
	return r
}

// Call2 calls a function of 2 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call2(a1, a2 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call2((*im.addrs.Load())[f.index], im.pkru, a1, a2)
	im.w.exit()
	return r
}

// Call3 calls a function of 3 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call3(a1, a2, a3 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call3((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3)
	im.w.exit()
	return r
}

// Call4 calls a function of 4 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call4(a1, a2, a3, a4 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call4((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4)
	im.w.exit()
	return r
}

// Call5 calls a function of 5 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call5(a1, a2, a3, a4, a5 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call5((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5)
	im.w.exit()
	return r
}

// Call6 calls a function of 6 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call6(a1, a2, a3, a4, a5, a6 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call6((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6)
	im.w.exit()
	return r
}

// Call7 calls a function of 7 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call7(a1, a2, a3, a4, a5, a6, a7 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call7((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6, a7)
	im.w.exit()
	return r
}

// Call8 calls a function of 8 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call8(a1, a2, a3, a4, a5, a6, a7, a8 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call8((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6, a7, a8)
	im.w.exit()
	return r
}

// Call9 calls a function of 9 integer or pointer arguments.
//
//go:uintptrescapes
func (f *Func) Call9(a1, a2, a3, a4, a5, a6, a7, a8, a9 uintptr) uintptr {
	im := f.gate.enter()
	r := ccall.Call9((*im.addrs.Load())[f.index], im.pkru, a1, a2, a3, a4, a5, a6, a7, a8, a9)
	im.w.exit()
	return r
}
