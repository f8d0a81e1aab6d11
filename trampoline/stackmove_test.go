package trampoline

import (
	"cmp"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// growStack is set before a call whose callback must grow the goroutine
// stack on its first run.
var growStack atomic.Bool

// burnStack uses about n KiB of stack.
//
//go:noinline
func burnStack(n int) byte {
	var buf [1024]byte
	buf[n%1024] = byte(n)
	if n == 0 {
		return buf[0]
	}
	return burnStack(n-1) + buf[(n*7)%1024]
}

// growingCompareCallback is a qsort comparator for longs in ascending
// order that uses 256 KiB of stack on its first run after growStack is set,
// so the runtime moves the calling goroutine's stack while C runs.
var growingCompareCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(a, b unsafe.Pointer) int32 {
		if growStack.CompareAndSwap(true, false) {
			burnStack(256)
		}
		return int32(cmp.Compare(*(*int64)(a), *(*int64)(b)))
	})
})

// growingApplyCallback is a long (*)(long) that returns x+1 and grows the
// stack like growingCompareCallback.
var growingApplyCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(x int64) int64 {
		if growStack.CompareAndSwap(true, false) {
			burnStack(256)
		}
		return x + 1
	})
})

// A callback that grows the goroutine stack moves it while the C function
// runs. The array below is a local variable whose address goes straight
// into the argument list, so the gate's call method must move it to the
// heap, and the call's result must reach the moved call frame.
func TestCallbackGrowsStack(t *testing.T) {
	for _, mode := range []Mode{ModeOpen, ModeProtect} {
		t.Run(mode.String(), func(t *testing.T) {
			_, fs := openTrivial(t, &Options{Mode: mode})
			type result struct {
				sorted []int64
				apply  int64
			}
			done := make(chan result)
			go func() {
				// A new goroutine starts with a small stack.
				var v [16]int64
				for i := range v {
					v[i] = int64(len(v) - i)
				}
				growStack.Store(true)
				fs.sort.Call3(uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)), growingCompareCallback())
				sorted := make([]int64, len(v))
				copy(sorted, v[:])

				growStack.Store(true)
				r := int64(fs.apply.Call2(growingApplyCallback(), 41))
				done <- result{sorted, r}
			}()
			got := <-done
			for i, x := range got.sorted {
				if x != int64(i+1) {
					t.Fatalf("after tl_sort of 16..1 element %d is %d, want %d; all: %v", i, x, i+1, got.sorted)
				}
			}
			if got.apply != 42 {
				t.Errorf("tl_apply(x+1, 41) with a callback that grows the stack = %d, want 42", got.apply)
			}
		})
	}
}
