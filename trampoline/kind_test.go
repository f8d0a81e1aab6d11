package trampoline

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestFuncRejectsDataSymbol(t *testing.T) {
	g, err := Open(testlibs.Path(t, "libtrivial.so"), &Options{Mode: ModeProtect})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Func("tl_counter"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Func(tl_counter), a data object: error %v, want one matching ErrWrongKind", err)
	}
	if _, err := g.Var("tl_bump"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Var(tl_bump), a function: error %v, want one matching ErrWrongKind", err)
	}
	if _, err := g.Func("tl_bump"); err != nil {
		t.Errorf("Func(tl_bump): %v", err)
	}
}

// A new build that exports a called function as data must not replace the
// running image: calling it would jump into data.
func TestSwapRejectsDataForFunction(t *testing.T) {
	g, add, lib := openVersioned(t, ModeProtect, "vl_add")

	copyFile(t, testlibs.Path(t, "kind/libversioned.so.1"), lib)
	if _, err := g.Swap(lib); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("Swap to a build exporting vl_add as data: error %v, want one matching ErrWrongKind", err)
	}
	if got := add.Call2(40, 2); got != 42 {
		t.Errorf("vl_add(40, 2) = %d after the rejected swap, want 42 from the old image", got)
	}
}

// Windows of an old and a new image overlap during a swap. Exposure is
// their union, so it never exceeds the wall time.
func TestExposureUnionAcrossSwaps(t *testing.T) {
	g, sleep, lib := openVersioned(t, ModeProtect, "vl_sleep_ms")
	builds := []string{testlibs.Path(t, "v1/libversioned.so.1"), testlibs.Path(t, "v2/libversioned.so.1")}

	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				sleep.Call1(5)
			}
		}()
	}
	// Measure from the moment all four calls sleep in the library, so
	// that a slow start on a busy machine does not count.
	waitRunning(t, g, 4)
	s0 := g.Stats()
	for i := 1; i <= 6; i++ {
		copyFile(t, builds[i%2], lib)
		if _, err := g.Swap(lib); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	s1 := g.Stats()
	stop.Store(true)
	wg.Wait()

	s := g.Stats()
	if s.Accessible > s.Wall || s.Exposure > 1 {
		t.Errorf("Accessible %v of Wall %v (Exposure %.3f), want at most the wall time", s.Accessible, s.Wall, s.Exposure)
	}
	if e := float64(s1.Accessible-s0.Accessible) / float64(s1.Wall-s0.Wall); e < 0.5 {
		t.Errorf("exposure %.3f during the swaps, with calls sleeping in the library most of the time, want above 0.5", e)
	}
}

func TestFuncAfterVarSameName(t *testing.T) {
	g, err := Open(testlibs.Path(t, "libtrivial.so"), &Options{Mode: ModeProtect})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Var("tl_counter"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Func("tl_counter"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Func(tl_counter) after Var(tl_counter): error %v, want one matching ErrWrongKind", err)
	}
	if _, err := g.Func("tl_bump"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Var("tl_bump"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Var(tl_bump) after Func(tl_bump): error %v, want one matching ErrWrongKind", err)
	}
}
