package ccall

// One function per arity, so that a call needs no slice, no reflection and
// no heap allocation. pkru is the mask of PKRU bits to clear for the call
// (0 for none).
//
// The functions are marked go:uintptrescapes: a pointer converted with
// uintptr(unsafe.Pointer(p)) in the argument list stays valid, because the
// compiler moves its target to the heap. Without that, a stack object's
// address could go stale when a function prologue grows and moves the
// stack before the C call starts.

// Call0 calls the C function at fn with 0 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call0(fn uintptr, pkru uint32) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	callInts(&f)
	return f.r0
}

// Call1 calls the C function at fn with 1 integer or pointer argument and returns RAX.
//
//go:uintptrescapes
func Call1(fn uintptr, pkru uint32, a1 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	callInts(&f)
	return f.r0
}

// Call2 calls the C function at fn with 2 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call2(fn uintptr, pkru uint32, a1, a2 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	callInts(&f)
	return f.r0
}

// Call3 calls the C function at fn with 3 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call3(fn uintptr, pkru uint32, a1, a2, a3 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	callInts(&f)
	return f.r0
}

// Call4 calls the C function at fn with 4 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call4(fn uintptr, pkru uint32, a1, a2, a3, a4 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	f.ints[3] = a4
	callInts(&f)
	return f.r0
}

// Call5 calls the C function at fn with 5 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call5(fn uintptr, pkru uint32, a1, a2, a3, a4, a5 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	f.ints[3] = a4
	f.ints[4] = a5
	callInts(&f)
	return f.r0
}

// Call6 calls the C function at fn with 6 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call6(fn uintptr, pkru uint32, a1, a2, a3, a4, a5, a6 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	f.ints[3] = a4
	f.ints[4] = a5
	f.ints[5] = a6
	callInts(&f)
	return f.r0
}

// Call7 calls the C function at fn with 7 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call7(fn uintptr, pkru uint32, a1, a2, a3, a4, a5, a6, a7 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	f.ints[3] = a4
	f.ints[4] = a5
	f.ints[5] = a6
	f.stack[0] = a7
	callInts(&f)
	return f.r0
}

// Call8 calls the C function at fn with 8 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call8(fn uintptr, pkru uint32, a1, a2, a3, a4, a5, a6, a7, a8 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	f.ints[3] = a4
	f.ints[4] = a5
	f.ints[5] = a6
	f.stack[0] = a7
	f.stack[1] = a8
	callInts(&f)
	return f.r0
}

// Call9 calls the C function at fn with 9 integer or pointer arguments and returns RAX.
//
//go:uintptrescapes
func Call9(fn uintptr, pkru uint32, a1, a2, a3, a4, a5, a6, a7, a8, a9 uintptr) uintptr {
	f := intFrame{fn: fn, pkru: pkru}
	f.ints[0] = a1
	f.ints[1] = a2
	f.ints[2] = a3
	f.ints[3] = a4
	f.ints[4] = a5
	f.ints[5] = a6
	f.stack[0] = a7
	f.stack[1] = a8
	f.stack[2] = a9
	callInts(&f)
	return f.r0
}
