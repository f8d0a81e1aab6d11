package trampoline

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// TestRegisterIFuncNotCounted registers an IFUNC symbol, whose lookup runs
// the resolver inside a call window, while another goroutine reads Stats
// without pause. The registration is no call of the library, so Calls
// must stay 0 in every read.
func TestRegisterIFuncNotCounted(t *testing.T) {
	lib := testlibs.Path(t, "libifunc.so")
	for _, mode := range []Mode{ModeProtect, ModeUnmap} {
		t.Run(mode.String(), func(t *testing.T) {
			for round := range 100 {
				g, err := Open(lib, &Options{Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				var stop atomic.Bool
				var largest atomic.Uint64
				var wg sync.WaitGroup
				wg.Go(func() {
					for !stop.Load() {
						largest.Store(max(largest.Load(), g.Stats().Calls))
					}
				})
				_, err = g.Func("if_value")
				stop.Store(true)
				wg.Wait()
				if err != nil {
					t.Fatal(err)
				}
				if s := g.Stats(); s.Calls != 0 || largest.Load() != 0 {
					t.Fatalf("round %d: Calls = %d (at most %d during the registration), want 0", round, s.Calls, largest.Load())
				}
				if err := g.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// retireCases are the gate configurations the retire tests run under:
// tally and state-word counting, with and without a closing window.
var retireCases = []struct {
	name string
	opts Options
}{
	{"open", Options{Mode: ModeOpen}},
	{"protect", Options{Mode: ModeProtect}},
	{"protect-linger", Options{Mode: ModeProtect, Linger: 20 * time.Microsecond}},
	{"unmap", Options{Mode: ModeUnmap}},
	{"open-linger", Options{Mode: ModeOpen, Linger: 20 * time.Microsecond}},
}

// waitUnloaded waits until the reaper has unloaded every image the gate
// replaced.
func waitUnloaded(t *testing.T, g *Gate) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		g.callsMu.Lock()
		n := len(g.draining)
		g.callsMu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replaced images still mapped 10s after their calls returned", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTimedOutDrainKeepsCounting swaps while two calls block in the old
// image, with a drain timeout far shorter than the block. The swap gives
// up, but Stats must still count the two calls in flight, count each new
// call, and the old image must be unloaded once the two calls return.
func TestTimedOutDrainKeepsCounting(t *testing.T) {
	for _, c := range retireCases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.DrainTimeout = 50 * time.Millisecond
			g, fs := openTrivial(t, &opts)

			release := make(chan struct{})
			blockRelease.Store(&release)
			var calls sync.WaitGroup
			defer calls.Wait()
			releaseOnce := sync.OnceFunc(func() { close(release) })
			defer releaseOnce()
			for i := range 2 {
				calls.Go(func() { fs.apply.Call2(blockingCallback(), int64Arg(int64(i))) })
			}
			waitRunning(t, g, 2)

			rep, err := g.Swap(testlibs.Path(t, "libtrivial.so"))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Drained {
				t.Fatal("SwapReport.Drained = true with two calls blocked on the old image, want false")
			}
			s := g.Stats()
			if s.InFlight != 2 {
				t.Errorf("InFlight = %d after the drain timed out, want the 2 blocked calls", s.InFlight)
			}
			fs.labs.Call1(1)
			if got := g.Stats().Calls - s.Calls; got != 1 {
				t.Errorf("one call after the drain timed out raised Calls by %d, want 1", got)
			}

			releaseOnce()
			calls.Wait()
			waitUnloaded(t, g)
			s = g.Stats()
			if s.InFlight != 0 {
				t.Errorf("InFlight = %d after the blocked calls returned, want 0", s.InFlight)
			}
			if s.Calls != 3 {
				t.Errorf("Calls = %d, want 3 (two blocked calls and one after the swap)", s.Calls)
			}
			if c.opts.Mode == ModeOpen {
				// A linger has no effect in ModeOpen, even on an image
				// a swap abandoned.
				if s.Mprotects != 0 || s.Windows != 0 {
					t.Errorf("Mprotects = %d, Windows = %d in ModeOpen, want 0 and 0", s.Mprotects, s.Windows)
				}
			} else {
				before := g.Stats()
				time.Sleep(20 * time.Millisecond)
				if after := g.Stats(); after.Accessible != before.Accessible {
					t.Errorf("Accessible grew by %v with no call running and every old image unloaded", after.Accessible-before.Accessible)
				}
			}
		})
	}
}

// TestHoldAcrossTwoSwaps holds the first image while two swaps pass: the
// first times out on the Hold, and the second would find no call on the
// middle image. A call inside the Hold goes to the middle image and its
// result points into it, so the middle image must stay mapped until the
// Hold ends. Reading the string after the second swap would fault
// otherwise.
func TestHoldAcrossTwoSwaps(t *testing.T) {
	for _, c := range retireCases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.DrainTimeout = 50 * time.Millisecond
			holdAcrossTwoSwaps(t, &opts)
		})
	}
}

func holdAcrossTwoSwaps(t *testing.T, opts *Options) {
	v1 := testlibs.Path(t, "v1/libversioned.so.1")
	v2 := testlibs.Path(t, "v2/libversioned.so.1")
	g, err := Open(v1, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	version, err := g.Func("vl_version")
	if err != nil {
		t.Fatal(err)
	}

	var got string
	var drained [2]bool
	g.Hold(func() {
		rep, err := g.Swap(v2) // waits out the drain timeout on this Hold
		if err != nil {
			t.Fatal(err)
		}
		drained[0] = rep.Drained
		p := version.Call0() // on the v2 image
		rep, err = g.Swap(v1)
		if err != nil {
			t.Fatal(err)
		}
		drained[1] = rep.Drained
		got = g.GoString(p)
	})
	if got != "2.0.0" {
		t.Errorf("vl_version() inside the Hold = %q, want 2.0.0", got)
	}
	if drained[0] || drained[1] {
		t.Errorf("Drained = %v for the two swaps under the Hold, want false for both", drained)
	}
	waitUnloaded(t, g)
	if got := g.GoString(version.Call0()); got != "1.0.0" {
		t.Errorf("vl_version() after the Hold = %q, want 1.0.0", got)
	}
	if s := g.Stats(); s.InFlight != 0 {
		t.Errorf("InFlight = %d after the Hold, want 0", s.InFlight)
	}
}

// Check does not queue behind a Swap that is draining: it fails at once
// with ErrBusy, and works again once the swap is over.
func TestCheckDuringSwapIsBusy(t *testing.T) {
	g, sleep, lib := openVersioned(t, ModeProtect, "vl_sleep_ms")
	v2 := testlibs.Path(t, "v2/libversioned.so.1")
	var calls sync.WaitGroup
	calls.Go(func() { sleep.Call1(300) })
	waitRunning(t, g, 1)

	swapped := make(chan error, 1)
	go func() {
		_, err := g.Swap(v2)
		swapped <- err
	}()
	for g.Stats().Swaps == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := g.Check(lib); !errors.Is(err, ErrBusy) {
		t.Errorf("Check during a draining swap: error %v, want ErrBusy", err)
	}
	calls.Wait()
	if err := <-swapped; err != nil {
		t.Fatal(err)
	}
	if err := g.Check(lib); err != nil {
		t.Errorf("Check after the swap: %v", err)
	}
}
