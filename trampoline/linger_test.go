package trampoline

import (
	"strings"
	"testing"
	"time"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// A burst of calls with a linger shares windows: the window stays open
// while calls keep coming and closes once the gate has been idle for the
// linger. The bound Windows < Calls/10 leaves room for a loaded machine
// that stalls the loop past the linger a few times.
func TestLingerSharesWindows(t *testing.T) {
	const linger = 50 * time.Millisecond
	g, fs := openTrivial(t, &Options{Mode: ModeProtect, Linger: linger})
	before := g.Stats()
	const n = 1000
	for i := range n {
		if got := fs.labs.Call1(int64Arg(-int64(i))); got != uintptr(i) {
			t.Fatalf("tl_labs(%d) = %d, want %d", -i, got, i)
		}
	}
	calls, windows, _ := statsDelta(g, before)
	if calls != n {
		t.Errorf("Calls grew by %d, want %d", calls, n)
	}
	if windows >= calls/10 {
		t.Errorf("%d calls with a linger of %v opened %d windows, want fewer than %d", calls, linger, windows, calls/10)
	}
	if got := g.Stats().InFlight; got != 0 {
		t.Errorf("InFlight = %d after the calls returned, want 0", got)
	}

	// The linger timer closes the window once the gate is idle. The
	// deadline only guards against a hang.
	waitClosed(t, g, 10*time.Second)
	closed := g.Stats()
	fs.labs.Call1(1)
	if _, windows, _ := statsDelta(g, closed); windows != 1 {
		t.Errorf("a call after the linger expired opened %d windows, want 1", windows)
	}
}

// waitClosed waits until the window of the gate's current image is closed.
func waitClosed(t *testing.T, g *Gate, timeout time.Duration) {
	t.Helper()
	im := g.cur.Load()
	deadline := time.Now().Add(timeout)
	for im.w.state.Load()&stateOpen != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the window is still open %v after the last call, with a linger of %v", timeout, g.linger)
		}
		time.Sleep(time.Millisecond)
	}
}

// After the linger the library is inaccessible again: a child that reads
// its code once the window has closed dies of SIGSEGV.
func TestLingerClosesWindow(t *testing.T) {
	out, err := runHelper(t, "linger", testlibs.Path(t, "libtrivial.so"))
	expectSegv(t, out, err)
}

// Closing or swapping a gate while its linger timer fires must not leave
// the timer to protect an image that is already unloaded. The rounds run in
// a child because the failure is a panic in the timer's goroutine.
func TestLingerTimerAfterRetire(t *testing.T) {
	out, err := runHelper(t, "lingerretire", testlibs.Path(t, "libtrivial.so"))
	if err != nil || !strings.Contains(out, "done\n") {
		t.Fatalf("closing and swapping gates with a 1ms linger: child failed with %v, want it to finish; output:\n%s", err, out)
	}
}
