package trampoline

import (
	"math"
	"testing"
)

// The argument tests run in every mode that needs no protection keys,
// because the window code differs per mode while the call path is shared.
var argModes = []Mode{ModeOpen, ModeProtect, ModeUnmap}

func TestStackIntArgs(t *testing.T) {
	for _, mode := range argModes {
		t.Run(mode.String(), func(t *testing.T) {
			_, fs := openTrivial(t, &Options{Mode: mode})
			// Distinct powers of two show a lost or repeated argument; the
			// negative last one shows a stack word read without its sign.
			args := [9]int64{1, 2, 4, 8, 16, 32, 64, 128, -256}
			var want int64
			for _, a := range args {
				want += a
			}

			got := int64(fs.sum9.Call9(int64Arg(args[0]), int64Arg(args[1]), int64Arg(args[2]), int64Arg(args[3]),
				int64Arg(args[4]), int64Arg(args[5]), int64Arg(args[6]), int64Arg(args[7]), int64Arg(args[8])))
			if got != want {
				t.Errorf("Call9 tl_sum9%v = %d, want %d", args, got, want)
			}

			var a Args
			for i := range 6 {
				a.Ints[i] = int64Arg(args[i])
			}
			for i := range 3 {
				a.Stack[i] = int64Arg(args[6+i])
			}
			a.NStack = 3
			if got := int64(fs.sum9.CallArgs(&a).R0); got != want {
				t.Errorf("CallArgs tl_sum9%v with 3 stack words = %d, want %d", args, got, want)
			}
		})
	}
}

func TestFloatArgs(t *testing.T) {
	for _, mode := range argModes {
		t.Run(mode.String(), func(t *testing.T) {
			_, fs := openTrivial(t, &Options{Mode: mode})

			t.Run("tl_mix", func(t *testing.T) {
				// double tl_mix(int a, double b, long c, float d, double e):
				// a and c go in RDI and RSI, b, d and e in XMM0..XMM2.
				ia, b, c, d, e := int32(-3), 0.25, int64(1)<<40, float32(1.5), -2.125
				var a Args
				a.Ints[0] = uintptr(int64(ia))
				a.Ints[1] = int64Arg(c)
				a.Floats[0] = math.Float64bits(b)
				a.Floats[1] = uint64(math.Float32bits(d))
				a.Floats[2] = math.Float64bits(e)
				want := float64(ia) + b + float64(c) + float64(d) + e
				if got := math.Float64frombits(fs.mix.CallArgs(&a).X0); got != want {
					t.Errorf("tl_mix(%d, %v, %d, %v, %v) = %v, want %v", ia, b, c, d, e, got, want)
				}
			})

			t.Run("tl_halve", func(t *testing.T) {
				for _, x := range []float32{5.5, -3, 1e-38, float32(math.Inf(1))} {
					var a Args
					a.Floats[0] = uint64(math.Float32bits(x))
					got := math.Float32frombits(uint32(fs.halve.CallArgs(&a).X0))
					if want := x / 2; got != want {
						t.Errorf("tl_halve(%v) = %v, want %v", x, got, want)
					}
				}
			})

			t.Run("tl_sum10d", func(t *testing.T) {
				// Only XMM0..XMM7 carry arguments, so x9 and x10 go on the
				// stack as raw bits.
				var x [10]float64
				var want float64
				for i := range x {
					x[i] = math.Ldexp(1, i) + 0.5
					want += x[i]
				}
				var a Args
				for i := range 8 {
					a.Floats[i] = math.Float64bits(x[i])
				}
				a.Stack[0] = uintptr(math.Float64bits(x[8]))
				a.Stack[1] = uintptr(math.Float64bits(x[9]))
				a.NStack = 2
				if got := math.Float64frombits(fs.sum10d.CallArgs(&a).X0); got != want {
					t.Errorf("tl_sum10d%v = %v, want %v", x, got, want)
				}
			})
		})
	}
}

// Without linger every outermost call opens one window and closes it: the
// same number of protection changes per call, with none left over.
func TestProtectRoundTripPerCall(t *testing.T) {
	g, fs := openTrivial(t, &Options{Mode: ModeProtect})
	before := g.Stats()
	fs.labs.Call1(1)
	_, windows, perCall := statsDelta(g, before)
	if windows != 1 {
		t.Fatalf("one call opened %d windows, want 1", windows)
	}
	if perCall < 2 {
		t.Fatalf("one call made %d mprotect calls, want at least 2 (open and close)", perCall)
	}

	const n = 100
	before = g.Stats()
	for i := range n {
		if got := fs.labs.Call1(int64Arg(-int64(i))); got != uintptr(i) {
			t.Fatalf("tl_labs(%d) = %d, want %d", -i, got, i)
		}
	}
	calls, windows, mprotects := statsDelta(g, before)
	if calls != n {
		t.Errorf("Calls grew by %d, want %d", calls, n)
	}
	if windows != n {
		t.Errorf("Windows grew by %d, want %d (one per call)", windows, n)
	}
	if mprotects != n*perCall {
		t.Errorf("%d calls made %d mprotect calls, want %d (%d per call, as the first call made)", n, mprotects, n*perCall, perCall)
	}
	if got := g.Stats().InFlight; got != 0 {
		t.Errorf("InFlight = %d after the calls returned, want 0", got)
	}
}

// A gate call allocates nothing: the frame lives on the caller's stack.
func TestCallAllocs(t *testing.T) {
	for _, mode := range argModes {
		t.Run(mode.String(), func(t *testing.T) {
			_, fs := openTrivial(t, &Options{Mode: mode})
			var a Args
			a.Floats[0] = uint64(math.Float32bits(3))
			allocs := testing.AllocsPerRun(100, func() {
				fs.labs.Call1(1)
				fs.halve.CallArgs(&a)
			})
			if allocs != 0 {
				t.Errorf("a Call1 and a CallArgs allocate %v times, want 0", allocs)
			}
		})
	}
}
