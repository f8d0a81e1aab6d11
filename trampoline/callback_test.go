package trampoline

import (
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// A process can create only about 2000 callbacks and never frees them, so
// each callback below is created once per process. The callbacks that call
// back into a gate find it in callbackTarget, which each test sets before
// it calls the library.
var callbackTarget struct {
	labs     atomic.Pointer[Func] // tl_labs, called by absCompareCallback
	crc32    atomic.Pointer[Func] // zlib crc32, called by crcCallback
	gate     atomic.Pointer[Gate] // gate whose InFlight absCompareCallback samples
	compares atomic.Int64         // calls of absCompareCallback
	inFlight atomic.Int64         // largest InFlight absCompareCallback saw
}

// affineCallback is a long (*)(long) that returns 3x+1.
var affineCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(x int64) int64 { return 3*x + 1 })
})

// compareCallback is a qsort comparator for longs in ascending order.
var compareCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(a, b unsafe.Pointer) int32 {
		return int32(cmp.Compare(*(*int64)(a), *(*int64)(b)))
	})
})

// absCompareCallback is a qsort comparator that orders longs by absolute
// value, then by value. It takes the absolute values from tl_labs through
// callbackTarget.labs, so each comparison makes two nested calls inside the
// window of the tl_sort call.
var absCompareCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(a, b unsafe.Pointer) int32 {
		callbackTarget.compares.Add(1)
		if g := callbackTarget.gate.Load(); g != nil {
			n := g.Stats().InFlight
			for {
				seen := callbackTarget.inFlight.Load()
				if n <= seen || callbackTarget.inFlight.CompareAndSwap(seen, n) {
					break
				}
			}
		}
		x, y := *(*int64)(a), *(*int64)(b)
		labs := callbackTarget.labs.Load()
		ax, ay := int64(labs.Call1(int64Arg(x))), int64(labs.Call1(int64Arg(y)))
		if c := cmp.Compare(ax, ay); c != 0 {
			return int32(c)
		}
		return int32(cmp.Compare(x, y))
	})
})

// crcCallback is a long (*)(long) that returns the CRC-32 of the 8
// little-endian bytes of its argument, computed by zlib's crc32 through
// callbackTarget.crc32, a gate on a second library.
var crcCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(x int64) int64 {
		// The buffer escapes to the heap through crcBuffers, because a
		// goroutine stack can move while C code holds a pointer into it.
		buf := crcBuffers.Get().(*[8]byte)
		defer crcBuffers.Put(buf)
		binary.LittleEndian.PutUint64(buf[:], uint64(x))
		return int64(uint32(callbackTarget.crc32.Load().Call3(0, uintptr(unsafe.Pointer(buf)), 8)))
	})
})

var crcBuffers = sync.Pool{New: func() any { return new([8]byte) }}

// callbackModes are the modes in which the library is inaccessible between
// calls, so a callback that calls into it again must find the window open.
var callbackModes = []Mode{ModeProtect, ModeUnmap}

func TestCallbackApply(t *testing.T) {
	for _, mode := range callbackModes {
		t.Run(mode.String(), func(t *testing.T) {
			g, fs := openTrivial(t, &Options{Mode: mode})
			before := g.Stats()
			for _, x := range []int64{0, 1, -7, 1 << 40, -(1 << 40)} {
				if got, want := int64(fs.apply.Call2(affineCallback(), int64Arg(x))), 3*x+1; got != want {
					t.Errorf("tl_apply(3x+1, %d) = %d, want %d", x, got, want)
				}
			}
			calls, windows, _ := statsDelta(g, before)
			if calls != 5 {
				t.Errorf("Calls grew by %d, want 5", calls)
			}
			if windows != 5 {
				t.Errorf("Windows grew by %d, want 5 (one per call)", windows)
			}
			if n := g.Stats().InFlight; n != 0 {
				t.Errorf("InFlight = %d after the calls returned, want 0", n)
			}
		})
	}
}

// randomLongs returns n longs of both signs, with repeated absolute values
// so that the comparators must break ties. The result is on the heap: see
// heapInt64s.
//
//go:noinline
func randomLongs(n int, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	v := make([]int64, n)
	for i := range v {
		v[i] = rng.Int64N(2001) - 1000
	}
	return v
}

func TestCallbackSort(t *testing.T) {
	for _, mode := range callbackModes {
		t.Run(mode.String(), func(t *testing.T) {
			g, fs := openTrivial(t, &Options{Mode: mode})
			v := randomLongs(1000, 1)
			want := slices.Clone(v)
			sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })

			before := g.Stats()
			fs.sort.Call3(ptrInt64(v), uintptr(len(v)), compareCallback())
			if i := firstDifference(v, want); i >= 0 {
				t.Fatalf("tl_sort with a Go comparator: element %d is %d, want %d (sort.Slice)", i, v[i], want[i])
			}
			calls, windows, _ := statsDelta(g, before)
			if calls != 1 {
				t.Errorf("Calls grew by %d, want 1: the comparator makes no gate calls", calls)
			}
			if windows != 1 {
				t.Errorf("Windows grew by %d, want 1", windows)
			}
		})
	}
}

func firstDifference(got, want []int64) int {
	for i := range want {
		if got[i] != want[i] {
			return i
		}
	}
	return -1
}

// The comparator calls tl_labs through the same gate while tl_sort is in
// flight. The nested calls count as calls but open no window of their own.
func TestCallbackNestedSameGate(t *testing.T) {
	for _, mode := range callbackModes {
		t.Run(mode.String(), func(t *testing.T) {
			g, fs := openTrivial(t, &Options{Mode: mode})
			callbackTarget.labs.Store(fs.labs)
			callbackTarget.gate.Store(g)
			callbackTarget.compares.Store(0)
			callbackTarget.inFlight.Store(0)
			t.Cleanup(func() { callbackTarget.gate.Store(nil) })

			v := randomLongs(1000, 2)
			want := slices.Clone(v)
			sort.Slice(want, func(i, j int) bool {
				if a, b := abs(want[i]), abs(want[j]); a != b {
					return a < b
				}
				return want[i] < want[j]
			})

			before := g.Stats()
			fs.sort.Call3(ptrInt64(v), uintptr(len(v)), absCompareCallback())
			if i := firstDifference(v, want); i >= 0 {
				t.Fatalf("tl_sort by absolute value: element %d is %d, want %d (sort.Slice)", i, v[i], want[i])
			}

			compares := uint64(callbackTarget.compares.Load())
			if compares == 0 {
				t.Fatal("the comparator never ran")
			}
			calls, windows, _ := statsDelta(g, before)
			if want := 1 + 2*compares; calls != want {
				t.Errorf("Calls grew by %d, want %d (tl_sort and 2 tl_labs per comparison, %d comparisons)", calls, want, compares)
			}
			if windows != 1 {
				t.Errorf("Windows grew by %d, want 1: nested calls must reuse the open window", windows)
			}
			if got := callbackTarget.inFlight.Load(); got != 1 {
				t.Errorf("InFlight inside the comparator = %d, want 1 (the tl_sort call)", got)
			}
			if n := g.Stats().InFlight; n != 0 {
				t.Errorf("InFlight = %d after tl_sort returned, want 0", n)
			}
		})
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// The callback calls zlib's crc32 through a second gate while tl_apply is
// in flight on the first, so two libraries have open windows at once.
func TestCallbackOtherGate(t *testing.T) {
	for _, mode := range callbackModes {
		t.Run(mode.String(), func(t *testing.T) {
			g, fs := openTrivial(t, &Options{Mode: mode})
			zg, z := openZlib(t, &Options{Mode: mode})
			callbackTarget.crc32.Store(z.crc32)

			const n = 100
			before, zbefore := g.Stats(), zg.Stats()
			var buf [8]byte
			for x := int64(-n / 2); x < n/2; x++ {
				binary.LittleEndian.PutUint64(buf[:], uint64(x))
				want := int64(crc32.ChecksumIEEE(buf[:]))
				if got := int64(fs.apply.Call2(crcCallback(), int64Arg(x))); got != want {
					t.Fatalf("tl_apply(crc32 through zlib, %d) = %#x, want %#x (hash/crc32)", x, got, want)
				}
			}

			for _, gs := range []struct {
				name   string
				g      *Gate
				before Stats
			}{{"libtrivial", g, before}, {"zlib", zg, zbefore}} {
				calls, windows, _ := statsDelta(gs.g, gs.before)
				if calls != n {
					t.Errorf("%s: Calls grew by %d, want %d", gs.name, calls, n)
				}
				if windows != n {
					t.Errorf("%s: Windows grew by %d, want %d (one per outermost call)", gs.name, windows, n)
				}
				if got := gs.g.Stats().InFlight; got != 0 {
					t.Errorf("%s: InFlight = %d after the calls returned, want 0", gs.name, got)
				}
			}
		})
	}
}
