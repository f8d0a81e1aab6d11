//go:build linux && amd64

// This file tests the package generated from mapping.h without m_ifunc.
// TestGeneratedMappingRuns in package gen copies it next to the generated
// file in a temporary module and runs it; the go tool ignores it here.

package mapping

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/trampoline"
)

func openMapping(t *testing.T) *Lib {
	t.Helper()
	l, err := Open("", &trampoline.Options{Mode: trampoline.ModeProtect})
	if err != nil {
		t.Fatalf("Open(%q, ModeProtect): %v", DefaultPath, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func check[T comparable](t *testing.T, call string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", call, got, want)
	}
}

// TestIntegers passes values that need sign or zero extension and reads
// results that need truncation.
func TestIntegers(t *testing.T) {
	l := openMapping(t)
	check(t, "m_add_schar(100, 100)", l.M_add_schar(100, 100), int8(-56))
	check(t, "m_add_schar(-1, -2)", l.M_add_schar(-1, -2), int8(-3))

	check(t, "m_add_uchar(200, 100)", l.M_add_uchar(200, 100), uint8(44))
	check(t, "m_char_id(-5)", l.M_char_id(-5), int8(-5))

	check(t, "m_add_short(-30000, -30000)", l.M_add_short(-30000, -30000), int16(5536))
	check(t, "m_add_short(-3, 1)", l.M_add_short(-3, 1), int16(-2))
	check(t, "m_add_ushort(65535, 2)", l.M_add_ushort(65535, 2), uint16(1))

	check(t, "m_add_int(-1, -2)", l.M_add_int(-1, -2), int32(-3))
	check(t, "m_add_int(MaxInt32, 1)", l.M_add_int(math.MaxInt32, 1), int32(math.MinInt32))
	check(t, "m_add_uint(MaxUint32, 2)", l.M_add_uint(math.MaxUint32, 2), uint32(1))

	check(t, "m_add_long(-5, 3)", l.M_add_long(-5, 3), int64(-2))
	check(t, "m_add_ulong(MaxUint64, 1)", l.M_add_ulong(math.MaxUint64, 1), uint64(0))
	check(t, "m_add_llong(MinInt64, -1)", l.M_add_llong(math.MinInt64, -1), int64(math.MaxInt64))
	check(t, "m_add_ullong(1<<63, 1<<62)", l.M_add_ullong(1<<63, 1<<62), uint64(3<<62))
	check(t, "m_neg_i64(5)", l.M_neg_i64(5), int64(-5))
	check(t, "m_not_u8(0x0f)", l.M_not_u8(0x0f), uint8(0xf0))
	check(t, "m_chain(6, 7)", l.M_chain(6, 7), uint64(42))
	check(t, "m_status()", l.M_status(), int32(-7))

	check(t, "m_is_odd(3)", l.M_is_odd(3), true)
	check(t, "m_is_odd(-4)", l.M_is_odd(-4), false)
	check(t, "m_not(true)", l.M_not(true), false)
	check(t, "m_not(false)", l.M_not(false), true)

	check(t, "m_next_color(2)", l.M_next_color(2), int32(0))
	check(t, "m_flip(-1)", l.M_flip(-1), int32(1))
	check(t, "m_keywords(1, 2, 3, 4, 5)", l.M_keywords(1, 2, 3, 4, 5), int32(15))
	check(t, "m_unnamed(2, 40)", l.M_unnamed(2, 40), int32(42))

	check(t, "M_collide()", l.M_collide(), int32(2))
	check(t, "m_collide()", l.M_collide_(), int32(1))
	check(t, "_m_underscore(9)", l.X_m_underscore(9), int32(9))
	l.M_nothing()
}

// TestFloats checks register assignment of mixed float and integer
// arguments, and arguments past the registers that go on the stack.
func TestFloats(t *testing.T) {
	l := openMapping(t)
	check(t, "m_scale_f(1.5, 3)", l.M_scale_f(1.5, 3), float32(4.5))
	check(t, "m_hypot2(3, 4)", l.M_hypot2(3, 4), 25.0)
	check(t, "m_mix(1, 2.5, -3, 4.25)", l.M_mix(1, 2.5, -3, 4.25), 4.75)

	var want float64
	for i := 1; i <= 7; i++ {
		want += float64(i * i * 10)
	}
	for i := 1; i <= 9; i++ {
		want += float64(i) * (float64(i) + 0.5)
	}
	got := l.M_sum16(10, 20, 30, 40, 50, 60, 70, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5)
	check(t, "m_sum16(...)", got, want)

	check(t, "m_sum10(1..10)", l.M_sum10(1, 2, 3, 4, 5, 6, 7, 8, 9, -10), int64(285-100))
	check(t, "m_fsum10(0.5, ..., 0.5, 1.25, -2)", l.M_fsum10(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.25, -2), float32(18+9*1.25-20))
}

// TestNarrowStackArgs passes narrow integers and a _Bool in stack slots,
// where the callee reads only their low bytes.
func TestNarrowStackArgs(t *testing.T) {
	l := openMapping(t)
	check(t, "m_narrow_stack(1..6, -3, -300, true, 200)", l.M_narrow_stack(1, 2, 3, 4, 5, 6, -3, -300, true, 200),
		int64(21-3000-3000+7+20000000))
	check(t, "m_schar9(-1, ..., -9)", l.M_schar9(-1, -2, -3, -4, -5, -6, -7, -8, -9), int32(-285))
	check(t, "m_schar9(127, ..., -128)", l.M_schar9(0, 0, 0, 0, 0, 0, 127, -128, 127), int32(7*127-8*128+9*127))
	check(t, "m_narrow_stack(0.., 127, 32767, false, 0)", l.M_narrow_stack(0, 0, 0, 0, 0, 0, 127, 32767, false, 0),
		int64(127000+327670))
}

func TestPointers(t *testing.T) {
	l := openMapping(t)

	buf := make([]byte, 64)
	l.M_fill(unsafe.Pointer(&buf[0]), 32, 0xab)
	want := append(slices.Repeat([]byte{0xab}, 32), make([]byte, 32)...)
	if !slices.Equal(buf, want) {
		t.Errorf("m_fill(buf, 32, 0xab) left %x, want %x", buf, want)
	}

	s := []byte("hello, world\x00")
	check(t, "m_strlen(\"hello, world\")", l.M_strlen(unsafe.Pointer(&s[0])), uint64(12))

	// Both strings are in the library's read-only data, which a gate in
	// ModeProtect makes accessible only inside a call window.
	var greeting, name string
	l.Gate().Hold(func() {
		greeting = l.Gate().GoString(uintptr(l.M_greeting()))
		p := struct{ x, y int32 }{5, 1}
		name = l.Gate().GoString(uintptr(l.M_name(unsafe.Pointer(&p))))
	})
	check(t, "m_greeting()", greeting, "hello")
	check(t, "m_name(&{5, 1})", name, "wide")

	x := new(int64)
	check(t, "m_identity(x)", l.M_identity(unsafe.Pointer(x)), unsafe.Pointer(x))

	values := [4]int32{1, 2, 3, -4}
	check(t, "m_array_param({1, 2, 3, -4})", l.M_array_param(unsafe.Pointer(&values)), int32(2))
}

var (
	compareInts = trampoline.NewCallback(func(a, b unsafe.Pointer) int32 {
		x, y := *(*int32)(a), *(*int32)(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	double = trampoline.NewCallback(func(v int32) int32 { return 2 * v })
)

func TestCallbacks(t *testing.T) {
	l := openMapping(t)
	check(t, "m_apply(double, -21)", l.M_apply(double, -21), int32(-42))

	ints := []int32{5, -3, 9, 0, 2, -7}
	check(t, "m_sort(ints, compare)", l.M_sort(unsafe.Pointer(&ints[0]), uint64(len(ints)), compareInts), int32(0))
	if want := []int32{-7, -3, 0, 2, 5, 9}; !slices.Equal(ints, want) {
		t.Errorf("m_sort left %v, want %v", ints, want)
	}

	// A C function pointer the library returns goes back in as uintptr.
	desc := l.M_get_compare()
	if desc == 0 {
		t.Fatalf("m_get_compare() = 0, want a function pointer")
	}
	check(t, "m_sort(ints, m_get_compare())", l.M_sort(unsafe.Pointer(&ints[0]), uint64(len(ints)), desc), int32(0))
	if want := []int32{9, 5, 2, 0, -3, -7}; !slices.Equal(ints, want) {
		t.Errorf("m_sort with the library's comparator left %v, want %v", ints, want)
	}
}

// TestOpenMissingFunction opens a library that lacks the wrapped functions;
// Open must fail and name the first one it registers.
func TestOpenMissingFunction(t *testing.T) {
	const other = "/usr/lib/x86_64-linux-gnu/libz.so.1"
	if _, err := os.Stat(other); err != nil {
		t.Skipf("no library to open in place of libmapping: %v", err)
	}
	l, err := Open(other, nil)
	if err == nil {
		l.Close()
		t.Fatalf("Open(%s) succeeded, want an error for the missing M_collide", other)
	}
	if !strings.Contains(err.Error(), "function M_collide") {
		t.Errorf("Open(%s) error %q does not name function M_collide", other, err)
	}
}
