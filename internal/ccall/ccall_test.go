package ccall

import (
	"math"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

func libcSymbol(t testing.TB, name string) uintptr {
	return systemSymbol(t, "libc.so.6", name)
}

func systemSymbol(t testing.TB, lib, name string) uintptr {
	t.Helper()
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Fatalf("dlopen %s: %v", lib, err)
	}
	p, err := purego.Dlsym(h, name)
	if err != nil {
		t.Fatalf("dlsym %s: %v", name, err)
	}
	return p
}

func TestCallIntegers(t *testing.T) {
	labs := libcSymbol(t, "labs")
	if got := Call1(labs, 0, uintptr(^uint64(41))); got != 42 {
		t.Fatalf("labs(-42) = %d, want 42", got)
	}

	strlen := libcSymbol(t, "strlen")
	s := []byte("decouple\x00")
	got := Call1(strlen, 0, uintptr(unsafe.Pointer(&s[0])))
	if got != 8 {
		t.Fatalf("strlen(%q) = %d, want 8", s, got)
	}
}

func TestCallStackArguments(t *testing.T) {
	snprintf := libcSymbol(t, "snprintf")
	buf := make([]byte, 64)
	format := []byte("%ld %ld %ld %ld %ld %ld\x00")
	n := Call9(snprintf, 0, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(unsafe.Pointer(&format[0])), 1, 2, 3, 4, 5, 6)
	want := "1 2 3 4 5 6"
	if n != uintptr(len(want)) {
		t.Fatalf("snprintf returned %d, want %d", n, len(want))
	}
	if got := string(buf[:len(want)]); got != want {
		t.Fatalf("snprintf wrote %q, want %q", got, want)
	}
}

func TestCallArgsFloats(t *testing.T) {
	pow := systemSymbol(t, "libm.so.6", "pow")
	a := Args{}
	a.Floats[0] = math.Float64bits(2)
	a.Floats[1] = math.Float64bits(10)
	r := CallArgs(pow, 0, &a)
	if got := math.Float64frombits(r.X0); got != 1024 {
		t.Fatalf("pow(2, 10) = %v, want 1024", got)
	}

	snprintf := libcSymbol(t, "snprintf")
	buf := make([]byte, 128)
	format := []byte("%g %g %g %g %g %g %g %g %g %g\x00")
	var b Args
	b.Ints[0] = uintptr(unsafe.Pointer(&buf[0]))
	b.Ints[1] = uintptr(len(buf))
	b.Ints[2] = uintptr(unsafe.Pointer(&format[0]))
	for i := range 8 {
		b.Floats[i] = math.Float64bits(float64(i + 1))
	}
	b.Stack[0] = uintptr(math.Float64bits(9))
	b.Stack[1] = uintptr(math.Float64bits(10))
	b.NStack = 2
	CallArgs(snprintf, 0, &b)
	want := "1 2 3 4 5 6 7 8 9 10"
	if got := string(buf[:len(want)]); got != want {
		t.Fatalf("snprintf wrote %q, want %q", got, want)
	}
}

func TestCallAllocatesNothing(t *testing.T) {
	labs := libcSymbol(t, "labs")
	allocs := testing.AllocsPerRun(1000, func() {
		Call1(labs, 0, 5)
	})
	if allocs != 0 {
		t.Fatalf("Call1 allocated %v times per call, want 0", allocs)
	}
}
