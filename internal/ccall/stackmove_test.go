package ccall

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

//go:noinline
func deepStack(n int) int {
	var pad [512]byte
	pad[n%512] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deepStack(n-1) + int(pad[(n*3)%512])
}

var (
	growOnFirstCompare bool
	growingCompare     = sync.OnceValue(func() uintptr {
		return purego.NewCallback(func(key, elem unsafe.Pointer) int32 {
			if growOnFirstCompare {
				growOnFirstCompare = false
				deepStack(512) // about 256 KiB: the goroutine stack must move
			}
			a, b := *(*int64)(key), *(*int64)(elem)
			switch {
			case a < b:
				return -1
			case a > b:
				return 1
			}
			return 0
		})
	})
)

// The frame of a call sits on the goroutine stack. A callback that grows
// the stack moves it while the C function runs, and the result must still
// reach the moved frame.
func TestResultAfterStackMove(t *testing.T) {
	bsearch := libcSymbol(t, "bsearch")
	elems := make([]int64, 64)
	for i := range elems {
		elems[i] = int64(i * 10)
	}
	key := new(int64)
	*key = 420
	want := uintptr(unsafe.Pointer(&elems[42]))
	cmp := growingCompare()

	got := make(chan uintptr)
	go func() {
		// A new goroutine starts with a small stack.
		growOnFirstCompare = true
		got <- Call5(bsearch, 0, uintptr(unsafe.Pointer(key)), uintptr(unsafe.Pointer(&elems[0])), uintptr(len(elems)), 8, cmp)
	}()
	if r := <-got; r != want {
		t.Fatalf("bsearch returned %#x, want %#x (the address of elems[42])", r, want)
	}
}
