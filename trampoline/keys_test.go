package trampoline

import (
	"errors"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// requireKeys skips the test on machines without memory protection keys.
func requireKeys(t *testing.T) {
	t.Helper()
	if ok, why := KeysSupported(); !ok {
		t.Skipf("mode keys needs memory protection keys: %s", why)
	}
}

func TestKeysUnsupportedError(t *testing.T) {
	if ok, _ := KeysSupported(); ok {
		t.Skip("this machine supports memory protection keys")
	}
	_, err := Open(testlibs.Path(t, "libtrivial.so"), &Options{Mode: ModeKeys})
	if !errors.Is(err, loader.ErrNotSupported) {
		t.Fatalf("Open in ModeKeys without protection keys: error %v, want one matching loader.ErrNotSupported", err)
	}
}

func TestKeysCalls(t *testing.T) {
	requireKeys(t)
	g, fs := openTrivial(t, &Options{Mode: ModeKeys})
	before := g.Stats()

	if got := fs.labs.Call1(int64Arg(-9)); got != 9 {
		t.Errorf("tl_labs(-9) = %d, want 9", got)
	}
	if got := fs.sum9.Call9(1, 2, 3, 4, 5, 6, 7, 8, 9); got != 45 {
		t.Errorf("tl_sum9(1..9) = %d, want 45", got)
	}
	if got := fs.apply.Call2(affineCallback(), 5); got != 16 {
		t.Errorf("tl_apply(3x+1, 5) = %d, want 16", got)
	}

	// The comparator calls tl_labs through the gate while tl_sort runs, so
	// a nested call must keep the key enabled for the outer call.
	callbackTarget.labs.Store(fs.labs)
	v := heapInt64s(-3, 2, -1)
	fs.sort.Call3(ptrInt64(v), uintptr(len(v)), absCompareCallback())
	if want := []int64{-1, 2, -3}; firstDifference(v, want) >= 0 {
		t.Errorf("tl_sort by absolute value = %v, want %v", v, want)
	}

	s := g.Stats()
	if s.Calls-before.Calls < 4 {
		t.Errorf("Calls grew by %d, want at least 4", s.Calls-before.Calls)
	}
	if s.InFlight != 0 {
		t.Errorf("InFlight = %d after the calls returned, want 0", s.InFlight)
	}
}

func TestKeysReadBetweenCalls(t *testing.T) {
	requireKeys(t)
	out, err := runHelper(t, "keys", testlibs.Path(t, "libtrivial.so"))
	expectSegv(t, out, err)
}

func TestKeysVarDo(t *testing.T) {
	requireKeys(t)
	g, _ := openTrivial(t, &Options{Mode: ModeKeys})
	counter, err := g.Var("tl_counter")
	if err != nil {
		t.Fatalf("Var(tl_counter): %v", err)
	}
	ran := false
	if err := counter.Do(func(uintptr) { ran = true }); err == nil {
		t.Error("Var.Do in ModeKeys returned nil, want an error: Go code cannot read the library's pages")
	}
	if ran {
		t.Error("Var.Do in ModeKeys ran its function, want it not to")
	}
}
