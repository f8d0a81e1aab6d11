package trampoline

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// A library the system loader has loaded for other code cannot be sealed:
// the system loader would hand the gate that same process-wide copy.
func TestSharedSystemImageNotSealed(t *testing.T) {
	lib := testlibs.Path(t, "libtlsgd.so")
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatal(err)
	}
	defer purego.Dlclose(h)
	next, err := purego.Dlsym(h, "tg_next")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := Open(lib, &Options{Mode: ModeProtect}); !errors.Is(err, loader.ErrNotSupported) {
		t.Fatalf("Open in protect mode of a library dlopened elsewhere: error %v, want one matching loader.ErrNotSupported", err)
	}
	// The other user still works.
	if got, _, _ := purego.SyscallN(next); got == 0 {
		t.Errorf("tg_next through the other user's handle returned 0, want a positive count")
	}

	g, err := Open(lib, &Options{Mode: ModeOpen})
	if err != nil {
		t.Fatalf("Open in open mode of a shared library: %v", err)
	}
	defer g.Close()
}

// Swapping a system-loaded image to the same file would reuse the running
// copy rather than start a new image, so the swap is rejected.
func TestSwapSameSystemFileRejected(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libtls.so")
	copyFile(t, testlibs.Path(t, "libtlsgd.so"), lib)
	for _, mode := range []Mode{ModeOpen, ModeProtect} {
		t.Run(mode.String(), func(t *testing.T) {
			g, err := Open(lib, &Options{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			next, err := g.Func("tg_next")
			if err != nil {
				t.Fatal(err)
			}
			next.Call0()
			if _, err := g.Swap(lib); !errors.Is(err, loader.ErrNotSupported) {
				t.Fatalf("Swap to the same system-loaded file: error %v, want one matching loader.ErrNotSupported", err)
			}
			if got := next.Call0(); got == 0 {
				t.Errorf("tg_next after the rejected swap returned 0, want the old image to keep answering")
			}
		})
	}
}
