package trampoline

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// openVersioned copies build 1.0.0 of libversioned into a temporary folder,
// opens it behind a gate that the test closes, and registers function fn.
// It returns the gate, the function and the library's path, which a test
// overwrites with another build before swapping.
func openVersioned(t *testing.T, mode Mode, fn string) (*Gate, *Func, string) {
	t.Helper()
	lib := filepath.Join(t.TempDir(), "libversioned.so.1")
	copyFile(t, testlibs.Path(t, "v1/libversioned.so.1"), lib)
	g, err := Open(lib, &Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	f, err := g.Func(fn)
	if err != nil {
		t.Fatal(err)
	}
	return g, f, lib
}

func TestSwapUnderLoad(t *testing.T) {
	for _, mode := range []Mode{ModeOpen, ModeProtect, ModeUnmap} {
		t.Run(mode.String(), func(t *testing.T) {
			g, version, lib := openVersioned(t, mode, "vl_version")
			if got := g.GoString(version.Call0()); got != "1.0.0" {
				t.Fatalf("vl_version() = %q before the swap, want 1.0.0", got)
			}

			var stop atomic.Bool
			var wg sync.WaitGroup
			var seen [2]atomic.Int64
			var bad atomic.Value
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						var v string
						g.Hold(func() { v = g.GoString(version.Call0()) })
						switch v {
						case "1.0.0":
							seen[0].Add(1)
						case "2.0.0":
							seen[1].Add(1)
						default:
							bad.Store(v)
						}
					}
				}()
			}
			for seen[0].Load() < 100 {
				runtime.Gosched()
			}
			copyFile(t, testlibs.Path(t, "v2/libversioned.so.1"), lib)
			rep, err := g.Swap(lib)
			if err != nil {
				t.Fatalf("Swap: %v", err)
			}
			after := seen[1].Load()
			for seen[1].Load() < after+100 {
				runtime.Gosched()
			}
			stop.Store(true)
			wg.Wait()

			if v := bad.Load(); v != nil {
				t.Fatalf("a call returned %q, want 1.0.0 or 2.0.0", v)
			}
			if !rep.Drained {
				t.Errorf("SwapReport.Drained = false, want true")
			}
			if rep.Old.BuildID == rep.New.BuildID {
				t.Errorf("old and new build IDs are both %s, want them to differ", rep.New.BuildID)
			}
			if got := g.GoString(version.Call0()); got != "2.0.0" {
				t.Fatalf("vl_version() = %q after the swap, want 2.0.0", got)
			}
			if s := g.Stats(); s.Swaps != 1 {
				t.Errorf("Stats.Swaps = %d, want 1", s.Swaps)
			}
		})
	}
}

func TestSwapRejectsBadFiles(t *testing.T) {
	g, version, lib := openVersioned(t, ModeProtect, "vl_version")

	text := filepath.Join(filepath.Dir(lib), "notes.txt")
	if err := os.WriteFile(text, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Swap(text); !errors.Is(err, loader.ErrFormat) {
		t.Errorf("Swap(text file) error = %v, want one matching loader.ErrFormat", err)
	}

	// A real library that lacks vl_version cannot replace this one.
	other := testlibs.Path(t, "libtrivial.so")
	if _, err := g.Swap(other); !errors.Is(err, loader.ErrSymbolNotFound) {
		t.Errorf("Swap(libtrivial.so) error = %v, want one matching loader.ErrSymbolNotFound", err)
	}

	if got := g.GoString(version.Call0()); got != "1.0.0" {
		t.Fatalf("vl_version() = %q after rejected swaps, want 1.0.0", got)
	}
	if s := g.Stats(); s.Swaps != 0 {
		t.Errorf("Stats.Swaps = %d after rejected swaps, want 0", s.Swaps)
	}
}
