package trampoline

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// TestLingerClosesWindow, TestLingerTimerAfterRetire, TestKeysReadBetweenCalls
// and TestCgocallRoute run part of their work in a child process, a
// re-execution of the test binary, because the expected outcome is a crash
// or could be one. gate_test.go's TestMain dispatches its own child mode.
// These modes are checked in init, which runs before TestMain.
const (
	helperChildEnv = "DECOUPLE_TRAMPOLINE_HELPER_CHILD" // child mode: linger, lingerretire, keys or cgocall
	helperLibEnv   = "DECOUPLE_TRAMPOLINE_HELPER_LIB"   // path of libtrivial.so
)

// childLingerTime is the linger of the gate that childLinger opens.
const childLingerTime = 50 * time.Millisecond

func init() {
	if mode := os.Getenv(helperChildEnv); mode != "" {
		os.Exit(runHelperChild(mode, os.Getenv(helperLibEnv)))
	}
}

// runHelperChild runs one child mode and returns the exit status. A mode
// that reads library code between calls does not return when the read
// faults: the Go runtime ends the process with a SIGSEGV report.
func runHelperChild(mode, lib string) int {
	var err error
	switch mode {
	case "linger":
		err = childLinger(lib)
	case "lingerretire":
		err = childLingerRetire(lib)
	case "keys":
		err = childKeys(lib)
	case "cgocall":
		err = childCgocall(lib)
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	return 0
}

// childLinger makes a burst of calls in ModeProtect with a linger, waits
// until the gate has closed the window, and reads the library's code.
func childLinger(lib string) error {
	g, err := Open(lib, &Options{Mode: ModeProtect, Linger: childLingerTime})
	if err != nil {
		return err
	}
	labs, err := g.Func("tl_labs")
	if err != nil {
		return err
	}
	for i := range 1000 {
		if got := labs.Call1(int64Arg(-int64(i))); got != uintptr(i) {
			return fmt.Errorf("tl_labs(%d) = %d, want %d", -i, got, i)
		}
	}
	printRange(g)

	time.Sleep(4 * childLingerTime)
	// The timer that closes the window may run late on a loaded machine.
	// Waiting for the closed state keeps the test from depending on it.
	im := g.cur.Load()
	for deadline := time.Now().Add(10 * time.Second); im.w.state.Load()&stateOpen != 0; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the window is still open 10s after the last call with a linger of %v", childLingerTime)
		}
		time.Sleep(time.Millisecond)
	}
	readCode(labs)
	return nil
}

// childLingerRetire closes and swaps gates while their linger timers are
// about to expire: each round makes a call, sleeps for a time between half
// and one and a half times the linger, and retires the image.
func childLingerRetire(lib string) error {
	const linger = time.Millisecond
	const rounds = 50
	pause := func(i int) time.Duration { return linger/2 + linger*time.Duration(i)/rounds }

	for i := range rounds {
		g, err := Open(lib, &Options{Mode: ModeProtect, Linger: linger})
		if err != nil {
			return err
		}
		labs, err := g.Func("tl_labs")
		if err != nil {
			return err
		}
		labs.Call1(1)
		time.Sleep(pause(i))
		if err := g.Close(); err != nil {
			return fmt.Errorf("round %d: Close: %w", i, err)
		}
	}

	g, err := Open(lib, &Options{Mode: ModeProtect, Linger: linger})
	if err != nil {
		return err
	}
	labs, err := g.Func("tl_labs")
	if err != nil {
		return err
	}
	for i := range rounds {
		labs.Call1(1)
		time.Sleep(pause(i))
		if _, err := g.Swap(lib); err != nil {
			return fmt.Errorf("round %d: Swap: %w", i, err)
		}
	}
	fmt.Println("done")
	return g.Close()
}

// childKeys calls a function in ModeKeys, then reads the library's code
// from Go, which the protection key must deny.
func childKeys(lib string) error {
	g, err := Open(lib, &Options{Mode: ModeKeys})
	if err != nil {
		return err
	}
	labs, err := g.Func("tl_labs")
	if err != nil {
		return err
	}
	if got := labs.Call1(int64Arg(-5)); got != 5 {
		return fmt.Errorf("tl_labs(-5) = %d, want 5", got)
	}
	printRange(g)
	readCode(labs)
	return nil
}

// childCgocall calls libtrivial in ModeOpen through internal/ccall and
// prints the results for TestCgocallRoute. If the route through
// runtime.cgocall is broken, the child may crash instead.
func childCgocall(lib string) error {
	g, err := Open(lib, &Options{Mode: ModeOpen})
	if err != nil {
		return err
	}
	labs, err := g.Func("tl_labs")
	if err != nil {
		return err
	}
	sum9, err := g.Func("tl_sum9")
	if err != nil {
		return err
	}
	apply, err := g.Func("tl_apply")
	if err != nil {
		return err
	}
	fmt.Printf("tl_labs(-42) = %d\n", int64(labs.Call1(int64Arg(-42))))
	fmt.Printf("tl_sum9(1..9) = %d\n", int64(sum9.Call9(1, 2, 3, 4, 5, 6, 7, 8, 9)))
	fmt.Printf("tl_apply(3x+1, 5) = %d\n", int64(apply.Call2(affineCallback(), 5)))
	return nil
}

func printRange(g *Gate) {
	info := g.Image()
	fmt.Printf("range %#x %#x\n", info.Start, info.End)
}

// readCode reads the first byte of f's code in the current image from Go,
// outside any call window.
func readCode(f *Func) {
	addr := (*f.gate.cur.Load().addrs.Load())[f.index]
	b := *(*byte)(unsafe.Add(nil, addr))
	fmt.Printf("read %#x\n", b)
}

// runHelper re-executes the test binary in a child mode and returns
// its combined output and exit error.
func runHelper(t *testing.T, mode, lib string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperChildEnv+"="+mode, helperLibEnv+"="+lib)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// expectSegv checks that a child that printed the library's range died of
// SIGSEGV at an address inside that range.
func expectSegv(t *testing.T, out string, err error) {
	t.Helper()
	var start, end, fault uintptr
	if _, err := fmt.Sscanf(out, "range %v %v\n", &start, &end); err != nil {
		t.Fatalf("child printed no range (exit error %v): %q", err, out)
	}
	if err == nil {
		t.Fatalf("child read the library's code between calls and exited normally: %q; want SIGSEGV", out)
	}
	// The Go runtime turns the SIGSEGV into a fatal error that names the
	// signal and the faulting address.
	if !strings.Contains(out, "signal SIGSEGV") {
		t.Fatalf("child failed with %v but not with SIGSEGV: %q", err, out)
	}
	i := strings.Index(out, "unexpected fault address ")
	if i < 0 {
		t.Fatalf("child output has no fault address: %q", out)
	}
	if _, err := fmt.Sscanf(out[i:], "unexpected fault address %v", &fault); err != nil {
		t.Fatalf("parse the child's fault address: %v", err)
	}
	if fault < start || fault >= end {
		t.Fatalf("fault address %#x lies outside the library's range %#x-%#x", fault, start, end)
	}
}

// The gate reaches runtime.cgocall through go:linkname (internal/ccall).
// A Go release that changes that function's ABI could make calls return
// garbage or crash, so the calls run in a child and the failure names the
// Go version.
func TestCgocallRoute(t *testing.T) {
	lib := testlibs.Path(t, "libtrivial.so")
	out, err := runHelper(t, "cgocall", lib)
	if err != nil {
		t.Fatalf("calls through runtime.cgocall (go:linkname in internal/ccall) crashed or failed under %s %s/%s: %v\n%s",
			runtime.Version(), runtime.GOOS, runtime.GOARCH, err, out)
	}
	for _, want := range []string{"tl_labs(-42) = 42\n", "tl_sum9(1..9) = 45\n", "tl_apply(3x+1, 5) = 16\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("calls through runtime.cgocall (go:linkname in internal/ccall) return wrong values under %s: output %q lacks %q",
				runtime.Version(), out, want)
		}
	}
}
