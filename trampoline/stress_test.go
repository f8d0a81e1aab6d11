package trampoline

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// stressTarget holds the functions the stress callbacks call. It is set by
// TestGateStress, because the callbacks are created once per process.
var stressTarget struct {
	labs atomic.Pointer[Func] // tl_labs on the libtrivial gate
	add  atomic.Pointer[Func] // vl_add on the libversioned gate
}

// stressApplyCallback is a long (*)(long) that returns |x| + 1: tl_labs
// through the gate whose call is in flight (a nested window), then vl_add
// through the libversioned gate, which is being swapped.
var stressApplyCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(x int64) int64 {
		a := stressTarget.labs.Load().Call1(int64Arg(x))
		return int64(stressTarget.add.Load().Call2(a, 1))
	})
})

// stressCompareCallback orders longs by the absolute value that tl_labs
// returns through the gate, then by value.
var stressCompareCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(a, b unsafe.Pointer) int32 {
		x, y := *(*int64)(a), *(*int64)(b)
		labs := stressTarget.labs.Load()
		if c := cmp.Compare(int64(labs.Call1(int64Arg(x))), int64(labs.Call1(int64Arg(y)))); c != 0 {
			return int32(c)
		}
		return int32(cmp.Compare(x, y))
	})
})

// TestGateStress runs 16 goroutines of mixed calls on two gates in
// ModeProtect while a third goroutine swaps libversioned between v1 and v2
// and swaps libtrivial to a fresh image of itself. A fault kills the test
// binary. The work is bounded by iteration and swap counts. The deadline
// only guards against a hang.
func TestGateStress(t *testing.T) {
	const (
		workers    = 16
		iterations = 300 // per worker, at least; workers go on until the swaps end
		swaps      = 40
		swapPause  = 2 * time.Millisecond
		deadline   = 60 * time.Second
	)
	trivial := testlibs.Path(t, "libtrivial.so")
	v1 := testlibs.Path(t, "v1/libversioned.so.1")
	v2 := testlibs.Path(t, "v2/libversioned.so.1")

	tg, fs := openTrivial(t, &Options{Mode: ModeProtect})
	vg, err := Open(v1, &Options{Mode: ModeProtect})
	if err != nil {
		t.Fatalf("Open(%s): %v", v1, err)
	}
	defer vg.Close()
	add, err := vg.Func("vl_add")
	if err != nil {
		t.Fatal(err)
	}
	major, err := vg.Func("vl_version_major")
	if err != nil {
		t.Fatal(err)
	}
	stressTarget.labs.Store(fs.labs)
	stressTarget.add.Store(add)

	var (
		swapsDone atomic.Bool
		timedOut  atomic.Bool
		failures  = make(chan error, workers+1)
		wg        sync.WaitGroup
	)
	fail := func(err error) {
		select {
		case failures <- err:
		default:
		}
	}
	stop := time.AfterFunc(deadline, func() { timedOut.Store(true) })
	defer stop.Stop()

	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A quarter of the workers call with their thread locked, as a
			// program that keeps thread-bound C state does.
			if w%4 == 3 {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			v := heapInt64s(make([]int64, 32)...)
			for i := 0; i < iterations || !swapsDone.Load(); i++ {
				if timedOut.Load() {
					fail(fmt.Errorf("worker %d: still running after %v", w, deadline))
					return
				}
				if err := stressStep(w, i, fs, add, major, v); err != nil {
					fail(fmt.Errorf("worker %d, iteration %d: %w", w, i, err))
					return
				}
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer swapsDone.Store(true)
		for i := range swaps {
			if timedOut.Load() {
				fail(fmt.Errorf("swap %d: still running after %v", i, deadline))
				return
			}
			next := v2
			if i%2 == 1 {
				next = v1
			}
			if rep, err := vg.Swap(next); err != nil {
				fail(fmt.Errorf("swap %d to %s: %w", i, next, err))
				return
			} else if !rep.Drained {
				fail(fmt.Errorf("swap %d to %s: old image not drained", i, next))
				return
			}
			// The same file again: nested callbacks then find a new
			// current image while their outer call holds the old one.
			if i%4 == 0 {
				if _, err := tg.Swap(trivial); err != nil {
					fail(fmt.Errorf("swap %d of libtrivial to itself: %w", i, err))
					return
				}
			}
			time.Sleep(swapPause)
		}
	}()

	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}

	for _, gs := range []struct {
		name  string
		g     *Gate
		swaps uint64
	}{{"libtrivial", tg, (swaps + 3) / 4}, {"libversioned", vg, swaps}} {
		s := gs.g.Stats()
		if s.InFlight != 0 {
			t.Errorf("%s: InFlight = %d after all calls returned, want 0", gs.name, s.InFlight)
		}
		if s.Swaps != gs.swaps {
			t.Errorf("%s: Swaps = %d, want %d", gs.name, s.Swaps, gs.swaps)
		}
		if s.Calls < workers*iterations {
			t.Errorf("%s: Calls = %d, want at least %d", gs.name, s.Calls, workers*iterations)
		}
	}
}

// stressStep makes one round of calls for worker w and checks each result.
// v is the worker's own heap buffer for tl_sort.
func stressStep(w, i int, fs trivialFuncs, add, major *Func, v []int64) error {
	x := int64(w*100000 + i)
	switch (w + i) % 4 {
	case 0: // plain calls on both gates
		if got := int64(add.Call2(int64Arg(x), int64Arg(-3))); got != x-3 {
			return fmt.Errorf("vl_add(%d, -3) = %d, want %d", x, got, x-3)
		}
		if got := major.Call0(); got != 1 && got != 2 {
			return fmt.Errorf("vl_version_major() = %d, want 1 or 2", got)
		}
		if got := int64(fs.labs.Call1(int64Arg(-x))); got != x {
			return fmt.Errorf("tl_labs(%d) = %d, want %d", -x, got, x)
		}
	case 1, 2: // a callback that re-enters libtrivial and calls libversioned
		if got := int64(fs.apply.Call2(stressApplyCallback(), int64Arg(-x))); got != x+1 {
			return fmt.Errorf("tl_apply(|x|+1, %d) = %d, want %d", -x, got, x+1)
		}
	case 3: // tl_sort with a comparator that re-enters libtrivial
		for j := range v {
			v[j] = int64((j*7919+i)%61) - 30
		}
		want := slices.Clone(v)
		slices.SortFunc(want, func(a, b int64) int {
			if c := cmp.Compare(abs(a), abs(b)); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		fs.sort.Call3(ptrInt64(v), uintptr(len(v)), stressCompareCallback())
		if j := firstDifference(v, want); j >= 0 {
			return fmt.Errorf("tl_sort by absolute value: element %d is %d, want %d", j, v[j], want[j])
		}
	}
	return nil
}
