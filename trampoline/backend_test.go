package trampoline

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// A library with thread-local storage falls back to the system loader;
// the gate still protects it, and threads created while it is protected
// start normally because its TLS initialization image stays readable.
func TestProtectSystemBackendTLS(t *testing.T) {
	for _, name := range []string{"libtlsie.so", "libtlsgd.so"} {
		t.Run(name, func(t *testing.T) {
			g, err := Open(testlibs.Path(t, name), &Options{Mode: ModeProtect})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			next, err := g.Func("tg_next")
			if err != nil {
				t.Fatal(err)
			}
			seed, err := g.Func("tg_seed")
			if err != nil {
				t.Fatal(err)
			}
			const threads = 16
			var wg, locked sync.WaitGroup
			start := make(chan struct{})
			results := make(chan [2]uintptr, threads)
			locked.Add(threads)
			for range threads {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each goroutine keeps its thread locked until all are
					// locked, so the runtime must start new threads while
					// the library is sealed.
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					locked.Done()
					<-start
					if got := seed.Call0(); got != 4242 {
						t.Errorf("tg_seed() in a new thread = %d, want 4242 from the TLS initialization image", got)
					}
					a := next.Call0()
					b := next.Call0()
					results <- [2]uintptr{a, b}
				}()
			}
			locked.Wait()
			close(start)
			wg.Wait()
			close(results)
			for r := range results {
				if r[1] != r[0]+1 {
					t.Errorf("tg_next() on one thread returned %d then %d, want consecutive values", r[0], r[1])
				}
			}
		})
	}
}

func TestUnmapRejectsSystemBackend(t *testing.T) {
	_, err := Open(testlibs.Path(t, "libtlsgd.so"), &Options{Mode: ModeUnmap})
	if !errors.Is(err, loader.ErrNotSupported) {
		t.Fatalf("Open in ModeUnmap of a system-loaded library: error %v, want one matching loader.ErrNotSupported", err)
	}
}

// An isolated dependency is sealed and opened along with the library.
func TestProtectIsolatedDependency(t *testing.T) {
	for _, mode := range []Mode{ModeProtect, ModeUnmap} {
		t.Run(mode.String(), func(t *testing.T) {
			g, err := Open(testlibs.Path(t, "libdependent.so"), &Options{Mode: mode, Loader: &loader.Options{Isolate: []string{"libtrivial.so"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			f, err := g.Func("dp_labs_twice")
			if err != nil {
				t.Fatal(err)
			}
			before := g.Stats().Windows
			for range 3 {
				if got := int64(f.Call1(uintptr(^uint64(20)))); got != 42 {
					t.Fatalf("dp_labs_twice(-21) = %d, want 42", got)
				}
			}
			if got := g.Stats().Windows - before; got != 3 {
				t.Errorf("three calls opened %d windows, want 3", got)
			}
		})
	}
}

// The system loader reads the headers, dynamic section and dynamic strings
// of every object it has loaded whenever it loads another one. A library
// it loaded and the gate sealed must leave those readable, or any later
// dlopen in the process faults, here the one behind a second gate.
func TestProtectSystemBackendThenDlopen(t *testing.T) {
	first, err := Open(testlibs.Path(t, "libtlsgd.so"), &Options{Mode: ModeProtect})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	seed, err := first.Func("tg_seed")
	if err != nil {
		t.Fatal(err)
	}
	if got := seed.Call0(); got != 4242 {
		t.Fatalf("tg_seed() = %d, want 4242", got)
	}

	for _, name := range []string{"libtlsdesc.so", "libtlsie.so"} {
		second, err := Open(testlibs.Path(t, name), &Options{Mode: ModeProtect})
		if err != nil {
			t.Fatalf("Open(%s) after libtlsgd.so was sealed: %v", name, err)
		}
		if second.cur.Load().img.Backend != loader.BackendSystem {
			t.Fatalf("%s was not loaded by the system loader, so the test loads nothing through dlopen", name)
		}
		if err := second.Close(); err != nil {
			t.Errorf("Close(%s): %v", name, err)
		}
	}
	// tg_seed counts up per thread, and the goroutine may have moved.
	if got := seed.Call0(); got < 4242 || got > 4243 {
		t.Errorf("tg_seed() after the other libraries came and went = %d, want 4242 or 4243", got)
	}
}

// Threads that start while calls open and close the window one at a time
// copy the TLS initialization image of the sealed library as the window
// closes. That page must never be inaccessible, not even between the two
// steps of sealing.
func TestProtectSystemBackendThreadsDuringWindows(t *testing.T) {
	for _, name := range []string{"libtlsie.so", "libtlsdesc.so", "libtlsgd.so"} {
		t.Run(name, func(t *testing.T) {
			g, err := Open(testlibs.Path(t, name), &Options{Mode: ModeProtect})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			next, err := g.Func("tg_next")
			if err != nil {
				t.Fatal(err)
			}
			next.Call0()

			// Each goroutine keeps a thread of its own until all have
			// called, so the runtime starts new threads throughout.
			const threads = 64
			var called sync.WaitGroup
			var serial sync.Mutex
			release := make(chan struct{})
			defer close(release)
			for range threads {
				called.Add(1)
				go func() {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					serial.Lock()
					if got := next.Call0(); got != 1 && got != 2 {
						t.Errorf("tg_next() on a new thread = %d, want 1 (or 2 on the thread of the first call)", got)
					}
					serial.Unlock()
					called.Done()
					<-release
				}()
			}
			called.Wait()
		})
	}
}
