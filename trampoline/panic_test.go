package trampoline

import (
	"sync"
	"testing"
	"time"

	"github.com/decouple-go/decouple/internal/testlibs"
)

var panickingCallback = sync.OnceValue(func() uintptr {
	return NewCallback(func(x int64) int64 {
		panic("callback failed")
	})
})

// A Go callback that panics unwinds through the C frames into the caller.
// The call must not stay counted as in flight, because swaps and Close
// would wait for it forever.
func TestCallbackPanicLeavesWindow(t *testing.T) {
	g, err := Open(testlibs.Path(t, "libtrivial.so"), &Options{Mode: ModeProtect, DrainTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	apply, err := g.Func("tl_apply")
	if err != nil {
		t.Fatal(err)
	}

	func() {
		defer func() {
			if r := recover(); r != "callback failed" {
				t.Errorf("recovered %v, want the callback's panic value", r)
			}
		}()
		apply.Call2(panickingCallback(), 1)
	}()

	if s := g.Stats(); s.InFlight != 0 {
		t.Errorf("InFlight = %d after the panicking call, want 0", s.InFlight)
	}
	// A leaked count would make Close wait out the drain timeout and
	// return an error.
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
