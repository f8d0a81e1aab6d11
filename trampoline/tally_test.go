package trampoline

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// TestOpenSwapWaitsForCallInC checks that a swap in ModeOpen, whose calls
// are counted per P without locked instructions, waits for a call that is
// running in C when the swap starts.
func TestOpenSwapWaitsForCallInC(t *testing.T) {
	g, sleep, _ := openVersioned(t, ModeOpen, "vl_sleep_ms")
	var returned atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		sleep.Call1(300)
		returned.Store(true)
	})
	waitRunning(t, g, 1)

	rep, err := g.Swap(testlibs.Path(t, "v2/libversioned.so.1"))
	if err != nil {
		t.Fatalf("Swap: %v", err)
	}
	if !returned.Load() {
		t.Error("Swap returned while vl_sleep_ms still ran on the old image")
	}
	if !rep.Drained {
		t.Error("SwapReport.Drained = false, want true")
	}
	wg.Wait()
	if s := g.Stats(); s.Calls != 1 || s.InFlight != 0 {
		t.Errorf("Stats: Calls = %d, InFlight = %d, want 1 and 0", s.Calls, s.InFlight)
	}
}

// waitRunning waits until n calls are in flight on the gate's current image.
func waitRunning(t *testing.T, g *Gate, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.Stats().InFlight != n; {
		if time.Now().After(deadline) {
			t.Fatalf("Stats.InFlight = %d after 10s, want %d", g.Stats().InFlight, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOpenSwapStress swaps libversioned back and forth while goroutines
// call it in ModeOpen and read its strings through Hold. GOMAXPROCS is
// raised to 4, and after the first image is loaded to 4 more than the
// CPUs. So calls often return on another P than they entered on, and some
// Ps have no slot of their own in the first image. A drain that ended early would
// unload an image under a running call and kill the test binary.
func TestOpenSwapStress(t *testing.T) {
	const (
		workers = 8
		swaps   = 60
	)
	prev := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(prev)

	v1 := testlibs.Path(t, "v1/libversioned.so.1")
	v2 := testlibs.Path(t, "v2/libversioned.so.1")
	g, err := Open(v1, &Options{Mode: ModeOpen})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	runtime.GOMAXPROCS(max(8, runtime.NumCPU()+4))
	version, err := g.Func("vl_version")
	if err != nil {
		t.Fatal(err)
	}
	add, err := g.Func("vl_add")
	if err != nil {
		t.Fatal(err)
	}
	sleep, err := g.Func("vl_sleep_ms")
	if err != nil {
		t.Fatal(err)
	}

	var (
		stop     atomic.Bool
		calls    atomic.Uint64
		failures = make(chan error, workers)
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				var v string
				g.Hold(func() {
					v = g.GoString(version.Call0())
					if i%64 == 0 {
						sleep.Call1(0)
						calls.Add(1)
					}
				})
				if v != "1.0.0" && v != "2.0.0" {
					failures <- fmt.Errorf("worker %d: vl_version() = %q", w, v)
					return
				}
				if got := int64(add.Call2(int64Arg(int64(i)), int64Arg(-3))); got != int64(i)-3 {
					failures <- fmt.Errorf("worker %d: vl_add(%d, -3) = %d", w, i, got)
					return
				}
				calls.Add(4) // Hold, GoString, vl_version and vl_add each enter the gate
			}
		})
	}
	for i := range swaps {
		path := v2
		if i%2 == 1 {
			path = v1
		}
		rep, err := g.Swap(path)
		if err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
		if !rep.Drained {
			t.Fatalf("swap %d: old image not drained", i)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	s := g.Stats()
	if s.Calls != calls.Load() || s.InFlight != 0 || s.Swaps != swaps {
		t.Errorf("Stats: Calls = %d, InFlight = %d, Swaps = %d; want %d, 0, %d", s.Calls, s.InFlight, s.Swaps, calls.Load(), swaps)
	}
}

// TestLingerCloseRace lets the linger timer of a ModeProtect gate close
// the window again and again while goroutines keep calling libversioned
// with short, uneven pauses, so that calls enter just as the timer stops
// new calls. One more goroutine calls vl_sleep_ms(1), which runs library
// code after a sleep far longer than the linger, first with the others
// and then alone, so the timer also finds calls in flight. A call that
// ran on a closed window would kill the test binary with SIGSEGV.
func TestLingerCloseRace(t *testing.T) {
	const (
		workers = 4
		calls   = 2000 // per worker
		slow    = 100  // vl_sleep_ms calls beside the workers
		alone   = 20   // vl_sleep_ms calls after them
	)
	lib := testlibs.Path(t, "v1/libversioned.so.1")
	g, err := Open(lib, &Options{Mode: ModeProtect, Linger: 20 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	add, err := g.Func("vl_add")
	if err != nil {
		t.Fatal(err)
	}
	sleep, err := g.Func("vl_sleep_ms")
	if err != nil {
		t.Fatal(err)
	}
	before := g.Stats()

	failures := make(chan error, workers+1)
	var wg sync.WaitGroup
	sleepOnce := func(i int) error {
		if got := sleep.Call1(1); got != 1 {
			return fmt.Errorf("call %d: vl_sleep_ms(1) = %d, want 1", i, got)
		}
		return nil
	}
	wg.Go(func() {
		for i := range slow {
			if err := sleepOnce(i); err != nil {
				failures <- err
				return
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				x := int64(w*calls + i)
				if got := int64(add.Call2(int64Arg(x), int64Arg(-3))); got != x-3 {
					failures <- fmt.Errorf("worker %d: vl_add(%d, -3) = %d, want %d", w, x, got, x-3)
					return
				}
				// Pauses from none to about 80 µs, different per worker.
				if n := (i*7 + w*13) % 5; n > 0 {
					time.Sleep(time.Duration(n*n*5) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	for i := range alone {
		if err := sleepOnce(i); err != nil {
			t.Fatal(err)
		}
	}

	got, windows, _ := statsDelta(g, before)
	if want := uint64(workers*calls + slow + alone); got != want {
		t.Errorf("Calls grew by %d, want %d", got, want)
	}
	// The window must have closed between calls at least once, or the
	// test raced nothing.
	if windows < 2 {
		t.Errorf("%d calls opened %d windows, want at least 2", got, windows)
	}
	if n := g.Stats().InFlight; n != 0 {
		t.Errorf("InFlight = %d after the calls returned, want 0", n)
	}
}

// blockRelease is closed to let blockingCallback return; tests that use
// the callback store a fresh channel first.
var blockRelease atomic.Pointer[chan struct{}]

// blockingCallback is a long (*)(long) that waits until the channel in
// blockRelease is closed and returns x+1. Called through tl_apply, it keeps
// a gate call in flight for as long as a test needs.
var blockingCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(x int64) int64 {
		<-*blockRelease.Load()
		return x + 1
	})
})

// TestStatsWhileCallsBlock holds four calls inside libtrivial in ModeOpen
// while other goroutines hop between many Ps through the gate, and then
// while a swap drains the four. Stats must count the four as in flight in
// every sample, and Calls must never go down.
func TestStatsWhileCallsBlock(t *testing.T) {
	const (
		blocked = 4
		hoppers = 8
		samples = 100000 // per phase
	)
	prev := runtime.GOMAXPROCS(16)
	defer runtime.GOMAXPROCS(prev)
	g, fs := openTrivial(t, &Options{Mode: ModeOpen})
	for i := range 1000 {
		fs.labs.Call1(int64Arg(int64(i)))
	}

	release := make(chan struct{})
	blockRelease.Store(&release)
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var calls sync.WaitGroup
	// On an early return the blocked calls must end before the gate
	// closes.
	defer calls.Wait()
	defer releaseOnce()
	for i := range blocked {
		calls.Go(func() {
			if got := fs.apply.Call2(blockingCallback(), int64Arg(int64(i))); got != uintptr(i+1) {
				t.Errorf("tl_apply(blocking x+1, %d) = %d, want %d", i, got, i+1)
			}
		})
	}
	waitRunning(t, g, blocked)

	var last uint64
	check := func(phase string) bool {
		t.Helper()
		for range samples {
			s := g.Stats()
			if s.InFlight < blocked {
				t.Errorf("%s: InFlight = %d with %d calls blocked in the library, want at least %d", phase, s.InFlight, blocked, blocked)
				return false
			}
			if s.Calls < last {
				t.Errorf("%s: Calls went down from %d to %d", phase, last, s.Calls)
				return false
			}
			last = s.Calls
		}
		return true
	}

	// Short calls that enter on one P and often leave on another, so a
	// scan of the slots meets exits whose entries it has not read yet.
	var stop atomic.Bool
	var hops sync.WaitGroup
	for range hoppers {
		hops.Go(func() {
			for !stop.Load() {
				g.Hold(runtime.Gosched)
			}
		})
	}
	ok := check("beside short calls")
	stop.Store(true)
	hops.Wait()
	if !ok {
		return
	}

	swapped := make(chan error, 1)
	go func() {
		_, err := g.Swap(testlibs.Path(t, "libtrivial.so"))
		swapped <- err
	}()
	for g.Stats().Swaps == 0 {
		runtime.Gosched()
	}
	check("during the drain")

	releaseOnce()
	calls.Wait()
	if err := <-swapped; err != nil {
		t.Fatalf("Swap: %v", err)
	}
	s := g.Stats()
	if s.InFlight != 0 {
		t.Errorf("InFlight = %d after the calls returned, want 0", s.InFlight)
	}
	if s.Calls < last {
		t.Errorf("Calls = %d after the drain, down from %d", s.Calls, last)
	}
}
