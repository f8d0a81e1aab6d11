package trampoline

import (
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// trivialFuncs are the functions of testdata/libs/trivial.c that the
// callback, argument, linger, stress and keys tests call.
type trivialFuncs struct {
	labs, sum9, mix, halve, sum10d, apply, sort *Func
}

// openTrivial opens libtrivial.so behind a gate that the test closes when
// it ends, and registers the functions in trivialFuncs.
func openTrivial(tb testing.TB, opts *Options) (*Gate, trivialFuncs) {
	tb.Helper()
	path := testlibs.Path(tb, "libtrivial.so")
	g, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Errorf("Close(%s): %v", path, err)
		}
	})

	var fs trivialFuncs
	for name, dst := range map[string]**Func{
		"tl_labs": &fs.labs, "tl_sum9": &fs.sum9, "tl_mix": &fs.mix, "tl_halve": &fs.halve,
		"tl_sum10d": &fs.sum10d, "tl_apply": &fs.apply, "tl_sort": &fs.sort,
	} {
		if *dst, err = g.Func(name); err != nil {
			tb.Fatalf("Func(%s): %v", name, err)
		}
	}
	return g, fs
}

// int64Arg returns x as an argument word: the System V ABI passes a long
// in a full 64-bit register, so the two's complement bits are the value.
func int64Arg(x int64) uintptr { return uintptr(x) }

// statsDelta returns the growth of the gate's counters since before.
func statsDelta(g *Gate, before Stats) (calls, windows, mprotects uint64) {
	s := g.Stats()
	return s.Calls - before.Calls, s.Windows - before.Windows, s.Mprotects - before.Mprotects
}

// heapInt64s returns a copy of v on the heap. Memory passed to C by address
// must not live on a goroutine stack, which can move while C holds the
// address, for example when a callback grows the stack. A result returned
// from a function that is not inlined always escapes to the heap.
//
//go:noinline
func heapInt64s(v ...int64) []int64 { return append([]int64(nil), v...) }

// ptrInt64 returns the address of v's first element as an argument word.
func ptrInt64(v []int64) uintptr { return uintptr(unsafe.Pointer(&v[0])) }
